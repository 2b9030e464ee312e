"""A sale on the sandbox reaches the running service as `order.placed`, after the
platform's order delay, through the producer's NATS user and permissions."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import anyio
import msgspec
import pytest
from nats.aio.client import Client

from invsync.gateway.platforms.base import Listing
from invsync.gateway.secrets import Secret
from invsync.nats_server import NatsServer
from invsync.sandbox.app import Sandbox, Storefront, serving
from invsync.sandbox.market import Market
from invsync.sandbox.orders import OrderBook, jetstream_sink
from invsync.sandbox.platforms.base import SandboxSettings
from invsync.sandbox.platforms.shopify import ShopifySandbox
from invsync.service.connection import connect
from invsync.service.subjects import Subjects
from tests.service.harness import event, running_service, service_config

pytestmark = pytest.mark.anyio

ITEM = "gid://shopify/InventoryItem/5"
DELAY_S = 0.5


async def reserved(nc: Client, sku: str) -> int:
    reply = await nc.request("inv.query.sku", msgspec.json.encode({"sku": sku}), timeout=5)
    return int(msgspec.json.decode(reply.data)["reserved"])


async def test_a_sale_reaches_the_service_as_an_order_after_the_delay(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    producer = await connect(nats_server.client("producer", "invsync-sandbox"))
    store = ShopifySandbox(
        Market("shopify", "shopify"),
        {"access_token": Secret("$T", "shpat_orders")},
        SandboxSettings(order_delay_s=DELAY_S),
    )
    front = Storefront(store, ("inventory_item_id",), lambda li: li.ids["inventory_item_id"])
    front.add(Listing("SOLD", "new", {"inventory_item_id": ITEM}), qty=6)
    sandbox = Sandbox([front], OrderBook(jetstream_sink(producer.jetstream(), Subjects())))
    try:
        async with running_service(nats_server, service_config(nats_server, tmp_path)) as svc:
            ack = await svc.nc.jetstream().publish(
                "inv.stock.wh-3",
                event("stock.set", "s-1", sku="SOLD", location="wh-3", on_hand=20),
            )
            await svc.wait_applied(ack.seq)
            async with (
                serving(sandbox, port=0) as port,
                aiohttp.ClientSession() as http,
                http.post(
                    f"http://127.0.0.1:{port}/sandbox/sale",
                    json={"platform": "shopify", "listing": ITEM, "qty": 4},
                ) as resp,
            ):
                assert resp.status == 200
                sold_at = anyio.current_time()
                assert (await resp.json())["shown"] == 2
                assert await reserved(svc.nc, "SOLD") == 0  # the OMS does not know yet
                with anyio.fail_after(10):
                    while await reserved(svc.nc, "SOLD") != 4:
                        await anyio.sleep(0.05)
                assert anyio.current_time() - sold_at >= DELAY_S * 0.9
                assert sandbox.orders.delivered == 1
    finally:
        await producer.close()
