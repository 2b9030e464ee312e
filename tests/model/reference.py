"""A slow, obvious model of the engine's semantics (docs/engine.md), in plain dicts.

It is the oracle the property tests compare the engine against, so it is written to be
read, not to be fast: every event is applied to a deep copy of the state, which is kept
only when the event is valid, and every derived number is recomputed from scratch.

Covered: standard and discontinued SKUs (a discontinued one sells until zero, like a
standard one), conditions, safety (SKU > class > defaults),
tiers with nested protection, channel share/cap/buffer/pause_below/conditions,
locations with `online`, `count_pct` and `release_gate`, holds with expiry on
`clock.tick`, orders with conversion of holds, floor-0 commits, backorders filled
oldest first, shipping, cancelling and returns. A reservation line is refused as `paused` where
the channel is shown 0 for a reason other than stock: a condition the channel does not
sell, or ATS below its `pause_below`. A standard SKU before its hold date
(`sellable_from`) sells only its `preorder_limit`: shown what is left of it within
cap, reserved and ordered against it, never from stock.

Left out on purpose (they have their own example tests): bundles, preorder SKUs, the
moment a hold date passes, non-inventory SKUs, routing and failed fulfilment.
"""

from __future__ import annotations

import copy
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

Key = tuple[str, str]
"""A stock key: (sku, condition)."""

Event = Mapping[str, Any]


class RejectedEvent(Exception):
    """The event is bad input: the engine must raise BadInputError and change nothing."""


@dataclass
class OrderLine:
    key: Key
    channel: str
    reserved: int
    backordered: int = 0
    #: units sold against the preorder limit before the SKU's hold date
    preordered: int = 0
    shipped: int = 0
    returned: int = 0


@dataclass
class Hold:
    channel: str
    lines: dict[str, OrderLine]
    expires_at: datetime


@dataclass
class State:
    on_hand: dict[tuple[Key, str], int] = field(default_factory=dict)
    quarantined: dict[tuple[Key, str], int] = field(default_factory=dict)
    damaged: dict[tuple[Key, str], int] = field(default_factory=dict)
    inbound: dict[tuple[Key, str], int] = field(default_factory=dict)
    orders: dict[str, dict[str, OrderLine]] = field(default_factory=dict)
    holds: dict[str, Hold] = field(default_factory=dict)
    # (order_id, line_id) in the order the backorders were taken: filled oldest first.
    backorder_queue: list[tuple[str, str]] = field(default_factory=list)
    replies: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen_event_ids: set[str] = field(default_factory=set)
    clock: datetime | None = None


def parse_ts(text: Any) -> datetime:
    if not isinstance(text, str):
        raise RejectedEvent("ts")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise RejectedEvent("ts") from exc
    if moment.tzinfo is None:
        raise RejectedEvent("ts")
    return moment


def _quantity(event: Event, name: str) -> int:
    value = event.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise RejectedEvent(name)
    return value


def _text(event: Event, name: str) -> str:
    value = event.get(name)
    if not isinstance(value, str):
        raise RejectedEvent(name)
    return value


def _key(event: Event) -> Key:
    condition = event.get("condition", "new")
    if not isinstance(condition, str):
        raise RejectedEvent("condition")
    return (_text(event, "sku"), condition)


class ReferenceModel:
    """Applies contract events to plain dicts and answers ats/shown/reserved/backordered."""

    def __init__(self, policy: Mapping[str, Any]) -> None:
        self.policy = policy
        self.defaults: Mapping[str, Any] = policy.get("defaults", {})
        self.protect = {t["tier"]: t.get("protect", 0) for t in policy.get("tiers", [])}
        self.locations = {loc["id"]: loc for loc in policy.get("locations", [])}
        self.channels = {ch["id"]: ch for ch in policy.get("channels", [])}
        self.classes = {cl["id"]: cl for cl in policy.get("classes", [])}
        self.skus = {s["id"]: s for s in policy.get("skus", [])}
        self.state = State()

    @classmethod
    def from_toml(cls, text: str) -> ReferenceModel:
        return cls(tomllib.loads(text))

    # ---- policy resolution: SKU > class > channel/defaults -------------------------------

    def _sku_class(self, sku: str) -> Mapping[str, Any]:
        class_id = self.skus.get(sku, {}).get("class")
        return self.classes.get(class_id, {}) if class_id else {}

    def kind(self, sku: str) -> str:
        return str(self.skus.get(sku, {}).get("kind", "standard"))

    def held(self, sku: str) -> bool:
        """Before its hold date: a SKU with stock sells only its preorder limit."""
        spec = self.skus.get(sku, {})
        since = spec.get("sellable_from")
        if since is None or self.kind(sku) not in ("standard", "preorder", "bundle"):
            return False
        since = since if isinstance(since, datetime) else parse_ts(since)
        return self.state.clock is None or self.state.clock < since

    def preorder_room(self, sku: str, condition: str = "new") -> int:
        """Units of the preorder limit not yet sold (of a held SKU)."""
        limit = int(self.skus.get(sku, {}).get("preorder_limit", 0))
        return limit - sum(
            line.preordered for line in self._open_lines() if line.key == (sku, condition)
        )

    def safety(self, sku: str) -> int:
        for source in (self.skus.get(sku, {}), self._sku_class(sku), self.defaults):
            if "safety" in source:
                return int(source["safety"])
        return 0

    def channel_field(self, sku: str, channel: str, name: str, default: Any) -> Any:
        for source in (self.skus.get(sku, {}), self._sku_class(sku)):
            overrides = source.get("channels", {}).get(channel, {})
            if name in overrides:
                return overrides[name]
        return self.channels[channel].get(name, default)

    def tier(self, channel: str) -> int:
        return int(self.channels[channel]["tier"])

    def protected_above(self, tier: int) -> int:
        """Units reserved for tiers strictly better than `tier`."""
        return sum(level for t, level in self.protect.items() if t < tier)

    def floor(self, sku: str, tier: int) -> int:
        return self.safety(sku) + self.protected_above(tier)

    # ---- quantities ----------------------------------------------------------------------

    def sellable(self, sku: str, condition: str = "new") -> int:
        total = 0
        for (key, location), units in self.state.on_hand.items():
            loc = self.locations[location]
            if key == (sku, condition) and loc.get("online", True):
                total += units * loc.get("count_pct", 100) // 100
        return total

    def _open_lines(self) -> list[OrderLine]:
        held = [line for hold in self.state.holds.values() for line in hold.lines.values()]
        ordered = [line for lines in self.state.orders.values() for line in lines.values()]
        return held + ordered

    def reserved(self, sku: str, condition: str = "new") -> int:
        return sum(line.reserved for line in self._open_lines() if line.key == (sku, condition))

    def backordered(self, sku: str, condition: str = "new") -> int:
        return sum(line.backordered for line in self._open_lines() if line.key == (sku, condition))

    def avail(self, sku: str, condition: str = "new") -> int:
        return self.sellable(sku, condition) - self.reserved(sku, condition)

    def ats(self, sku: str, condition: str = "new") -> int:
        raw = (
            self.sellable(sku, condition)
            - self.reserved(sku, condition)
            - self.backordered(sku, condition)
            - self.safety(sku)
        )
        return max(0, raw)

    def pool(self, sku: str, tier: int, condition: str = "new") -> int:
        return max(0, self.ats(sku, condition) - self.protected_above(tier))

    def is_paused(self, key: Key, channel: str) -> bool:
        """Shown 0 and refused reservations: a condition the channel does not sell, or
        (past any hold date) ATS below the channel's low-stock throttle."""
        sku, condition = key
        if condition not in self.channel_field(sku, channel, "conditions", ["new"]):
            return True
        return not self.held(sku) and self.ats(sku, condition) < self.channel_field(
            sku, channel, "pause_below", 0
        )

    def shown(self, sku: str, channel: str, condition: str = "new") -> int:
        if self.is_paused((sku, condition), channel):
            return 0
        cap = self.channel_field(sku, channel, "cap", None)
        if self.held(sku):
            room = max(0, self.preorder_room(sku, condition))
            return room if cap is None else min(room, int(cap))
        share = self.channel_field(sku, channel, "share", 1.0)
        buffer = self.channel_field(sku, channel, "buffer", 0)
        pool = self.pool(sku, self.tier(channel), condition)
        quantity = max(0, math.floor(float(share) * pool) - int(buffer))
        return quantity if cap is None else min(quantity, int(cap))

    # ---- events --------------------------------------------------------------------------

    def apply(self, event: Event) -> bool:
        """Apply one event; False when it is a duplicate. Raises RejectedEvent, changing nothing."""
        event_id = _text(event, "event_id")
        if event_id in self.state.seen_event_ids:
            return False
        before = self.state
        self.state = copy.deepcopy(before)
        try:
            ts = parse_ts(event.get("ts"))
            handler = self._handlers().get(event.get("type"))  # type: ignore[arg-type]
            if handler is None:
                raise RejectedEvent("type")
            handler(event)
            if event.get("type") == "clock.tick":
                self._advance_clock(ts)
            self._fill_backorders()
            self.state.seen_event_ids.add(event_id)
        except BaseException:
            self.state = before
            raise
        return True

    def reserve(self, request: Event) -> dict[str, Any]:
        """All lines or none, tier-aware; the same request_id gets the first answer."""
        request_id = _text(request, "request_id")
        if request_id in self.state.replies:
            return self.state.replies[request_id]
        before = self.state
        self.state = copy.deepcopy(before)
        try:
            reply = self._reserve(request)
            self.state.replies[request_id] = reply
        except BaseException:
            self.state = before
            raise
        return reply

    def _handlers(self) -> dict[str, Any]:
        return {
            "stock.set": self._stock_set,
            "stock.adjust": self._stock_adjust,
            "stock.received": self._stock_received,
            "stock.released": self._stock_released,
            "stock.damaged": self._stock_damaged,
            "stock.transfer": self._stock_transfer,
            "stock.inbound": self._stock_inbound,
            "order.placed": self._order_placed,
            "order.cancelled": self._order_cancelled,
            "order.shipped": self._order_shipped,
            "order.returned": self._order_returned,
            "clock.tick": self._clock_tick,
        }

    def _location(self, event: Event, name: str = "location") -> str:
        location = _text(event, name)
        if location not in self.locations:
            raise RejectedEvent(name)
        return location

    def _channel(self, event: Event) -> str:
        channel = _text(event, "channel")
        if channel not in self.channels:
            raise RejectedEvent("channel")
        return channel

    def _move(self, bucket: dict[tuple[Key, str], int], place: tuple[Key, str], delta: int) -> None:
        after = bucket.get(place, 0) + delta
        if after < 0:
            raise RejectedEvent("qty")
        bucket[place] = after

    def _stock_set(self, event: Event) -> None:
        place = (_key(event), self._location(event))
        self.state.on_hand[place] = _quantity(event, "on_hand")

    def _stock_adjust(self, event: Event) -> None:
        place = (_key(event), self._location(event))
        delta = event.get("delta")
        if not isinstance(delta, int) or isinstance(delta, bool):
            raise RejectedEvent("delta")
        _text(event, "reason")
        self._move(self.state.on_hand, place, delta)

    def _stock_received(self, event: Event) -> None:
        location = self._location(event)
        place = (_key(event), location)
        gated = self.locations[location].get("release_gate", False)
        bucket = self.state.quarantined if gated else self.state.on_hand
        self._move(bucket, place, _quantity(event, "qty"))

    def _stock_released(self, event: Event) -> None:
        place = (_key(event), self._location(event))
        qty = _quantity(event, "qty")
        self._move(self.state.quarantined, place, -qty)
        self._move(self.state.on_hand, place, qty)

    def _stock_damaged(self, event: Event) -> None:
        place = (_key(event), self._location(event))
        qty = _quantity(event, "qty")
        self._move(self.state.on_hand, place, -qty)
        self._move(self.state.damaged, place, qty)

    def _stock_transfer(self, event: Event) -> None:
        key = _key(event)
        source = self._location(event, "from_location")
        target = self._location(event, "to_location")
        qty = _quantity(event, "qty")
        self._move(self.state.on_hand, (key, source), -qty)
        self._move(self.state.on_hand, (key, target), qty)

    def _stock_inbound(self, event: Event) -> None:
        place = (_key(event), self._location(event))
        parse_ts(event.get("eta"))
        self._move(self.state.inbound, place, _quantity(event, "qty"))

    def _order_lines(self, event: Event) -> list[tuple[str, Key, int]]:
        lines = event.get("lines")
        if not isinstance(lines, list):
            raise RejectedEvent("lines")
        return [(_text(line, "line_id"), _key(line), _quantity(line, "qty")) for line in lines]

    def _order_placed(self, event: Event) -> None:
        order_id = _text(event, "order_id")
        channel = self._channel(event)
        lines = self._order_lines(event)
        if order_id in self.state.orders:
            return  # an order already committed is a duplicate
        hold = self.state.holds.pop(order_id, None)
        # Whatever of the hold is not converted below is released by being dropped.
        unconverted = dict(hold.lines) if hold else {}
        committed: dict[str, OrderLine] = {}
        self.state.orders[order_id] = committed
        for line_id, key, qty in lines:
            held = self._take_hold_line(unconverted, line_id, key)
            if self.held(key[0]):
                # Sold against the preorder limit, over it if need be (alerted).
                committed[line_id] = OrderLine(key=key, channel=channel, reserved=0, preordered=qty)
                continue
            converted = min(qty, held)
            line = committed[line_id] = OrderLine(key=key, channel=channel, reserved=converted)
            rest = qty - converted
            take = min(rest, max(self.avail(*key), 0))
            line.reserved += take
            line.backordered = rest - take
            if line.backordered:
                self.state.backorder_queue.append((order_id, line_id))

    @staticmethod
    def _take_hold_line(unconverted: dict[str, OrderLine], line_id: str, key: Key) -> int:
        """Units held for this order line: matched by line_id, then by stock key."""
        match = line_id if line_id in unconverted and unconverted[line_id].key == key else None
        if match is None:
            match = next((lid for lid, line in unconverted.items() if line.key == key), None)
        return unconverted.pop(match).reserved if match is not None else 0

    def _order_cancelled(self, event: Event) -> None:
        order_id = _text(event, "order_id")
        if order_id not in self.state.orders:
            raise RejectedEvent("order_id")
        lines = self.state.orders[order_id]
        line_ids = event.get("line_ids")
        if line_ids is None:
            line_ids = list(lines)
        if not isinstance(line_ids, list) or any(lid not in lines for lid in line_ids):
            raise RejectedEvent("line_ids")
        for line_id in line_ids:
            del lines[line_id]
        self.state.backorder_queue = [
            entry
            for entry in self.state.backorder_queue
            if entry[0] != order_id or entry[1] in lines
        ]

    def _order_shipped(self, event: Event) -> None:
        order_id = _text(event, "order_id")
        if order_id not in self.state.orders:
            raise RejectedEvent("order_id")
        lines = event.get("lines")
        if not isinstance(lines, list):
            raise RejectedEvent("lines")
        for shipped in lines:
            line = self.state.orders[order_id].get(_text(shipped, "line_id"))
            if line is None:
                raise RejectedEvent("line_id")
            qty = _quantity(shipped, "qty")
            if qty > line.reserved:
                raise RejectedEvent("qty")
            line.reserved -= qty
            line.shipped += qty
            self._move(self.state.on_hand, (line.key, self._location(shipped)), -qty)

    def _order_returned(self, event: Event) -> None:
        """Returned units land by disposition; a known line cannot return more than it shipped."""
        location = self._location(event)
        sku = _text(event, "sku")
        qty = _quantity(event, "qty")
        buckets = {
            "inspect": self.state.quarantined,
            "restock": self.state.on_hand,
            "damaged": self.state.damaged,
        }
        bucket = buckets.get(event.get("disposition"))  # type: ignore[arg-type]
        if bucket is None:
            raise RejectedEvent("disposition")
        line = self.state.orders.get(_text(event, "order_id"), {}).get(_text(event, "line_id"))
        key: Key = (sku, "new")
        if line is not None and line.key[0] == sku:
            if line.returned + qty > line.shipped:
                raise RejectedEvent("qty")
            line.returned += qty
            key = line.key
        self._move(bucket, (key, location), qty)

    def _clock_tick(self, event: Event) -> None:
        now = parse_ts(event.get("ts"))
        for order_id, hold in list(self.state.holds.items()):
            if hold.expires_at <= now:
                del self.state.holds[order_id]

    def _advance_clock(self, ts: datetime) -> None:
        """Only the service's ticks move the clock; a producer's `ts` is data."""
        if self.state.clock is None or ts > self.state.clock:
            self.state.clock = ts

    def _producer_time(self, ts: datetime) -> datetime:
        """A producer's time no further ahead of the clock than `max_clock_skew_s`."""
        if self.state.clock is None:
            return ts
        skew = timedelta(seconds=self.defaults.get("max_clock_skew_s", 300))
        return min(ts, self.state.clock + skew)

    def _fill_backorders(self) -> None:
        """Arriving stock goes to backorders first, oldest first, at floor 0."""
        remaining: list[tuple[str, str]] = []
        for order_id, line_id in self.state.backorder_queue:
            line = self.state.orders[order_id][line_id]
            fill = min(line.backordered, max(self.avail(*line.key), 0))
            line.backordered -= fill
            line.reserved += fill
            if line.backordered:
                remaining.append((order_id, line_id))
        self.state.backorder_queue = remaining

    def _reserve(self, request: Event) -> dict[str, Any]:
        ts = self._producer_time(parse_ts(request.get("ts")))
        order_id = _text(request, "order_id")
        channel = self._channel(request)
        tier = self.tier(channel)
        hold_seconds = _quantity(request, "hold_seconds")
        held: dict[str, OrderLine] = {}
        answers = []
        for line_id, key, qty in self._order_lines(request):
            reason = None
            before_date = self.held(key[0])
            if self.is_paused(key, channel):
                reason = "paused"
            elif before_date:
                taken = sum(line.preordered for line in held.values() if line.key == key)
                if qty > self.preorder_room(*key) - taken:
                    reason = "insufficient"
            else:
                taken = sum(line.reserved for line in held.values() if line.key == key)
                if self.avail(*key) - taken - qty < self.floor(key[0], tier):
                    reason = "insufficient"
            sku, _ = key
            answers.append({"line_id": line_id, "sku": sku, "qty": qty, "reason": reason})
            held[line_id] = OrderLine(
                key=key,
                channel=channel,
                reserved=0 if before_date else qty,
                preordered=qty if before_date else 0,
            )
        ok = all(answer["reason"] is None for answer in answers)
        expires_at = ts + timedelta(seconds=hold_seconds)
        if ok:
            self.state.holds[order_id] = Hold(channel=channel, lines=held, expires_at=expires_at)
        for answer in answers:
            answer["granted"] = ok
        return {
            "ok": ok,
            "order_id": order_id,
            "lines": answers,
            "expires_at": expires_at.isoformat() if ok else None,
        }
