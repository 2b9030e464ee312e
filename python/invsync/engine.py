"""The in-process allocator: contract events in, effects and shown quantities out.

A thin layer over the Rust core: it decodes (msgspec), turns strings and times into
the core's arguments, and turns what a core call did (`_core.BatchEffects`) into
contract Structs, in one place (`_applied`). Every stock, order and clock event goes
through `apply_all`, and every shown quantity through `drain_json`, the calls the
service makes; the other methods are conveniences over those two. All arithmetic and
every decision happens in the core.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeAlias, cast, get_args

import msgspec
import numpy as np
import numpy.typing as npt

from invsync import _core
from invsync.errors import BadInputError, InvsyncError, ReportedElsewhereError
from invsync.events import (
    Alert,
    AuditChange,
    Backorder,
    Batch,
    ClockTick,
    DecodeError,
    GuardRule,
    InboundEvent,
    OrderCancelled,
    OrderFulfillmentFailed,
    OrderPlaced,
    OrderReturned,
    OrderShipped,
    PriceSet,
    PromoSet,
    QtyItem,
    ReplyReason,
    ReserveRequest,
    Route,
    StockAdjust,
    StockDamaged,
    StockInbound,
    StockReceived,
    StockReleased,
    StockSet,
    StockTransfer,
    Vote,
    VoteLine,
    decode_events,
)
from invsync.explain import Explanation
from invsync.policy import Policy
from invsync.timeconv import from_micros, to_micros

EventLike: TypeAlias = InboundEvent | Batch | Mapping[str, Any]
_EVENT_TYPE: Any = InboundEvent | Batch


class DeadLetterOut(NamedTuple):
    """An order event that waited for its order (`order.placed` from another producer)
    and was refused after all: the order never came within the park window
    (`order_missing`), or it refused the event (`bad_input`)."""

    event_id: str
    event_json: bytes
    reason: str
    error: str


class Share(NamedTuple):
    """What a partition did with a reservation (`Engine.reserve_share`)."""

    #: the contract reply, when decided here
    reply: dict[str, Any] | None
    #: this partition's vote to append to the log, when it prepared its lines
    vote: Vote | None
    effects: Effects


class Effects(msgspec.Struct, kw_only=True):
    """What applying events did, for the service to publish."""

    duplicate: bool = False
    routes: list[Route] = msgspec.field(default_factory=list)
    alerts: list[Alert] = msgspec.field(default_factory=list)
    backorders: list[Backorder] = msgspec.field(default_factory=list)
    audit: list[AuditChange] = msgspec.field(default_factory=list)
    #: order ids whose holds expired
    expired: list[str] = msgspec.field(default_factory=list)
    #: the reply, when the event was a reservation request
    reply: dict[str, Any] | None = None
    #: inner events of a batch refused as bad input, as "index: reason"
    rejected: list[str] = msgspec.field(default_factory=list)
    #: order events that waited for their order and were then refused
    dead_letters: list[DeadLetterOut] = msgspec.field(default_factory=list)

    def merge(self, other: Effects) -> None:
        self.routes += other.routes
        self.alerts += other.alerts
        self.backorders += other.backorders
        self.audit += other.audit
        self.expired += other.expired
        self.rejected += other.rejected
        self.dead_letters += other.dead_letters


_ROUTE = msgspec.json.Decoder(Route)
_QTY_ITEMS = msgspec.json.Decoder(list[QtyItem])


class AppliedBatch(msgspec.Struct, kw_only=True):
    """What `Engine.apply_all` did to a batch of events."""

    #: (event index, the exception that refused it)
    refused: list[tuple[int, Exception]]
    #: indices of events already applied before (changed nothing)
    duplicates: list[int]
    #: (location, the route message's JSON) per committed line, ready to publish
    routes: list[tuple[str, bytes]]
    #: with `route_prefix`: the routes as NATS `PUB <route_prefix><location>` frames,
    #: in order (a location id that is not a plain subject token stays in `routes`)
    route_frames: bytes = b""
    alerts: list[Alert]
    backorders: list[Backorder]
    #: (event index, change): the audit trail per event
    audit: list[tuple[int, AuditChange]]
    #: order ids whose holds expired
    expired: list[str]
    #: order events set aside for an order that did not come (or that refused them)
    dead_letters: list[DeadLetterOut] = msgspec.field(default_factory=list)


#: Each event Struct by its `type`. A dict converts to its own Struct far faster than
#: to the whole union, which msgspec re-reads on every call (bench/RESULTS.md).
_BY_TYPE: dict[str, Any] = {str(cls.__struct_config__.tag): cls for cls in get_args(_EVENT_TYPE)}


_EVENT_LIST: Any = list[_EVENT_TYPE]


def _decoded(chunk: list[EventLike]) -> tuple[list[InboundEvent | Batch], BadInputError | None]:
    """The events of `chunk` decoded, up to the first one that is bad input, and why
    that one is bad (None when all are good)."""
    if all(type(event) is dict for event in chunk):
        try:
            # One conversion of the whole list costs half of one per dict.
            return msgspec.convert(chunk, _EVENT_LIST), None
        except msgspec.ValidationError:
            pass  # one of them is bad: find which, below
    good: list[InboundEvent | Batch] = []
    for event in chunk:
        try:
            good.append(_to_event(event))
        except BadInputError as exc:
            return good, exc
    return good, None


def _to_event(event: EventLike) -> InboundEvent | Batch:
    if isinstance(event, Mapping):
        kind = event.get("type")
        # An unknown or missing `type` goes to the union, which says what is wrong.
        target = _BY_TYPE.get(kind, _EVENT_TYPE) if isinstance(kind, str) else _EVENT_TYPE
        try:
            converted: InboundEvent | Batch = msgspec.convert(event, target)
            return converted
        except msgspec.ValidationError as exc:
            raise BadInputError(str(exc)) from None
    return event


#: The most events `apply_many` converts at a time (bounds the Structs it holds).
_RUN = 4096

#: An event `apply_all` takes: any inbound event but a reservation request or a batch.
AppliedEvent: TypeAlias = (
    StockSet
    | StockAdjust
    | StockReceived
    | StockReleased
    | StockDamaged
    | StockInbound
    | StockTransfer
    | OrderPlaced
    | OrderCancelled
    | OrderShipped
    | OrderFulfillmentFailed
    | OrderReturned
    | ClockTick
    | PriceSet
    | PromoSet
)
#: Those events by the kind number the core knows each by: the core's own list of kinds
#: (`_core.EVENT_KINDS`), each with its Struct.
_KIND: dict[type, int] = {_BY_TYPE[tag]: n for n, tag in enumerate(_core.EVENT_KINDS)}


class Engine:
    """Stock, reservations and shown quantities for every SKU, channel and location."""

    def __init__(
        self,
        policy: Policy,
        *,
        partition: int = 0,
        partitions: int = 1,
        _core_obj: _core.Core | None = None,
    ) -> None:
        """With `partitions` > 1 the engine applies only partition `partition`'s SKUs
        (their families' `partition_of`) and skips every other line of every event."""
        self._policy = policy
        self._partitioned = partitions > 1
        self._core = (
            _core_obj
            if _core_obj is not None
            else _core.Core(policy.tables_json(), partition, partitions)
        )
        self._names: list[tuple[str, str]] = []
        self._stale: set[str] = set()
        # What marketplaces hold for their promotions, per stock key and channel:
        # (qty, the platform's reason), as the connectors acknowledged it.
        self._holds: dict[tuple[str, str], dict[str, tuple[int, str]]] = {}
        self._protect: tuple[int, ...] = ()
        self._channel_index: dict[str, int] = {}
        # A policy change forgets what was published until the next full drain
        # republishes every quantity (see `republishing`).
        self._republish_pending = False
        self._adopt(policy)

    def _adopt(self, policy: Policy) -> None:
        tables = msgspec.json.decode(policy.tables_json())
        self._policy = policy
        self._protect = tuple(tables["protect"])
        self._channel_index = {ch: i for i, ch in enumerate(policy.channels)}
        self._stale &= set(policy.channels)
        for key in list(self._holds):
            held = {ch: h for ch, h in self._holds[key].items() if ch in self._channel_index}
            if held:
                self._holds[key] = held
            else:
                del self._holds[key]

    # ---- events ---------------------------------------------------------------------------

    def apply(self, event: EventLike) -> Effects:
        """Applies one contract event (a Struct or its dict form); raises BadInputError."""
        # Decoded events (the service's hot path) skip the conversion.
        ev = event if type(event) in _KIND else _to_event(event)
        if type(ev) in _KIND:
            return self._effects(self.apply_all([ev]))  # type: ignore[list-item]
        if isinstance(ev, ReserveRequest):
            reply, raw = self._reserve(ev)
            ts = ev.ts or datetime.now(UTC)
            fx = Effects() if raw is None else self._effects(self._applied(raw, lambda _: ts))
            fx.reply = reply
            return fx
        assert isinstance(ev, Batch)
        return self._apply_batch(ev)

    def apply_all(
        self, events: list[AppliedEvent], route_prefix: str | None = None, audit: bool = True
    ) -> AppliedBatch:
        """Applies decoded events in order in one core call, for high-rate callers.

        A refused event (BadInputError for bad input) changes nothing and the rest
        still apply; what the batch did comes back as one set of lists. A publisher
        that writes NATS frames itself passes `route_prefix` (`"inv.route."`) and
        gets the routes as ready `PUB` frames: one per committed line is too many
        to hand over as Python objects at log rates. A caller that keeps no audit
        trail passes `audit=False` and gets none.
        """
        return self._apply_events(events, route_prefix, audit=audit)

    def _apply_events(
        self,
        events: list[AppliedEvent],
        route_prefix: str | None = None,
        stop_at_refusal: bool = False,
        audit: bool = True,
    ) -> AppliedBatch:
        """`apply_all`; with `stop_at_refusal`, nothing after a refused event applies."""
        kinds = bytes([_KIND[type(e)] for e in events])
        raw = self._core.apply_events(
            events, kinds, [to_micros(e.ts) for e in events], route_prefix, stop_at_refusal
        )
        return self._applied(raw, lambda i: events[i].ts, audit)

    @staticmethod
    def _applied(
        raw: _core.BatchEffects, ts_of: Callable[[int], datetime], audit: bool = True
    ) -> AppliedBatch:
        """What a core call did, as contract Structs; `ts_of(i)` stamps event i's alerts.
        The core's records list each Struct's fields in declaration order (`_core.pyi`)."""
        return AppliedBatch(
            refused=raw.refused,
            duplicates=raw.duplicates,
            routes=raw.routes,
            alerts=[Alert(k, s, ch, d, ts_of(i)) for i, k, s, ch, d in raw.alerts],  # type: ignore[arg-type]
            backorders=[Backorder(*fields) for fields in raw.backorders],
            audit=[
                (i, AuditChange(s, cond, loc, f, was, now))
                for i, s, cond, loc, f, was, now in raw.audit
            ]
            if audit
            else [],
            expired=raw.expired,
            route_frames=raw.route_frames,
            dead_letters=[DeadLetterOut._make(fields) for fields in raw.dead_letters],
        )

    def apply_many(self, events: Iterable[EventLike]) -> Effects:
        """Applies events in order and merges their effects; stops at the first bad one.

        The first bad event raises BadInputError and changes nothing; the events
        before it stay applied, those after it are not applied. Dicts are converted
        `_RUN` at a time and consecutive stock, order and clock events go to the core
        in one call, as `apply_all` takes them: one call per event cost ten times as much.
        """
        total = Effects()
        rest = iter(events)
        while chunk := list(itertools.islice(rest, _RUN)):
            decoded, bad = _decoded(chunk)
            run: list[AppliedEvent] = []
            for ev in decoded:
                if type(ev) in _KIND:
                    run.append(ev)  # type: ignore[arg-type]
                else:
                    self._apply_run(run, total)
                    total.merge(self.apply(ev))
            self._apply_run(run, total)
            if bad is not None:
                raise bad
        return total

    def _apply_run(self, run: list[AppliedEvent], total: Effects) -> None:
        """Applies `run` up to its first refused event, merges its effects into `total`
        and empties it; raises the refusal."""
        if run:
            done = self._apply_events(run, stop_at_refusal=True)
            run.clear()
            total.merge(self._effects(done))

    def _apply_batch(self, batch: Batch) -> Effects:
        total = Effects()
        # An undecodable inner event belongs to no partition: partition 0 reports it.
        reports_whole = self.partition[0] == 0
        for i, raw in enumerate(batch.events):
            for inner in decode_events(bytes(raw)):
                if isinstance(inner, DecodeError):
                    if reports_whole:
                        total.rejected.append(f"events[{i}]: {inner.error}")
                    continue
                try:
                    total.merge(self.apply(inner))
                except ReportedElsewhereError:
                    pass
                except BadInputError as exc:
                    total.rejected.append(f"events[{i}]: {exc}")
        return total

    @staticmethod
    def _effects(done: AppliedBatch) -> Effects:
        """One call's effects; raises what refused it."""
        for _, refusal in done.refused:
            raise refusal
        return Effects(
            duplicate=bool(done.duplicates),
            routes=[_ROUTE.decode(route) for _, route in done.routes],
            alerts=done.alerts,
            backorders=done.backorders,
            audit=[change for _, change in done.audit],
            expired=done.expired,
            dead_letters=done.dead_letters,
        )

    def reserve(self, request: ReserveRequest | Mapping[str, Any]) -> dict[str, Any]:
        """Decides a reservation request; returns the contract reply. Idempotent by request_id.

        A request without `ts` is stamped with the wall clock (the service stamps it
        before it enters the log, so replays decide the same way).
        """
        req = request
        if type(req) is dict:
            # The plain shape callers build is read by the core as it is.
            done = self._core.reserve_plain(req)
            if done is not None:
                return done[0]
        # `dict` first: it is what callers pass, and it spares the slower ABC check.
        if isinstance(req, (dict, Mapping)):
            try:
                req = msgspec.convert(req, ReserveRequest)
            except msgspec.ValidationError as exc:
                raise BadInputError(str(exc)) from None
        return self._reserve(req)[0]

    def _reserve(self, req: ReserveRequest) -> tuple[dict[str, Any], _core.BatchEffects | None]:
        if self._partitioned:
            share = self.reserve_share(req)
            if share.reply is None:
                raise InvsyncError(
                    f"request {req.request_id!r} spans partitions or is another's: "
                    "it is decided through the log (reserve_share, apply_vote)"
                )
            return share.reply, None
        ts = req.ts if req.ts is not None else datetime.now(UTC)
        return self._core.reserve(
            req.request_id,
            to_micros(ts),
            req.order_id,
            req.channel,
            req.lines,
            req.hold_seconds,
        )

    def reserve_share(self, request: ReserveRequest, reply_to: str | None = None) -> Share:
        """A reservation as a partition applies it from the log: decided here when all
        its lines are this partition's (`reply`); when some are, its lines prepared
        (held) and `vote` to append to the log, the decision following from the votes
        (`apply_vote`); nothing when none are, or when it is a duplicate still waiting.
        The coordinator (the partition of the first line) keeps `reply_to` with the
        request and answers it once decided (`take_cross_answers`)."""
        ts = request.ts if request.ts is not None else datetime.now(UTC)
        outcome, reply, vote, raw = self._core.reserve_share(
            request.request_id,
            to_micros(ts),
            request.order_id,
            request.channel,
            request.lines,
            request.hold_seconds,
            reply_to,
        )
        effects = self._effects(self._applied(raw, lambda _: ts))
        if outcome != "prepared" or vote is None:
            return Share(reply, None, effects)
        partition, ok, lines = vote
        voted = [
            VoteLine(line_id=i, granted=g, reason=cast("ReplyReason | None", r))
            for i, g, r in lines
        ]
        return Share(
            None,
            Vote(request_id=request.request_id, partition=partition, ok=ok, lines=voted),
            effects,
        )

    def apply_vote(self, vote: Vote) -> Effects:
        """A vote read from the log; the first per (request, partition) counts. When it
        completes the votes, the request is decided: an abort releases this partition's
        prepared lines."""
        lines: list[tuple[str, str | None]] = [(line.line_id, line.reason) for line in vote.lines]
        raw = self._core.vote(vote.request_id, vote.partition, vote.ok, lines)
        now = self.now or datetime.now(UTC)
        return self._effects(self._applied(raw, lambda _: now))

    def take_cross_answers(self) -> list[tuple[str, str | None, str, dict[str, Any]]]:
        """Requests spanning partitions decided since the last call, that this partition
        (their coordinator) answers: (request_id, reply_to, channel, the contract reply)."""
        return self._core.take_cross_answers()

    def expire(self, now: datetime) -> list[str]:
        """Releases holds whose expires_at ≤ now; returns their order ids."""
        return self._core.expire(to_micros(now)).expired

    # ---- reading ----------------------------------------------------------------------------

    @property
    def policy(self) -> Policy:
        return self._policy

    @property
    def now(self) -> datetime | None:
        """The log's clock: only ticks (and `expire`) move it."""
        micros = self._core.now()
        return None if micros is None else from_micros(micros)

    @property
    def newest_event_time(self) -> datetime | None:
        """The newest time an applied event or tick carried: a quantity no event stands
        behind (a bundle moved by its parts) is stamped with it as its `source_ts`."""
        micros = self._core.newest_time()
        return None if micros is None else from_micros(micros)

    def _key(self, sku: str, condition: str) -> int | None:
        return self._core.lookup(sku, condition)

    def ats(self, sku: str, condition: str = "new") -> int:
        idx = self._key(sku, condition)
        return 0 if idx is None else self._core.ats(idx)

    def shown(self, sku: str, channel: str, condition: str = "new") -> int:
        ch = self._channel_index.get(channel)
        if ch is None:
            raise BadInputError(f"channel: unknown channel {channel!r}")
        idx = self._key(sku, condition)
        return 0 if idx is None else self._core.shown(idx, ch)

    def reserved(self, sku: str, condition: str = "new") -> int:
        idx = self._key(sku, condition)
        return 0 if idx is None else self._core.reserved(idx)

    def backordered(self, sku: str, condition: str = "new") -> int:
        idx = self._key(sku, condition)
        return 0 if idx is None else self._core.backordered(idx)

    def explain(self, sku: str, condition: str = "new") -> Explanation:
        idx = self._key(sku, condition)
        if idx is None:
            raise BadInputError(f"sku: no stock record for {sku!r} ({condition})")
        return Explanation(
            self._core.explain(idx),
            self._protect,
            frozenset(self._stale),
            self._holds.get((sku, condition), {}),
        )

    def key_name(self, idx: int) -> tuple[str, str]:
        """(sku, condition) of a stock-key index."""
        if idx >= len(self._names):
            self._names += self._core.key_names(len(self._names))
        return self._names[idx]

    def drain_json(
        self, per_message: int, fallback: datetime, max_keys: int | None = None
    ) -> list[tuple[str, bytes, npt.NDArray[np.uint32], npt.NDArray[np.int64]]]:
        """Changed shown quantities as wire JSON, for a publisher: per channel, pieces of
        at most `per_message` `QtyItem`s encoded and joined by commas, with their keys
        and source µs (0 where no event is behind a quantity; `fallback` is written).
        """
        names = self._policy.channels
        pieces = self._core.drain_json(per_message, to_micros(fallback), max_keys)
        if max_keys is None:
            self._republish_pending = False
        return [(names[ch], items, keys, stamps) for ch, items, keys, stamps in pieces]

    def drain_quantities(
        self, max_keys: int | None = None
    ) -> list[tuple[str, npt.NDArray[np.uint32], npt.NDArray[np.int64]]]:
        """What `drain_json` drains, as numbers: per channel, the keys whose shown
        quantity changed and their quantities. For callers that act on the numbers (a
        simulation) rather than publish them."""
        names = self._policy.channels
        groups = self._core.drain_quantities(max_keys)
        if max_keys is None:
            self._republish_pending = False
        return [(names[ch], keys, qty) for ch, keys, qty in groups]

    @property
    def republishing(self) -> bool:
        """Whether a policy change is applied but its quantities not yet drained: until
        then `published_page` shows only what was published since the change."""
        return self._republish_pending

    def published_page(
        self, channel: str, start: int, limit: int
    ) -> tuple[list[tuple[str, str, int, str | None, str | None]], int | None]:
        """What was last published on `channel`, one page: at most `limit`
        (sku, condition, qty, price, currency) from stock key `start` on, in key order,
        and the key the next page starts at (None on the last page). A key no page names
        shows 0; `price` and `currency` are the SKU's last published price on the
        channel, None when it has none."""
        ch = self._channel_index.get(channel)
        if ch is None:
            raise BadInputError(f"channel: unknown channel {channel!r}")
        return self._core.published_page(ch, start, limit)

    def drain_changes(self, max_keys: int | None = None) -> dict[str, list[QtyItem]]:
        """Per channel, the keys whose shown quantity changed since the last drain: what
        `drain_json` publishes, decoded. A quantity with no event behind it is as of the
        engine's clock.

        With `max_keys`, at most that many keys are recomputed and the rest stay dirty,
        so a bulk change is published in bounded pieces.
        """
        out: dict[str, list[QtyItem]] = {}
        fallback = self.newest_event_time or from_micros(0)
        for channel, items, _, _ in self.drain_json(sys.maxsize, fallback, max_keys):
            out.setdefault(channel, []).extend(_QTY_ITEMS.decode(b"[" + items + b"]"))
        return out

    def drain_prices(
        self, max_skus: int | None = None
    ) -> tuple[list[tuple[str, bytes]], list[Alert]]:
        """Recomputes the prices of SKUs whose price, promotions or policy moved (at most
        `max_skus` of them; the rest wait): the prices that changed and passed every
        guard, each as (channel, its `PriceUpdate` message as JSON, ready to publish),
        and a `price_guard` alert for each price a guard held back. Both are stamped
        with the engine's clock."""
        now = self.now or datetime.now(UTC)
        published, held = self._core.drain_prices(to_micros(now), max_skus)
        names = self._policy.channels
        prices = [(names[ch], body) for ch, body in published]
        alerts = [
            Alert(
                "price_guard",
                sku,
                channel,
                detail,
                now,
                rule=cast(GuardRule, rule),
                price=price,
                limit=limit,
                currency=cur,
            )
            for rule, channel, sku, price, limit, cur, detail in held
        ]
        return prices, alerts

    def drain_alerts(self) -> list[Alert]:
        """Alerts raised by drains since the last call: `pause` and `reserve_low` when a
        channel's shown quantity fell to 0 by the low-stock pause, or because only units
        protected for higher tiers remain; `sold_out_discontinued` when a discontinued
        SKU's ATS fell to 0, so its listings can be ended."""
        now = self.now or datetime.now(UTC)
        return self._applied(self._core.take_alerts(), lambda _: now).alerts

    def set_channel_stale(self, channel: str, stale: bool) -> None:
        """Marks a channel's connector feed stale (no good ack within stale_after_s).

        Explanations flag the channel, so an operator sees that its quantities may not
        have reached the marketplace."""
        if channel not in self._channel_index:
            raise BadInputError(f"channel: unknown channel {channel!r}")
        (self._stale.add if stale else self._stale.discard)(channel)

    def set_platform_hold(
        self, channel: str, sku: str, condition: str, qty: int, reason: str
    ) -> None:
        """Records what a channel's marketplace holds of a stock key for its promotions
        (0: nothing any more), as its connector reported it. Explanations show it: the
        marketplace shows at least that much whatever invsync decides."""
        if channel not in self._channel_index:
            raise BadInputError(f"channel: unknown channel {channel!r}")
        holds = self._holds.setdefault((sku, condition), {})
        if qty:
            holds[channel] = (qty, reason)
        else:
            holds.pop(channel, None)
        if not holds:
            del self._holds[(sku, condition)]

    # ---- state ------------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """The whole state, versioned and checksummed."""
        return self._core.snapshot()

    @classmethod
    def restore(
        cls, policy: Policy, data: bytes, *, partition: int = 0, partitions: int = 1
    ) -> Engine:
        """An engine from a snapshot; SnapshotError when it is corrupt or foreign."""
        core = _core.Core.restore(policy.tables_json(), data, partition, partitions)
        return cls(policy, partition=partition, partitions=partitions, _core_obj=core)

    @classmethod
    def split(
        cls, policy: Policy, snapshots: list[bytes], *, partition: int, partitions: int
    ) -> Engine:
        """Partition `partition` of `partitions`, built from the snapshots every old
        partition took at one log position (`snapshots[j]` is old partition j's): each
        SKU's state moves to its family's new partition, what the log shares is merged.
        SnapshotError when they do not fit together or a reservation spanning partitions
        still waits for votes (`undecided_requests`)."""
        core = _core.Core.split(policy.tables_json(), snapshots, partition, partitions)
        return cls(policy, partition=partition, partitions=partitions, _core_obj=core)

    def holds(self) -> dict[str, tuple[datetime, list[tuple[str, str, str, int]]]]:
        """Every live checkout hold by order id: when it expires, and its lines as
        (line id, sku, condition, units held)."""
        return {
            order_id: (from_micros(expires), lines)
            for order_id, expires, lines in self._core.holds()
        }

    def undecided_requests(self) -> list[str]:
        """Ids of the reservations spanning partitions that were prepared here and
        still wait for a vote: the log has not decided them yet."""
        return self._core.undecided_requests()

    @property
    def partition(self) -> tuple[int, int]:
        """(partition, partitions): the share of the SKUs this engine applies."""
        return self._core.partition()

    def partition_of(self, sku: str, partitions: int | None = None) -> int:
        """The partition `sku` belongs to (among this engine's partitions by default)."""
        return self._core.partition_of_sku(sku, partitions or self.partition[1])

    def check_policy(self, policy: Policy) -> None:
        """Raises PolicyError, naming the reason, when `set_policy` would refuse `policy`
        now: what a reload checks before it is appended to the log."""
        refusal = self._core.check_policy_against_state(policy.tables_json())
        if refusal is not None:
            raise policy.error_at(*refusal)

    def set_policy(self, policy: Policy) -> Effects:
        """Swaps the policy atomically; every key is re-evaluated."""
        raw = self._core.set_policy(policy.tables_json())
        self._adopt(policy)
        self._republish_pending = True
        ts = self.now or datetime.now(UTC)
        return self._effects(self._applied(raw, lambda _: ts))

    # ---- raw counters (GIL released; safe from many threads) ---------------------------------

    def index(self, sku: str, condition: str = "new") -> int:
        """The dense uint32 index of a stock key, created when new."""
        return self._core.index(sku, condition)

    def reserve_batch(
        self,
        idx: npt.NDArray[np.uint32],
        qty: npt.NDArray[np.int64],
        tier: npt.NDArray[np.uint8],
    ) -> npt.NDArray[np.bool_]:
        """Tier-aware conditional takes, in input order; True where granted."""
        return self._core.reserve_batch(idx, qty, tier)

    def release_batch(
        self, idx: npt.NDArray[np.uint32], qty: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.bool_]:
        """Gives units back; False where the key holds no counted stock."""
        return self._core.release_batch(idx, qty)

    def set_on_hand_batch(
        self,
        idx: npt.NDArray[np.uint32],
        location: str,
        on_hand: npt.NDArray[np.int64],
        *,
        event_id: str,
        ts: datetime,
    ) -> Effects:
        """A bulk cycle count at one location, as one event."""
        raw = self._core.stock_set_many(event_id, to_micros(ts), idx, location, on_hand)
        return self._effects(self._applied(raw, lambda _: ts))
