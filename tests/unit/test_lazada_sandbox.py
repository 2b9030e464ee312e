"""The emulated Lazada seller refuses what Lazada refuses, spoken to over raw HTTP: more
than 50 SKUs, a payload that is not Lazada's XML, a spent refresh token, an unsigned
call, and it keeps the locked stock a test sets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from invsync.marketplaces import lazada as lz
from invsync.sandbox.platforms.lazada import LOCKED_PATH
from tests.lazada_market import (
    APP_KEY,
    SECRET_VALUES,
    SKUS,
    Served,
    served_lazada,
)
from tests.marketplace import ManualClock, frozen_wall

pytestmark = pytest.mark.anyio


@pytest.fixture
def clock() -> ManualClock:
    return frozen_wall()


@pytest.fixture
async def served(clock: ManualClock) -> AsyncIterator[Served]:
    async with served_lazada(clock) as s:
        yield s


async def call(
    http: aiohttp.ClientSession, url: str, api_path: str, clock: ManualClock, **params: str
) -> dict[str, Any]:
    every = {"app_key": APP_KEY, "timestamp": str(int(clock.now * 1000)), "sign_method": "sha256"}
    every |= params
    every["sign"] = lz.sign(SECRET_VALUES["app_secret"], api_path, every)
    async with http.post(url + lz.REST_PREFIX + api_path, data=every) as resp:
        assert resp.status == 200  # Lazada puts every outcome in `code`
        reply: dict[str, Any] = await resp.json()
        return reply


async def access(http: aiohttp.ClientSession, served: Served, clock: ManualClock) -> str:
    reply = await call(
        http, served.url, lz.REFRESH_PATH, clock, refresh_token=SECRET_VALUES["refresh_token"]
    )
    assert reply["code"] == lz.SUCCESS
    token: str = reply["access_token"]
    return token


async def test_a_refresh_token_handed_out_works_and_a_made_up_one_does_not(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    first = await call(
        http, served.url, lz.REFRESH_PATH, clock, refresh_token=SECRET_VALUES["refresh_token"]
    )
    again = await call(
        http, served.url, lz.REFRESH_PATH, clock, refresh_token=first["refresh_token"]
    )
    assert again["code"] == lz.SUCCESS and again["access_token"] != first["access_token"]
    made_up = await call(http, served.url, lz.REFRESH_PATH, clock, refresh_token="made-up")
    assert made_up["code"] == lz.ILLEGAL_REFRESH_TOKEN


async def test_more_than_50_skus_in_one_call_are_refused_whole(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    token = await access(http, served, clock)
    item, sku_id = SKUS["LZ-RED"]
    payload = lz.update_payload([("LZ-RED", item, sku_id, n, None) for n in range(lz.MAX_SKUS + 1)])
    reply = await call(http, served.url, lz.UPDATE_PATH, clock, access_token=token, payload=payload)
    assert reply["code"] == lz.TOO_MANY_SKUS
    assert served.sandbox.market.listings["LZ-RED"].updates == 0


@pytest.mark.parametrize(
    "payload",
    [
        "<Request><Product>",
        "<Request><Product><Skus/></Product></Request>",
        "<Request><Product><Skus><Sku><SellerSku>LZ-RED</SellerSku></Sku></Skus></Product></Request>",
    ],
)
async def test_a_payload_that_is_not_lazadas_xml_is_e005(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock, payload: str
) -> None:
    token = await access(http, served, clock)
    reply = await call(http, served.url, lz.UPDATE_PATH, clock, access_token=token, payload=payload)
    assert reply["code"] == lz.INVALID_FORMAT


async def test_a_call_without_an_access_token_is_refused(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    item, sku_id = SKUS["LZ-RED"]
    payload = lz.update_payload([("LZ-RED", item, sku_id, 3, None)])
    reply = await call(http, served.url, lz.UPDATE_PATH, clock, payload=payload)
    assert reply["code"] == lz.INCOMPLETE_SIGNATURE
    assert served.sandbox.market.counters.rejected == 1


async def test_locked_stock_is_set_per_listing_and_shown_in_the_state(
    served: Served, http: aiohttp.ClientSession
) -> None:
    async with http.post(served.url + LOCKED_PATH, json={"listing": "LZ-BLUE", "locked": 2}) as r:
        assert r.status == 200
    async with http.post(served.url + LOCKED_PATH, json={"listing": "NOPE", "locked": 2}) as r:
        assert r.status == 404
    assert served.sandbox.state() == {"locked": {"LZ-BLUE": 2}}


async def get(
    http: aiohttp.ClientSession, url: str, api_path: str, clock: ManualClock, **params: str
) -> dict[str, Any]:
    every = {"app_key": APP_KEY, "timestamp": str(int(clock.now * 1000)), "sign_method": "sha256"}
    every |= params
    every["sign"] = lz.sign(SECRET_VALUES["app_secret"], api_path, every)
    async with http.get(url + lz.REST_PREFIX + api_path, params=every) as resp:
        assert resp.status == 200
        reply: dict[str, Any] = await resp.json()
        return reply


async def test_get_product_item_tells_each_skus_quantity_and_locked_stock(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    served.sandbox.locked["LZ-BLUE"] = 4
    served.sandbox.market.listings["LZ-BLUE"].qty = 7
    token = await access(http, served, clock)
    item, _ = SKUS["LZ-BLUE"]
    reply = await get(http, served.url, lz.ITEM_PATH, clock, access_token=token, item_id=item)
    assert reply["code"] == lz.SUCCESS
    skus = {sku["SellerSku"]: sku for sku in reply["data"]["skus"]}
    assert set(skus) == {"LZ-RED", "LZ-BLUE"}
    assert skus["LZ-BLUE"]["quantity"] == 7
    assert lz.locked_stock(reply["data"], "LZ-BLUE") == 4
    assert lz.locked_stock(reply["data"], "LZ-RED") == 0
    assert lz.locked_stock(reply["data"], "LZ-GREEN") is None


def test_locked_stock_adds_unpaid_and_unshipped_orders_to_what_campaigns_hold() -> None:
    # The shape of GetProductItem's documented response sample.
    data = {
        "skus": [
            {
                "SellerSku": "1pc",
                "multiWarehouseInventories": [
                    {"occupyQuantity": 26, "withholdQuantity": 2, "totalQuantity": 1745},
                    {"occupyQuantity": 1, "withholdQuantity": 0, "totalQuantity": 3},
                ],
                "channelInventories": [{"channelName": "c", "sellableQuantity": 200}],
            }
        ]
    }
    assert lz.locked_stock(data, "1pc") == 229


@pytest.mark.parametrize(
    ("params", "signed_with", "code"),
    [
        ({"item_id": SKUS["LZ-RED"][0]}, "another-secret", lz.INCOMPLETE_SIGNATURE),
        ({}, SECRET_VALUES["app_secret"], lz.INVALID_FORMAT),
        ({"item_id": "12x"}, SECRET_VALUES["app_secret"], lz.INVALID_FORMAT),
        ({"item_id": "404"}, SECRET_VALUES["app_secret"], lz.PRODUCT_NOT_FOUND),
    ],
)
async def test_get_product_item_refuses_a_wrong_signature_and_a_bad_or_unknown_item(
    served: Served,
    http: aiohttp.ClientSession,
    clock: ManualClock,
    params: dict[str, str],
    signed_with: str,
    code: str,
) -> None:
    token = await access(http, served, clock)
    every = {
        "app_key": APP_KEY,
        "timestamp": str(int(clock.now * 1000)),
        "sign_method": "sha256",
        "access_token": token,
        **params,
    }
    every["sign"] = lz.sign(signed_with, lz.ITEM_PATH, every)
    async with http.get(served.url + lz.REST_PREFIX + lz.ITEM_PATH, params=every) as resp:
        reply = await resp.json()
    assert reply["code"] == code and "data" not in reply


async def test_get_product_item_refuses_a_call_without_an_access_token(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    reply = await get(http, served.url, lz.ITEM_PATH, clock, item_id=SKUS["LZ-RED"][0])
    assert reply["code"] == lz.INCOMPLETE_SIGNATURE
