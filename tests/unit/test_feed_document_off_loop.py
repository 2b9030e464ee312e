"""A backlog's feed document (Amazon's JSON_LISTINGS_FEED, Walmart's bulk inventory
feed) is built while the event loop keeps running: a sold-out listing's zero on the
per-item lane is not held back behind tens of thousands of feed items."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import aiohttp
import anyio
import pytest

from invsync.gateway.platforms import amazon, walmart
from invsync.gateway.platforms.base import Change, Listing, Profile, ProfileSettings
from invsync.marketplaces import amazon as az
from invsync.marketplaces import walmart as wm
from invsync.sandbox.platforms.base import SandboxSettings
from tests import amazon_market, walmart_market

pytestmark = pytest.mark.anyio
TS = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
# On a blocked loop the build waits this long for a loop that never comes.
LOOP_WAIT_S = 2.0


def _amazon_settings(url: str) -> ProfileSettings:
    return ProfileSettings(
        channel="amazon",
        base_url=url,
        credentials=amazon_market.CREDENTIALS,
        options={
            "seller_id": amazon_market.SELLER_ID,
            "marketplace_id": amazon_market.MARKETPLACE_ID,
        },
        overrides={},
    )


def _served_amazon() -> AbstractAsyncContextManager[Any]:
    return amazon_market.served_amazon(SandboxSettings(job_delay_s=60))


def _served_walmart() -> AbstractAsyncContextManager[Any]:
    return walmart_market.served_walmart(SandboxSettings(job_delay_s=60))


Case = tuple[
    Callable[[], AbstractAsyncContextManager[Any]],  # the served sandbox
    Callable[[str], Profile],  # the profile for the sandbox's URL
    ModuleType,  # the platform's facts, with its `feed_document`
    str,  # the listing id column
    str,  # a listing the sandbox knows
]
CASES: dict[str, Case] = {
    "amazon": (
        _served_amazon,
        lambda url: amazon.PROFILE(_amazon_settings(url)),
        az,
        "seller_sku",
        amazon_market.SKUS[0],
    ),
    "walmart": (
        _served_walmart,
        lambda url: walmart.PROFILE(walmart_market.profile_settings(url)),
        wm,
        "walmart_sku",
        walmart_market.SKUS[0],
    ),
}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.mark.parametrize("platform", sorted(CASES))
async def test_the_loop_runs_while_a_feed_document_is_built(
    platform: str, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    served, profile_of, facts, id_field, sku = CASES[platform]
    building, loop_ran = threading.Event(), threading.Event()
    loop_ran_during_build: list[bool] = []
    build: Callable[..., Any] = facts.feed_document

    def watched_build(*args: Any) -> Any:
        building.set()
        loop_ran_during_build.append(loop_ran.wait(LOOP_WAIT_S))
        return build(*args)

    monkeypatch.setattr(facts, "feed_document", watched_build)

    async def other_work() -> None:
        while not building.is_set():
            await anyio.sleep(0.001)
        loop_ran.set()

    listing = Listing(sku="stock", condition="new", ids={id_field: sku})
    async with served() as market:
        feed = profile_of(market.url).lanes[1]
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(other_work)
            with anyio.fail_after(10):
                sent = await feed.send(http, [Change(listing, 3, None, TS)])
    assert sent.job is not None
    assert loop_ran_during_build == [True]
