"""The Shopify sandbox refuses what Shopify refuses: wrong GraphQL shapes, a missing
directive or changeFromQuantity, bad tokens, bursts over the cost budget, stale
compare-and-swap, over-long inputs, unknown items and locations."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from invsync.gateway.platforms.base import Listing
from invsync.gateway.secrets import Secret
from invsync.marketplaces import shopify as doc
from invsync.sandbox.app import Sandbox, Storefront, serving
from invsync.sandbox.market import Bucket, Market
from invsync.sandbox.orders import OrderBook
from invsync.sandbox.platforms.base import SandboxSettings
from invsync.sandbox.platforms.shopify import SANDBOX, ShopifySandbox

pytestmark = pytest.mark.anyio

TOKEN = "shpat_test_token"
LOCATION = "gid://shopify/Location/1"


def item(n: int) -> str:
    return f"gid://shopify/InventoryItem/{n}"


@dataclass
class Store:
    http: aiohttp.ClientSession
    url: str
    emulation: ShopifySandbox

    async def post(
        self, body: Any, token: str = TOKEN, version: str = doc.API_VERSION
    ) -> tuple[int, Any]:
        async with self.http.post(
            f"{self.url}{doc.graphql_path(version)}",
            data=body if isinstance(body, bytes) else json.dumps(body),
            headers={doc.ACCESS_TOKEN_HEADER: token, "Content-Type": "application/json"},
        ) as resp:
            return resp.status, await resp.json(content_type=None)

    async def set(self, quantities: list[dict[str, Any]], key: str = "k-1", **input_: Any) -> Any:
        variables = {
            "input": {"name": "available", "reason": "correction", "quantities": quantities}
            | input_,
            "key": key,
        }
        status, body = await self.post({"query": doc.SET_QUANTITIES, "variables": variables})
        assert status == 200
        return body

    def shown(self, n: int) -> int:
        return self.emulation.market.listings[item(n)].qty


def qty(n: int, quantity: int, change_from: int | None) -> dict[str, Any]:
    return {
        "inventoryItemId": item(n),
        "locationId": LOCATION,
        "quantity": quantity,
        "changeFromQuantity": change_from,
    }


@asynccontextmanager
async def store(listings: int = 3) -> AsyncIterator[Store]:
    emulation = SANDBOX(
        Market("shopify", "web"), {"access_token": Secret("$T", TOKEN)}, SandboxSettings()
    )
    assert isinstance(emulation, ShopifySandbox)
    front = Storefront(
        emulation, ("inventory_item_id", "location_id"), lambda li: li.ids["inventory_item_id"]
    )
    for n in range(listings):
        front.add(Listing(f"S{n}", "new", {"inventory_item_id": item(n), "location_id": LOCATION}))
    async with (
        serving(Sandbox([front], OrderBook(None)), port=0) as port,
        aiohttp.ClientSession() as http,
    ):
        yield Store(http, f"http://127.0.0.1:{port}", emulation)


def codes(body: Any) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", []) if "extensions" in e]


def user_errors(body: Any) -> list[tuple[str, list[str]]]:
    errors = body["data"]["inventorySetQuantities"]["userErrors"]
    return [(e["code"], e["field"]) for e in errors]


async def test_a_valid_set_applies_and_reports_the_cost_budget() -> None:
    async with store() as s:
        body = await s.set([qty(0, 7, 0), qty(1, 3, None)])
        assert user_errors(body) == []
        assert (s.shown(0), s.shown(1)) == (7, 3)
        assert body["extensions"]["cost"]["requestedQueryCost"] == doc.SET_QUANTITIES_COST
        status = body["extensions"]["cost"]["throttleStatus"]
        assert status["maximumAvailable"] == 1000
        assert status["restoreRate"] == 100
        assert status["currentlyAvailable"] < 1000


async def test_a_wrong_token_is_401_and_changes_nothing() -> None:
    async with store() as s:
        status, body = await s.post(
            {"query": doc.SET_QUANTITIES, "variables": {}}, token="shpat_wrong"
        )
        assert status == 401
        assert body == doc.INVALID_TOKEN_BODY
        assert s.emulation.market.counters.rejected == 1


async def test_another_api_version_is_not_served() -> None:
    async with store() as s:
        status, _ = await s.post({"query": doc.SET_QUANTITIES}, version="2025-01")
        assert status == 404


async def test_a_stale_change_from_quantity_refuses_the_whole_request() -> None:
    async with store() as s:
        await s.set([qty(0, 5, 0)], key="k-0")
        body = await s.set([qty(0, 2, 4), qty(1, 6, 0)], key="k-1")
        assert user_errors(body) == [
            (doc.CHANGE_FROM_QUANTITY_STALE, ["input", "quantities", "0", "changeFromQuantity"])
        ]
        # all or nothing: the good quantity beside the stale one was not applied either
        assert (s.shown(0), s.shown(1)) == (5, 0)


async def test_change_from_quantity_must_be_present_even_if_null() -> None:
    async with store() as s:
        missing = {"inventoryItemId": item(0), "locationId": LOCATION, "quantity": 4}
        body = await s.set([missing])
        assert body["errors"] and body["data"] is None
        assert s.shown(0) == 0


async def test_the_removed_compare_fields_are_refused_as_unknown_input() -> None:
    async with store() as s:
        old = qty(0, 4, None) | {"compareQuantity": 0}
        body = await s.set([old])
        assert codes(body) == ["INVALID_VARIABLE"]
        body = await s.set([qty(0, 4, None)], ignoreCompareQuantity=True)
        assert codes(body) == ["INVALID_VARIABLE"]
        assert s.shown(0) == 0


async def test_the_mutation_needs_the_idempotent_directive() -> None:
    without = doc.SET_QUANTITIES.replace(" @idempotent(key: $key)", "").replace(
        ", $key: String!", ""
    )
    async with store() as s:
        variables = {
            "input": {"name": "available", "reason": "correction", "quantities": [qty(0, 1, 0)]}
        }
        _, body = await s.post({"query": without, "variables": variables})
        assert body["errors"]
        assert s.shown(0) == 0


async def test_a_repeated_idempotency_key_answers_without_applying_again() -> None:
    async with store() as s:
        first = await s.set([qty(0, 5, 0)], key="same")
        s.emulation.market.listings[item(0)].qty = 2  # a sale in between
        again = await s.set([qty(0, 5, 0)], key="same")
        assert again["data"] == first["data"]
        assert s.shown(0) == 2
        other = await s.set([qty(0, 9, None)], key="same")
        assert user_errors(other)[0][0] == doc.IDEMPOTENCY_KEY_PARAMETER_MISMATCH


@pytest.mark.parametrize(
    ("query", "code"),
    [
        (
            'mutation { inventorySetQuantities(input: $x) @idempotent(key: "k") { userErrors { code } } }',
            "variableNotDefined",
        ),
        (
            'mutation { inventorySetQuantities(input: {}) @idempotent(key: "k") { nope } }',
            "undefinedField",
        ),
        (
            'mutation { inventorySetQuantities @idempotent(key: "k") { userErrors { code } } }',
            "missingRequiredArguments",
        ),
        (
            'mutation { inventorySetQuantities(input: {}, force: true) @idempotent(key: "k") { userErrors { code } } }',
            "argumentNotAccepted",
        ),
        (
            'mutation { inventorySetQuantities(input: {}) @idempotent(key: "k") }',
            "selectionMismatch",
        ),
        (
            'mutation M($input: String!) { inventorySetQuantities(input: $input) @idempotent(key: "k") { userErrors { code } } }',
            "variableMismatch",
        ),
        ('mutation { productDelete(id: "1") { deletedProductId } }', "undefinedField"),
        ('mutation { __typename @idempotent(key: "k") }', "BAD_REQUEST"),
    ],
)
async def test_operations_outside_the_schema_get_graphql_errors(query: str, code: str) -> None:
    async with store() as s:
        status, body = await s.post({"query": query, "variables": {"input": {}}})
        assert status == 200
        assert code in codes(body)
        assert s.emulation.market.counters.rejected == 1


async def test_a_syntax_error_says_where() -> None:
    async with store() as s:
        _, body = await s.post({"query": "mutation {\n  inventorySetQuantities(input: {) }"})
        assert body["errors"][0]["locations"] == [{"line": 2, "column": 34}]


async def test_a_body_that_is_not_a_graphql_request_is_400() -> None:
    async with store() as s:
        for body in (b"not json", json.dumps({"variables": {}}).encode()):
            status, _ = await s.post(body)
            assert status == 400


async def test_more_than_250_quantities_are_refused() -> None:
    async with store(listings=251) as s:
        body = await s.set([qty(n, 1, None) for n in range(251)])
        assert codes(body) == [doc.MAX_INPUT_SIZE_EXCEEDED]
        assert s.shown(0) == 0
        body = await s.set([qty(n, 1, None) for n in range(250)], key="k-2")
        assert user_errors(body) == []


@pytest.mark.parametrize(
    ("entry", "code", "where"),
    [
        (qty(0, -1, None), doc.INVALID_QUANTITY_NEGATIVE, "quantity"),
        (qty(0, doc.MAX_QUANTITY + 1, None), doc.INVALID_QUANTITY_TOO_HIGH, "quantity"),
        (
            qty(0, 1, None) | {"inventoryItemId": item(99)},
            doc.INVALID_INVENTORY_ITEM,
            "inventoryItemId",
        ),
        (
            qty(0, 1, None) | {"locationId": "gid://shopify/Location/9"},
            doc.INVALID_LOCATION,
            "locationId",
        ),
    ],
)
async def test_a_quantity_the_store_cannot_take_is_a_user_error_on_its_field(
    entry: dict[str, Any], code: str, where: str
) -> None:
    async with store() as s:
        body = await s.set([entry])
        assert user_errors(body) == [(code, ["input", "quantities", "0", where])]


async def test_an_item_elsewhere_or_sent_twice_is_refused_on_its_field() -> None:
    async with store() as s:
        s.emulation.market.listings[item(1)].ids["location_id"] = "gid://shopify/Location/2"
        body = await s.set([qty(0, 1, None), qty(0, 2, None), qty(1, 1, None)])
        assert user_errors(body) == [
            (doc.NO_DUPLICATE_PAIR, ["input", "quantities", "1"]),
            (doc.ITEM_NOT_STOCKED_AT_LOCATION, ["input", "quantities", "2", "locationId"]),
        ]
        body = await s.set([qty(0, 1, None)], key="k-2", name="on_hand")
        assert user_errors(body) == [(doc.INVALID_NAME, ["input", "name"])]
        body = await s.set([qty(0, 1, None)], key="k-3", reason="because")
        assert user_errors(body) == [(doc.INVALID_REASON, ["input", "reason"])]
        assert s.shown(0) == 0


async def test_a_burst_over_the_cost_budget_is_throttled_and_counted() -> None:
    async with store() as s:
        s.emulation.bucket = Bucket(100.0, 1000.0, clock=lambda: 0.0)  # no refill meanwhile
        replies = [await s.set([qty(0, n % 5, None)], key=f"k-{n}") for n in range(100)]
        throttled = [r for r in replies if "THROTTLED" in codes(r)]
        fits = 1000 // doc.SET_QUANTITIES_COST
        assert len(throttled) == 100 - fits
        assert all("THROTTLED" not in codes(r) for r in replies[:fits])
        assert s.emulation.market.counters.throttled == len(throttled)
        reply = throttled[0]
        assert reply["errors"][0]["message"] == "Throttled"
        assert reply["extensions"]["cost"]["actualQueryCost"] is None
        status = reply["extensions"]["cost"]["throttleStatus"]
        assert status["currentlyAvailable"] == 1000 - fits * doc.SET_QUANTITIES_COST


def test_the_store_budget_follows_the_channel_plan() -> None:
    market = Market("shopify", "web", options={"plan": "plus"})
    plus = ShopifySandbox(market, {"access_token": Secret("$T", TOKEN)}, SandboxSettings())
    assert (plus.bucket.rate, plus.bucket.capacity) == (1000.0, 10_000.0)
    with pytest.raises(ValueError, match="plan"):
        ShopifySandbox(
            Market("shopify", "web", options={"plan": "gold"}),
            {"access_token": Secret("$T", TOKEN)},
            SandboxSettings(),
        )


async def test_a_query_dearer_than_the_whole_bucket_is_refused_not_throttled() -> None:
    async with store() as s:
        count = 1000 // (3 * doc.OBJECT_COST) + 1
        variables = {
            k: v for n in range(count) for k, v in ((f"i{n}", item(0)), (f"l{n}", LOCATION))
        }
        _, body = await s.post({"query": doc.read_levels(count), "variables": variables})
        assert codes(body) == [doc.MAX_COST_EXCEEDED]
        assert s.emulation.market.counters.throttled == 0


async def test_the_level_query_reads_what_the_store_shows() -> None:
    async with store() as s:
        await s.set([qty(1, 8, 0)])
        variables = {"i0": item(1), "l0": LOCATION, "i1": item(99), "l1": LOCATION}
        _, body = await s.post({"query": doc.read_levels(2), "variables": variables})
        level = body["data"]["q0"]["inventoryLevel"]
        assert level["quantities"] == [{"name": "available", "quantity": 8}]
        assert body["data"]["q1"] is None
