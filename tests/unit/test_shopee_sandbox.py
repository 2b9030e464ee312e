"""The emulated Shopee shop refuses what Shopee refuses, spoken to over raw HTTP: signatures,
timestamps, single-use refresh tokens, the 50-model cap, and stock a promotion holds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from invsync.marketplaces import shopee as sp
from invsync.sandbox.platforms.shopee import RESERVED_PATH
from tests.marketplace import ManualClock, frozen_wall
from tests.shopee_market import (
    PARTNER_ID,
    SECRET_VALUES,
    SHOP_ID,
    Served,
    served_shopee,
)

pytestmark = pytest.mark.anyio
KEY = SECRET_VALUES["partner_key"]


@pytest.fixture
def clock() -> ManualClock:
    return frozen_wall()


@pytest.fixture
async def served(clock: ManualClock) -> AsyncIterator[Served]:
    async with served_shopee(clock) as s:
        yield s


def signed(path: str, at: float, token: str = "", key: str = KEY) -> dict[str, str]:
    timestamp = int(at)
    params = {"partner_id": PARTNER_ID, "timestamp": str(timestamp)}
    if token:
        params |= {"access_token": token, "shop_id": SHOP_ID}
        base = sp.base_string(PARTNER_ID, path, timestamp, token, SHOP_ID)
    else:
        base = sp.base_string(PARTNER_ID, path, timestamp)
    return params | {"sign": sp.sign(key, base)}


async def post(
    http: aiohttp.ClientSession, url: str, path: str, params: dict[str, str], body: Any
) -> tuple[int, dict[str, Any]]:
    async with http.post(url + path, params=params, json=body) as resp:
        return resp.status, await resp.json()


async def refresh(
    http: aiohttp.ClientSession, served: Served, clock: ManualClock, refresh_token: str
) -> tuple[int, dict[str, Any]]:
    body = {"refresh_token": refresh_token, "partner_id": int(PARTNER_ID), "shop_id": int(SHOP_ID)}
    params = signed(sp.REFRESH_PATH, clock.now)
    return await post(http, served.url, sp.REFRESH_PATH, params, body)


async def token(http: aiohttp.ClientSession, served: Served, clock: ManualClock) -> str:
    status, reply = await refresh(http, served, clock, SECRET_VALUES["refresh_token"])
    assert status == 200 and reply["error"] == ""
    access: str = reply["access_token"]
    return access


async def update(
    http: aiohttp.ClientSession, served: Served, params: dict[str, str], body: Any
) -> tuple[int, dict[str, Any]]:
    return await post(http, served.url, sp.UPDATE_STOCK_PATH, params, body)


def models(*pairs: tuple[int, int]) -> list[dict[str, Any]]:
    return [{"model_id": m, "seller_stock": [{"stock": s}]} for m, s in pairs]


async def test_a_refresh_hands_out_a_new_refresh_token_and_spends_the_one_used(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    _, first = await refresh(http, served, clock, SECRET_VALUES["refresh_token"])
    _, second = await refresh(http, served, clock, first["refresh_token"])
    assert second["error"] == "" and second["refresh_token"] != first["refresh_token"]
    status, spent = await refresh(http, served, clock, first["refresh_token"])
    assert (status, spent["error"]) == (sp.AUTH_STATUS, sp.ERROR_AUTH)


async def test_a_signature_with_a_wrong_key_or_a_stale_timestamp_is_refused(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    access = await token(http, served, clock)
    body = {"item_id": 900, "stock_list": models((0, 1))}
    wrong = signed(sp.UPDATE_STOCK_PATH, clock.now, access, key="another-key")
    status, reply = await update(http, served, wrong, body)
    assert (status, reply["error"], reply["message"]) == (
        sp.AUTH_STATUS,
        sp.ERROR_SIGN,
        sp.WRONG_SIGN,
    )
    stale = signed(sp.UPDATE_STOCK_PATH, clock.now - sp.TIMESTAMP_WINDOW_S - 1, access)
    status, reply = await update(http, served, stale, body)
    assert (status, reply["error"], reply["message"]) == (400, sp.ERROR_PARAM, sp.INVALID_TIMESTAMP)
    assert served.sandbox.market.listings["900:0"].qty == 0


async def test_more_than_50_models_in_one_call_are_refused(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    access = await token(http, served, clock)
    body = {"item_id": 800, "stock_list": models(*((1, n) for n in range(sp.MAX_MODELS + 1)))}
    status, reply = await update(
        http, served, signed(sp.UPDATE_STOCK_PATH, clock.now, access), body
    )
    assert (status, reply["error"]) == (400, sp.ERROR_PARAM)
    assert served.sandbox.market.counters.rejected == 1


async def test_models_of_one_item_apply_except_those_below_the_reserved_stock(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    async with http.post(served.url + RESERVED_PATH, json={"listing": "800:2", "reserved": 4}) as r:
        assert r.status == 200
    access = await token(http, served, clock)
    body = {"item_id": 800, "stock_list": models((1, 6), (2, 3))}
    status, reply = await update(
        http, served, signed(sp.UPDATE_STOCK_PATH, clock.now, access), body
    )
    assert (status, reply["error"]) == (200, "")
    assert reply["response"]["success_list"] == [{"model_id": 1, "location_id": "", "stock": 6}]
    assert reply["response"]["failure_list"] == [
        {"model_id": 2, "failed_reason": sp.BELOW_RESERVED}
    ]
    shown = {key: listing.qty for key, listing in served.sandbox.market.listings.items()}
    assert shown == {"800:1": 6, "800:2": 0, "900:0": 0}
    assert served.sandbox.state() == {"reserved": {"800:2": 4}}


async def test_the_reserved_stock_of_an_unknown_listing_is_404(
    served: Served, http: aiohttp.ClientSession
) -> None:
    async with http.post(served.url + RESERVED_PATH, json={"listing": "1:1", "reserved": 4}) as r:
        assert r.status == 404


async def read(
    http: aiohttp.ClientSession, served: Served, path: str, params: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    async with http.get(served.url + path, params=params) as resp:
        return resp.status, await resp.json()


async def test_get_model_list_tells_each_models_reserved_stock_and_stock(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    served.sandbox.reserved["800:2"] = 6
    served.sandbox.market.listings["800:2"].qty = 9
    access = await token(http, served, clock)
    params = signed(sp.MODEL_LIST_PATH, clock.now, access) | {"item_id": "800"}
    status, reply = await read(http, served, sp.MODEL_LIST_PATH, params)
    assert (status, reply["error"]) == (200, "")
    stock = {m["model_id"]: m["stock_info_v2"] for m in reply["response"]["model"]}
    assert stock == {1: sp.stock_info(0, 0), 2: sp.stock_info(6, 9)}
    assert sp.reserved_stock(reply["response"], 800, 2) == 6
    assert sp.reserved_stock(reply["response"], 800, 3) is None


async def test_get_item_base_info_tells_an_item_without_variants_its_reserved_stock(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    served.sandbox.reserved["900:0"] = 4
    access = await token(http, served, clock)
    params = signed(sp.ITEM_BASE_INFO_PATH, clock.now, access) | {"item_id_list": "900,800"}
    status, reply = await read(http, served, sp.ITEM_BASE_INFO_PATH, params)
    assert (status, reply["error"]) == (200, "")
    assert [i["has_model"] for i in reply["response"]["item_list"]] == [False, True]
    assert sp.reserved_stock(reply["response"], 900, sp.NO_VARIANTS) == 4
    # An item without variants has no model to list.
    params = signed(sp.MODEL_LIST_PATH, clock.now, access) | {"item_id": "900"}
    _, models_of_900 = await read(http, served, sp.MODEL_LIST_PATH, params)
    assert models_of_900["response"]["model"] == []


@pytest.mark.parametrize(
    ("query", "wrong_key", "status", "error"),
    [
        ({"item_id": "800"}, True, sp.AUTH_STATUS, sp.ERROR_SIGN),
        ({}, False, 400, sp.ERROR_PARAM),
        ({"item_id": "eight"}, False, 400, sp.ERROR_PARAM),
        ({"item_id": "801"}, False, 400, sp.ERROR_ITEM_NOT_FOUND),
    ],
)
async def test_get_model_list_refuses_a_wrong_signature_and_a_bad_or_unknown_item(
    served: Served,
    http: aiohttp.ClientSession,
    clock: ManualClock,
    query: dict[str, str],
    wrong_key: bool,
    status: int,
    error: str,
) -> None:
    access = await token(http, served, clock)
    key = "another-key" if wrong_key else KEY
    params = signed(sp.MODEL_LIST_PATH, clock.now, access, key=key) | query
    got, reply = await read(http, served, sp.MODEL_LIST_PATH, params)
    assert (got, reply["error"]) == (status, error)
    assert "response" not in reply


async def test_the_reads_refuse_an_expired_token_and_more_than_50_items(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    access = await token(http, served, clock)
    many = ",".join(["900"] * (sp.MAX_MODELS + 1))
    params = signed(sp.ITEM_BASE_INFO_PATH, clock.now, access) | {"item_id_list": many}
    got, reply = await read(http, served, sp.ITEM_BASE_INFO_PATH, params)
    assert (got, reply["error"]) == (400, sp.ERROR_PARAM)
    clock.now += sp.ACCESS_TOKEN_TTL_S + 1
    params = signed(sp.MODEL_LIST_PATH, clock.now, access) | {"item_id": "800"}
    got, reply = await read(http, served, sp.MODEL_LIST_PATH, params)
    assert (got, reply["error"]) == (sp.AUTH_STATUS, sp.ERROR_AUTH)
