"""The scheduler against a platform that misbehaves: throttles, fails, refuses the
credentials, refuses items, and applies only part of an asynchronous job. Each case
ends in the quantity applied or in an alert with the platform's reason."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest
from prometheus_client import CollectorRegistry

from invsync.gateway.metrics import GatewayMetrics
from invsync.gateway.platforms.base import (
    AuthError,
    BatchRefused,
    BudgetReport,
    LaneLimits,
    Listing,
    Throttled,
    TransientError,
)
from invsync.gateway.scheduler import Scheduler
from tests.gateway.fake_profile import FakeLane, FakeProfile, listing, per_item_lane

pytestmark = pytest.mark.anyio

TS = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


class Run:
    def __init__(self, scheduler: Scheduler, registry: CollectorRegistry) -> None:
        self.scheduler = scheduler
        self.registry = registry
        self.alerts: list[tuple[str | None, str]] = []
        self.heard: list[tuple[str, bool, str | None]] = []

    def put(self, sku: str, qty: int) -> None:
        self.scheduler.put(listing(sku), qty, TS, lambda ok, why: self.heard.append((sku, ok, why)))

    def requests(self, result: str) -> float:
        value = self.registry.get_sample_value(
            "invsync_channel_push_requests_total", {"channel": "c", "result": result}
        )
        return value or 0.0

    async def until(self, predicate: Any, timeout_s: float = 10.0) -> None:
        with anyio.fail_after(timeout_s):
            while not predicate():
                await anyio.sleep(0.01)


@asynccontextmanager
async def running(*lanes: FakeLane) -> AsyncIterator[Run]:
    registry = CollectorRegistry()
    metrics = GatewayMetrics(registry).channel("c")
    run: Run

    def alert(item: Listing | None, reason: str) -> None:
        run.alerts.append((item.sku if item else None, reason))

    scheduler = Scheduler(FakeProfile(list(lanes)), None, metrics, alert)  # type: ignore[arg-type]
    run = Run(scheduler, registry)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(scheduler.run)
        yield run
        tasks.cancel_scope.cancel()


async def test_a_429_is_sent_again_after_retry_after_and_counted() -> None:
    lane = per_item_lane()
    lane.failures = [Throttled("429 QuotaExceeded", BudgetReport(retry_after_s=0.2))]
    async with running(lane) as run:
        started = anyio.current_time()
        run.put("A", 3)
        await run.until(lambda: lane.shown.get("A-new") == 3)
        assert anyio.current_time() - started >= 0.2
        assert run.requests("throttled") == 1 and run.requests("ok") == 1
        assert run.heard == [("A", True, None)]


async def test_5xx_and_time_outs_are_retried_until_applied() -> None:
    lane = per_item_lane()
    lane.failures = [TransientError("HTTP 503"), TimeoutError()]
    async with running(lane) as run:
        run.put("A", 3)
        await run.until(lambda: lane.shown.get("A-new") == 3)
        assert run.requests("error") == 2
        assert run.alerts == []


async def test_refused_credentials_are_alerted_and_the_backlog_kept() -> None:
    lane = per_item_lane()
    lane.failures = [AuthError("token refused; check $AMZ_REFRESH")]
    async with running(lane) as run:
        run.put("A", 3)
        await run.until(lambda: run.alerts)
        assert "check $AMZ_REFRESH" in run.alerts[0][1]
        run.put("B", 4)
        await run.until(lambda: lane.shown == {"A-new": 3, "B-new": 4})
        assert run.requests("auth_error") == 1


async def test_a_refused_item_is_alerted_with_the_platforms_reason_and_not_retried() -> None:
    lane = per_item_lane(batch=5)
    lane.refuse["B-new"] = "25002: quantity out of range"
    async with running(lane) as run:
        run.put("A", 3)
        run.put("B", 10**9)
        await run.until(lambda: len(run.heard) == 2)
        assert ("B", False, "25002: quantity out of range") in run.heard
        assert run.alerts == [("B", "25002: quantity out of range")]
        await anyio.sleep(0.3)
        assert sum(keys.count("B-new") for keys in lane.sent_keys()) == 1


async def test_a_malformed_request_refused_whole_is_alerted_for_each_waiter() -> None:
    lane = per_item_lane()
    lane.failures = [BatchRefused("HTTP 400: body is not valid JSON")]
    async with running(lane) as run:
        run.put("A", 3)
        await run.until(lambda: run.heard)
        assert run.heard == [("A", False, "HTTP 400: body is not valid JSON")]
        assert "HTTP 400" in run.alerts[0][1]


async def test_an_asynchronous_job_acks_only_what_it_applied_and_resends_the_rest() -> None:
    fast = per_item_lane(rate=0.001, burst=0.001)  # never has budget: all goes by feed
    feed = FakeLane(
        "feed", LaneLimits(rate=100, burst=100, batch=1000, processing_s=0.01), asynchronous=True
    )
    feed.retry.add("B-new")  # the feed's report says B was not applied
    feed.polls_until_done = 2
    async with running(fast, feed) as run:
        for sku in ("A", "B"):
            run.scheduler.queue.known[f"{sku}-new"] = 0
            run.put(sku, 5)
        await run.until(lambda: len(run.heard) == 2)
        assert sorted(run.heard) == [("A", True, None), ("B", True, None)]
        assert feed.sent_keys() == [["A-new", "B-new"], ["B-new"]]


async def test_a_profile_that_cannot_read_a_reply_alerts_and_the_change_still_lands() -> None:
    lane = per_item_lane()
    lane.failures = [KeyError("errors")]
    async with running(lane) as run:
        run.put("A", 3)
        await run.until(lambda: lane.shown.get("A-new") == 3)
        assert "KeyError" in run.alerts[0][1]
        assert run.requests("error") == 1
