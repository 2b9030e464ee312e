"""Sends a scenario to a running service over NATS at the scenario's pace.

Events are published to their stream subjects (with `Nats-Msg-Id`, so a
resend is de-duplicated) and reservations go out by request/reply, many at a
time. Everything leaves on one connection, and per SKU in an order the
checker can replay exactly (see `_Lane`). Every loop here is bounded by a
count and a deadline.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import anyio
import anyio.lowlevel
import msgspec
from anyio.abc import TaskGroup
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from invsync.flashsale.checker import Checker, SkuState
from invsync.flashsale.observe import DepletionRecorder, FeedRecorder
from invsync.flashsale.scenario import Scenario, Step

REQUEST_TIMEOUT_S = 2.0
SETUP_BATCH = 500
SETTLE_TIMEOUT_S = 15.0
QUIET_S = 0.5
QUERY_CONCURRENCY = 16
QUERY_ALL_TIMEOUT_S = 60.0
PROGRESS_EVERY_S = 0.25
# Holds expire on the service's clock ticks (every second): wait this long past the last one.
EXPIRY_GRACE_S = 1.5
# A service too slow to keep up must not stretch the run without bound.
OVERRUN_S = 5.0
YIELD_EVERY = 32
MAX_IN_FLIGHT = 256
# Longest sleep of the send loop, so a follow-up scheduled meanwhile is not late.
MAX_NAP_S = 0.01
# A purchase later than this before its hold expires is not sent: the hold might
# already be gone on one side and not the other.
HOLD_MARGIN_S = 1.0

Progress = Callable[[float, int, float, float | None], None]


class Marketplace(Protocol):
    """Where a channel's marketplace orders are sales instead (the sandbox): its orders
    come back later, through `Driver.place_order`."""

    def sells(self, channel: str) -> bool: ...

    async def sell(self, channel: str, sku: str, qty: int) -> bool: ...


def now_ts() -> str:
    """The current time as RFC 3339 UTC with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class DriveStats:
    """What the driver did; rates are over the sale itself, setup excluded."""

    offered: int = 0
    events: int = 0
    requests: int = 0
    granted: int = 0
    refused: int = 0
    unanswered: int = 0
    primary_sent: int = 0
    unsent: int = 0
    dropped_follow_ups: int = 0
    sale_s: float = 0.0
    last_expiry: float = 0.0

    @property
    def sent(self) -> int:
        return self.events + self.requests

    @property
    def achieved_rate(self) -> float:
        """Scheduled steps sent per second (follow-ups excluded, to compare with offered)."""
        return self.primary_sent / self.sale_s if self.sale_s > 0 else 0.0

    @property
    def message_rate(self) -> float:
        """Every message sent per second, follow-ups included."""
        return self.sent / self.sale_s if self.sale_s > 0 else 0.0


@dataclass(frozen=True)
class _Job:
    """A step on its way out; a hold's purchase carries the moment it becomes too late."""

    step: Step
    deadline: float | None = None


@dataclass
class _Lane:
    """What one SKU is waiting for.

    Requests on a SKU may be in flight together: the service answers them in
    log order, and the checker replays them in the order the answers arrive.
    An event on that SKU waits until none is in flight (and everything behind
    it waits too), so its place in the log relative to them is certain; a
    neutral event (see `Step`) need not. SKUs share nothing, so other SKUs go
    on meanwhile.
    """

    waiting: deque[_Job] = field(default_factory=deque)
    in_flight: int = 0


class Driver:
    """One run against one service: setup, sale, settle, final query."""

    def __init__(
        self,
        nc: Client,
        scenario: Scenario,
        checker: Checker,
        feed: FeedRecorder,
        reserve: DepletionRecorder,
        *,
        prefix: str = "inv",
        market: Marketplace | None = None,
    ) -> None:
        self._nc = nc
        self._market = market
        self._scenario = scenario
        self._checker = checker
        self._feed = feed
        self._reserve = reserve
        self._prefix = prefix
        self.stats = DriveStats(offered=scenario.offered)
        self._lanes: defaultdict[str, _Lane] = defaultdict(_Lane)
        self._timers: list[tuple[float, int, _Job]] = []
        self._timer_order = itertools.count()
        self._abandoned: set[str] = set()
        self._in_flight = 0
        self._waiting = 0
        self._group: TaskGroup | None = None

    async def watch_feeds(self) -> None:
        """Start recording `inv.qty.*`; call before the setup so nothing is missed."""

        async def on_quantities(msg: Msg) -> None:
            channel = msg.subject.rsplit(".", 1)[-1]
            self._feed.record(channel, msg.data, time.time())

        await self._nc.subscribe(f"{self._prefix}.qty.*", cb=on_quantities)

    async def setup(self) -> None:
        """Send the opening stock as bulk batches and wait until the service has it."""
        events = self._scenario.setup
        for start in range(0, len(events), SETUP_BATCH):
            ts = now_ts()
            inner = [{**event, "ts": ts} for event in events[start : start + SETUP_BATCH]]
            batch = {
                "type": "batch",
                "event_id": f"{inner[0]['event_id']}-batch",
                "ts": ts,
                "events": inner,
            }
            payload = msgspec.json.encode(batch)
            self._checker.sent(payload)
            await self._publish(self._scenario.stock_subject, str(batch["event_id"]), payload)
        await self._nc.flush()
        if events:
            last = events[-1]
            await self._await_on_hand(str(last["sku"]), int(last["on_hand"]))

    async def _await_on_hand(self, sku: str, on_hand: int) -> None:
        with anyio.fail_after(SETTLE_TIMEOUT_S):
            while True:
                state = await self.query(sku)
                if state is not None and state.on_hand == on_hand:
                    return
                await anyio.sleep(0.05)

    async def sale(self, progress: Progress | None = None) -> DriveStats:
        """Send every step on schedule; follow-ups due after the sale are dropped."""
        offered = self._scenario.offered
        start = time.monotonic()
        end = start + self._scenario.config.duration_s
        steps = iter(self._scenario.steps)
        pending = next(steps, None)
        next_report = start
        behind = itertools.count(1)
        async with anyio.create_task_group() as group:
            self._group = group
            while True:
                now = time.monotonic()
                if now >= next_report:
                    next_report = now + PROGRESS_EVERY_S
                    self._sample(now - start, progress)
                if now > end + OVERRUN_S:
                    self.stats.unsent = offered - self.stats.primary_sent
                    self.stats.unanswered += self._in_flight
                    group.cancel_scope.cancel()
                    break
                primary_due = start + pending.at if pending is not None else math.inf
                if self._timers and self._timers[0][0] > end:
                    # Everything left on the timers falls after the sale.
                    self.stats.dropped_follow_ups += len(self._timers)
                    self._timers.clear()
                timer_due = self._timers[0][0] if self._timers else math.inf
                due = min(primary_due, timer_due)
                if due == math.inf and not self._in_flight and not self._waiting:
                    break
                if due > now or self._in_flight >= MAX_IN_FLIGHT:
                    await self._nc.flush()
                    await anyio.sleep(min(max(due - now, 0.001), MAX_NAP_S))
                    continue
                if pending is not None and primary_due <= timer_due:
                    job = _Job(pending)
                    pending = next(steps, None)
                    self.stats.primary_sent += 1
                else:
                    job = heapq.heappop(self._timers)[2]
                if self._sold_on_marketplace(job.step):
                    group.start_soon(self._sell, job.step)
                else:
                    await self._dispatch(job)
                if next(behind) % YIELD_EVERY == 0:
                    # Behind schedule: still let replies, the feed recorder (and an
                    # embedded service on this event loop) run.
                    await anyio.lowlevel.checkpoint()
        await self._nc.flush()
        self.stats.sale_s = max(time.monotonic() - start, 1e-9)
        self._sample(self.stats.sale_s, progress)
        return self.stats

    def _sold_on_marketplace(self, step: Step) -> bool:
        """A marketplace order on a channel the marketplace itself sells on."""
        body = step.body
        return (
            self._market is not None
            and body["type"] == "order.placed"
            and not step.neutral
            and self._market.sells(str(body["channel"]))
        )

    async def _sell(self, step: Step) -> None:
        """The buyer checks out on the marketplace; the order it owes arrives later. Its
        cancellation (a follow-up naming the scenario's order id) is not sent."""
        assert self._market is not None
        line = step.body["lines"][0]
        await self._market.sell(str(step.body["channel"]), str(line["sku"]), int(line["qty"]))

    async def place_order(self, body: dict[str, Any]) -> None:
        """An `order.placed` a marketplace reports after its order delay; it keeps its `ts`
        (when it sold) and waits its turn on its SKU like any event."""
        sku = str(body["lines"][0]["sku"])
        await self._dispatch(_Job(Step(0.0, f"order.{body['channel']}", body, sku)))

    def _sample(self, elapsed: float, progress: Progress | None) -> None:
        self._reserve.sample(elapsed, (self._checker.ats(sku) for sku in self._scenario.hot))
        if progress is not None:
            rate = self.stats.sent / elapsed if elapsed > 0 else 0.0
            progress(elapsed, self.stats.sent, rate, self._feed.p99_ms())

    async def _dispatch(self, job: _Job) -> None:
        """Send now, or queue behind what its SKU is waiting for (see `_Lane`)."""
        lane = self._lanes[job.step.sku]
        if job.step.neutral:
            await self._send_event(job)
            return
        if lane.waiting or (lane.in_flight and not job.step.is_request):
            lane.waiting.append(job)
            self._waiting += 1
            return
        await self._start(lane, job)

    async def _start(self, lane: _Lane, job: _Job) -> None:
        if not job.step.is_request:
            await self._send_event(job)
            return
        lane.in_flight += 1
        self._in_flight += 1
        assert self._group is not None
        self._group.start_soon(self._reserve_then_drain, lane, job)

    async def _drain(self, lane: _Lane) -> None:
        """After a reply: send what waited, up to the next event that must wait again."""
        while lane.waiting:
            if not lane.waiting[0].step.is_request and lane.in_flight:
                return
            self._waiting -= 1
            await self._start(lane, lane.waiting.popleft())

    def _schedule(self, steps: Sequence[Step], hold_deadline: float | None = None) -> None:
        now = time.monotonic()
        for step in steps:
            placing = hold_deadline is not None and step.body["type"] == "order.placed"
            job = _Job(step, hold_deadline if placing else None)
            heapq.heappush(self._timers, (now + step.at, next(self._timer_order), job))

    async def _send_event(self, job: _Job) -> None:
        step = job.step
        order_id = step.body.get("order_id")
        if order_id in self._abandoned or (
            job.deadline is not None and time.monotonic() > job.deadline
        ):
            # Too late to convert the hold for sure: the shopper walked away, and
            # nothing more is sent for the order.
            self._abandoned.add(str(order_id))
            self.stats.dropped_follow_ups += 1
            return
        body = {"ts": now_ts(), **step.body}
        payload = msgspec.json.encode(body)
        # Recorded before the publish call queues the bytes: the replay's order is
        # the wire's order.
        self._checker.sent(payload)
        await self._publish(step.subject, str(body["event_id"]), payload)
        self.stats.events += 1
        self._schedule(step.then)

    async def _reserve_then_drain(self, lane: _Lane, job: _Job) -> None:
        step = job.step
        try:
            hold_s = float(step.body["hold_seconds"])
            hold_deadline = time.monotonic() + hold_s - HOLD_MARGIN_S
            # Even an unanswered request may hold units until then.
            self.stats.last_expiry = max(self.stats.last_expiry, time.time() + hold_s)
            payload = msgspec.json.encode({**step.body, "ts": now_ts()})
            self.stats.requests += 1
            reply = await self._request(f"{self._prefix}.{step.subject}", payload)
            if reply is None:
                # Unknown outcome: a hold granted but unanswered simply expires, and
                # the replay (which skips it) has more room, never less.
                self.stats.unanswered += 1
            else:
                self._record_reply(step, payload, reply, hold_deadline)
        finally:
            lane.in_flight -= 1
            self._in_flight -= 1
        await self._drain(lane)

    def _record_reply(
        self, step: Step, payload: bytes, reply: dict[str, Any], hold_deadline: float
    ) -> None:
        # Any clock tick the service applied before deciding is older than this moment.
        self._checker.answered(payload, reply, decided_by=datetime.now(UTC))
        if not reply.get("ok"):
            self.stats.refused += 1
            return
        self.stats.granted += 1
        self._schedule(step.then, hold_deadline)

    async def _publish(self, subject: str, event_id: str, payload: bytes) -> None:
        """Publish to a stream subject, de-duplicated by the event id."""
        headers = {"Nats-Msg-Id": event_id}
        await self._nc.publish(f"{self._prefix}.{subject}", payload, headers=headers)

    async def _request(self, subject: str, payload: bytes) -> dict[str, Any] | None:
        try:
            msg = await self._nc.request(subject, payload, timeout=REQUEST_TIMEOUT_S)
        except (NatsTimeoutError, NoRespondersError):
            return None
        reply: dict[str, Any] = msgspec.json.decode(msg.data)
        return reply

    async def settle(self) -> None:
        """Wait until every hold is past expiry on the service's clock and the feeds are quiet."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        expiry_wait = self.stats.last_expiry + EXPIRY_GRACE_S - time.time()
        if expiry_wait > 0:
            await anyio.sleep(min(expiry_wait, deadline - time.monotonic()))
        while time.monotonic() < deadline and time.time() - self._feed.last_received < QUIET_S:
            await anyio.sleep(0.1)

    async def query(self, sku: str) -> SkuState | None:
        """The service's explanation of one SKU (None when it does not answer with one)."""
        query = msgspec.json.encode({"sku": sku})
        reply = await self._request(f"{self._prefix}.query.sku", query)
        if reply is None or "on_hand" not in reply:
            return None
        return SkuState.from_explain(reply)

    async def query_all(self, skus: Iterable[str]) -> dict[str, SkuState | None]:
        """The service's final numbers per SKU, a few requests in flight at a time."""
        results: dict[str, SkuState | None] = {}
        limiter = anyio.Semaphore(QUERY_CONCURRENCY)

        async def one(sku: str) -> None:
            async with limiter:
                results[sku] = await self.query(sku)

        # A service that stopped answering must not hold the run for one timeout per SKU;
        # SKUs left unasked count as unexplained.
        with anyio.move_on_after(QUERY_ALL_TIMEOUT_S):
            async with anyio.create_task_group() as group:
                for sku in skus:
                    group.start_soon(one, sku)
        return results
