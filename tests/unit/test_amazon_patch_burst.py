"""Amazon's PATCH lane through the shared scheduler from a cold start: the first
requests wait for the LWA token, so they reach Amazon later than they left; the lane
keeps one request of the burst back and a backlog lands without a QuotaExceeded."""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
import anyio
import pytest
from prometheus_client import CollectorRegistry

from invsync.gateway.metrics import GatewayMetrics
from invsync.gateway.platforms.amazon import PROFILE
from invsync.gateway.platforms.base import Listing, ProfileSettings
from invsync.gateway.scheduler import Scheduler
from invsync.sandbox.market import SandboxListing
from invsync.sandbox.platforms.base import SandboxSettings
from tests.amazon_market import CREDENTIALS, MARKETPLACE_ID, SELLER_ID, served_amazon

pytestmark = pytest.mark.anyio
TS = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
BACKLOG = 12  # the burst and more than a second of the rate: all by PATCH


async def test_a_cold_start_backlog_by_patch_is_never_throttled() -> None:
    async with served_amazon(SandboxSettings()) as served, aiohttp.ClientSession() as http:
        market = served.sandbox.market
        listings = [Listing(f"s{n}", "new", {"seller_sku": f"P-{n}"}) for n in range(BACKLOG)]
        for listing in listings:
            key = listing.ids["seller_sku"]
            market.listings[key] = SandboxListing(key, listing.sku, "new", dict(listing.ids))
        settings = ProfileSettings(
            "amazon",
            served.url,
            CREDENTIALS,
            {"seller_id": SELLER_ID, "marketplace_id": MARKETPLACE_ID},
            {},
        )
        scheduler = Scheduler(
            PROFILE(settings),
            http,
            GatewayMetrics(CollectorRegistry()).channel("amazon"),
            lambda _listing, _reason: None,
        )
        for listing in listings:
            scheduler.put(listing, 3, TS)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(scheduler.run)
            with anyio.fail_after(20):
                while any(market.listings[li.ids["seller_sku"]].qty != 3 for li in listings):
                    await anyio.sleep(0.01)
            tasks.cancel_scope.cancel()
    assert market.counters.throttled == 0
