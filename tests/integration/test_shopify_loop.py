"""The whole loop on Shopify, from one channels file: the service decides, the gateway
pushes to the sandbox's store, a buyer buys there, the order reaches the service
after the store's delay, and the store ends up showing what invsync last decided:
through a compare-and-swap the sale made stale, and across a restart of the store
in the middle of a push. No request is throttled and no log line holds the token."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
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
from invsync.sandbox.market import Market
from invsync.sandbox.orders import OrderBook, OrderSink, jetstream_sink
from invsync.sandbox.platforms.base import SandboxSettings
from invsync.service.connection import connect
from invsync.service.subjects import Subjects
from tests.service.harness import (
    Collector,
    Running,
    connect_as,
    event,
    running_service,
    service_config,
)

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


def last_shown(messages: list[tuple[str, Any]]) -> int | None:
    shown = None
    for _, body in sorted(messages, key=lambda m: int(m[1]["seq"])):
        for item in body["items"]:
            if item["sku"] == "LOOP":
                shown = item["qty"]
    return shown


@dataclass
class Loop:
    svc: Running
    decided: Collector
    channels: Path
    port: int
    sink: OrderSink

    def store(self, state_file: Path | None = None) -> tuple[Sandbox, Market]:
        """The sandbox of the channels file (a new one each call: a restart)."""
        fronts = storefronts(load_channels(self.channels), SandboxSettings(order_delay_s=0.3))
        return Sandbox(fronts, OrderBook(self.sink)), fronts[0].emulation.market

    async def stock(self, on_hand: int, event_id: str) -> int:
        """Sets LOOP's stock and returns what the service then decides Shopify shows."""
        before = last_shown(self.decided.messages)
        ack = await self.svc.nc.jetstream().publish(
            "inv.stock.wh-3",
            event("stock.set", event_id, sku="LOOP", location="wh-3", on_hand=on_hand),
        )
        await self.svc.wait_applied(ack.seq)
        await self.decided.wait_for(lambda m: last_shown(m) not in (None, before))
        shown = last_shown(self.decided.messages)
        assert shown is not None
        return shown


async def converged(market: Market, qty: int) -> None:
    with anyio.fail_after(15):
        while market.listings[ITEM].qty != qty:
            await anyio.sleep(0.05)


@asynccontextmanager
async def loop(
    nats_server: NatsServer, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Loop]:
    """The service, and the gateway pushing to a store on a fixed port (the test
    starts the store), until the block ends."""
    monkeypatch.setenv("LOOP_SHOP_TOKEN", TOKEN)
    port = free_port()
    channels = write_channel(folder, port)
    producer = await connect(nats_server.client("producer", "invsync-sandbox"))
    watcher = await connect_as(nats_server)
    decided = Collector()
    await watcher.subscribe("inv.qty.shopify", cb=decided.on_msg)
    gateway = GatewayConfig(
        channels, connection=nats_server.client("connector", "invsync-connect"), metrics_port=None
    )
    stop, ready = anyio.Event(), anyio.Event()
    try:
        async with (
            running_service(nats_server, service_config(nats_server, folder)) as svc,
            anyio.create_task_group() as tasks,
        ):
            tasks.start_soon(lambda: run_gateway(gateway, ready=ready, stop=stop))
            with anyio.fail_after(10):
                await ready.wait()
            sink = jetstream_sink(producer.jetstream(), Subjects())
            yield Loop(svc, decided, channels, port, sink)
            stop.set()
    finally:
        await producer.close()
        await watcher.close()


async def test_a_sale_on_the_store_comes_back_as_an_order_and_the_store_converges(
    nats_server: NatsServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with loop(nats_server, tmp_path, monkeypatch) as lp:
        sandbox, store = lp.store()
        async with serving(sandbox, port=lp.port), aiohttp.ClientSession() as http:
            first = await lp.stock(20, "loop-1")
            assert first > 5
            await converged(store, first)
            async with http.post(
                f"http://127.0.0.1:{lp.port}/sandbox/sale",
                json={"platform": "shopify", "listing": ITEM, "qty": 5},
            ) as resp:
                assert resp.status == 200
            await lp.decided.wait_for(lambda m: last_shown(m) != first, timeout_s=15)
            after = last_shown(lp.decided.messages)
            assert after is not None and after < first
            await converged(store, after)
            reply = await lp.svc.nc.request("inv.query.sku", b'{"sku": "LOOP"}', timeout=5)
            assert msgspec.json.decode(reply.data)["reserved"] == 5
    assert store.counters.throttled == 0
    assert store.counters.rejected == 1  # the compare-and-swap the sale made stale
    assert TOKEN not in caplog.text


async def test_a_store_restarted_mid_push_ends_showing_the_last_decision(
    nats_server: NatsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state_file = tmp_path / "sandbox.json"
    async with loop(nats_server, tmp_path, monkeypatch) as lp:
        sandbox, store = lp.store(state_file)
        async with serving(sandbox, port=lp.port, state_file=state_file):
            first = await lp.stock(20, "loop-1")
            await converged(store, first)
        # The store is down: this decision's push fails and is retried.
        second = await lp.stock(12, "loop-2")
        await anyio.sleep(0.5)
        sandbox, store = lp.store(state_file)
        async with serving(sandbox, port=lp.port, state_file=state_file):
            assert store.listings[ITEM].qty == first  # the store did not forget
            await converged(store, second)
    assert store.counters.throttled == 0
