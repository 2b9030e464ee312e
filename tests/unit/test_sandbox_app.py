"""The sandbox's own endpoints: selling, its state, adding listings, and a restart that
keeps what the marketplaces show. A stand-in platform keeps these tests about the
application, not about any one marketplace's rules."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web

from invsync.events import OrderPlaced
from invsync.gateway.platforms.base import Listing
from invsync.sandbox.app import Sandbox, Storefront, sandbox_factory, serving
from invsync.sandbox.market import Market
from invsync.sandbox.orders import DeliveryError, OrderBook, new_order

pytestmark = pytest.mark.anyio


@dataclass
class Stall:
    """A platform with one route that sets a listing's quantity."""

    market: Market
    order_delay_s: float = 0.0
    platform: str = "stall"
    extra: dict[str, Any] = field(default_factory=dict)

    def routes(self) -> Iterable[web.RouteDef]:
        async def put(request: web.Request) -> web.Response:
            self.market.counters.requests += 1
            body = await request.json()
            self.market.listings[request.match_info["key"]].qty = body["qty"]
            return web.json_response({})

        return [web.put("/stall/{key}", put)]

    def state(self) -> Mapping[str, Any]:
        return self.extra


def storefront(delay_s: float = 0.0) -> Storefront:
    front = Storefront(
        Stall(Market("stall", "web"), order_delay_s=delay_s),
        ("stall_id",),
        lambda listing: listing.ids["stall_id"],
    )
    front.add(Listing("A", "new", {"stall_id": "a-1"}))
    return front


class Orders:
    def __init__(self) -> None:
        self.got: list[tuple[str, OrderPlaced]] = []
        self.fail = 0

    async def __call__(self, channel: str, order: OrderPlaced) -> None:
        if self.fail:
            self.fail -= 1
            raise DeliveryError("not yet")
        self.got.append((channel, order))


@asynccontextmanager
async def sandbox(
    front: Storefront, orders: Orders | None = None, state_file: Path | None = None
) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    box = Sandbox([front], OrderBook(orders))
    async with (
        serving(box, port=0, state_file=state_file) as port,
        aiohttp.ClientSession() as http,
    ):
        yield http, f"http://127.0.0.1:{port}"


async def test_a_sale_lowers_what_the_listing_shows_and_never_sells_more() -> None:
    async with sandbox(storefront()) as (http, url):
        await http.put(f"{url}/stall/a-1", json={"qty": 5})
        async with http.post(
            f"{url}/sandbox/sale", json={"platform": "stall", "listing": "a-1", "qty": 3}
        ) as r:
            assert r.status == 200
            assert (await r.json())["shown"] == 2
        async with http.post(
            f"{url}/sandbox/sale", json={"platform": "stall", "listing": "a-1", "qty": 3}
        ) as r:
            assert r.status == 409
        async with http.get(f"{url}/sandbox/state") as r:
            state = await r.json()
    listing = state["platforms"]["stall"]["listings"]["a-1"]
    assert (listing["qty"], listing["sold"]) == (2, 3)
    assert state["platforms"]["stall"]["counters"] == {"requests": 1, "throttled": 0, "rejected": 0}


async def test_a_sale_of_an_unknown_listing_or_platform_is_not_found() -> None:
    async with sandbox(storefront()) as (http, url):
        for body in (
            {"platform": "stall", "listing": "nope", "qty": 1},
            {"platform": "bazaar", "listing": "a-1", "qty": 1},
        ):
            async with http.post(f"{url}/sandbox/sale", json=body) as r:
                assert r.status == 404
        async with http.post(
            f"{url}/sandbox/sale", json={"platform": "stall", "listing": "a-1", "qty": 0}
        ) as r:
            assert r.status == 400


async def test_the_order_reaches_the_oms_only_after_the_platform_delay() -> None:
    orders = Orders()
    async with sandbox(storefront(delay_s=0.3), orders) as (http, url):
        await http.put(f"{url}/stall/a-1", json={"qty": 5})
        await http.post(
            f"{url}/sandbox/sale", json={"platform": "stall", "listing": "a-1", "qty": 2}
        )
        await anyio.sleep(0.1)
        assert orders.got == []
        with anyio.fail_after(3):
            while not orders.got:
                await anyio.sleep(0.02)
    channel, order = orders.got[0]
    assert channel == "web"
    assert [(line.sku, line.qty, line.condition) for line in order.lines] == [("A", 2, "new")]


async def test_an_order_the_oms_did_not_take_is_delivered_later() -> None:
    orders = Orders()
    orders.fail = 1
    async with sandbox(storefront(), orders) as (http, url):
        await http.put(f"{url}/stall/a-1", json={"qty": 1})
        await http.post(
            f"{url}/sandbox/sale", json={"platform": "stall", "listing": "a-1", "qty": 1}
        )
        with anyio.fail_after(5):
            while not orders.got:
                await anyio.sleep(0.05)
    assert len(orders.got) == 1


async def test_listings_added_over_http_are_keyed_by_the_platform_id() -> None:
    async with sandbox(storefront()) as (http, url):
        body = {
            "platform": "stall",
            "listings": [{"sku": "B", "ids": {"stall_id": "b-9"}, "qty": 4}],
        }
        async with http.post(f"{url}/sandbox/listings", json=body) as r:
            assert (await r.json())["listings"] == ["b-9"]
        good_then_bad = [{"sku": "D", "ids": {"stall_id": "d-1"}}, {"sku": "C", "ids": {}}]
        bad = {"platform": "stall", "listings": good_then_bad}
        async with http.post(f"{url}/sandbox/listings", json=bad) as r:
            assert r.status == 400
        async with http.get(f"{url}/sandbox/state") as r:
            listings = (await r.json())["platforms"]["stall"]["listings"]
    assert listings["b-9"]["qty"] == 4
    assert {li["sku"] for li in listings.values()} == {"A", "B"}  # neither C nor D


async def test_a_restart_with_a_state_file_keeps_what_the_marketplace_shows(tmp_path: Path) -> None:
    state_file = tmp_path / "sandbox.json"
    orders = Orders()
    async with sandbox(storefront(delay_s=60), Orders(), state_file) as (http, url):
        await http.put(f"{url}/stall/a-1", json={"qty": 7})
        await http.post(
            f"{url}/sandbox/sale", json={"platform": "stall", "listing": "a-1", "qty": 1}
        )
    async with (
        sandbox(storefront(delay_s=60), orders, state_file) as (http, url),
        http.get(f"{url}/sandbox/state") as r,
    ):
        state = await r.json()
    assert state["platforms"]["stall"]["listings"]["a-1"]["qty"] == 6
    assert state["orders"]["pending"] == 1


async def test_a_sale_is_at_the_listings_price_and_a_restart_keeps_price_and_revenue(
    tmp_path: Path,
) -> None:
    state_file = tmp_path / "sandbox.json"
    front = storefront(delay_s=60)
    front.emulation.market.listings["a-1"].price = "4.50"
    async with sandbox(front, Orders(), state_file) as (http, url):
        await http.put(f"{url}/stall/a-1", json={"qty": 7})
        sale = {"platform": "stall", "listing": "a-1", "qty": 2}
        async with http.post(f"{url}/sandbox/sale", json=sale) as r:
            sold = await r.json()
    assert sold["unit_price"] == "4.50"
    async with (
        sandbox(storefront(delay_s=60), Orders(), state_file) as (http, url),
        http.get(f"{url}/sandbox/state") as r,
    ):
        listing = (await r.json())["platforms"]["stall"]["listings"]["a-1"]
    assert (listing["qty"], listing["price"], listing["status"]) == (5, "4.50", "live")
    assert (listing["sold"], listing["revenue"]) == (2, "9.00")


def test_a_platform_the_sandbox_does_not_emulate_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="etsy"):
        sandbox_factory("etsy")


def test_two_channels_on_one_platform_are_refused() -> None:
    with pytest.raises(ValueError, match="one channel per platform"):
        Sandbox([storefront(), storefront()], OrderBook(None))


async def test_orders_reach_the_oms_in_the_order_they_fall_due() -> None:
    orders = Orders()
    book = OrderBook(orders)
    sold = datetime(2026, 12, 5, tzinfo=UTC)
    late = book.place(new_order("slow", "A", "new", 1, sold), 0.3)
    early = book.place(new_order("fast", "B", "new", 1, sold), 0.05)
    assert [p.order.order_id for p in book.pending] == [early.order.order_id, late.order.order_id]
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(book.run)
        with anyio.fail_after(3):
            while len(orders.got) < 2:
                await anyio.sleep(0.02)
        tasks.cancel_scope.cancel()
    assert [channel for channel, _ in orders.got] == ["fast", "slow"]
    assert book.pending == []


async def test_a_restart_keeps_the_listing_files_ids_and_the_saved_quantity(
    tmp_path: Path,
) -> None:
    state_file = tmp_path / "sandbox.json"
    async with sandbox(storefront(), state_file=state_file) as (http, url):
        await http.put(f"{url}/stall/a-1", json={"qty": 4})
        body = {"platform": "stall", "listings": [{"sku": "B", "ids": {"stall_id": "b-2"}}]}
        await http.post(f"{url}/sandbox/listings", json=body)
    remapped = storefront()
    remapped.emulation.market.listings["a-1"].sku = "A-NEW"  # the seller edited the map
    async with (
        sandbox(remapped, state_file=state_file) as (http, url),
        http.get(f"{url}/sandbox/state") as r,
    ):
        listings = (await r.json())["platforms"]["stall"]["listings"]
    assert (listings["a-1"]["sku"], listings["a-1"]["qty"]) == ("A-NEW", 4)
    assert listings["b-2"]["sku"] == "B"


async def test_a_state_file_that_cannot_be_written_stops_the_start(tmp_path: Path) -> None:
    served = False
    with pytest.raises(OSError):
        async with sandbox(storefront(), state_file=tmp_path / "missing" / "state.json"):
            served = True
    assert not served
