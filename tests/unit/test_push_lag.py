"""Push lags measured from acks reach the log on a tick, and the core sizes buffers
with them, so a replay of the log sizes them the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

from nats.aio.client import Client

from invsync import Engine, Policy
from invsync.events import ChannelAck
from invsync.service.clock import make_tick
from invsync.service.feeds import FeedMonitor
from invsync.service.metrics import Metrics
from invsync.service.outbox import Outbox
from invsync.service.push_lag import MIN_ACKS, WINDOW, PushLags
from invsync.service.subjects import Subjects
from tests.unit.test_adaptive_buffers import POLICY, channel, shopify_sells_one_a_second, stocked

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def acked(lags: PushLags, monitor: FeedMonitor, seconds: list[float]) -> None:
    for seq, lag in enumerate(seconds, 1):
        sent = T0 + timedelta(seconds=seq)
        lags.sent("walmart", seq, sent)
        ack = ChannelAck(seq=seq, ok=True, accepted_ts=sent + timedelta(seconds=lag))
        monitor.acknowledged("walmart", ack, 0.0)


def monitor(lags: PushLags) -> FeedMonitor:
    engine = Engine(Policy.from_toml(POLICY))
    metrics = Metrics()
    metrics.declare_channels(engine.policy.channels, engine.policy.tiers)
    return FeedMonitor(cast(Client, None), Subjects(), engine, metrics, Outbox(), lags)


def test_an_acks_accepted_ts_against_its_messages_ts_is_a_push_lag() -> None:
    lags = PushLags()
    feeds = monitor(lags)
    acked(lags, feeds, [30.0] * (MIN_ACKS - 1))
    assert lags.pending() == {}, "too few acks to be a measurement"
    acked(lags, feeds, [30.0] * 99 + [600.0])
    assert lags.p99("walmart") == 30.0
    acked(lags, feeds, [600.0] * 5)
    assert lags.p99("walmart") == 600.0


def test_the_p99_is_of_the_last_window_of_acks() -> None:
    lags = PushLags()
    feeds = monitor(lags)
    acked(lags, feeds, [600.0] * WINDOW)
    assert lags.p99("walmart") == 600.0
    acked(lags, feeds, [30.0] * (WINDOW - 20) + [45.0] * 20)
    assert lags.p99("walmart") == 45.0, "the slow acks fell out of the window"


def test_a_tick_carries_a_p99_once_until_it_moves() -> None:
    lags = PushLags()
    acked(lags, monitor(lags), [45.0] * MIN_ACKS)
    pending = lags.pending()
    assert pending == {"walmart": 45.0}
    tick = make_tick(T0, pending)
    assert tick.push_lag_s == {"walmart": 45.0}
    lags.written(pending)
    assert lags.pending() == {}
    assert make_tick(T0, lags.pending()).push_lag_s is None


def test_an_unknown_or_forgotten_message_measures_nothing() -> None:
    lags = PushLags()
    lags.accepted("walmart", 7, T0)
    assert lags.p99("walmart") is None


def test_the_measured_lag_sizes_walmarts_buffer_where_it_sits_in_the_log() -> None:
    engine = stocked(POLICY)
    shopify_sells_one_a_second(engine, 30)
    with_policy_lag = channel(engine, "walmart")["buffer_auto"]["buffer"]
    engine.apply(make_tick(T0 + timedelta(seconds=31), {"walmart": 90.0}))
    engine.apply(make_tick(T0 + timedelta(seconds=40)))
    walmart = channel(engine, "walmart")["buffer_auto"]
    assert walmart["push_lag_s"] == 90.0 and walmart["push_lag_measured"]
    assert walmart["buffer"] < with_policy_lag / 10
