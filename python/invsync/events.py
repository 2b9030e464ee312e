"""The wire contract as msgspec Structs: every message invsync reads or writes.

Inbound events share the `Event` base and form one tagged union on `type`, so a
single decode both parses and validates. `proto/` is generated from these Structs,
so the docstrings and field descriptions here are the published documentation.
Wire Structs ignore unknown fields: producers may add fields without breaking us.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Final, Literal, TypeAlias, cast

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from invsync._core import DEFAULT_HOLD_SECONDS, MAX_HOLD_SECONDS
from invsync.errors import BadInputError

I64_MAX: Final = 2**63 - 1
I64_MIN: Final = -(2**63)

Qty = Annotated[int, Meta(ge=0, le=I64_MAX, description="Units, an integer >= 0 (64-bit).")]
PositiveQty = Annotated[int, Meta(ge=1, le=I64_MAX, description="Units, an integer >= 1.")]
Delta = Annotated[int, Meta(ge=I64_MIN, le=I64_MAX, description="Signed change in units (64-bit).")]
Timestamp = Annotated[datetime, Meta(tz=True, description="RFC 3339 time with a time zone.")]
EventId = Annotated[
    str, Meta(min_length=1, description="Unique per producer; used for de-duplication.")
]
Sku = Annotated[str, Meta(min_length=1, description="Stock keeping unit a channel lists.")]
Condition = Annotated[
    str, Meta(min_length=1, description="Stock condition; stock of one never counts for another.")
]
LocationId = Annotated[str, Meta(min_length=1, description="Location id from the policy.")]
ChannelId = Annotated[str, Meta(min_length=1, description="Sales channel id from the policy.")]
OrderId = Annotated[str, Meta(min_length=1, description="Order id, unique across channels.")]
LineId = Annotated[str, Meta(min_length=1, description="Order line id, unique within the order.")]


class Event(Struct, frozen=True, kw_only=True, tag_field="type", gc=False):
    """Common envelope of every logged event: `type`, `event_id` and `ts`."""

    event_id: EventId
    ts: Annotated[Timestamp, Meta(description="When the producer saw the change.")]


# Stock events: subject {prefix}.stock.<location>


class StockSet(Event, tag="stock.set", frozen=True):
    """Absolute on-hand count at a location, e.g. from a cycle count."""

    sku: Sku
    location: LocationId
    on_hand: Annotated[Qty, Meta(description="The counted units now on hand.")]
    condition: Condition = "new"


class StockAdjust(Event, tag="stock.adjust", frozen=True):
    """Relative on-hand change; a result below 0 is bad input."""

    sku: Sku
    location: LocationId
    delta: Delta
    reason: Annotated[str, Meta(description="Why the stock changed, kept in the audit trail.")]
    condition: Condition = "new"
    actor: Annotated[str | None, Meta(description="Who made the change, for the audit.")] = None


class StockReceived(Event, tag="stock.received", frozen=True):
    """Units received: quarantined behind a release gate, else straight to on hand."""

    sku: Sku
    location: LocationId
    qty: Qty
    condition: Condition = "new"


class StockReleased(Event, tag="stock.released", frozen=True):
    """Quarantined units passed the release gate and move to on hand."""

    sku: Sku
    location: LocationId
    qty: Qty
    condition: Condition = "new"


class StockDamaged(Event, tag="stock.damaged", frozen=True):
    """On-hand units found damaged: tracked, never sellable again."""

    sku: Sku
    location: LocationId
    qty: Qty
    condition: Condition = "new"


class StockTransfer(Event, tag="stock.transfer", frozen=True):
    """On-hand units moved between two locations."""

    sku: Sku
    from_location: Annotated[LocationId, Meta(description="Location the units leave.")]
    to_location: Annotated[LocationId, Meta(description="Location the units arrive at.")]
    qty: Qty
    condition: Condition = "new"


class StockInbound(Event, tag="stock.inbound", frozen=True):
    """Expected units (ASN / purchase order): never sellable except as preorders."""

    sku: Sku
    location: LocationId
    qty: Qty
    eta: Annotated[Timestamp, Meta(description="When the units are expected.")]
    condition: Condition = "new"


# Order events: subject {prefix}.order.<channel>


class OrderLine(Struct, frozen=True, kw_only=True, gc=False):
    """One line of a placed order."""

    line_id: LineId
    sku: Sku
    qty: Qty
    condition: Condition = "new"


class ShippedLine(Struct, frozen=True, kw_only=True, gc=False):
    """Units of one order line that left a location."""

    line_id: LineId
    qty: Qty
    location: Annotated[LocationId, Meta(description="Location the units shipped from.")]


class OrderPlaced(Event, tag="order.placed", frozen=True):
    """A sale that already happened on a channel: committed, backordered beyond stock."""

    order_id: OrderId
    channel: ChannelId
    lines: Annotated[list[OrderLine], Meta(min_length=1)]


class OrderCancelled(Event, tag="order.cancelled", frozen=True):
    """Releases the reservations and backorders of the named lines."""

    order_id: OrderId
    line_ids: Annotated[
        list[LineId] | None, Meta(description="Lines to cancel; all lines when absent.")
    ] = None


class OrderShipped(Event, tag="order.shipped", frozen=True):
    """Units shipped: reserved and on hand both go down."""

    order_id: OrderId
    lines: Annotated[list[ShippedLine], Meta(min_length=1)]


class OrderFulfillmentFailed(Event, tag="order.fulfillment_failed", frozen=True):
    """A line that could not be fulfilled; its reservation is released."""

    order_id: OrderId
    line_id: LineId
    disposition: Annotated[
        Literal["restock", "damaged"],
        Meta(description="`damaged` also moves the units from on hand to damaged."),
    ]


class OrderReturned(Event, tag="order.returned", frozen=True):
    """Units of an order line came back to a location."""

    order_id: OrderId
    line_id: LineId
    sku: Sku
    location: LocationId
    qty: Qty
    disposition: Annotated[
        Literal["inspect", "restock", "damaged"],
        Meta(description="inspect: to quarantined; restock: to on hand; damaged: to damaged."),
    ]


# Catalog events: subject {prefix}.catalog.<source>

Money = Annotated[
    Decimal,
    Meta(
        description="An amount in the currency's major unit, exact: a decimal string "
        '("19.99") or a JSON number; at most as many decimals as the currency has.'
    ),
]
CurrencyCode = Annotated[
    str, Meta(pattern="^[A-Z]{3}$", description="ISO 4217 currency code, e.g. USD.")
]


class PriceSet(Event, tag="price.set", frozen=True):
    """A SKU's base price, the one every channel's price is computed from (README,
    "Pricing"). Refused: a price of 0 or below, beyond 10,000,000,000, or with more
    decimals than the currency has; a code that is not ISO 4217; a currency other than
    the one the SKU's first price set; a MAP above the price."""

    sku: Sku
    price: Money
    currency: CurrencyCode
    cost: Annotated[
        Money | None, Meta(description="What a unit costs the seller; the margin guard uses it.")
    ] = None
    map: Annotated[
        Money | None,
        Meta(description="Minimum advertised price: no channel is sent a price below it."),
    ] = None


class PromoSet(Event, tag="promo.set", frozen=True):
    """A promotion: a discount on some SKUs and channels over a window of log time, a new
    one or a new version of the one with this `promo_id`. Refused: a window that ends
    before it starts, a channel without a price table, a discount beyond a channel's
    `max_discount_pct`, a window that overlaps another promotion on the same SKU and
    channel. Two promotions on one SKU on different channels at once are alerted
    (`promo_collision`)."""

    promo_id: Annotated[str, Meta(min_length=1, description="Identifies the promotion.")]
    channels: Annotated[list[ChannelId], Meta(min_length=1)]
    skus: Annotated[list[Sku], Meta(min_length=1)]
    discount_pct: Annotated[float, Meta(gt=0.0, lt=100.0, description="Percent off the price.")]
    starts: Annotated[Timestamp, Meta(description="When the discount starts (log time).")]
    ends: Annotated[Timestamp, Meta(description="When it ends; after `starts`.")]
    stock_cap: Annotated[
        Qty | None,
        Meta(
            description="Units set aside for the promotion's channels during its window, "
            'released to them in waves (README, "Promotions").'
        ),
    ] = None


# Service-generated and request messages that also travel through the log


class ClockTick(Event, tag="clock.tick", frozen=True):
    """Appended by the service every second; holds expire on ticks, so replay agrees."""

    push_lag_s: Annotated[
        dict[ChannelId, Annotated[float, Meta(ge=0.0, le=1e7)]] | None,
        Meta(
            description="Per channel, the p99 of push-to-accept latency (seconds) the "
            "service measured from acks; automatic buffers use it, so replay agrees."
        ),
    ] = None


class LeaderEpoch(Struct, frozen=True, kw_only=True, tag_field="type", tag="leader.epoch"):
    """Appended by a partition's new leader on `<prefix>.log.leader.<k>`: its fence.

    From then on the log takes only writes that expect this entry to be the
    partition's newest, so an older leader's writes are refused by the server.
    """

    epoch: Annotated[int, Meta(ge=0, description="The lease epoch the leader claimed.")]
    holder: Annotated[str, Meta(description="The leading process (host name and pid).")]
    ts: Annotated[datetime, Meta(description="When the leader took over.")]


class ReserveLine(Struct, frozen=True, kw_only=True, gc=False):
    """One line of a reservation request."""

    line_id: LineId
    sku: Sku
    qty: PositiveQty
    condition: Condition = "new"


class ReserveRequest(Struct, frozen=True, kw_only=True, tag_field="type", tag="reserve", gc=False):
    """A pre-sale hold: all lines or none, tier-aware, released at `expires_at`."""

    request_id: Annotated[
        str, Meta(min_length=1, description="Identifies the request; asked twice, answered once.")
    ]
    order_id: OrderId
    channel: ChannelId
    lines: Annotated[list[ReserveLine], Meta(min_length=1)]
    hold_seconds: Annotated[
        int,
        Meta(ge=0, le=MAX_HOLD_SECONDS, description="How long the hold lives (max 30 days)."),
    ] = DEFAULT_HOLD_SECONDS
    ts: Annotated[
        Timestamp | None, Meta(description="Request time; stamped by the service when absent.")
    ] = None


class LoggedReservation(Struct, frozen=True, kw_only=True, gc=False):
    """One reservation request as the service logs it, with where to send the answer."""

    request: ReserveRequest
    reply: Annotated[str | None, Meta(description="The requester's inbox; None if none.")] = None


class ReservationGroup(Struct, frozen=True, tag_field="type", tag="reserve.group", gc=False):
    """Reservation requests appended to the log together (one JetStream write for many).

    They are decided one by one, in this order, where the group sits in the log.
    """

    requests: Annotated[list[LoggedReservation], Meta(min_length=1)]


class VoteLine(Struct, frozen=True, kw_only=True, gc=False):
    """A partition's outcome for one of its lines of a request spanning partitions."""

    line_id: LineId
    granted: bool
    reason: ReplyReason | None = None


class Vote(Struct, frozen=True, kw_only=True, tag_field="type", tag="reserve.vote", gc=False):
    """A partition's vote on a reservation spanning partitions (`{prefix}.log.vote`).

    The partition prepared its lines where the request sits in the log; the request is
    decided where every involved partition's first vote is in the log: granted when
    all are ok, else refused (or refused with "timeout" at the first clock tick past
    the request's ts + `cross_partition_timeout_s`).
    """

    request_id: Annotated[str, Meta(min_length=1)]
    partition: Annotated[int, Meta(ge=0)]
    ok: bool
    lines: list[VoteLine]


class Batch(Event, tag="batch", frozen=True):
    """Many events in one message; each inner event is validated and applied on its own."""

    events: Annotated[
        list[msgspec.Raw], Meta(description="Inbound events, in order; batches do not nest.")
    ]


StockEvent: TypeAlias = (
    StockSet
    | StockAdjust
    | StockReceived
    | StockReleased
    | StockDamaged
    | StockTransfer
    | StockInbound
)
OrderEvent: TypeAlias = (
    OrderPlaced | OrderCancelled | OrderShipped | OrderFulfillmentFailed | OrderReturned
)
CatalogEvent: TypeAlias = PriceSet | PromoSet
InboundEvent: TypeAlias = StockEvent | OrderEvent | CatalogEvent | ReserveRequest | ClockTick


# Outbound messages


class QtyItem(Struct, frozen=True, gc=False):
    """The quantity a channel shows for one stock key."""

    sku: Sku
    condition: Condition
    qty: Qty
    source_ts: Annotated[Timestamp, Meta(description="`ts` of the newest event behind it.")]


class ChannelQuantities(
    Struct, frozen=True, omit_defaults=True, tag_field="type", tag="channel.quantities"
):
    """Shown quantities that changed for one channel, coalesced over a flush interval."""

    channel: ChannelId
    seq: Annotated[Qty, Meta(description="Per channel and partition, +1 each message.")]
    ts: Timestamp
    items: list[QtyItem]
    partition: Annotated[
        int,
        Meta(
            ge=0,
            description="The partition that sent it (absent: 0); `seq` counts per partition.",
        ),
    ] = 0


class Route(Struct, frozen=True, tag_field="type", tag="route"):
    """Where a committed order line ships from (a dropship location is a drop-ship PO)."""

    order_id: OrderId
    line_id: LineId
    sku: Sku
    qty: Qty
    location: LocationId


AlertKind: TypeAlias = Literal[
    "oversell",
    "feed_stale",
    "pause",
    "reserve_low",
    "duplicate",
    "clock_skew",
    "dedupe_window_short",
    "log_entry_refused",
    "internal_error",
    "sold_out_discontinued",
    "price_guard",
    "promo_collision",
    # raised by the channel gateway (`invsync connect`)
    "channel_error",
    "mapping_missing",
    "platform_hold",
]


#: The guards a price must pass before it is published, in the order they are checked.
GuardRule: TypeAlias = Literal["map", "margin", "parity", "deviation"]


class Alert(Struct, frozen=True, tag_field="type", tag="alert", omit_defaults=True):
    """Something an operator should look at, published on {prefix}.alert.<kind>.
    `price_guard` (a price held back: the rule it broke, the price and the nearest price
    the rule allows) also carries `rule`, `price`, `limit` and `currency`.
    The gateway raises `channel_error` (a platform refused a change or the credentials;
    the detail is the platform's reason), `mapping_missing` (a quantity for a
    (sku, condition) the channel's listing map does not name) and `platform_hold` (the
    marketplace holds more for its promotions than invsync decided, so it is sent and
    shown that floor; raised when a hold appears, changes or ends)."""

    kind: AlertKind
    sku: Sku | None
    channel: ChannelId | None
    detail: Annotated[str, Meta(description="What happened, in words and numbers.")]
    ts: Timestamp
    rule: Annotated[
        GuardRule | None,
        Meta(description="price_guard: the guard that held the price back."),
    ] = None
    price: Annotated[str | None, Meta(description="price_guard: the price held back.")] = None
    limit: Annotated[
        str | None,
        Meta(description="price_guard: the nearest price the rule allows; null if none would."),
    ] = None
    currency: Annotated[str | None, Meta(description="price_guard: the prices' currency.")] = None


class PriceUpdate(Struct, frozen=True, tag_field="type", tag="price"):
    """A channel's new price for one SKU, on {prefix}.price.<channel>: only prices that
    changed and passed every guard, coalesced over the flush interval."""

    sku: Sku
    price: Annotated[str, Meta(description='Decimal string in the currency, e.g. "19.99".')]
    currency: CurrencyCode
    reason: Annotated[
        str,
        Meta(
            description="`list` or `promo`, a colon, then the formula with its numbers: "
            '"list: round_99(19.00 × 1.15)".'
        ),
    ]
    ts: Annotated[Timestamp, Meta(description="When the service published it.")]


class Backorder(Struct, frozen=True):
    """Units of an accepted order that stock could not cover (an oversell)."""

    order_id: OrderId
    line_id: LineId
    sku: Sku
    condition: Condition
    channel: ChannelId
    qty: Qty


class AuditChange(Struct, frozen=True):
    """One counter that an applied event changed, before and after."""

    sku: Sku
    condition: Condition
    location: Annotated[str | None, Meta(description="None for counters not per location.")]
    field: Annotated[str, Meta(description="The counter, e.g. `on_hand` or `reserved`.")]
    before: int
    after: int


class AuditRecord(Struct, frozen=True, tag_field="type", tag="audit"):
    """Everything one applied event changed, with who and why; or why a log entry was
    refused and skipped, changing nothing."""

    event_id: EventId
    event_type: Annotated[str, Meta(description="The `type` of the applied event.")]
    changes: list[AuditChange]
    actor: str | None
    reason: str | None
    ts: Timestamp
    refused: Annotated[
        str | None,
        Meta(
            description="Why the entry was refused and skipped (`changes` is then empty); "
            "null when it was applied. A log entry without an event id is named "
            "`<subject>@<stream sequence>`."
        ),
    ] = None


class DeadLetter(Struct, frozen=True, tag_field="type", tag="dead_letter"):
    """A message refused as bad input, kept whole so it can be inspected or replayed."""

    subject: Annotated[str, Meta(description="Subject the message arrived on.")]
    error: Annotated[str, Meta(description="Why it was refused, naming the field.")]
    payload_b64: Annotated[str, Meta(description="The message body, base64.")]
    ts: Timestamp


#: Why a line was not granted; "timeout": a reservation spanning partitions was
#: aborted because a partition did not vote within `cross_partition_timeout_s`.
ReplyReason = Literal["insufficient", "unknown_sku", "paused", "timeout"]


class ReplyLine(Struct, frozen=True):
    """The answer for one line of a reservation request."""

    line_id: LineId
    sku: Sku
    qty: Qty
    granted: bool
    reason: ReplyReason | None


class ReserveReply(Struct, frozen=True, omit_defaults=True):
    """The reply to a reservation request; a malformed request gets only `ok` and `error`."""

    ok: bool
    order_id: OrderId | UnsetType = UNSET
    lines: list[ReplyLine] | UnsetType = UNSET
    expires_at: (
        Annotated[
            Timestamp | None, Meta(description="When the hold is released; null when refused.")
        ]
        | UnsetType
    ) = UNSET
    error: Annotated[str | None, Meta(description="Why a malformed request was refused.")] = None


class HeldStock(Struct, frozen=True):
    """Stock a marketplace holds for one (sku, condition) and will not let a quantity
    update go below: Shopee's promotion reserved stock, Lazada's locked stock. The
    marketplace shows at least `qty` whatever invsync decides; 0 ends the hold."""

    sku: Sku
    condition: Condition
    qty: Qty
    reason: Annotated[str, Meta(description="The platform's word for the hold.")]


class ChannelAck(Struct, frozen=True, omit_defaults=True):
    """A connector's acknowledgement of one {prefix}.qty.<channel> message, sent once the
    platform has accepted what it asked for. The v1.1 fields are optional, so a
    connector that sends only `seq`, `ok` and `error` still acknowledges."""

    seq: Qty
    ok: bool
    error: str | None = None
    accepted_ts: Annotated[
        Timestamp | None,
        Meta(description="When the platform accepted the change; the feed age counts from it."),
    ] = None
    items_ok: Annotated[Qty | None, Meta(description="Items the platform applied.")] = None
    items_failed: Annotated[Qty | None, Meta(description="Items the platform refused.")] = None
    held: Annotated[
        list[HeldStock] | None,
        Meta(
            description="Platform holds that appeared, changed or ended (qty 0) since the "
            "connector's previous ack."
        ),
    ] = None
    partition: Annotated[
        int, Meta(ge=0, description="The `partition` of the acknowledged message (absent: 0).")
    ] = 0


PAGE_LIMIT_DEFAULT: Final = 1_000
PAGE_LIMIT_MAX: Final = 10_000


class ChannelQuery(Struct, frozen=True):
    """Asks {prefix}.query.channel for one page of what a channel shows."""

    channel: ChannelId
    after: Annotated[
        str | None, Meta(description="The `next` of the previous page; absent for the first.")
    ] = None
    limit: Annotated[int, Meta(ge=1, le=PAGE_LIMIT_MAX, description="Items per page at most.")] = (
        PAGE_LIMIT_DEFAULT
    )
    partition: (
        Annotated[
            int,
            Meta(
                ge=0,
                description="Partitioned: whose quantities (absent: partition 0 answers, "
                "and its page says how many partitions there are).",
            ),
        ]
        | None
    ) = None


class ShownItem(Struct, frozen=True, gc=False, omit_defaults=True):
    """The quantity a channel was last sent for one stock key, and the price last
    published for its SKU on that channel (both absent when none was)."""

    sku: Sku
    condition: Condition
    qty: Qty
    price: Annotated[
        str | None,
        Meta(description='The SKU\'s last published price on the channel, e.g. "19.99".'),
    ] = None
    currency: CurrencyCode | None = None


class ChannelPage(Struct, frozen=True, omit_defaults=True):
    """One page of {prefix}.query.channel: every quantity last published on a channel
    as of `seq`. A connector resyncs by taking the first page's `seq`, paging through
    with `after` = `next` until `next` is null, then applying the `channel.quantities`
    messages with a greater `seq` in order. A listing no page names shows 0. An item's
    `price` is the last `price` message of its SKU on the channel: a connector that missed
    it sends it on resync."""

    channel: ChannelId
    seq: Annotated[Qty, Meta(description="The channel's last published `seq` when answered.")]
    items: list[ShownItem]
    next: Annotated[
        str | None, Meta(description="Opaque cursor of the next page; null on the last.")
    ]
    partition: Annotated[int, Meta(ge=0, description="Whose quantities (absent: 0).")] = 0
    partitions: Annotated[
        int, Meta(ge=1, description="How many partitions share the SKUs (absent: 1).")
    ] = 1


class SkuQuery(Struct, frozen=True):
    """Asks {prefix}.query.sku to explain how a SKU's numbers came about."""

    sku: Sku
    condition: Condition = "new"


# Decoding

DecodeReason: TypeAlias = Literal[
    "malformed", "invalid", "unknown_type", "nested_batch", "encoding"
]


class DecodeError(Struct, frozen=True):
    """A message or inner batch event that could not be decoded: dead-letter it."""

    reason: DecodeReason
    error: str
    raw: bytes


class _TypeProbe(Struct):
    """Reads only `type`, to tell an unknown type from a known one with bad fields."""

    type: object = None


def _tag(cls: type[Struct]) -> str:
    tag = cls.__struct_config__.tag
    assert isinstance(tag, str)
    return tag


INBOUND_TYPES: Final[tuple[type[Struct], ...]] = (
    StockSet,
    StockAdjust,
    StockReceived,
    StockReleased,
    StockDamaged,
    StockTransfer,
    StockInbound,
    OrderPlaced,
    OrderCancelled,
    OrderShipped,
    OrderFulfillmentFailed,
    OrderReturned,
    ReserveRequest,
    ClockTick,
    PriceSet,
    PromoSet,
)
_KNOWN_TAGS: Final = frozenset({*map(_tag, INBOUND_TYPES), _tag(Batch)})
_BATCH_TAG: Final = _tag(Batch)

_JSON_MESSAGE: Final[msgspec.json.Decoder[InboundEvent | Batch]] = msgspec.json.Decoder(
    InboundEvent | Batch
)
_JSON_INNER: Final[msgspec.json.Decoder[InboundEvent]] = msgspec.json.Decoder(InboundEvent)
_JSON_PROBE = msgspec.json.Decoder(_TypeProbe)
_JSON_RESERVE = msgspec.json.Decoder(ReserveRequest)
_MSGPACK_MESSAGE: Final[msgspec.msgpack.Decoder[InboundEvent | Batch]] = msgspec.msgpack.Decoder(
    InboundEvent | Batch
)
_MSGPACK_INNER: Final[msgspec.msgpack.Decoder[InboundEvent]] = msgspec.msgpack.Decoder(InboundEvent)
_MSGPACK_PROBE = msgspec.msgpack.Decoder(_TypeProbe)
_MSGPACK_RESERVE = msgspec.msgpack.Decoder(ReserveRequest)
_JSON_ENCODER = msgspec.json.Encoder()
_MSGPACK_ENCODER = msgspec.msgpack.Encoder()


class _GoodBatch(Event, tag="batch", frozen=True):
    """A batch whose inner events are all good, decoded in one pass (the common case);
    any bad inner event fails it, and the batch is decoded event by event instead."""

    events: list[InboundEvent]


_JSON_FAST = msgspec.json.Decoder(InboundEvent | _GoodBatch)
_MSGPACK_FAST = msgspec.msgpack.Decoder(InboundEvent | _GoodBatch)

_FAILURES = (msgspec.DecodeError, UnicodeDecodeError)  # ValidationError is a DecodeError


def _is_utf8(data: bytes | msgspec.Raw) -> bool:
    try:
        str(data, "utf-8")
    except UnicodeDecodeError:
        return False
    return True


# MessagePack type bytes above 0xBF: what the item is, and how many bytes follow the
# type byte (for "skip", the whole item; otherwise the big-endian size or count).
_MsgpackKind: TypeAlias = Literal["skip", "str", "bin", "ext", "array", "map"]
_MSGPACK_HEADS: Final[dict[int, tuple[_MsgpackKind, int]]] = {
    0xC0: ("skip", 0), 0xC2: ("skip", 0), 0xC3: ("skip", 0),  # nil, false, true
    0xC4: ("bin", 1), 0xC5: ("bin", 2), 0xC6: ("bin", 4),
    0xC7: ("ext", 1), 0xC8: ("ext", 2), 0xC9: ("ext", 4),
    0xCA: ("skip", 4), 0xCB: ("skip", 8),  # floats
    0xCC: ("skip", 1), 0xCD: ("skip", 2), 0xCE: ("skip", 4), 0xCF: ("skip", 8),
    0xD0: ("skip", 1), 0xD1: ("skip", 2), 0xD2: ("skip", 4), 0xD3: ("skip", 8),
    0xD4: ("skip", 2), 0xD5: ("skip", 3), 0xD6: ("skip", 5), 0xD7: ("skip", 9),
    0xD8: ("skip", 17),  # fixext: type byte + data
    0xD9: ("str", 1), 0xDA: ("str", 2), 0xDB: ("str", 4),
    0xDC: ("array", 2), 0xDD: ("array", 4), 0xDE: ("map", 2), 0xDF: ("map", 4),
}  # fmt: skip


def _msgpack_strings_are_utf8(data: bytes) -> bool:
    """False when a MessagePack string (a key or a value, at any depth) is not UTF-8.

    Walks the bytes, so the answer does not depend on how a library words its error.
    The walk stops at the first structural fault: bytes past it are malformed, not
    mis-encoded. Each item takes at least one byte, so the walk ends within `data`.
    """
    pos, pending, end = 0, 1, len(data)
    while pending and pos < end:
        pending -= 1
        head = data[pos]
        pos += 1
        if head <= 0x7F or head >= 0xE0:  # fixint
            continue
        if head <= 0x8F:  # fixmap
            pending += 2 * (head & 0x0F)
            continue
        if head <= 0x9F:  # fixarray
            pending += head & 0x0F
            continue
        if head <= 0xBF:  # fixstr
            kind, size = "str", head & 0x1F
        elif head in _MSGPACK_HEADS:
            kind, width = _MSGPACK_HEADS[head]
            if kind == "skip":
                pos += width
                continue
            size = int.from_bytes(data[pos : pos + width])
            pos += width
        else:  # 0xC1, never used
            return True
        if kind == "array":
            pending += size
        elif kind == "map":
            pending += 2 * size
        elif kind != "str":  # bin and ext carry bytes, not text
            pos += size + (kind == "ext")
        else:
            text = data[pos : pos + size]
            if len(text) < size:  # cut short: malformed, not mis-encoded
                return True
            if not _is_utf8(text):
                return False
            pos += size
    return True


def _is_text_valid(data: bytes, *, msgpack: bool) -> bool:
    return _msgpack_strings_are_utf8(data) if msgpack else _is_utf8(data)


def _failure(data: bytes, exc: Exception, *, msgpack: bool, inner: bool) -> DecodeError:
    """Labels a failed decode with a bounded reason for metrics and dead letters.

    The reason comes from the bytes themselves and the exception's type, never from
    its message, whose wording changes between msgspec releases.
    """
    if isinstance(exc, UnicodeDecodeError) or not _is_text_valid(data, msgpack=msgpack):
        return DecodeError(reason="encoding", error=f"invalid UTF-8: {exc}", raw=data)
    if not isinstance(exc, msgspec.ValidationError):
        return DecodeError(reason="malformed", error=str(exc), raw=data)
    try:
        tag = (_MSGPACK_PROBE if msgpack else _JSON_PROBE).decode(data).type
    except msgspec.ValidationError:
        return DecodeError(reason="invalid", error=str(exc), raw=data)
    except _FAILURES as syntax:  # a syntax error after the first invalid value
        return DecodeError(reason="malformed", error=str(syntax), raw=data)
    if inner and tag == _BATCH_TAG:
        return DecodeError(reason="nested_batch", error="a batch cannot contain a batch", raw=data)
    if not isinstance(tag, str) or tag not in _KNOWN_TAGS:
        return DecodeError(reason="unknown_type", error=f"unknown event type {tag!r}", raw=data)
    return DecodeError(reason="invalid", error=str(exc), raw=data)


def _accepted(
    event: InboundEvent, raw: bytes | msgspec.Raw, *, msgpack: bool
) -> InboundEvent | DecodeError:
    """JSON must be UTF-8 throughout, even in ignored fields the decoder skipped."""
    # Nearly every event is ASCII, which is valid UTF-8 and far cheaper to check.
    if not msgpack and not (isinstance(raw, bytes) and raw.isascii()) and not _is_utf8(raw):
        return DecodeError(reason="encoding", error="invalid UTF-8", raw=bytes(raw))
    return event


def _decode_inner(raw: msgspec.Raw, *, msgpack: bool) -> InboundEvent | DecodeError:
    try:
        event = (_MSGPACK_INNER if msgpack else _JSON_INNER).decode(raw)
    except _FAILURES as exc:
        return _failure(bytes(raw), exc, msgpack=msgpack, inner=True)
    return _accepted(event, raw, msgpack=msgpack)


def decode_events(data: bytes, *, msgpack: bool = False) -> list[InboundEvent | DecodeError]:
    """Decodes one message: the event, or a batch's inner events in order.

    Never raises on bad input: each bad event comes back as a `DecodeError` in its
    place, so one bad inner event is dead-lettered alone and the rest still apply.
    A good message is decoded in one pass; only a bad one (or a batch that is not
    ASCII, whose inner events' UTF-8 is checked one by one) takes a second.
    """
    try:
        fast = (_MSGPACK_FAST if msgpack else _JSON_FAST).decode(data)
    except _FAILURES:
        pass
    else:
        if type(fast) is not _GoodBatch:
            return [_accepted(cast(InboundEvent, fast), data, msgpack=msgpack)]
        if msgpack or data.isascii():
            return list(fast.events)
    try:
        message = (_MSGPACK_MESSAGE if msgpack else _JSON_MESSAGE).decode(data)
    except _FAILURES as exc:
        return [_failure(bytes(data), exc, msgpack=msgpack, inner=False)]
    if isinstance(message, Batch):
        return [_decode_inner(raw, msgpack=msgpack) for raw in message.events]
    return [_accepted(message, data, msgpack=msgpack)]


def decode_reserve(data: bytes, *, msgpack: bool = False) -> ReserveRequest:
    """Decodes a request from {prefix}.reserve.<channel>; `type` may be omitted.

    Raises `BadInputError` naming the field, which becomes the `error` of the reply.
    """
    if not msgpack and not _is_utf8(data):
        raise BadInputError("invalid UTF-8")
    try:
        return (_MSGPACK_RESERVE if msgpack else _JSON_RESERVE).decode(data)
    except _FAILURES as exc:
        raise BadInputError(str(exc)) from exc


def encode_json(obj: object) -> bytes:
    """Encodes any contract message (or plain data) as JSON."""
    return _JSON_ENCODER.encode(obj)


def encode_msgpack(obj: object) -> bytes:
    """Encodes any contract message (or plain data) as MessagePack."""
    return _MSGPACK_ENCODER.encode(obj)
