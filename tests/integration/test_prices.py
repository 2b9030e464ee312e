"""Prices through the service (CONTRACT 14): a catalog's `price.set` on
{prefix}.catalog.<source> becomes each priced channel's price on {prefix}.price.<channel};
a price a guard holds back is alerted instead, and a bad price is dead-lettered."""

from __future__ import annotations

import base64
from pathlib import Path

import msgspec
import pytest

from invsync.nats_server import NatsServer
from tests.service.harness import Collector, event, running_service, service_config

pytestmark = pytest.mark.anyio


async def test_a_catalog_price_reaches_every_priced_channel_and_a_bad_one_the_dlq(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    config = service_config(nats_server, tmp_path)
    async with running_service(nats_server, config) as svc:
        prices, guards, dlq = Collector(), Collector(), Collector()
        await svc.nc.subscribe("inv.price.>", cb=prices.on_msg)
        await svc.nc.subscribe("inv.alert.price_guard", cb=guards.on_msg)
        await svc.nc.subscribe("inv.dlq", cb=dlq.on_msg)
        js = svc.nc.jetstream()
        bad = event("price.set", "p0", sku="A", price="19.00", currency="USD", map="25.00")
        await js.publish("inv.catalog.erp", bad)
        await js.publish("inv.catalog.erp", b'{"type": "price.set", "sku": ')
        good = event("price.set", "p1", sku="A", price="19.00", currency="USD", cost="14.00")
        await js.publish(
            "inv.catalog.erp",
            msgspec.msgpack.encode(msgspec.json.decode(good)),
            headers={"Content-Type": "application/msgpack"},
        )
        # B's cost leaves no channel its margin floor after fees: nothing is published.
        thin = event("price.set", "p2", sku="B", price="19.00", currency="USD", cost="17.00")
        await js.publish("inv.catalog.pim", thin)
        await prices.wait_for(lambda m: len(m) == 7, timeout_s=10)
        await guards.wait_for(lambda m: len(m) == 7, timeout_s=10)
        await dlq.wait_for(lambda m: len(m) == 2, timeout_s=10)
    by_channel = {subject.rsplit(".", 1)[1]: body for subject, body in prices.messages}
    # examples/policy.toml: b2b-portal has no price table; amazon's margin after its 15%
    # fee is (19.99 × 0.85 − 14) / 19.99 = 15% ≥ 10%; ebay adds 8%: 20.52 → 20.99.
    assert {body["sku"] for _, body in prices.messages} == {"A"}
    assert by_channel["shopify"] == {
        "type": "price",
        "sku": "A",
        "price": "19.99",
        "currency": "USD",
        "reason": "list: round_99(19.00)",
        "ts": by_channel["shopify"]["ts"],
    }
    assert by_channel["ebay"]["price"] == "20.99"
    assert "b2b-portal" not in by_channel
    dead = {base64.b64decode(body["payload_b64"]): body["error"] for _, body in dlq.messages}
    assert any(b"25.00" in payload and "map" in error for payload, error in dead.items())
    assert b'{"type": "price.set", "sku": ' in dead, "a catalog line that is not JSON"
    held = {(body["channel"], body["rule"], body["price"]) for _, body in guards.messages}
    assert ("amazon", "margin", "19.99") in held and len(held) == 7
    amazon = next(body for _, body in guards.messages if body["channel"] == "amazon")
    # (p × 0.85 − 17) / p ≥ 10% needs p ≥ 17 / 0.75 = 22.67
    assert (amazon["sku"], amazon["limit"], amazon["currency"]) == ("B", "22.67", "USD")
