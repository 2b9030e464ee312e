"""Publishing what changed: channel quantities, routes, alerts, audit, dead letters, replies.

Called once per flush. Quantities first (one message per channel, chunked so a
100,000-SKU cycle count never exceeds the server's payload limit), then prices
(one message per changed price), then the rest, then the replies, so a client that gets a reservation answer can already
see the quantities it caused. A flush is one write to the client (wire.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
from nats.aio.client import Client
from nats.errors import Error as NatsError

from invsync.events import ChannelQuantities, encode_json
from invsync.service.metrics import Metrics
from invsync.service.outbox import Outbox
from invsync.service.push_lag import PushLags
from invsync.service.subjects import Subjects
from invsync.service.wire import PublishBatch

if TYPE_CHECKING:
    from invsync.engine import Engine

log = logging.getLogger("invsync.service")

# ~60 bytes per item: a few hundred KB per message, well under the 1 MB default limit.
MAX_ITEMS_PER_MESSAGE = 5000
# Up to this many items a piece's latencies are observed item by item (numpy's
# per-call cost is larger than the work for a quiet flush's few items).
SMALL_PIECE = 32
# How far past the current `seq` a saved ceiling reaches: one durable write per
# this many messages on a channel, and at most this big a jump after a crash.
SEQ_LEASE = 100_000

# A leader of lease epoch e that took over from a lapsed lease numbers its messages
# from e × 2^EPOCH_SHIFT: above every `seq` an earlier leader can have sent.
EPOCH_SHIFT = 32

SaveCeilings = Callable[[dict[str, int]], Awaitable[None]]


class Publisher:
    """Owns the per-channel `seq` counters, which snapshots persist.

    A `seq` is never used twice, also across a crash: before a channel's `seq`
    passes its saved ceiling, a new ceiling `SEQ_LEASE` further on is saved
    (`save_ceilings`), and a restart starts above the saved ceilings. After a
    crash a connector sees `seq` jump forward; after a clean stop, whose final
    ceilings are the final `seq`s, it sees none.

    Across leaders (leadership.py) the lease's epoch keeps `seq`s apart: a leader
    that took over a lapsed lease of epoch e - 1 numbers from e × 2^32 (`lead`),
    above anything its predecessor, which may still be running, can send; one
    that took a lease released cleanly goes on from the `seq`s handed over. A
    follower publishes nothing and keeps no ceilings.
    """

    def __init__(
        self,
        nc: Client,
        subjects: Subjects,
        metrics: Metrics,
        outbox: Outbox,
        channel_seqs: dict[str, int] | None = None,
        *,
        ceilings: dict[str, int] | None = None,
        save_ceilings: SaveCeilings | None = None,
        push_lags: PushLags | None = None,
        partition: int = 0,
    ) -> None:
        """`partition`: the partition this instance runs; its `seq`s are its own."""
        self.nc = nc
        self.partition = partition
        self.subjects = subjects
        self.metrics = metrics
        self.outbox = outbox
        self._ceilings = dict(ceilings or {})
        self._save_ceilings = save_ceilings
        seqs = dict(channel_seqs or {})
        self.channel_seqs: dict[str, int] = {
            channel: max(seqs.get(channel, 0), self._ceilings.get(channel, 0))
            for channel in seqs.keys() | self._ceilings.keys()
        }
        # Stock keys whose quantities went out, for the reserve-depletion sampler.
        self.touched: set[int] = set()
        self._batch = PublishBatch(nc)
        # When each quantity message went out, for the push lag its ack measures.
        self._push_lags = push_lags
        self._qty_subjects: dict[str, str] = {}
        # Where a channel with no `seq` yet starts counting (the epoch's base).
        self._first_seq_after = 0
        self.live = True
        self._confirmed: Callable[[], bool] = lambda: True

    def lead(
        self, epoch: int, handover: dict[str, int] | None, confirmed: Callable[[], bool]
    ) -> None:
        """Publish from now on, as the leader of lease `epoch`, while `confirmed()`
        (output is held, not lost, while it is not)."""
        if handover is not None:
            for channel, seq in handover.items():
                self.channel_seqs[channel] = max(self.channel_seqs.get(channel, 0), seq)
        elif epoch > 0:
            base = epoch << EPOCH_SHIFT
            self._first_seq_after = base
            for channel, seq in self.channel_seqs.items():
                self.channel_seqs[channel] = max(seq, base)
        self._confirmed = confirmed
        self.live = True

    def follow(self) -> None:
        """Publish nothing from now on."""
        self.live = False

    @property
    def takes_frames(self) -> bool:
        """Whether routes may come as PUB frames (`Engine.apply_all(route_prefix=...)`)."""
        return self._batch.takes_frames

    async def flush(self, engine: Engine) -> int:
        """Publish everything pending, as one write; returns the number of quantity items."""
        if not self.live:
            self._drop()
            return 0
        if not self._confirmed():
            return 0
        batch = self._batch
        sent = self._publish_quantities(engine, batch)
        pending = self.outbox.take()
        pending.alerts.extend(engine.drain_alerts())
        add = batch.add
        subjects = self.subjects
        prices, held = engine.drain_prices()
        for channel, body in prices:
            add(subjects.price(channel), body)
        pending.alerts.extend(held)
        for frames in pending.route_frames:
            batch.add_frames(frames)
        for location, route in pending.routes:
            add(subjects.route(location), route)
        for alert in pending.alerts:
            add(subjects.alert(alert.kind), encode_json(alert))
        for record in pending.audit:
            add(subjects.audit, encode_json(record))
        for dead in pending.dead_letters:
            add(subjects.dlq, encode_json(dead))
        for inbox, body in pending.replies:
            add(inbox, body)
        if any(seq > self._ceilings.get(ch, 0) for ch, seq in self.channel_seqs.items()):
            await self._lease({ch: seq + SEQ_LEASE for ch, seq in self.channel_seqs.items()})
        await batch.send()
        return sent

    def _drop(self) -> None:
        """A follower's output goes nowhere: replies, routes, alerts are the leader's to
        send. Changed quantities stay in the engine, so on taking over this process
        publishes every quantity that changed while it followed."""
        self.outbox.take()

    async def retire_lease(self) -> None:
        """On a clean stop: the ceilings become the final `seq`s, so a restart goes on
        without a jump."""
        await self._lease(dict(self.channel_seqs))

    async def _lease(self, ceilings: dict[str, int]) -> None:
        if self._save_ceilings is None:
            return
        try:
            await self._save_ceilings(ceilings)
        except (OSError, NatsError) as exc:
            # Quantities still go out: a stale quantity on a channel costs more
            # than a `seq` that a crash right now might repeat.
            log.error("seq ceilings not saved (%r): a crash now may repeat a seq", exc)
            return
        self._ceilings = ceilings

    def _publish_quantities(self, engine: Engine, batch: PublishBatch) -> int:
        # No await from the drain to the last `seq` bump: a channel query (channel_query.py)
        # reads the published quantities and `channel_seqs` as of one moment.
        # A quantity with no event behind it (a policy's opening quantities) is as of now.
        pieces = engine.drain_json(
            MAX_ITEMS_PER_MESSAGE, engine.newest_event_time or datetime.now(UTC)
        )
        if not pieces:
            return 0
        published_us = time.time() * 1e6
        sent = 0
        for channel, items, keys, stamps in pieces:
            subject = self._qty_subjects.get(channel)
            if subject is None:
                subject = self._qty_subjects[channel] = self.subjects.qty(channel)
            seq = self.channel_seqs.get(channel, self._first_seq_after) + 1
            self.channel_seqs[channel] = seq
            # The items come encoded from the core; the envelope is msgspec's own
            # encoding of the message with its items spliced in (tests/service check
            # the whole against msgspec's encoding of the same message).
            now = datetime.now(UTC)
            head, tail = encode_json(
                ChannelQuantities(
                    channel=channel, seq=seq, ts=now, items=[], partition=self.partition
                )
            ).split(b'"items":[]', 1)
            if self._push_lags is not None:
                self._push_lags.sent(channel, seq, now)
            batch.add(subject, b'%s"items":[%s]%s' % (head, items, tail))
            self.touched.update(keys.tolist())
            if len(stamps) <= SMALL_PIECE:
                ages = [(published_us - t) / 1e6 for t in stamps.tolist() if t > 0]
                self.metrics.sync_latency.observe_many(channel, ages)
            else:
                known = stamps[stamps > 0].astype(np.float64)
                self.metrics.sync_latency.observe_many(channel, (published_us - known) / 1e6)
            sent += len(keys)
        return sent
