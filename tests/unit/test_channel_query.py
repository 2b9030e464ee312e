"""`inv.query.channel` answered from an engine: pages, cursors, bad queries."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from invsync import Engine, Policy
from invsync.events import ChannelPage, encode_json
from invsync.service.channel_query import (
    BAD_CURSOR_ERROR,
    REPUBLISHING_ERROR,
    BadQuery,
    answer,
)

POLICY = """
[[tiers]]
tier = 1
[[locations]]
id = "wh"
kind = "warehouse"
[[channels]]
id = "shop"
tier = 1
[[channels]]
id = "outlet"
tier = 1
conditions = ["used"]
"""
TS = "2026-11-23T10:00:00Z"


def stock(sku: str, on_hand: int, n: int, condition: str = "new") -> dict[str, Any]:
    return {
        "type": "stock.set",
        "event_id": f"s{n}",
        "ts": TS,
        "sku": sku,
        "condition": condition,
        "location": "wh",
        "on_hand": on_hand,
    }


def price_set(sku: str, price: str, n: int) -> dict[str, Any]:
    return {
        "type": "price.set",
        "event_id": f"p{n}",
        "ts": TS,
        "sku": sku,
        "price": price,
        "currency": "USD",
    }


def query(**fields: Any) -> bytes:
    return msgspec.json.encode(fields)


def all_pages(engine: Engine, seqs: dict[str, int], channel: str, limit: int) -> list[ChannelPage]:
    pages = [answer(engine, seqs, query(channel=channel, limit=limit))]
    while pages[-1].next is not None:
        assert len(pages) < 100, "paging must end"
        pages.append(
            answer(engine, seqs, query(channel=channel, after=pages[-1].next, limit=limit))
        )
    return pages


def test_pages_of_two_list_every_published_quantity_once_with_the_channel_seq() -> None:
    engine = Engine(Policy.from_toml(POLICY))
    for n, (sku, qty) in enumerate([("A", 5), ("B", 0), ("C", 7), ("D", 2), ("E", 9)]):
        engine.apply(stock(sku, qty, n))
    engine.apply(stock("U", 4, 10, condition="used"))
    published = engine.drain_changes()
    engine.apply(stock("LATE", 3, 11))  # applied, not yet drained: not published

    pages = all_pages(engine, {"shop": 41}, "shop", 2)

    assert [len(p.items) for p in pages] == [2, 2, 1]
    assert {p.seq for p in pages} == {41}
    shown = [(i.sku, i.condition, i.qty) for p in pages for i in p.items]
    sent = [(i.sku, i.condition, i.qty) for i in published["shop"]]
    # shop does not sell `used`: its 0 went out, and a page leaves it out (absent = 0).
    assert ("U", "used", 0) in sent
    assert shown == [item for item in sent if item[1] == "new"]
    assert shown == [
        ("A", "new", 5),
        ("B", "new", 0),
        ("C", "new", 7),
        ("D", "new", 2),
        ("E", "new", 9),
    ]
    outlet = all_pages(engine, {}, "outlet", 1000)
    assert [(i.sku, i.condition, i.qty) for i in outlet[0].items] == [("U", "used", 4)]
    assert outlet[0].seq == 0 and outlet[0].next is None


def test_items_carry_their_skus_published_price_and_unpriced_pages_stay_as_they_were() -> None:
    engine = Engine(Policy.from_toml(POLICY.replace('id = "shop"\n', 'id = "shop"\nprice = {}\n')))
    engine.apply(stock("A", 5, 1))
    engine.apply(stock("B", 3, 2))
    engine.apply(stock("U", 4, 3, condition="used"))
    engine.apply(price_set("A", "19.00", 1))
    engine.drain_changes()
    engine.apply(price_set("B", "5.00", 2))  # recorded, not yet published
    prices, _ = engine.drain_prices(max_skus=1)
    assert [(ch, msgspec.json.decode(body)["sku"]) for ch, body in prices] == [("shop", "A")]

    [page] = all_pages(engine, {"shop": 3}, "shop", 10)

    assert [(i.sku, i.price, i.currency) for i in page.items] == [
        ("A", "19.00", "USD"),
        ("B", None, None),
    ]
    assert b'{"sku":"B","condition":"new","qty":3}' in encode_json(page)
    # outlet sets no prices: its page is byte for byte what it was before prices.
    [outlet] = all_pages(engine, {"outlet": 1}, "outlet", 10)
    assert encode_json(outlet) == (
        b'{"channel":"outlet","seq":1,"items":[{"sku":"U","condition":"used","qty":4}],"next":null}'
    )


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (query(channel="nowhere"), "unknown channel"),
        (query(channel="shop", after="x1"), BAD_CURSOR_ERROR),
        (query(channel="shop", after="-1"), BAD_CURSOR_ERROR),
        (query(channel="shop", after=str(2**32)), BAD_CURSOR_ERROR),
        (query(channel="shop", after="١"), BAD_CURSOR_ERROR),  # a digit, but not ASCII
    ],
)
def test_a_bad_channel_or_cursor_is_refused_by_name(body: bytes, error: str) -> None:
    engine = Engine(Policy.from_toml(POLICY))
    with pytest.raises(BadQuery) as refused:
        answer(engine, {}, body)
    assert str(refused.value) == error


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        query(limit=5),
        query(channel="shop", limit=0),
        query(channel="shop", limit=10_001),
        query(channel="shop", after=3),
    ],
)
def test_a_query_off_the_schema_is_refused(body: bytes) -> None:
    engine = Engine(Policy.from_toml(POLICY))
    with pytest.raises(BadQuery):
        answer(engine, {}, body)


def test_the_largest_page_is_allowed_and_a_page_is_bounded_by_its_limit() -> None:
    engine = Engine(Policy.from_toml(POLICY))
    for n in range(12):
        engine.apply(stock(f"S{n}", n + 1, n))
    engine.drain_changes()
    assert len(answer(engine, {}, query(channel="shop", limit=10_000)).items) == 12
    first = answer(engine, {}, query(channel="shop", limit=5))
    assert len(first.items) == 5 and first.next is not None


def test_after_a_policy_reload_pages_wait_for_the_republish() -> None:
    engine = Engine(Policy.from_toml(POLICY))
    engine.apply(stock("A", 5, 1))
    engine.drain_changes()
    engine.set_policy(Policy.from_toml(POLICY + '[[channels]]\nid = "etsy"\ntier = 1\n'))
    with pytest.raises(BadQuery) as refused:
        answer(engine, {}, query(channel="shop"))
    assert str(refused.value) == REPUBLISHING_ERROR
    engine.drain_changes()
    page = answer(engine, {}, query(channel="etsy"))
    assert [(i.sku, i.qty) for i in page.items] == [("A", 5)]
