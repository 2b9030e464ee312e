"""`Engine.apply_many` with contract dicts: in order, merged, and it stops at the first
bad event, which changes nothing, while the events before it stay applied."""

from __future__ import annotations

from typing import Any

import pytest

from invsync import BadInputError, Engine, Policy
from invsync.engine import Effects
from tests.small_policy import ONE_WAREHOUSE_POLICY as POLICY
from tests.small_policy import TS


def stock(event_id: str, sku: str, on_hand: int, location: str = "wh") -> dict[str, Any]:
    return {
        "type": "stock.set",
        "event_id": event_id,
        "ts": TS,
        "sku": sku,
        "location": location,
        "on_hand": on_hand,
    }


def order(event_id: str, order_id: str, sku: str, qty: int) -> dict[str, Any]:
    return {
        "type": "order.placed",
        "event_id": event_id,
        "ts": TS,
        "order_id": order_id,
        "channel": "shopify",
        "lines": [{"line_id": "1", "sku": sku, "qty": qty}],
    }


def reserve(order_id: str, sku: str, qty: int) -> dict[str, Any]:
    return {
        "type": "reserve",
        "request_id": f"r-{order_id}",
        "order_id": order_id,
        "channel": "shopify",
        "ts": TS,
        "lines": [{"line_id": "1", "sku": sku, "qty": qty}],
        "hold_seconds": 600,
    }


def engine() -> Engine:
    return Engine(Policy.from_toml(POLICY))


def effects(fx: Effects) -> tuple[Any, ...]:
    return (fx.routes, [(a.kind, a.sku, a.detail) for a in fx.alerts], fx.backorders, fx.audit)


@pytest.mark.parametrize(
    "bad",
    [
        stock("s-bad", "B", 1, location="nowhere"),  # refused by the core
        {**stock("s-bad", "B", 1), "on_hand": "1"},  # refused by the decoder
        {**stock("s-bad", "B", 1), "type": "stock.teleported"},  # no such event
        {**stock("s-bad", "B", 1), "type": ["stock.set"]},  # a type that is not text
        {k: v for k, v in stock("s-bad", "B", 1).items() if k != "type"},
    ],
)
def test_the_first_bad_event_stops_the_rest_and_what_came_before_stays(
    bad: dict[str, Any],
) -> None:
    e = engine()
    with pytest.raises(BadInputError):
        e.apply_many([stock("s1", "A", 5), order("o1", "o-1", "A", 2), bad, stock("s2", "C", 7)])
    assert (e.ats("A"), e.reserved("A"), e.ats("B"), e.ats("C")) == (3, 2, 0, 0)


def test_reservations_and_events_apply_in_the_order_given() -> None:
    e = engine()
    e.apply_many(
        [
            stock("s1", "A", 5),
            reserve("h-1", "A", 3),  # holds 3 of the 5
            order("o1", "o-1", "A", 4),  # 2 committed, 2 backordered
            stock("s2", "A", 9),  # fills the backorder
        ]
    )
    assert (e.reserved("A"), e.backordered("A"), e.ats("A")) == (7, 0, 2)


def test_the_merged_effects_are_those_of_applying_one_by_one() -> None:
    events = [
        stock("s1", "A", 5),
        order("o1", "o-1", "A", 2),
        order("o2", "o-2", "A", 6),  # backordered beyond the stock: an alert
        stock("s1", "A", 50),  # a duplicate: changes nothing
        stock("s2", "A", 8),
    ]
    one_by_one, together = engine(), engine()
    merged = Effects()
    for event in events:
        merged.merge(one_by_one.apply(event))
    assert effects(together.apply_many(events)) == effects(merged)
    assert together.snapshot() == one_by_one.snapshot()


def test_an_event_id_seen_earlier_in_the_same_call_is_a_duplicate() -> None:
    e = engine()
    e.apply_many([stock("s1", "A", 5), order("o1", "o-1", "A", 2), order("o1", "o-1", "A", 2)])
    assert e.reserved("A") == 2
