"""The Shopify profile against the Shopify sandbox: pushes, learns its budget from the
replies, and turns a stale compare-and-swap into a retry with the store's quantity."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
import anyio
import pytest
from aiohttp import web

from invsync.gateway.platforms import shopify as shopify_profile
from invsync.gateway.platforms.base import (
    AuthError,
    BatchRefused,
    Change,
    Lane,
    Listing,
    ProfileSettings,
    Throttled,
    TransientError,
)
from invsync.gateway.platforms.shopify import PROFILE
from invsync.gateway.secrets import Secret
from invsync.sandbox.app import Sandbox, Storefront, serving
from invsync.sandbox.market import Bucket, Market
from invsync.sandbox.orders import OrderBook
from invsync.sandbox.platforms.base import SandboxSettings
from invsync.sandbox.platforms.shopify import ShopifySandbox

pytestmark = pytest.mark.anyio

TOKEN = Secret("$SHOP_TOKEN", "shpat_profile_test")
LOCATION = "gid://shopify/Location/7"
NOW = datetime(2026, 12, 5, tzinfo=UTC)


def listing(n: int) -> Listing:
    ids = {"inventory_item_id": f"gid://shopify/InventoryItem/{n}", "location_id": LOCATION}
    return Listing(f"S{n}", "new", ids)


def settings(base_url: str | None, token: Secret = TOKEN, **options: str) -> ProfileSettings:
    return ProfileSettings("web", base_url, {"access_token": token}, options, {})


@dataclass
class Rig:
    http: aiohttp.ClientSession
    url: str
    lane: Lane
    store: ShopifySandbox

    def shown(self, n: int) -> int:
        return self.store.market.listings[listing(n).ids["inventory_item_id"]].qty


@asynccontextmanager
async def rig(token: Secret = TOKEN) -> AsyncIterator[Rig]:
    store = ShopifySandbox(Market("shopify", "web"), {"access_token": TOKEN}, SandboxSettings())
    profile = PROFILE(settings("http://unused"))
    front = Storefront(store, profile.id_fields, profile.listing_key)
    for n in range(3):
        front.add(listing(n))
    async with (
        serving(Sandbox([front], OrderBook(None)), port=0) as port,
        aiohttp.ClientSession() as http,
    ):
        url = f"http://127.0.0.1:{port}"
        lane = PROFILE(settings(url, token)).lanes[0]
        yield Rig(http, url, lane, store)


async def test_a_push_sets_the_store_and_reports_its_budget() -> None:
    async with rig() as r:
        reply = await r.lane.send(r.http, [Change(listing(0), 9, None, NOW)])
        assert [(o.applied, o.shown) for o in reply.outcomes] == [(True, 9)]
        assert r.shown(0) == 9
        assert (reply.budget.rate, reply.budget.capacity) == (100.0, 1000.0)
        assert reply.budget.available is not None and reply.budget.available < 1000


async def test_a_throttled_request_says_how_long_to_wait_and_at_what_rate() -> None:
    async with rig() as r:
        r.store.bucket = Bucket(rate=2.0, capacity=15.0, clock=lambda: 0.0)  # no refill
        fits = await r.lane.send(r.http, [Change(listing(0), 1, None, NOW)])
        assert fits.budget.available == 4.0 and fits.budget.retry_after_s is None
        with pytest.raises(Throttled) as caught:
            await r.lane.send(r.http, [Change(listing(0), 2, None, NOW)])
        budget = caught.value.budget
        assert (budget.rate, budget.capacity) == (2.0, 15.0)
        assert budget.retry_after_s == (11 - 4) / 2.0  # the 11-point mutation, 4 points left
        assert r.shown(0) == 1
        assert r.store.market.counters.throttled == 1


async def test_a_stale_known_quantity_comes_back_as_a_retry_with_what_the_store_shows() -> None:
    async with rig() as r:
        await r.lane.send(r.http, [Change(listing(0), 10, None, NOW)])
        async with r.http.post(
            f"{r.url}/sandbox/sale",
            json={"platform": "shopify", "listing": listing(0).ids["inventory_item_id"], "qty": 3},
        ) as resp:
            assert resp.status == 200
        reply = await r.lane.send(
            r.http, [Change(listing(0), 4, 10, NOW), Change(listing(1), 5, 0, NOW)]
        )
        stale, other = reply.outcomes
        assert (stale.applied, stale.retry, stale.shown) == (False, True, 7)
        assert stale.reason is not None and stale.reason.startswith("CHANGE_FROM_QUANTITY_STALE")
        assert (other.applied, other.retry) == (False, True)
        assert (r.shown(0), r.shown(1)) == (7, 0)
        again = await r.lane.send(
            r.http, [Change(listing(0), 4, stale.shown, NOW), Change(listing(1), 5, 0, NOW)]
        )
        assert [o.applied for o in again.outcomes] == [True, True]
        assert (r.shown(0), r.shown(1)) == (4, 5)


async def test_an_unknown_item_is_refused_with_the_platform_reason_and_not_retried() -> None:
    async with rig() as r:
        reply = await r.lane.send(
            r.http, [Change(listing(42), 1, None, NOW), Change(listing(1), 2, None, NOW)]
        )
        unknown, other = reply.outcomes
        assert (unknown.applied, unknown.retry) == (False, False)
        assert unknown.reason is not None and unknown.reason.startswith("INVALID_INVENTORY_ITEM:")
        assert other.retry


async def test_a_refused_token_is_an_auth_error_that_names_its_source_not_its_value() -> None:
    wrong = Secret("$SHOP_TOKEN", "shpat_not_this_one")
    async with rig(token=wrong) as r:
        with pytest.raises(AuthError) as caught:
            await r.lane.send(r.http, [Change(listing(0), 1, None, NOW)])
    message = str(caught.value)
    assert "$SHOP_TOKEN" in message
    assert wrong.reveal() not in message and TOKEN.reveal() not in message


def test_the_profile_reads_its_settings_and_refuses_incomplete_ones() -> None:
    profile = PROFILE(settings(None, shop="example", plan="plus"))
    lane = profile.lanes[0]
    assert lane.limits.rate == 1000.0 and lane.limits.batch == 250
    assert profile.listing_key(listing(3)) == "gid://shopify/InventoryItem/3"
    with pytest.raises(ValueError, match="base_url"):
        PROFILE(settings(None))
    with pytest.raises(ValueError, match="plan"):
        PROFILE(settings("https://example.myshopify.com", plan="gold"))
    with pytest.raises(ValueError, match="access_token"):
        PROFILE(ProfileSettings("web", "https://example.myshopify.com", {}, {}, {}))
    with pytest.raises(ValueError, match="batch"):
        PROFILE(
            ProfileSettings(
                "web", "https://e.myshopify.com", {"access_token": TOKEN}, {}, {"batch": 251}
            )
        )


@asynccontextmanager
async def scripted(
    status: int, body: str, headers: dict[str, str], delay_s: float = 0.0
) -> AsyncIterator[Lane]:
    """A store that answers every request the same way (what the sandbox never does:
    a 5xx, a 429 from a proxy, a reply that is not JSON, a hang)."""

    async def answer(request: web.Request) -> web.Response:
        await anyio.sleep(delay_s)
        return web.Response(status=status, text=body, headers=headers)

    app = web.Application()
    app.router.add_post("/admin/api/2026-04/graphql.json", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield PROFILE(settings(f"http://127.0.0.1:{runner.addresses[0][1]}")).lanes[0]
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("status", "body", "headers", "error"),
    [
        (503, "unavailable", {}, TransientError),
        (200, "<html>maintenance</html>", {}, TransientError),
        (429, "{}", {"Retry-After": "2"}, Throttled),
        (429, "{}", {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, Throttled),
        (400, '{"errors": {"query": "Required parameter missing or invalid"}}', {}, BatchRefused),
        (403, "{}", {}, AuthError),
    ],
)
async def test_whole_request_failures_map_to_what_the_scheduler_does_with_them(
    status: int, body: str, headers: dict[str, str], error: type[Exception]
) -> None:
    async with scripted(status, body, headers) as lane, aiohttp.ClientSession() as http:
        with pytest.raises(error) as caught:
            await lane.send(http, [Change(listing(0), 1, None, NOW)])
    if isinstance(caught.value, Throttled):  # a date in the past: no wait
        assert caught.value.budget.retry_after_s == (2.0 if headers["Retry-After"] == "2" else 0.0)
    assert TOKEN.reveal() not in str(caught.value)


async def test_a_store_that_does_not_answer_in_time_is_transient(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shopify_profile, "REQUEST_TIMEOUT_S", 0.2)
    async with scripted(200, "{}", {}, delay_s=2.0) as lane, aiohttp.ClientSession() as http:
        with pytest.raises(TransientError):
            await lane.send(http, [Change(listing(0), 1, None, NOW)])
