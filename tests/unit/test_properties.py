"""Random event sequences drive the engine and the reference model side by side.

After every step the engine's ATS, shown quantities, reserved and backordered units must
equal the model's, and the invariants of the design hold: reservations never oversell or
break a tier floor, units are conserved, every event counts once, no channel is shown more
than its pool or cap, a snapshot restores the same state and future, and bad input raises
BadInputError without changing anything.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invsync import Engine, Policy
from invsync.errors import BadInputError
from tests.model.reference import Key, ReferenceModel, RejectedEvent, parse_ts

POLICY = """
[defaults]
safety = 1

[[tiers]]
tier = 1
protect = 0

[[tiers]]
tier = 2
protect = 3

[[tiers]]
tier = 3
protect = 2

[[locations]]
id = "wh-1"
kind = "warehouse"
priority = 1
release_gate = true

[[locations]]
id = "ds-1"
kind = "dropship"
priority = 2
count_pct = 50

[[locations]]
id = "store-1"
kind = "store"
priority = 3
online = false

[[channels]]
id = "shopify"
tier = 1
pause_below = 2
conditions = ["new", "used"]

[[channels]]
id = "amazon"
tier = 2
share = 0.75
cap = 8
buffer = 1
pause_below = 4

[[channels]]
id = "ebay"
tier = 3
share = 0.5

[[classes]]
id = "bestseller"
safety = 2
channels = { amazon = { buffer = 2 } }

[[skus]]
id = "A"
class = "bestseller"

[[skus]]
id = "B"
safety = 0
channels = { ebay = { cap = 3 } }

[[skus]]
id = "C"
kind = "discontinued"

[[skus]]
id = "D"
sellable_from = "2027-06-01T00:00:00Z"
preorder_limit = 4
"""

SKUS = ("A", "B", "C", "D")  # D is before its hold date for the whole of every run
CONDITIONS = ("new", "used")
LOCATIONS = ("wh-1", "ds-1", "store-1")
CHANNELS = ("shopify", "amazon", "ebay")
START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

PROPERTY_SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

Action = tuple[str, dict[str, Any]]
"""("event", event) for Engine.apply, ("reserve", request) for Engine.reserve."""


def new_policy() -> Policy:
    return Policy.from_toml(POLICY, source="properties.toml")


def new_engine() -> Engine:
    return Engine(new_policy())


def new_model() -> ReferenceModel:
    return ReferenceModel.from_toml(POLICY)


@dataclass
class Scenario:
    """Draws the next action from what the model currently holds, so orders that exist
    get shipped and cancelled, and holds get converted."""

    model: ReferenceModel
    now: datetime = START
    ids: Iterator[int] = field(default_factory=itertools.count)
    sent: list[Action] = field(default_factory=list)

    def stamp(self) -> str:
        return self.now.isoformat().replace("+00:00", "Z")

    def event(self, kind: str, **fields: Any) -> Action:
        return "event", {
            "type": kind,
            "event_id": f"e-{next(self.ids)}",
            "ts": self.stamp(),
            **fields,
        }

    def draw(self, data: st.DataObject) -> Action:
        self.now += timedelta(seconds=data.draw(st.integers(0, 90), label="seconds"))
        makers = ["stock_set"] * 3 + ["stock_change", "stock_transfer", "stock_inbound"]
        makers += ["new_order", "reserve", "reserve", "reserve", "clock_tick", "bad_event"]
        if self.model.state.holds:
            makers.append("convert_hold")
        if self.open_lines():
            makers += ["cancel", "ship", "ship", "replace_order"]
        if self.shipped_lines():
            makers += ["return_goods", "return_goods"]
        if self.sent:
            makers.append("redeliver")
        maker: Callable[[st.DataObject], Action] = getattr(
            self, data.draw(st.sampled_from(makers), label="action")
        )
        action = maker(data)
        self.sent.append(action)
        return action

    def redeliver(self, data: st.DataObject) -> Action:
        """An action sent before, sent again unchanged (at-least-once delivery)."""
        return data.draw(st.sampled_from(self.sent), label="redelivered")

    def open_lines(self) -> list[tuple[str, str]]:
        return [
            (order_id, line_id)
            for order_id, lines in sorted(self.model.state.orders.items())
            for line_id, line in sorted(lines.items())
            if line.reserved or line.backordered or line.preordered
        ]

    def shipped_lines(self) -> list[tuple[str, str]]:
        return [
            (order_id, line_id)
            for order_id, lines in sorted(self.model.state.orders.items())
            for line_id, line in sorted(lines.items())
            if line.shipped > line.returned
        ]

    def place(self, data: st.DataObject) -> dict[str, Any]:
        return {
            "sku": data.draw(st.sampled_from(SKUS), label="sku"),
            "condition": data.draw(st.sampled_from(CONDITIONS), label="condition"),
            "location": data.draw(st.sampled_from(LOCATIONS), label="location"),
        }

    def stock_set(self, data: st.DataObject) -> Action:
        on_hand = data.draw(st.integers(0, 40), label="on_hand")
        return self.event("stock.set", on_hand=on_hand, **self.place(data))

    def stock_change(self, data: st.DataObject) -> Action:
        kind = data.draw(
            st.sampled_from(["stock.received", "stock.released", "stock.damaged", "stock.adjust"])
        )
        if kind == "stock.adjust":
            delta = data.draw(st.integers(-6, 10), label="delta")
            return self.event(kind, delta=delta, reason="count", **self.place(data))
        return self.event(kind, qty=data.draw(st.integers(0, 8), label="qty"), **self.place(data))

    def stock_transfer(self, data: st.DataObject) -> Action:
        source, target = data.draw(st.permutations(LOCATIONS), label="route")[:2]
        return self.event(
            "stock.transfer",
            sku=data.draw(st.sampled_from(SKUS), label="sku"),
            condition=data.draw(st.sampled_from(CONDITIONS), label="condition"),
            from_location=source,
            to_location=target,
            qty=data.draw(st.integers(0, 6), label="qty"),
        )

    def stock_inbound(self, data: st.DataObject) -> Action:
        qty = data.draw(st.integers(0, 10), label="qty")
        return self.event("stock.inbound", qty=qty, eta=self.stamp(), **self.place(data))

    def lines(self, data: st.DataObject, with_condition: bool) -> list[dict[str, Any]]:
        skus = data.draw(st.lists(st.sampled_from(SKUS), min_size=1, max_size=2, unique=True))
        lines = []
        for number, sku in enumerate(skus, start=1):
            line: dict[str, Any] = {"line_id": str(number), "sku": sku}
            line["qty"] = data.draw(st.integers(1, 3), label="qty")
            if with_condition:
                line["condition"] = data.draw(st.sampled_from(CONDITIONS), label="condition")
            lines.append(line)
        return lines

    def new_order(self, data: st.DataObject) -> Action:
        channel = data.draw(st.sampled_from(CHANNELS), label="channel")
        lines = self.lines(data, with_condition=True)
        return self.event(
            "order.placed", order_id=f"o-{next(self.ids)}", channel=channel, lines=lines
        )

    def convert_hold(self, data: st.DataObject) -> Action:
        order_id = data.draw(st.sampled_from(sorted(self.model.state.holds)), label="hold")
        hold = self.model.state.holds[order_id]
        lines: list[dict[str, Any]] = []
        for line_id, held in sorted(hold.lines.items()):
            if data.draw(st.booleans(), label="keep line") or not lines:
                qty = max(1, held.reserved + data.draw(st.integers(-1, 1), label="qty change"))
                sku, condition = held.key
                lines.append({"line_id": line_id, "sku": sku, "condition": condition, "qty": qty})
        return self.event("order.placed", order_id=order_id, channel=hold.channel, lines=lines)

    def replace_order(self, data: st.DataObject) -> Action:
        """An order_id already committed, placed again under a new event_id: a duplicate."""
        order_id, _ = data.draw(st.sampled_from(self.open_lines()), label="line")
        lines = self.lines(data, with_condition=False)
        return self.event("order.placed", order_id=order_id, channel="shopify", lines=lines)

    def cancel(self, data: st.DataObject) -> Action:
        order_id, line_id = data.draw(st.sampled_from(self.open_lines()), label="line")
        if data.draw(st.booleans(), label="whole order"):
            return self.event("order.cancelled", order_id=order_id)
        return self.event("order.cancelled", order_id=order_id, line_ids=[line_id])

    def ship(self, data: st.DataObject) -> Action:
        order_id, line_id = data.draw(st.sampled_from(self.open_lines()), label="line")
        reserved = self.model.state.orders[order_id][line_id].reserved
        shipped = {
            "line_id": line_id,
            "qty": data.draw(st.integers(0, reserved + 1), label="qty"),
            # mostly from the warehouse the opening stock is in, so most shipments are valid
            "location": data.draw(st.sampled_from(("wh-1", "wh-1", *LOCATIONS)), label="location"),
        }
        return self.event("order.shipped", order_id=order_id, lines=[shipped])

    def return_goods(self, data: st.DataObject) -> Action:
        order_id, line_id = data.draw(st.sampled_from(self.shipped_lines()), label="line")
        line = self.model.state.orders[order_id][line_id]
        return self.event(
            "order.returned",
            order_id=order_id,
            line_id=line_id,
            sku=line.key[0],
            location=data.draw(st.sampled_from(LOCATIONS), label="location"),
            qty=data.draw(st.integers(0, line.shipped - line.returned + 1), label="qty"),
            disposition=data.draw(st.sampled_from(["inspect", "restock", "damaged"])),
        )

    def reserve(self, data: st.DataObject) -> Action:
        number = next(self.ids)
        return "reserve", {
            "type": "reserve",
            "request_id": f"r-{number}",
            "order_id": f"h-{number}",
            "channel": data.draw(st.sampled_from(CHANNELS), label="channel"),
            "ts": self.stamp(),
            "lines": self.lines(data, with_condition=True),
            "hold_seconds": data.draw(st.integers(0, 120), label="hold_seconds"),
        }

    def clock_tick(self, data: st.DataObject) -> Action:
        return self.event("clock.tick")

    def bad_event(self, data: st.DataObject) -> Action:
        place = self.place(data)
        bad: list[Action] = [
            self.event("stock.set", on_hand=-1, **place),
            self.event("stock.set", on_hand="7", **place),
            self.event("stock.set", **{**place, "location": "nowhere"}, on_hand=3),
            self.event("stock.received", **place),
            self.event("stock.adjust", delta=-10_000, reason="shrink", **place),
            self.event("stock.released", qty=10_000, **place),
            self.event("stock.teleported", qty=1, **place),
            self.event(
                "order.placed",
                order_id=f"o-{next(self.ids)}",
                channel="nowhere",
                lines=[{"line_id": "1", "sku": "A", "qty": 1}],
            ),
            self.event(
                "order.placed",
                order_id=f"o-{next(self.ids)}",
                channel="shopify",
                lines=[{"line_id": "1", "sku": "A", "qty": -2}],
            ),
        ]
        return data.draw(st.sampled_from(bad), label="bad event")


def observe(engine: Engine) -> dict[str, int]:
    """Every number the model also computes, keyed so a mismatch reads clearly."""
    numbers: dict[str, int] = {}
    for sku, condition in itertools.product(SKUS, CONDITIONS):
        numbers[f"{sku}/{condition} ats"] = engine.ats(sku, condition=condition)
        numbers[f"{sku}/{condition} reserved"] = engine.reserved(sku, condition=condition)
        numbers[f"{sku}/{condition} backordered"] = engine.backordered(sku, condition=condition)
        for channel in CHANNELS:
            numbers[f"{sku}/{condition} shown {channel}"] = engine.shown(
                sku, channel, condition=condition
            )
    return numbers


def expect(model: ReferenceModel) -> dict[str, int]:
    numbers: dict[str, int] = {}
    for sku, condition in itertools.product(SKUS, CONDITIONS):
        numbers[f"{sku}/{condition} ats"] = model.ats(sku, condition)
        numbers[f"{sku}/{condition} reserved"] = model.reserved(sku, condition)
        numbers[f"{sku}/{condition} backordered"] = model.backordered(sku, condition)
        for channel in CHANNELS:
            numbers[f"{sku}/{condition} shown {channel}"] = model.shown(sku, channel, condition)
    return numbers


def perform(engine: Engine, action: Action) -> dict[str, Any] | None:
    """Apply an action to the engine; the reserve reply, if it was a request."""
    kind, body = action
    if kind == "reserve":
        return engine.reserve(body)
    engine.apply(body)
    return None


def step_both(engine: Engine, model: ReferenceModel, action: Action) -> bool:
    """Apply one action to both; False when it was bad input (and both refused it)."""
    kind, body = action
    try:
        expected_reply = model.reserve(body) if kind == "reserve" else model.apply(body)
    except RejectedEvent:
        before = observe(engine)
        with pytest.raises(BadInputError):
            perform(engine, action)
        assert observe(engine) == before, f"bad input changed state: {body}"
        return False
    reply = perform(engine, action)
    if kind == "reserve":
        assert reply is not None and isinstance(expected_reply, dict)
        assert reply["ok"] is expected_reply["ok"], f"reserve disagrees: {body}"
        if reply["ok"]:
            assert parse_ts(reply["expires_at"]) == parse_ts(expected_reply["expires_at"])
    return True


def start(data: st.DataObject) -> tuple[Engine, ReferenceModel, Scenario]:
    """A fresh engine and model, both given the same opening stock of new units at wh-1."""
    engine, model = new_engine(), new_model()
    scenario = Scenario(model)
    for sku in SKUS:
        on_hand = data.draw(st.integers(0, 40), label=f"opening {sku}")
        step_both(
            engine, model, scenario.event("stock.set", sku=sku, location="wh-1", on_hand=on_hand)
        )
    # The engine shows only keys it has a record of, and a held key is shown its preorder
    # limit, stock or not: give the held SKU's other condition a record from the start.
    opening = scenario.event("stock.set", sku="D", condition="used", location="wh-1", on_hand=0)
    step_both(engine, model, opening)
    return engine, model, scenario


def run(data: st.DataObject, steps: int = 25) -> Iterator[tuple[Engine, ReferenceModel, Action]]:
    """Yield after each step of a random sequence applied to a fresh engine and model."""
    engine, model, scenario = start(data)
    for _ in range(data.draw(st.integers(1, steps), label="steps")):
        action = scenario.draw(data)
        step_both(engine, model, action)
        yield engine, model, action


@PROPERTY_SETTINGS
@given(st.data())
def test_engine_matches_reference_model_after_every_step(data: st.DataObject) -> None:
    for engine, model, action in run(data):
        assert observe(engine) == expect(model), f"after {action}"


@PROPERTY_SETTINGS
@given(st.data())
def test_every_event_applied_twice_has_the_effect_of_once(data: st.DataObject) -> None:
    engine, model, scenario = start(data)
    for _ in range(data.draw(st.integers(1, 25), label="steps")):
        action = scenario.draw(data)
        if not step_both(engine, model, action):
            continue
        kind, body = action
        if kind == "reserve":
            again = engine.reserve(body)
            assert again["ok"] is model.state.replies[body["request_id"]]["ok"]
            assert engine.reserve(body) == again
        else:
            assert engine.apply(body).duplicate is True
        assert observe(engine) == expect(model), f"after {action} twice"


@PROPERTY_SETTINGS
@given(st.data())
def test_bad_input_raises_and_changes_nothing(data: st.DataObject) -> None:
    for engine, model, _ in run(data, steps=15):
        bad = Scenario(model, now=START, ids=itertools.count(10_000)).bad_event(data)
        with pytest.raises(RejectedEvent):
            model.apply(bad[1])
        before = observe(engine)
        with pytest.raises(BadInputError):
            engine.apply(bad[1])
        assert observe(engine) == before, f"bad input changed state: {bad}"


@PROPERTY_SETTINGS
@given(st.data())
def test_reservations_never_oversell_nor_break_tier_floors(data: st.DataObject) -> None:
    backordered = 0
    asked: set[str] = set()  # a redelivered request is answered from memory, not re-checked
    for engine, model, (kind, body) in run(data):
        now_backordered = sum(
            engine.backordered(sku, condition=c) for sku, c in itertools.product(SKUS, CONDITIONS)
        )
        if body.get("type") != "order.placed":
            assert now_backordered <= backordered, f"{body} created a backorder"
        backordered = now_backordered
        if kind != "reserve" or body["request_id"] in asked:
            continue
        asked.add(body["request_id"])
        if model.state.replies[body["request_id"]]["ok"]:
            tier = model.tier(body["channel"])
            for line in body["lines"]:
                if model.held(line["sku"]):
                    continue  # sold against its preorder limit: it took no stock
                explained = engine.explain(line["sku"], condition=line["condition"]).to_dict()
                avail = explained["on_hand"] - explained["reserved"]
                assert avail >= model.floor(line["sku"], tier) >= 0, f"after {body}"


@PROPERTY_SETTINGS
@given(st.data())
def test_no_channel_is_shown_more_than_its_pool_or_cap(data: st.DataObject) -> None:
    for engine, model, _ in run(data):
        for sku, condition, channel in itertools.product(SKUS, CONDITIONS, CHANNELS):
            shown = engine.shown(sku, channel, condition=condition)
            pool = engine.ats(sku, condition=condition) - model.protected_above(model.tier(channel))
            if model.held(sku):  # before its hold date, the preorder limit is its pool
                pool = model.preorder_room(sku, condition)
            assert 0 <= shown <= max(0, pool)
            cap = model.channel_field(sku, channel, "cap", None)
            assert cap is None or shown <= cap


def stock_record(engine: Engine, sku: str, condition: str) -> dict[str, Any]:
    """The explain JSON of a stock key; all zeros for a key the engine has never seen."""
    try:
        return engine.explain(sku, condition=condition).to_dict()
    except BadInputError:
        return {"locations": [], "quarantined": 0, "damaged": 0}


def location_on_hand(engine: Engine, sku: str, condition: str, location: str) -> int:
    explained = stock_record(engine, sku, condition)
    at = [loc["on_hand"] for loc in explained["locations"] if loc["location"] == location]
    return int(sum(at))


def units_held(engine: Engine, sku: str, condition: str) -> int:
    """On hand everywhere, quarantined and damaged: every place a received unit can be."""
    explained = stock_record(engine, sku, condition)
    on_hand = sum(int(location["on_hand"]) for location in explained["locations"])
    return on_hand + int(explained["quarantined"]) + int(explained["damaged"])


def units_moved_in(engine: Engine, model: ReferenceModel, action: Action) -> dict[Key, int]:
    """Units an action brings into the building (received, adjusted, counted, returned) or ships out,
    read before the action is applied."""
    kind, body = action
    if kind == "reserve":
        return {}
    key = (body.get("sku", ""), body.get("condition", "new"))
    if body["type"] == "stock.received":
        return {key: body["qty"]}
    if body["type"] == "order.returned":
        line = model.state.orders[body["order_id"]][body["line_id"]]
        return {line.key: body["qty"]}
    if body["type"] == "stock.adjust":
        return {key: body["delta"]}
    if body["type"] == "stock.set":
        return {key: body["on_hand"] - location_on_hand(engine, *key, body["location"])}
    if body["type"] == "order.shipped":
        lines = model.state.orders[body["order_id"]]
        return {lines[s["line_id"]].key: -s["qty"] for s in body["lines"]}
    return {}


@PROPERTY_SETTINGS
@given(st.data())
def test_units_are_conserved_between_receipts_adjustments_shipments_and_returns(
    data: st.DataObject,
) -> None:
    engine, model, scenario = start(data)
    keys = list(itertools.product(SKUS, CONDITIONS))
    expected = {key: units_held(engine, *key) for key in keys}
    for _ in range(data.draw(st.integers(1, 25), label="steps")):
        action = scenario.draw(data)
        moved = units_moved_in(engine, model, action) if is_new_and_valid(model, action) else {}
        step_both(engine, model, action)
        for key, units in moved.items():
            expected[key] += units
        assert {key: units_held(engine, *key) for key in keys} == expected, f"after {action}"


def is_valid(model: ReferenceModel, action: Action) -> bool:
    """Whether the model would accept the action, asked on a throwaway copy."""
    trial = copy.deepcopy(model)
    try:
        trial.reserve(action[1]) if action[0] == "reserve" else trial.apply(action[1])
    except RejectedEvent:
        return False
    return True


def is_new_and_valid(model: ReferenceModel, action: Action) -> bool:
    """Whether the action would change the model: valid and not seen before."""
    kind, body = action
    seen = model.state.replies if kind == "reserve" else model.state.seen_event_ids
    seen_id = body["request_id"] if kind == "reserve" else body["event_id"]
    return seen_id not in seen and is_valid(model, action)


@PROPERTY_SETTINGS
@given(st.data())
def test_restored_snapshot_has_the_same_state_and_the_same_future(data: st.DataObject) -> None:
    engine, model, scenario = start(data)
    applied: list[Action] = []
    for _ in range(data.draw(st.integers(0, 15), label="steps before")):
        action = scenario.draw(data)
        if step_both(engine, model, action):
            applied.append(action)
    restored = Engine.restore(new_policy(), engine.snapshot())
    assert observe(restored) == observe(engine)
    for kind, body in applied:  # what was applied before the snapshot stays applied once
        if kind == "reserve":
            assert restored.reserve(body)["ok"] is model.state.replies[body["request_id"]]["ok"]
        else:
            assert restored.apply(body).duplicate is True, f"applied again: {body}"
    assert observe(restored) == observe(engine)
    for _ in range(data.draw(st.integers(1, 15), label="steps after")):
        action = scenario.draw(data)
        twin = copy.deepcopy(model)
        step_both(engine, model, action)
        step_both(restored, twin, action)
        assert observe(restored) == observe(engine) == expect(model), f"after {action}"


HOT_STOCK = 1_000
THREADS = 8
ATTEMPTS_PER_THREAD = 100_000
CHUNK = 1_000


def test_threads_hammering_one_hot_sku_get_exactly_its_stock() -> None:
    engine = new_engine()
    engine.apply(
        {
            "type": "stock.set",
            "event_id": "hot",
            "ts": "2026-11-23T10:00:00Z",
            "sku": "B",
            "location": "ds-1",
            "on_hand": 2 * HOT_STOCK,
        }
    )  # ds-1 counts 50 %: 1,000 sellable; B has no safety
    index = np.full(CHUNK, engine.index("B", "new"), dtype=np.uint32)
    qty = np.ones(CHUNK, dtype=np.int64)
    tier = np.ones(CHUNK, dtype=np.uint8)
    granted = [0] * THREADS
    start = threading.Barrier(THREADS)

    def hammer(worker: int) -> None:
        start.wait()
        for _ in range(ATTEMPTS_PER_THREAD // CHUNK):
            granted[worker] += int(engine.reserve_batch(index, qty, tier).sum())

    workers = [threading.Thread(target=hammer, args=(n,)) for n in range(THREADS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert not any(worker.is_alive() for worker in workers)
    assert sum(granted) == HOT_STOCK
    assert engine.ats("B") == 0
    assert engine.explain("B").to_dict()["reserved"] == HOT_STOCK
