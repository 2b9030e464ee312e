"""The whole loop on Shopify, from one channels file: the service decides, the gateway
pushes to the sandbox's store, a buyer buys there, the order reaches the service
after the store's delay, and the store ends up showing what invsync last decided,
through a compare-and-swap the sale made stale, without one throttled request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import anyio
import msgspec
import pytest

from invsync.gateway.app import GatewayConfig, run_gateway
from invsync.gateway.config import load_channels
from invsync.nats_server import NatsServer, free_port
from invsync.sandbox.app import Sandbox, serving
from invsync.sandbox.channels import storefronts
from invsync.sandbox.orders import OrderBook, jetstream_sink
from invsync.sandbox.platforms.base import SandboxSettings
from invsync.service.connection import connect
from invsync.service.subjects import Subjects
from tests.service.harness import Collector, connect_as, event, running_service, service_config

pytestmark = pytest.mark.anyio

TOKEN = "shpat_loop_never_print"
ITEM = "gid://shopify/InventoryItem/31"


def write_channel(folder: Path, port: int) -> Path:
    (folder / "shopify.csv").write_text(
        f"sku,condition,inventory_item_id,location_id\nLOOP,,{ITEM},gid://shopify/Location/1\n"
    )
    path = folder / "channels.toml"
    path.write_text(
        "[[channels]]\n"
        'id = "shopify"\nplatform = "shopify"\n'
        f'base_url = "http://127.0.0.1:{port}"\n'
        'credentials = { access_token_env = "LOOP_SHOP_TOKEN" }\n'
        'listings = "shopify.csv"\n'
    )
    return path


def last_shown(messages: list[tuple[str, Any]], sku: str) -> int | None:
    shown = None
    for _, body in sorted(messages, key=lambda m: int(m[1]["seq"])):
        for item in body["items"]:
            if item["sku"] == sku:
                shown = item["qty"]
    return shown


async def test_a_sale_on_the_store_comes_back_as_an_order_and_the_store_converges(
    nats_server: NatsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOP_SHOP_TOKEN", TOKEN)
    port = free_port()
    channels = write_channel(tmp_path, port)
    producer = await connect(nats_server.client("producer", "invsync-sandbox"))
    watcher = await connect_as(nats_server)
    decided = Collector()
    await watcher.subscribe("inv.qty.shopify", cb=decided.on_msg)
    fronts = storefronts(load_channels(channels), SandboxSettings(order_delay_s=0.3))
    store = fronts[0].emulation.market
    sandbox = Sandbox(fronts, OrderBook(jetstream_sink(producer.jetstream(), Subjects())))
    gateway = GatewayConfig(
        channels, connection=nats_server.client("connector", "invsync-connect"), metrics_port=None
    )
    stop, ready = anyio.Event(), anyio.Event()
    try:
        async with (
            running_service(nats_server, service_config(nats_server, tmp_path)) as svc,
            serving(sandbox, port=port),
            aiohttp.ClientSession() as http,
            anyio.create_task_group() as tasks,
        ):
            tasks.start_soon(lambda: run_gateway(gateway, ready=ready, stop=stop))
            with anyio.fail_after(10):
                await ready.wait()
            ack = await svc.nc.jetstream().publish(
                "inv.stock.wh-3",
                event("stock.set", "loop-1", sku="LOOP", location="wh-3", on_hand=20),
            )
            await svc.wait_applied(ack.seq)
            await decided.wait_for(lambda m: last_shown(m, "LOOP") is not None)
            first = last_shown(decided.messages, "LOOP")
            assert first is not None and first > 5
            with anyio.fail_after(15):
                while store.listings[ITEM].qty != first:
                    await anyio.sleep(0.05)

            async with http.post(
                f"http://127.0.0.1:{port}/sandbox/sale",
                json={"platform": "shopify", "listing": ITEM, "qty": 5},
            ) as resp:
                assert resp.status == 200
            await decided.wait_for(lambda m: last_shown(m, "LOOP") != first, timeout_s=15)
            after = last_shown(decided.messages, "LOOP")
            assert after is not None and after < first
            with anyio.fail_after(15):
                while store.listings[ITEM].qty != after:
                    await anyio.sleep(0.05)
            reply = await svc.nc.request("inv.query.sku", b'{"sku": "LOOP"}', timeout=5)
            assert msgspec.json.decode(reply.data)["reserved"] == 5
            stop.set()
    finally:
        await producer.close()
        await watcher.close()
    assert store.counters.throttled == 0
    assert store.counters.rejected == 1  # the compare-and-swap the sale made stale
