"""The seller's policy: a TOML file decoded, validated and resolved into the tables the core reads.

Everything is checked once, at load, so a running service never meets a half-valid policy:
each refusal is a `PolicyError` naming the file, the line and the field to fix.

Two judges, each of what only it can see, never the same rule twice. This module judges
the file as written: TOML syntax, unknown keys, each value's type and range, and the
names that live only in the file (SKU classes, the channel keys of override tables). The
core judges the policy as a whole, on the resolved tables (`_core.check_policy`): limits
(tiers, channels, locations), uniqueness, tier and component references, the bundle graph
and its quantities. The core runs the same check whenever it loads tables, so `invsync
check`, a load, a reload and a restart accept and refuse the same files.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from os import PathLike
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeVar

import msgspec
from msgspec import Meta, Struct

from invsync import _core
from invsync.errors import PolicyError
from invsync.tomlpos import FieldPath, locate, msgspec_path, syntax_problem

__all__ = [
    "ChannelOverride",
    "ChannelPrice",
    "ChannelSpec",
    "ClassSpec",
    "Component",
    "Defaults",
    "LocationSpec",
    "Policy",
    "PolicyFile",
    "PriceOverride",
    "SkuSpec",
    "TierSpec",
]

_T = TypeVar("_T")
_U = TypeVar("_U")
_I64_MAX: Final = 2**63 - 1
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)

Count = Annotated[int, Meta(ge=0, le=_I64_MAX)]
Share = Annotated[float, Meta(ge=0.0, le=1.0)]
# A tier number as the core stores it (one byte); which tiers may be used is the core's rule.
Tier = Annotated[int, Meta(ge=1, le=255)]
Id = Annotated[str, Meta(min_length=1)]
LocationKind = Literal["warehouse", "store", "dropship", "3pl"]
SkuKind = Literal["standard", "non_inventory", "discontinued", "preorder", "bundle"]


class _Table(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Base of every table in the file: a misspelt key fails loudly instead of being ignored."""


Seconds = Annotated[int, Meta(ge=0, le=10 * 365 * 86_400)]
#: a half-life or a horizon in seconds: above 0, at most 30 days
Span = Annotated[float, Meta(gt=0.0, le=30 * 86_400.0)]
#: a delay in seconds: at least 0, at most 30 days
Lag = Annotated[float, Meta(ge=0.0, le=30 * 86_400.0)]
Risk = Annotated[float, Meta(ge=0.0, le=100.0)]
Auto = Literal["auto"]


class Defaults(_Table, frozen=True):
    """Values every SKU gets unless its class or its own table says otherwise, and how
    the log's producers are treated (clock skew, re-sends, events that arrive early)."""

    safety: Count = 0
    non_inventory_qty: Count = 999
    #: a producer `ts` further ahead of the log's clock is taken as clock + this
    max_clock_skew_s: Seconds = 300
    #: how long (log time) an applied event_id is remembered against re-sends
    dedupe_horizon_s: Seconds = 3_600
    #: at most this many remembered event ids (about 40 bytes each), whatever the horizon
    dedupe_max_ids: Annotated[int, Meta(ge=1, le=2**40)] = 2**22
    #: how long an order event waits for the order.placed it names (log time)
    park_window_s: Seconds = 3_600
    #: How long (log time) a reservation spanning partitions waits for every
    #: partition's vote before it is aborted with reason "timeout".
    cross_partition_timeout_s: Seconds = 5
    #: half-lives of the sales rate estimates behind automatic buffers and protection:
    #: a fast rate follows a ramp, a slow one steady demand, a peak bridges a surge's
    #: gaps, a day-long one holds a steady SKU's rate through hours without a sale
    velocity_fast_half_life_s: Span = 30.0
    velocity_slow_half_life_s: Span = 900.0
    velocity_peak_half_life_s: Span = 60.0
    velocity_long_half_life_s: Span = 86_400.0
    #: log seconds between recomputations of the automatic numbers that may have moved
    adaptive_every_s: Annotated[int, Meta(ge=1, le=86_400)] = 10
    #: automatic protection levels cover the demand of this many seconds
    protect_horizon_s: Span = 3_600.0


class TierSpec(_Table, frozen=True):
    """A channel priority (1 = highest) and the units only tiers <= it may take."""

    tier: Tier
    #: "auto": nested EMSR-b levels from the tiers' `value` and their demand
    protect: Count | Auto = 0
    #: what a unit sold on this tier is worth (automatic protection compares them)
    value: Annotated[float, Meta(ge=0.0)] | None = None


class LocationSpec(_Table, frozen=True):
    """Where stock sits, whether it is offered online and how far its count is trusted."""

    id: Id
    kind: LocationKind
    online: bool = True
    priority: Count = 0
    count_pct: Annotated[int, Meta(ge=0, le=100)] = 100
    release_gate: bool = False


#: a markup in percent, two decimals at most (the core counts in basis points); below 0
#: prices a channel under the base price
Pct = Annotated[float, Meta(ge=-99.0, le=1000.0)]
#: `"none"` (to the cent), a charm ending `"0.51"`..`"0.99"` (round up to it: 21.85 → 21.99
#: with `"0.99"`) or a step `"0.01"`..`"0.50"` that divides 1.00 (round up to a multiple:
#: 21.83 → 21.85 with `"0.05"`). README, "Pricing".
Rounding = Annotated[str, Meta(pattern=r"^(none|0\.\d\d)$")]
Parity = Literal["none", "not_above_lowest"]
#: Lazada sends a listing back to QC after a price change of 80% or more.
LAZADA_MAX_DEVIATION_PCT: Final = 79.0


class ChannelPrice(_Table, frozen=True):
    """How a channel's price follows from the SKU's base price, and the guards a price
    must pass before it is published (README, "Pricing")."""

    #: added to the base price: price = base × (1 + markup_pct / 100), then rounded
    markup_pct: Pct = 0.0
    #: the marketplace's fees as a share of the price; only the margin guard uses it
    fee_pct: Annotated[float, Meta(ge=0.0, lt=100.0)] = 0.0
    rounding: Rounding = "none"
    #: a price further than this from the last published one is held back (review risk)
    max_deviation_pct: Annotated[float, Meta(gt=0.0, le=1000.0)] | None = None
    #: (price × (1 − fee) − cost) / price must stay at or above this; needs a cost
    margin_floor_pct: Annotated[float, Meta(ge=-100.0, lt=100.0)] | None = None
    #: "not_above_lowest": never above the lowest price published on another channel
    parity: Parity = "none"
    #: the largest promotion discount this channel takes; a bigger one is refused
    max_discount_pct: Annotated[float, Meta(ge=0.0, lt=100.0)] = 50.0


class PriceOverride(_Table, frozen=True):
    """Per-class or per-SKU replacements for a channel's `price` table; absent = inherited."""

    markup_pct: Pct | None = None
    fee_pct: Annotated[float, Meta(ge=0.0, lt=100.0)] | None = None
    rounding: Rounding | None = None
    max_deviation_pct: Annotated[float, Meta(gt=0.0, le=1000.0)] | None = None
    margin_floor_pct: Annotated[float, Meta(ge=-100.0, lt=100.0)] | None = None
    parity: Parity | None = None
    max_discount_pct: Annotated[float, Meta(ge=0.0, lt=100.0)] | None = None


class ChannelSpec(_Table, frozen=True):
    """A sales channel and how much of its tier's pool it is shown."""

    id: Id
    tier: Tier
    share: Share = 1.0
    cap: Count | None = None
    #: "auto": from velocity and lags (README, "Sizing buffers")
    buffer: Count | Auto = 0
    buffer_min: Count = 0
    buffer_max: Count | None = None
    risk: Risk = 1.5
    pause_below: Count = 0
    conditions: Annotated[tuple[Id, ...], Meta(min_length=1)] = ("new",)
    stale_after_s: Annotated[float, Meta(gt=0.0)] = 300.0
    #: push lag (s) an automatic buffer uses until acks measure one
    lag_s: Lag | None = None
    #: sale-to-order delay (s) used until orders measure one
    order_lag_s: Lag = 0.0
    #: how this channel is priced; absent: invsync publishes no prices for it
    price: ChannelPrice | None = None


class ChannelOverride(_Table, frozen=True):
    """Per-class or per-SKU replacements for a channel's display settings; absent = inherited."""

    share: Share | None = None
    cap: Count | None = None
    buffer: Count | Auto | None = None
    buffer_min: Count | None = None
    buffer_max: Count | None = None
    risk: Risk | None = None
    pause_below: Count | None = None
    price: PriceOverride | None = None


class ClassSpec(_Table, frozen=True):
    """A group of SKUs sharing safety stock and channel overrides."""

    id: Id
    safety: Count | None = None
    channels: dict[str, ChannelOverride] = {}


class Component(_Table, frozen=True):
    """One line of a bundle: `qty` units of `sku` per bundle."""

    sku: Id
    qty: Annotated[int, Meta(ge=1, le=_I64_MAX)]


class SkuSpec(_Table, frozen=True):
    """A SKU that differs from the defaults: its class, kind, dates, bundle lines, overrides."""

    id: Id
    class_: Id | None = msgspec.field(default=None, name="class")
    safety: Count | None = None
    kind: SkuKind = "standard"
    sellable_from: Annotated[datetime, Meta(tz=True)] | None = None
    preorder_limit: Count = 0
    components: tuple[Component, ...] = ()
    channels: dict[str, ChannelOverride] = {}
    #: The partitioning family: SKUs of one family are applied by one partition. Absent:
    #: a bundle's family (its bundle graph component), else the SKU itself.
    family: Id | None = None


class PolicyFile(_Table, frozen=True):
    """The whole file, as written (before resolution)."""

    defaults: Defaults = Defaults()
    tiers: tuple[TierSpec, ...] = ()
    locations: tuple[LocationSpec, ...] = ()
    channels: tuple[ChannelSpec, ...] = ()
    classes: tuple[ClassSpec, ...] = ()
    skus: tuple[SkuSpec, ...] = ()


class Policy:
    """A validated policy: read-only accessors plus the resolved tables the core reads."""

    __slots__ = ("_channel_by_id", "_document", "_kinds", "_source", "_tables", "_text")

    def __init__(self, document: PolicyFile, text: str, source: str) -> None:
        self._document = document
        self._text = text
        self._source = source
        self._channel_by_id = {channel.id: channel for channel in document.channels}
        self._kinds = {sku.id: sku.kind for sku in document.skus}
        self._tables = msgspec.json.encode(_resolve(document))

    @classmethod
    def from_toml(cls, text: str, source: str = "<policy>") -> Policy:
        """Decode and validate `text`; raise `PolicyError` pointing at the first problem."""
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise _syntax_error(exc, text, source) from None
        try:
            document = msgspec.convert(raw, PolicyFile)
            _check_file_names(document)
            policy = cls(document, text, source)
            refusal = _core.check_policy(policy.tables_json())
        except msgspec.ValidationError as exc:
            path, message = msgspec_path(str(exc), raw, _failing_override)
            raise _policy_error(source, text, raw, path, message) from None
        except _Refusal as refused:
            raise _policy_error(source, text, raw, refused.path, refused.message) from None
        if refusal is not None:
            raise _policy_error(source, text, raw, *refusal)
        return policy

    @classmethod
    def load(cls, path: str | PathLike[str]) -> Policy:
        """Read and validate a policy file; an unreadable file is a `PolicyError` too."""
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(source, 0, "file", str(exc)) from None
        return cls.from_toml(text, source)

    @property
    def source(self) -> str:
        """Where the policy came from (a path, or a name given to `from_toml`)."""
        return self._source

    @property
    def text(self) -> str:
        """The TOML exactly as loaded, so a reload or a snapshot can carry it verbatim."""
        return self._text

    @property
    def document(self) -> PolicyFile:
        """The file as written, for tools that describe the policy rather than run it."""
        return self._document

    @property
    def channels(self) -> tuple[str, ...]:
        """Channel ids in file order; a channel's position is its index in the core."""
        return tuple(self._channel_by_id)

    @property
    def locations(self) -> tuple[str, ...]:
        """Location ids in file order."""
        return tuple(location.id for location in self._document.locations)

    @property
    def tiers(self) -> tuple[int, ...]:
        """Declared tiers, highest priority first."""
        return tuple(sorted(tier.tier for tier in self._document.tiers))

    def protect_levels(self) -> dict[int, int]:
        """Each declared tier's protection level as written; an automatic one counts 0
        here, as the core computes its levels per SKU from demand."""
        return {
            tier.tier: 0 if tier.protect == "auto" else tier.protect
            for tier in self._document.tiers
        }

    def auto_buffered_channels(self) -> frozenset[str]:
        """Channels with `buffer = "auto"` for some SKU (on the channel, a class or a SKU)."""
        doc = self._document
        overrides = [*(cls.channels for cls in doc.classes), *(sku.channels for sku in doc.skus)]
        return frozenset(
            {channel.id for channel in doc.channels if channel.buffer == "auto"}
            | {name for table in overrides for name, o in table.items() if o.buffer == "auto"}
        )

    def channel_tier(self, channel: str) -> int:
        """The channel's tier; `KeyError` for a channel the policy does not know."""
        return self._channel_by_id[channel].tier

    def stale_after_s(self, channel: str) -> float:
        """Seconds without a good ack after which the channel's feed counts as stale."""
        return self._channel_by_id[channel].stale_after_s

    def channel_price(self, channel: str, sku: str | None = None) -> ChannelPrice | None:
        """The `price` table that applies to `sku` on `channel` (SKU > class > channel),
        or the channel's own without a SKU; None when the channel is not priced.
        `KeyError` for a channel the policy does not know."""
        price = self._channel_by_id[channel].price
        spec = next((s for s in self._document.skus if s.id == sku), None)
        if spec is None:
            return price
        cls = next((c for c in self._document.classes if c.id == spec.class_), None)
        for table in (cls.channels if cls is not None else {}, spec.channels):
            override = table.get(channel)
            price = _override_price(price, override.price if override else None)
        return price

    def sku_kind(self, sku: str) -> str:
        """The SKU's kind; SKUs the policy does not list are `standard`."""
        return self._kinds.get(sku, "standard")

    def tables_json(self) -> bytes:
        """The resolved tables (SKU > class > channel/defaults) as JSON for the core."""
        return self._tables

    def error_at(self, path: FieldPath, message: str) -> PolicyError:
        """A refusal of this policy found later (e.g. against the live state), pointing
        at the line of `path` in its text."""
        return _policy_error(self._source, self._text, tomllib.loads(self._text), path, message)


# --- validation ----------------------------------------------------------------------------


class _Refusal(Exception):
    """A rule broken at `path`; turned into a `PolicyError` once the line is known."""

    def __init__(self, path: FieldPath, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def _check_file_names(doc: PolicyFile) -> None:
    """The names only the file has: the core sees resolved tables, without class names or
    override tables, so these references are checked here."""
    first_index: dict[str, int] = {}
    for index, cls in enumerate(doc.classes):
        if cls.id in first_index:
            raise _Refusal(
                ("classes", index, "id"),
                f"duplicate id {cls.id!r} (first in classes[{first_index[cls.id]}])",
            )
        first_index[cls.id] = index
    channels = {channel.id for channel in doc.channels}
    for index, cls in enumerate(doc.classes):
        _refuse_unknown_channels(("classes", index), cls.channels, channels)
    for index, sku in enumerate(doc.skus):
        if sku.class_ is not None and sku.class_ not in first_index:
            raise _Refusal(("skus", index, "class"), f"unknown class {sku.class_!r}")
        _refuse_unknown_channels(("skus", index), sku.channels, channels)
    _check_automatic(doc)
    _check_prices(doc)


def _check_automatic(doc: PolicyFile) -> None:
    """An automatic buffer needs its channel's push lag until acks measure one, and
    bounds in order; automatic protection needs every tier's unit value."""
    by_id = {channel.id: channel for channel in doc.channels}
    written: list[tuple[FieldPath, str, ChannelSpec | ChannelOverride]] = [
        (("channels", i), channel.id, channel) for i, channel in enumerate(doc.channels)
    ]
    overrides: list[tuple[str, int, Mapping[str, ChannelOverride]]] = [
        *(("classes", i, cls.channels) for i, cls in enumerate(doc.classes)),
        *(("skus", i, sku.channels) for i, sku in enumerate(doc.skus)),
    ]
    for section, i, table in overrides:
        for name, override in table.items():
            written.append(((section, i, "channels", name), name, override))
    for path, name, setting in written:
        if setting.buffer == "auto" and by_id[name].lag_s is None:
            raise _Refusal(
                (*path, "buffer"),
                f'buffer = "auto" needs lag_s on channel {name!r}: the push lag (seconds) '
                "to use until acks measure one",
            )
        low, high = setting.buffer_min, setting.buffer_max
        if low is not None and high is not None and low > high:
            raise _Refusal((*path, "buffer_min"), f"buffer_min {low} above buffer_max {high}")
    if any(tier.protect == "auto" for tier in doc.tiers):
        for i, tier in enumerate(doc.tiers):
            if tier.value is None:
                raise _Refusal(
                    ("tiers", i, "protect" if tier.protect == "auto" else "tier"),
                    f'protect = "auto" needs a value on every tier; tier {tier.tier} has none',
                )


def _check_prices(doc: PolicyFile) -> None:
    """Rounding a price can follow, overrides only of channels that are priced, and no
    Lazada channel allowed a change its QC review would catch."""
    by_id = {channel.id: channel for channel in doc.channels}
    written: list[tuple[FieldPath, str, ChannelPrice | PriceOverride]] = [
        (("channels", i, "price"), channel.id, channel.price)
        for i, channel in enumerate(doc.channels)
        if channel.price is not None
    ]
    for section, i, table in (
        *(("classes", i, cls.channels) for i, cls in enumerate(doc.classes)),
        *(("skus", i, sku.channels) for i, sku in enumerate(doc.skus)),
    ):
        for name, override in table.items():
            if override.price is None:
                continue
            path: FieldPath = (section, i, "channels", name, "price")
            if by_id[name].price is None:
                raise _Refusal(path, f"channel {name!r} has no price table to override")
            written.append((path, name, override.price))
    for path, name, price in written:
        if price.rounding is not None:
            try:
                rounding_rule(price.rounding)
            except ValueError as exc:
                raise _Refusal((*path, "rounding"), str(exc)) from None
    for path, name, price in written:
        # An override without its own limit inherits the channel's, checked on its own entry.
        own = price.max_deviation_pct
        if not is_lazada(name) or (own is None and isinstance(price, PriceOverride)):
            continue
        if own is None or own > LAZADA_MAX_DEVIATION_PCT:
            raise _Refusal(
                path if own is None else (*path, "max_deviation_pct"),
                f"max_deviation_pct {'absent' if own is None else f'{own:g}'} on Lazada "
                f"channel {name!r}: Lazada sends a listing back to QC after a price change "
                f"of 80% or more, so set it to at most {LAZADA_MAX_DEVIATION_PCT:g}",
            )


def is_lazada(channel: str) -> bool:
    """Whether a channel id names a Lazada store (`lazada`, `lazada-my`, `lazada_th`)."""
    return channel == "lazada" or channel.startswith(("lazada-", "lazada_"))


def rounding_rule(rounding: str) -> Any:
    """The core's form of a `rounding` setting: `"none"`, `{"charm": hundredths}` or
    `{"step": hundredths}`; ValueError says why a setting is not one."""
    if rounding == "none":
        return "none"
    hundredths = int(rounding[2:])
    if hundredths > 50:
        return {"charm": hundredths}
    if hundredths == 0 or 100 % hundredths:
        raise ValueError(
            f"rounding {rounding!r}: a step must divide 1.00 (0.01, 0.02, 0.04, 0.05, 0.10, "
            "0.20, 0.25, 0.50); an ending above 0.50 is a charm price (0.95, 0.99)"
        )
    return {"step": hundredths}


def _basis_points(pct: float) -> int:
    return round(pct * 100)


def _price_rule(price: ChannelPrice) -> dict[str, Any]:
    """One channel's resolved `price` table as the core reads it, in basis points."""
    return {
        "markup_bp": _basis_points(price.markup_pct),
        "fee_bp": _basis_points(price.fee_pct),
        "rounding": rounding_rule(price.rounding),
        "max_deviation_bp": (
            None if price.max_deviation_pct is None else _basis_points(price.max_deviation_pct)
        ),
        "margin_floor_bp": (
            None if price.margin_floor_pct is None else _basis_points(price.margin_floor_pct)
        ),
        "parity": price.parity,
        "max_discount_bp": _basis_points(price.max_discount_pct),
    }


def _override_price(
    price: ChannelPrice | None, override: PriceOverride | None
) -> ChannelPrice | None:
    if override is None or price is None:
        return price
    changes = {
        field: value
        for field in override.__struct_fields__
        if (value := getattr(override, field)) is not None
    }
    return msgspec.structs.replace(price, **changes)


def _refuse_unknown_channels(
    path: FieldPath, overrides: Mapping[str, ChannelOverride], channels: set[str]
) -> None:
    for name in overrides:
        if name not in channels:
            raise _Refusal((*path, "channels", name), f"unknown channel {name!r}")


# --- resolution ----------------------------------------------------------------------------

#: A channel's settings as resolved: share, cap, buffer ("auto" or units),
#: pause_below, buffer_min, buffer_max, risk, price.
Setting = tuple[float, int | None, int | Auto, int, int, int | None, float, ChannelPrice | None]
Profile = tuple[Setting, ...]


def _resolve(doc: PolicyFile) -> dict[str, Any]:
    """The dense tables the core reads; profiles are deduplicated so 100,000 SKUs stay cheap."""
    channel_index = {channel.id: index for index, channel in enumerate(doc.channels)}
    base: Profile = tuple(
        (
            channel.share,
            channel.cap,
            channel.buffer,
            channel.pause_below,
            channel.buffer_min,
            channel.buffer_max,
            channel.risk,
            channel.price,
        )
        for channel in doc.channels
    )
    profile_ids: dict[Profile, int] = {base: 0}
    class_by_id = {cls.id: cls for cls in doc.classes}
    class_profiles = {
        cls.id: _apply_overrides(base, cls.channels, channel_index) for cls in doc.classes
    }

    skus = []
    for sku in doc.skus:
        cls = class_by_id.get(sku.class_) if sku.class_ is not None else None
        inherited = class_profiles[cls.id] if cls is not None else base
        profile = _apply_overrides(inherited, sku.channels, channel_index)
        safety = _or(sku.safety, _or(cls.safety if cls else None, doc.defaults.safety))
        skus.append(
            {
                "id": sku.id,
                "profile": profile_ids.setdefault(profile, len(profile_ids)),
                "safety": safety,
                "kind": sku.kind,
                "sellable_from": _unix_micros(sku.sellable_from),
                "preorder_limit": sku.preorder_limit,
                "components": [[c.sku, c.qty] for c in sku.components],
                "family": sku.family,
            }
        )

    max_tier = max((tier.tier for tier in doc.tiers), default=0)
    protect = [0] * max_tier
    protect_auto = [False] * max_tier
    values = [0.0] * max_tier
    for tier in doc.tiers:
        protect[tier.tier - 1] = 0 if tier.protect == "auto" else tier.protect
        protect_auto[tier.tier - 1] = tier.protect == "auto"
        values[tier.tier - 1] = tier.value or 0.0
    defaults = doc.defaults
    return {
        "log": {
            "max_clock_skew_s": defaults.max_clock_skew_s,
            "dedupe_horizon_s": defaults.dedupe_horizon_s,
            "dedupe_max_ids": defaults.dedupe_max_ids,
            "park_window_s": defaults.park_window_s,
            "cross_partition_timeout_s": defaults.cross_partition_timeout_s,
        },
        "adaptive": {
            "half_lives": {
                "fast_s": defaults.velocity_fast_half_life_s,
                "slow_s": defaults.velocity_slow_half_life_s,
                "peak_s": defaults.velocity_peak_half_life_s,
                "long_s": defaults.velocity_long_half_life_s,
            },
            "every_s": defaults.adaptive_every_s,
            "protect_horizon_s": defaults.protect_horizon_s,
        },
        "safety": doc.defaults.safety,
        "non_inventory_qty": doc.defaults.non_inventory_qty,
        "protect": protect,
        "protect_auto": protect_auto,
        "values": values,
        "tiers": [tier.tier for tier in doc.tiers],
        "locations": [msgspec.structs.asdict(location) for location in doc.locations],
        "channels": [
            {
                "id": c.id,
                "tier": c.tier,
                "conditions": list(c.conditions),
                "lag_s": c.lag_s,
                "order_lag_s": c.order_lag_s,
            }
            for c in doc.channels
        ],
        "profiles": [[_rule(setting) for setting in profile] for profile in profile_ids],
        "skus": skus,
    }


def _rule(setting: Setting) -> dict[str, Any]:
    """One channel's resolved settings as the core's rule."""
    share, cap, buffer, pause_below, buffer_min, buffer_max, risk, price = setting
    auto = buffer == "auto"
    return {
        "share": share,
        "cap": cap,
        "buffer": 0 if buffer == "auto" else buffer,
        "pause_below": pause_below,
        "auto": {"min": buffer_min, "max": buffer_max, "risk": risk} if auto else None,
        **({"price": _price_rule(price)} if price is not None else {}),
    }


def _apply_overrides(
    profile: Profile, overrides: Mapping[str, ChannelOverride], channel_index: Mapping[str, int]
) -> Profile:
    if not overrides:
        return profile
    settings = list(profile)
    for name, override in overrides.items():
        index = channel_index[name]
        share, cap, buffer, pause_below, buffer_min, buffer_max, risk, price = settings[index]
        settings[index] = (
            _or(override.share, share),
            _or(override.cap, cap),
            _or(override.buffer, buffer),
            _or(override.pause_below, pause_below),
            _or(override.buffer_min, buffer_min),
            _or(override.buffer_max, buffer_max),
            _or(override.risk, risk),
            _override_price(price, override.price),
        )
    return tuple(settings)


def _or(value: _T | None, inherited: _U) -> _T | _U:
    return inherited if value is None else value


def _unix_micros(moment: datetime | None) -> int | None:
    return None if moment is None else (moment - _EPOCH) // _MICROSECOND


# --- error positions -----------------------------------------------------------------------


def _syntax_error(exc: tomllib.TOMLDecodeError, text: str, source: str) -> PolicyError:
    return PolicyError(source, *syntax_problem(exc, text))


def _failing_override(overrides: Mapping[str, Any]) -> str:
    """The channel override table msgspec names `[...]`: the first that fails on its own."""
    for name, value in overrides.items():
        try:
            msgspec.convert(value, ChannelOverride)
        except msgspec.ValidationError:
            return name
    return "..."


def _policy_error(
    source: str, text: str, raw: Mapping[str, Any], path: FieldPath, message: str
) -> PolicyError:
    return PolicyError(source, *locate(text, raw, path, message, _is_channel_name))


def _is_channel_name(path: FieldPath, depth: int) -> bool:
    """True for the channel name inside a class's or SKU's `channels` table."""
    return depth == 3 and path[2] == "channels" and path[0] in ("classes", "skus")
