"""The TikTok Shop profile against the emulated shop: what a push becomes when TikTok
accepts, refuses a SKU inside an overall success, refuses the signature, throttles, lets
a token expire or is not there."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web

from invsync.gateway.platforms import tiktok as tiktok_profile
from invsync.gateway.platforms.base import (
    AuthError,
    Change,
    Lane,
    Listing,
    Outcome,
    Throttled,
    TransientError,
)
from invsync.gateway.platforms.tiktok import PROFILE
from invsync.gateway.secrets import Secret
from invsync.marketplaces import tiktok as tt
from invsync.sandbox.platforms.base import SandboxSettings
from invsync.sandbox.platforms.tiktok import TikTokSandbox
from tests.marketplace import ManualClock, failing, frozen_wall, served_app, token_endpoint_beside
from tests.tiktok_market import (
    CREDENTIALS,
    PRODUCT,
    SECRET_VALUES,
    SKUS,
    Served,
    profile_settings,
    served_tiktok,
    tiktok_market,
)

pytestmark = pytest.mark.anyio
TS = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
SKU, WAREHOUSE = next(iter(SKUS.items()))


def change(
    qty: int, sku_id: str = SKU, product_id: str = PRODUCT, warehouse: str = WAREHOUSE
) -> Change:
    ids = {"product_id": product_id, "sku_id": sku_id, "warehouse_id": warehouse}
    return Change(Listing(f"stock-{sku_id}", "new", ids), qty, known=None, source_ts=TS)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    """The sandbox's clock, which the profile signs with too."""
    clock = frozen_wall()
    monkeypatch.setattr(tiktok_profile, "_now", clock)
    return clock


@pytest.fixture
async def served(clock: ManualClock) -> AsyncIterator[Served]:
    async with served_tiktok(SandboxSettings(token_ttl_s=3600), clock) as s:
        yield s


def lane(base_url: str, credentials: dict[str, Secret] = CREDENTIALS) -> Lane:
    only = PROFILE(profile_settings(base_url, credentials)).lanes[0]
    return only


async def test_a_signed_push_sets_the_quantity_tiktok_shows(
    served: Served, http: aiohttp.ClientSession
) -> None:
    reply = await lane(served.url).send(http, [change(tt.MAX_QTY)])
    assert reply.outcomes == [Outcome(applied=True, shown=tt.MAX_QTY)]
    assert served.sandbox.market.listings[SKU].qty == tt.MAX_QTY


async def test_one_call_sets_a_products_skus_and_refuses_only_the_one_tiktok_refuses(
    served: Served, http: aiohttp.ClientSession
) -> None:
    (first, first_warehouse), (second, second_warehouse) = SKUS.items()
    pushed = [change(5, first, warehouse=first_warehouse)]
    pushed.append(change(tt.MAX_QTY + 1, second, warehouse=second_warehouse))
    (applied, refused) = (await lane(served.url).send(http, pushed)).outcomes
    assert applied == Outcome(applied=True, shown=5)
    assert (refused.applied, refused.retry) == (False, False)
    assert refused.reason is not None and refused.reason.startswith(str(tt.QUANTITY_OUT_OF_RANGE))
    shown = {key: listing.qty for key, listing in served.sandbox.market.listings.items()}
    assert shown == {first: 5, second: 0}
    assert served.sandbox.market.counters.requests == 2  # the token refresh, one update


def test_the_lane_sends_up_to_100_skus_of_one_product_per_call() -> None:
    only = PROFILE(profile_settings(None)).lanes[0]
    assert (only.limits.group_by, only.limits.batch) == ("product_id", tt.MAX_SKUS)
    settings = profile_settings(None)
    for batch in (0, 2.5, tt.MAX_SKUS + 1):
        with pytest.raises(ValueError, match="batch"):
            PROFILE(dataclasses.replace(settings, overrides={"batch": batch}))
    smaller = PROFILE(dataclasses.replace(settings, overrides={"batch": 20})).lanes[0]
    assert smaller.limits.batch == 20


async def test_the_token_is_refreshed_when_tiktok_says_it_expired(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    inventory = lane(served.url)
    await inventory.send(http, [change(1)])
    # The sandbox's hour passes while the gateway's own clock thinks the token is fresh.
    clock.now += 3600
    assert (await inventory.send(http, [change(2)])).outcomes == [Outcome(True, shown=2)]
    assert served.sandbox.market.listings[SKU].qty == 2


async def test_a_refused_refresh_is_an_auth_error_naming_the_sources_not_values(
    served: Served, http: aiohttp.ClientSession
) -> None:
    wrong = {**CREDENTIALS, "refresh_token": Secret("$TT_REFRESH", "TTP_not-the-token")}
    with pytest.raises(AuthError) as refused:
        await lane(served.url, wrong).send(http, [change(1)])
    message = str(refused.value)
    assert "$TT_REFRESH" in message
    assert not any(v in message for v in (*SECRET_VALUES.values(), "TTP_not-the-token"))


async def test_a_stale_timestamp_is_an_auth_error_pointing_at_the_clock_and_secret(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    inventory = lane(served.url)
    monkeypatch.setattr(tiktok_profile, "_now", lambda: clock.now - tt.TIMESTAMP_WINDOW_S - 60)
    with pytest.raises(AuthError) as refused:
        await inventory.send(http, [change(1)])
    message = str(refused.value)
    assert str(tt.SIGN_INVALID) in message and "$TT_APP_SECRET" in message and "clock" in message
    assert not any(v in message for v in SECRET_VALUES.values())
    assert served.sandbox.market.listings[SKU].qty == 0


async def test_a_signature_with_a_wrong_key_is_an_auth_error(
    http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    # The sandbox knows another app secret than the gateway signs with; the refresh
    # endpoint is the sandbox's own, so the token is granted and only the signature fails.
    signer = {**CREDENTIALS, "app_secret": Secret("$TT_APP_SECRET", "an-old-secret")}
    emulated = TikTokSandbox(tiktok_market(), CREDENTIALS, SandboxSettings(), clock)
    refresh_route = [r for r in emulated.routes() if r.path == tt.REFRESH_PATH]

    async def refresh(request: web.Request) -> web.StreamResponse:
        query = {**request.query, "app_secret": SECRET_VALUES["app_secret"]}
        forwarded = request.clone(rel_url=request.rel_url.with_query(query))
        return await refresh_route[0].handler(forwarded)

    app = web.Application()
    app.add_routes([*emulated.routes()[1:], web.get(tt.REFRESH_PATH, refresh)])
    async with served_app(app) as url:
        with pytest.raises(AuthError, match=str(tt.SIGN_INVALID)):
            await lane(url, signer).send(http, [change(1)])
    assert emulated.market.listings[SKU].qty == 0


@pytest.mark.parametrize(
    ("pushed", "code"),
    [
        (change(tt.MAX_QTY + 1), tt.QUANTITY_OUT_OF_RANGE),
        (change(-1), tt.QUANTITY_OUT_OF_RANGE),
        (change(1, sku_id="1729000000000000999"), tt.SKU_NOT_FOUND),
        (change(1, product_id="999"), tt.PRODUCT_NOT_FOUND),
    ],
    ids=["above 99,999", "below 0", "unknown SKU", "unknown product"],
)
async def test_a_refused_sku_is_refused_with_tiktoks_reason_not_retried(
    served: Served, http: aiohttp.ClientSession, pushed: Change, code: int
) -> None:
    (outcome,) = (await lane(served.url).send(http, [pushed])).outcomes
    assert (outcome.applied, outcome.retry) == (False, False)
    assert outcome.reason is not None and outcome.reason.startswith(str(code))


async def test_a_burst_past_fifty_a_second_raises_throttled(
    served: Served, http: aiohttp.ClientSession
) -> None:
    inventory = lane(served.url)
    for qty in range(int(tt.BURST)):
        await inventory.send(http, [change(qty)])
    with pytest.raises(Throttled):
        await inventory.send(http, [change(99)])
    assert served.sandbox.market.listings[SKU].qty == tt.BURST - 1


async def test_an_unreachable_tiktok_is_transient(http: aiohttp.ClientSession) -> None:
    async with served_tiktok() as served:
        url = served.url
    with pytest.raises(TransientError):
        await lane(url).send(http, [change(1)])


@pytest.mark.parametrize("fault", ["503", "time-out"])
async def test_a_5xx_or_a_time_out_is_transient(
    http: aiohttp.ClientSession, short_timeout: None, fault: str
) -> None:
    faulty = failing(fault, lambda: web.Response(status=503, text="Service Unavailable"))
    emulated = TikTokSandbox(tiktok_market(), CREDENTIALS, SandboxSettings())
    api = web.post(tt.INVENTORY_PATH, faulty)
    async with token_endpoint_beside(emulated, tt.REFRESH_PATH, api) as url:
        with pytest.raises(TransientError):
            await lane(url).send(http, [change(1)])


def test_a_channel_without_shop_cipher_is_refused_by_name() -> None:
    settings = profile_settings(None)
    with pytest.raises(ValueError, match="shop_cipher"):
        PROFILE(type(settings)(settings.channel, None, CREDENTIALS, {}, {}))


def test_tiktoks_own_api_host_takes_tokens_from_its_auth_host() -> None:
    assert tiktok_profile._token_url(tt.DEFAULT_BASE_URL) == tt.AUTH_URL + tt.REFRESH_PATH
    local = "http://127.0.0.1:8790"
    assert tiktok_profile._token_url(local) == local + tt.REFRESH_PATH


async def test_a_sandbox_restart_loses_the_token_and_the_next_push_refreshes_it(
    http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    async with served_tiktok(clock=clock) as before:
        inventory = lane(before.url)
        await inventory.send(http, [change(4)])
        port = int(before.url.rsplit(":", 1)[1])
    async with served_tiktok(clock=clock, port=port) as after:
        assert (await inventory.send(http, [change(5)])).outcomes == [Outcome(True, shown=5)]
        assert after.sandbox.market.listings[SKU].qty == 5
