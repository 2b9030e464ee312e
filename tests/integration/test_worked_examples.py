"""The contract's worked examples, sent as events over NATS, seen on inv.qty.*."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from invsync.nats_server import NatsServer
from tests.contract_examples import SECOND_EXAMPLE_CHANNELS, SECOND_EXAMPLE_POLICY
from tests.service.harness import (
    EXAMPLE_POLICY,
    Collector,
    event,
    running_service,
    service_config,
)

pytestmark = pytest.mark.anyio

EXAMPLE_EVENTS = EXAMPLE_POLICY.parent / "events.jsonl"


def latest(collector: Collector, sku: str) -> int | None:
    """The last quantity a channel was told for `sku` (condition new)."""
    shown = None
    for _, message in collector.messages:
        for item in message["items"]:
            if item["sku"] == sku and item["condition"] == "new":
                shown = item["qty"]
    return shown


async def subscribe(svc: Any, channels: list[str]) -> dict[str, Collector]:
    collectors = {channel: Collector() for channel in channels}
    for channel, collector in collectors.items():
        await svc.nc.subscribe(f"inv.qty.{channel}", cb=collector.on_msg)
    return collectors


async def test_first_example_shows_amazon_300_and_shopify_200(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    config = service_config(nats_server, tmp_path)
    async with running_service(nats_server, config) as svc:
        seen = await subscribe(svc, ["amazon", "shopify"])
        js = svc.nc.jetstream()
        last = 0
        for line in EXAMPLE_EVENTS.read_bytes().splitlines():
            family = b"order" if b'"order.' in line else b"stock"
            last = (await js.publish(f"inv.{family.decode()}.example", line)).seq
        # The shown quantities reach 300/200 before the example's last events
        # (a cancellation among them) are applied: wait for the whole example.
        await svc.wait_applied(last)
        await seen["amazon"].wait_for(lambda _: latest(seen["amazon"], "A") == 300)
        await seen["shopify"].wait_for(lambda _: latest(seen["shopify"], "A") == 200)
        explained = await svc.nc.request("inv.query.sku", b'{"sku": "A"}', timeout=5)
    assert b'"ats":675' in explained.data
    assert b'"reserved":250' in explained.data


def order(event_id: str, order_id: str, channel: str) -> bytes:
    lines = [{"line_id": "1", "sku": "S", "qty": 1}]
    return event("order.placed", event_id, order_id=order_id, channel=channel, lines=lines)


async def test_second_example_three_orders_leave_every_channel_seven(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    policy = tmp_path / "second.toml"
    policy.write_text(SECOND_EXAMPLE_POLICY)
    config = service_config(nats_server, tmp_path / "state", policy_path=policy)
    async with running_service(nats_server, config) as svc:
        seen = await subscribe(svc, SECOND_EXAMPLE_CHANNELS)
        js = svc.nc.jetstream()
        await js.publish(
            "inv.stock.wh-3", event("stock.set", "s1", sku="S", location="wh-3", on_hand=10)
        )
        await js.publish("inv.order.amazon", order("o1", "o-1", "amazon"))
        await js.publish("inv.order.ebay", order("o2", "o-2", "ebay"))
        await js.publish("inv.order.ebay", order("o3", "o-3", "ebay"))
        for channel in SECOND_EXAMPLE_CHANNELS:
            await seen[channel].wait_for(lambda _, c=channel: latest(seen[c], "S") == 7)


async def test_second_example_offline_store_stock_is_not_offered(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    policy = tmp_path / "second.toml"
    policy.write_text(SECOND_EXAMPLE_POLICY)
    config = service_config(nats_server, tmp_path / "state", policy_path=policy)
    async with running_service(nats_server, config) as svc:
        seen = await subscribe(svc, SECOND_EXAMPLE_CHANNELS)
        stock = [("wh-3", 4), ("dropship-vendor", 3), ("third-party", 2), ("retail-01", 5)]
        batch = {
            "type": "batch",
            "event_id": "count-1",
            "ts": "2026-11-23T10:00:00Z",
            "events": [
                {
                    "type": "stock.set",
                    "event_id": f"c-{location}",
                    "ts": "2026-11-23T10:00:00Z",
                    "sku": "S",
                    "location": location,
                    "on_hand": units,
                }
                for location, units in stock
            ],
        }
        await svc.nc.jetstream().publish("inv.stock.count", msgspec.json.encode(batch))
        for channel in SECOND_EXAMPLE_CHANNELS:
            await seen[channel].wait_for(lambda _, c=channel: latest(seen[c], "S") == 9)
    # One bulk message, one coalesced quantity message per channel.
    assert [len(seen[c].messages) for c in SECOND_EXAMPLE_CHANNELS] == [1, 1, 1]
