"""`invsync publish` before the network: which lines it refuses, and how it packs the rest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from invsync.bulk.lines import BadLine, Outgoing, read_events
from invsync.bulk.packing import BATCH_OVERHEAD, HEADER_BYTES, Message, pack
from invsync.events import StockSet, decode_events
from invsync.service.subjects import Subjects

TS = "2026-11-23T10:00:00Z"


def event(kind: str, event_id: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "event_id": event_id, "ts": TS, **fields}


def stock_set(event_id: str, sku: str = "A", location: str = "wh-3", on_hand: Any = 5) -> Any:
    return event("stock.set", event_id, sku=sku, location=location, on_hand=on_hand)


def placed(event_id: str, order_id: str, channel: str) -> dict[str, Any]:
    lines = [{"line_id": "1", "sku": "A", "qty": 1}]
    return event("order.placed", event_id, order_id=order_id, channel=channel, lines=lines)


def write_lines(path: Path, lines: list[Any]) -> Path:
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def read(tmp_path: Path, lines: list[Any], prefix: str = "inv") -> list[Outgoing | BadLine]:
    path = write_lines(tmp_path / "events.jsonl", lines)
    return list(read_events(path, Subjects(prefix), fallback_channel="oms"))


def test_each_event_goes_to_its_location_or_its_orders_channel(tmp_path: Path) -> None:
    transfer = event(
        "stock.transfer", "t1", sku="A", from_location="wh-3", to_location="store-1", qty=2
    )
    items = read(
        tmp_path,
        [
            stock_set("s1"),
            transfer,
            placed("p1", "o-1", "amazon"),
            event("order.cancelled", "c1", order_id="o-1"),
            event("order.cancelled", "c2", order_id="o-placed-before-this-file"),
        ],
        prefix="shop",
    )
    assert [(item.subject, item.event_id) for item in items if isinstance(item, Outgoing)] == [
        ("shop.stock.wh-3", "s1"),
        ("shop.stock.wh-3", "t1"),
        ("shop.order.amazon", "p1"),
        ("shop.order.amazon", "c1"),
        ("shop.order.oms", "c2"),
    ]


def test_bad_lines_are_named_by_number_and_reason_and_the_rest_go_on(tmp_path: Path) -> None:
    reserve = {"type": "reserve", "request_id": "r", "order_id": "o", "channel": "shopify"}
    reserve["lines"] = [{"line_id": "1", "sku": "A", "qty": 1}]
    items = read(
        tmp_path,
        [
            stock_set("s1"),
            "",
            '{"type": "stock.set", "event_id": ',
            stock_set("s2", on_hand=-3),
            stock_set("s3", location="wh 3"),
            reserve,
            stock_set("s4"),
        ],
    )
    bad = [item for item in items if isinstance(item, BadLine)]
    assert [line.line for line in bad] == [3, 4, 5, 6]
    assert bad[0].error.startswith("malformed")
    assert bad[1].error.startswith("invalid") and "on_hand" in bad[1].error
    assert "'wh 3'" in bad[2].error
    assert "'reserve'" in bad[3].error
    assert [item.event_id for item in items if isinstance(item, Outgoing)] == ["s1", "s4"]
    assert bad[0].describe(Path("f.jsonl")).startswith("f.jsonl:3: ")


def test_a_batch_line_is_taken_apart_and_its_bad_event_named(tmp_path: Path) -> None:
    inner = [stock_set("s1", sku="A"), stock_set("s2", on_hand="ten"), stock_set("s3", sku="C")]
    items = read(tmp_path, [event("batch", "b1", events=inner)])
    assert isinstance(items[1], BadLine)
    assert items[1].line == 1 and items[1].error.startswith("event 2 of the batch: invalid")
    good = [item for item in items if isinstance(item, Outgoing)]
    assert [decode_events(item.raw) for item in good] == [
        decode_events(json.dumps(inner[0]).encode()),
        decode_events(json.dumps(inner[2]).encode()),
    ]


def outgoing(tmp_path: Path, count: int, **fields: Any) -> list[Outgoing]:
    items = read(tmp_path, [stock_set(f"e{i}", sku=f"S{i:05d}", **fields) for i in range(count)])
    assert all(isinstance(item, Outgoing) for item in items)
    return [item for item in items if isinstance(item, Outgoing)]


def messages(items: list[Any], max_bytes: int, max_events: int) -> list[Message]:
    packed = list(pack(items, max_bytes, max_events))
    assert all(isinstance(message, Message) for message in packed)
    return [message for message in packed if isinstance(message, Message)]


def test_packed_batches_hold_every_event_in_order_within_both_limits(tmp_path: Path) -> None:
    events = outgoing(tmp_path, 2_000)
    limit = 20_000
    packed = messages(events, max_bytes=limit, max_events=150)
    assert len(packed) > 2_000 * len(events[0].raw) // limit
    assert all(len(m.payload) + len(m.msg_id) + HEADER_BYTES <= limit for m in packed)
    assert all(m.events <= 150 for m in packed)
    decoded = [e for m in packed for e in decode_events(m.payload)]
    assert [e.event_id for e in decoded if isinstance(e, StockSet)] == [e.event_id for e in events]
    assert [m.first_line for m in packed] == [1, *(m.last_line + 1 for m in packed[:-1])]


def test_a_message_never_mixes_subjects_and_a_lone_event_keeps_its_own_id(
    tmp_path: Path,
) -> None:
    items = read(tmp_path, [stock_set("a1"), stock_set("a2"), placed("p1", "o", "ebay")])
    first, second = messages(items, max_bytes=1_000_000, max_events=1_000)
    assert (first.subject, first.events, second.subject) == ("inv.stock.wh-3", 2, "inv.order.ebay")
    assert (second.msg_id, second.payload) == ("p1", json.dumps(placed("p1", "o", "ebay")).encode())


def test_batch_ids_are_the_same_on_every_run_and_differ_with_the_content(tmp_path: Path) -> None:
    events = outgoing(tmp_path, 10)
    again = outgoing(tmp_path, 10)
    changed = outgoing(tmp_path, 10, on_hand=6)
    ids = [m.msg_id for m in messages(events, 1_000_000, 4)]
    assert ids == [m.msg_id for m in messages(again, 1_000_000, 4)]
    assert len(set(ids)) == 3
    assert not set(ids) & {m.msg_id for m in messages(changed, 1_000_000, 4)}


def test_an_event_too_big_for_one_message_is_a_bad_line(tmp_path: Path) -> None:
    events = outgoing(tmp_path, 3)
    big = read(tmp_path, [stock_set("big", sku="X" * 5_000)])
    packed = list(pack([events[0], *big, events[1]], max_bytes=2_000, max_events=10))
    bad = [item for item in packed if isinstance(item, BadLine)]
    assert len(bad) == 1 and "2,000 bytes" in bad[0].error
    assert sum(m.events for m in packed if isinstance(m, Message)) == 2


@pytest.mark.parametrize("max_bytes", [BATCH_OVERHEAD + 300, 5_000])
def test_even_a_tight_limit_sends_every_event(tmp_path: Path, max_bytes: int) -> None:
    events = outgoing(tmp_path, 50)
    packed = messages(events, max_bytes=max_bytes, max_events=1_000)
    assert sum(m.events for m in packed) == 50
    assert all(len(m.payload) + len(m.msg_id) + HEADER_BYTES <= max_bytes for m in packed)
