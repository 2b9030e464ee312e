"""`engine.reserve` with a plain dict reads it in the core; every answer must be the
one the full decoder gives.

A dict subclass is not read by the core (only an exact dict is), so handing the
same request to a second engine as a subclass takes the full path: the two
engines must give equal replies, equal errors and equal state, whatever the
request holds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invsync import BadInputError, Engine, Policy
from invsync._core import MAX_HOLD_SECONDS

POLICY = """
[[tiers]]
tier = 1
protect = 2
[[tiers]]
tier = 2
[[locations]]
id = "wh"
kind = "warehouse"
[[channels]]
id = "shopify"
tier = 1
[[channels]]
id = "amazon"
tier = 2
[[skus]]
id = "A"
[[skus]]
id = "B"
"""


class FullPath(dict[str, Any]):
    """The same request, kept off the core's plain-dict reading."""


def stocked() -> Engine:
    engine = Engine(Policy.from_toml(POLICY))
    for sku, units in (("A", 40), ("B", 3)):
        engine.apply(
            {
                "type": "stock.set",
                "event_id": f"s-{sku}",
                "ts": "2026-11-23T09:00:00Z",
                "sku": sku,
                "location": "wh",
                "on_hand": units,
            }
        )
    return engine


def outcome(engine: Engine, request: dict[str, Any]) -> tuple[Any, ...]:
    try:
        return ("reply", engine.reserve(request))
    except BadInputError as exc:
        return ("refused", str(exc))


def plain() -> dict[str, Any]:
    return {
        "type": "reserve",
        "request_id": "r1",
        "order_id": "o1",
        "channel": "amazon",
        "ts": "2026-11-23T10:00:00Z",
        "lines": [{"line_id": "1", "sku": "A", "qty": 2}],
        "hold_seconds": 600,
    }


def test_the_plain_shape_is_read_by_the_core_with_the_same_reply() -> None:
    fast, full = stocked(), stocked()
    assert fast._core.reserve_plain(plain()) is not None
    assert outcome(stocked(), plain()) == outcome(full, FullPath(plain()))
    assert fast.snapshot() != stocked().snapshot()  # it did reserve


def contract_example() -> dict[str, Any]:
    """The request exactly as the contract shows it: no `ts`, so the time is stamped."""
    return {
        "type": "reserve",
        "request_id": "r-1",
        "order_id": "o-1",
        "channel": "shopify",
        "lines": [{"line_id": "1", "sku": "A", "qty": 2}],
        "hold_seconds": 600,
    }


def test_the_contracts_example_without_ts_is_read_by_the_core_and_stamped_now() -> None:
    for request in (contract_example(), {**contract_example(), "ts": None}):
        engine = stocked()
        before = datetime.now(UTC)
        done = engine._core.reserve_plain(request)
        after = datetime.now(UTC)
        assert done is not None
        reply = done[0]
        assert reply["ok"] is True
        stamp = datetime.fromisoformat(reply["expires_at"]) - timedelta(seconds=600)
        assert before <= stamp <= after
        assert engine.reserved("A") == 2


def test_a_request_the_core_does_not_read_is_decoded_in_full() -> None:
    engine = stocked()
    for odd in (
        {**plain(), "ts": datetime(2026, 11, 23, 10, tzinfo=UTC)},  # a datetime, not text
        {**plain(), "note": "gift"},  # a key the contract does not name
    ):
        assert engine._core.reserve_plain(odd) is None
    reply = engine.reserve({**plain(), "ts": datetime(2026, 11, 23, 10, tzinfo=UTC)})
    assert reply["ok"] and reply["expires_at"] == "2026-11-23T10:10:00Z"


NOT_TEXT = ["", 1, None, True, ["A"]]
NOT_QTY = [0, -1, 2**63 - 1, 2**63, 1.0, True, "1", None]
# (in a line?, field, what a caller may put there by mistake)
EDITS = [
    *((False, field, v) for field in ("request_id", "order_id", "channel") for v in NOT_TEXT),
    *((False, "channel", v) for v in ("ebay", "Amazon")),
    *((False, "type", v) for v in ("order.placed", "", 1)),
    *((False, "lines", v) for v in ([], {}, ("x",), [["1", "A", 1]], None)),
    *((False, "hold_seconds", v) for v in (-1, MAX_HOLD_SECONDS + 1, 2**64, 1.5, True, "9")),
    *((False, "ts", v) for v in (datetime(2026, 11, 23, 10, tzinfo=UTC), 0, "", None)),
    (False, "note", "gift"),
    *((True, field, v) for field in ("line_id", "sku", "condition") for v in NOT_TEXT),
    *((True, "qty", v) for v in NOT_QTY),
    (True, "note", "gift"),
]


def timestamps() -> st.SearchStrategy[Any]:
    moments = st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9998, 12, 31)).map(
        lambda d: d.replace(tzinfo=UTC)
    )
    offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
    formatted = st.builds(
        lambda moment, zone, spec: moment.astimezone(zone).isoformat(timespec=spec),
        moments,
        offsets,
        st.sampled_from(["seconds", "milliseconds", "microseconds"]),
    )
    return st.one_of(
        formatted,
        formatted.map(lambda t: t.replace("+00:00", "Z")),
        formatted.map(lambda t: t.replace("T", " ")),
        formatted.map(lambda t: t[:19]),  # no zone
        st.sampled_from(
            [
                "2026-11-23T10:00:00.1234567Z",
                "2024-02-29T23:59:59.999999-12:00",
                "2026-02-29T10:00:00Z",
                "2026-11-23T23:59:60Z",
                "0999-12-31T23:59:59Z",
                "2026-11-23T10:00:00+0100",
                "2026-11-23t10:00:00z",
            ]
        ),
    )


def requests() -> st.SearchStrategy[dict[str, Any]]:
    """Mostly well-formed requests (repeating ids, so duplicates happen), some with a
    field or a line changed, dropped or added."""
    line = st.fixed_dictionaries(
        {
            "line_id": st.sampled_from(["1", "2"]),
            "sku": st.sampled_from(["A", "B", "C"]),
            "qty": st.integers(1, 30),
        },
        optional={"condition": st.sampled_from(["new", "used"])},
    )
    well_formed = st.fixed_dictionaries(
        {
            "request_id": st.sampled_from(["r1", "r2", "r3", "r4"]),
            "order_id": st.sampled_from(["o1", "o2", "o3", "o4"]),
            "channel": st.sampled_from(["shopify", "amazon"]),
            "lines": st.lists(line, min_size=1, max_size=3),
        },
        optional={
            "ts": st.one_of(timestamps(), timestamps(), st.none()),
            "type": st.just("reserve"),
            "hold_seconds": st.one_of(st.integers(0, 2000), st.just(MAX_HOLD_SECONDS)),
        },
    )

    def changed(
        request: dict[str, Any], edits: list[tuple[bool, str, Any, bool]]
    ) -> dict[str, Any]:
        for in_line, field, value, drop in edits:
            lines = request.get("lines")
            first = lines[0] if isinstance(lines, list) and lines else None
            target = first if in_line else request
            if not isinstance(target, dict):
                continue
            if drop:
                target.pop(field, None)
            else:
                target[field] = value
        return request

    edit = st.builds(
        lambda e, drop: (*e, drop), st.sampled_from(EDITS), st.sampled_from([False, False, True])
    )
    return st.builds(changed, well_formed, st.lists(edit, max_size=2))


class Stamps:
    """Both paths stamp a request without `ts` with the wall clock, microseconds apart:
    the `expires_at` each gave such a request reads as the same marker, in that answer
    and in every later answer to the same request_id."""

    def __init__(self) -> None:
        self.markers: dict[str, str] = {}

    def note(self, fast: tuple[Any, ...], full: tuple[Any, ...]) -> None:
        if fast[0] == full[0] == "reply" and fast[1]["expires_at"] != full[1]["expires_at"]:
            marker = f"stamp {len(self.markers)}"
            self.markers[fast[1]["expires_at"]] = self.markers[full[1]["expires_at"]] = marker

    def read(self, result: tuple[Any, ...]) -> tuple[Any, ...]:
        if result[0] != "reply" or result[1]["expires_at"] not in self.markers:
            return result
        return ("reply", {**result[1], "expires_at": self.markers[result[1]["expires_at"]]})


def holdings(engine: Engine) -> list[int]:
    return [engine.reserved(sku) for sku in ("A", "B", "C")]


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(requests(), min_size=1, max_size=6))
def test_every_request_gets_the_answer_of_the_full_decoder(batch: list[dict[str, Any]]) -> None:
    fast, full = stocked(), stocked()
    stamps = Stamps()
    for request in batch:
        answers = outcome(fast, request), outcome(full, FullPath(request))
        if request.get("ts") is None:
            stamps.note(*answers)
        assert stamps.read(answers[0]) == stamps.read(answers[1]), request
    if any(request.get("ts") is None for request in batch):
        # The engines' clocks differ by the microseconds between their stamps.
        assert holdings(fast) == holdings(full)
    else:
        assert fast.snapshot() == full.snapshot()
