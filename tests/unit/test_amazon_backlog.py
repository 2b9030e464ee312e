"""A backlog on Amazon, pushed by the shared scheduler: what the per-item budget cannot
clear within a feed's processing time goes out as one JSON_LISTINGS_FEED, the rest
(a sell-out among it) by patch, and Amazon ends up showing every latest quantity
without a throttled request or an alert."""

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
from tests.amazon_market import (
    CREDENTIALS,
    MARKETPLACE_ID,
    SELLER_ID,
    served_amazon,
)

pytestmark = pytest.mark.anyio
TS = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
BACKLOG = 40


async def test_a_backlog_goes_by_one_feed_and_every_quantity_lands() -> None:
    async with served_amazon(SandboxSettings(job_delay_s=0.1)) as served:
        listings = {
            f"BULK-{n}": Listing(f"stock-{n}", "new", {"seller_sku": f"BULK-{n}"})
            for n in range(BACKLOG)
        }
        market = served.sandbox.market
        for key, listing in listings.items():
            market.listings[key] = SandboxListing(key, listing.sku, "new", dict(listing.ids))
        sold_out = Listing("stock-out", "new", {"seller_sku": "SOLD-OUT"})
        market.listings["SOLD-OUT"] = SandboxListing("SOLD-OUT", "stock-out", "new", {}, qty=5)
        settings = ProfileSettings(
            channel="amazon",
            base_url=served.url,
            credentials=CREDENTIALS,
            options={
                "seller_id": SELLER_ID,
                "marketplace_id": MARKETPLACE_ID,
                "feed_processing_s": "0.2",
            },
            overrides={},
        )
        alerts: list[str] = []
        settled: list[bool] = []
        done = anyio.Event()

        def heard(applied: bool, reason: str | None) -> None:
            settled.append(applied)
            if len(settled) == BACKLOG + 1:
                done.set()

        async with aiohttp.ClientSession() as http:
            scheduler = Scheduler(
                PROFILE(settings),
                http,
                GatewayMetrics(CollectorRegistry()).channel("amazon"),
                lambda listing, reason: alerts.append(reason),
            )
            for n, (key, listing) in enumerate(listings.items()):
                scheduler.queue.known[key] = 0
                scheduler.put(listing, n + 1, TS, heard)
            scheduler.queue.known["SOLD-OUT"] = 5
            scheduler.put(sold_out, 0, TS, heard)
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(scheduler.run)
                with anyio.fail_after(20):
                    await done.wait()
                tasks.cancel_scope.cancel()
    assert settled == [True] * (BACKLOG + 1) and alerts == []
    assert {key: market.listings[key].qty for key in listings} == {
        key: n + 1 for n, key in enumerate(listings)
    }
    assert market.listings["SOLD-OUT"].qty == 0
    assert list(served.sandbox.state()["feeds"].values()) == ["DONE"]
    assert market.counters.throttled == 0
