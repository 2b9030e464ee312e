"""The Lazada profile against the emulated seller: what a push becomes when Lazada accepts,
refuses some SKUs of a call, holds locked stock, throttles, lets a token lapse, refuses
a signature or a stale timestamp, fails or is not there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web

from invsync.gateway.platforms import lazada as lazada_profile
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
from invsync.gateway.platforms.lazada import PROFILE
from invsync.gateway.secrets import Secret
from invsync.marketplaces import lazada as lz
from tests.lazada_market import (
    CREDENTIALS,
    SECRET_VALUES,
    SKUS,
    Served,
    profile_settings,
    served_lazada,
)
from tests.marketplace import ManualClock, failing, frozen_wall, token_endpoint_beside

pytestmark = pytest.mark.anyio
TS = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def change(seller_sku: str, qty: int) -> Change:
    item, sku_id = SKUS.get(seller_sku, ("1", "1"))
    ids = {"seller_sku": seller_sku, "item_id": item, "sku_id": sku_id}
    return Change(Listing(f"stock-{seller_sku}", "new", ids), qty, None, TS)


def lane(settings: ProfileSettings) -> Lane:
    (only,) = PROFILE(settings).lanes
    return only


@pytest.fixture
def clock() -> ManualClock:
    return frozen_wall()


@pytest.fixture
async def served(clock: ManualClock) -> AsyncIterator[Served]:
    async with served_lazada(clock) as s:
        yield s


def test_the_signature_matches_lazadas_worked_example() -> None:
    params = {
        "app_key": "123456",
        "access_token": "test",
        "timestamp": "1517820392000",
        "sign_method": "sha256",
        "order_id": "1234",
    }
    assert lz.string_to_sign("/order/get", params) == (
        "/order/getaccess_tokentestapp_key123456order_id1234sign_methodsha256timestamp1517820392000"
    )
    assert lz.sign("helloworld", "/order/get", {**params, "sign": "ignored"}) == (
        "4190D32361CFB9581350222F345CB77F3B19F0E31D162316848A2C1FFD5FAB4A"
    )


async def test_a_push_sets_every_quantity_of_the_call(
    served: Served, http: aiohttp.ClientSession
) -> None:
    reply = await lane(profile_settings(served.url)).send(
        http, [change("LZ-RED", 12), change("LZ-BLUE", 0)]
    )
    assert reply.outcomes == [Outcome(applied=True), Outcome(applied=True)]
    assert {k: li.qty for k, li in served.sandbox.market.listings.items()} == {
        "LZ-RED": 12,
        "LZ-BLUE": 0,
    }


async def test_an_update_below_the_locked_stock_learns_it_and_the_rest_of_the_call_lands(
    served: Served, http: aiohttp.ClientSession
) -> None:
    served.sandbox.locked["LZ-RED"] = 5
    locked, other = (
        await lane(profile_settings(served.url)).send(
            http, [change("LZ-RED", 4), change("LZ-BLUE", 9)]
        )
    ).outcomes
    assert locked == Outcome(
        applied=False, reason=f"lazada: Quantity: {lz.below_locked(5)}", held=5
    )
    assert other == Outcome(applied=True)
    assert served.sandbox.market.listings["LZ-RED"].qty == 0
    assert served.sandbox.market.listings["LZ-BLUE"].qty == 9


@pytest.mark.parametrize(
    ("seller_sku", "qty", "message"),
    [
        ("NOT-LISTED", 3, lz.SELLER_SKU_INVALID),
        ("LZ-RED", -1, lz.NEGATIVE_QUANTITY),
        ("LZ-RED", lz.MAX_QUANTITY + 1, str(lz.MAX_QUANTITY)),
    ],
)
async def test_an_unknown_sku_or_a_quantity_out_of_range_is_refused_not_retried(
    served: Served, http: aiohttp.ClientSession, seller_sku: str, qty: int, message: str
) -> None:
    (outcome,) = (
        await lane(profile_settings(served.url)).send(http, [change(seller_sku, qty)])
    ).outcomes
    # Nothing is locked (and Lazada has no item "1" to read): the refusal stands.
    assert (outcome.applied, outcome.retry, outcome.held) == (False, False, None)
    assert outcome.reason is not None and message in outcome.reason
    assert served.sandbox.market.listings["LZ-RED"].qty == 0


async def test_a_token_lazada_no_longer_takes_is_refreshed_once(
    served: Served, http: aiohttp.ClientSession
) -> None:
    push = lane(profile_settings(served.url))
    await push.send(http, [change("LZ-RED", 1)])
    served.sandbox.tokens.revoke_all()  # Lazada revoked it early
    assert (await push.send(http, [change("LZ-RED", 2)])).outcomes == [Outcome(applied=True)]
    assert served.sandbox.market.listings["LZ-RED"].qty == 2


async def test_a_wrong_app_secret_is_an_auth_error_naming_its_source_not_its_value(
    served: Served, http: aiohttp.ClientSession
) -> None:
    wrong = {**CREDENTIALS, "app_secret": Secret("$LAZADA_APP_SECRET", "not-the-secret")}
    with pytest.raises(AuthError) as refused:
        await lane(profile_settings(served.url, credentials=wrong)).send(
            http, [change("LZ-RED", 1)]
        )
    message = str(refused.value)
    assert "$LAZADA_APP_SECRET" in message and lz.INCOMPLETE_SIGNATURE in message
    assert not any(value in message for value in (*SECRET_VALUES.values(), "not-the-secret"))


async def test_a_stale_timestamp_is_an_auth_error_about_the_clock(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    clock.now += lz.TIMESTAMP_WINDOW_S + 60  # this host runs two hours behind
    with pytest.raises(AuthError, match="clock"):
        await lane(profile_settings(served.url)).send(http, [change("LZ-RED", 1)])


async def test_a_refused_refresh_token_is_an_auth_error_naming_its_source(
    served: Served, http: aiohttp.ClientSession
) -> None:
    wrong = {**CREDENTIALS, "refresh_token": Secret("$LAZADA_REFRESH", "revoked-token")}
    with pytest.raises(AuthError) as refused:
        await lane(profile_settings(served.url, credentials=wrong)).send(
            http, [change("LZ-RED", 1)]
        )
    assert "$LAZADA_REFRESH" in str(refused.value) and "revoked-token" not in str(refused.value)


async def test_a_burst_past_50_calls_a_second_raises_throttled(
    served: Served, http: aiohttp.ClientSession
) -> None:
    push = lane(profile_settings(served.url))
    for qty in range(int(lz.BURST)):
        await push.send(http, [change("LZ-RED", qty)])
    with pytest.raises(Throttled) as throttled:
        await push.send(http, [change("LZ-RED", 99)])
    assert throttled.value.budget.retry_after_s == lazada_profile.THROTTLE_PAUSE_S
    assert served.sandbox.market.listings["LZ-RED"].qty == lz.BURST - 1


async def test_an_unreachable_lazada_is_transient(http: aiohttp.ClientSession) -> None:
    async with served_lazada() as served:
        url = served.url
    with pytest.raises(TransientError):
        await lane(profile_settings(url)).send(http, [change("LZ-RED", 1)])


@pytest.mark.parametrize("fault", ["502", "time-out", "internal"])
async def test_a_5xx_a_time_out_or_an_internal_error_is_transient(
    http: aiohttp.ClientSession, short_timeout: None, fault: str
) -> None:

    def reply() -> web.Response:
        if fault == "internal":
            return web.json_response({"code": "513", "message": "Internal call exception"})
        return web.Response(status=502, text="Bad Gateway")

    async with served_lazada() as real:
        api = web.post(lz.REST_PREFIX + lz.UPDATE_PATH, failing(fault, reply))
        token_path = lz.REST_PREFIX + lz.REFRESH_PATH
        async with token_endpoint_beside(real.sandbox, token_path, api) as url:
            with pytest.raises(TransientError):
                await lane(profile_settings(url)).send(http, [change("LZ-RED", 1)])


def test_the_batch_is_lazadas_recommended_20_and_never_more_than_50() -> None:
    only = lane(profile_settings(None))
    assert (only.limits.batch, only.limits.rate, only.limits.burst) == (20, 50.0, 49.0)
    assert lane(profile_settings(None, overrides={"batch": 50})).limits.batch == 50
    with pytest.raises(ValueError, match="batch"):
        PROFILE(profile_settings(None, overrides={"batch": 51}))


@pytest.mark.parametrize(
    ("base_url", "token_url"),
    [
        ("https://api.lazada.co.th", "https://auth.lazada.com/rest/auth/token/refresh"),
        ("http://127.0.0.1:8790", "http://127.0.0.1:8790/rest/auth/token/refresh"),
    ],
)
def test_every_venture_takes_its_token_from_lazadas_auth_host(
    base_url: str, token_url: str
) -> None:
    assert lazada_profile._token_url(base_url) == token_url
