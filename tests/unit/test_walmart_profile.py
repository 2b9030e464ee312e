"""The Walmart profile against the emulated seller account: what a push becomes, per item
and per feed, when Walmart accepts, refuses, throttles, lets a token expire or is not
there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import anyio
import pytest
from aiohttp import web

from invsync.gateway.platforms.base import (
    AuthError,
    Change,
    Lane,
    Listing,
    Outcome,
    Profile,
    Reply,
    Throttled,
    TransientError,
)
from invsync.gateway.platforms.walmart import PROFILE
from invsync.gateway.secrets import Secret
from invsync.marketplaces import walmart as wm
from invsync.sandbox.platforms.base import SandboxSettings
from invsync.sandbox.platforms.walmart import WalmartSandbox
from tests.marketplace import ManualClock, failing, token_endpoint_beside
from tests.walmart_market import (
    CREDENTIALS,
    SECRET_VALUES,
    SKUS,
    Served,
    profile_settings,
    served_walmart,
    walmart_market,
)

pytestmark = pytest.mark.anyio
TS = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def change(walmart_sku: str, qty: int) -> Change:
    listing = Listing(sku=f"stock-{walmart_sku}", condition="new", ids={"walmart_sku": walmart_sku})
    return Change(listing=listing, qty=qty, known=None, source_ts=TS)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def served(clock: ManualClock) -> AsyncIterator[Served]:
    async with served_walmart(SandboxSettings(token_ttl_s=900, job_delay_s=0.2), clock) as s:
        yield s


def lanes(profile: Profile) -> tuple[Lane, Lane]:
    put, feed, _price = profile.lanes
    return put, feed


async def test_a_put_sets_the_quantity_walmart_shows(
    served: Served, http: aiohttp.ClientSession
) -> None:
    put, _ = lanes(PROFILE(profile_settings(served.url)))
    reply = await put.send(http, [change(SKUS[1], 12)])
    assert reply.outcomes == [Outcome(applied=True, shown=12)]
    assert reply.budget.available == wm.PUT_BURST - 1
    assert served.sandbox.market.listings[SKUS[1]].qty == 12


async def test_the_token_is_fetched_again_when_walmart_says_it_expired(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    put, _ = lanes(PROFILE(profile_settings(served.url)))
    await put.send(http, [change(SKUS[0], 1)])
    # Walmart's 15 minutes pass while the gateway's own clock thinks the token is fresh.
    clock.now += 900
    assert (await put.send(http, [change(SKUS[0], 2)])).outcomes == [Outcome(True, shown=2)]
    assert served.sandbox.market.listings[SKUS[0]].qty == 2


async def test_refused_credentials_are_an_auth_error_naming_their_source_not_value(
    served: Served, http: aiohttp.ClientSession
) -> None:
    wrong = {**CREDENTIALS, "client_secret": Secret("$WM_CLIENT_SECRET", "not-the-secret")}
    put, _ = lanes(PROFILE(profile_settings(served.url, credentials=wrong)))
    with pytest.raises(AuthError) as refused:
        await put.send(http, [change(SKUS[0], 1)])
    message = str(refused.value)
    assert "$WM_CLIENT_SECRET" in message
    assert not any(value in message for value in (*SECRET_VALUES.values(), "not-the-secret"))


@pytest.mark.parametrize(
    ("sku", "qty", "code"), [("NOT-LISTED", 3, wm.NOT_FOUND), (SKUS[0], -1, wm.INVALID_CONTENT)]
)
async def test_an_unknown_sku_or_a_quantity_out_of_range_is_refused_not_retried(
    served: Served, http: aiohttp.ClientSession, sku: str, qty: int, code: str
) -> None:
    put, _ = lanes(PROFILE(profile_settings(served.url)))
    (outcome,) = (await put.send(http, [change(sku, qty)])).outcomes
    assert (outcome.applied, outcome.retry) == (False, False)
    assert outcome.reason is not None and outcome.reason.startswith(code)


async def test_a_burst_past_the_bucket_raises_throttled_with_walmarts_wait(
    served: Served, http: aiohttp.ClientSession
) -> None:
    put, _ = lanes(PROFILE(profile_settings(served.url)))
    for qty in range(int(wm.PUT_BURST)):
        await put.send(http, [change(SKUS[0], qty)])
    with pytest.raises(Throttled) as throttled:
        await put.send(http, [change(SKUS[0], 99)])
    budget = throttled.value.budget
    assert budget.available == 0
    assert budget.retry_after_s is not None and 0 < budget.retry_after_s <= 1 / wm.PUT_RATE + 1


async def test_an_unreachable_walmart_is_transient(http: aiohttp.ClientSession) -> None:
    async with served_walmart() as served:
        url = served.url
    put, _ = lanes(PROFILE(profile_settings(url)))
    with pytest.raises(TransientError):
        await put.send(http, [change(SKUS[0], 1)])


@pytest.mark.parametrize("fault", ["503", "time-out"])
async def test_a_5xx_or_a_time_out_is_transient(
    http: aiohttp.ClientSession, short_timeout: None, fault: str
) -> None:
    body = wm.error_body("SERVICE_UNAVAILABLE", "try later")
    faulty = failing(fault, lambda: web.json_response(body, status=503))
    emulated = WalmartSandbox(walmart_market(), CREDENTIALS, SandboxSettings())
    api = web.put(wm.INVENTORY_PATH, faulty)
    async with token_endpoint_beside(emulated, wm.TOKEN_PATH, api) as url:
        put, _ = lanes(PROFILE(profile_settings(url)))
        with pytest.raises(TransientError):
            await put.send(http, [change(SKUS[0], 1)])


async def wait_for(lane: Lane, http: aiohttp.ClientSession, job: str) -> Reply:
    with anyio.fail_after(5):
        while (reply := await lane.poll(http, job)) is None:
            await anyio.sleep(0.05)
    return reply


async def test_a_feed_that_succeeds_in_part_applies_some_items_and_refuses_the_rest(
    served: Served, http: aiohttp.ClientSession
) -> None:
    _, feed = lanes(PROFILE(profile_settings(served.url)))
    sent = await feed.send(http, [change(SKUS[0], 5), change("NOT-LISTED", 1), change(SKUS[1], -2)])
    assert sent.outcomes == [] and sent.job is not None
    assert await feed.poll(http, sent.job) is None  # a feed id is not success
    applied, unknown, invalid = (await wait_for(feed, http, sent.job)).outcomes
    assert applied == Outcome(applied=True)
    assert (unknown.applied, unknown.retry) == (False, False)
    assert unknown.reason is not None and unknown.reason.startswith(wm.NOT_FOUND)
    assert (invalid.applied, invalid.retry) == (False, False)
    assert invalid.reason is not None and invalid.reason.startswith(wm.INVALID_CONTENT)
    assert served.sandbox.market.listings[SKUS[0]].qty == 5
    assert served.sandbox.market.listings[SKUS[1]].qty == 0


async def test_a_feed_lost_in_a_sandbox_restart_sends_every_item_again(
    http: aiohttp.ClientSession,
) -> None:
    async with served_walmart(SandboxSettings(job_delay_s=60)) as before:
        _, feed = lanes(PROFILE(profile_settings(before.url)))
        sent = await feed.send(http, [change(SKUS[0], 4)])
        port = int(before.url.rsplit(":", 1)[1])
    assert sent.job is not None
    async with served_walmart(port=port) as after:
        outcomes = (await wait_for(feed, http, sent.job)).outcomes
        assert [(o.applied, o.retry) for o in outcomes] == [(False, True)]
        assert after.sandbox.market.listings[SKUS[0]].qty == 0


def test_the_feed_lane_takes_a_backlog_within_ten_feeds_an_hour() -> None:
    put, feed = lanes(PROFILE(profile_settings(None, feed_processing_s="90")))
    assert (put.limits.batch, put.limits.rate, put.asynchronous) == (1, wm.PUT_RATE, False)
    assert (feed.limits.batch, feed.limits.processing_s, feed.asynchronous) == (50_000, 90.0, True)
    assert feed.limits.rate * 3600 == pytest.approx(10) and feed.limits.burst == 10


async def test_a_sandbox_restart_loses_the_token_and_the_next_put_fetches_one(
    http: aiohttp.ClientSession,
) -> None:
    async with served_walmart() as before:
        put, _ = lanes(PROFILE(profile_settings(before.url)))
        await put.send(http, [change(SKUS[0], 4)])
        port = int(before.url.rsplit(":", 1)[1])
    async with served_walmart(port=port) as after:
        assert (await put.send(http, [change(SKUS[0], 5)])).outcomes == [Outcome(True, shown=5)]
        assert after.sandbox.market.listings[SKUS[0]].qty == 5
