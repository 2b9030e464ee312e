"""The publisher writes channel quantities and batches publishes by hand: same bytes as msgspec."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio
import msgspec
import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from invsync.engine import Engine
from invsync.events import ChannelQuantities, QtyItem, encode_json
from invsync.policy import Policy
from invsync.service.metrics import Metrics
from invsync.service.outbox import Outbox
from invsync.service.publisher import Publisher
from invsync.service.subjects import Subjects
from invsync.service.wire import PublishBatch
from invsync.timeconv import from_micros

POLICY = """
[[tiers]]
tier = 1
protect = 0

[[locations]]
id = "wh-1"
kind = "warehouse"

[[channels]]
id = "shop"
tier = 1

[[channels]]
id = "market"
tier = 1
cap = 3
"""


class RecordingClient:
    """Only `publish`: PublishBatch falls back to it, one call per message."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.max_payload = 1024 * 1024

    async def publish(self, subject: str, payload: bytes) -> None:
        self.sent.append((subject, payload))


def test_quantity_messages_equal_msgspec_encoding_of_the_same_items() -> None:
    engine = Engine(Policy.from_toml(POLICY, "inline.toml"))
    for i, sku in enumerate(["A", 'B "quoted"', "Ü-7"]):
        engine.apply(
            {
                "type": "stock.set",
                "event_id": f"e{i}",
                "ts": f"2026-11-23T10:00:0{i}.123456Z",
                "sku": sku,
                "location": "wh-1",
                "on_hand": 5 + i,
            }
        )
    client = RecordingClient()
    publisher = Publisher(client, Subjects(), Metrics(CollectorRegistry()), Outbox())  # type: ignore[arg-type]
    expected_items: dict[str, list[QtyItem]] = {"shop": [], "market": []}
    for sku, ts, qty_shop, qty_market in [
        ("A", "2026-11-23T10:00:00.123456Z", 5, 3),
        ('B "quoted"', "2026-11-23T10:00:01.123456Z", 6, 3),
        ("Ü-7", "2026-11-23T10:00:02.123456Z", 7, 3),
    ]:
        when = datetime.fromisoformat(ts)
        expected_items["shop"].append(QtyItem(sku, "new", qty_shop, when))
        expected_items["market"].append(QtyItem(sku, "new", qty_market, when))

    assert anyio.run(publisher.flush, engine) == 6
    assert [subject for subject, _ in client.sent] == ["inv.qty.shop", "inv.qty.market"]
    for subject, body in client.sent:
        channel = subject.rsplit(".", 1)[-1]
        sent = msgspec.json.decode(body, type=ChannelQuantities)
        assert sent.seq == 1
        expected = ChannelQuantities(
            channel=channel, seq=1, ts=sent.ts, items=expected_items[channel]
        )
        assert body == encode_json(expected)


def test_source_ts_of_an_item_without_event_is_encoded_like_a_datetime() -> None:
    assert encode_json(from_micros(1_700_000_000_000_001)) == encode_json(
        datetime(2023, 11, 14, 22, 13, 20, 1, tzinfo=UTC)
    )


@pytest.mark.anyio
async def test_a_batch_keeps_the_order_of_its_messages() -> None:
    client = RecordingClient()
    batch = PublishBatch(client)  # type: ignore[arg-type]
    for n in range(5):
        batch.add(f"inv.route.loc{n % 2}", b"%d" % n)
    assert len(batch) == 5
    await batch.send()
    assert client.sent == [(f"inv.route.loc{n % 2}", b"%d" % n) for n in range(5)]
    assert len(batch) == 0


def test_sync_latency_histogram_counts_the_same_from_a_list_or_an_array() -> None:
    from invsync.service.metrics import SYNC_LATENCY_BUCKETS, BulkHistogram

    ages = [0.0005, 0.001, 0.0011, 0.02, 7.0, 99.0]
    as_list = BulkHistogram("a", "doc", "channel", SYNC_LATENCY_BUCKETS)
    as_array = BulkHistogram("b", "doc", "channel", SYNC_LATENCY_BUCKETS)
    as_list.observe_many("shop", ages)
    as_array.observe_many("shop", np.array(ages))
    buckets = {
        name: [
            (s.labels["le"], s.value) for f in h.collect() for s in f.samples if "bucket" in s.name
        ]
        for name, h in (("list", as_list), ("array", as_array))
    }
    assert buckets["list"] == buckets["array"]
    assert dict(buckets["list"])["0.001"] == 2  # bounds are inclusive
    assert dict(buckets["list"])["+Inf"] == 6
