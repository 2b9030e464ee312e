"""Prices from the gateway's scheduler to the sandbox's marketplaces, through each
platform's own price call: eBay and Amazon take a price and a quantity in one call, Lazada sends a
product back to QC after a price change of 80% or more, Walmart unpublishes an offer
priced too far above the seller's own price elsewhere; each refuses a malformed price in
its own words, and `GET /sandbox/state` and `POST /sandbox/sale` show the price."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import pytest

from invsync.gateway.platforms import ebay as ebay_profile
from invsync.gateway.platforms.amazon import AmazonProfile
from invsync.gateway.platforms.base import Listing, Price, Profile, ProfileSettings
from invsync.gateway.platforms.lazada import LazadaProfile
from invsync.gateway.platforms.shopee import ShopeeProfile
from invsync.gateway.platforms.shopify import PROFILE as SHOPIFY
from invsync.gateway.platforms.tiktok import TikTokProfile
from invsync.gateway.platforms.walmart import WalmartProfile
from invsync.gateway.scheduler import PushQueue
from invsync.gateway.secrets import Secret
from invsync.marketplaces import ebay, lazada, walmart
from invsync.sandbox.app import Sandbox, Storefront, serving
from invsync.sandbox.market import LIVE, Market
from invsync.sandbox.orders import OrderBook
from invsync.sandbox.platforms.base import SandboxSettings
from invsync.sandbox.platforms.ebay import EbaySandbox
from invsync.sandbox.platforms.lazada import LazadaSandbox
from invsync.sandbox.platforms.shopify import ShopifySandbox
from invsync.sandbox.platforms.walmart import WalmartSandbox
from tests import (
    amazon_market,
    ebay_world,
    lazada_market,
    shopee_market,
    tiktok_market,
    walmart_market,
)
from tests.marketplace import frozen_wall, served_alone
from tests.scheduled import push_all

pytestmark = pytest.mark.anyio


def usd(amount: str) -> Price:
    return Price(amount, "USD")


def sgd(amount: str) -> Price:
    return Price(amount, "SGD")


EBAY_A = Listing("A0", "new", {"ebay_sku": "SKU-0", "offer_id": "OFF-0"})


@asynccontextmanager
async def ebay_alone() -> AsyncIterator[tuple[EbaySandbox, Profile, aiohttp.ClientSession]]:
    sandbox = EbaySandbox(ebay_world.market(), ebay_world.CREDENTIALS, SandboxSettings())
    async with ebay_world.serving(sandbox.routes()) as url, aiohttp.ClientSession() as http:
        yield sandbox, ebay_profile.build_profile(ebay_world.settings(url)), http


async def test_a_price_and_a_quantity_reach_ebay_in_one_call() -> None:
    async with ebay_alone() as (sandbox, profile, http):
        settled, alerts = await push_all(
            profile, http, [(EBAY_A, 0, 5)], prices=[(EBAY_A, usd("12.50"))]
        )
    assert settled == [True, True] and alerts == []
    shown = sandbox.market.listings["SKU-0"]
    assert (shown.qty, shown.price) == (5, "12.50")
    assert sandbox.market.counters.requests == 1


async def test_ebay_refuses_a_price_it_cannot_take_and_the_quantity_still_lands() -> None:
    async with ebay_alone() as (sandbox, profile, http):
        settled, alerts = await push_all(
            profile, http, [(EBAY_A, 0, 4)], prices=[(EBAY_A, usd("12.505"))]
        )
    assert sorted(settled) == [False, True]
    (alert,) = alerts
    assert alert.startswith("price 12.505 USD of A0: ") and str(ebay.ERROR_INVALID_VALUE) in alert
    shown = sandbox.market.listings["SKU-0"]
    assert (shown.qty, shown.price) == (4, None)


async def test_a_price_and_a_quantity_reach_amazon_in_one_patch() -> None:
    red = Listing("stock-0", "new", {"seller_sku": amazon_market.SKUS[0]})
    blue = Listing("stock-1", "new", {"seller_sku": amazon_market.SKUS[1]})
    async with amazon_market.served_amazon() as served, aiohttp.ClientSession() as http:
        profile = AmazonProfile(amazon_market.profile_settings(served.url))
        settled, alerts = await push_all(
            profile,
            http,
            [(red, 0, 7)],
            prices=[(red, usd("31.5")), (blue, Price("20.00", "CAD"))],
        )
    assert sorted(settled) == [False, True, True]
    (alert,) = alerts
    assert alert.startswith("price 20.00 CAD of stock-1: ") and "'USD'" in alert
    listings = served.sandbox.market.listings
    assert (listings[red.ids["seller_sku"]].qty, listings[red.ids["seller_sku"]].price) == (
        7,
        "31.50",
    )
    assert listings[blue.ids["seller_sku"]].price is None
    # A token, the red listing's price and quantity in one PATCH, the blue price in another.
    assert served.sandbox.market.counters.requests == 3


async def test_shopee_prices_go_by_update_price_one_item_per_call() -> None:
    models = [
        Listing(f"stock-{key}", "new", {"item_id": key.split(":")[0], "model_id": key[-1]})
        for key in shopee_market.KEYS
    ]
    prices = [(models[0], sgd("5.90")), (models[1], sgd("6")), (models[2], sgd("7.125"))]
    async with shopee_market.served_shopee() as served, aiohttp.ClientSession() as http:
        profile = ShopeeProfile(shopee_market.profile_settings(served.url))
        settled, alerts = await push_all(profile, http, [(models[0], 0, 3)], prices=prices)
    listings = served.sandbox.market.listings
    assert {key: li.price for key, li in listings.items()} == {
        "800:1": "5.90",
        "800:2": "6.00",
        "900:0": None,
    }
    assert listings["800:1"].qty == 3
    assert sorted(settled) == [False, True, True, True]
    (alert,) = alerts
    assert alert.startswith("price 7.125 SGD of stock-900:0: ") and "original_price" in alert
    # A token; item 800's two prices in one update_price call, item 900's in another;
    # the stock in one update_stock call.
    assert served.sandbox.market.counters.requests == 4


async def test_tiktok_prices_go_by_update_price_one_product_per_call() -> None:
    first, second = (
        Listing(
            f"stock-{n}",
            "new",
            {"product_id": tiktok_market.PRODUCT, "sku_id": sku_id, "warehouse_id": warehouse},
        )
        for n, (sku_id, warehouse) in enumerate(tiktok_market.SKUS.items())
    )
    async with tiktok_market.served_tiktok() as served, aiohttp.ClientSession() as http:
        profile = TikTokProfile(tiktok_market.profile_settings(served.url))
        settled, alerts = await push_all(
            profile, http, [], prices=[(first, usd("19.9")), (second, usd("7600.01"))]
        )
    assert sorted(settled) == [False, True]
    (alert,) = alerts
    assert alert.startswith("price 7600.01 USD of stock-1: ") and "7600" in alert
    listings = served.sandbox.market.listings
    assert [li.price for li in listings.values()] == ["19.90", None]
    # A token and one Update Price call for the product's two SKUs.
    assert served.sandbox.market.counters.requests == 2


async def test_shopify_prices_go_by_product_variants_bulk_update_in_the_stores_bucket() -> None:
    token = {"access_token": Secret("$SHOP_TOKEN", "shpat_price_test")}
    store = ShopifySandbox(Market("shopify", "web"), token, SandboxSettings())
    items = [
        Listing(
            f"S{n}",
            "new",
            {
                "inventory_item_id": f"gid://shopify/InventoryItem/{n}",
                "location_id": "gid://shopify/Location/7",
            },
        )
        for n in range(2)
    ]
    front = Storefront(
        store, ("inventory_item_id", "location_id"), lambda li: li.ids["inventory_item_id"]
    )
    for item in items:
        front.add(item)
    async with (
        serving(Sandbox([front], OrderBook(None)), port=0) as port,
        aiohttp.ClientSession() as http,
    ):
        profile = SHOPIFY(ProfileSettings("web", f"http://127.0.0.1:{port}", token, {}, {}))
        settled, alerts = await push_all(
            profile,
            http,
            [(items[0], 0, 4)],
            prices=[(items[0], usd("18.50")), (items[1], usd("2.999"))],
        )
    assert sorted(settled) == [False, True, True]
    (alert,) = alerts
    assert alert.startswith("price 2.999 USD of S1: INVALID_INPUT")
    listings = store.market.listings
    assert [(li.qty, li.price) for li in listings.values()] == [(4, "18.50"), (0, None)]
    # Both lanes spend the store's one bucket.
    first, second = PushQueue(profile, time.monotonic).budgets
    assert first is second


@dataclass
class LazadaSeller:
    sandbox: LazadaSandbox
    profile: Profile
    http: aiohttp.ClientSession
    red: Listing


@asynccontextmanager
async def lazada_alone(review_delay_s: float) -> AsyncIterator[LazadaSeller]:
    clock = frozen_wall()
    sandbox = LazadaSandbox(
        lazada_market.lazada_market(),
        lazada_market.CREDENTIALS,
        SandboxSettings(review_delay_s=review_delay_s),
        clock,
    )
    async with served_alone(sandbox) as served, aiohttp.ClientSession() as http:
        profile = LazadaProfile(lazada_market.profile_settings(served.url))
        item, sku_id = lazada_market.SKUS["LZ-RED"]
        red = Listing(
            "stock-LZ-RED", "new", {"seller_sku": "LZ-RED", "item_id": item, "sku_id": sku_id}
        )
        yield LazadaSeller(sandbox, profile, http, red)


async def test_lazada_sends_a_product_to_qc_after_a_price_change_of_80_percent() -> None:
    async with lazada_alone(review_delay_s=600) as seller:
        market, clock = seller.sandbox.market, seller.sandbox._clock
        listing = market.listings["LZ-RED"]
        for price in ("10.00", "17.90"):  # a 79% rise: no review
            settled, _ = await push_all(
                seller.profile, seller.http, [], prices=[(seller.red, sgd(price))]
            )
            assert settled == [True] and market.status(listing) == (LIVE, None)
        settled, alerts = await push_all(
            seller.profile, seller.http, [], prices=[(seller.red, sgd("3.58"))]
        )
        assert settled == [True] and alerts == []  # applied: the product goes to QC
        status, reason = market.status(listing)
        assert (status, listing.price) == (lazada.REVIEW_STATUS, "3.58")
        assert reason is not None and "80%" in reason and "17.90" in reason
        clock.now += 599  # type: ignore[attr-defined]
        assert market.status(listing)[0] == lazada.REVIEW_STATUS
        clock.now += 2  # type: ignore[attr-defined]
        assert market.status(listing) == (LIVE, None)


async def test_lazada_refuses_a_price_with_more_decimals_than_its_currency() -> None:
    async with lazada_alone(review_delay_s=600) as seller:
        settled, alerts = await push_all(
            seller.profile, seller.http, [], prices=[(seller.red, sgd("9.999"))]
        )
    assert settled == [False]
    (alert,) = alerts
    assert "Price" in alert and "9.999" in alert


@dataclass
class TwoChannels:
    url: str
    http: aiohttp.ClientSession
    walmart: Profile
    ebay: Profile
    mug: Listing


@asynccontextmanager
async def walmart_beside_ebay(reasonable_pct: str) -> AsyncIterator[TwoChannels]:
    """Walmart and eBay on one sandbox, both selling stock `stock-0`."""
    wm_market = walmart_market.walmart_market()
    wm_market.options["reasonable_price_pct"] = reasonable_pct
    wm = WalmartSandbox(wm_market, walmart_market.CREDENTIALS, SandboxSettings())
    eb_market = ebay_world.market(1)
    eb_market.listings["SKU-0"].sku = "stock-0"
    eb = EbaySandbox(eb_market, ebay_world.CREDENTIALS, SandboxSettings())
    box = Sandbox(
        [
            Storefront(wm, ("walmart_sku",), lambda li: li.ids["walmart_sku"]),
            Storefront(eb, ebay.ID_FIELDS, lambda li: li.ids["ebay_sku"]),
        ],
        OrderBook(None),
    )
    async with serving(box, port=0) as port, aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{port}"
        yield TwoChannels(
            url,
            http,
            WalmartProfile(walmart_market.profile_settings(url)),
            ebay_profile.build_profile(ebay_world.settings(url)),
            Listing("stock-0", "new", {"walmart_sku": walmart_market.SKUS[0]}),
        )


async def listing_state(on: TwoChannels, platform: str, key: str) -> dict[str, object]:
    async with on.http.get(on.url + "/sandbox/state") as resp:
        state = await resp.json()
    found: dict[str, object] = state["platforms"][platform]["listings"][key]
    return found


async def sell(on: TwoChannels, qty: int) -> tuple[int, dict[str, object]]:
    body = {"platform": "walmart", "listing": walmart_market.SKUS[0], "qty": qty}
    async with on.http.post(on.url + "/sandbox/sale", json=body) as resp:
        return resp.status, await resp.json()


async def test_walmart_unpublishes_an_offer_priced_far_above_the_sellers_own_elsewhere() -> None:
    async with walmart_beside_ebay(reasonable_pct="20") as on:
        ebay_mug = Listing("stock-0", "new", {"ebay_sku": "SKU-0", "offer_id": "OFF-0"})
        settled, _ = await push_all(on.ebay, on.http, [], prices=[(ebay_mug, usd("10.00"))])
        settled, alerts = await push_all(
            on.walmart, on.http, [(on.mug, 0, 3)], prices=[(on.mug, usd("12.01"))]
        )
        assert settled == [True, True] and alerts == []
        mug = await listing_state(on, "walmart", walmart_market.SKUS[0])
        assert (mug["qty"], mug["price"], mug["status"]) == (3, "12.01", "UNPUBLISHED")
        reason = str(mug["status_reason"])
        assert reason.startswith(walmart.UNPUBLISHED_REASON) and "10.00 on ebay" in reason
        status, refusal = await sell(on, 1)
        assert status == 409 and walmart.UNPUBLISHED_REASON in str(refusal["error"])
        # Back within 20% of eBay's price: published again, and sold at that price.
        await push_all(on.walmart, on.http, [], prices=[(on.mug, usd("12.00"))])
        assert (await listing_state(on, "walmart", walmart_market.SKUS[0]))["status"] == LIVE
        status, sale = await sell(on, 2)
        assert (status, sale["unit_price"]) == (200, "12.00")
        mug = await listing_state(on, "walmart", walmart_market.SKUS[0])
        assert (mug["qty"], mug["sold"], mug["revenue"]) == (1, 2, "24.00")


async def test_walmart_refuses_a_price_in_another_currency_in_its_error_shape() -> None:
    async with walmart_beside_ebay(reasonable_pct="20") as on:
        settled, alerts = await push_all(
            on.walmart, on.http, [], prices=[(on.mug, Price("12.00", "EUR"))]
        )
    assert settled == [False]
    (alert,) = alerts
    assert walmart.PRICE_INVALID in alert and "EUR" in alert
