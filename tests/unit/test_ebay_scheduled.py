"""eBay through the shared push scheduler against the eBay sandbox at eBay's default
budget: a backlog of many requests lands without one 429, because the gateway's lane
and the sandbox spend the same documented budget."""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
import anyio
import pytest

from invsync.gateway.budget import RevisionBudget
from invsync.gateway.metrics import ChannelMetrics, GatewayMetrics
from invsync.gateway.platforms.base import Listing
from invsync.gateway.platforms.ebay import PROFILE
from invsync.gateway.scheduler import Scheduler
from invsync.marketplaces import ebay
from invsync.sandbox.app import Sandbox, Storefront, serving
from invsync.sandbox.market import Market
from invsync.sandbox.orders import OrderBook
from invsync.sandbox.platforms.base import SandboxSettings
from invsync.sandbox.platforms.ebay import EbaySandbox
from tests.ebay_world import CREDENTIALS, settings

pytestmark = pytest.mark.anyio

LISTINGS = 1000  # 40 requests of 25: 15 more than the bucket holds at the start
TS = datetime(2026, 12, 5, tzinfo=UTC)


def listing(n: int) -> Listing:
    return Listing(f"S{n}", "new", {"ebay_sku": f"SKU-{n}", "offer_id": f"OFF-{n}"})


async def test_a_backlog_beyond_the_burst_lands_within_ebays_budget() -> None:
    account = EbaySandbox(Market("ebay", "ebay-us"), CREDENTIALS, SandboxSettings())
    front = Storefront(account, ebay.ID_FIELDS, lambda li: li.ids["ebay_sku"])
    for n in range(LISTINGS):
        front.add(listing(n))
    alerts: list[str] = []
    async with (
        serving(Sandbox([front], OrderBook(None)), port=0) as port,
        aiohttp.ClientSession() as http,
        anyio.create_task_group() as tasks,
    ):
        profile = PROFILE(settings(f"http://127.0.0.1:{port}"))
        scheduler = Scheduler(
            profile,
            http,
            ChannelMetrics(GatewayMetrics(), "ebay-us"),
            lambda _listing, reason: alerts.append(reason),
            revisions=RevisionBudget(ebay.DAILY_REVISIONS),
        )
        tasks.start_soon(scheduler.run)
        for n in range(LISTINGS):
            scheduler.put(listing(n), 10, TS)
        shown = account.market.listings
        with anyio.fail_after(30):
            while any(li.qty != 10 for li in shown.values()):
                await anyio.sleep(0.02)
        tasks.cancel_scope.cancel()
    counters = account.market.counters
    assert (counters.requests, counters.throttled, counters.rejected) == (40, 0, 0)
    assert alerts == []
    assert set(account.state()["revisions_today"].values()) == {1}
