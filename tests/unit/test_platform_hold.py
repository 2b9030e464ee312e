"""Stock a platform holds for its promotions (Shopee's reserved, Lazada's locked stock):
the scheduler never sends below it, answers the waiters once the floor landed, reports
each hold once per change, and offers invsync's own quantity again so a promotion's end
is noticed."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest
from prometheus_client import CollectorRegistry

from invsync.gateway.metrics import GatewayMetrics
from invsync.gateway.platforms.base import Outcome
from invsync.gateway.scheduler import Batch, PushQueue, Scheduler
from tests.gateway.fake_profile import FakeClock, FakeLane, FakeProfile, listing, per_item_lane

TS = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def take(queue: PushQueue, now: float) -> Batch:
    batch = queue.take(now)
    assert isinstance(batch, Batch), f"nothing to send, wait {batch}"
    return batch


def test_a_held_refusal_is_sent_again_at_the_floor_and_answered_once_it_lands() -> None:
    clock = FakeClock()
    queue = PushQueue(FakeProfile([per_item_lane()]), clock, None, random.Random(7))
    heard: list[bool] = []
    queue.put(listing("A"), 4, TS, lambda ok, _: heard.append(ok))
    first = take(queue, clock())
    queue.sent(first)
    done = queue.settle(first, [Outcome(applied=False, reason="held", held=10)], clock())
    assert [(item.listing.sku, sent, held) for item, sent, held, _ in done.held] == [("A", 4, 10)]
    assert heard == [] and done.refused == []
    again = take(queue, clock())  # at once, no backoff
    assert [item.qty for item in again.items] == [10]
    queue.sent(again)
    queue.settle(again, [Outcome(applied=True)], clock())
    assert heard == [True] and queue.known["A-new"] == 10


def test_a_refusal_whose_hold_is_not_above_the_quantity_is_a_plain_refusal() -> None:
    clock = FakeClock()
    queue = PushQueue(FakeProfile([per_item_lane()]), clock, None, random.Random(7))
    heard: list[tuple[bool, str | None]] = []
    queue.put(listing("A"), 12, TS, lambda ok, why: heard.append((ok, why)))
    batch = take(queue, clock())
    queue.sent(batch)
    done = queue.settle(batch, [Outcome(applied=False, reason="E: no", held=12)], clock())
    assert done.held == [] and heard == [(False, "E: no")]
    assert queue.backlog() == 0


class Run:
    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self.alerts: list[str] = []
        self.holds: list[tuple[str, int, int]] = []
        self.heard: list[bool] = []

    def put(self, sku: str, qty: int) -> None:
        self.scheduler.put(listing(sku), qty, TS, lambda ok, _: self.heard.append(ok))

    async def until(self, predicate: Any, timeout_s: float = 10.0) -> None:
        with anyio.fail_after(timeout_s):
            while not predicate():
                await anyio.sleep(0.01)


@asynccontextmanager
async def running(lane: FakeLane, hold_recheck_s: float = 300.0) -> AsyncIterator[Run]:
    run: Run
    scheduler = Scheduler(
        FakeProfile([lane]),
        None,  # type: ignore[arg-type]
        GatewayMetrics(CollectorRegistry()).channel("c"),
        lambda _, reason: run.alerts.append(reason),
        report_hold=lambda item, decided, held, _: run.holds.append((item.sku, decided, held)),
        hold_recheck_s=hold_recheck_s,
    )
    run = Run(scheduler)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(scheduler.run)
        yield run
        tasks.cancel_scope.cancel()


@pytest.mark.anyio
async def test_max_of_decided_and_held_is_sent_and_each_hold_reported_once() -> None:
    lane = per_item_lane()
    lane.held["A-new"] = 10
    async with running(lane) as run:
        run.put("A", 4)
        await run.until(lambda: run.heard == [True])
        assert lane.shown["A-new"] == 10 and run.alerts == []
        run.put("A", 3)  # still under the same hold: nothing new to report
        await run.until(lambda: run.heard == [True, True])
        lane.held["A-new"] = 8  # the promotion sold some
        run.put("A", 2)
        await run.until(lambda: len(run.heard) == 3)
        run.put("A", 15)  # above the hold: sent as decided, the hold stays
        await run.until(lambda: len(run.heard) == 4)
        assert lane.shown["A-new"] == 15
        assert run.holds == [("A", 4, 10), ("A", 2, 8)]
        assert [keys for keys in lane.sent_keys()] == [["A-new"]] * 7


@pytest.mark.anyio
async def test_a_held_listing_is_offered_invsyncs_quantity_again_until_the_hold_ends() -> None:
    lane = per_item_lane()
    lane.held["A-new"] = 10
    async with running(lane, hold_recheck_s=0.1) as run:
        run.put("A", 4)
        await run.until(lambda: run.heard == [True])
        assert lane.shown["A-new"] == 10
        del lane.held["A-new"]  # the promotion ended; nothing else changes
        await run.until(lambda: lane.shown["A-new"] == 4)
        assert run.holds == [("A", 4, 10), ("A", 4, 0)]
        assert run.scheduler.holds == {}
        sent = len(lane.requests)
        await anyio.sleep(0.3)
        assert len(lane.requests) == sent  # no hold left: nothing offered again
