"""The eBay profile against the eBay sandbox: what it sends is what eBay accepts, what
eBay answers per item becomes one outcome per change, and its token is refreshed
before it runs out and when eBay refuses it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
import anyio
import msgspec
import pytest
from aiohttp import web

from invsync.gateway.platforms import calls
from invsync.gateway.platforms.base import (
    AuthError,
    BatchRefused,
    Change,
    Lane,
    Listing,
    Outcome,
    Profile,
    Throttled,
    TransientError,
    retry_after_s,
)
from invsync.gateway.platforms.ebay import PROFILE, BulkUpdateLane, read_outcomes
from invsync.gateway.secrets import Secret
from invsync.marketplaces import ebay
from invsync.sandbox.market import Bucket, Market
from invsync.sandbox.platforms.base import SandboxSettings
from invsync.sandbox.platforms.ebay import EbaySandbox
from tests.ebay_world import CLIENT_SECRET, CREDENTIALS, REFRESH_TOKEN, FakeClock, serving, settings
from tests.ebay_world import market as make_market

pytestmark = pytest.mark.anyio
TS = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def change(i: int, qty: int) -> Change:
    listing = Listing(f"A{i}", "new", {"ebay_sku": f"SKU-{i}", "offer_id": f"OFF-{i}"})
    return Change(listing=listing, qty=qty, known=None, source_ts=TS)


@dataclass
class World:
    """The profile, its lane, the sandbox it talks to, and the sandbox's clock."""

    profile: Profile
    lane: Lane
    sandbox: EbaySandbox
    clock: FakeClock
    http: aiohttp.ClientSession
    url: str

    @property
    def market(self) -> Market:
        return self.sandbox.market

    async def send(self, changes: Sequence[Change]) -> list[Outcome]:
        reply = await self.lane.send(self.http, changes)
        return list(reply.outcomes)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    clock = FakeClock()
    sandbox = EbaySandbox(
        make_market(30),
        CREDENTIALS,
        SandboxSettings(token_ttl_s=7200.0),
        bucket=Bucket(rate=1.0, capacity=1000.0, clock=clock),
        clock=clock,
    )
    async with serving(sandbox.routes()) as url, aiohttp.ClientSession() as http:
        profile = PROFILE(settings(url))
        yield World(profile, profile.lanes[0], sandbox, clock, http, url)


async def test_a_batch_sets_every_listing_and_each_change_is_applied(world: World) -> None:
    outcomes = await world.send([change(i, 10 + i) for i in range(25)])
    assert outcomes == [Outcome(applied=True, shown=10 + i) for i in range(25)]
    assert [world.market.listings[f"SKU-{i}"].qty for i in range(25)] == list(range(10, 35))
    assert world.sandbox.state()["token_requests"] == 1


async def test_the_profile_describes_ebay(world: World) -> None:
    assert world.profile.platform == "ebay"
    assert world.profile.id_fields == ("ebay_sku", "offer_id")
    assert world.profile.daily_revisions == 250
    assert world.profile.listing_key(change(3, 0).listing) == "SKU-3"
    limits = world.lane.limits
    assert (limits.batch, limits.rate, limits.burst) == (25, ebay.DEFAULT_RATE, 15.0)
    assert not world.lane.asynchronous


async def test_items_ebay_refuses_are_refused_with_its_reason_and_the_rest_apply(
    world: World,
) -> None:
    outcomes = await world.send([change(0, 4), change(77, 4), change(2, -3)])
    assert outcomes[0] == Outcome(applied=True, shown=4)
    unknown, negative = outcomes[1], outcomes[2]
    assert (unknown.applied, unknown.retry) == (False, False)
    assert unknown.reason is not None and unknown.reason.startswith("25702: ")
    assert (negative.applied, negative.retry) == (False, False)
    assert negative.reason is not None and negative.reason.startswith("25004: ")
    assert world.market.listings["SKU-0"].qty == 4
    assert world.market.listings["SKU-2"].qty == 0


async def test_an_expired_token_is_refreshed_and_the_batch_sent_again(world: World) -> None:
    await world.send([change(0, 1)])
    # The sandbox expires the token while the gateway still holds it as valid (a token
    # revoked or cut short): eBay answers 401, the profile fetches a new one once.
    world.clock.now += 7200.0
    assert await world.send([change(0, 2)]) == [Outcome(applied=True, shown=2)]
    assert world.market.listings["SKU-0"].qty == 2
    assert world.sandbox.state()["token_requests"] == 2
    assert world.market.counters.rejected == 1


async def test_a_token_is_refreshed_before_it_runs_out() -> None:
    clock = FakeClock()
    sandbox = EbaySandbox(
        make_market(2),
        CREDENTIALS,
        SandboxSettings(token_ttl_s=61.0),  # one second more than the refresh margin
        clock=clock,
    )
    async with serving(sandbox.routes()) as url, aiohttp.ClientSession() as http:
        lane = PROFILE(settings(url)).lanes[0]
        await lane.send(http, [change(0, 1)])
        await anyio.sleep(1.2)
        reply = await lane.send(http, [change(0, 2)])
    assert list(reply.outcomes) == [Outcome(applied=True, shown=2)]
    assert sandbox.state()["token_requests"] == 2
    assert sandbox.market.counters.rejected == 0  # no 401 was needed


async def test_the_251st_revision_in_a_day_is_refused_with_ebays_reason(world: World) -> None:
    for qty in range(ebay.DAILY_REVISIONS):
        assert (await world.send([change(0, qty)]))[0].applied
    refused = (await world.send([change(0, 0)]))[0]
    assert (refused.applied, refused.retry) == (False, False)
    assert refused.reason is not None and refused.reason.startswith("25019: ")
    assert world.market.listings["SKU-0"].qty == ebay.DAILY_REVISIONS - 1


async def test_a_429_is_throttled_with_ebays_reason() -> None:
    clock = FakeClock()
    sandbox = EbaySandbox(
        make_market(2),
        CREDENTIALS,
        SandboxSettings(),
        bucket=Bucket(rate=1.0, capacity=1.0, clock=clock),
        clock=clock,
    )
    async with serving(sandbox.routes()) as url, aiohttp.ClientSession() as http:
        lane = PROFILE(settings(url)).lanes[0]
        await lane.send(http, [change(0, 1)])
        with pytest.raises(Throttled, match="^2001: Too many requests"):
            await lane.send(http, [change(0, 2)])
    assert sandbox.market.listings["SKU-0"].qty == 1


async def test_a_batch_larger_than_ebay_takes_is_refused_whole(world: World) -> None:
    with pytest.raises(BatchRefused, match="25002"):
        await world.send([change(i, 1) for i in range(26)])


@pytest.mark.parametrize(
    "credentials",
    [
        {**CREDENTIALS, "client_secret": Secret("$EBAY_CLIENT_SECRET", "PRD-wrong-secret")},
        {**CREDENTIALS, "refresh_token": Secret("$EBAY_REFRESH_TOKEN", "rt-revoked-by-seller")},
    ],
    ids=["client-secret", "refresh-token"],
)
async def test_refused_credentials_are_an_auth_error_naming_sources_not_values(
    world: World, credentials: Mapping[str, Secret]
) -> None:
    lane = PROFILE(settings(world.url, credentials)).lanes[0]
    with pytest.raises(AuthError) as caught:
        await lane.send(world.http, [change(0, 1)])
    message = str(caught.value)
    assert "$EBAY_CLIENT_SECRET" in message
    for secret in (REFRESH_TOKEN, CLIENT_SECRET, "PRD-wrong-secret", "rt-revoked-by-seller"):
        assert secret not in message
    assert world.market.listings["SKU-0"].updates == 0


@asynccontextmanager
async def scripted_ebay(status: int, body: bytes) -> AsyncIterator[str]:
    """An eBay that hands out a token and answers every update with `status`, `body`."""

    async def token(request: web.Request) -> web.Response:
        return web.json_response({"access_token": "t-1", "expires_in": 7200})

    async def update(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body, content_type="application/json")

    routes = [web.post(ebay.TOKEN_PATH, token), web.post(ebay.BULK_UPDATE_PATH, update)]
    async with serving(routes) as url:
        yield url


def ebay_errors(error_id: int, message: str) -> bytes:
    return msgspec.json.encode(ebay.ErrorResponse([ebay.ErrorDetail(error_id, message=message)]))


@pytest.mark.parametrize(
    ("status", "body", "raised", "reason"),
    [
        (403, ebay_errors(1100, "Access denied"), AuthError, "1100: Access denied"),
        (500, ebay_errors(25001, "A system error has occurred."), TransientError, "25001: "),
        (503, b"<html>busy</html>", TransientError, "HTTP 503"),
        (404, b"", BatchRefused, "HTTP 404"),
        (200, b"{}", TransientError, "BulkPriceQuantityResponse"),
    ],
    ids=["403-scope", "500", "503-not-json", "404", "200-not-a-reply"],
)
async def test_whole_request_failures_are_classed_for_the_scheduler(
    status: int, body: bytes, raised: type[Exception], reason: str
) -> None:
    async with scripted_ebay(status, body) as url, aiohttp.ClientSession() as http:
        lane = PROFILE(settings(url)).lanes[0]
        with pytest.raises(raised, match=reason):
            await lane.send(http, [change(0, 1)])


async def test_a_time_out_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    async def token(request: web.Request) -> web.Response:
        return web.json_response({"access_token": "t-1", "expires_in": 7200})

    async def stall(request: web.Request) -> web.Response:
        await anyio.sleep(1)
        return web.json_response({"responses": []})

    monkeypatch.setattr(calls, "TIMEOUT", aiohttp.ClientTimeout(total=0.1))
    routes = [web.post(ebay.TOKEN_PATH, token), web.post(ebay.BULK_UPDATE_PATH, stall)]
    async with serving(routes) as url, aiohttp.ClientSession() as http:
        with pytest.raises(TransientError, match="unreachable"):
            await PROFILE(settings(url)).lanes[0].send(http, [change(0, 1)])


async def test_an_unreachable_ebay_is_transient() -> None:
    async with aiohttp.ClientSession() as http:
        with pytest.raises(TransientError):
            await PROFILE(settings("http://127.0.0.1:1")).lanes[0].send(http, [change(0, 1)])


# -- building the profile -------------------------------------------------------


def test_requests_go_to_ebay_or_to_the_overridden_base_url() -> None:
    sandboxed = PROFILE(settings("http://127.0.0.1:8790/")).lanes[0]
    real = PROFILE(settings(None)).lanes[0]
    assert isinstance(sandboxed, BulkUpdateLane) and isinstance(real, BulkUpdateLane)
    assert sandboxed.url == "http://127.0.0.1:8790" + ebay.BULK_UPDATE_PATH
    assert real.url == "https://api.ebay.com" + ebay.BULK_UPDATE_PATH


@pytest.mark.parametrize(
    ("overrides", "field"),
    [({"batch": 26}, "batch"), ({"batch": 0}, "batch"), ({"rate": 0}, "rate")],
)
def test_overrides_outside_what_ebay_takes_are_refused(
    overrides: Mapping[str, float], field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        PROFILE(settings(None, overrides=overrides))


def test_overrides_replace_the_documented_budget() -> None:
    profile = PROFILE(
        settings(None, overrides={"rate": 5, "burst": 10, "batch": 20, "daily_revisions": 200})
    )
    limits = profile.lanes[0].limits
    assert (limits.rate, limits.burst, limits.batch) == (5.0, 10.0, 20)
    assert profile.daily_revisions == 200


def test_a_missing_credential_is_named() -> None:
    credentials = {k: v for k, v in CREDENTIALS.items() if k != "refresh_token"}
    with pytest.raises(ValueError, match="refresh_token"):
        PROFILE(settings(None, credentials))


# -- reading replies ----------------------------------------------------------------


def response(status: int, sku: str | None, offer: str | None = None) -> ebay.PriceQuantityResponse:
    errors = None
    if status != 200:
        errors = [ebay.ErrorDetail(ebay.ERROR_SYSTEM, message="A system error has occurred.")]
    return ebay.PriceQuantityResponse(status, sku=sku, offer_id=offer, errors=errors)


def test_a_per_item_system_error_is_retried_and_a_missing_item_too() -> None:
    reply = ebay.BulkPriceQuantityResponse(
        [
            response(200, "SKU-0"),
            response(200, "SKU-0", "OFF-0"),
            response(200, "SKU-1"),
            response(500, "SKU-1", "OFF-1"),
        ]
    )
    outcomes = read_outcomes([change(0, 3), change(1, 3), change(2, 3)], reply)
    assert outcomes[0] == Outcome(applied=True, shown=3)
    assert outcomes[1] == Outcome(
        applied=False, retry=True, reason="25001: A system error has occurred."
    )
    assert (outcomes[2].applied, outcomes[2].retry) == (False, True)


def test_a_response_naming_only_the_offer_counts_for_its_change() -> None:
    reply = ebay.BulkPriceQuantityResponse([response(200, "SKU-0"), response(500, None, "OFF-0")])
    assert read_outcomes([change(0, 3)], reply)[0].retry


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 12, 5, 12, 0, 0, tzinfo=UTC)
    assert retry_after_s("7", now) == 7.0
    assert retry_after_s("Sat, 05 Dec 2026 12:00:30 GMT", now) == 30.0
    assert retry_after_s(None, now) is None
    assert retry_after_s("soon", now) is None
    assert retry_after_s("inf", now) is None
