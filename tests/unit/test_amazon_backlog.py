"""A backlog on Amazon, pushed by the shared scheduler: what the per-item budget cannot
clear within a feed's processing time goes out as one JSON_LISTINGS_FEED, the rest
(a sell-out among it) by patch, and Amazon ends up showing every latest quantity
without a throttled request or an alert."""

from __future__ import annotations

import aiohttp
import pytest

from invsync.gateway.platforms.amazon import PROFILE
from invsync.gateway.platforms.base import Listing
from invsync.sandbox.market import SandboxListing
from invsync.sandbox.platforms.base import SandboxSettings
from tests.amazon_market import profile_settings, served_amazon
from tests.scheduled import push_all

pytestmark = pytest.mark.anyio
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
        profile = PROFILE(profile_settings(served.url, feed_processing_s="0.2"))
        pushes = [(listing, 0, n + 1) for n, listing in enumerate(listings.values())]
        async with aiohttp.ClientSession() as http:
            settled, alerts = await push_all(profile, http, [*pushes, (sold_out, 5, 0)])
    assert settled == [True] * (BACKLOG + 1) and alerts == []
    assert {key: market.listings[key].qty for key in listings} == {
        key: n + 1 for n, key in enumerate(listings)
    }
    assert market.listings["SOLD-OUT"].qty == 0
    assert list(served.sandbox.state()["feeds"].values()) == ["DONE"]
    assert market.counters.throttled == 0
