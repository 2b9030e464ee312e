"""Automatic buffers (CONTRACT 13): what every channel may sell before a channel's
shown quantity is corrected, from sales rates and lags kept in log time."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from invsync import Engine, Policy
from invsync.errors import BadInputError, PolicyError

T0 = datetime(2026, 12, 1, tzinfo=UTC)

POLICY = """
[[tiers]]
tier = 1
[[tiers]]
tier = 2
[[locations]]
id = "wh"
kind = "warehouse"
[[channels]]
id = "shopify"
tier = 1
buffer = "auto"
lag_s = 1
[[channels]]
id = "walmart"
tier = 2
buffer = "auto"
lag_s = 1800
order_lag_s = 120
"""


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def tick(engine: Engine, seconds: float, **extra: Any) -> None:
    engine.apply({"type": "clock.tick", "event_id": f"t{seconds}", "ts": at(seconds), **extra})


def sell(engine: Engine, order: str, channel: str, seconds: float, qty: int = 1) -> None:
    engine.apply(
        {
            "type": "order.placed",
            "event_id": order,
            "ts": at(seconds),
            "order_id": order,
            "channel": channel,
            "lines": [{"line_id": "1", "sku": "A", "qty": qty}],
        }
    )


def stocked(text: str = POLICY, on_hand: int = 5_000) -> Engine:
    engine = Engine(Policy.from_toml(text))
    tick(engine, 0)
    engine.apply(
        {
            "type": "stock.set",
            "event_id": "s",
            "ts": at(0),
            "sku": "A",
            "location": "wh",
            "on_hand": on_hand,
        }
    )
    return engine


def channel(engine: Engine, name: str) -> dict[str, Any]:
    explained = engine.explain("A").to_dict()
    found: dict[str, Any] = next(ch for ch in explained["channels"] if ch["channel"] == name)
    return found


def shopify_sells_one_a_second(engine: Engine, seconds: int = 120) -> None:
    for s in range(1, seconds + 1):
        tick(engine, s)
        sell(engine, f"o{s}", "shopify", s)


def test_a_slow_channels_buffer_counts_what_the_others_sell_during_its_push_lag() -> None:
    engine = stocked()
    shopify_sells_one_a_second(engine)
    walmart = channel(engine, "walmart")["buffer_auto"]
    # Walmart sold nothing, yet Shopify sells about 1/s for all of Walmart's 1800 s.
    assert [s["channel"] for s in walmart["sellers"]] == ["shopify"]
    assert walmart["push_lag_s"] == 1800 and walmart["push_lag_measured"] is False
    assert walmart["buffer"] >= 1.5 * 0.8 * 1800
    ats = engine.ats("A")
    assert engine.shown("A", "walmart") == max(0, ats - walmart["buffer"])


def test_the_buffer_is_the_contract_formula_of_the_inputs_explain_shows() -> None:
    engine = stocked()
    shopify_sells_one_a_second(engine, 60)
    for s in range(61, 80):
        tick(engine, s)
        sell(engine, f"w{s}", "walmart", s - 100)
    for name in ("shopify", "walmart"):
        auto = channel(engine, name)["buffer_auto"]
        units = sum(s["rate"] * (auto["push_lag_s"] + s["order_lag_s"]) for s in auto["sellers"])
        assert auto["formula"] == math.ceil(auto["risk"] * units)
        assert auto["buffer"] == auto["formula"]
    text = str(engine.explain("A"))
    assert "buffer" in text and "= ceil(" in text and "× 1.5)" in text


def test_a_ramp_raises_the_buffer_within_two_minutes() -> None:
    engine = stocked(on_hand=100_000)
    # 0 → 10 units/s over 120 s on shopify.
    for s in range(1, 121):
        tick(engine, s)
        sell(engine, f"o{s}", "shopify", s, qty=max(1, s // 12))
    shopify = channel(engine, "shopify")["buffer_auto"]
    rate = shopify["sellers"][0]["rate"]
    assert rate >= 0.6 * 10, f"the estimate trails the ramp: {rate}/s"


def test_bounds_and_risk_apply() -> None:
    text = POLICY.replace("lag_s = 1800", "lag_s = 1800\nbuffer_max = 25\nrisk = 2.0").replace(
        "lag_s = 1\n", "lag_s = 1\nbuffer_min = 3\n"
    )
    engine = stocked(text)
    assert channel(engine, "shopify")["buffer_auto"]["buffer"] == 3, "no sales: min"
    shopify_sells_one_a_second(engine, 30)
    walmart = channel(engine, "walmart")["buffer_auto"]
    assert walmart["risk"] == 2.0 and walmart["formula"] > 25 and walmart["buffer"] == 25
    assert "clamp(" in walmart["reason"]


def test_a_measured_push_lag_in_the_log_replaces_lag_s() -> None:
    engine = stocked()
    shopify_sells_one_a_second(engine, 30)
    before = channel(engine, "walmart")["buffer_auto"]["buffer"]
    tick(engine, 100, push_lag_s={"walmart": 60.0, "gone": 5.0})
    tick(engine, 200)
    walmart = channel(engine, "walmart")["buffer_auto"]
    assert walmart["push_lag_s"] == 60.0 and walmart["push_lag_measured"] is True
    assert walmart["buffer"] < before


def test_order_lags_are_measured_from_order_ts_to_the_log() -> None:
    engine = stocked()
    for s in range(1, 40):
        tick(engine, s)
        sell(engine, f"w{s}", "walmart", s - 300)
    walmart = channel(engine, "walmart")["buffer_auto"]["sellers"][0]
    assert walmart["order_lag_measured"] is True
    assert 300 <= walmart["order_lag_s"] <= 300 * 1.15


def test_a_snapshot_midway_replays_to_the_same_numbers() -> None:
    straight = stocked()
    shopify_sells_one_a_second(straight, 50)
    restored = Engine.restore(straight.policy, straight.snapshot())
    for engine in (straight, restored):
        for s in range(51, 90):
            tick(engine, s)
            sell(engine, f"w{s}", "walmart", s - 30)
    assert restored.explain("A").to_dict() == straight.explain("A").to_dict()
    assert restored.snapshot() == straight.snapshot()


@pytest.mark.parametrize(
    ("where", "field"),
    [
        ('[[channels]]\nid = "ebay"\ntier = 2\nbuffer = "auto"\n', 'channels["ebay"].buffer'),
        (
            (
                '[[channels]]\nid = "ebay"\ntier = 2\n'
                '[[classes]]\nid = "hot"\nchannels = { ebay = { buffer = "auto" } }\n'
            ),
            'classes["hot"].channels["ebay"].buffer',
        ),
    ],
)
def test_check_refuses_an_automatic_buffer_without_a_push_lag(where: str, field: str) -> None:
    text = POLICY + where
    with pytest.raises(PolicyError) as refused:
        Policy.from_toml(text, "p.toml")
    assert refused.value.field == field
    assert "lag_s" in str(refused.value)
    line = text.splitlines()[refused.value.line - 1]
    assert "buffer" in line or "ebay" in line


def test_automatic_protection_needs_every_tiers_value() -> None:
    text = POLICY.replace(
        "tier = 1\n[[tiers]]", 'tier = 1\nprotect = "auto"\nvalue = 10\n[[tiers]]', 1
    )
    with pytest.raises(PolicyError) as refused:
        Policy.from_toml(text, "p.toml")
    assert refused.value.field == "tiers[1].tier"
    assert "value" in str(refused.value)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    qty=st.lists(st.integers(0, 2**62), min_size=1, max_size=6),
    lag=st.floats(0, 30 * 86_400),
    order_lag=st.floats(0, 30 * 86_400),
    push=st.floats(0, 1e7),
    risk=st.floats(0, 100),
    gap=st.integers(0, 10**7),
)
# Three orders of 2^62 units: the third could overflow the backorders and is refused.
@example(qty=[2**62] * 3, lag=0.0, order_lag=0.0, push=0.0, risk=0.0, gap=0)
def test_extreme_sales_and_lags_never_overflow_or_go_negative(
    qty: list[int], lag: float, order_lag: float, push: float, risk: float, gap: int
) -> None:
    text = POLICY.replace("lag_s = 1800", f"lag_s = {lag!r}\nrisk = {risk!r}").replace(
        "order_lag_s = 120", f"order_lag_s = {order_lag!r}"
    )
    # A kit of A: its buffer is read from A's sales in kits of 3.
    text += '\n[[skus]]\nid = "A"\n[[skus]]\nid = "KIT"\nkind = "bundle"\n'
    text += 'components = [{ sku = "A", qty = 3 }]\n'
    engine = stocked(text, on_hand=2**62)
    sold = 0
    for n, q in enumerate(qty):
        tick(engine, n * gap / 10, push_lag_s={"walmart": push})
        try:
            sell(engine, f"o{n}", "walmart" if n % 2 else "shopify", n, qty=q)
        except BadInputError:
            # Refused whole: an order whose units could overflow the backorders.
            assert sold + q > 2**63 - 1
            continue
        sold += q
    tick(engine, len(qty) * gap)
    for sku in ("A", "KIT"):
        explained = engine.explain(sku).to_dict()
        for ch in explained["channels"]:
            auto = ch["buffer_auto"]
            assert 0 <= auto["buffer"] <= 2**63 - 1 and 0 <= auto["formula"] <= 2**63 - 1
            assert 0 <= auto["clumps"] <= 2**63 - 1
            assert 0 <= ch["shown"] <= max(0, explained["ats"])
        for v in explained["velocity"]:
            assert all(v[k] >= 0 and math.isfinite(v[k]) for k in ("rate", "slow", "floor")), v


def test_buffer_bounds_out_of_order_are_refused() -> None:
    text = POLICY.replace("lag_s = 1\n", "lag_s = 1\nbuffer_min = 9\nbuffer_max = 3\n")
    with pytest.raises(PolicyError) as refused:
        Policy.from_toml(text, "p.toml")
    assert refused.value.field == 'channels["shopify"].buffer_min'


def test_a_hold_counts_as_a_sale_once_with_no_order_lag() -> None:
    engine = stocked()
    for s in range(1, 31):
        tick(engine, s)
        request = {
            "type": "reserve",
            "request_id": f"r{s}",
            "order_id": f"h{s}",
            "channel": "shopify",
            "lines": [{"line_id": "1", "sku": "A", "qty": 2}],
            "hold_seconds": 600,
            "ts": at(s),
        }
        assert engine.reserve(request)["ok"]
    held = engine.explain("A").to_dict()["velocity"]
    # The holds become orders: their units were counted when they were held.
    for s in range(1, 31):
        sell(engine, f"h{s}", "shopify", 31, qty=2)
    placed = engine.explain("A").to_dict()["velocity"]
    assert placed == held and held[0]["slow"] > 0
    tick(engine, 40)
    shopify = channel(engine, "walmart")["buffer_auto"]["sellers"][0]
    assert shopify["order_lag_s"] == pytest.approx(0.01) and shopify["order_lag_measured"]


def test_a_quantity_the_cadence_moved_is_stamped_with_the_tick_behind_it() -> None:
    # The sync latency of a quantity counts from the newest event behind it (CONTRACT 5):
    # when the cadence recomputes a buffer, that is the tick, not a sale long before.
    engine = stocked()
    shopify_sells_one_a_second(engine, 30)
    engine.drain_changes()
    tick(engine, 100, push_lag_s={"walmart": 60.0})
    tick(engine, 200)
    walmart = engine.drain_changes()["walmart"]
    assert [item.sku for item in walmart] == ["A"]
    assert walmart[0].source_ts == T0 + timedelta(seconds=200)


def test_a_kit_holds_back_what_its_parts_sales_may_take_in_kits() -> None:
    # A pad sold alone on Shopify drains the kit Walmart shows from the pads: the kit
    # never sold, yet Walmart must hold back the pads Shopify may sell during its feed.
    text = POLICY + '\n[[skus]]\nid = "A"\n[[skus]]\nid = "KIT"\nkind = "bundle"\n'
    text += 'components = [{ sku = "A", qty = 2 }]\n'
    engine = stocked(text)
    shopify_sells_one_a_second(engine)
    walmart = next(
        ch for ch in engine.explain("KIT").to_dict()["channels"] if ch["channel"] == "walmart"
    )
    auto = walmart["buffer_auto"]
    assert auto["part"] == {"sku": "A", "per_kit": 2}
    part = channel(engine, "walmart")["buffer_auto"]
    assert abs(auto["buffer"] - part["buffer"] / 2) <= 1, (auto["buffer"], part["buffer"])
    assert engine.shown("KIT", "walmart") == max(0, engine.ats("KIT") - auto["buffer"])
    assert "(from A's sales, in kits of 2)" in str(engine.explain("KIT"))


def test_explain_shows_a_fresh_engines_slow_rates_corrected_until_it_has_counted_two_hours() -> (
    None
):
    engine = stocked()
    shopify_sells_one_a_second(engine, 600)
    (shopify,) = engine.explain("A").to_dict()["velocity"]
    # Ten minutes of a 15-minute half-life: a count holds 37 % of a steady 1/s, and the
    # correction at most doubles it.
    assert shopify["slow_share"] == 0.5
    assert 0.7 < shopify["slow"] < 0.8
    assert "slow 0.74 = count ÷ 0.50 while warming up" in str(engine.explain("A"))
    tick(engine, 2 * 3600 + 1)
    (warm,) = engine.explain("A").to_dict()["velocity"]
    assert "slow_share" not in warm
    assert "warming" not in str(engine.explain("A"))
