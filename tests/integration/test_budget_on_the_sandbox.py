"""The client budget against a marketplace that enforces its own: Amazon's patch
budget (5 per second, burst 5) with the first requests held up by the token
request, as after every start or pause. Not one request may be throttled."""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
import anyio
import pytest
from prometheus_client import CollectorRegistry

from invsync.gateway.metrics import GatewayMetrics
from invsync.gateway.platforms.amazon import PROFILE
from invsync.gateway.platforms.base import Listing
from invsync.gateway.scheduler import Scheduler
from invsync.sandbox.market import SandboxListing
from tests.amazon_market import profile_settings, served_amazon

pytestmark = pytest.mark.anyio

BACKLOG = 15  # the burst, then two seconds of refills


async def test_a_backlog_after_a_pause_meets_no_429() -> None:
    async with served_amazon() as served:
        market = served.sandbox.market
        listings = []
        for n in range(BACKLOG):
            listing = Listing(f"stock-{n}", "new", {"seller_sku": f"SKU-{n}"})
            market.listings[f"SKU-{n}"] = SandboxListing(f"SKU-{n}", listing.sku, "new", {})
            listings.append(listing)
        # no feed for this backlog: every change goes by patch
        settings = profile_settings(served.url, feed_processing_s="3600")
        applied: list[bool] = []
        async with aiohttp.ClientSession() as http, anyio.create_task_group() as tasks:
            metrics = GatewayMetrics(CollectorRegistry()).channel("amazon")
            scheduler = Scheduler(PROFILE(settings), http, metrics, lambda _, why: None)
            tasks.start_soon(scheduler.run)
            for listing in listings:
                scheduler.put(listing, 4, datetime.now(UTC), lambda ok, _: applied.append(ok))
            with anyio.fail_after(20):
                while len(applied) < BACKLOG:
                    await anyio.sleep(0.02)
            tasks.cancel_scope.cancel()
        assert applied == [True] * BACKLOG
        assert market.counters.throttled == 0
        assert all(market.listings[f"SKU-{n}"].qty == 4 for n in range(BACKLOG))
