"""The contract's SKU kinds (CONTRACT section 4): a hold date (`sellable_from`) holds
back every kind with stock, not only preorders; a discontinued SKU sells until zero,
never against inbound, and says so when it is sold out."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from invsync import Engine, Policy

_ids = itertools.count(1)

TS = "2026-11-23T10:00:00Z"
AFTER_THE_DATE = "2026-12-01T00:00:01Z"

POLICY = """
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
cap = 3

[[skus]]
id = "HELD"
sellable_from = "2026-12-01T00:00:00Z"

[[skus]]
id = "EARLY"
sellable_from = "2026-12-01T00:00:00Z"
preorder_limit = 5

[[skus]]
id = "CUP"

[[skus]]
id = "HELD-SET"
kind = "bundle"
components = [{ sku = "CUP", qty = 2 }]
sellable_from = "2026-12-01T00:00:00Z"

[[skus]]
id = "SAUCER"
sellable_from = "2026-12-01T00:00:00Z"

[[skus]]
id = "TEA-SET"
kind = "bundle"
components = [{ sku = "CUP", qty = 1 }, { sku = "SAUCER", qty = 1 }]

[[skus]]
id = "LAST"
kind = "discontinued"

[[skus]]
id = "LAST-DATED"
kind = "discontinued"
sellable_from = "2026-12-01T00:00:00Z"
preorder_limit = 5
"""


def event(kind: str, ts: str = TS, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "event_id": f"e-{next(_ids)}", "ts": ts, **fields}


def stock(sku: str, on_hand: int) -> dict[str, Any]:
    return event("stock.set", sku=sku, location="wh-1", on_hand=on_hand)


def order(order_id: str, sku: str, qty: int) -> dict[str, Any]:
    lines = [{"line_id": "1", "sku": sku, "qty": qty}]
    return event("order.placed", order_id=order_id, channel="shopify", lines=lines)


def reserve(order_id: str, sku: str, qty: int) -> dict[str, Any]:
    return {
        "type": "reserve",
        "request_id": f"r-{order_id}",
        "order_id": order_id,
        "channel": "shopify",
        "ts": TS,
        "lines": [{"line_id": "1", "sku": sku, "qty": qty}],
        "hold_seconds": 30 * 24 * 3600,
    }


def stocked() -> Engine:
    engine = Engine(Policy.from_toml(POLICY, source="kinds.toml"))
    engine.apply_many([stock("HELD", 10), stock("EARLY", 10), stock("CUP", 10), stock("LAST", 3)])
    return engine


def refusal(reply: dict[str, Any]) -> str | None:
    assert reply["ok"] is False
    reason: str | None = reply["lines"][0]["reason"]
    return reason


# ---- hold dates on every kind with stock ------------------------------------------------


def test_a_standard_sku_before_its_hold_date_is_shown_nothing_of_its_stock() -> None:
    engine = stocked()
    assert engine.ats("HELD") == 10
    assert engine.shown("HELD", "shopify") == 0
    assert engine.shown("HELD", "amazon") == 0


def test_a_standard_sku_before_its_hold_date_grants_no_reservation() -> None:
    engine = stocked()
    assert refusal(engine.reserve(reserve("o-1", "HELD", 1))) == "insufficient"
    assert engine.reserved("HELD") == 0


def test_an_order_before_the_hold_date_takes_no_stock_and_is_alerted() -> None:
    engine = stocked()
    effects = engine.apply(order("o-1", "HELD", 2))
    assert [alert.kind for alert in effects.alerts] == ["oversell"]
    assert engine.reserved("HELD") == 0
    assert engine.ats("HELD") == 10


def test_before_its_hold_date_a_standard_sku_sells_its_preorder_limit() -> None:
    engine = stocked()
    assert engine.shown("EARLY", "shopify") == 5
    assert engine.shown("EARLY", "amazon") == 3  # min(limit left, cap)
    assert engine.reserve(reserve("o-1", "EARLY", 4))["ok"] is True
    assert engine.shown("EARLY", "shopify") == 1
    assert refusal(engine.reserve(reserve("o-2", "EARLY", 2))) == "insufficient"


def test_from_its_hold_date_a_standard_sku_sells_its_stock() -> None:
    engine = stocked()
    assert engine.reserve(reserve("o-1", "EARLY", 4))["ok"] is True
    engine.apply(event("clock.tick", ts=AFTER_THE_DATE))
    assert engine.reserved("EARLY") == 4  # the preorder hold now holds stock
    assert engine.shown("EARLY", "shopify") == 6
    assert engine.shown("HELD", "shopify") == 10
    assert engine.reserve(reserve("o-2", "HELD", 10))["ok"] is True


def test_a_bundle_before_its_hold_date_is_shown_nothing_of_its_components() -> None:
    engine = stocked()
    assert engine.ats("HELD-SET") == 5
    assert engine.shown("HELD-SET", "shopify") == 0
    assert refusal(engine.reserve(reserve("o-1", "HELD-SET", 1))) == "insufficient"
    assert engine.shown("CUP", "shopify") == 10
    engine.apply(event("clock.tick", ts=AFTER_THE_DATE))
    assert engine.shown("HELD-SET", "shopify") == 5


def test_a_bundle_waits_for_the_hold_date_of_its_components() -> None:
    engine = stocked()
    engine.apply(stock("SAUCER", 4))
    assert engine.ats("TEA-SET") == 4
    assert engine.shown("TEA-SET", "shopify") == 0
    assert refusal(engine.reserve(reserve("o-1", "TEA-SET", 1))) == "insufficient"
    engine.apply(order("o-2", "TEA-SET", 1))
    assert engine.reserved("SAUCER") == 0  # sold before the date: no saucer taken
    engine.apply(event("clock.tick", ts=AFTER_THE_DATE))
    assert engine.reserved("SAUCER") == 1  # the order is committed from stock now
    assert engine.shown("TEA-SET", "shopify") == 3


def test_the_raw_counters_refuse_a_held_sku_until_its_date() -> None:
    engine = stocked()
    idx = np.array([engine.index("HELD")], np.uint32)
    one, tier = np.ones(1, np.int64), np.ones(1, np.uint8)
    assert not engine.reserve_batch(idx, one, tier)[0]
    engine.apply(event("clock.tick", ts=AFTER_THE_DATE))
    assert engine.reserve_batch(idx, one, tier)[0]
    assert engine.reserved("HELD") == 1


def test_a_reload_that_adds_a_hold_date_holds_the_stock_back() -> None:
    engine = stocked()
    assert engine.shown("CUP", "shopify") == 10
    held = POLICY.replace('id = "CUP"\n', 'id = "CUP"\nsellable_from = "2026-12-01T00:00:00Z"\n')
    engine.set_policy(Policy.from_toml(held, source="held.toml"))
    assert engine.shown("CUP", "shopify") == 0


# ---- discontinued: sell until zero --------------------------------------------------------


def test_a_discontinued_sku_is_shown_and_reserved_like_a_standard_one() -> None:
    engine = stocked()
    assert engine.shown("LAST", "shopify") == 3
    assert engine.shown("LAST", "amazon") == 3
    assert engine.reserve(reserve("o-1", "LAST", 2))["ok"] is True
    assert engine.shown("LAST", "shopify") == 1
    assert refusal(engine.reserve(reserve("o-2", "LAST", 2))) == "insufficient"


def test_a_discontinued_sku_never_sells_against_inbound_or_a_hold_date() -> None:
    engine = stocked()
    engine.apply(event("stock.inbound", sku="LAST-DATED", location="wh-1", qty=50, eta=TS))
    assert engine.shown("LAST-DATED", "shopify") == 0  # no preorder_limit before the date
    assert refusal(engine.reserve(reserve("o-1", "LAST-DATED", 1))) == "insufficient"
    engine.apply(stock("LAST-DATED", 2))
    assert engine.shown("LAST-DATED", "shopify") == 2  # its stock, date or not


def test_a_discontinued_sku_reaching_zero_is_alerted_once_per_fall() -> None:
    engine = stocked()
    engine.drain_changes()
    assert not engine.drain_alerts()
    engine.apply(order("o-1", "LAST", 3))
    engine.drain_changes()
    sold_out = [a for a in engine.drain_alerts() if a.kind == "sold_out_discontinued"]
    assert [(a.sku, a.channel) for a in sold_out] == [("LAST", None)]
    engine.apply(stock("LAST", 3))  # still 0: all three are reserved for o-1
    engine.drain_changes()
    assert not engine.drain_alerts()
    engine.apply(stock("LAST", 4))
    engine.drain_changes()
    engine.apply(order("o-2", "LAST", 1))
    engine.drain_changes()
    assert [a.kind for a in engine.drain_alerts()] == ["sold_out_discontinued"]


def test_a_discontinued_sku_never_seen_in_stock_is_not_alerted() -> None:
    engine = stocked()
    engine.apply(stock("LAST-DATED", 0))
    engine.drain_changes()
    assert not [a for a in engine.drain_alerts() if a.kind == "sold_out_discontinued"]


def test_explain_gives_a_discontinued_sku_the_standard_formula() -> None:
    engine = stocked()
    channels = engine.explain("LAST").to_dict()["channels"]
    assert {c["channel"]: c["shown"] for c in channels} == {"shopify": 3, "amazon": 3}


def test_explain_says_a_held_sku_sells_its_preorder_limit_before_its_date() -> None:
    engine = stocked()
    channels = engine.explain("HELD").to_dict()["channels"]
    reasons = {c["channel"]: c["reason"] for c in channels}
    assert "sellable_from" in reasons["shopify"] and "preorder_limit 0" in reasons["shopify"]
    assert "min(cap 3" in reasons["amazon"]
