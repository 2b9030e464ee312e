"""The emulated Amazon refuses what Amazon refuses, the way Amazon answers it: a lenient
sandbox would let a broken profile pass."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio
import pytest

from invsync.marketplaces import amazon as az
from invsync.sandbox.platforms.base import SandboxSettings
from tests.amazon_market import (
    MARKETPLACE_ID,
    SECRET_VALUES,
    SELLER_ID,
    SKUS,
    Served,
    served_amazon,
)
from tests.marketplace import ManualClock

pytestmark = pytest.mark.anyio


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def served(clock: ManualClock) -> AsyncIterator[Served]:
    async with served_amazon(SandboxSettings(token_ttl_s=3600, job_delay_s=0.2), clock) as s:
        yield s


async def token(http: aiohttp.ClientSession, url: str, **changed: str) -> aiohttp.ClientResponse:
    form = {"grant_type": "refresh_token", **SECRET_VALUES, **changed}
    async with http.post(url + az.TOKEN_PATH, data=form) as resp:
        await resp.read()
        return resp


async def access_token(http: aiohttp.ClientSession, url: str) -> str:
    form = {"grant_type": "refresh_token", **SECRET_VALUES}
    async with http.post(url + az.TOKEN_PATH, data=form) as resp:
        assert resp.status == 200
        body = await resp.json()
        assert body["expires_in"] == 3600
        return str(body["access_token"])


def quantity_body(value: list[dict[str, Any]], op: str = "merge") -> dict[str, Any]:
    return {
        "productType": "PRODUCT",
        "patches": [{"op": op, "path": az.FULFILLMENT_PATH, "value": value}],
    }


async def patch(
    http: aiohttp.ClientSession,
    served: Served,
    body: object,
    sku: str = SKUS[0],
    access: str | None = None,
    params: dict[str, str] | None = None,
) -> tuple[int, Any, aiohttp.ClientResponse]:
    headers = {az.ACCESS_TOKEN_HEADER: access} if access is not None else {}
    async with http.patch(
        served.url + az.listings_item_path(SELLER_ID, sku),
        json=body,
        headers=headers,
        params={"marketplaceIds": MARKETPLACE_ID} if params is None else params,
    ) as resp:
        return resp.status, await resp.json(content_type=None), resp


def error_code(body: Any) -> str:
    return str(body["errors"][0]["code"])


async def test_token_endpoint_refuses_a_wrong_client_secret_or_refresh_token(
    served: Served, http: aiohttp.ClientSession
) -> None:
    bad_client = await token(http, served.url, client_secret="guess")
    bad_grant = await token(http, served.url, refresh_token="Atzr|other")
    wrong_grant_type = await token(http, served.url, grant_type="client_credentials")
    assert (bad_client.status, bad_grant.status, wrong_grant_type.status) == (401, 400, 400)
    assert (await token(http, served.url)).status == 200


async def test_patch_without_a_token_is_403_unauthorized(
    served: Served, http: aiohttp.ClientSession
) -> None:
    status, body, _ = await patch(http, served, quantity_body([]), access="Atza|forged")
    assert (status, error_code(body)) == (403, az.UNAUTHORIZED)
    status, body, _ = await patch(http, served, quantity_body([]))
    assert (status, error_code(body)) == (403, az.UNAUTHORIZED)


async def test_an_expired_token_is_refused(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    access = await access_token(http, served.url)
    good = [{"fulfillment_channel_code": "DEFAULT", "quantity": 3}]
    assert (await patch(http, served, quantity_body(good), access=access))[0] == 200
    clock.now += 3600
    status, body, _ = await patch(http, served, quantity_body(good), access=access)
    assert (status, error_code(body)) == (403, az.UNAUTHORIZED)
    assert body["errors"][0]["details"] == "The access token you provided has expired."


async def test_an_accepted_patch_sets_the_merchant_quantity_only(
    served: Served, http: aiohttp.ClientSession
) -> None:
    access = await access_token(http, served.url)
    value = [
        {"fulfillment_channel_code": "DEFAULT", "quantity": 7},
        {"fulfillment_channel_code": "AMAZON_NA", "quantity": 40},
    ]
    status, body, resp = await patch(http, served, quantity_body(value), access=access)
    assert (status, body["status"], body["sku"]) == (200, az.STATUS_ACCEPTED, SKUS[0])
    assert resp.headers[az.RATE_LIMIT_HEADER] == "5"
    assert served.sandbox.market.listings[SKUS[0]].qty == 7


async def test_a_sku_with_a_slash_is_reached_when_percent_encoded(
    served: Served, http: aiohttp.ClientSession
) -> None:
    access = await access_token(http, served.url)
    value = [{"fulfillment_channel_code": "DEFAULT", "quantity": 2}]
    status, body, _ = await patch(http, served, quantity_body(value), sku=SKUS[1], access=access)
    assert (status, body["sku"]) == (200, SKUS[1])
    assert served.sandbox.market.listings[SKUS[1]].qty == 2


@pytest.mark.parametrize(
    "body",
    [
        {"patches": [{"op": "merge", "path": az.FULFILLMENT_PATH, "value": []}]},
        {"productType": "PRODUCT", "patches": []},
        {"productType": "PRODUCT", "patches": [{"op": "set", "path": az.FULFILLMENT_PATH}]},
        [1, 2],
    ],
    ids=["no productType", "no patches", "unknown op", "not an object"],
)
async def test_an_unparsable_patch_is_400_invalid_input(
    served: Served, http: aiohttp.ClientSession, body: object
) -> None:
    access = await access_token(http, served.url)
    status, reply, _ = await patch(http, served, body, access=access)
    assert (status, error_code(reply)) == (400, az.INVALID_INPUT)
    assert served.sandbox.market.counters.rejected == 1


@pytest.mark.parametrize("marketplaces", [None, "A1F83G8C2ARO7P"], ids=["none", "another"])
async def test_a_patch_without_the_accounts_marketplace_is_400(
    served: Served, http: aiohttp.ClientSession, marketplaces: str | None
) -> None:
    access = await access_token(http, served.url)
    value = [{"fulfillment_channel_code": "DEFAULT", "quantity": 2}]
    params = {} if marketplaces is None else {"marketplaceIds": marketplaces}
    status, body, _ = await patch(http, served, quantity_body(value), access=access, params=params)
    assert (status, error_code(body)) == (400, az.INVALID_INPUT)
    assert served.sandbox.market.listings[SKUS[0]].qty == 0


async def test_a_patch_for_another_seller_is_403(
    served: Served, http: aiohttp.ClientSession
) -> None:
    access = await access_token(http, served.url)
    value = [{"fulfillment_channel_code": "DEFAULT", "quantity": 2}]
    async with http.patch(
        served.url + az.listings_item_path("A9OTHERSELLER", SKUS[0]),
        json=quantity_body(value),
        headers={az.ACCESS_TOKEN_HEADER: access},
        params={"marketplaceIds": MARKETPLACE_ID},
    ) as resp:
        assert resp.status == 403
        assert error_code(await resp.json()) == az.UNAUTHORIZED
    assert served.sandbox.market.listings[SKUS[0]].qty == 0


@pytest.mark.parametrize(
    ("value", "path", "code"),
    [
        ([{"quantity": 5}], az.FULFILLMENT_PATH, az.ISSUE_NOT_ENOUGH_VALUES),
        ([], az.FULFILLMENT_PATH, az.ISSUE_NOT_ENOUGH_VALUES),
        (
            [{"fulfillment_channel_code": "DEFAULT", "quantity": -1}],
            az.FULFILLMENT_PATH,
            az.ISSUE_INVALID_ATTRIBUTE,
        ),
        (
            [{"fulfillment_channel_code": "DEFAULT", "quantity": 2.5}],
            az.FULFILLMENT_PATH,
            az.ISSUE_INVALID_ATTRIBUTE,
        ),
        (
            [{"fulfillment_channel_code": "DEFAULT", "quantity": 5}],
            az.FULFILLMENT_PATH + "/0/quantity",
            az.ISSUE_INVALID_ATTRIBUTE,
        ),
    ],
    ids=["no channel code", "no entry", "negative quantity", "fractional quantity", "nested"],
)
async def test_an_invalid_attribute_is_refused_inside_a_200(
    served: Served, http: aiohttp.ClientSession, value: list[dict[str, Any]], path: str, code: str
) -> None:
    access = await access_token(http, served.url)
    body = {"productType": "PRODUCT", "patches": [{"op": "replace", "path": path, "value": value}]}
    status, reply, _ = await patch(http, served, body, access=access)
    assert (status, reply["status"]) == (200, az.STATUS_INVALID)
    assert [issue["code"] for issue in reply["issues"]] == [code]
    assert reply["issues"][0]["severity"] == "ERROR"
    assert served.sandbox.market.listings[SKUS[0]].qty == 0
    assert served.sandbox.market.listings[SKUS[0]].updates == 0


async def test_an_unknown_seller_sku_is_404_not_found(
    served: Served, http: aiohttp.ClientSession
) -> None:
    access = await access_token(http, served.url)
    value = [{"fulfillment_channel_code": "DEFAULT", "quantity": 1}]
    status, body, _ = await patch(http, served, quantity_body(value), sku="NOPE", access=access)
    assert (status, error_code(body)) == (404, az.NOT_FOUND)


async def test_a_burst_past_five_is_429_quota_exceeded_with_the_rate_header(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    access = await access_token(http, served.url)
    value = [{"fulfillment_channel_code": "DEFAULT", "quantity": 1}]
    statuses = [
        (await patch(http, served, quantity_body(value), access=access))[0] for _ in range(5)
    ]
    status, body, resp = await patch(http, served, quantity_body(value), access=access)
    assert statuses == [200] * 5
    assert (status, error_code(body)) == (429, az.QUOTA_EXCEEDED)
    assert resp.headers[az.RATE_LIMIT_HEADER] == "5"
    assert served.sandbox.market.counters.throttled == 1
    clock.now += 0.2  # one request's worth at 5 per second
    assert (await patch(http, served, quantity_body(value), access=access))[0] == 200


async def submit_feed(
    http: aiohttp.ClientSession, served: Served, access: str, document: bytes
) -> tuple[int, Any]:
    headers = {az.ACCESS_TOKEN_HEADER: access}
    async with http.post(
        served.url + az.FEED_DOCUMENTS_PATH,
        json={"contentType": az.FEED_CONTENT_TYPE},
        headers=headers,
    ) as resp:
        assert resp.status == 201
        created = await resp.json()
    upload_headers = {"Content-Type": az.FEED_CONTENT_TYPE}
    async with http.put(created["url"], data=document, headers=upload_headers) as resp:
        assert resp.status == 200
    spec = {
        "feedType": az.FEED_TYPE,
        "marketplaceIds": [MARKETPLACE_ID],
        "inputFeedDocumentId": created["feedDocumentId"],
    }
    async with http.post(served.url + az.FEEDS_PATH, json=spec, headers=headers) as resp:
        return resp.status, await resp.json()


async def get_json(http: aiohttp.ClientSession, url: str, access: str) -> Any:
    async with http.get(url, headers={az.ACCESS_TOKEN_HEADER: access}) as resp:
        assert resp.status == 200
        return await resp.json(content_type=None)


async def processing_report(
    http: aiohttp.ClientSession, served: Served, access: str, feed_id: str
) -> Any:
    """The report of a feed once it is DONE: getFeed, getFeedDocument, download."""
    feed_url = served.url + az.FEED_PATH.format(feed_id=feed_id)
    with anyio.fail_after(5):
        while (done := await get_json(http, feed_url, access))["processingStatus"] != "DONE":
            await anyio.sleep(0.05)
    document_id = done["resultFeedDocumentId"]
    located = await get_json(
        http, served.url + az.FEED_DOCUMENT_PATH.format(document_id=document_id), access
    )
    assert located["compressionAlgorithm"] == az.GZIP
    async with http.get(located["url"]) as resp:
        return json.loads(gzip.decompress(await resp.read()))


def feed(quantities: dict[str, int]) -> bytes:
    messages = [
        {
            "messageId": n,
            "sku": sku,
            "operationType": "PATCH",
            "productType": "PRODUCT",
            "patches": [az.quantity_patch("merge", qty)],
        }
        for n, (sku, qty) in enumerate(quantities.items(), start=1)
    ]
    return json.dumps(az.feed_document(SELLER_ID, messages)).encode()


async def test_a_feed_applies_after_its_delay_and_reports_each_refused_message(
    served: Served, http: aiohttp.ClientSession
) -> None:
    access = await access_token(http, served.url)
    status, created = await submit_feed(
        http, served, access, feed({SKUS[0]: 9, "NOPE": 1, SKUS[1]: -4})
    )
    assert status == 202
    feed_url = served.url + az.FEED_PATH.format(feed_id=created["feedId"])
    first = await get_json(http, feed_url, access)
    assert first["processingStatus"] in az.FEED_PENDING
    assert served.sandbox.market.listings[SKUS[0]].qty == 0  # not applied yet
    report = await processing_report(http, served, access, created["feedId"])
    refused = {(i["messageId"], i["code"]) for i in report["issues"]}
    assert refused == {(2, az.NOT_FOUND), (3, az.ISSUE_INVALID_ATTRIBUTE)}
    assert report["summary"]["messagesAccepted"] == 1
    assert served.sandbox.market.listings[SKUS[0]].qty == 9
    assert served.sandbox.market.listings[SKUS[1]].qty == 0


async def test_a_feed_message_without_a_message_id_is_refused_in_the_report(
    served: Served, http: aiohttp.ClientSession
) -> None:
    access = await access_token(http, served.url)
    message = {"sku": SKUS[0], "operationType": "PATCH", "productType": "PRODUCT"}
    document = az.feed_document(
        SELLER_ID, [{**message, "patches": [az.quantity_patch("merge", 3)]}]
    )
    _, created = await submit_feed(http, served, access, json.dumps(document).encode())
    report = await processing_report(http, served, access, created["feedId"])
    assert [issue["attributeName"] for issue in report["issues"]] == ["messageId"]
    assert served.sandbox.market.listings[SKUS[0]].qty == 0


async def test_a_sixth_feed_within_five_minutes_is_429(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    access = await access_token(http, served.url)
    statuses = [(await submit_feed(http, served, access, feed({SKUS[0]: n})))[0] for n in range(6)]
    assert statuses == [202] * 5 + [429]
    assert served.sandbox.market.counters.throttled == 1
    clock.now += az.FEED_WINDOW_S / az.FEED_SUBMISSIONS  # one submission's worth
    assert (await submit_feed(http, served, access, feed({SKUS[0]: 7})))[0] == 202


@pytest.mark.parametrize(
    "document",
    [b"<xml/>", json.dumps(az.feed_document("A9OTHERSELLER", [{"messageId": 1}])).encode()],
    ids=["not JSON", "another seller"],
)
async def test_a_feed_document_that_is_not_this_accounts_listings_feed_ends_fatal(
    served: Served, http: aiohttp.ClientSession, document: bytes
) -> None:
    access = await access_token(http, served.url)
    _, created = await submit_feed(http, served, access, document)
    feed_url = served.url + az.FEED_PATH.format(feed_id=created["feedId"])
    with anyio.fail_after(5):
        while (await get_json(http, feed_url, access))["processingStatus"] in az.FEED_PENDING:
            await anyio.sleep(0.05)
    assert (await get_json(http, feed_url, access))["processingStatus"] == "FATAL"


async def test_an_upload_without_the_presigned_signature_is_refused(
    served: Served, http: aiohttp.ClientSession
) -> None:
    access = await access_token(http, served.url)
    async with http.post(
        served.url + az.FEED_DOCUMENTS_PATH,
        json={"contentType": az.FEED_CONTENT_TYPE},
        headers={az.ACCESS_TOKEN_HEADER: access},
    ) as resp:
        url = (await resp.json())["url"]
    unsigned = url.split("?")[0]
    async with http.put(unsigned, data=b"{}", headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 403
