"""A channel that stops selling is told why, once: `pause` or `reserve_low`."""

from __future__ import annotations

from typing import Any

from invsync import Engine, Policy

POLICY = """
[[tiers]]
tier = 1
protect = 5
[[tiers]]
tier = 2
[[locations]]
id = "wh"
kind = "warehouse"
[[channels]]
id = "shopify"
tier = 1
[[channels]]
id = "ebay"
tier = 2
[[channels]]
id = "tiktok"
tier = 1
pause_below = 3
"""
TS = "2026-11-23T10:00:00Z"


def count(on_hand: int, n: int) -> dict[str, Any]:
    return {
        "type": "stock.set",
        "event_id": f"c{n}",
        "ts": TS,
        "sku": "A",
        "location": "wh",
        "on_hand": on_hand,
    }


def test_dropping_to_protected_units_and_below_the_pause_alerts_once_each() -> None:
    engine = Engine(Policy.from_toml(POLICY))
    engine.apply(count(20, 1))
    engine.drain_changes()
    assert engine.drain_alerts() == []

    engine.apply(count(5, 2))  # only tier 1's protected units remain: ebay drops to 0
    engine.drain_changes()
    [low] = engine.drain_alerts()
    assert (low.kind, low.sku, low.channel) == ("reserve_low", "A", "ebay")
    assert "remaining 5 units are protected" in low.detail

    engine.apply(count(2, 3))  # ATS 2 < tiktok's pause_below 3
    engine.drain_changes()
    [pause] = engine.drain_alerts()
    assert (pause.kind, pause.channel) == ("pause", "tiktok")
    assert "ATS 2 < pause_below 3" in pause.detail

    engine.apply(count(1, 4))  # still 0 everywhere it was 0: nothing new to say
    engine.drain_changes()
    assert engine.drain_alerts() == []
