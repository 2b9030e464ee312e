"""The eBay sandbox refuses what eBay refuses, in eBay's shapes: it is only worth
rehearsing against if a wrong token, shape, batch, quantity or burst fails there
as it would on eBay."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import aiohttp
import pytest

from invsync.marketplaces import ebay
from invsync.sandbox.market import Bucket, Market
from invsync.sandbox.platforms.base import SandboxSettings
from invsync.sandbox.platforms.ebay import EbaySandbox
from tests.ebay_world import (
    CLIENT_ID,
    CLIENT_SECRET,
    CREDENTIALS,
    REFRESH_TOKEN,
    FakeClock,
    basic,
    serving,
)
from tests.ebay_world import market as make_market

pytestmark = pytest.mark.anyio

BASIC = basic(CLIENT_ID, CLIENT_SECRET)
GOOD_FORM = {"grant_type": "refresh_token", "refresh_token": REFRESH_TOKEN, "scope": ebay.SCOPE}


class Seller:
    """A test's view of the sandbox: its URL, an HTTP session, the emulated account and
    its market."""

    def __init__(self, url: str, http: aiohttp.ClientSession, platform: EbaySandbox) -> None:
        self.url = url
        self.http = http
        self.platform = platform
        self.market: Market = platform.market

    async def token(self) -> str:
        async with self.http.post(self.url + ebay.TOKEN_PATH, data=GOOD_FORM, headers=BASIC) as r:
            assert r.status == 200
            return str((await r.json())["access_token"])

    async def update(
        self,
        body: object,
        token: str | None = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        bearer = token if token is not None else await self.token()
        data = raw if raw is not None else json.dumps(body).encode()
        async with self.http.post(
            self.url + ebay.BULK_UPDATE_PATH,
            data=data,
            headers={"Authorization": f"Bearer {bearer}", "Content-Type": content_type},
        ) as r:
            return r.status, await r.json()


class Day:
    """A UTC date a test moves by hand."""

    def __init__(self) -> None:
        self.today = date(2026, 12, 5)

    def __call__(self) -> date:
        return self.today


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def day() -> Day:
    return Day()


@pytest.fixture
def bucket() -> Bucket:
    """A budget with room for the test's calls, unless the test drains it."""
    return Bucket(rate=1.0, capacity=1000.0, clock=lambda: 0.0)


@asynccontextmanager
async def open_seller(clock: FakeClock, day: Day, bucket: Bucket) -> AsyncIterator[Seller]:
    platform = EbaySandbox(
        make_market(30),
        CREDENTIALS,
        SandboxSettings(token_ttl_s=7200.0),
        bucket=bucket,
        clock=clock,
        today=day,
    )
    async with serving(platform.routes()) as url, aiohttp.ClientSession() as http:
        yield Seller(url, http, platform)


@pytest.fixture
async def seller(clock: FakeClock, day: Day, bucket: Bucket) -> AsyncIterator[Seller]:
    async with open_seller(clock, day, bucket) as opened:
        yield opened


def entry(i: int, qty: int) -> dict[str, Any]:
    return {
        "sku": f"SKU-{i}",
        "shipToLocationAvailability": {"quantity": qty},
        "offers": [{"offerId": f"OFF-{i}", "availableQuantity": qty}],
    }


def error_ids(body: Any) -> list[int]:
    return [e["errorId"] for e in body["errors"]]


# -- OAuth token endpoint ---------------------------------------------------------


async def test_token_for_the_sellers_refresh_token_lives_the_configured_time(
    seller: Seller,
) -> None:
    async with seller.http.post(seller.url + ebay.TOKEN_PATH, data=GOOD_FORM, headers=BASIC) as r:
        assert r.status == 200
        body = await r.json()
    assert body["expires_in"] == 7200
    assert body["access_token"]


@pytest.mark.parametrize(
    ("auth", "form", "status", "error"),
    [
        ({}, GOOD_FORM, 401, "invalid_client"),
        ({"Authorization": "Basic not-base64!"}, GOOD_FORM, 401, "invalid_client"),
        (basic(CLIENT_ID, "wrong"), GOOD_FORM, 401, "invalid_client"),
        (basic("someone-else", CLIENT_SECRET), GOOD_FORM, 401, "invalid_client"),
        (BASIC, {**GOOD_FORM, "refresh_token": "stolen"}, 400, "invalid_grant"),
        (BASIC, {**GOOD_FORM, "grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
        (
            BASIC,
            {
                **GOOD_FORM,
                "scope": ebay.SCOPE + " https://api.ebay.com/oauth/api_scope/sell.finances",
            },
            400,
            "invalid_scope",
        ),
    ],
)
async def test_token_endpoint_refuses_wrong_credentials_as_oauth_does(
    seller: Seller,
    auth: dict[str, str],
    form: dict[str, str],
    status: int,
    error: str,
) -> None:
    async with seller.http.post(seller.url + ebay.TOKEN_PATH, data=form, headers=auth) as r:
        assert r.status == status
        assert (await r.json())["error"] == error
    assert seller.platform.state()["tokens_refused"] == 1


# -- access tokens ------------------------------------------------------------------


async def test_update_without_a_valid_token_is_401_with_error_1001(seller: Seller) -> None:
    status, body = await seller.update({"requests": [entry(0, 5)]}, token="made-up")
    assert (status, error_ids(body)) == (401, [ebay.ERROR_INVALID_TOKEN])
    assert seller.market.listings["SKU-0"].qty == 0
    assert seller.market.counters.rejected == 1


async def test_an_expired_token_is_refused(seller: Seller, clock: FakeClock) -> None:
    token = await seller.token()
    assert (await seller.update({"requests": [entry(0, 5)]}, token=token))[0] == 200
    clock.now += 7200.0
    status, body = await seller.update({"requests": [entry(0, 6)]}, token=token)
    assert (status, error_ids(body)) == (401, [ebay.ERROR_INVALID_TOKEN])
    assert seller.market.listings["SKU-0"].qty == 5


# -- whole-request refusals -------------------------------------------------------


def offers_only(first: int, count: int) -> dict[str, Any]:
    return {
        "offers": [
            {"offerId": f"OFF-{i}", "availableQuantity": 1} for i in range(first, first + count)
        ]
    }


@pytest.mark.parametrize(
    ("body", "error_id"),
    [
        ({}, ebay.ERROR_INVALID_VALUE),
        ({"requests": []}, ebay.ERROR_INVALID_VALUE),
        ({"requests": [entry(i, 1) for i in range(26)]}, ebay.ERROR_USER),
        ({"requests": [offers_only(0, 13), offers_only(13, 13)]}, ebay.ERROR_OFFERS_EXCEEDED),
        ({"requests": [entry(1, 1), entry(1, 2)]}, ebay.ERROR_SKU_NOT_UNIQUE),
        ({"requests": [offers_only(1, 1), offers_only(1, 1)]}, ebay.ERROR_OFFER_NOT_UNIQUE),
        ({"requests": [{**entry(1, 1), "shipToLocationAvailability": {"quantity": "5"}}]}, 25709),
        ({"requests": [{"shipToLocationAvailability": {"quantity": 5}}]}, 25709),
        ({"requests": [{"sku": "SKU-1"}]}, ebay.ERROR_INVALID_VALUE),
        ({"requests": [{"sku": "SKU-1", "offers": [{"offerId": "OFF-1"}]}]}, 25709),
        ({"requests": [{**entry(1, 1), "sku": "S" * 51}]}, ebay.ERROR_INVALID_VALUE),
    ],
    ids=[
        "no-requests",
        "empty-requests",
        "26-requests",
        "26-offers",
        "duplicate-sku",
        "duplicate-offer",
        "quantity-not-integer",
        "availability-without-sku",
        "sku-with-nothing-to-set",
        "offer-with-nothing-to-set",
        "sku-too-long",
    ],
)
async def test_malformed_or_oversized_requests_are_refused_whole(
    seller: Seller, body: object, error_id: int
) -> None:
    status, reply = await seller.update(body)
    assert (status, error_ids(reply)) == (400, [error_id])
    assert reply["errors"][0]["domain"] == ebay.DOMAIN_INVENTORY
    assert all(listing.updates == 0 for listing in seller.market.listings.values())
    assert seller.market.counters.rejected == 1


async def test_a_body_that_is_not_json_is_refused(seller: Seller) -> None:
    status, reply = await seller.update(None, raw=b"requests=SKU-1")
    assert (status, error_ids(reply)) == (400, [ebay.ERROR_INVALID_VALUE])


async def test_a_body_not_sent_as_json_is_refused(seller: Seller) -> None:
    body = {"requests": [entry(0, 1)]}
    status, reply = await seller.update(
        body, raw=json.dumps(body).encode(), content_type="text/plain"
    )
    assert (status, error_ids(reply)) == (400, [ebay.ERROR_INVALID_VALUE])
    assert seller.market.listings["SKU-0"].updates == 0


async def test_25_requests_with_25_offers_is_the_largest_batch_accepted(seller: Seller) -> None:
    status, reply = await seller.update({"requests": [entry(i, 4) for i in range(25)]})
    assert status == 200
    assert len(reply["responses"]) == 50
    assert all(seller.market.listings[f"SKU-{i}"].qty == 4 for i in range(25))


# -- per-item refusals ------------------------------------------------------------


async def test_per_item_refusals_come_back_in_a_207_and_the_rest_applies(seller: Seller) -> None:
    unknown_sku = entry(99, 3)
    foreign_offer = {**entry(1, 3), "offers": [{"offerId": "OFF-2", "availableQuantity": 3}]}
    negative = entry(3, -1)
    too_large = entry(4, ebay.MAX_QUANTITY + 1)
    status, reply = await seller.update(
        {"requests": [entry(0, 7), unknown_sku, foreign_offer, negative, too_large]}
    )
    assert status == 207
    by_key = {(r["sku"], r.get("offerId")): r for r in reply["responses"]}
    assert by_key[("SKU-0", None)]["statusCode"] == 200
    assert by_key[("SKU-0", "OFF-0")]["statusCode"] == 200
    assert error_ids(by_key[("SKU-99", None)]) == [ebay.ERROR_SKU_NOT_FOUND]
    assert error_ids(by_key[("SKU-1", "OFF-2")]) == [ebay.ERROR_OFFER_NOT_AVAILABLE]
    assert error_ids(by_key[("SKU-3", "OFF-3")]) == [ebay.ERROR_INVALID_QUANTITY]
    assert error_ids(by_key[("SKU-4", None)]) == [ebay.ERROR_INVALID_QUANTITY]
    assert [seller.market.listings[f"SKU-{i}"].qty for i in range(5)] == [7, 0, 0, 0, 0]


async def test_the_listing_shows_the_smaller_of_item_and_offer_quantity(seller: Seller) -> None:
    listing = seller.market.listings["SKU-0"]
    body = {"requests": [{**entry(0, 9), "offers": [{"offerId": "OFF-0", "availableQuantity": 4}]}]}
    assert (await seller.update(body))[0] == 200
    assert listing.qty == 4
    listing.qty, listing.sold = 2, 2  # two sold on eBay: both levels drop by two
    item_only = {"requests": [{"sku": "SKU-0", "shipToLocationAvailability": {"quantity": 10}}]}
    assert (await seller.update(item_only))[0] == 200
    assert listing.qty == 2
    offer_only = {"requests": [{"offers": [{"offerId": "OFF-0", "availableQuantity": 8}]}]}
    assert (await seller.update(offer_only))[0] == 200
    assert listing.qty == 8
    item_only["requests"][0]["shipToLocationAvailability"] = {"quantity": 3}
    assert (await seller.update(item_only))[0] == 200
    assert listing.qty == 3


# -- the daily revision cap -----------------------------------------------------


async def test_the_251st_revision_of_a_listing_in_a_day_is_refused_until_the_next_day(
    seller: Seller, day: Day
) -> None:
    token = await seller.token()
    for qty in range(ebay.DAILY_REVISIONS):
        status, _ = await seller.update({"requests": [entry(0, qty)]}, token=token)
        assert status == 200
    status, reply = await seller.update({"requests": [entry(0, 500), entry(1, 8)]}, token=token)
    assert status == 207
    refused = [r for r in reply["responses"] if r["sku"] == "SKU-0"]
    assert [error_ids(r) for r in refused] == [[ebay.ERROR_CANNOT_REVISE]] * 2
    assert seller.market.listings["SKU-0"].qty == ebay.DAILY_REVISIONS - 1
    assert seller.market.listings["SKU-1"].qty == 8
    assert seller.platform.state()["revisions_today"] == {"SKU-0": 250, "SKU-1": 1}

    day.today = date(2026, 12, 6)
    assert (await seller.update({"requests": [entry(0, 500)]}, token=token))[0] == 200
    assert seller.market.listings["SKU-0"].qty == 500
    assert seller.platform.state()["revisions_today"] == {"SKU-0": 1}


# -- the call budget --------------------------------------------------------------


async def test_calls_beyond_the_budget_get_429_with_error_2001(clock: FakeClock, day: Day) -> None:
    async with open_seller(clock, day, Bucket(rate=1.0, capacity=3.0, clock=clock)) as seller:
        token = await seller.token()
        statuses = []
        for qty in range(5):
            status, reply = await seller.update({"requests": [entry(0, qty)]}, token=token)
            statuses.append(status)
        assert statuses == [200, 200, 200, 429, 429]
        assert error_ids(reply) == [ebay.ERROR_TOO_MANY_REQUESTS]
        assert seller.market.listings["SKU-0"].qty == 2
        counters = seller.market.counters
        assert (counters.requests, counters.throttled) == (5, 2)
        clock.now += 1.0  # one call's worth refilled
        assert (await seller.update({"requests": [entry(0, 9)]}, token=token))[0] == 200


def test_a_channel_without_the_three_credentials_is_refused() -> None:
    with pytest.raises(ValueError, match="client_secret"):
        EbaySandbox(
            make_market(1),
            {k: v for k, v in CREDENTIALS.items() if k != "client_secret"},
            SandboxSettings(),
        )
