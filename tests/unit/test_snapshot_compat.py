"""A snapshot written by an earlier build restores into this one.

`tests/fixtures/snapshot-format-1.*` was written by the last build of snapshot
format 1 (before event ids carried their log time): the snapshot, the policy it
ran, and what each SKU explained to right then. An upgrade must not need a
replay from the start of the log.
"""

from __future__ import annotations

import json
from pathlib import Path

from invsync import Engine, Policy

FIXTURES = Path(__file__).parent.parent / "fixtures"


def restored() -> Engine:
    policy = Policy.load(FIXTURES / "snapshot-format-1.policy.toml")
    return Engine.restore(policy, (FIXTURES / "snapshot-format-1.bin").read_bytes())


def test_a_format_1_snapshot_restores_to_the_same_numbers() -> None:
    engine = restored()
    expected = json.loads((FIXTURES / "snapshot-format-1.explain.json").read_text())
    for sku, explanation in expected.items():
        assert engine.explain(sku).to_dict() == explanation, sku


RESENT = {
    "type": "stock.set",
    "event_id": "e1",
    "ts": "2026-11-23T10:00:00Z",
    "sku": "A",
    "location": "wh-3",
    "on_hand": 1000,
}


def test_a_format_1_snapshot_keeps_its_event_ids_and_holds() -> None:
    engine = restored()
    assert engine.apply(RESENT).duplicate is True
    held = engine.reserved("A")
    engine.apply({"type": "clock.tick", "event_id": "t-late", "ts": "2026-11-23T10:10:01Z"})
    assert engine.reserved("A") == held - 2, "the checkout hold expired on the clock"


def test_a_restored_snapshot_is_written_again_in_the_current_format() -> None:
    engine = restored()
    again = Engine.restore(engine.policy, engine.snapshot())
    assert again.snapshot() == engine.snapshot()
    assert again.apply(RESENT).duplicate is True
