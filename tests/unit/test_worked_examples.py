"""The contract's worked examples, exactly, through the public API; one example each for
the SKU kinds the reference model leaves out (bundles, preorders, non-inventory); and the
rules of docs/engine.md that totals alone cannot show (which backorder fills first, holds
converting into orders)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from invsync import BadInputError, Engine, Policy
from tests.contract_examples import SECOND_EXAMPLE_CHANNELS, SECOND_EXAMPLE_POLICY
from tests.model.reference import ReferenceModel

_ids = itertools.count(1)

TS = "2026-11-23T10:00:00Z"


def event(kind: str, ts: str = TS, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "event_id": f"e-{next(_ids)}", "ts": ts, **fields}


def order(order_id: str, channel: str, sku: str, qty: int) -> dict[str, Any]:
    lines = [{"line_id": "1", "sku": sku, "qty": qty}]
    return event("order.placed", order_id=order_id, channel=channel, lines=lines)


def reserve(order_id: str, channel: str, sku: str, qty: int, ts: str = TS) -> dict[str, Any]:
    return {
        "type": "reserve",
        "request_id": f"r-{order_id}",
        "order_id": order_id,
        "channel": channel,
        "ts": ts,
        "lines": [{"line_id": "1", "sku": sku, "qty": qty}],
        "hold_seconds": 600,
    }


FIRST_EXAMPLE_POLICY = """
[defaults]
safety = 0

[[tiers]]
tier = 1
protect = 0

[[tiers]]
tier = 2
protect = 0

[[locations]]
id = "wh-1"
kind = "warehouse"

[[channels]]
id = "shopify"
tier = 1
cap = 200

[[channels]]
id = "amazon"
tier = 2

[[skus]]
id = "A"
safety = 75
channels = { amazon = { cap = 300 } }
"""


def first_example_engine() -> Engine:
    """1,000 on hand, 100 inbound, safety 75, 250 reserved."""
    engine = Engine(Policy.from_toml(FIRST_EXAMPLE_POLICY, source="first.toml"))
    engine.apply(event("stock.set", sku="A", location="wh-1", on_hand=1000))
    engine.apply(event("stock.inbound", sku="A", location="wh-1", qty=100, eta=TS))
    engine.apply(order("o-1", "shopify", "A", 250))
    return engine


def test_first_example_ats_is_on_hand_less_reserved_less_safety() -> None:
    engine = first_example_engine()
    assert engine.ats("A") == 675


def test_first_example_channels_are_shown_their_caps() -> None:
    engine = first_example_engine()
    assert engine.shown("A", "amazon") == 300
    assert engine.shown("A", "shopify") == 200


def test_first_example_explain_json_names_every_number() -> None:
    explained = first_example_engine().explain("A").to_dict()
    assert explained["sku"] == "A"
    assert explained["condition"] == "new"
    assert explained["ats"] == 675
    assert explained["on_hand"] == 1000
    assert explained["reserved"] == 250
    assert explained["backordered"] == 0
    assert explained["safety"] == 75
    assert explained["inbound"] == 100
    assert explained["quarantined"] == 0
    shown = {c["channel"]: (c["tier"], c["shown"]) for c in explained["channels"]}
    assert shown == {"shopify": (1, 200), "amazon": (2, 300)}


def test_first_example_explain_text_reads_as_the_contract() -> None:
    text = str(first_example_engine().explain("A"))
    expected = [
        "A  ATS 675 = on hand 1000 − reserved 250 − safety 75   (inbound 100 not counted)",
        "  shopify  tier 1  200  = min(cap 200, 675)",
        "  amazon   tier 2  300  = min(cap 300, 675 − protect[1] 0)",
    ]
    # Column alignment may vary with channel names; the words and numbers may not.
    assert [line.split() for line in text.strip().splitlines()] == [
        line.split() for line in expected
    ]


def test_reference_model_agrees_with_the_first_example() -> None:
    model = ReferenceModel.from_toml(FIRST_EXAMPLE_POLICY)
    model.apply(event("stock.set", sku="A", location="wh-1", on_hand=1000))
    model.apply(event("stock.inbound", sku="A", location="wh-1", qty=100, eta=TS))
    model.apply(order("o-1", "shopify", "A", 250))
    assert (model.ats("A"), model.shown("A", "amazon"), model.shown("A", "shopify")) == (
        675,
        300,
        200,
    )


def second_example_engine() -> Engine:
    return Engine(Policy.from_toml(SECOND_EXAMPLE_POLICY, source="second.toml"))


def test_second_example_three_orders_leave_every_channel_seven() -> None:
    engine = second_example_engine()
    engine.apply(event("stock.set", sku="S", location="wh-3", on_hand=10))
    engine.apply(order("o-1", "amazon", "S", 1))
    engine.apply(order("o-2", "ebay", "S", 1))
    engine.apply(order("o-3", "ebay", "S", 1))
    assert engine.ats("S") == 7
    assert [engine.shown("S", c) for c in SECOND_EXAMPLE_CHANNELS] == [7, 7, 7]


def test_second_example_offline_store_stock_is_tracked_but_not_offered() -> None:
    engine = second_example_engine()
    for location, units in [("wh-3", 4), ("dropship-vendor", 3), ("third-party", 2)]:
        engine.apply(event("stock.set", sku="S", location=location, on_hand=units))
    engine.apply(event("stock.set", sku="S", location="retail-01", on_hand=5))
    assert engine.ats("S") == 9
    assert [engine.shown("S", c) for c in SECOND_EXAMPLE_CHANNELS] == [9, 9, 9]
    explained = engine.explain("S").to_dict()
    assert explained["on_hand"] == 9
    retail = next(loc for loc in explained["locations"] if loc["location"] == "retail-01")
    assert (retail["on_hand"], retail["online"]) == (5, False)


def test_reference_model_agrees_with_the_second_example() -> None:
    model = ReferenceModel.from_toml(SECOND_EXAMPLE_POLICY)
    model.apply(event("stock.set", sku="S", location="wh-3", on_hand=10))
    for number, channel in enumerate(["amazon", "ebay", "ebay"]):
        model.apply(order(f"o-{number}", channel, "S", 1))
    assert [model.shown("S", c) for c in SECOND_EXAMPLE_CHANNELS] == [7, 7, 7]
    for location, units in [("dropship-vendor", 3), ("third-party", 2), ("retail-01", 5)]:
        model.apply(event("stock.set", sku="S", location=location, on_hand=units))
    model.apply(event("order.cancelled", order_id="o-0"))
    model.apply(event("stock.set", sku="S", location="wh-3", on_hand=4))
    assert model.reserved("S") == 2
    assert model.ats("S") == 7  # 4 + 3 + 2 online, 2 still reserved, retail-01 not offered


KINDS_POLICY = """
[defaults]
non_inventory_qty = 999

[[tiers]]
tier = 1
protect = 0

[[locations]]
id = "wh-1"
kind = "warehouse"

[[channels]]
id = "shopify"
tier = 1

[[channels]]
id = "amazon"
tier = 1
cap = 12

[[skus]]
id = "CUP"

[[skus]]
id = "SAUCER"

[[skus]]
id = "TEA-SET"
kind = "bundle"
components = [{ sku = "CUP", qty = 2 }, { sku = "SAUCER", qty = 1 }]

[[skus]]
id = "LAUNCH"
kind = "preorder"
sellable_from = "2026-12-01T00:00:00Z"
preorder_limit = 20

[[skus]]
id = "GIFT-WRAP"
kind = "non_inventory"
"""


def kinds_engine() -> Engine:
    engine = Engine(Policy.from_toml(KINDS_POLICY, source="kinds.toml"))
    engine.apply(event("stock.set", sku="CUP", location="wh-1", on_hand=7))
    engine.apply(event("stock.set", sku="SAUCER", location="wh-1", on_hand=5))
    return engine


def test_bundle_ats_is_the_scarcest_component_in_bundle_units() -> None:
    engine = kinds_engine()
    assert engine.ats("TEA-SET") == 3  # min(7 // 2, 5 // 1)
    assert engine.shown("TEA-SET", "shopify") == 3


def test_reserving_a_bundle_reserves_every_component() -> None:
    engine = kinds_engine()
    assert engine.reserve(reserve("o-1", "shopify", "TEA-SET", 2))["ok"] is True
    assert engine.ats("CUP") == 3
    assert engine.ats("SAUCER") == 3
    assert engine.ats("TEA-SET") == 1


def test_a_bundle_the_components_cannot_cover_reserves_nothing() -> None:
    engine = kinds_engine()
    reply = engine.reserve(reserve("o-1", "shopify", "TEA-SET", 4))
    assert reply["ok"] is False
    assert reply["lines"][0]["reason"] == "insufficient"
    assert (engine.ats("CUP"), engine.ats("SAUCER"), engine.ats("TEA-SET")) == (7, 5, 3)


def test_preorder_before_its_date_shows_the_limit_left_within_cap() -> None:
    engine = kinds_engine()
    assert engine.shown("LAUNCH", "shopify") == 20
    assert engine.shown("LAUNCH", "amazon") == 12
    assert engine.reserve(reserve("o-1", "shopify", "LAUNCH", 5))["ok"] is True
    assert engine.shown("LAUNCH", "shopify") == 15
    assert engine.shown("LAUNCH", "amazon") == 12


def test_preorder_reservations_beyond_the_limit_are_refused() -> None:
    engine = kinds_engine()
    assert engine.reserve(reserve("o-1", "shopify", "LAUNCH", 21))["ok"] is False
    assert engine.shown("LAUNCH", "shopify") == 20


def test_preorder_from_its_date_sells_stock_like_a_standard_sku() -> None:
    engine = kinds_engine()
    engine.apply(event("stock.set", sku="LAUNCH", location="wh-1", on_hand=4))
    engine.apply(event("clock.tick", ts="2026-12-01T00:00:01Z"))
    assert engine.shown("LAUNCH", "shopify") == 4
    assert engine.ats("LAUNCH") == 4


def test_non_inventory_is_always_shown_and_always_granted() -> None:
    engine = kinds_engine()
    assert engine.shown("GIFT-WRAP", "shopify") == 999
    assert engine.reserve(reserve("o-1", "shopify", "GIFT-WRAP", 5000))["ok"] is True
    assert engine.shown("GIFT-WRAP", "amazon") == 999


def test_arriving_stock_fills_the_oldest_backorder_first() -> None:
    engine = second_example_engine()
    engine.apply(order("o-old", "ebay", "S", 2))
    engine.apply(order("o-new", "amazon", "S", 2))
    assert engine.backordered("S") == 4
    engine.apply(event("stock.set", sku="S", location="wh-3", on_hand=2))
    assert (engine.reserved("S"), engine.backordered("S")) == (2, 2)
    ship_new = [{"line_id": "1", "qty": 2, "location": "wh-3"}]
    with pytest.raises(BadInputError):  # the newer order got nothing to ship
        engine.apply(event("order.shipped", order_id="o-new", lines=ship_new))
    engine.apply(event("order.shipped", order_id="o-old", lines=ship_new))
    assert (engine.reserved("S"), engine.backordered("S")) == (0, 2)


def test_an_order_converts_its_hold_even_after_a_recount_took_stock_below_it() -> None:
    engine = second_example_engine()
    engine.apply(event("stock.set", sku="S", location="wh-3", on_hand=5))
    assert engine.reserve(reserve("o-1", "ebay", "S", 3))["ok"] is True
    engine.apply(event("stock.set", sku="S", location="wh-3", on_hand=2))
    engine.apply(order("o-1", "ebay", "S", 3))
    assert (engine.reserved("S"), engine.backordered("S")) == (3, 0)


def shipped_used_order() -> Engine:
    """An order for 2 used units of S, shipped in full: the order is complete."""
    engine = second_example_engine()
    engine.apply(event("stock.set", sku="S", location="wh-3", on_hand=10, condition="used"))
    line = {"line_id": "1", "sku": "S", "qty": 2, "condition": "used"}
    engine.apply(event("order.placed", order_id="o-1", channel="amazon", lines=[line]))
    shipped = [{"line_id": "1", "qty": 2, "location": "wh-3"}]
    engine.apply(event("order.shipped", order_id="o-1", lines=shipped))
    return engine


def returned(qty: int) -> dict[str, Any]:
    return event(
        "order.returned",
        order_id="o-1",
        line_id="1",
        sku="S",
        location="wh-3",
        qty=qty,
        disposition="restock",
    )


def test_a_return_goes_back_to_the_condition_its_line_was_sold_in() -> None:
    engine = shipped_used_order()
    engine.apply(returned(1))
    assert engine.ats("S", condition="used") == 9
    assert engine.ats("S", condition="new") == 0


def test_a_line_cannot_return_more_than_it_shipped_even_once_complete() -> None:
    engine = shipped_used_order()
    with pytest.raises(BadInputError):
        engine.apply(returned(3))
    assert engine.ats("S", condition="used") == 8
