"""The Amazon profile against the emulated account: what a push becomes, per item and per
feed, when Amazon accepts, refuses, throttles, lets a token expire or is not there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import anyio
import pytest
from aiohttp import web

from invsync.gateway.platforms import amazon as amazon_profile
from invsync.gateway.platforms.amazon import PROFILE
from invsync.gateway.platforms.base import (
    AuthError,
    Change,
    Lane,
    Listing,
    Outcome,
    Profile,
    ProfileSettings,
    Reply,
    Throttled,
    TransientError,
)
from invsync.gateway.secrets import Secret
from invsync.marketplaces import amazon as az
from invsync.sandbox.platforms.base import SandboxSettings
from tests.amazon_market import (
    CREDENTIALS,
    MARKETPLACE_ID,
    SECRET_VALUES,
    SKUS,
    Served,
    emulated_amazon,
    profile_settings,
    served_amazon,
)
from tests.marketplace import ManualClock, failing, token_endpoint_beside

pytestmark = pytest.mark.anyio
TS = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def change(seller_sku: str, qty: int) -> Change:
    listing = Listing(sku=f"stock-{seller_sku}", condition="new", ids={"seller_sku": seller_sku})
    return Change(listing=listing, qty=qty, known=None, source_ts=TS)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def served(clock: ManualClock) -> AsyncIterator[Served]:
    async with served_amazon(SandboxSettings(token_ttl_s=3600, job_delay_s=0.2), clock) as s:
        yield s


def lanes(profile: Profile) -> tuple[Lane, Lane]:
    patch, feed = profile.lanes
    return patch, feed


async def test_a_patch_push_sets_the_quantity_amazon_shows(
    served: Served, http: aiohttp.ClientSession
) -> None:
    patch, _ = lanes(PROFILE(profile_settings(served.url)))
    reply = await patch.send(http, [change(SKUS[1], 12)])
    assert reply.outcomes == [Outcome(applied=True)]
    assert reply.budget.rate == az.PATCH_RATE
    assert served.sandbox.market.listings[SKUS[1]].qty == 12


async def test_the_token_is_fetched_again_when_amazon_says_it_expired(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    patch, _ = lanes(PROFILE(profile_settings(served.url)))
    await patch.send(http, [change(SKUS[0], 1)])
    # The sandbox's hour passes while the gateway's own clock thinks the token is fresh.
    clock.now += 3600
    reply = await patch.send(http, [change(SKUS[0], 2)])
    assert reply.outcomes == [Outcome(applied=True)]
    assert served.sandbox.market.listings[SKUS[0]].qty == 2


async def test_refused_credentials_are_an_auth_error_naming_their_source_not_value(
    served: Served, http: aiohttp.ClientSession
) -> None:
    wrong = {**CREDENTIALS, "client_secret": Secret("$AMZ_SECRET", "not-the-secret")}
    patch, _ = lanes(PROFILE(profile_settings(served.url, credentials=wrong)))
    with pytest.raises(AuthError) as refused:
        await patch.send(http, [change(SKUS[0], 1)])
    message = str(refused.value)
    assert "$AMZ_SECRET" in message
    assert not any(value in message for value in (*SECRET_VALUES.values(), "not-the-secret"))


async def test_a_seller_that_did_not_authorise_the_app_is_an_auth_error_naming_it(
    served: Served, http: aiohttp.ClientSession
) -> None:
    patch, _ = lanes(PROFILE(profile_settings(served.url, seller_id="A9OTHERSELLER")))
    with pytest.raises(AuthError, match="A9OTHERSELLER"):
        await patch.send(http, [change(SKUS[0], 1)])
    assert served.sandbox.market.listings[SKUS[0]].qty == 0


async def test_an_invalid_submission_inside_a_200_is_refused_with_amazons_issue(
    served: Served, http: aiohttp.ClientSession
) -> None:
    patch, _ = lanes(PROFILE(profile_settings(served.url)))
    (outcome,) = (await patch.send(http, [change(SKUS[0], -1)])).outcomes
    assert (outcome.applied, outcome.retry) == (False, False)
    assert outcome.reason is not None and outcome.reason.startswith(az.ISSUE_INVALID_ATTRIBUTE)


async def test_an_unknown_seller_sku_is_refused_not_retried(
    served: Served, http: aiohttp.ClientSession
) -> None:
    patch, _ = lanes(PROFILE(profile_settings(served.url)))
    (outcome,) = (await patch.send(http, [change("NOT-LISTED", 3)])).outcomes
    assert (outcome.applied, outcome.retry) == (False, False)
    assert outcome.reason is not None and outcome.reason.startswith(az.NOT_FOUND)


async def test_a_burst_past_the_usage_plan_raises_throttled_with_amazons_rate(
    served: Served, http: aiohttp.ClientSession
) -> None:
    patch, _ = lanes(PROFILE(profile_settings(served.url)))
    for qty in range(int(az.PATCH_BURST)):
        await patch.send(http, [change(SKUS[0], qty)])
    with pytest.raises(Throttled) as throttled:
        await patch.send(http, [change(SKUS[0], 99)])
    assert throttled.value.budget.rate == az.PATCH_RATE
    assert served.sandbox.market.listings[SKUS[0]].qty == az.PATCH_BURST - 1


async def test_an_unreachable_amazon_is_transient(http: aiohttp.ClientSession) -> None:
    async with served_amazon() as served:
        url = served.url
    patch, _ = lanes(PROFILE(profile_settings(url)))
    with pytest.raises(TransientError):
        await patch.send(http, [change(SKUS[0], 1)])


@pytest.mark.parametrize("fault", ["503", "time-out"])
async def test_a_5xx_or_a_time_out_is_transient(
    http: aiohttp.ClientSession, short_timeout: None, fault: str
) -> None:
    body = az.error_list("ServiceUnavailable", "Service temporarily unavailable.")
    faulty = failing(fault, lambda: web.json_response(body, status=503))
    api = web.patch(az.LISTINGS_ITEM_PATH, faulty)
    async with token_endpoint_beside(emulated_amazon(), az.TOKEN_PATH, api) as url:
        patch, _ = lanes(PROFILE(profile_settings(url)))
        with pytest.raises(TransientError):
            await patch.send(http, [change(SKUS[0], 1)])


async def wait_for(lane: Lane, http: aiohttp.ClientSession, job: str) -> Reply:
    with anyio.fail_after(5):
        while (reply := await lane.poll(http, job)) is None:
            await anyio.sleep(0.05)
    return reply


async def test_a_feed_applies_after_processing_and_maps_report_issues_to_items(
    served: Served, http: aiohttp.ClientSession
) -> None:
    _, feed = lanes(PROFILE(profile_settings(served.url)))
    sent = await feed.send(http, [change(SKUS[0], 5), change("NOT-LISTED", 1), change(SKUS[1], -2)])
    assert sent.outcomes == [] and sent.job is not None
    assert await feed.poll(http, sent.job) is None  # still processing
    applied, unknown, invalid = (await wait_for(feed, http, sent.job)).outcomes
    assert applied == Outcome(applied=True)
    assert unknown.applied is False and unknown.retry is False
    assert unknown.reason is not None and unknown.reason.startswith(az.NOT_FOUND)
    assert invalid.reason is not None and invalid.reason.startswith(az.ISSUE_INVALID_ATTRIBUTE)
    assert served.sandbox.market.listings[SKUS[0]].qty == 5
    assert served.sandbox.market.listings[SKUS[1]].qty == 0


async def test_a_cancelled_feed_sends_every_item_again(
    served: Served, http: aiohttp.ClientSession
) -> None:
    _, feed = lanes(PROFILE(profile_settings(served.url)))
    await feed.send(http, [change(SKUS[0], 5)])
    queued = await feed.send(http, [change(SKUS[0], 6), change(SKUS[1], 7)])
    assert queued.job is not None
    form = {"grant_type": "refresh_token", **SECRET_VALUES}
    async with http.post(served.url + az.TOKEN_PATH, data=form) as resp:
        access = (await resp.json())["access_token"]
    async with http.delete(
        served.url + az.FEED_PATH.format(feed_id=queued.job),
        headers={az.ACCESS_TOKEN_HEADER: access},
    ) as resp:
        assert resp.status == 200
    outcomes = (await wait_for(feed, http, queued.job)).outcomes
    assert [(o.applied, o.retry) for o in outcomes] == [(False, True), (False, True)]
    assert served.sandbox.market.listings[SKUS[1]].qty == 0


async def test_a_feed_lost_in_a_sandbox_restart_sends_every_item_again(
    http: aiohttp.ClientSession,
) -> None:
    settings_before = SandboxSettings(job_delay_s=60)
    async with served_amazon(settings_before) as before:
        _, feed = lanes(PROFILE(profile_settings(before.url)))
        sent = await feed.send(http, [change(SKUS[0], 4)])
        port = int(before.url.rsplit(":", 1)[1])
    assert sent.job is not None
    async with served_amazon(port=port) as after:
        outcomes = (await wait_for(feed, http, sent.job)).outcomes
        assert [(o.applied, o.retry) for o in outcomes] == [(False, True)]
        assert after.sandbox.market.listings[SKUS[0]].qty == 0


def test_a_channel_without_seller_id_is_refused_by_name() -> None:
    incomplete = ProfileSettings(
        channel="amazon",
        base_url=None,
        credentials=CREDENTIALS,
        options={"marketplace_id": MARKETPLACE_ID},
        overrides={},
    )
    with pytest.raises(ValueError, match="seller_id"):
        PROFILE(incomplete)


def test_the_feed_lane_takes_a_backlog_the_patch_lane_could_not_clear_in_time() -> None:
    patch, feed = lanes(PROFILE(profile_settings(None, feed_processing_s="90")))
    assert (patch.limits.batch, patch.limits.rate, patch.asynchronous) == (1, 5.0, False)
    assert (feed.limits.batch, feed.limits.processing_s, feed.asynchronous) == (25_000, 90.0, True)
    # createFeed's own plan (0.0083/s) is tighter than 5 listings feeds per 5 minutes.
    assert (feed.limits.rate, feed.limits.burst) == (0.0083, 5.0)


@pytest.mark.parametrize(
    ("base_url", "token_url"),
    [
        ("https://sellingpartnerapi-eu.amazon.com", az.TOKEN_URL),
        ("https://sellingpartnerapi-fe.amazon.com/", az.TOKEN_URL),
        ("http://127.0.0.1:8790", "http://127.0.0.1:8790" + az.TOKEN_PATH),
    ],
)
def test_every_amazon_region_takes_its_token_from_login_with_amazon(
    base_url: str, token_url: str
) -> None:
    assert amazon_profile._token_url(base_url.rstrip("/")) == token_url
