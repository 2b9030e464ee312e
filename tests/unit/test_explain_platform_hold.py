"""A marketplace that holds stock for its promotion shows more than invsync decided:
explain says how much, why, and stops saying it once the hold ends."""

from __future__ import annotations

import pytest

from invsync import Engine, Policy
from invsync.errors import BadInputError

POLICY = """
[[tiers]]
tier = 1
[[locations]]
id = "wh"
kind = "warehouse"
[[channels]]
id = "shopee"
tier = 1
[[channels]]
id = "lazada"
tier = 1
"""
REASON = "shopee: Can not update item with stock less than reserved stock"


def engine_with_stock(on_hand: int) -> Engine:
    engine = Engine(Policy.from_toml(POLICY))
    engine.apply(
        {
            "type": "stock.set",
            "event_id": "e1",
            "ts": "2026-11-23T10:00:00Z",
            "sku": "A",
            "location": "wh",
            "on_hand": on_hand,
        }
    )
    return engine


def test_explain_shows_what_the_marketplace_holds_above_invsyncs_number() -> None:
    engine = engine_with_stock(4)
    engine.set_platform_hold("shopee", "A", "new", 10, REASON)
    channels = {c["channel"]: c for c in engine.explain("A").to_dict()["channels"]}
    assert channels["shopee"]["platform_hold"] == {
        "qty": 10,
        "reason": REASON,
        "marketplace_shows": 10,
    }
    assert "platform_hold" not in channels["lazada"]
    assert (
        f"shopee shows 10: the platform holds 10 for a promotion (invsync decided 4; {REASON})"
        in str(engine.explain("A"))
    )
    engine.set_platform_hold("shopee", "A", "new", 0, "ended")
    assert "platform_hold" not in engine.explain("A").to_dict()["channels"][0]
    assert "holds" not in str(engine.explain("A"))


def test_a_hold_within_invsyncs_number_is_noted_not_counted() -> None:
    engine = engine_with_stock(8)
    engine.set_platform_hold("lazada", "A", "new", 3, "lazada: locked")
    (hold,) = [
        c["platform_hold"]
        for c in engine.explain("A").to_dict()["channels"]
        if "platform_hold" in c
    ]
    assert hold["marketplace_shows"] == 8
    assert "the platform holds 3 for a promotion, within what invsync shows" in str(
        engine.explain("A")
    )


def test_a_hold_on_a_channel_the_policy_does_not_have_is_refused() -> None:
    with pytest.raises(BadInputError):
        engine_with_stock(1).set_platform_hold("ebay", "A", "new", 2, "?")
