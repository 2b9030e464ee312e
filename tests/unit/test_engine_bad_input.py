"""Bad input to the engine: a clear BadInputError naming the field, and no state change.

The snapshot is deterministic for equal states, so "nothing changed" is checked as
"the snapshot bytes are the same".
"""

from __future__ import annotations

from typing import Any

import pytest

from invsync import BadInputError, Engine, Policy

POLICY = """
[[tiers]]
tier = 1
[[locations]]
id = "wh"
kind = "warehouse"
[[locations]]
id = "qc"
kind = "3pl"
release_gate = true
[[channels]]
id = "shopify"
tier = 1
[[skus]]
id = "A"
"""
TS = "2026-11-23T10:00:00Z"


@pytest.fixture
def engine() -> Engine:
    e = Engine(Policy.from_toml(POLICY))
    e.apply(
        {
            "type": "stock.set",
            "event_id": "s1",
            "ts": TS,
            "sku": "A",
            "location": "wh",
            "on_hand": 10,
        }
    )
    e.apply(
        {
            "type": "order.placed",
            "event_id": "o1",
            "ts": TS,
            "order_id": "O1",
            "channel": "shopify",
            "lines": [{"line_id": "1", "sku": "A", "qty": 2}],
        }
    )
    e.drain_changes()
    return e


def ev(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "event_id": f"bad-{kind}", "ts": TS, **fields}


BAD_EVENTS = [
    # unknown references
    ("location", ev("stock.set", sku="A", location="nowhere", on_hand=1)),
    ("location", ev("stock.adjust", sku="A", location="nowhere", delta=1, reason="count")),
    ("location", ev("stock.received", sku="A", location="nowhere", qty=1)),
    ("location", ev("stock.released", sku="A", location="nowhere", qty=1)),
    ("location", ev("stock.damaged", sku="A", location="nowhere", qty=1)),
    ("from_location", ev("stock.transfer", sku="A", from_location="x", to_location="wh", qty=1)),
    ("to_location", ev("stock.transfer", sku="A", from_location="wh", to_location="x", qty=1)),
    ("location", ev("stock.inbound", sku="A", location="nowhere", qty=1, eta=TS)),
    (
        "channel",
        ev(
            "order.placed",
            order_id="O2",
            channel="mars",
            lines=[{"line_id": "1", "sku": "A", "qty": 1}],
        ),
    ),
    ("line_ids", ev("order.cancelled", order_id="O1", line_ids=["9"])),
    (
        "location",
        ev("order.shipped", order_id="O1", lines=[{"line_id": "1", "qty": 1, "location": "x"}]),
    ),
    ("line_id", ev("order.fulfillment_failed", order_id="O1", line_id="9", disposition="restock")),
    (
        "location",
        ev(
            "order.returned",
            order_id="O1",
            line_id="1",
            sku="A",
            location="x",
            qty=1,
            disposition="restock",
        ),
    ),
    # quantities beyond what is there
    ("delta", ev("stock.adjust", sku="A", location="wh", delta=-11, reason="count")),
    ("qty", ev("stock.released", sku="A", location="qc", qty=1)),
    ("qty", ev("stock.damaged", sku="A", location="wh", qty=11)),
    ("qty", ev("stock.transfer", sku="A", from_location="wh", to_location="qc", qty=11)),
    (
        "qty",
        ev("order.shipped", order_id="O1", lines=[{"line_id": "1", "qty": 3, "location": "wh"}]),
    ),
    (
        "qty",
        ev(
            "order.returned",
            order_id="O1",
            line_id="1",
            sku="A",
            location="wh",
            qty=1,
            disposition="restock",
        ),
    ),
    (
        "line_id",
        ev(
            "order.placed",
            order_id="O3",
            channel="shopify",
            lines=[{"line_id": "1", "sku": "A", "qty": 1}, {"line_id": "1", "sku": "A", "qty": 1}],
        ),
    ),
    # overflow is refused, never wrapped
    ("qty", ev("stock.received", sku="A", location="wh", qty=2**63 - 1)),
    # wrong types and negative quantities (refused at decoding)
    ("on_hand", ev("stock.set", sku="A", location="wh", on_hand=-1)),
    ("on_hand", ev("stock.set", sku="A", location="wh", on_hand="ten")),
    ("qty", ev("stock.received", sku="A", location="wh", qty=1.5)),
    ("lines", ev("order.placed", order_id="O4", channel="shopify", lines="A")),
    ("disposition", ev("order.fulfillment_failed", order_id="O1", line_id="1", disposition="lost")),
    (
        "ts",
        {
            "type": "stock.set",
            "event_id": "x",
            "ts": "2026-11-23T10:00:00",
            "sku": "A",
            "location": "wh",
            "on_hand": 1,
        },
    ),
    ("type", ev("stock.teleported", sku="A")),
    # valid RFC 3339 whose UTC instant is in the year 10000
    (
        "ts",
        {**ev("stock.set", sku="A", location="wh", on_hand=1), "ts": "9999-12-31T23:59:59-23:59"},
    ),
    ("ts", {**ev("stock.set", sku="A", location="wh", on_hand=1), "ts": "1969-12-31T23:59:59Z"}),
]


@pytest.mark.parametrize(
    ("field", "event"), BAD_EVENTS, ids=[f"{e['type']}:{f}" for f, e in BAD_EVENTS]
)
def test_bad_event_is_refused_naming_the_field_and_changes_nothing(
    engine: Engine, field: str, event: dict[str, Any]
) -> None:
    before = engine.snapshot()
    with pytest.raises(BadInputError) as refused:
        engine.apply(event)
    assert field in str(refused.value)
    assert engine.snapshot() == before
    assert engine.drain_changes() == {}


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("channel", {"channel": "mars"}),
        ("qty", {"lines": [{"line_id": "1", "sku": "A", "qty": 0}]}),
        ("qty", {"lines": [{"line_id": "1", "sku": "A", "qty": -2}]}),
        ("hold_seconds", {"hold_seconds": -1}),
        ("order_id", {"order_id": "O1"}),
        ("lines", {"lines": []}),
    ],
)
def test_bad_reservation_is_refused_and_changes_nothing(
    engine: Engine, field: str, change: dict[str, Any]
) -> None:
    body = {
        "request_id": "r1",
        "order_id": "H1",
        "channel": "shopify",
        "ts": TS,
        "lines": [{"line_id": "1", "sku": "A", "qty": 1}],
        **change,
    }
    before = engine.snapshot()
    with pytest.raises(BadInputError) as refused:
        engine.reserve(body)
    assert field in str(refused.value)
    assert engine.snapshot() == before


def test_a_refused_event_id_can_be_sent_again_corrected(engine: Engine) -> None:
    with pytest.raises(BadInputError):
        engine.apply(ev("stock.set", sku="A", location="nowhere", on_hand=5))
    fixed = engine.apply(ev("stock.set", sku="A", location="wh", on_hand=5))
    assert not fixed.duplicate
    assert engine.ats("A") == 3


def test_order_for_an_unknown_sku_is_backordered_and_alerted(engine: Engine) -> None:
    fx = engine.apply(
        ev(
            "order.placed",
            order_id="O9",
            channel="shopify",
            lines=[{"line_id": "1", "sku": "NEW-1", "qty": 4}],
        )
    )
    assert [(b.sku, b.qty) for b in fx.backorders] == [("NEW-1", 4)]
    assert any(a.kind == "oversell" and a.sku == "NEW-1" for a in fx.alerts)
    assert engine.backordered("NEW-1") == 4


def test_corrupt_or_foreign_snapshot_is_refused_with_a_clear_error(engine: Engine) -> None:
    from invsync import SnapshotError

    data = bytearray(engine.snapshot())
    data[len(data) // 2] ^= 0xFF
    for bad, words in (
        (bytes(data), "checksum"),
        (b"PK\x03\x04zip", "not an invsync snapshot"),
        (bytes(data[:30]), "truncated"),
    ):
        with pytest.raises(SnapshotError, match=words):
            Engine.restore(engine.policy, bad)
