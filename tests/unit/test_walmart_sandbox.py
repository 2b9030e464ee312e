"""The emulated Walmart refuses what Walmart refuses, the way Walmart answers it: a lenient
sandbox would let a broken profile pass."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio
import pytest

from invsync.gateway.tokens import basic_authorization
from invsync.marketplaces import walmart as wm
from invsync.sandbox.platforms.base import SandboxSettings
from tests.marketplace import ManualClock
from tests.walmart_market import (
    CREDENTIALS,
    SHIP_NODE,
    SKUS,
    Served,
    served_walmart,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def served(clock: ManualClock) -> AsyncIterator[Served]:
    async with served_walmart(SandboxSettings(token_ttl_s=900, job_delay_s=0.1), clock) as s:
        yield s


def service() -> dict[str, str]:
    return {wm.SERVICE_NAME_HEADER: wm.SERVICE_NAME, wm.CORRELATION_HEADER: str(uuid.uuid4())}


async def token_reply(
    http: aiohttp.ClientSession, url: str, secret: str | None = None, **headers: str
) -> tuple[int, Any]:
    client_id, client_secret = CREDENTIALS["client_id"], CREDENTIALS["client_secret"]
    if secret is not None:
        client_secret = type(client_secret)("test", secret)
    sent = {**service(), "Authorization": basic_authorization(client_id, client_secret), **headers}
    async with http.post(
        url + wm.TOKEN_PATH, data={"grant_type": "client_credentials"}, headers=sent
    ) as resp:
        return resp.status, await resp.json()


async def api_headers(http: aiohttp.ClientSession, url: str) -> dict[str, str]:
    status, body = await token_reply(http, url)
    assert status == 200 and body["expires_in"] == 900
    return {**service(), wm.ACCESS_TOKEN_HEADER: body["access_token"]}


async def put(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], body: object, **query: str
) -> tuple[int, Any, Any]:
    params = {"sku": str(body.get("sku")) if isinstance(body, dict) else "", **query}
    async with http.put(url + wm.INVENTORY_PATH, json=body, params=params, headers=headers) as r:
        return r.status, await r.json(), r.headers


async def submit(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], document: object
) -> tuple[int, Any]:
    form = aiohttp.FormData()
    form.add_field("file", json.dumps(document).encode(), filename="f.json")
    async with http.post(
        url + wm.FEEDS_PATH, params={"feedType": "inventory"}, data=form, headers=headers
    ) as resp:
        return resp.status, await resp.json()


async def test_a_token_needs_the_channels_client_credentials(
    served: Served, http: aiohttp.ClientSession
) -> None:
    status, body = await token_reply(http, served.url, secret="not-the-secret")
    assert status == 401 and body["errors"][0]["code"] == wm.UNAUTHORIZED
    status, body = await token_reply(http, served.url, **{wm.CORRELATION_HEADER: ""})
    assert status == 400 and body["errors"][0]["code"] == wm.MISSING_HEADER


async def test_a_put_without_a_live_token_is_401(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    headers = await api_headers(http, served.url)
    status, body, _ = await put(http, served.url, {**service()}, wm.inventory(SKUS[0], 1))
    assert status == 401 and body["errors"][0]["code"] == wm.UNAUTHORIZED
    clock.now += 900
    status, _, _ = await put(http, served.url, headers, wm.inventory(SKUS[0], 1))
    assert status == 401
    assert served.sandbox.market.listings[SKUS[0]].qty == 0


async def test_a_put_sets_the_quantity_and_reports_the_token_count(
    served: Served, http: aiohttp.ClientSession
) -> None:
    headers = await api_headers(http, served.url)
    status, body, reply_headers = await put(
        http, served.url, headers, wm.inventory(SKUS[1], 7), shipNode=SHIP_NODE
    )
    assert status == 200 and body == wm.inventory(SKUS[1], 7)
    assert float(reply_headers[wm.TOKEN_COUNT_HEADER]) == wm.PUT_BURST - 1
    assert served.sandbox.market.listings[SKUS[1]].qty == 7


@pytest.mark.parametrize(
    "body",
    [
        wm.inventory(SKUS[0], -1),
        {"sku": SKUS[0], "quantity": {"unit": "EACH", "amount": 1.5}},
        {"sku": SKUS[0], "quantity": {"unit": "CASE", "amount": 1}},
        {"sku": SKUS[0], "quantity": {"unit": "EACH", "amount": wm.MAX_QTY + 1}},
        {"quantity": {"unit": "EACH", "amount": 1}},
    ],
)
async def test_a_quantity_walmart_does_not_take_is_400(
    served: Served, http: aiohttp.ClientSession, body: dict[str, Any]
) -> None:
    headers = await api_headers(http, served.url)
    status, reply, _ = await put(http, served.url, headers, body)
    assert status == 400 and reply["errors"][0]["code"] == wm.INVALID_CONTENT
    assert served.sandbox.market.listings[SKUS[0]].qty == 0
    assert served.sandbox.market.counters.rejected == 1


async def test_an_unknown_sku_or_ship_node_is_refused(
    served: Served, http: aiohttp.ClientSession
) -> None:
    headers = await api_headers(http, served.url)
    status, reply, _ = await put(http, served.url, headers, wm.inventory("NOT-LISTED", 1))
    assert status == 404 and reply["errors"][0]["code"] == wm.NOT_FOUND
    status, _, _ = await put(http, served.url, headers, wm.inventory(SKUS[0], 1), shipNode="9")
    assert status == 400


async def test_a_burst_past_the_bucket_is_429_with_walmarts_headers(
    served: Served, http: aiohttp.ClientSession
) -> None:
    headers = await api_headers(http, served.url)
    for qty in range(int(wm.PUT_BURST)):
        status, _, _ = await put(http, served.url, headers, wm.inventory(SKUS[0], qty))
        assert status == 200
    status, body, reply_headers = await put(http, served.url, headers, wm.inventory(SKUS[0], 99))
    assert status == 429 and body["errors"][0]["code"] == wm.TOO_MANY_REQUESTS
    assert reply_headers[wm.TOKEN_COUNT_HEADER] == "0"
    assert int(reply_headers[wm.REPLENISH_HEADER]) > 0
    assert served.sandbox.market.listings[SKUS[0]].qty == wm.PUT_BURST - 1
    assert served.sandbox.market.counters.throttled == 1


async def test_the_eleventh_feed_in_an_hour_is_429(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    headers = await api_headers(http, served.url)
    document = wm.feed_document([wm.inventory(SKUS[0], 1)])
    for _ in range(int(wm.FEEDS_PER_HOUR)):
        status, body = await submit(http, served.url, headers, document)
        assert status == 202 and body["feedId"]
    status, body = await submit(http, served.url, headers, document)
    assert status == 429 and body["errors"][0]["code"] == wm.TOO_MANY_REQUESTS
    clock.now += 3600 / wm.FEEDS_PER_HOUR
    headers = await api_headers(http, served.url)
    status, _ = await submit(http, served.url, headers, document)
    assert status == 202


@pytest.mark.parametrize(
    "document",
    [
        {"InventoryHeader": {"version": "1.5"}, "Inventory": [wm.inventory(SKUS[0], 1)]},
        wm.feed_document([]),
        wm.feed_document([wm.inventory(SKUS[0], 1)] * (wm.FEED_MAX_ITEMS + 1)),
    ],
)
async def test_a_file_that_is_not_an_inventory_feed_is_400(
    served: Served, http: aiohttp.ClientSession, document: object
) -> None:
    headers = await api_headers(http, served.url)
    status, body = await submit(http, served.url, headers, document)
    assert status == 400 and body["errors"][0]["code"] == wm.FEED_INVALID


async def feed_status(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], feed_id: str, **query: str
) -> tuple[int, Any]:
    params = {"includeDetails": "true", **query}
    async with http.get(
        url + wm.FEED_PATH.format(feed_id=feed_id), params=params, headers=headers
    ) as resp:
        return resp.status, await resp.json()


async def test_a_feed_id_is_not_success_and_a_processed_feed_may_succeed_in_part(
    served: Served, http: aiohttp.ClientSession
) -> None:
    headers = await api_headers(http, served.url)
    entries = [wm.inventory(SKUS[0], 4), wm.inventory("NOT-LISTED", 2), wm.inventory(SKUS[1], -3)]
    status, body = await submit(http, served.url, headers, wm.feed_document(entries))
    assert status == 202
    feed_id = body["feedId"]
    status, early = await feed_status(http, served.url, headers, feed_id)
    assert early["feedStatus"] in wm.FEED_PENDING
    assert served.sandbox.market.listings[SKUS[0]].qty == 0
    with anyio.fail_after(5):
        while (await feed_status(http, served.url, headers, feed_id))[1][
            "feedStatus"
        ] != "PROCESSED":
            await anyio.sleep(0.05)
    _, done = await feed_status(http, served.url, headers, feed_id)
    items = done["itemDetails"]["itemIngestionStatus"]
    assert [item["ingestionStatus"] for item in items] == ["SUCCESS", "DATA_ERROR", "DATA_ERROR"]
    assert items[1]["ingestionErrors"]["ingestionError"][0]["code"] == wm.NOT_FOUND
    assert items[2]["ingestionErrors"]["ingestionError"][0]["code"] == wm.INVALID_CONTENT
    assert (done["itemsSucceeded"], done["itemsFailed"]) == (1, 2)
    assert served.sandbox.market.listings[SKUS[0]].qty == 4
    assert served.sandbox.market.listings[SKUS[1]].qty == 0
    _, paged = await feed_status(http, served.url, headers, feed_id, offset="1", limit="1")
    assert [item["index"] for item in paged["itemDetails"]["itemIngestionStatus"]] == [1]
    status, _ = await feed_status(http, served.url, headers, feed_id, limit="1001")
    assert status == 400
