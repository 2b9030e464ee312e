"""`Engine.apply_all`: a batch in one call; a refused event changes nothing, the rest apply."""

from __future__ import annotations

from typing import Any

import msgspec

from invsync import BadInputError, Engine, Policy
from invsync.engine import AppliedEvent
from invsync.events import InboundEvent, Route, encode_json
from tests.small_policy import ONE_WAREHOUSE_POLICY as POLICY
from tests.small_policy import TS


def decoded(*events: dict[str, Any]) -> list[AppliedEvent]:
    return [msgspec.convert({"ts": TS, **e}, InboundEvent) for e in events]  # type: ignore[misc]


def test_a_refused_event_is_reported_by_index_and_the_others_apply() -> None:
    engine = Engine(Policy.from_toml(POLICY))
    done = engine.apply_all(
        decoded(
            {"type": "stock.set", "event_id": "s1", "sku": "A", "location": "wh", "on_hand": 5},
            {
                "type": "stock.set",
                "event_id": "s2",
                "sku": "B",
                "location": "nowhere",
                "on_hand": 1,
            },
            {
                "type": "order.placed",
                "event_id": "o1",
                "order_id": "o-1",
                "channel": "shopify",
                "lines": [{"line_id": "1", "sku": "A", "qty": 2}],
            },
            {"type": "stock.set", "event_id": "s1", "sku": "A", "location": "wh", "on_hand": 9},
        )
    )
    [(index, refusal)] = done.refused
    assert index == 1 and isinstance(refusal, BadInputError) and "location" in str(refusal)
    assert done.duplicates == [3]
    assert done.routes == [("wh", encode_json(Route("o-1", "1", "A", 2, "wh")))]
    assert [(i, c.field, c.before, c.after) for i, c in done.audit if c.field == "on_hand"] == [
        (0, "on_hand", 0, 5)
    ]
    assert engine.ats("A") == 3
    assert engine.ats("B") == 0


def test_route_messages_are_byte_for_byte_msgspec_encodings() -> None:
    engine = Engine(Policy.from_toml(POLICY))
    sku = 'B "quoted" Ü-7\\'
    done = engine.apply_all(
        decoded(
            {"type": "stock.set", "event_id": "s1", "sku": sku, "location": "wh", "on_hand": 5},
            {
                "type": "order.placed",
                "event_id": "o1",
                "order_id": "ö-1",
                "channel": "shopify",
                "lines": [{"line_id": "l\t1", "sku": sku, "qty": 2}],
            },
        )
    )
    assert done.routes == [("wh", encode_json(Route("ö-1", "l\t1", sku, 2, "wh")))]


def test_routes_as_frames_are_what_publishing_them_one_by_one_writes() -> None:
    """With a route prefix, plain-token locations' routes come as PUB frames; a
    location id that could not stand in a PUB line as it is stays in `routes`."""
    policy = POLICY + '[[locations]]\nid = "east wh"\nkind = "3pl"\n'
    orders = [
        {
            "type": "order.placed",
            "event_id": f"o{n}",
            "order_id": f"o-{n}",
            "channel": "shopify",
            "lines": [{"line_id": "1", "sku": sku, "qty": 1}],
        }
        for n, sku in enumerate(["A", "É", "A", "far"])
    ]
    stock = [
        {"type": "stock.set", "event_id": f"s-{sku}", "sku": sku, "location": loc, "on_hand": 5}
        for sku, loc in (("A", "wh"), ("É", "wh"), ("far", "east wh"))
    ]
    listed, framed = Engine(Policy.from_toml(policy)), Engine(Policy.from_toml(policy))
    listed.apply_all(decoded(*stock))
    framed.apply_all(decoded(*stock))
    as_list = listed.apply_all(decoded(*orders))
    as_frames = framed.apply_all(decoded(*orders), route_prefix="inv.route.")
    assert as_list.route_frames == b""
    expected = b"".join(
        b"PUB inv.route.%s %d\r\n%s\r\n" % (location.encode(), len(route), route)
        for location, route in as_list.routes
        if location == "wh"
    )
    assert as_frames.route_frames == expected and expected.count(b"PUB ") == 3
    assert as_frames.routes == [r for r in as_list.routes if r[0] == "east wh"]


def test_without_the_audit_trail_a_batch_applies_the_same_and_reports_no_changes() -> None:
    events = decoded(
        {"type": "stock.set", "event_id": "s1", "sku": "A", "location": "wh", "on_hand": 5},
        {
            "type": "order.placed",
            "event_id": "o1",
            "order_id": "o-1",
            "channel": "shopify",
            "lines": [{"line_id": "1", "sku": "A", "qty": 2}],
        },
    )
    audited, unaudited = Engine(Policy.from_toml(POLICY)), Engine(Policy.from_toml(POLICY))
    with_trail = audited.apply_all(events)
    without = unaudited.apply_all(events, audit=False)
    assert with_trail.audit != [] and without.audit == []
    assert without.routes == with_trail.routes
    assert unaudited.snapshot() == audited.snapshot()
