"""The floor a channel's push latency is judged against (the `InvsyncChannelPushSlow`
alert): the documented floor of the slowest lane that accepted quantities in the last
ten minutes, so a channel whose backlog goes by a 30-minute feed is not called slow
for the feed's documented time, and one back on its per-item lane is judged by that."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio
import pytest
from prometheus_client import CollectorRegistry

from invsync.gateway.metrics import FLOOR_WINDOW_S, GatewayMetrics
from invsync.gateway.platforms.base import LaneLimits
from invsync.gateway.scheduler import Scheduler
from tests.gateway.fake_profile import FakeLane, FakeProfile, listing, per_item_lane

FLOOR = "invsync_channel_push_floor_seconds"


def floor(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value(FLOOR, {"channel": "c"})


def test_a_lane_floor_is_one_budget_slot_plus_the_jobs_processing_time() -> None:
    assert LaneLimits(rate=5, burst=10, batch=1).floor_s == pytest.approx(0.2)
    walmart_feed = LaneLimits(rate=10 / 3600, burst=10, batch=50_000, processing_s=1800)
    assert walmart_feed.floor_s == pytest.approx(360 + 1800)


def test_the_floor_is_the_slowest_lane_that_accepted_within_the_window() -> None:
    registry = CollectorRegistry()
    metrics = GatewayMetrics(registry).channel("c")
    metrics.accepted_on(0.2, now=0.0)
    assert floor(registry) == 0.2
    metrics.accepted_on(2160.0, now=10.0)
    metrics.accepted_on(0.2, now=20.0)
    assert floor(registry) == 2160.0  # the feed's quantities are still in the window
    metrics.accepted_on(0.2, now=10.0 + FLOOR_WINDOW_S + 1)
    assert floor(registry) == 0.2


@pytest.mark.anyio
async def test_the_scheduler_reports_the_floor_of_the_lane_that_applied() -> None:
    registry = CollectorRegistry()
    fast = per_item_lane(rate=0.001, burst=0.001)  # never has budget: all goes by feed
    feed_limits = LaneLimits(rate=100, burst=100, batch=1000, processing_s=0.01)
    feed = FakeLane("feed", feed_limits, asynchronous=True)
    heard: list[bool] = []
    scheduler = Scheduler(
        FakeProfile([fast, feed]),  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        GatewayMetrics(registry).channel("c"),
        lambda _listing, _reason: None,
    )
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(scheduler.run)
        scheduler.queue.known["A-new"] = 0
        scheduler.put(listing("A"), 5, datetime.now(UTC), lambda ok, _why: heard.append(ok))
        with anyio.fail_after(10):
            while not heard:
                await anyio.sleep(0.01)
        tasks.cancel_scope.cancel()
    assert heard == [True]
    assert floor(registry) == pytest.approx(feed_limits.floor_s)
