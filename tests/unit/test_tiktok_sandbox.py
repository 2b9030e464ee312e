"""The emulated TikTok shop refuses what TikTok refuses, the way TikTok answers it: a
lenient sandbox would let a broken signer or profile pass."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from invsync.marketplaces import tiktok as tt
from invsync.sandbox.platforms.base import SandboxSettings
from tests.marketplace import ManualClock, frozen_wall
from tests.tiktok_market import (
    PRODUCT,
    SECRET_VALUES,
    SHOP_CIPHER,
    SKUS,
    Served,
    served_tiktok,
)

pytestmark = pytest.mark.anyio
SKU, WAREHOUSE = next(iter(SKUS.items()))
PATH = tt.INVENTORY_PATH.format(product_id=PRODUCT)


@pytest.fixture
def clock() -> ManualClock:
    return frozen_wall()


@pytest.fixture
async def served(clock: ManualClock) -> AsyncIterator[Served]:
    async with served_tiktok(SandboxSettings(token_ttl_s=3600), clock) as s:
        yield s


async def refresh(http: aiohttp.ClientSession, url: str, **changed: str) -> Any:
    params = {**SECRET_VALUES, "grant_type": "refresh_token", **changed}
    async with http.get(url + tt.REFRESH_PATH, params=params) as resp:
        assert resp.status == 200
        return await resp.json()


async def access_token(http: aiohttp.ClientSession, url: str) -> str:
    return str((await refresh(http, url))["data"]["access_token"])


def update(sku: str = SKU, **stock: object) -> dict[str, Any]:
    return {
        "skus": [{"id": sku, "inventory": [{"warehouse_id": WAREHOUSE, "quantity": 5, **stock}]}]
    }


async def call(
    http: aiohttp.ClientSession,
    url: str,
    token: str,
    body: object,
    clock: ManualClock,
    secret: str = SECRET_VALUES["app_secret"],
    path: str = PATH,
    skew_s: float = 0,
    **query: str,
) -> tuple[int, Any]:
    content = json.dumps(body).encode()
    params = {
        "app_key": SECRET_VALUES["app_key"],
        "shop_cipher": SHOP_CIPHER,
        "timestamp": str(int(clock.now + skew_s)),
        **query,
    }
    params["sign"] = tt.sign(secret, path, params, content)
    headers = {tt.ACCESS_TOKEN_HEADER: token, "Content-Type": "application/json"}
    async with http.post(url + path, params=params, data=content, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_a_refresh_needs_the_channels_app_and_refresh_token(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    refused = await refresh(http, served.url, refresh_token="TTP_other")
    assert refused["code"] == tt.REFRESH_TOKEN_INVALID
    granted = await refresh(http, served.url)
    assert granted["code"] == tt.OK
    assert granted["data"]["access_token_expire_in"] == int(clock.now + 3600)


async def test_a_signed_update_sets_the_quantity(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    token = await access_token(http, served.url)
    status, body = await call(http, served.url, token, update(quantity=tt.MAX_QTY), clock)
    assert (status, body["code"], body["data"]) == (200, tt.OK, {})
    assert served.sandbox.market.listings[SKU].qty == tt.MAX_QTY


@pytest.mark.parametrize(
    ("secret", "skew_s"),
    [("wrong-secret", 0), (SECRET_VALUES["app_secret"], -(tt.TIMESTAMP_WINDOW_S + 5))],
    ids=["wrong key", "stale timestamp"],
)
async def test_a_wrong_key_or_a_stale_timestamp_is_401_invalid_sign(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock, secret: str, skew_s: float
) -> None:
    token = await access_token(http, served.url)
    status, body = await call(
        http, served.url, token, update(), clock, secret=secret, skew_s=skew_s
    )
    assert (status, body["code"]) == (401, tt.SIGN_INVALID)
    assert served.sandbox.market.listings[SKU].qty == 0


async def test_a_body_changed_after_signing_is_refused(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    token = await access_token(http, served.url)
    content = json.dumps(update()).encode()
    params = {
        "app_key": SECRET_VALUES["app_key"],
        "shop_cipher": SHOP_CIPHER,
        "timestamp": str(int(clock.now)),
    }
    params["sign"] = tt.sign(SECRET_VALUES["app_secret"], PATH, params, content)
    tampered = json.dumps(update(quantity=0)).encode()
    async with http.post(
        served.url + PATH, params=params, data=tampered, headers={tt.ACCESS_TOKEN_HEADER: token}
    ) as resp:
        assert resp.status == 401 and (await resp.json())["code"] == tt.SIGN_INVALID


async def test_an_unknown_or_expired_access_token_is_401(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    status, body = await call(http, served.url, "TTP_unknown", update(), clock)
    assert (status, body["code"]) == (401, tt.ACCESS_TOKEN_INVALID)
    token = await access_token(http, served.url)
    clock.now += 3600
    status, body = await call(http, served.url, token, update(), clock)
    assert (status, body["code"]) == (401, tt.ACCESS_TOKEN_EXPIRED)


async def test_more_than_fifty_calls_a_second_is_429(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    token = await access_token(http, served.url)
    for _ in range(int(tt.BURST)):
        status, _ = await call(http, served.url, token, update(), clock)
        assert status == 200
    status, body = await call(http, served.url, token, update(), clock)
    assert (status, body["code"]) == (429, tt.TOO_MANY_REQUESTS)
    assert served.sandbox.market.counters.throttled == 1
    clock.now += 2 / tt.RATE
    assert (await call(http, served.url, token, update(), clock))[0] == 200


@pytest.mark.parametrize(
    "body",
    [
        {"skus": []},
        {"skus": [{"id": f"S{n}", "inventory": [{"quantity": 1}]} for n in range(tt.MAX_SKUS + 1)]},
        {"skus": [{"id": SKU, "inventory": []}]},
        {"skus": [{"id": SKU, "inventory": [{"warehouse_id": WAREHOUSE}]}]},
        {"skus": [update()["skus"][0]] * 2},
    ],
    ids=["no SKU", "over 100 SKUs", "no inventory", "no quantity", "a SKU twice"],
)
async def test_a_malformed_update_is_400_invalid_params(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock, body: object
) -> None:
    token = await access_token(http, served.url)
    status, reply = await call(http, served.url, token, body, clock)
    assert (status, reply["code"]) == (400, tt.INVALID_PARAMS)


async def test_another_shop_cipher_or_an_unknown_product_is_refused(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    token = await access_token(http, served.url)
    status, body = await call(http, served.url, token, update(), clock, shop_cipher="ROW_other")
    assert (status, body["code"]) == (400, tt.INVALID_PARAMS)
    other = tt.INVENTORY_PATH.format(product_id="999")
    status, body = await call(http, served.url, token, update(), clock, path=other)
    assert (status, body["code"]) == (404, tt.PRODUCT_NOT_FOUND)


async def test_per_sku_failures_come_back_inside_an_overall_success(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    token = await access_token(http, served.url)
    other_sku, other_warehouse = list(SKUS.items())[1]
    body = {
        "skus": [
            {"id": SKU, "inventory": [{"warehouse_id": WAREHOUSE, "quantity": 3}]},
            {
                "id": other_sku,
                "inventory": [{"warehouse_id": other_warehouse, "quantity": tt.MAX_QTY + 1}],
            },
            {"id": "1729000000000000999", "inventory": [{"quantity": 1}]},
            {
                "id": "1729000000000000102x",
                "inventory": [{"warehouse_id": WAREHOUSE, "quantity": 1}],
            },
        ]
    }
    status, reply = await call(http, served.url, token, body, clock)
    assert (status, reply["code"]) == (200, tt.OK)
    failed = tt.sku_errors(reply["data"])
    assert set(failed) == {other_sku, "1729000000000000999", "1729000000000000102x"}
    assert failed[other_sku].startswith(str(tt.QUANTITY_OUT_OF_RANGE))
    assert failed["1729000000000000999"].startswith(str(tt.SKU_NOT_FOUND))
    assert served.sandbox.market.listings[SKU].qty == 3
    assert served.sandbox.market.listings[other_sku].qty == 0


async def test_another_warehouse_than_the_skus_is_refused_per_sku(
    served: Served, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    token = await access_token(http, served.url)
    wrong = {"skus": [{"id": SKU, "inventory": [{"warehouse_id": "7068999", "quantity": 1}]}]}
    _, reply = await call(http, served.url, token, wrong, clock)
    assert tt.sku_errors(reply["data"])[SKU].startswith(str(tt.WAREHOUSE_INVALID))
    # TikTok lets a single-warehouse SKU leave warehouse_id out.
    default = {"skus": [{"id": SKU, "inventory": [{"quantity": 0}]}]}
    _, reply = await call(http, served.url, token, default, clock)
    assert reply["data"] == {}
