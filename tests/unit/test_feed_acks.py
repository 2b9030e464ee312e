"""Connector acks: the feed age counts from the platform's acceptance, items are counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from nats.aio.client import Client

from invsync import Engine, Policy
from invsync.events import ChannelAck
from invsync.service.feeds import FeedMonitor
from invsync.service.metrics import Metrics
from invsync.service.outbox import Outbox
from invsync.service.subjects import Subjects

POLICY = """
[[tiers]]
tier = 1
[[locations]]
id = "wh"
kind = "warehouse"
[[channels]]
id = "shop"
tier = 1
stale_after_s = 60
"""


def monitor() -> tuple[FeedMonitor, Metrics]:
    engine = Engine(Policy.from_toml(POLICY))
    metrics = Metrics()
    metrics.declare_channels(engine.policy.channels, engine.policy.tiers)
    # The monitor talks to NATS only in start/stop and for made-up channels.
    feeds = FeedMonitor(cast(Client, None), Subjects(), engine, metrics, Outbox())
    return feeds, metrics


def age(feeds: FeedMonitor, metrics: Metrics, now: float) -> float:
    feeds.check(now)
    value = metrics.registry.get_sample_value(
        "invsync_channel_feed_age_seconds", {"channel": "shop"}
    )
    assert value is not None
    return value


def ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


def items(metrics: Metrics, result: str) -> Any:
    return metrics.registry.get_sample_value(
        "invsync_channel_ack_items_total", {"channel": "shop", "result": result}
    )


def test_an_ack_without_accepted_ts_counts_from_its_arrival() -> None:
    feeds, metrics = monitor()
    received = feeds.last_good_ack["shop"] + 100
    feeds.acknowledged("shop", ChannelAck(seq=1, ok=True), received)
    assert age(feeds, metrics, received + 5) == pytest.approx(5)
    assert items(metrics, "ok") == 0 and items(metrics, "failed") == 0


def test_the_feed_age_counts_from_when_the_platform_accepted() -> None:
    feeds, metrics = monitor()
    received = feeds.last_good_ack["shop"] + 100
    feeds.acknowledged("shop", ChannelAck(seq=1, ok=True, accepted_ts=ago(40)), received)
    assert age(feeds, metrics, received) == pytest.approx(40, abs=1)
    # 40 s + 30 s with no newer acceptance: past stale_after_s 60.
    feeds.check(received + 30)
    assert feeds.stale == {"shop"}


def test_a_connector_clock_ahead_or_a_late_ack_cannot_move_the_feed_age_wrongly() -> None:
    feeds, metrics = monitor()
    received = feeds.last_good_ack["shop"] + 100
    ahead = ChannelAck(seq=1, ok=True, accepted_ts=ago(-3600))
    feeds.acknowledged("shop", ahead, received)
    assert age(feeds, metrics, received + 2) == pytest.approx(2)
    late = ChannelAck(seq=0, ok=True, accepted_ts=ago(50))
    feeds.acknowledged("shop", late, received + 2)
    assert age(feeds, metrics, received + 2) == pytest.approx(2)


def test_acked_items_are_counted_and_a_refusal_keeps_the_feed_age() -> None:
    feeds, metrics = monitor()
    received = feeds.last_good_ack["shop"] + 100
    feeds.acknowledged("shop", ChannelAck(seq=1, ok=True, items_ok=3), received)
    refused = ChannelAck(seq=2, ok=False, error="429", items_ok=1, items_failed=2)
    feeds.acknowledged("shop", refused, received + 10)
    assert items(metrics, "ok") == 4
    assert items(metrics, "failed") == 2
    assert age(feeds, metrics, received + 10) == pytest.approx(10)
