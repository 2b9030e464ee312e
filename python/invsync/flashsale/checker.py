"""The independent verdict on a run: did the service end where the inputs lead, and
did it ever promise units it did not have?

The checker replays exactly what the driver sent into its own in-process
engine, in the order sent, and never reads the service's state until the end.
Every reservation the service granted is re-decided against the replay: a
grant the replay could not cover is an oversell by reservation. Holds are
expired by the time each answer arrives, no later than the service's clock
ticks did it, so the replay never has less room than the service had. Shown
quantities under automatic buffers follow sales rates in the service's log time,
which the replay cannot reproduce tick for tick: they are not compared.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from invsync.errors import BadInputError
from invsync.events import (
    ClockTick,
    DecodeError,
    InboundEvent,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    ReserveRequest,
    decode_events,
    decode_reserve,
)

if TYPE_CHECKING:
    from invsync.engine import Engine

Body = dict[str, Any]
COMPARED_FIELDS = ("on_hand", "reserved", "backordered", "ats")


@dataclass(frozen=True)
class SkuState:
    """The numbers of one SKU that the run must agree on."""

    on_hand: int
    reserved: int
    backordered: int
    ats: int
    shown: Mapping[str, int]

    @classmethod
    def from_explain(cls, data: Mapping[str, Any]) -> SkuState:
        """Read the explanation JSON (`inv.query.sku`, `Engine.explain().to_dict()`)."""
        return cls(
            on_hand=int(data["on_hand"]),
            reserved=int(data["reserved"]),
            backordered=int(data["backordered"]),
            ats=int(data["ats"]),
            shown={str(c["channel"]): int(c["shown"]) for c in data.get("channels", ())},
        )


@dataclass(frozen=True)
class Discrepancy:
    """One number where the service and the replay disagree (None: missing)."""

    sku: str
    field: str
    expected: int | None
    observed: int | None

    def __str__(self) -> str:
        if self.field == "present":
            return f"{self.sku}: the service gave no explanation for it"
        return f"{self.sku} {self.field}: expected {self.expected}, service has {self.observed}"


@dataclass(frozen=True)
class BackorderCause:
    """Units of post-sale orders that stock could not cover, per channel and SKU."""

    channel: str
    sku: str
    units: int
    orders: int
    cause: str = "sold on the channel after stock ran out"


@dataclass
class Verdict:
    """The checker's result; `ok` is what decides the exit code."""

    discrepancies: list[Discrepancy] = field(default_factory=list)
    oversold_by_reservation: dict[str, int] = field(default_factory=dict)
    backorders: list[BackorderCause] = field(default_factory=list)
    skus_checked: int = 0
    rejected_events: int = 0

    @property
    def oversold_units(self) -> int:
        return sum(self.oversold_by_reservation.values())

    @property
    def ok(self) -> bool:
        return not self.discrepancies and self.oversold_units == 0

    def problems(self, limit: int = 10) -> list[str]:
        """Human lines naming the first problems found."""
        lines = [
            f"{sku}: {units} unit(s) granted by reservation beyond what was available"
            for sku, units in sorted(self.oversold_by_reservation.items())
            if units
        ]
        lines += [str(d) for d in self.discrepancies]
        return lines[:limit]


def compare(
    expected: Mapping[str, SkuState], observed: Mapping[str, SkuState | None]
) -> list[Discrepancy]:
    """Every field of every expected SKU that the service reports differently."""
    found: list[Discrepancy] = []
    for sku, want in sorted(expected.items()):
        got = observed.get(sku)
        if got is None:
            found.append(Discrepancy(sku, "present", 1, None))
            continue
        for name in COMPARED_FIELDS:
            if getattr(want, name) != getattr(got, name):
                found.append(Discrepancy(sku, name, getattr(want, name), getattr(got, name)))
        for channel in sorted(set(want.shown) | set(got.shown)):
            if want.shown.get(channel) != got.shown.get(channel):
                name = f"shown[{channel}]"
                found.append(
                    Discrepancy(sku, name, want.shown.get(channel), got.shown.get(channel))
                )
    return found


def reserved_beyond_stock(observed: Mapping[str, SkuState | None]) -> dict[str, int]:
    """Units the service holds reserved beyond the sellable on hand, per SKU."""
    return {
        sku: state.reserved - state.on_hand
        for sku, state in observed.items()
        if state is not None and state.reserved > state.on_hand
    }


def parse_ts(text: str) -> datetime:
    """An RFC 3339 time as a timezone-aware datetime."""
    return datetime.fromisoformat(text)


class Checker:
    """Replays what was sent; judges the service's answers and final state."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._oversold: Counter[str] = Counter()
        self._backordered: Counter[tuple[str, str]] = Counter()
        self._backorder_orders: dict[tuple[str, str], set[str]] = {}
        self.rejected = 0

    def sent(self, payload: bytes) -> None:
        """A message the driver published, decoded as the service decodes it."""
        for event in decode_events(payload):
            if isinstance(event, DecodeError | ReserveRequest | ClockTick):
                self.rejected += 1
                continue
            self._apply(event)

    def _apply(self, event: InboundEvent) -> None:
        try:
            effects = self._engine.apply(event)
        except BadInputError:
            # The service dead-letters the same event and changes nothing either.
            self.rejected += 1
            return
        for backorder in effects.backorders:
            key = (backorder.channel, backorder.sku)
            self._backordered[key] += backorder.qty
            self._backorder_orders.setdefault(key, set()).add(backorder.order_id)

    def answered(self, payload: bytes, reply: Body, decided_by: datetime) -> None:
        """A reservation request the driver sent and the service's reply, received at
        `decided_by`: holds due by then are expired first, which is never later than
        the service's own clock ticks did it.
        """
        request = decode_reserve(payload)
        self._engine.expire(decided_by)
        mine = self._engine.reserve(request)
        if reply.get("ok"):
            if not mine["ok"]:
                for line in request.lines:
                    self._oversold[line.sku] += line.qty
        elif mine["ok"]:
            # The service refused where the replay had room (its clock tick had not
            # yet expired an old hold): follow the service, so the replay never
            # holds units the service gave to someone else.
            self._release(request)

    def _release(self, request: ReserveRequest) -> None:
        # Convert the hold into an order and cancel it: releases exactly the held units.
        lines = [
            OrderLine(line_id=line.line_id, sku=line.sku, qty=line.qty, condition=line.condition)
            for line in request.lines
        ]
        assert request.ts is not None
        event_id = f"{request.request_id}-refused-by-service"
        self._apply(
            OrderPlaced(
                event_id=f"{event_id}-placed",
                ts=request.ts,
                order_id=request.order_id,
                channel=request.channel,
                lines=lines,
            )
        )
        self._apply(
            OrderCancelled(
                event_id=f"{event_id}-cancelled", ts=request.ts, order_id=request.order_id
            )
        )

    def ats(self, sku: str) -> int:
        """The replay's ATS now (reserve depletion is computed from it)."""
        return self._engine.ats(sku)

    def expected(self, skus: Iterable[str], settled_at: datetime) -> dict[str, SkuState]:
        """The replay's final numbers, once every hold due by `settled_at` has expired."""
        self._engine.expire(settled_at)
        return {sku: SkuState.from_explain(self._engine.explain(sku).to_dict()) for sku in skus}

    def _comparable(self, state: SkuState) -> SkuState:
        """`state` without the shown quantities of channels with automatic buffers: those
        follow sales rates on the service's clock ticks, which the replay never sees."""
        automatic = self._engine.policy.auto_buffered_channels()
        shown = {ch: qty for ch, qty in state.shown.items() if ch not in automatic}
        return replace(state, shown=shown)

    def verdict(
        self, expected: Mapping[str, SkuState], observed: Mapping[str, SkuState | None]
    ) -> Verdict:
        oversold = Counter(self._oversold)
        oversold.update(reserved_beyond_stock(observed))
        expected = {sku: self._comparable(state) for sku, state in expected.items()}
        observed = {
            sku: None if state is None else self._comparable(state)
            for sku, state in observed.items()
        }
        backorders = [
            BackorderCause(channel, sku, units, len(self._backorder_orders[(channel, sku)]))
            for (channel, sku), units in sorted(self._backordered.items())
        ]
        return Verdict(
            discrepancies=compare(expected, observed),
            oversold_by_reservation=dict(oversold),
            backorders=backorders,
            skus_checked=len(expected),
            rejected_events=self.rejected,
        )
