"""Shopify through the shared push scheduler against the Shopify sandbox: a backlog
larger than one request lands within the store's budget, and a sale on the store
while invsync pushes (a stale compare-and-swap) still ends with the store showing
what invsync last decided."""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
import anyio
import pytest

from invsync.gateway.metrics import ChannelMetrics, GatewayMetrics
from invsync.gateway.platforms.base import Listing, ProfileSettings
from invsync.gateway.platforms.shopify import PROFILE
from invsync.gateway.scheduler import Scheduler
from invsync.gateway.secrets import Secret
from invsync.sandbox.app import Sandbox, Storefront, serving
from invsync.sandbox.market import Market
from invsync.sandbox.orders import OrderBook
from invsync.sandbox.platforms.base import SandboxSettings
from invsync.sandbox.platforms.shopify import ShopifySandbox

pytestmark = pytest.mark.anyio

TOKEN = Secret("$SHOP_TOKEN", "shpat_scheduled")
LISTINGS = 600  # three requests of at most 250
TS = datetime(2026, 12, 5, tzinfo=UTC)


def listing(n: int) -> Listing:
    ids = {
        "inventory_item_id": f"gid://shopify/InventoryItem/{n}",
        "location_id": "gid://shopify/Location/1",
    }
    return Listing(f"S{n}", "new", ids)


async def test_a_backlog_and_a_sale_mid_push_end_with_what_invsync_decided() -> None:
    store = ShopifySandbox(Market("shopify", "web"), {"access_token": TOKEN}, SandboxSettings())
    front = Storefront(
        store, ("inventory_item_id", "location_id"), lambda li: li.ids["inventory_item_id"]
    )
    for n in range(LISTINGS):
        front.add(listing(n))
    alerts: list[str] = []
    async with (
        serving(Sandbox([front], OrderBook(None)), port=0) as port,
        aiohttp.ClientSession() as http,
        anyio.create_task_group() as tasks,
    ):
        settings = ProfileSettings(
            "web", f"http://127.0.0.1:{port}", {"access_token": TOKEN}, {}, {}
        )
        scheduler = Scheduler(
            PROFILE(settings),
            http,
            ChannelMetrics(GatewayMetrics(), "web"),
            lambda _listing, reason: alerts.append(reason),
        )
        tasks.start_soon(scheduler.run)
        for n in range(LISTINGS):
            scheduler.put(listing(n), 10, TS)
        shown = store.market.listings
        with anyio.fail_after(20):
            while any(li.qty != 10 for li in shown.values()):
                await anyio.sleep(0.02)
        # A buyer takes 3 of listing 0 on the store; invsync, not knowing yet, sets 4.
        async with http.post(
            f"http://127.0.0.1:{port}/sandbox/sale",
            json={"platform": "shopify", "listing": listing(0).ids["inventory_item_id"], "qty": 3},
        ) as resp:
            assert resp.status == 200
        scheduler.put(listing(0), 4, TS)
        scheduler.put(listing(1), 6, TS)
        with anyio.fail_after(20):
            while (
                shown[listing(0).ids["inventory_item_id"]].qty,
                shown[listing(1).ids["inventory_item_id"]].qty,
            ) != (4, 6):
                await anyio.sleep(0.02)
        tasks.cancel_scope.cancel()
    assert store.market.counters.throttled == 0
    assert store.market.counters.rejected == 1  # the one stale compare-and-swap
    assert alerts == []
