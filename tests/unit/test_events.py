"""The event contract: what decodes, what is refused, and how refusals are labelled."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from invsync.errors import BadInputError
from invsync.events import (
    Alert,
    Batch,
    ChannelAck,
    ChannelQuantities,
    ClockTick,
    DecodeError,
    InboundEvent,
    OrderCancelled,
    OrderFulfillmentFailed,
    OrderLine,
    OrderPlaced,
    OrderReturned,
    OrderShipped,
    QtyItem,
    ReplyLine,
    ReserveLine,
    ReserveReply,
    ReserveRequest,
    ShippedLine,
    StockAdjust,
    StockDamaged,
    StockInbound,
    StockReceived,
    StockReleased,
    StockSet,
    StockTransfer,
    decode_events,
    decode_reserve,
    encode_json,
    encode_msgpack,
)

TS = "2026-11-23T10:00:00Z"
TS_VALUE = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

SAMPLES: dict[str, dict[str, Any]] = {
    "stock.set": {"sku": "A", "location": "wh-3", "on_hand": 1000},
    "stock.adjust": {"sku": "A", "location": "wh-3", "delta": -4, "reason": "breakage"},
    "stock.received": {"sku": "A", "location": "wh-3", "qty": 10},
    "stock.released": {"sku": "A", "location": "wh-3", "qty": 10},
    "stock.damaged": {"sku": "A", "location": "wh-3", "qty": 1},
    "stock.transfer": {"sku": "A", "from_location": "wh-3", "to_location": "store-1", "qty": 5},
    "stock.inbound": {"sku": "A", "location": "wh-3", "qty": 100, "eta": "2026-12-01T00:00:00Z"},
    "order.placed": {
        "order_id": "o-1",
        "channel": "amazon",
        "lines": [{"line_id": "1", "sku": "A", "qty": 2}],
    },
    "order.cancelled": {"order_id": "o-1"},
    "order.shipped": {"order_id": "o-1", "lines": [{"line_id": "1", "qty": 2, "location": "wh-3"}]},
    "order.fulfillment_failed": {"order_id": "o-1", "line_id": "1", "disposition": "damaged"},
    "order.returned": {
        "order_id": "o-1",
        "line_id": "1",
        "sku": "A",
        "location": "wh-3",
        "qty": 1,
        "disposition": "inspect",
    },
    "reserve": {
        "request_id": "r-1",
        "order_id": "o-1",
        "channel": "shopify",
        "lines": [{"line_id": "1", "sku": "A", "qty": 2}],
        "hold_seconds": 600,
    },
    "clock.tick": {},
}

EXPECTED: dict[str, object] = {
    "stock.set": StockSet(event_id="e-1", ts=TS_VALUE, sku="A", location="wh-3", on_hand=1000),
    "stock.adjust": StockAdjust(
        event_id="e-1", ts=TS_VALUE, sku="A", location="wh-3", delta=-4, reason="breakage"
    ),
    "stock.received": StockReceived(event_id="e-1", ts=TS_VALUE, sku="A", location="wh-3", qty=10),
    "stock.released": StockReleased(event_id="e-1", ts=TS_VALUE, sku="A", location="wh-3", qty=10),
    "stock.damaged": StockDamaged(event_id="e-1", ts=TS_VALUE, sku="A", location="wh-3", qty=1),
    "stock.transfer": StockTransfer(
        event_id="e-1", ts=TS_VALUE, sku="A", from_location="wh-3", to_location="store-1", qty=5
    ),
    "stock.inbound": StockInbound(
        event_id="e-1",
        ts=TS_VALUE,
        sku="A",
        location="wh-3",
        qty=100,
        eta=datetime(2026, 12, 1, tzinfo=UTC),
    ),
    "order.placed": OrderPlaced(
        event_id="e-1",
        ts=TS_VALUE,
        order_id="o-1",
        channel="amazon",
        lines=[OrderLine(line_id="1", sku="A", qty=2)],
    ),
    "order.cancelled": OrderCancelled(event_id="e-1", ts=TS_VALUE, order_id="o-1"),
    "order.shipped": OrderShipped(
        event_id="e-1",
        ts=TS_VALUE,
        order_id="o-1",
        lines=[ShippedLine(line_id="1", qty=2, location="wh-3")],
    ),
    "order.fulfillment_failed": OrderFulfillmentFailed(
        event_id="e-1", ts=TS_VALUE, order_id="o-1", line_id="1", disposition="damaged"
    ),
    "order.returned": OrderReturned(
        event_id="e-1",
        ts=TS_VALUE,
        order_id="o-1",
        line_id="1",
        sku="A",
        location="wh-3",
        qty=1,
        disposition="inspect",
    ),
    "reserve": ReserveRequest(
        request_id="r-1",
        order_id="o-1",
        channel="shopify",
        lines=[ReserveLine(line_id="1", sku="A", qty=2)],
        hold_seconds=600,
    ),
    "clock.tick": ClockTick(event_id="e-1", ts=TS_VALUE),
}

# (event type, path of each quantity inside the message)
QUANTITIES = [
    ("stock.set", ("on_hand",)),
    ("stock.received", ("qty",)),
    ("stock.released", ("qty",)),
    ("stock.damaged", ("qty",)),
    ("stock.transfer", ("qty",)),
    ("stock.inbound", ("qty",)),
    ("order.placed", ("lines", 0, "qty")),
    ("order.shipped", ("lines", 0, "qty")),
    ("order.returned", ("qty",)),
    ("reserve", ("lines", 0, "qty")),
]


def message(event_type: str, **changes: Any) -> dict[str, Any]:
    """A valid message of `event_type` (reserve has no event_id/ts), with `changes` applied."""
    envelope = {} if event_type == "reserve" else {"event_id": "e-1", "ts": TS}
    body = {"type": event_type, **envelope, **json.loads(json.dumps(SAMPLES[event_type]))}
    return {**body, **changes}


def required_fields(event_type: str) -> list[str]:
    return [name for name in message(event_type) if name != "type" and name != "hold_seconds"]


def only(results: list[Any]) -> Any:
    assert len(results) == 1
    return results[0]


def set_path(body: dict[str, Any], path: tuple[str | int, ...], value: object) -> None:
    target: Any = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value


def names(error: DecodeError, *fields: str) -> bool:
    """The refusal names the fields; the words around them are msgspec's and may change."""
    return all(field in error.error for field in fields)


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_every_event_type_decodes_from_json(event_type: str) -> None:
    assert only(decode_events(json.dumps(message(event_type)).encode())) == EXPECTED[event_type]


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_every_event_type_decodes_from_msgpack(event_type: str) -> None:
    data = msgspec.msgpack.encode(message(event_type))
    assert only(decode_events(data, msgpack=True)) == EXPECTED[event_type]


@pytest.mark.parametrize(
    ("event_type", "field"),
    [
        (event_type, field)
        for event_type in sorted(SAMPLES)
        for field in required_fields(event_type)
    ],
)
def test_missing_required_field_is_invalid_and_named(event_type: str, field: str) -> None:
    body = message(event_type)
    del body[field]
    error = only(decode_events(json.dumps(body).encode()))
    assert isinstance(error, DecodeError)
    assert error.reason == "invalid"
    assert names(error, field)


@pytest.mark.parametrize(
    ("event_type", "field"),
    [(event_type, field) for event_type in sorted(SAMPLES) for field in message(event_type)],
)
def test_wrong_type_is_invalid_and_names_the_field(event_type: str, field: str) -> None:
    body = message(event_type, **{field: {"not": "this"}})
    error = only(decode_events(json.dumps(body).encode()))
    assert isinstance(error, DecodeError)
    if field == "type":
        assert error.reason == "unknown_type"
    else:
        assert error.reason == "invalid"
        assert names(error, field)


@pytest.mark.parametrize(("event_type", "path"), QUANTITIES)
@pytest.mark.parametrize("value", [-1, 2**63, 2**64, 10**30])
def test_quantity_out_of_range_is_invalid_and_named(
    event_type: str, path: tuple[str | int, ...], value: int
) -> None:
    body = message(event_type)
    set_path(body, path, value)
    error = only(decode_events(json.dumps(body).encode()))
    assert isinstance(error, DecodeError)
    assert error.reason == "invalid"
    assert names(error, *(step for step in path if isinstance(step, str)))


def test_quantity_at_the_64_bit_limit_is_accepted() -> None:
    event = only(decode_events(json.dumps(message("stock.set", on_hand=2**63 - 1)).encode()))
    assert isinstance(event, StockSet)
    assert event.on_hand == 2**63 - 1


@pytest.mark.parametrize("delta", [-(2**63) - 1, 2**63])
def test_delta_beyond_64_bits_is_invalid(delta: int) -> None:
    error = only(decode_events(json.dumps(message("stock.adjust", delta=delta)).encode()))
    assert isinstance(error, DecodeError)
    assert (error.reason, names(error, "delta")) == ("invalid", True)


def test_quantity_beyond_signed_64_bits_in_msgpack_is_invalid() -> None:
    error = only(
        decode_events(encode_msgpack(message("stock.set", on_hand=2**64 - 1)), msgpack=True)
    )
    assert isinstance(error, DecodeError)
    assert (error.reason, names(error, "on_hand")) == ("invalid", True)


def test_reserve_line_of_zero_units_is_invalid() -> None:
    body = message("reserve")
    body["lines"][0]["qty"] = 0
    error = only(decode_events(json.dumps(body).encode()))
    assert isinstance(error, DecodeError)
    assert (error.reason, names(error, "lines", "qty")) == ("invalid", True)


@pytest.mark.parametrize("event_type", ["order.placed", "order.shipped", "reserve"])
def test_order_without_lines_is_invalid(event_type: str) -> None:
    error = only(decode_events(json.dumps(message(event_type, lines=[])).encode()))
    assert isinstance(error, DecodeError)
    assert (error.reason, names(error, "lines")) == ("invalid", True)


def test_empty_event_id_is_invalid() -> None:
    error = only(decode_events(json.dumps(message("clock.tick", event_id="")).encode()))
    assert isinstance(error, DecodeError)
    assert (error.reason, names(error, "event_id")) == ("invalid", True)


def test_unknown_disposition_is_invalid() -> None:
    body = message("order.returned", disposition="shred")
    error = only(decode_events(json.dumps(body).encode()))
    assert isinstance(error, DecodeError)
    assert (error.reason, names(error, "shred", "disposition")) == ("invalid", True)


@pytest.mark.parametrize("field", ["ts", "eta"])
def test_naive_time_is_refused(field: str) -> None:
    body = message("stock.inbound", **{field: "2026-11-23T10:00:00"})
    error = only(decode_events(json.dumps(body).encode()))
    assert isinstance(error, DecodeError)
    assert (error.reason, names(error, field)) == ("invalid", True)


def test_unknown_fields_are_ignored() -> None:
    body = message("order.placed", priority="high", extra={"nested": [1, 2]})
    body["lines"][0]["gift_wrap"] = True
    assert only(decode_events(json.dumps(body).encode())) == EXPECTED["order.placed"]


def test_optional_fields_take_their_contract_defaults() -> None:
    event = only(decode_events(json.dumps(message("stock.adjust", actor="jo")).encode()))
    assert isinstance(event, StockAdjust)
    assert (event.condition, event.actor) == ("new", "jo")
    cancelled = only(decode_events(json.dumps(message("order.cancelled")).encode()))
    assert isinstance(cancelled, OrderCancelled)
    assert cancelled.line_ids is None
    body = message("reserve")
    del body["hold_seconds"]
    request = only(decode_events(json.dumps(body).encode()))
    assert isinstance(request, ReserveRequest)
    assert (request.hold_seconds, request.ts, request.lines[0].condition) == (900, None, "new")


@pytest.mark.parametrize("tag", ["stock.teleport", "", None, 7])
def test_unknown_type_is_labelled_unknown_type(tag: object) -> None:
    data = json.dumps({**message("clock.tick"), "type": tag}).encode()
    error = only(decode_events(data))
    assert isinstance(error, DecodeError)
    assert (error.reason, error.raw) == ("unknown_type", data)


def test_missing_type_is_labelled_unknown_type() -> None:
    body = message("clock.tick")
    del body["type"]
    error = only(decode_events(json.dumps(body).encode()))
    assert isinstance(error, DecodeError)
    assert error.reason == "unknown_type"


@pytest.mark.parametrize("data", [b'{"type": "clock.tick"', b"", b"not json", b"{}}"])
def test_malformed_json_is_labelled_malformed(data: bytes) -> None:
    error = only(decode_events(data))
    assert isinstance(error, DecodeError)
    assert (error.reason, error.raw) == ("malformed", data)


def test_malformed_msgpack_is_labelled_malformed() -> None:
    error = only(decode_events(b"\xc1", msgpack=True))
    assert isinstance(error, DecodeError)
    assert error.reason == "malformed"


def test_non_object_message_is_invalid() -> None:
    error = only(decode_events(b"[1, 2]"))
    assert isinstance(error, DecodeError)
    assert error.reason == "invalid"


@pytest.mark.parametrize("field", ["sku", "note"])
def test_invalid_utf8_in_json_is_labelled_encoding(field: str) -> None:
    data = json.dumps(message("stock.set", **{field: "X"})).encode().replace(b'"X"', b'"\xff\xfe"')
    error = only(decode_events(data))
    assert isinstance(error, DecodeError)
    assert (error.reason, error.raw) == ("encoding", data)


def test_invalid_utf8_in_msgpack_string_is_labelled_encoding() -> None:
    data = encode_msgpack(message("stock.set", sku="Q")).replace(b"\xa1Q", b"\xa1\xff")
    error = only(decode_events(data, msgpack=True))
    assert isinstance(error, DecodeError)
    assert error.reason == "encoding"


def msgpack_with(body: dict[str, Any], good: bytes, bad: bytes) -> bytes:
    data = encode_msgpack(body)
    assert data.count(good) == 1
    return data.replace(good, bad)


LONG = "Q" * 40  # a str8 in MessagePack, not a fixstr


@pytest.mark.parametrize(
    ("body", "good", "bad"),
    [
        (message("stock.set", sku=LONG), LONG.encode(), LONG[:-1].encode() + b"\xff"),
        (message("order.cancelled", line_ids=["1", "X"]), b"\xa1X", b"\xa1\xff"),
        (
            message("order.placed", lines=[{"line_id": "1", "sku": "X", "qty": 1}]),
            b"\xa1X",
            b"\xa1\xff",
        ),
        (message("stock.set", on_hand="X"), b"\xa1X", b"\xa1\xff"),
    ],
    ids=["str8", "in-a-list", "in-a-line", "wrong-type-field"],
)
def test_invalid_utf8_anywhere_a_msgpack_decode_fails_is_labelled_encoding(
    body: dict[str, Any], good: bytes, bad: bytes
) -> None:
    data = msgpack_with(body, good, bad)
    error = only(decode_events(data, msgpack=True))
    assert isinstance(error, DecodeError)
    assert error.reason == "encoding"


def test_msgpack_binary_with_non_utf8_bytes_is_invalid_not_encoding() -> None:
    data = msgpack_with(message("stock.set", sku=b"X"), b"\xc4\x01X", b"\xc4\x01\xff")
    error = only(decode_events(data, msgpack=True))
    assert isinstance(error, DecodeError)
    assert error.reason == "invalid"


def test_msgpack_string_cut_short_is_malformed() -> None:
    data = encode_msgpack(message("stock.set", sku=LONG))
    error = only(decode_events(data[: data.index(LONG.encode()) + 5], msgpack=True))
    assert isinstance(error, DecodeError)
    assert error.reason == "malformed"


def batch(*events: object) -> dict[str, Any]:
    return {"type": "batch", "event_id": "b-1", "ts": TS, "events": list(events)}


def test_batch_yields_its_inner_events_in_order() -> None:
    inner = [message("stock.set"), message("order.placed"), message("clock.tick")]
    results = decode_events(json.dumps(batch(*inner)).encode())
    assert results == [EXPECTED["stock.set"], EXPECTED["order.placed"], EXPECTED["clock.tick"]]


@pytest.mark.parametrize("msgpack", [False, True])
def test_bad_inner_event_fails_alone_and_keeps_its_place(msgpack: bool) -> None:
    bad = message("stock.received", qty=-3)
    body = batch(message("stock.set"), bad, message("clock.tick"))
    data = encode_msgpack(body) if msgpack else json.dumps(body).encode()
    first, error, last = decode_events(data, msgpack=msgpack)
    assert (first, last) == (EXPECTED["stock.set"], EXPECTED["clock.tick"])
    assert isinstance(error, DecodeError)
    assert (error.reason, names(error, "qty")) == ("invalid", True)
    assert error.raw == (encode_msgpack(bad) if msgpack else json.dumps(bad).encode())


def test_inner_event_with_invalid_utf8_fails_alone() -> None:
    body = batch(message("stock.set", sku="X"), message("clock.tick"))
    data = json.dumps(body).encode().replace(b'"X"', b'"\xff"')
    error, tick = decode_events(data)
    assert isinstance(error, DecodeError)
    assert (error.reason, tick) == ("encoding", EXPECTED["clock.tick"])


def test_msgpack_inner_event_with_invalid_utf8_fails_alone() -> None:
    body = batch(message("stock.set", sku="X"), message("clock.tick"))
    error, tick = decode_events(msgpack_with(body, b"\xa1X", b"\xa1\xff"), msgpack=True)
    assert isinstance(error, DecodeError)
    assert (error.reason, tick) == ("encoding", EXPECTED["clock.tick"])


def test_invalid_utf8_in_an_ignored_field_of_an_inner_event_fails_it_alone() -> None:
    good = message("stock.set", sku="Ü-7")
    body = batch(good, message("clock.tick", note="X"))
    data = json.dumps(body, ensure_ascii=False).encode().replace(b'"X"', b'"\xff"')
    first, error = decode_events(data)
    assert first == msgspec.convert(good, InboundEvent)
    assert isinstance(error, DecodeError) and error.reason == "encoding"


def test_nested_batch_is_refused_alone() -> None:
    body = batch(batch(message("stock.set")), message("clock.tick"))
    error, tick = decode_events(json.dumps(body).encode())
    assert isinstance(error, DecodeError)
    assert (error.reason, tick) == ("nested_batch", EXPECTED["clock.tick"])


def test_batch_without_event_id_is_invalid_as_a_whole() -> None:
    body = batch(message("clock.tick"))
    del body["event_id"]
    error = only(decode_events(json.dumps(body).encode()))
    assert isinstance(error, DecodeError)
    assert (error.reason, names(error, "event_id")) == ("invalid", True)


def test_empty_batch_yields_nothing() -> None:
    assert decode_events(json.dumps(batch()).encode()) == []


def test_msgpack_accepts_native_timestamps() -> None:
    data = encode_msgpack(ClockTick(event_id="e-1", ts=TS_VALUE))
    assert decode_events(data, msgpack=True) == [ClockTick(event_id="e-1", ts=TS_VALUE)]


def test_events_round_trip_through_both_encodings() -> None:
    for expected in EXPECTED.values():
        assert decode_events(encode_json(expected)) == [expected]
        assert decode_events(encode_msgpack(expected), msgpack=True) == [expected]


def test_batch_round_trips_with_raw_inner_events() -> None:
    inner = [msgspec.Raw(encode_json(EXPECTED["stock.set"]))]
    data = encode_json(Batch(event_id="b-1", ts=TS_VALUE, events=inner))
    assert decode_events(data) == [EXPECTED["stock.set"]]


def test_decode_reserve_accepts_a_request_without_type() -> None:
    body = message("reserve", ts="2026-11-23T11:00:00+01:00")
    del body["type"]
    request = decode_reserve(json.dumps(body).encode())
    assert request.ts == TS_VALUE
    assert request.lines == [ReserveLine(line_id="1", sku="A", qty=2)]


def test_decode_reserve_reads_msgpack() -> None:
    assert decode_reserve(encode_msgpack(message("reserve")), msgpack=True) == EXPECTED["reserve"]


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        (b"{", ()),
        (b'{"type": "order.placed"}', ("order.placed", "type")),
        (json.dumps(message("reserve", hold_seconds=-1)).encode(), ("hold_seconds",)),
        (b'{"request_id": "\xff"}', ("UTF-8",)),
    ],
)
def test_decode_reserve_refuses_bad_requests_with_the_reason(
    data: bytes, fields: tuple[str, ...]
) -> None:
    with pytest.raises(BadInputError) as caught:
        decode_reserve(data)
    assert str(caught.value)
    assert all(field in str(caught.value) for field in fields)


def test_reply_to_a_malformed_request_carries_only_ok_and_error() -> None:
    assert json.loads(encode_json(ReserveReply(False, error="bad"))) == {
        "ok": False,
        "error": "bad",
    }


def test_refused_reservation_reply_keeps_a_null_expiry() -> None:
    line = ReplyLine("1", "A", 2, False, "insufficient")
    reply = json.loads(encode_json(ReserveReply(False, "o-1", [line], None)))
    assert reply == {
        "ok": False,
        "order_id": "o-1",
        "lines": [
            {"line_id": "1", "sku": "A", "qty": 2, "granted": False, "reason": "insufficient"}
        ],
        "expires_at": None,
    }


def test_published_messages_carry_their_type() -> None:
    quantities = ChannelQuantities("amazon", 7, TS_VALUE, [QtyItem("A", "new", 300, TS_VALUE)])
    assert json.loads(encode_json(quantities)) == {
        "type": "channel.quantities",
        "channel": "amazon",
        "seq": 7,
        "ts": TS,
        "items": [{"sku": "A", "condition": "new", "qty": 300, "source_ts": TS}],
    }
    alert = Alert("oversell", "A", None, "short 3", TS_VALUE)
    assert json.loads(encode_json(alert))["type"] == "alert"


def test_channel_ack_decodes_without_an_error() -> None:
    ack = msgspec.json.decode(b'{"seq": 3, "ok": true, "latency_ms": 4}', type=ChannelAck)
    assert ack == ChannelAck(seq=3, ok=True, error=None)


def test_channel_ack_takes_the_v1_1_fields_and_refuses_negative_counts() -> None:
    body = (
        b'{"seq": 3, "ok": true, "accepted_ts": "2026-11-23T10:00:00Z",'
        b' "items_ok": 2, "items_failed": 0}'
    )
    ack = msgspec.json.decode(body, type=ChannelAck)
    assert (ack.accepted_ts, ack.items_ok, ack.items_failed) == (TS_VALUE, 2, 0)
    for bad in (
        b'{"seq": 3, "ok": true, "items_failed": -1}',
        b'{"seq": 3, "ok": true, "accepted_ts": "2026-11-23T10:00:00"}',  # no time zone
    ):
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(bad, type=ChannelAck)
