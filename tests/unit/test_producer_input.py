"""What a producer sends must not break the contract (CONTRACT sections 2 and 6):
its clock is data, sums never wrap, returns stay within their line, re-sends change
nothing for the whole dedupe horizon, and order events may arrive before their order.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invsync import BadInputError, Engine, Policy
from invsync.events import StockAdjust
from invsync.timeconv import rfc3339

I64_MAX = 2**63 - 1
START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

POLICY = """
[defaults]
dedupe_horizon_s = 3600
park_window_s = 600
[[tiers]]
tier = 1
[[locations]]
id = "wh"
kind = "warehouse"
[[channels]]
id = "shopify"
tier = 1
cap = 50
[[skus]]
id = "A"
[[skus]]
id = "B"
[[skus]]
id = "LAUNCH"
kind = "preorder"
sellable_from = "2026-11-24T00:00:00Z"
"""

_ids = itertools.count()


def at(seconds: float = 0) -> str:
    return rfc3339(START + timedelta(seconds=seconds))


def event(
    kind: str, ts: str | None = None, event_id: str | None = None, **fields: Any
) -> dict[str, Any]:
    return {
        "type": kind,
        "event_id": event_id or f"e-{next(_ids)}",
        "ts": ts or at(),
        **fields,
    }


def tick(seconds: float) -> dict[str, Any]:
    return event("clock.tick", ts=at(seconds))


def placed(order_id: str, sku: str, qty: int, **fields: Any) -> dict[str, Any]:
    lines = [{"line_id": "1", "sku": sku, "qty": qty}]
    return event("order.placed", order_id=order_id, channel="shopify", lines=lines, **fields)


def shipped(order_id: str, qty: int) -> dict[str, Any]:
    return event(
        "order.shipped", order_id=order_id, lines=[{"line_id": "1", "qty": qty, "location": "wh"}]
    )


@pytest.fixture
def engine() -> Engine:
    e = Engine(Policy.from_toml(POLICY))
    e.apply(tick(0))
    e.apply(event("stock.set", sku="A", location="wh", on_hand=10))
    e.apply(event("stock.set", sku="LAUNCH", location="wh", on_hand=5))
    return e


# ---- time -------------------------------------------------------------------------------

LATE = "9999-12-31T23:59:59-23:59"  # valid RFC 3339; its UTC instant is in the year 10000


def test_an_event_time_the_core_cannot_hold_is_bad_input(engine: Engine) -> None:
    before = engine.snapshot()
    with pytest.raises(BadInputError, match="ts"):
        engine.apply(event("stock.set", ts=LATE, sku="A", location="wh", on_hand=3))
    assert engine.snapshot() == before


@pytest.mark.parametrize("as_dict", [dict, lambda r: type("Req", (dict,), {})(r)])
def test_a_reservation_time_the_core_cannot_hold_is_bad_input(engine: Engine, as_dict: Any) -> None:
    request = {
        "request_id": "r-late",
        "order_id": "h-late",
        "channel": "shopify",
        "ts": LATE,
        "lines": [{"line_id": "1", "sku": "A", "qty": 1}],
    }
    with pytest.raises(BadInputError, match="ts"):
        engine.reserve(as_dict(request))
    assert engine.ats("A") == 10


def test_a_producer_stamping_the_far_future_does_not_move_the_clock(engine: Engine) -> None:
    assert engine.shown("LAUNCH", "shopify") == 0  # before its hold date
    engine.apply(
        event(
            "stock.adjust", ts="2099-01-01T00:00:00Z", sku="A", location="wh", delta=1, reason="x"
        )
    )
    assert engine.now == START
    assert engine.shown("LAUNCH", "shopify") == 0
    assert engine.ats("A") == 11  # the event itself still applies


def test_a_far_future_time_is_clamped_to_the_allowed_skew_and_alerted(engine: Engine) -> None:
    fx = engine.apply(
        event(
            "stock.adjust", ts="2099-01-01T00:00:00Z", sku="A", location="wh", delta=1, reason="x"
        )
    )
    assert [a.kind for a in fx.alerts] == ["clock_skew"]
    changes = engine.drain_changes()["shopify"]
    assert [item.source_ts for item in changes if item.sku == "A"] == [
        START + timedelta(seconds=300)
    ]


def test_a_reservation_stamped_far_ahead_holds_for_its_hold_from_the_clock_plus_skew(
    engine: Engine,
) -> None:
    reply = engine.reserve(
        {
            "request_id": "r-2099",
            "order_id": "h-2099",
            "channel": "shopify",
            "ts": "2099-01-01T00:00:00Z",
            "lines": [{"line_id": "1", "sku": "A", "qty": 4}],
            "hold_seconds": 600,
        }
    )
    assert reply["ok"] is True
    assert reply["expires_at"] == at(300 + 600)
    engine.apply(tick(900))
    assert engine.ats("A") == 10, "the hold expires on the log's clock, not in 2099"


def test_a_bundle_moved_by_its_parts_is_stamped_with_the_newest_event_not_the_tick() -> None:
    kit = POLICY + '[[skus]]\nid = "KIT"\nkind = "bundle"\ncomponents = [{ sku = "A", qty = 2 }]\n'
    engine = Engine(Policy.from_toml(kit))
    engine.apply(tick(0))
    engine.drain_changes()
    engine.apply(event("stock.set", ts=at(0.5), sku="A", location="wh", on_hand=10))
    stamps = {item.sku: item.source_ts for item in engine.drain_changes()["shopify"]}
    assert stamps == {"A": START + timedelta(seconds=0.5), "KIT": START + timedelta(seconds=0.5)}


def test_only_ticks_move_the_clock(engine: Engine) -> None:
    engine.apply(event("stock.set", ts=at(120), sku="A", location="wh", on_hand=9))
    assert engine.now == START
    engine.apply(tick(24 * 3600))
    assert engine.shown("LAUNCH", "shopify") == 5  # its date has come


# ---- sums -------------------------------------------------------------------------------


def test_orders_whose_backorders_would_overflow_are_refused_whole() -> None:
    e = Engine(Policy.from_toml(POLICY))
    e.apply(placed("o1", "B", I64_MAX))
    for order_id in ("o2", "o3"):
        before = e.snapshot()
        with pytest.raises(BadInputError, match=r"lines\[0\]\.qty"):
            e.apply(placed(order_id, "B", I64_MAX))
        assert e.snapshot() == before
    for order_id in ("o1", "o2", "o3"):  # o2, o3 were never placed: their cancels wait
        e.apply(event("order.cancelled", order_id=order_id))
    assert e.backordered("B") == 0
    assert e.ats("B") == 0
    assert e.shown("B", "shopify") == 0, "no stock: shown 0, never the channel's cap"


HUGE = st.sampled_from([0, 1, 2, 3, 2**62, I64_MAX - 2, I64_MAX - 1, I64_MAX])


@st.composite
def near_limit_events(draw: st.DrawFn) -> list[dict[str, Any]]:
    steps = []
    for n in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["set", "adjust", "placed", "cancel", "reserve", "ship"]))
        order_id = f"o{draw(st.integers(0, 3))}"
        if kind == "set":
            steps.append(event("stock.set", sku="B", location="wh", on_hand=draw(HUGE)))
        elif kind == "adjust":
            delta = draw(HUGE) * draw(st.sampled_from([1, -1]))
            steps.append(event("stock.adjust", sku="B", location="wh", delta=delta, reason="count"))
        elif kind == "placed":
            steps.append(placed(order_id, "B", draw(HUGE)))
        elif kind == "cancel":
            steps.append(event("order.cancelled", order_id=order_id))
        elif kind == "ship":
            steps.append(shipped(order_id, draw(HUGE)))
        else:
            steps.append(
                {
                    "type": "reserve",
                    "request_id": f"r{n}",
                    "order_id": f"h{n}",
                    "channel": "shopify",
                    "ts": at(),
                    "lines": [{"line_id": "1", "sku": "B", "qty": draw(HUGE)}],
                }
            )
    return steps


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_limit_events())
def test_quantities_near_the_64_bit_limit_never_wrap(steps: list[dict[str, Any]]) -> None:
    e = Engine(Policy.from_toml(POLICY.replace("park_window_s = 600", "park_window_s = 0")))
    for step in steps:
        before = e.snapshot()
        try:
            if step["type"] == "reserve":
                e.reserve(step)
            else:
                e.apply(step)
        except BadInputError:
            assert e.snapshot() == before, f"a refused event changed state: {step}"
        explained = e.explain("B").to_dict() if e.ats("B") or e.backordered("B") else None
        assert e.backordered("B") >= 0
        assert e.reserved("B") >= 0
        assert 0 <= e.ats("B") <= I64_MAX
        assert 0 <= e.shown("B", "shopify") <= 50
        if explained is not None:
            assert explained["ats"] <= max(0, explained["on_hand"] - explained["reserved"])


# ---- returns ----------------------------------------------------------------------------


def shipped_order(engine: Engine) -> None:
    engine.apply(placed("o-ret", "A", 2))
    engine.apply(shipped("o-ret", 2))


def returned(sku: str, qty: int, line_id: str = "1") -> dict[str, Any]:
    return event(
        "order.returned",
        order_id="o-ret",
        line_id=line_id,
        sku=sku,
        location="wh",
        qty=qty,
        disposition="restock",
    )


def test_a_return_naming_another_sku_than_its_line_is_refused(engine: Engine) -> None:
    shipped_order(engine)
    before = engine.snapshot()
    with pytest.raises(BadInputError, match="sku"):
        engine.apply(returned("B", 1000))
    assert engine.snapshot() == before
    assert engine.ats("B") == 0


def test_a_return_stays_within_what_its_line_shipped(engine: Engine) -> None:
    shipped_order(engine)
    with pytest.raises(BadInputError, match="qty"):
        engine.apply(returned("A", 3))
    engine.apply(returned("A", 2))
    assert engine.ats("A") == 10
    with pytest.raises(BadInputError, match="qty"):
        engine.apply(returned("A", 1))


def test_a_return_of_a_line_the_order_never_had_is_refused(engine: Engine) -> None:
    shipped_order(engine)
    with pytest.raises(BadInputError, match="line_id"):
        engine.apply(returned("A", 1, line_id="9"))


# ---- re-sends ---------------------------------------------------------------------------


def test_a_resend_after_a_quarter_million_other_events_changes_nothing(engine: Engine) -> None:
    first = event("stock.adjust", sku="A", location="wh", delta=5, reason="count")
    engine.apply(first)
    others = [
        StockAdjust(event_id=f"busy-{i}", ts=START, sku="B", location="wh", delta=1, reason="count")
        for i in range(300_000)
    ]
    for start in range(0, len(others), 50_000):
        engine.apply_all(others[start : start + 50_000])
    assert engine.apply(first).duplicate is True
    assert engine.ats("A") == 15


def test_event_ids_are_remembered_for_the_horizon_of_log_time(engine: Engine) -> None:
    first = event("stock.adjust", sku="A", location="wh", delta=5, reason="count")
    engine.apply(first)
    engine.apply(tick(3600))
    assert engine.apply(first).duplicate is True
    engine.apply(tick(3601))
    assert engine.apply(first).duplicate is False, "past dedupe_horizon_s a re-send applies"
    assert engine.ats("A") == 20


def test_a_reused_event_id_with_other_content_is_alerted_not_applied(engine: Engine) -> None:
    engine.apply(event("stock.adjust", event_id="dup", sku="A", location="wh", delta=5, reason="x"))
    fx = engine.apply(
        event("stock.adjust", event_id="dup", sku="A", location="wh", delta=7, reason="x")
    )
    assert fx.duplicate is True
    assert [a.kind for a in fx.alerts] == ["duplicate"]
    assert engine.ats("A") == 15
    same = engine.apply(
        event("stock.adjust", event_id="dup", sku="A", location="wh", delta=5, reason="x")
    )
    assert same.duplicate is True and same.alerts == []


def test_the_dedupe_window_survives_a_snapshot(engine: Engine) -> None:
    engine.apply(
        event("stock.adjust", event_id="kept", sku="A", location="wh", delta=5, reason="x")
    )
    restored = Engine.restore(engine.policy, engine.snapshot())
    assert restored.apply(
        event("stock.adjust", event_id="kept", sku="A", location="wh", delta=5, reason="x")
    ).duplicate
    fx = restored.apply(
        event("stock.adjust", event_id="kept", sku="A", location="wh", delta=6, reason="x")
    )
    assert [a.kind for a in fx.alerts] == ["duplicate"]


# ---- order events before their order ----------------------------------------------------


def test_a_shipment_that_arrives_before_its_order_waits_for_it(engine: Engine) -> None:
    early = shipped("o-late", 3)
    assert engine.apply(early).dead_letters == []
    assert engine.ats("A") == 10
    engine.apply(placed("o-late", "A", 3))
    assert engine.ats("A") == 7
    assert engine.explain("A").to_dict()["on_hand"] == 7, "shipped units left the shelf"
    assert engine.reserved("A") == 0
    assert engine.apply(early).duplicate is True


def test_a_cancel_that_arrives_before_its_order_releases_it_on_arrival(engine: Engine) -> None:
    engine.apply(event("order.cancelled", order_id="o-gone"))
    engine.apply(placed("o-gone", "A", 4))
    assert engine.ats("A") == 10
    assert engine.reserved("A") == 0


def test_an_early_event_its_order_refuses_is_dead_lettered_on_arrival(engine: Engine) -> None:
    engine.apply(shipped("o-small", 5))
    fx = engine.apply(placed("o-small", "A", 2))
    assert [(d.reason, d.event_id) for d in fx.dead_letters] == [
        ("bad_input", fx.dead_letters[0].event_id)
    ]
    assert engine.ats("A") == 8


def test_an_early_event_whose_order_never_comes_is_dead_lettered_after_the_window(
    engine: Engine,
) -> None:
    early = shipped("o-never", 1)
    engine.apply(early)
    assert engine.apply(tick(600)).dead_letters == []
    fx = engine.apply(tick(601))
    assert [(d.event_id, d.reason) for d in fx.dead_letters] == [
        (early["event_id"], "order_missing")
    ]
    redriven = json.loads(fx.dead_letters[0].event_json)
    assert {k: redriven[k] for k in ("type", "order_id", "lines")} == {
        k: early[k] for k in ("type", "order_id", "lines")
    }
    engine.apply(placed("o-never", "A", 1))
    assert engine.reserved("A") == 1, "the expired shipment no longer applies"


def test_waiting_events_survive_a_snapshot(engine: Engine) -> None:
    engine.apply(shipped("o-snap", 2))
    restored = Engine.restore(engine.policy, engine.snapshot())
    restored.apply(placed("o-snap", "A", 2))
    assert restored.ats("A") == 8
    assert restored.reserved("A") == 0


def test_parking_off_refuses_events_for_unknown_orders() -> None:
    e = Engine(Policy.from_toml(POLICY.replace("park_window_s = 600", "park_window_s = 0")))
    with pytest.raises(BadInputError, match="order_id"):
        e.apply(shipped("o-x", 1))
