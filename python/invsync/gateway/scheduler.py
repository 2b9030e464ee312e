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
  `held` above the quantity sent) is sent again at once with that floor;
- prices go through the same queue, lanes and budgets: the latest price per listing
  wins, a price ranks after decreases and before increases, and on a lane that sets
  price and quantity in one call (eBay, Lazada, Amazon) a listing's pending price and
  quantity go in one entry. An increase waits while the listing's first price is on
  its way (content, then price, then quantity); a refused entry carrying both is sent
  again as two, so a bad price never blocks a quantity.

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
from typing import ClassVar

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
    Price,
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

TOWARD_ZERO, DECREASE, PRICE, INCREASE = 0, 1, 2, 3
# What a pending change sets on its listing.
QTY_KIND, PRICE_KIND = 0, 1
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
    """A quantity change's class: toward zero first, then other decreases, then
    increases (prices go between the last two). An unknown shown quantity (after a
    restart) counts as a decrease: it might be one."""
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


@dataclass(eq=False, kw_only=True)
class _Pending:
    """One listing's quantity or price to send, with everyone waiting to hear how it
    went. `alone`: a combined request with it was refused, so it goes by itself once,
    to find out which half the platform refused."""

    key: str
    listing: Listing
    source_ts: datetime
    arrival: int
    urgency: int
    waiters: list[Settled] = field(default_factory=list)
    attempt: int = 0
    not_before: float = 0.0
    alone: bool = False

    kind: ClassVar[int]

    def settle(self, applied: bool, reason: str | None) -> None:
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            waiter(applied, reason)


@dataclass(eq=False, kw_only=True)
class _Item(_Pending):
    """A listing's quantity."""

    qty: int
    kind: ClassVar[int] = QTY_KIND


@dataclass(eq=False, kw_only=True)
class _PriceItem(_Pending):
    """A listing's price."""

    price: Price
    kind: ClassVar[int] = PRICE_KIND


@dataclass(eq=False)
class _Entry:
    """One listing's part of a request: its quantity, its price, or both (on a lane
    that carries both, a pending price and quantity of one listing go together)."""

    qty: _Item | None
    price: _PriceItem | None

    @property
    def lead(self) -> _Pending:
        lead = self.qty or self.price
        assert lead is not None, "an entry carries a quantity, a price or both"
        return lead

    def parts(self) -> list[_Pending]:
        return [part for part in (self.qty, self.price) if part is not None]


@dataclass(eq=False)
class Batch:
    """Entries handed to one lane for one request (or one asynchronous job), and what
    the request cost the lane's budget."""

    lane: int
    entries: list[_Entry]
    spent: Spent

    @property
    def items(self) -> list[_Item]:
        """The quantities the request carries."""
        return [entry.qty for entry in self.entries if entry.qty is not None]

    def changes(self, known: dict[str, int]) -> list[Change]:
        changes = []
        for entry in self.entries:
            lead = entry.lead
            changes.append(
                Change(
                    lead.listing,
                    None if entry.qty is None else entry.qty.qty,
                    known.get(lead.key),
                    min(part.source_ts for part in entry.parts()),
                    None if entry.price is None else entry.price.price,
                )
            )
        return changes


@dataclass(frozen=True)
class Settlement:
    """What one reply did: quantities applied (for latency), prices applied, items
    refused (for alerts), and quantities the platform held above what was sent: (item,
    quantity sent, held, reason)."""

    applied: list[_Item]
    refused: list[tuple[_Pending, str]]
    retry_alerts: list[tuple[_Pending, str]]
    held: list[tuple[_Item, int, int, str]] = field(default_factory=list)
    prices: list[_PriceItem] = field(default_factory=list)


@dataclass
class Hold:
    """What a platform holds for one listing, and what invsync decided for it since."""

    listing: Listing
    decided: int
    held: int
    reason: str


class PushQueue:
    """Every listing's latest quantity and price not yet accepted, and which to send
    next. One request per listing is in flight at a time, whatever it carries."""

    def __init__(
        self,
        profile: Profile,
        clock: Callable[[], float],
        revisions: RevisionBudget | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.profile = profile
        self.budgets = _budgets(profile, clock)
        self.revisions = revisions
        self.rng = rng or random.Random()
        self.known: dict[str, int] = {}
        # The price each listing was last accepted at (since this gateway started).
        self.known_prices: dict[str, Price] = {}
        self._pending: dict[str, _Item] = {}
        self._prices: dict[str, _PriceItem] = {}
        self._in_flight: dict[str, _Entry] = {}
        # Per grouping column (`LaneLimits.group_by`), its values' pending changes.
        self._groups: dict[str, dict[str, set[tuple[str, int]]]] = {
            lane.limits.group_by: {} for lane in profile.lanes if lane.limits.group_by
        }
        self._heaps: tuple[list[tuple[int, str, int]], ...] = ([], [], [], [])
        self._arrivals = 0
        self.sending = [0] * len(profile.lanes)
        self.paused_until = [-math.inf] * len(profile.lanes)
        lanes = list(enumerate(profile.lanes))
        self._quantity_lanes = [index for index, lane in lanes if lane.quantities]
        self.price_lane = next((index for index, lane in lanes if lane.prices), None)

    # --- filling -----------------------------------------------------------------------

    def put(
        self, listing: Listing, qty: int, source_ts: datetime, waiter: Settled | None = None
    ) -> None:
        """Queue `qty` for `listing`, replacing a queued quantity for it."""
        key = self.profile.listing_key(listing)
        item = self._pending.get(key)
        if item is None:
            self._arrivals += 1
            item = _Item(
                key=key,
                listing=listing,
                qty=qty,
                source_ts=source_ts,
                arrival=self._arrivals,
                urgency=-1,
            )
        else:
            self._unfile(item)  # the listing map may have moved it to another group
            item.listing, item.qty, item.source_ts = listing, qty, source_ts
            item.attempt, item.not_before, item.alone = 0, 0.0, False
        self._file(item)
        if waiter is not None:
            item.waiters.append(waiter)
        self._rank(item)

    def put_price(
        self, listing: Listing, price: Price, source_ts: datetime, waiter: Settled | None = None
    ) -> None:
        """Queue `price` for `listing`, replacing a queued price for it. Raises
        LookupError when no lane of the platform carries prices."""
        if self.price_lane is None:
            raise LookupError(f"the {self.profile.platform} profile sends no prices")
        key = self.profile.listing_key(listing)
        item = self._prices.get(key)
        if item is None:
            self._arrivals += 1
            item = _PriceItem(
                key=key,
                listing=listing,
                price=price,
                source_ts=source_ts,
                arrival=self._arrivals,
                urgency=PRICE,
            )
        else:
            self._unfile(item)
            item.listing, item.price, item.source_ts = listing, price, source_ts
            item.attempt, item.not_before, item.alone = 0, 0.0, False
        self._file(item)
        if waiter is not None:
            item.waiters.append(waiter)
        self._rank(item, force=True)

    def backlog(self) -> int:
        """Quantities and prices not yet accepted: queued, or in a request (one per
        listing) on its way. Counted, not collected: it is read on every turn."""
        return len(self._pending) + len(self._prices) + len(self._in_flight)

    def shows(self, listing: Listing) -> int | None:
        """What the platform last accepted for `listing` when no quantity for it is
        queued or in flight; None when that is not known."""
        key = self.profile.listing_key(listing)
        flying = self._in_flight.get(key)
        if key in self._pending or (flying is not None and flying.qty is not None):
            return None
        return self.known.get(key)

    def shows_price(self, listing: Listing) -> Price | None:
        """The price the platform last accepted for `listing` when no price for it is
        queued or in flight; None when that is not known."""
        key = self.profile.listing_key(listing)
        flying = self._in_flight.get(key)
        if key in self._prices or (flying is not None and flying.price is not None):
            return None
        return self.known_prices.get(key)

    # --- choosing ----------------------------------------------------------------------

    def take(self, now: float) -> Batch | float:
        """The next batch to send now, or how long until one could be (inf: nothing
        queued)."""
        waits: list[float] = []
        if len(self._quantity_lanes) > 1:
            per_item, bulk_lane = self._quantity_lanes[:2]
            bulk = self._take_bulk(per_item, bulk_lane, now, waits)
            if bulk is not None:
                return bulk
        lanes = self._quantity_lanes[:1]
        if self.price_lane is not None and self.price_lane not in lanes:
            lanes.append(self.price_lane)
        for lane in lanes:
            batch = self._take_lane(lane, now, waits, exclude=frozenset(), skip=0)
            if batch is not None:
                return batch
        return min(waits, default=math.inf)

    def _take_bulk(
        self, per_item_lane: int, bulk_lane: int, now: float, waits: list[float]
    ) -> Batch | None:
        per_item = self.profile.lanes[per_item_lane].limits
        bulk = self.profile.lanes[bulk_lane].limits
        ready = sum(1 for item in self._pending.values() if item.not_before <= now)
        per_item_rate = (
            self.budgets[per_item_lane].rate * per_item.batch / per_item.cost(per_item.batch)
        )
        if ready / per_item_rate <= bulk.processing_s:
            return None
        # What the per-item lane sends within a job's processing time goes that way.
        head = int(per_item_rate * bulk.processing_s)
        return self._take_lane(bulk_lane, now, waits, exclude=frozenset({TOWARD_ZERO}), skip=head)

    def _take_lane(
        self, lane: int, now: float, waits: list[float], exclude: frozenset[int], skip: int
    ) -> Batch | None:
        limits = self.profile.lanes[lane].limits
        if self.sending[lane] >= MAX_IN_FLIGHT:
            return None
        if self.paused_until[lane] > now:
            waits.append(self.paused_until[lane] - now)
            return None
        chosen: list[_Entry] = []
        held: list[tuple[int, _Pending]] = []
        seen: set[tuple[str, int]] = set()
        chosen_keys: set[str] = set()
        # A grouping lane takes only the most urgent change from the heaps; its group
        # fills the rest of the batch.
        room = 1 if limits.group_by else limits.batch
        for rank, heap in enumerate(self._heaps):
            while heap and len(chosen) < room:
                arrival, key, kind = heapq.heappop(heap)
                item = self._queued(key, kind)
                if item is None or item.arrival != arrival or item.urgency != rank:
                    continue  # replaced, sent or a second copy: a stale heap entry
                if (key, kind) in seen:
                    continue
                seen.add((key, kind))
                held.append((rank, item))
                if rank in exclude or not self._carries(lane, item) or key in chosen_keys:
                    continue
                entry = self._entry(lane, item, now, waits)
                if entry is None:
                    continue
                if skip > 0:
                    skip -= 1
                    continue
                chosen.append(entry)
                chosen_keys.add(key)
        if chosen and limits.group_by:
            chosen += self._group_mates(
                lane, chosen[0].lead, limits.group_by, limits.batch - 1, now, exclude
            )
        if chosen:
            cost = limits.cost(len(chosen))
            wait = self.budgets[lane].wait_s(cost)
            if wait > 0:
                waits.append(wait)
                chosen = []
        taken = {id(part) for entry in chosen for part in entry.parts()}
        for rank, item in held:
            if id(item) not in taken:
                heapq.heappush(self._heaps[rank], (item.arrival, item.key, item.kind))
        if not chosen:
            return None
        spent = self.budgets[lane].spend(limits.cost(len(chosen)))
        for entry in chosen:
            for part in entry.parts():
                self._unfile(part)
            self._in_flight[entry.lead.key] = entry
        self.sending[lane] += 1
        return Batch(lane, chosen, spent)

    def _entry(self, lane: int, item: _Pending, now: float, waits: list[float]) -> _Entry | None:
        """`item` as an entry of a request on `lane` now, with its listing's other
        pending change when the lane carries both; None when it must wait."""
        if item.key in self._in_flight:
            return None
        if item.not_before > now:
            waits.append(item.not_before - now)
            return None
        if not self._revision_allows(item):
            waits.append(IDLE_S)
            return None
        mate = None if item.alone else self._mate(lane, item, now)
        if isinstance(item, _Item):
            if mate is None and self._first_price_pending(item):
                return None  # sent when its price is settled
            return _Entry(item, mate if isinstance(mate, _PriceItem) else None)
        assert isinstance(item, _PriceItem)
        return _Entry(mate if isinstance(mate, _Item) else None, item)

    def _mate(self, lane: int, item: _Pending, now: float) -> _Pending | None:
        """The listing's other pending change, if `lane` carries it and it can go now."""
        other = self._queued(item.key, PRICE_KIND if item.kind == QTY_KIND else QTY_KIND)
        if other is None or other.alone or other.not_before > now:
            return None
        return other if self._carries(lane, other) else None

    def _first_price_pending(self, item: _Item) -> bool:
        """An increase waits while the listing's first price is on its way: a listing
        is not offered more before it has a price (content, then price, then
        quantity). Decreases never wait: selling less is never wrong."""
        return (
            item.urgency == INCREASE
            and item.key in self._prices
            and item.key not in self.known_prices
        )

    def _carries(self, lane: int, item: _Pending) -> bool:
        carrier = self.profile.lanes[lane]
        return carrier.prices if item.kind == PRICE_KIND else carrier.quantities

    def _queued(self, key: str, kind: int) -> _Pending | None:
        return (self._pending if kind == QTY_KIND else self._prices).get(key)

    def _group_mates(
        self,
        lane: int,
        anchor: _Pending,
        column: str,
        room: int,
        now: float,
        exclude: frozenset[int],
    ) -> list[_Entry]:
        """Up to `room` other pending changes of `anchor`'s group that can go now, most
        urgent first (class, then arrival)."""
        group = anchor.listing.ids.get(column)
        slots = self._groups[column].get(group, set()) if group is not None else set()
        mates = [
            item
            for item in (self._queued(key, kind) for key, kind in slots if key != anchor.key)
            if item is not None
            and item.urgency not in exclude
            and self._carries(lane, item)
            and item.key not in self._in_flight
            and item.not_before <= now
            and self._revision_allows(item)
            and not (isinstance(item, _Item) and self._first_price_pending(item))
        ]
        mates.sort(key=lambda item: (item.urgency, item.arrival))
        entries: dict[str, _Entry] = {}
        for item in mates:
            entry = entries.get(item.key)
            if entry is None and len(entries) >= room:
                continue
            entry = entries.setdefault(item.key, _Entry(None, None))
            if isinstance(item, _Item):
                entry.qty = item
            else:
                assert isinstance(item, _PriceItem)
                entry.price = item
        return list(entries.values())

    def _file(self, item: _Pending) -> None:
        """Queue `item` as its listing's pending quantity or price, in its groups."""
        if isinstance(item, _Item):
            self._pending[item.key] = item
        else:
            assert isinstance(item, _PriceItem)
            self._prices[item.key] = item
        for column, groups in self._groups.items():
            group = item.listing.ids.get(column)
            if group is not None:
                groups.setdefault(group, set()).add((item.key, item.kind))

    def _unfile(self, item: _Pending) -> None:
        """Take `item` out of the pending changes and its groups."""
        del (self._pending if item.kind == QTY_KIND else self._prices)[item.key]
        for column, groups in self._groups.items():
            group = item.listing.ids.get(column)
            if group is None or group not in groups:
                continue
            groups[group].discard((item.key, item.kind))
            if not groups[group]:
                del groups[group]

    def _revision_allows(self, item: _Pending) -> bool:
        if self.revisions is None:
            return True
        return self.revisions.allows(item.key, decrease=item.urgency < PRICE)

    # --- results -----------------------------------------------------------------------

    def sent(self, batch: Batch) -> None:
        """The request of `batch` is over (a reply, a job id or a failure)."""
        self.sending[batch.lane] -= 1

    def settle(self, batch: Batch, outcomes: Sequence[Outcome], now: float) -> Settlement:
        """Apply a reply's per-entry outcomes (in batch order)."""
        result = Settlement([], [], [])
        for entry, outcome in zip(batch.entries, outcomes, strict=True):
            del self._in_flight[entry.lead.key]
            if self.revisions is not None:
                # Spent once the platform answered for the entry: a request that failed
                # whole revised nothing. One request per listing is in flight at a time.
                self.revisions.spend(entry.lead.key)
            refused = not outcome.applied and not outcome.retry and outcome.held is None
            if refused and entry.qty is not None and entry.price is not None:
                # Either half may be at fault: each goes alone once, so a bad price never
                # blocks a quantity, nor a bad quantity a price.
                for part in entry.parts():
                    part.alone = True
                    self._requeue(part)
                continue
            if entry.qty is not None:
                self._settle_quantity(entry.qty, outcome, now, result)
            if entry.price is not None:
                self._settle_price(entry.price, outcome, now, result)
            for part in entry.parts():
                newer = self._queued(part.key, part.kind)
                if newer is not None:
                    self._rank(newer)  # its class follows what the platform now shows
        return result

    def _settle_quantity(
        self, item: _Item, outcome: Outcome, now: float, result: Settlement
    ) -> None:
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
        else:
            self._settle_failure(item, outcome, now, result)

    def _settle_price(
        self, item: _PriceItem, outcome: Outcome, now: float, result: Settlement
    ) -> None:
        if outcome.applied:
            self.known_prices[item.key] = item.price
            item.settle(True, None)
            result.prices.append(item)
        elif outcome.held is not None:
            self._requeue(item)  # the quantity's floor is sent again, the price with it
        else:
            self._settle_failure(item, outcome, now, result)

    def _settle_failure(
        self, item: _Pending, outcome: Outcome, now: float, result: Settlement
    ) -> None:
        if not outcome.retry:
            reason = outcome.reason or "refused without a reason"
            item.settle(False, reason)
            result.refused.append((item, reason))
        elif outcome.bystander:
            self._requeue(item)
        elif self._retry(item, now) == ALERT_AFTER_ATTEMPTS:
            result.retry_alerts.append((item, outcome.reason or "not applied"))

    def give_back(self, batch: Batch, now: float, backoff: bool) -> None:
        """A whole request failed: its items are queued again in their old places
        (after a backoff when the failure was the request's, not the budget's)."""
        for entry in batch.entries:
            del self._in_flight[entry.lead.key]
            for part in entry.parts():
                if backoff:
                    self._retry(part, now)
                else:
                    self._requeue(part)

    def refuse(self, batch: Batch, reason: str) -> None:
        """The platform refused the whole request as malformed: every item is answered
        with its reason and waits for a newer quantity or price."""
        for entry in batch.entries:
            del self._in_flight[entry.lead.key]
            for part in entry.parts():
                part.settle(False, reason)

    def pause(self, lane: int, until: float) -> None:
        self.paused_until[lane] = max(self.paused_until[lane], until)

    def _retry(self, item: _Pending, now: float) -> int:
        item.attempt += 1
        item.not_before = now + backoff_s(item.attempt, self.rng)
        self._requeue(item)
        return item.attempt

    def _requeue(self, item: _Pending) -> None:
        newer = self._queued(item.key, item.kind)
        if newer is not None:
            # A newer quantity superseded it: that one answers these waiters too.
            newer.waiters[:0] = item.waiters
            newer.arrival = min(newer.arrival, item.arrival)
            self._rank(newer, force=True)
            return
        self._file(item)
        self._rank(item, force=True)

    def _rank(self, item: _Pending, force: bool = False) -> None:
        rank = urgency(item.qty, self.known.get(item.key)) if isinstance(item, _Item) else PRICE
        if rank != item.urgency or force:
            item.urgency = rank
            heapq.heappush(self._heaps[rank], (item.arrival, item.key, item.kind))


def _budgets(profile: Profile, clock: Callable[[], float]) -> list[LaneBudget]:
    """Each lane's budget: its own, or the one of the lanes naming the same
    `shared_budget`."""
    shared: dict[str, LaneBudget] = {}
    budgets = []
    for lane in profile.lanes:
        name = lane.limits.shared_budget
        budget = shared.get(name) if name else None
        if budget is None:
            budget = LaneBudget(lane.limits, clock)
            if name:
                shared[name] = budget
        budgets.append(budget)
    return budgets


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

    @property
    def sends_prices(self) -> bool:
        """Whether the platform's profile has a lane that carries prices."""
        return self.queue.price_lane is not None

    def put_price(
        self, listing: Listing, price: Price, source_ts: datetime, waiter: Settled | None = None
    ) -> None:
        """Queue `price` for `listing` (the profile must send prices)."""
        self.queue.put_price(listing, price, source_ts, waiter)
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
            if not reply.job and len(reply.outcomes) != len(batch.entries):
                raise TransientError(
                    f"{lane.name}: {len(reply.outcomes)} outcomes for {len(batch.entries)} changes"
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
            "%s: %s (%d items queued again)", self.metrics.channel, reason, len(batch.entries)
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
        for part, reason in done.refused:
            self.alert(part.listing, _what(part) + reason)
        for part, reason in done.retry_alerts:
            self.alert(
                part.listing, f"{_what(part)}not applied after {part.attempt} attempts: {reason}"
            )
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
            if len(reply.outcomes) == len(batch.entries):
                self._settled(batch, reply)
                self._wake.set()
                return
            log.warning(
                "%s: job %s reported %d outcomes for %d changes",
                self.metrics.channel,
                job,
                len(reply.outcomes),
                len(batch.entries),
            )
            break
        else:
            self.alert(None, f"{self.profile.platform} job {job} unfinished after {patience:.0f} s")
        self.queue.give_back(batch, self.clock(), backoff=True)
        self._wake.set()


def _what(item: _Pending) -> str:
    """How an alert names a refused price (a quantity's alert stays the platform's
    reason alone)."""
    return f"price {item.price} of {item.listing.sku}: " if isinstance(item, _PriceItem) else ""


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _unexpected(platform: str, lane: str, exc: Exception) -> str:
    return (
        f"{platform} {lane}: the reply could not be read ({type(exc).__name__}); "
        "the changes are sent again, see the gateway log"
    )
