"""Automatic protection (CONTRACT 13): EMSR-b nested levels per SKU from the tiers'
unit values and their demand, recomputed on a cadence in log time."""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

from invsync import Engine, Policy
from tests.unit.test_adaptive_buffers import at, sell, stocked, tick

POLICY = """
[defaults]
adaptive_every_s = 10
protect_horizon_s = 600

[[tiers]]
tier = 1
protect = "auto"
value = 100
[[tiers]]
tier = 2
value = 40
[[locations]]
id = "wh"
kind = "warehouse"
[[channels]]
id = "shopify"
tier = 1
[[channels]]
id = "amazon"
tier = 2
"""


def protect(engine: Engine) -> list[dict[str, Any]]:
    levels: list[dict[str, Any]] = engine.explain("A").to_dict()["protect"]
    return levels


def reserve(engine: Engine, request: str, channel: str, qty: int, seconds: float) -> bool:
    reply = engine.reserve(
        {
            "type": "reserve",
            "request_id": request,
            "order_id": request,
            "channel": channel,
            "lines": [{"line_id": "1", "sku": "A", "qty": qty}],
            "hold_seconds": 600,
            "ts": at(seconds),
        }
    )
    return bool(reply["ok"])


def busy(on_hand: int = 200) -> Engine:
    """Shopify sells 1 unit every 2 s for a minute; amazon a unit every 10 s."""
    engine = stocked(POLICY, on_hand=on_hand)
    for s in range(1, 61):
        tick(engine, s)
        if s % 2 == 0:
            sell(engine, f"s{s}", "shopify", s)
        if s % 10 == 0:
            sell(engine, f"a{s}", "amazon", s)
    return engine


def test_the_level_is_emsr_b_of_the_values_and_demand_explain_shows() -> None:
    engine = busy()
    tier1, tier2 = protect(engine)
    assert tier1["auto"] is True and tier2["auto"] is False
    # One tier above amazon's: y1 = μ1 + √μ1 · Φ⁻¹(1 − value2 / value1), rounded up.
    mu = tier1["demand"]
    assert mu > 0
    want = math.ceil(mu + math.sqrt(mu) * NormalDist().inv_cdf(1 - 40 / 100))
    assert tier1["protect"] == want
    ats = engine.ats("A")
    assert engine.shown("A", "amazon") == max(0, ats - want)
    assert engine.shown("A", "shopify") == ats
    assert f"protect[1] {want}" in str(engine.explain("A"))


def test_the_protected_units_are_refused_to_the_lower_tier_only() -> None:
    engine = busy(on_hand=300)
    level = protect(engine)[0]["protect"]
    pool = engine.ats("A") - level
    assert 0 < pool < engine.ats("A")
    assert not reserve(engine, "r-amazon-over", "amazon", pool + 1, 61)
    assert reserve(engine, "r-amazon", "amazon", pool, 61)
    assert reserve(engine, "r-shopify", "shopify", level, 61)


def test_levels_move_on_the_cadence_not_on_each_sale() -> None:
    engine = busy()
    before = protect(engine)[0]["protect"]
    for n in range(30):
        sell(engine, f"burst{n}", "shopify", 61)
    assert protect(engine)[0]["protect"] == before, "no tick: the level stands"
    tick(engine, 65)
    assert protect(engine)[0]["protect"] == before, "the cadence is not due before 70 s"
    tick(engine, 70)
    assert protect(engine)[0]["protect"] > before


def test_equal_values_protect_nothing() -> None:
    engine = stocked(POLICY.replace("value = 40", "value = 100"))
    for s in range(1, 31):
        tick(engine, s)
        sell(engine, f"s{s}", "shopify", s)
    assert protect(engine)[0]["protect"] == 0
    assert engine.shown("A", "amazon") == engine.ats("A")


def test_a_policy_without_automatic_tiers_explains_no_levels() -> None:
    engine = Engine(Policy.from_toml(POLICY.replace('protect = "auto"', "protect = 5")))
    engine.apply(
        {
            "type": "stock.set",
            "event_id": "s",
            "ts": at(0),
            "sku": "A",
            "location": "wh",
            "on_hand": 50,
        }
    )
    assert "protect" not in engine.explain("A").to_dict()
    assert engine.shown("A", "amazon") == 45
