"""What a core call did comes back by name, and the core's one list of event kinds is
the one the engine dispatches on."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, get_args

import msgspec

from invsync import BadInputError, Engine, Policy, _core
from invsync.engine import AppliedEvent
from invsync.events import InboundEvent, QtyItem
from invsync.timeconv import to_micros

POLICY = """
[[tiers]]
tier = 1
[[locations]]
id = "wh"
kind = "warehouse"
[[channels]]
id = "shopify"
tier = 1
[[channels]]
id = "ebay"
tier = 1
"""
TS = datetime(2026, 11, 23, 10, tzinfo=UTC)


def decoded(*events: dict[str, Any]) -> list[AppliedEvent]:
    return [msgspec.convert({"ts": TS, **e}, InboundEvent) for e in events]


def core_apply(core: _core.Core, events: list[AppliedEvent]) -> _core.BatchEffects:
    kinds = bytes(_core.EVENT_KINDS.index(type(e).__struct_config__.tag) for e in events)
    return core.apply_events(events, kinds, [to_micros(e.ts) for e in events])


STOCK = {"type": "stock.set", "event_id": "s1", "sku": "A", "location": "wh", "on_hand": 5}
ORDER = {
    "type": "order.placed",
    "event_id": "o1",
    "order_id": "o-1",
    "channel": "shopify",
    "lines": [{"line_id": "1", "sku": "A", "qty": 2}],
}


def test_every_kind_the_core_applies_has_one_event_struct() -> None:
    tags = [str(cls.__struct_config__.tag) for cls in get_args(AppliedEvent)]
    assert sorted(tags) == sorted(_core.EVENT_KINDS)
    assert len(set(_core.EVENT_KINDS)) == len(_core.EVENT_KINDS)


def test_a_batch_reports_what_it_did_by_name() -> None:
    core = _core.Core(Policy.from_toml(POLICY).tables_json())
    done = core_apply(core, decoded(STOCK, ORDER, STOCK))
    assert done.refused == [] and done.duplicates == [2]
    assert [location for location, _ in done.routes] == ["wh"]
    assert [(i, field, after) for i, _, _, _, field, _, after in done.audit] == [(0, "on_hand", 5)]
    assert done.route_frames == b"" and done.expired == [] and done.dead_letters == []


def test_reserved_and_backordered_are_read_by_name() -> None:
    core = _core.Core(Policy.from_toml(POLICY).tables_json())
    core_apply(core, decoded(STOCK, ORDER))
    idx = core.lookup("A", "new")
    assert idx is not None
    assert (core.reserved(idx), core.backordered(idx)) == (2, 0)
    assert (core.reserved(999), core.backordered(999)) == (0, 0)


def test_an_unknown_kind_number_is_refused_and_names_the_kind() -> None:
    core = _core.Core(Policy.from_toml(POLICY).tables_json())
    [event] = decoded(STOCK)
    done = core.apply_events([event], bytes([len(_core.EVENT_KINDS)]), [to_micros(TS)])
    [(index, refusal)] = done.refused
    assert index == 0 and isinstance(refusal, BadInputError) and "kind" in str(refusal)
    assert core.lookup("A", "new") is None


def test_drain_changes_is_the_published_drain_decoded() -> None:
    published, viewed = Engine(Policy.from_toml(POLICY)), Engine(Policy.from_toml(POLICY))
    for engine in (published, viewed):
        engine.apply_all(decoded(STOCK, ORDER))
    pieces = published.drain_json(1, TS)
    assert [channel for channel, *_ in pieces] == ["shopify", "ebay"]
    wire = {
        channel: msgspec.json.decode(b"[" + items + b"]", type=list[QtyItem])
        for channel, items, _, _ in pieces
    }
    assert (
        viewed.drain_changes()
        == wire
        == {
            "shopify": [QtyItem("A", "new", 3, TS)],
            "ebay": [QtyItem("A", "new", 3, TS)],
        }
    )
    assert viewed.drain_changes() == {}


def test_drain_quantities_is_the_published_drain_as_numbers() -> None:
    """Per channel, the keys and quantities `drain_json` would publish; a drain takes
    them, as a publish does, so the next drain has only what changed since."""
    published, counted = Engine(Policy.from_toml(POLICY)), Engine(Policy.from_toml(POLICY))
    for engine in (published, counted):
        engine.apply_all(
            decoded(
                STOCK,
                {"type": "stock.set", "event_id": "s2", "sku": "B", "location": "wh", "on_hand": 7},
                ORDER,
            )
        )
    wire = [
        (
            channel,
            keys.tolist(),
            [item.qty for item in msgspec.json.decode(b"[" + items + b"]", type=list[QtyItem])],
        )
        for channel, items, keys, _ in published.drain_json(100, TS)
    ]
    numbers = [
        (channel, keys.tolist(), qty.tolist()) for channel, keys, qty in counted.drain_quantities()
    ]
    a, b = counted.index("A"), counted.index("B")
    assert numbers == wire == [("shopify", [a, b], [3, 7]), ("ebay", [a, b], [3, 7])]
    assert counted.drain_quantities() == []
    counted.apply_all(decoded({**ORDER, "event_id": "o2", "order_id": "o-2", "channel": "ebay"}))
    assert [(ch, k.tolist(), q.tolist()) for ch, k, q in counted.drain_quantities()] == [
        ("shopify", [a], [1]),
        ("ebay", [a], [1]),
    ]
