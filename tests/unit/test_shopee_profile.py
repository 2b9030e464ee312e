"""The Shopee profile against the emulated shop: what a push becomes when Shopee accepts,
refuses an item, holds stock for a promotion, throttles, lets a token lapse, refuses a
signature or a stale timestamp, fails or is not there."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web

from invsync.gateway.platforms.base import (
    AuthError,
    Change,
    Lane,
    Listing,
    Outcome,
    ProfileSettings,
    Throttled,
    TransientError,
)
from invsync.gateway.platforms.shopee import PROFILE
from invsync.gateway.secrets import Secret
from invsync.marketplaces import shopee as sp
from invsync.sandbox.platforms import shopee as shopee_sandbox
from tests.marketplace import ManualClock, failing, frozen_wall, token_endpoint_beside
from tests.shopee_market import (
    CREDENTIALS,
    SECRET_VALUES,
    Served,
    profile_settings,
    served_shopee,
)

pytestmark = pytest.mark.anyio
TS = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def change(key: str, qty: int) -> Change:
    item, model = key.split(":")
    listing = Listing(sku=f"stock-{key}", condition="new", ids={"item_id": item, "model_id": model})
    return Change(listing=listing, qty=qty, known=None, source_ts=TS)


def lane(settings: ProfileSettings) -> Lane:
    stock, _price = PROFILE(settings).lanes
    return stock


@pytest.fixture
def clock() -> ManualClock:
    return frozen_wall()


@pytest.fixture
async def served(clock: ManualClock) -> AsyncIterator[Served]:
    async with served_shopee(clock) as s:
        yield s


def test_the_signature_base_string_is_the_documented_one() -> None:
    # Shopee's "API calls" guide, Shop API example.
    base = sp.base_string(
        2001887,
        "/api/v2/shop/get_shop_info",
        1655714431,
        "59777174636562737266615546704c6d",
        14701711,
    )
    assert base == (
        "2001887/api/v2/shop/get_shop_info165571443159777174636562737266615546704c6d14701711"
    )
    assert sp.base_string(2001887, "/api/v2/public/get_shops_by_partner", 1655714431) == (
        "2001887/api/v2/public/get_shops_by_partner1655714431"
    )
    # HMAC-SHA256, lowercase hex (RFC 4231 test case 2).
    assert sp.sign("Jefe", "what do ya want for nothing?") == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


async def test_a_push_sets_the_stock_shopee_shows(
    served: Served, http: aiohttp.ClientSession
) -> None:
    reply = await lane(profile_settings(served.url)).send(http, [change("800:2", 12)])
    assert reply.outcomes == [Outcome(applied=True, shown=12)]
    assert served.sandbox.market.listings["800:2"].qty == 12
    assert served.sandbox.market.listings["800:1"].qty == 0


async def test_a_shop_with_warehouses_gets_its_location_id(http: aiohttp.ClientSession) -> None:
    async with served_shopee(location_id="SGZ") as served:
        without = await lane(profile_settings(served.url)).send(http, [change("900:0", 3)])
        (refused,) = without.outcomes
        assert (refused.applied, refused.retry) == (False, False)
        assert refused.reason is not None and refused.reason.startswith(sp.ERROR_AUTH)
        with_it = lane(profile_settings(served.url, location_id="SGZ"))
        assert (await with_it.send(http, [change("900:0", 3)])).outcomes == [
            Outcome(applied=True, shown=3)
        ]


async def test_an_update_below_the_promotions_reserved_stock_learns_the_reserved_stock(
    served: Served, http: aiohttp.ClientSession
) -> None:
    served.sandbox.reserved["800:1"] = 5
    push = lane(profile_settings(served.url))
    assert (await push.send(http, [change("800:1", 7)])).outcomes[0].applied
    (outcome,) = (await push.send(http, [change("800:1", 4)])).outcomes
    assert outcome == Outcome(applied=False, reason=f"shopee: {sp.BELOW_RESERVED}", held=5)
    assert served.sandbox.market.listings["800:1"].qty == 7


async def test_one_call_sets_an_items_models_and_refuses_only_the_one_below_reserved(
    served: Served, http: aiohttp.ClientSession
) -> None:
    served.sandbox.reserved["800:1"] = 5
    reply = await lane(profile_settings(served.url)).send(
        http, [change("800:1", 4), change("800:2", 6)]
    )
    assert reply.outcomes == [
        Outcome(applied=False, reason=f"shopee: {sp.BELOW_RESERVED}", held=5),
        Outcome(applied=True, shown=6),
    ]
    shown = {key: listing.qty for key, listing in served.sandbox.market.listings.items()}
    assert shown == {"800:1": 0, "800:2": 6, "900:0": 0}
    # the token refresh, one update, one read of the item's reserved stock
    assert served.sandbox.market.counters.requests == 3


async def test_a_model_id_that_is_not_a_number_is_refused_alone(
    served: Served, http: aiohttp.ClientSession
) -> None:
    reply = await lane(profile_settings(served.url)).send(
        http, [change("800:one", 1), change("800:2", 3)]
    )
    refused, applied = reply.outcomes
    assert (refused.applied, refused.retry) == (False, False)
    assert refused.reason is not None and "must be numbers" in refused.reason
    assert applied == Outcome(applied=True, shown=3)


async def test_an_item_without_variants_learns_its_reserved_stock_from_the_item(
    served: Served, http: aiohttp.ClientSession
) -> None:
    served.sandbox.reserved["900:0"] = 3
    (outcome,) = (
        await lane(profile_settings(served.url)).send(http, [change("900:0", 1)])
    ).outcomes
    assert (outcome.applied, outcome.retry, outcome.held) == (False, False, 3)


async def test_a_refusal_with_no_reserved_stock_above_it_holds_nothing(
    served: Served, http: aiohttp.ClientSession
) -> None:
    served.sandbox.reserved["800:2"] = 2
    (outcome,) = (
        await lane(profile_settings(served.url)).send(http, [change("800:2", sp.MAX_STOCK + 1)])
    ).outcomes
    assert (outcome.applied, outcome.retry, outcome.held) == (False, False, None)


@pytest.mark.parametrize("qty", [-1, sp.MAX_STOCK + 1])
async def test_a_stock_out_of_range_is_refused_not_retried(
    served: Served, http: aiohttp.ClientSession, qty: int
) -> None:
    (outcome,) = (
        await lane(profile_settings(served.url)).send(http, [change("900:0", qty)])
    ).outcomes
    # Nothing reserved: a refusal, not a hold (not even one of 0 units).
    assert (outcome.applied, outcome.retry, outcome.held) == (False, False, None)
    assert outcome.reason is not None and "stock" in outcome.reason
    assert served.sandbox.market.listings["900:0"].qty == 0


@pytest.mark.parametrize(
    ("key", "error"), [("1234:0", sp.ERROR_ITEM_NOT_FOUND), ("800:9", sp.ERROR_PARAM)]
)
async def test_an_unknown_item_or_model_is_refused_not_retried(
    served: Served, http: aiohttp.ClientSession, key: str, error: str
) -> None:
    (outcome,) = (await lane(profile_settings(served.url)).send(http, [change(key, 3)])).outcomes
    assert (outcome.applied, outcome.retry) == (False, False)
    assert outcome.reason is not None and outcome.reason.startswith(error)


async def test_a_token_shopee_no_longer_takes_is_refreshed_with_the_newest_refresh_token(
    served: Served, http: aiohttp.ClientSession
) -> None:
    push = lane(profile_settings(served.url))
    await push.send(http, [change("900:0", 1)])
    # Real Shopee spends a refresh token once used: only the one it handed out works now.
    served.sandbox._authorised_refresh = "spent"
    served.sandbox.tokens.revoke_all()  # and it revoked the access token before its 4 hours
    assert (await push.send(http, [change("900:0", 2)])).outcomes[0].applied
    assert served.sandbox.market.listings["900:0"].qty == 2


async def test_a_wrong_partner_key_is_an_auth_error_naming_its_source_not_its_value(
    served: Served, http: aiohttp.ClientSession
) -> None:
    wrong = {**CREDENTIALS, "partner_key": Secret("$SHOPEE_PARTNER_KEY", "not-the-key")}
    with pytest.raises(AuthError) as refused:
        await lane(profile_settings(served.url, credentials=wrong)).send(http, [change("900:0", 1)])
    message = str(refused.value)
    assert "$SHOPEE_PARTNER_KEY" in message and sp.ERROR_SIGN in message
    assert not any(value in message for value in (*SECRET_VALUES.values(), "not-the-key"))


async def test_a_stale_timestamp_is_an_auth_error_about_the_clock(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    clock.now += sp.TIMESTAMP_WINDOW_S + 60  # this host runs six minutes behind Shopee
    with pytest.raises(AuthError, match="clock"):
        await lane(profile_settings(served.url)).send(http, [change("900:0", 1)])
    assert served.sandbox.market.listings["900:0"].qty == 0


async def test_a_refused_refresh_token_is_an_auth_error_naming_its_source(
    served: Served, http: aiohttp.ClientSession
) -> None:
    wrong = {**CREDENTIALS, "refresh_token": Secret("$SHOPEE_REFRESH", "spent-token")}
    with pytest.raises(AuthError) as refused:
        await lane(profile_settings(served.url, credentials=wrong)).send(http, [change("900:0", 1)])
    assert "$SHOPEE_REFRESH" in str(refused.value) and "spent-token" not in str(refused.value)


async def test_a_burst_past_the_budget_raises_throttled(
    served: Served, http: aiohttp.ClientSession
) -> None:
    push = lane(profile_settings(served.url))
    for qty in range(int(sp.BURST)):
        await push.send(http, [change("900:0", qty)])
    with pytest.raises(Throttled):
        await push.send(http, [change("900:0", 99)])
    assert served.sandbox.market.listings["900:0"].qty == sp.BURST - 1
    assert served.sandbox.market.counters.throttled == 1


async def test_an_unreachable_shopee_is_transient(http: aiohttp.ClientSession) -> None:
    async with served_shopee() as served:
        url = served.url
    with pytest.raises(TransientError):
        await lane(profile_settings(url)).send(http, [change("900:0", 1)])


@pytest.mark.parametrize("fault", ["500", "time-out"])
async def test_a_5xx_or_a_time_out_is_transient(
    http: aiohttp.ClientSession, short_timeout: None, fault: str
) -> None:
    body = {"request_id": "r", "error": "error_server", "message": "Something wrong."}
    faulty = failing(fault, lambda: web.json_response(body, status=500))
    async with served_shopee() as real:
        api = web.post(sp.UPDATE_STOCK_PATH, faulty)
        async with token_endpoint_beside(real.sandbox, sp.REFRESH_PATH, api) as url:
            with pytest.raises(TransientError):
                await lane(profile_settings(url)).send(http, [change("900:0", 1)])


def test_a_channel_without_shop_id_is_refused_by_name() -> None:
    settings = profile_settings(None)
    incomplete = ProfileSettings(
        settings.channel, None, CREDENTIALS, {"partner_id": "1"}, settings.overrides
    )
    with pytest.raises(ValueError, match="shop_id"):
        PROFILE(incomplete)


def test_the_lane_sends_up_to_50_models_of_one_item_per_call_within_the_default_budget() -> None:
    only = PROFILE(profile_settings(None)).lanes[0]
    limits = only.limits
    assert (limits.group_by, limits.batch, limits.rate, limits.burst) == ("item_id", 50, 10, 9)
    settings = profile_settings(None)
    for batch in (0, 2.5, sp.MAX_MODELS + 1):
        with pytest.raises(ValueError, match="batch"):
            PROFILE(dataclasses.replace(settings, overrides={"batch": batch}))
    smaller = PROFILE(dataclasses.replace(settings, overrides={"batch": 10})).lanes[0]
    assert smaller.limits.batch == 10


async def test_a_refusal_stands_when_the_reserved_stock_cannot_be_read(
    served: Served, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    served.sandbox.reserved["800:1"] = 5

    def busy(item: int) -> list[tuple[int, int, int]]:
        raise shopee_sandbox._Refused(503, "error_server", "Something wrong. Please try later.")

    monkeypatch.setattr(served.sandbox, "_models", busy)
    (outcome,) = (
        await lane(profile_settings(served.url)).send(http, [change("800:1", 4)])
    ).outcomes
    assert outcome == Outcome(applied=False, reason=f"shopee: {sp.BELOW_RESERVED}")
