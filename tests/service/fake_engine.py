"""A tiny stand-in for the engine: enough semantics to test the NATS plumbing fast.

Every channel is shown sellable on hand minus reserved; orders commit down to 0
and backorder the rest; reservations are all-or-none and idempotent by
request_id. Locations must exist in the policy (else BadInputError), as in the
real engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
import numpy as np

from invsync.engine import AppliedBatch
from invsync.errors import BadInputError
from invsync.events import (
    Alert,
    AuditChange,
    Backorder,
    ClockTick,
    OrderPlaced,
    QtyItem,
    ReserveRequest,
    Route,
    StockAdjust,
    StockSet,
    encode_json,
)
from invsync.policy import Policy
from invsync.timeconv import to_micros


@dataclass
class Effects:
    duplicate: bool = False
    routes: list[Route] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    backorders: list[Backorder] = field(default_factory=list)
    audit: list[AuditChange] = field(default_factory=list)


class _State(msgspec.Struct):
    on_hand: dict[str, int] = {}
    reserved: dict[str, int] = {}
    seen: list[str] = []
    replies: dict[str, bytes] = {}
    shown: dict[str, int] = {}


class FakeEngine:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.state = _State()
        self._seen = set(self.state.seen)
        self._dirty: dict[str, datetime] = {}
        self._keys: list[str] = []
        self.stale: set[str] = set()
        self.fail_on_sku: str | None = None

    def ats(self, sku: str, condition: str = "new") -> int:
        return self._ats(sku)

    def _ats(self, sku: str) -> int:
        return max(0, self.state.on_hand.get(sku, 0) - self.state.reserved.get(sku, 0))

    def apply(self, event: Any) -> Effects:
        if event.event_id in self._seen:
            return Effects(duplicate=True)
        effects = Effects()
        if isinstance(event, StockSet | StockAdjust):
            if event.location not in self.policy.locations:
                raise BadInputError(f"location: unknown {event.location!r}")
            if getattr(event, "sku", None) == self.fail_on_sku:
                raise RuntimeError("engine bug")
            before = self.state.on_hand.get(event.sku, 0)
            after = event.on_hand if isinstance(event, StockSet) else before + event.delta
            if after < 0:
                raise BadInputError("delta: on hand would go below 0")
            self.state.on_hand[event.sku] = after
            effects.audit.append(
                AuditChange(event.sku, "new", event.location, "on_hand", before, after)
            )
            self._dirty[event.sku] = event.ts
        elif isinstance(event, OrderPlaced):
            for line in event.lines:
                take = min(line.qty, self._ats(line.sku))
                self.state.reserved[line.sku] = self.state.reserved.get(line.sku, 0) + take
                if take:
                    effects.routes.append(
                        Route(event.order_id, line.line_id, line.sku, take, "wh-3")
                    )
                if line.qty > take:
                    effects.backorders.append(
                        Backorder(
                            event.order_id,
                            line.line_id,
                            line.sku,
                            "new",
                            event.channel,
                            line.qty - take,
                        )
                    )
                    effects.alerts.append(
                        Alert("oversell", line.sku, event.channel, "backordered", event.ts)
                    )
                self._dirty[line.sku] = event.ts
        elif not isinstance(event, ClockTick):
            pass
        self._seen.add(event.event_id)
        self.state.seen.append(event.event_id)
        return effects

    def apply_all(
        self, events: list[Any], route_prefix: str | None = None, audit: bool = True
    ) -> AppliedBatch:
        # Routes always come as a list here, which a publisher takes as well as frames.
        done = AppliedBatch(
            refused=[], duplicates=[], routes=[], alerts=[], backorders=[], audit=[], expired=[]
        )
        for i, event in enumerate(events):
            try:
                fx = self.apply(event)
            except BadInputError as exc:
                done.refused.append((i, exc))
                continue
            done.routes += [(r.location, encode_json(r)) for r in fx.routes]
            done.alerts += fx.alerts
            done.backorders += fx.backorders
            if audit:
                done.audit += [(i, change) for change in fx.audit]
        return done

    def reserve(self, request: ReserveRequest) -> dict[str, Any]:
        if request.request_id in self.state.replies:
            return msgspec.json.decode(self.state.replies[request.request_id])
        ok = all(self._ats(line.sku) >= line.qty for line in request.lines)
        if ok:
            for line in request.lines:
                self.state.reserved[line.sku] = self.state.reserved.get(line.sku, 0) + line.qty
                assert request.ts is not None
                self._dirty[line.sku] = request.ts
        reply = {
            "ok": ok,
            "order_id": request.order_id,
            "lines": [
                {
                    "line_id": line.line_id,
                    "sku": line.sku,
                    "qty": line.qty,
                    "granted": ok,
                    "reason": None if ok else "insufficient",
                }
                for line in request.lines
            ],
            "expires_at": None,
        }
        self.state.replies[request.request_id] = msgspec.json.encode(reply)
        return reply

    @property
    def now(self) -> datetime | None:
        return None

    @property
    def newest_event_time(self) -> datetime | None:
        return None

    def key_name(self, index: int) -> tuple[str, str]:
        return self._keys[index], "new"

    def drain_alerts(self) -> list[Alert]:
        """This stand-in has no low-stock pause or protected tiers: never an alert."""
        return []

    def drain_prices(self) -> tuple[list[tuple[str, Any]], list[Alert]]:
        """This stand-in prices nothing."""
        return [], []

    def drain_json(
        self, per_message: int, fallback: datetime
    ) -> list[tuple[str, bytes, np.ndarray, np.ndarray]]:
        """Every channel is shown the same quantity; items encoded by msgspec."""
        items: list[tuple[QtyItem, int, int]] = []
        for sku, ts in self._dirty.items():
            qty = self._ats(sku)
            if self.state.shown.get(sku) == qty:
                continue
            self.state.shown[sku] = qty
            if sku not in self._keys:
                self._keys.append(sku)
            items.append((QtyItem(sku, "new", qty, ts), self._keys.index(sku), to_micros(ts)))
        self._dirty.clear()
        pieces = []
        for channel in self.policy.channels:
            for start in range(0, len(items), per_message):
                piece = items[start : start + per_message]
                pieces.append(
                    (
                        channel,
                        b",".join(encode_json(item) for item, _, _ in piece),
                        np.array([key for _, key, _ in piece], dtype=np.uint32),
                        np.array([micros for _, _, micros in piece], dtype=np.int64),
                    )
                )
        return pieces

    def check_policy(self, policy: Policy) -> None:
        """This stand-in keeps no per-location state a policy could strand."""

    def set_policy(self, policy: Policy) -> Effects:
        self.policy = policy
        return Effects()

    def set_channel_stale(self, channel: str, stale: bool) -> None:
        (self.stale.add if stale else self.stale.discard)(channel)

    def snapshot(self) -> bytes:
        return msgspec.msgpack.encode(self.state)

    @classmethod
    def restore(cls, policy: Policy, data: bytes) -> FakeEngine:
        engine = cls(policy)
        engine.state = msgspec.msgpack.decode(data, type=_State)
        engine._seen = set(engine.state.seen)
        return engine
