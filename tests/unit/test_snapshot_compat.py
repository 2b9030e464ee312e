"""A snapshot written by an earlier build restores into this one.

`tests/fixtures/snapshot-format-N.*` were written by the last build of snapshot
format N: the snapshot, the policy it ran, and what each SKU explained to right
then. Format 1 came before event ids carried their log time, format 2 before sales
rates and automatic buffers, format 3 before reservations spanning partitions and
before prices and promotions, format 4 before the engine kept when it began counting
sales (format 4 was written by restoring format 3's and applying a few kit orders), and
format 5 before the rates' day-long counts (written by restoring format 4's and applying
a few more). An upgrade must not need a replay from the start of the log.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from invsync import Engine, Policy

FIXTURES = Path(__file__).parent.parent / "fixtures"
FORMATS = [1, 2, 3, 4, 5]


def restored(version: int) -> Engine:
    policy = Policy.load(FIXTURES / f"snapshot-format-{version}.policy.toml")
    return Engine.restore(policy, (FIXTURES / f"snapshot-format-{version}.bin").read_bytes())


def _as_then(now: Any, then: Any) -> Any:
    """`now` cut to the fields the older build explained, at every depth: a field added
    since (a channel's, a buffer's, a rate's) is not a number that changed."""
    if isinstance(then, dict) and isinstance(now, dict):
        return {key: _as_then(now[key], old) for key, old in then.items() if key in now}
    if isinstance(then, list) and isinstance(now, list) and len(then) == len(now):
        return [_as_then(item, old) for item, old in zip(now, then, strict=True)]
    return now


#: Derived with today's rule, not restored: a rate is now also at least a slow mover's
#: floor, and an automatic buffer's formula at least its clumps, the p99 of its whole
#: window. The restored decayed rates (fast, slow, peak), the buffers in use and the
#: shown quantities are compared.
DERIVED = {"rate", "formula", "clumps", "reason"}


def _restored_numbers(explanation: dict[str, Any]) -> dict[str, Any]:
    """An explanation without the numbers today's rule derives anew (`DERIVED`)."""
    out = {**explanation, "velocity": [_without(v) for v in explanation.get("velocity", [])]}
    out["channels"] = [
        {**ch, "buffer_auto": _without(ch["buffer_auto"])} if "buffer_auto" in ch else ch
        for ch in explanation["channels"]
    ]
    return out


def _without(numbers: dict[str, Any]) -> dict[str, Any]:
    kept = {key: value for key, value in numbers.items() if key not in DERIVED}
    if "sellers" in kept:
        kept["sellers"] = [_without(seller) for seller in kept["sellers"]]
    return kept


@pytest.mark.parametrize("version", FORMATS)
def test_an_older_snapshot_restores_to_the_same_numbers(version: int) -> None:
    engine = restored(version)
    expected = json.loads((FIXTURES / f"snapshot-format-{version}.explain.json").read_text())
    for sku, explanation in expected.items():
        now = engine.explain(sku).to_dict()
        then = _restored_numbers(explanation)
        assert _restored_numbers(_as_then(now, explanation)) == then, sku
        if version < 3:
            assert now["velocity"] == [], "no sales rate before the format kept one"
        assert "prices" not in now, "no price before the format kept one"


def test_a_format_3_snapshot_restores_with_its_sales_rates_and_no_cross_partition_requests() -> (
    None
):
    # Format 3 came before reservations spanning partitions were kept in the snapshot.
    engine = restored(3)
    expected = json.loads((FIXTURES / "snapshot-format-3.explain.json").read_text())
    for sku, explanation in expected.items():
        now = _as_then(engine.explain(sku).to_dict(), explanation)
        assert _restored_numbers(now) == _restored_numbers(explanation), sku
    assert engine.reserved("A") == expected["A"]["reserved"]


RESENT = {
    "type": "stock.set",
    "event_id": "e1",
    "ts": "2026-11-23T10:00:00Z",
    "sku": "A",
    "location": "wh-3",
    "on_hand": 1000,
}


def test_a_format_1_snapshot_keeps_its_event_ids_and_holds() -> None:
    engine = restored(1)
    assert engine.apply(RESENT).duplicate is True
    held = engine.reserved("A")
    engine.apply({"type": "clock.tick", "event_id": "t-late", "ts": "2026-11-23T10:10:01Z"})
    assert engine.reserved("A") == held - 2, "the checkout hold expired on the clock"


def test_a_format_2_snapshot_keeps_its_event_ids_and_holds() -> None:
    engine = restored(2)
    resent = {**RESENT, "event_id": "s1", "ts": "2026-11-30T09:00:01Z", "on_hand": 400}
    assert engine.apply(resent).duplicate is True
    held = engine.reserved("A")
    engine.apply({"type": "clock.tick", "event_id": "t-late", "ts": "2026-11-30T09:10:07Z"})
    assert engine.reserved("A") == held - 4, "the checkout hold expired on the clock"


def test_a_format_3_snapshot_keeps_its_sales_rates_and_takes_prices() -> None:
    # The example policy of today: the same channels, now with price tables.
    policy = Policy.load(FIXTURES.parent.parent / "examples" / "policy.toml")
    engine = Engine.restore(policy, (FIXTURES / "snapshot-format-3.bin").read_bytes())
    rates = engine.explain("A").to_dict()["velocity"]
    assert {v["channel"] for v in rates} == {"amazon", "tiktok", "walmart", "shopify"}
    engine.apply(
        {
            "type": "price.set",
            "event_id": "p1",
            "ts": "2026-12-04T09:00:30Z",
            "sku": "A",
            "price": "19.00",
            "currency": "USD",
        }
    )
    prices, _ = engine.drain_prices()
    assert prices, "a format 3 state takes prices like any other"


@pytest.mark.parametrize("version", FORMATS)
def test_a_restored_snapshot_is_written_again_in_the_current_format(version: int) -> None:
    engine = restored(version)
    again = Engine.restore(engine.policy, engine.snapshot())
    assert again.snapshot() == engine.snapshot()
    assert again.apply(RESENT).duplicate is (version == 1)
