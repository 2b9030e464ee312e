"""The push scheduler: what to send next, on which lane, and when; the same for every
platform, one per channel.

`PushQueue` decides without I/O or waiting, so every rule is a unit test on a fake
clock:
- the latest quantity per listing wins (a newer one replaces a queued one, and the
  older one's waiters are answered with it);
- a change toward zero goes first, then other decreases, then increases, FIFO
  within a class by arrival; a listing with a request in flight waits for it, so
  compare-and-swap (Shopify's `changeFromQuantity`) always carries what the
  platform last accepted;
- on a lane whose call updates one parent (`LaneLimits.group_by`: TikTok's product,
  Shopee's item), a batch is built around the most urgent change and filled with the
  other changes of its group that can go now, of any class, most urgent first: they
  cost the call nothing extra;
- each lane spends its `LaneBudget`; eBay's daily revisions are spent on decreases
  first (`RevisionBudget`);
- a backlog the per-item lane would need longer than the bulk lane's processing time
  to clear goes through the bulk lane (Amazon's JSON_LISTINGS_FEED), except changes
  toward zero, which never wait for a feed;
- a transient failure comes back after a jittered exponential backoff; a refusal is
  answered and alerted, never retried blindly;
- a refusal because the platform holds more for its promotions (an outcome with
  `held` above the quantity sent) is sent again at once with that floor.

`Scheduler` is the only place that waits: it sends what the queue hands out, polls
asynchronous jobs, and answers the waiters (the connector's acks) with what the
platform did. It also keeps each listing's platform hold: it reports a hold when it
appears, changes or ends, and now and then offers the platform the quantity invsync
decided again, so the end of a promotion is noticed on a quiet listing too.
"""

from __future__ import annotations

import heapq
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
import anyio
import anyio.abc

from invsync.gateway.budget import LaneBudget, RevisionBudget, Spent
from invsync.gateway.metrics import ChannelMetrics
from invsync.gateway.platforms.base import (
    AuthError,
    BatchRefused,
    Change,
    Listing,
    Outcome,
    Profile,
    Reply,
    Throttled,
    TransientError,
)

__all__ = ["Batch", "Hold", "PushQueue", "Scheduler", "Settled", "backoff_s", "urgency"]

log = logging.getLogger("invsync.gateway")

# What a queued change's submitter is told once the platform applied (True) or
# refused (False, with the platform's reason) it, or a newer quantity did.
Settled = Callable[[bool, str | None], None]
# Alerts a person must see: the listing (None for a whole-request problem) and why.
Alert = Callable[[Listing | None, str], None]
# A platform hold appeared, changed or ended (held 0): the listing, the quantity invsync
# decided, what the platform holds, and the platform's reason.
HoldReport = Callable[[Listing, int, int, str], None]

TOWARD_ZERO, DECREASE, INCREASE = 0, 1, 2
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 60.0
# Requests of one synchronous lane in flight at once (each already paid for).
MAX_IN_FLIGHT = 4
# A retried item is alerted once it has failed this many times in a row.
ALERT_AFTER_ATTEMPTS = 5
# Asynchronous jobs are polled this often, relative to the lane's processing time.
POLL_FRACTION = 0.25
POLL_MIN_S, POLL_MAX_S = 0.2, 30.0
# A job not finished after this many processing times (or 10 min) is given up and
# its items sent again.
JOB_PATIENCE = 10
JOB_PATIENCE_MIN_S = 600.0
# Nothing to do: look again at least this often (a revision day ending, a pause).
IDLE_S = 1.0
# A listing the platform holds above invsync's quantity is offered that quantity again
# this often: a promotion's end shows no other way on a listing nothing else changes.
HOLD_RECHECK_S = 300.0


def urgency(qty: int, known: int | None) -> int:
    """A change's class: toward zero first, then other decreases, then increases. An
    unknown shown quantity (after a restart) counts as a decrease: it might be one."""
    if qty == 0 and known != 0:
        return TOWARD_ZERO
    if known is None or qty < known:
        return DECREASE
    return INCREASE


def backoff_s(attempt: int, rng: random.Random) -> float:
    """Delay before retry number `attempt` (1, 2, ...): exponential, capped, with
    "equal jitter" so retries of many items spread out."""
    ceiling = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2.0 ** (attempt - 1))
    return ceiling * (0.5 + 0.5 * rng.random())


@dataclass(eq=False)
class _Item:
    """One listing's quantity to send, with everyone waiting to hear how it went."""

    key: str
    listing: Listing
    qty: int
    source_ts: datetime
    arrival: int
    urgency: int
    waiters: list[Settled] = field(default_factory=list)
    attempt: int = 0
    not_before: float = 0.0

    def settle(self, applied: bool, reason: str | None) -> None:
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            waiter(applied, reason)


@dataclass(eq=False)
class Batch:
    """Items handed to one lane for one request (or one asynchronous job), and what
    the request cost the lane's budget."""

    lane: int
    items: list[_Item]
    spent: Spent

    def changes(self, known: dict[str, int]) -> list[Change]:
        return [
            Change(item.listing, item.qty, known.get(item.key), item.source_ts)
            for item in self.items
        ]


@dataclass(frozen=True)
class Settlement:
    """What one reply did: items applied (for latency), items refused (for alerts), and
    items the platform held above what was sent: (item, quantity sent, held, reason)."""

    applied: list[_Item]
    refused: list[tuple[_Item, str]]
    retry_alerts: list[tuple[_Item, str]]
    held: list[tuple[_Item, int, int, str]] = field(default_factory=list)


@dataclass
class Hold:
    """What a platform holds for one listing, and what invsync decided for it since."""

    listing: Listing
    decided: int
    held: int
    reason: str


class PushQueue:
    """Every listing's latest quantity not yet accepted, and which to send next."""

    def __init__(
        self,
        profile: Profile,
        clock: Callable[[], float],
        revisions: RevisionBudget | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.profile = profile
        self.budgets = [LaneBudget(lane.limits, clock) for lane in profile.lanes]
        self.revisions = revisions
        self.rng = rng or random.Random()
        self.known: dict[str, int] = {}
        self._pending: dict[str, _Item] = {}
        self._in_flight: dict[str, _Item] = {}
        # Per grouping column (`LaneLimits.group_by`), its values' pending listing keys.
        self._groups: dict[str, dict[str, set[str]]] = {
            lane.limits.group_by: {} for lane in profile.lanes if lane.limits.group_by
        }
        self._heaps: tuple[list[tuple[int, str]], ...] = ([], [], [])
        self._arrivals = 0
        self.sending = [0] * len(profile.lanes)
        self.paused_until = [-math.inf] * len(profile.lanes)

    # --- filling -----------------------------------------------------------------------

    def put(
        self, listing: Listing, qty: int, source_ts: datetime, waiter: Settled | None = None
    ) -> None:
        """Queue `qty` for `listing`, replacing a queued quantity for it."""
        key = self.profile.listing_key(listing)
        item = self._pending.get(key)
        if item is None:
            self._arrivals += 1
            item = _Item(key, listing, qty, source_ts, self._arrivals, -1)
        else:
            self._unfile(item)  # the listing map may have moved it to another group
            item.listing, item.qty, item.source_ts = listing, qty, source_ts
            item.attempt, item.not_before = 0, 0.0
        self._file(item)
        if waiter is not None:
            item.waiters.append(waiter)
        self._rank(item)

    def backlog(self) -> int:
        """Listings with a quantity not yet accepted (queued or in flight)."""
        return len(self._pending) + len(self._in_flight)

    def shows(self, listing: Listing) -> int | None:
        """What the platform last accepted for `listing` when nothing for it is queued
        or in flight; None when that is not known."""
        key = self.profile.listing_key(listing)
        if key in self._pending or key in self._in_flight:
            return None
        return self.known.get(key)

    # --- choosing ----------------------------------------------------------------------

    def take(self, now: float) -> Batch | float:
        """The next batch to send now, or how long until one could be (inf: nothing
        queued)."""
        waits: list[float] = []
        if len(self.profile.lanes) > 1:
            bulk = self._take_bulk(now, waits)
            if bulk is not None:
                return bulk
        batch = self._take_lane(0, now, waits, exclude=frozenset(), skip=0)
        if batch is not None:
            return batch
        return min(waits, default=math.inf)

    def _take_bulk(self, now: float, waits: list[float]) -> Batch | None:
        per_item, bulk = self.profile.lanes[0].limits, self.profile.lanes[1].limits
        ready = sum(1 for item in self._pending.values() if item.not_before <= now)
        per_item_rate = self.budgets[0].rate * per_item.batch / per_item.cost(per_item.batch)
        if ready / per_item_rate <= bulk.processing_s:
            return None
        # What the per-item lane sends within a job's processing time goes that way.
        head = int(per_item_rate * bulk.processing_s)
        return self._take_lane(1, now, waits, exclude=frozenset({TOWARD_ZERO}), skip=head)

    def _take_lane(
        self, lane: int, now: float, waits: list[float], exclude: frozenset[int], skip: int
    ) -> Batch | None:
        limits = self.profile.lanes[lane].limits
        if self.sending[lane] >= MAX_IN_FLIGHT:
            return None
        if self.paused_until[lane] > now:
            waits.append(self.paused_until[lane] - now)
            return None
        chosen: list[_Item] = []
        held: list[tuple[int, int, str]] = []
        seen: set[str] = set()
        # A grouping lane takes only the most urgent change from the heaps; its group
        # fills the rest of the batch.
        room = 1 if limits.group_by else limits.batch
        for rank, heap in enumerate(self._heaps):
            while heap and len(chosen) < room:
                arrival, key = heapq.heappop(heap)
                item = self._pending.get(key)
                if item is None or item.arrival != arrival or item.urgency != rank or key in seen:
                    continue  # replaced, sent or a second copy: a stale heap entry
                seen.add(key)
                held.append((rank, arrival, key))
                if rank in exclude or key in self._in_flight:
                    continue
                if item.not_before > now:
                    waits.append(item.not_before - now)
                    continue
                if not self._revision_allows(item):
                    waits.append(IDLE_S)
                    continue
                if skip > 0:
                    skip -= 1
                    continue
                chosen.append(item)
        if chosen and limits.group_by:
            chosen += self._group_mates(chosen[0], limits.group_by, limits.batch - 1, now, exclude)
        if chosen:
            cost = limits.cost(len(chosen))
            wait = self.budgets[lane].wait_s(cost)
            if wait > 0:
                waits.append(wait)
                chosen = []
        taken = {id(item) for item in chosen}
        for rank, arrival, key in held:
            if id(self._pending[key]) not in taken:
                heapq.heappush(self._heaps[rank], (arrival, key))
        if not chosen:
            return None
        spent = self.budgets[lane].spend(limits.cost(len(chosen)))
        for item in chosen:
            self._unfile(item)
            self._in_flight[item.key] = item
        self.sending[lane] += 1
        return Batch(lane, chosen, spent)

    def _group_mates(
        self, anchor: _Item, column: str, room: int, now: float, exclude: frozenset[int]
    ) -> list[_Item]:
        """Up to `room` other pending changes of `anchor`'s group that can go now, most
        urgent first (class, then arrival)."""
        group = anchor.listing.ids.get(column)
        keys = self._groups[column].get(group, set()) if group is not None else set()
        mates = [
            item
            for item in (self._pending[key] for key in keys if key != anchor.key)
            if item.urgency not in exclude
            and item.key not in self._in_flight
            and item.not_before <= now
            and self._revision_allows(item)
        ]
        mates.sort(key=lambda item: (item.urgency, item.arrival))
        return mates[:room]

    def _file(self, item: _Item) -> None:
        """Queue `item` as its listing's pending change, in its groups."""
        self._pending[item.key] = item
        for column, groups in self._groups.items():
            group = item.listing.ids.get(column)
            if group is not None:
                groups.setdefault(group, set()).add(item.key)

    def _unfile(self, item: _Item) -> None:
        """Take `item` out of the pending changes and its groups."""
        del self._pending[item.key]
        for column, groups in self._groups.items():
            group = item.listing.ids.get(column)
            if group is None or group not in groups:
                continue
            groups[group].discard(item.key)
            if not groups[group]:
                del groups[group]

    def _revision_allows(self, item: _Item) -> bool:
        if self.revisions is None:
            return True
        return self.revisions.allows(item.key, decrease=item.urgency != INCREASE)

    # --- results -----------------------------------------------------------------------

    def sent(self, batch: Batch) -> None:
        """The request of `batch` is over (a reply, a job id or a failure)."""
        self.sending[batch.lane] -= 1

    def settle(self, batch: Batch, outcomes: Sequence[Outcome], now: float) -> Settlement:
        """Apply a reply's per-item outcomes (in batch order)."""
        result = Settlement([], [], [])
        for item, outcome in zip(batch.items, outcomes, strict=True):
            del self._in_flight[item.key]
            if self.revisions is not None:
                # Spent once the platform answered for the item: a request that failed
                # whole revised nothing. One request per listing is in flight at a time.
                self.revisions.spend(item.key)
            if outcome.shown is not None:
                self.known[item.key] = outcome.shown
            elif outcome.applied:
                self.known[item.key] = item.qty
            if outcome.applied:
                item.settle(True, None)
                result.applied.append(item)
            elif outcome.held is not None and outcome.held > item.qty:
                reason = outcome.reason or "the platform holds more"
                result.held.append((item, item.qty, outcome.held, reason))
                item.qty = outcome.held  # never below what the platform holds
                self._requeue(item)
            elif not outcome.retry:
                reason = outcome.reason or "refused without a reason"
                item.settle(False, reason)
                result.refused.append((item, reason))
            elif outcome.bystander:
                self._requeue(item)
            elif self._retry(item, now) == ALERT_AFTER_ATTEMPTS:
                result.retry_alerts.append((item, outcome.reason or "not applied"))
            newer = self._pending.get(item.key)
            if newer is not None:
                self._rank(newer)  # its class follows what the platform now shows
        return result

    def give_back(self, batch: Batch, now: float, backoff: bool) -> None:
        """A whole request failed: its items are queued again in their old places
        (after a backoff when the failure was the request's, not the budget's)."""
        for item in batch.items:
            del self._in_flight[item.key]
            if backoff:
                self._retry(item, now)
            else:
                self._requeue(item)

    def refuse(self, batch: Batch, reason: str) -> None:
        """The platform refused the whole request as malformed: every item is answered
        with its reason and waits for a newer quantity."""
        for item in batch.items:
            del self._in_flight[item.key]
            item.settle(False, reason)

    def pause(self, lane: int, until: float) -> None:
        self.paused_until[lane] = max(self.paused_until[lane], until)

    def _retry(self, item: _Item, now: float) -> int:
        item.attempt += 1
        item.not_before = now + backoff_s(item.attempt, self.rng)
        self._requeue(item)
        return item.attempt

    def _requeue(self, item: _Item) -> None:
        newer = self._pending.get(item.key)
        if newer is not None:
            # A newer quantity superseded it: that one answers these waiters too.
            newer.waiters[:0] = item.waiters
            newer.arrival = min(newer.arrival, item.arrival)
            self._rank(newer, force=True)
            return
        self._file(item)
        self._rank(item, force=True)

    def _rank(self, item: _Item, force: bool = False) -> None:
        rank = urgency(item.qty, self.known.get(item.key))
        if rank != item.urgency or force:
            item.urgency = rank
            heapq.heappush(self._heaps[rank], (item.arrival, item.key))


class Scheduler:
    """Sends one channel's queue to its platform, within budget, until cancelled."""

    def __init__(
        self,
        profile: Profile,
        http: aiohttp.ClientSession,
        metrics: ChannelMetrics,
        alert: Alert,
        clock: Callable[[], float] = time.monotonic,
        revisions: RevisionBudget | None = None,
        report_hold: HoldReport | None = None,
        hold_recheck_s: float = HOLD_RECHECK_S,
    ) -> None:
        self.profile = profile
        self.http = http
        self.metrics = metrics
        self.alert = alert
        self.clock = clock
        self.queue = PushQueue(profile, clock, revisions)
        self.report_hold = report_hold
        self.hold_recheck_s = hold_recheck_s
        # Listings whose platform holds stock, by listing key.
        self.holds: dict[str, Hold] = {}
        self._next_recheck = clock() + hold_recheck_s
        self._wake = anyio.Event()
        self._auth_failures = 0
        self._tasks: anyio.abc.TaskGroup | None = None

    def put(
        self, listing: Listing, qty: int, source_ts: datetime, waiter: Settled | None = None
    ) -> None:
        hold = self.holds.get(self.profile.listing_key(listing))
        if hold is not None:
            hold.decided = qty
        self.queue.put(listing, qty, source_ts, waiter)
        self._wake.set()
        self.metrics.backlog.set(self.queue.backlog())

    async def run(self) -> None:
        async with anyio.create_task_group() as tasks:
            self._tasks = tasks
            while True:
                self._wake = anyio.Event()
                if self.clock() >= self._next_recheck:
                    self._recheck_holds()
                decision = self.queue.take(self.clock())
                self.metrics.backlog.set(self.queue.backlog())
                self.metrics.budget.set(self.queue.budgets[0].available())
                if isinstance(decision, Batch):
                    tasks.start_soon(self._send, decision)
                    continue
                with anyio.move_on_after(min(decision, IDLE_S)):
                    await self._wake.wait()

    async def _send(self, batch: Batch) -> None:
        lane = self.profile.lanes[batch.lane]
        budget = self.queue.budgets[batch.lane]
        try:
            reply = await lane.send(self.http, batch.changes(self.queue.known))
            if not reply.job and len(reply.outcomes) != len(batch.items):
                raise TransientError(
                    f"{lane.name}: {len(reply.outcomes)} outcomes for {len(batch.items)} changes"
                )
        except Throttled as exc:
            budget.throttled(exc.budget)
            self._failed(batch, "throttled", str(exc), backoff=False)
        except (TransientError, aiohttp.ClientError, TimeoutError) as exc:
            self._failed(batch, "error", _reason(exc), backoff=True)
        except AuthError as exc:
            self._auth_failures += 1
            pause = backoff_s(self._auth_failures, self.queue.rng) * 4
            self.queue.pause(batch.lane, self.clock() + pause)
            self.alert(None, f"{self.profile.platform} refused the credentials: {exc}")
            self._failed(batch, "auth_error", str(exc), backoff=False)
        except BatchRefused as exc:
            self.queue.refuse(batch, str(exc))
            self.alert(None, f"{self.profile.platform} refused a {lane.name} request: {exc}")
            self.metrics.request("refused")
        except Exception as exc:
            # A profile that cannot read a reply (a bug, or the platform changed):
            # one channel's fault must not stop the others, nor lose the changes.
            log.exception("%s: %s lane failed unexpectedly", self.metrics.channel, lane.name)
            self.alert(None, _unexpected(self.profile.platform, lane.name, exc))
            self._failed(batch, "error", _reason(exc), backoff=True)
        else:
            self._auth_failures = 0
            budget.accepted(reply.budget, batch.spent)
            self.metrics.request("ok")
            if reply.job is not None:
                self._spawn_poll(batch, reply.job)
            else:
                self._settled(batch, reply)
        finally:
            self.queue.sent(batch)
            self._wake.set()

    def _failed(self, batch: Batch, result: str, reason: str, backoff: bool) -> None:
        log.warning(
            "%s: %s (%d items queued again)", self.metrics.channel, reason, len(batch.items)
        )
        self.metrics.request(result)
        self.queue.give_back(batch, self.clock(), backoff)

    def _settled(self, batch: Batch, reply: Reply) -> None:
        done = self.queue.settle(batch, reply.outcomes, self.clock())
        now = datetime.now(UTC)
        if done.applied:
            self.metrics.accepted_on(self.profile.lanes[batch.lane].limits.floor_s, self.clock())
        for item in done.applied:
            self.metrics.latency.observe(max(0.0, (now - item.source_ts).total_seconds()))
        for item, reason in done.refused:
            self.alert(item.listing, reason)
        for item, reason in done.retry_alerts:
            self.alert(item.listing, f"not applied after {item.attempt} attempts: {reason}")
        self._holds_settled(done)
        self.metrics.backlog.set(self.queue.backlog())

    def _holds_settled(self, done: Settlement) -> None:
        """Keep each listing's hold and report what is new: a hold that appears or
        changes, and one that ends (the platform took less than it held)."""
        for item, decided, held, reason in done.held:
            hold = self.holds.get(item.key)
            if hold is not None and hold.held == held:
                hold.decided = decided
                continue
            self.holds[item.key] = Hold(item.listing, decided, held, reason)
            if self.report_hold is not None:
                self.report_hold(item.listing, decided, held, reason)
        for item in done.applied:
            hold = self.holds.get(item.key)
            if hold is not None and item.qty < hold.held:
                del self.holds[item.key]
                if self.report_hold is not None:
                    self.report_hold(item.listing, item.qty, 0, "the platform took less again")

    def _recheck_holds(self) -> None:
        """Offer each held listing the quantity invsync decided, when it is below the
        hold and nothing for the listing is on its way."""
        self._next_recheck = self.clock() + self.hold_recheck_s
        now = datetime.now(UTC)
        for hold in self.holds.values():
            if hold.decided < hold.held and self.queue.shows(hold.listing) is not None:
                self.queue.put(hold.listing, hold.decided, now)

    def _spawn_poll(self, batch: Batch, job: str) -> None:
        # The job outlives its request: count it as sent, keep its items in flight.
        assert self._tasks is not None, "jobs are only started by run()"
        self._tasks.start_soon(self._poll, batch, job)

    async def _poll(self, batch: Batch, job: str) -> None:
        lane = self.profile.lanes[batch.lane]
        interval = min(POLL_MAX_S, max(POLL_MIN_S, lane.limits.processing_s * POLL_FRACTION))
        patience = max(JOB_PATIENCE_MIN_S, JOB_PATIENCE * lane.limits.processing_s)
        deadline = self.clock() + patience
        while self.clock() < deadline:
            await anyio.sleep(interval)
            try:
                reply = await lane.poll(self.http, job)
            except (TransientError, Throttled, aiohttp.ClientError, TimeoutError) as exc:
                log.info("%s: job %s not read yet: %s", self.metrics.channel, job, _reason(exc))
                continue
            except (AuthError, BatchRefused) as exc:
                self.alert(None, f"{self.profile.platform} job {job} unreadable: {exc}")
                break
            except Exception as exc:
                log.exception("%s: polling job %s failed unexpectedly", self.metrics.channel, job)
                self.alert(None, _unexpected(self.profile.platform, lane.name, exc))
                break
            if reply is None:
                continue
            if len(reply.outcomes) == len(batch.items):
                self._settled(batch, reply)
                self._wake.set()
                return
            log.warning(
                "%s: job %s reported %d outcomes for %d changes",
                self.metrics.channel,
                job,
                len(reply.outcomes),
                len(batch.items),
            )
            break
        else:
            self.alert(None, f"{self.profile.platform} job {job} unfinished after {patience:.0f} s")
        self.queue.give_back(batch, self.clock(), backoff=True)
        self._wake.set()


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _unexpected(platform: str, lane: str, exc: Exception) -> str:
    return (
        f"{platform} {lane}: the reply could not be read ({type(exc).__name__}); "
        "the changes are sent again, see the gateway log"
    )
