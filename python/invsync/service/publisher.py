"""Publishing what changed: channel quantities, routes, alerts, audit, dead letters, replies.

Called once per flush. Quantities first (one message per channel, chunked so a
100,000-SKU cycle count never exceeds the server's payload limit), then the
rest, then the replies, so a client that gets a reservation answer can already
see the quantities it caused. A flush is one write to the client (wire.py).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
from nats.aio.client import Client

from invsync.events import ChannelQuantities, encode_json
from invsync.service.metrics import Metrics
from invsync.service.outbox import Outbox
from invsync.service.subjects import Subjects
from invsync.service.wire import PublishBatch
from invsync.timeconv import from_micros

if TYPE_CHECKING:
    from invsync.engine import Engine

# ~60 bytes per item: a few hundred KB per message, well under the 1 MB default limit.
MAX_ITEMS_PER_MESSAGE = 5000


class Publisher:
    """Owns the per-channel `seq` counters, which snapshots persist."""

    def __init__(
        self,
        nc: Client,
        subjects: Subjects,
        metrics: Metrics,
        outbox: Outbox,
        channel_seqs: dict[str, int] | None = None,
    ) -> None:
        self.nc = nc
        self.subjects = subjects
        self.metrics = metrics
        self.outbox = outbox
        self.channel_seqs: dict[str, int] = dict(channel_seqs or {})
        # Stock keys whose quantities went out, for the reserve-depletion sampler.
        self.touched: set[int] = set()
        self._batch = PublishBatch(nc)
        # Per stock key, the JSON of its item up to the quantity: built once.
        self._item_heads: dict[int, bytes] = {}
        self._qty_subjects: dict[str, str] = {}

    async def flush(self, engine: Engine) -> int:
        """Publish everything pending, as one write; returns the number of quantity items."""
        batch = self._batch
        sent = self._publish_quantities(engine, batch)
        pending = self.outbox.take()
        pending.alerts.extend(engine.drain_alerts())
        add = batch.add
        subjects = self.subjects
        for route in pending.routes:
            add(subjects.route(route.location), encode_json(route))
        for alert in pending.alerts:
            add(subjects.alert(alert.kind), encode_json(alert))
        for record in pending.audit:
            add(subjects.audit, encode_json(record))
        for dead in pending.dead_letters:
            add(subjects.dlq, encode_json(dead))
        for inbox, body in pending.replies:
            add(inbox, body)
        await batch.send()
        return sent

    def _item_head(self, engine: Engine, key: int) -> bytes:
        sku, condition = engine.key_name(key)
        head = b'{"sku":%s,"condition":%s,"qty":' % (encode_json(sku), encode_json(condition))
        self._item_heads[key] = head
        return head

    def _publish_quantities(self, engine: Engine, batch: PublishBatch) -> int:
        channels, keys, qtys, stamps = engine.drain_arrays()
        if not len(channels):
            return 0
        self.touched.update(np.unique(keys).tolist())
        names = engine.policy.channels
        clock = engine.now
        now = datetime.now(UTC)
        times: dict[int, bytes] = {}  # items of one event share its ts
        heads = self._item_heads

        def source_ts(micros: int) -> bytes:
            moment = times.get(micros)
            if moment is None:
                # No event behind it (a policy's opening quantities): now.
                when = from_micros(micros) if micros else clock or now
                moment = times[micros] = encode_json(when)
            return moment

        # The JSON of ChannelQuantities, written directly: items are bytes joined
        # into the encoded envelope, not Structs (tests/service check it against
        # msgspec's encoding of the same message).
        for channel_index in np.unique(channels).tolist():
            mine = channels == channel_index
            channel = names[channel_index]
            items = [
                b'%s%d,"source_ts":%s}'
                % (heads.get(key) or self._item_head(engine, key), qty, source_ts(micros))
                for key, qty, micros in zip(
                    keys[mine].tolist(), qtys[mine].tolist(), stamps[mine].tolist(), strict=True
                )
            ]
            subject = self._qty_subjects.get(channel)
            if subject is None:
                subject = self._qty_subjects[channel] = self.subjects.qty(channel)
            for start in range(0, len(items), MAX_ITEMS_PER_MESSAGE):
                seq = self.channel_seqs.get(channel, 0) + 1
                self.channel_seqs[channel] = seq
                envelope = encode_json(
                    ChannelQuantities(channel=channel, seq=seq, ts=datetime.now(UTC), items=[])
                )
                assert envelope.endswith(b"[]}")
                body = b"%s[%s]}" % (
                    envelope[:-3],
                    b",".join(items[start : start + MAX_ITEMS_PER_MESSAGE]),
                )
                batch.add(subject, body)
            published_us = time.time() * 1e6
            known = stamps[mine]
            known = known[known > 0]
            self.metrics.sync_latency.observe_many(channel, (published_us - known) / 1e6)
        return len(channels)
