"""Connector acknowledgements and feed staleness.

Connectors acknowledge `{p}.qty.<channel>` messages on `{p}.ack.<channel>`. A
channel with no good ack for its `stale_after_s` is marked stale in the engine
(it is then shown 0 where ATS is under its `pause_below`) and alerted once;
a good ack clears it. The feed's age counts from the platform's acceptance
(`accepted_ts`) when the ack says when that was, else from the ack's arrival; the
items an ack reports applied or refused are counted per channel, and the time from
the message to its acceptance is a push lag (`push_lag.py`). The stock a marketplace
holds for its promotions, which an ack's `held` reports, is kept in the engine per
channel and stock key, for `explain`.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio
import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from invsync.events import Alert, ChannelAck, encode_json
from invsync.service.metrics import Metrics
from invsync.service.outbox import Outbox
from invsync.service.push_lag import PushLags
from invsync.service.subjects import UNKNOWN_CHANNEL_ERROR, Subjects, reply_inbox

if TYPE_CHECKING:
    from invsync.engine import Engine

log = logging.getLogger("invsync.service")

_ACK = msgspec.json.Decoder(ChannelAck)


def accepted_at(ack: ChannelAck, received: float) -> float:
    """When the platform accepted what `ack` acknowledges, on the monotonic clock of
    `received` (the ack's arrival): its `accepted_ts` when given, else the arrival. A
    connector's clock ahead of ours cannot make a feed look fresher than the arrival."""
    if ack.accepted_ts is None:
        return received
    behind = (datetime.now(UTC) - ack.accepted_ts).total_seconds()
    return received - max(behind, 0.0)


class FeedMonitor:
    def __init__(
        self,
        nc: Client,
        subjects: Subjects,
        engine: Engine,
        metrics: Metrics,
        outbox: Outbox,
        push_lags: PushLags | None = None,
        *,
        partition: int = 0,
    ) -> None:
        """`partition`: only acks of this partition's messages count here."""
        self.nc = nc
        self.partition = partition
        self.push_lags = push_lags
        self.subjects = subjects
        self.engine = engine
        self.metrics = metrics
        self.outbox = outbox
        started = time.monotonic()
        # A channel that never acknowledged counts from service start.
        self.last_good_ack: dict[str, float] = dict.fromkeys(engine.policy.channels, started)
        self.stale: set[str] = set()
        self._sub: Subscription | None = None

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(self.subjects.acks, cb=self._on_ack)

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None

    async def _on_ack(self, msg: Msg) -> None:
        channel = msg.subject.rsplit(".", 1)[-1]
        if channel not in self.engine.policy.channels:
            # Kept out of last_good_ack, which would grow by every made-up name.
            reply = reply_inbox(msg.reply)
            if reply:
                await self.nc.publish(
                    reply, encode_json({"ok": False, "error": UNKNOWN_CHANNEL_ERROR})
                )
            return
        try:
            ack = _ACK.decode(msg.data)
        except msgspec.DecodeError:
            log.warning("malformed ack on %s", msg.subject)
            return
        if ack.partition != self.partition:
            return  # another partition's message, with its own `seq`s
        self.acknowledged(channel, ack, time.monotonic())

    def acknowledged(self, channel: str, ack: ChannelAck, received: float) -> None:
        """Count an ack of a policy channel that arrived at monotonic time `received`;
        a good one makes the feed fresh as of the platform's acceptance. An ack for an
        older message, arriving late, never makes the feed older."""
        if ack.ok:
            # A channel a reload added has no entry yet.
            since = self.last_good_ack.get(channel, -math.inf)
            self.last_good_ack[channel] = max(since, accepted_at(ack, received))
            if self.push_lags is not None and ack.accepted_ts is not None:
                self.push_lags.accepted(channel, ack.seq, ack.accepted_ts)
        else:
            log.warning("channel %s refused seq %d: %s", channel, ack.seq, ack.error)
        if ack.items_ok:
            self.metrics.ack_items.labels(channel, "ok").inc(ack.items_ok)
        if ack.items_failed:
            self.metrics.ack_items.labels(channel, "failed").inc(ack.items_failed)
        for held in ack.held or ():
            self.engine.set_platform_hold(channel, held.sku, held.condition, held.qty, held.reason)

    def check(self, now: float) -> None:
        """Update feed ages and flip staleness where the threshold was crossed."""
        policy = self.engine.policy
        for channel in policy.channels:
            age = now - self.last_good_ack.setdefault(channel, now)
            self.metrics.feed_age.labels(channel).set(age)
            is_stale = age > policy.stale_after_s(channel)
            if is_stale == (channel in self.stale):
                continue
            self.engine.set_channel_stale(channel, is_stale)
            if is_stale:
                self.stale.add(channel)
                self.outbox.alerts.append(
                    Alert(
                        kind="feed_stale",
                        sku=None,
                        channel=channel,
                        detail=f"no good ack from {channel} for {age:.0f} s",
                        ts=datetime.now(UTC),
                    )
                )
            else:
                self.stale.discard(channel)
                log.info("channel %s feed is fresh again", channel)

    async def run(self, interval_s: float = 1.0) -> None:
        while True:
            await anyio.sleep(interval_s)
            self.check(time.monotonic())
