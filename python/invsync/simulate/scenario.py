"""A simulation scenario: stock, demand per channel over time, and each channel's delays.

A scenario is a TOML file read against a policy: every channel it names must be one of
the policy's, its stock sits at one of the policy's online locations, and a bundle's stock
is its components'. A file that breaks a rule is refused with a `ScenarioError` naming
the file, the line and the field, the same way a policy is.

A channel's delays default to what its platform documents (`PLATFORMS`): Walmart's
inventory feed takes about 30 minutes, Amazon's feeds minutes, Shopify's checkout
reserves synchronously.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from os import PathLike
from pathlib import Path
from typing import Annotated, Any, Final

import msgspec
import numpy as np
import numpy.typing as npt
from msgspec import Meta, Struct

from invsync.errors import ScenarioError
from invsync.policy import Policy
from invsync.tomlpos import FieldPath, locate, msgspec_path, syntax_problem

__all__ = [
    "PLATFORMS",
    "Channel",
    "Lag",
    "Platform",
    "Scenario",
    "Sku",
    "Stall",
    "Surge",
    "WithinP99",
]

_DAY: Final = 86_400.0
Seconds = Annotated[float, Meta(ge=0.0, le=30 * _DAY)]
Rate = Annotated[float, Meta(ge=0.0, le=1e6)]
Id = Annotated[str, Meta(min_length=1)]
#: z of the standard normal at 0.99: a log-normal's p99 is exp(mu + _Z99 × sigma)
_Z99: Final = 2.3263478740408408


class _Table(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Base of every table in the file: a misspelt key fails loudly instead of being ignored."""


class Fixed(_Table, tag_field="dist", tag="fixed", frozen=True):
    """Always `s` seconds."""

    s: Seconds

    def sample(self, rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
        return np.full(n, self.s)

    @property
    def p99(self) -> float:
        return self.s


class Uniform(_Table, tag_field="dist", tag="uniform", frozen=True):
    """Anywhere from `min` to `max` seconds."""

    min: Seconds
    max: Seconds

    def __post_init__(self) -> None:
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) must not be below min ({self.min})")

    def sample(self, rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
        return rng.uniform(self.min, self.max, n)

    @property
    def p99(self) -> float:
        return self.min + 0.99 * (self.max - self.min)


class LogNormal(_Table, tag_field="dist", tag="lognormal", frozen=True):
    """A long tail, given by its median and its 99th percentile (seconds)."""

    p50: Annotated[float, Meta(gt=0.0, le=30 * _DAY)]
    p99: Annotated[float, Meta(gt=0.0, le=30 * _DAY)]

    def __post_init__(self) -> None:
        if self.p99 < self.p50:
            raise ValueError(f"p99 ({self.p99}) must not be below p50 ({self.p50})")

    def sample(self, rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
        sigma = math.log(self.p99 / self.p50) / _Z99
        return np.minimum(rng.lognormal(math.log(self.p50), sigma, n), 30 * _DAY)


#: A delay in seconds, as a distribution: `{ dist = "lognormal", p50 = 120, p99 = 600 }`.
Lag = Fixed | Uniform | LogNormal


@dataclass(frozen=True)
class WithinP99:
    """`lag` drawn as usual and cut at its p99: the delays automatic buffers are sized
    for, without the 1 % of draws beyond them."""

    lag: Lag | WithinP99

    def sample(self, rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
        return np.minimum(self.lag.sample(rng, n), self.lag.p99)

    @property
    def p99(self) -> float:
        return self.lag.p99


@dataclass(frozen=True)
class Platform:
    """A marketplace's documented delays: how long a quantity push takes to be accepted,
    how long a sale takes to reach the seller as an order, and whether checkout reserves."""

    push_lag: Lag
    order_lag: Lag
    checkout_reserves: bool = False
    #: the shortest time between two quantity pushes (a feed limit), 0 = every step
    push_every_s: float = 0.0


#: Delays by platform. Push lags follow each platform's documented processing (Walmart's
#: inventory feed about 30 minutes, at most 10 feeds an hour; Amazon's JSON listings feed
#: minutes, "ACCEPTED" is not applied; the others synchronous APIs); order lags are
#: estimates of how quickly each platform's order API or notifications report a sale.
PLATFORMS: Final[Mapping[str, Platform]] = {
    "shopify": Platform(LogNormal(p50=1.0, p99=5.0), Fixed(s=0.0), checkout_reserves=True),
    "amazon": Platform(LogNormal(p50=120.0, p99=600.0), LogNormal(p50=60.0, p99=300.0)),
    "walmart": Platform(
        LogNormal(p50=1800.0, p99=2700.0), LogNormal(p50=120.0, p99=600.0), push_every_s=360.0
    ),
    "ebay": Platform(LogNormal(p50=10.0, p99=60.0), LogNormal(p50=30.0, p99=120.0)),
    "tiktok": Platform(LogNormal(p50=2.0, p99=10.0), LogNormal(p50=5.0, p99=30.0)),
    "shopee": Platform(LogNormal(p50=5.0, p99=30.0), LogNormal(p50=30.0, p99=120.0)),
    "lazada": Platform(LogNormal(p50=5.0, p99=30.0), LogNormal(p50=30.0, p99=120.0)),
}


class Head(_Table, frozen=True):
    """The `[scenario]` table: what the run is called, how long it lasts, its resolution."""

    horizon_s: Annotated[float, Meta(gt=0.0, le=30 * _DAY)]
    name: str = ""
    #: the simulated clock's resolution: orders and ticks are applied once a step
    step_s: Annotated[float, Meta(gt=0.0, le=60.0)] = 1.0
    start: Annotated[datetime, Meta(tz=True)] = datetime(2026, 12, 1, tzinfo=UTC)
    #: the policy location that holds the stock (default: its first online location)
    location: Id | None = None
    seed: Annotated[int, Meta(ge=0, le=2**63 - 1)] = 1
    #: how long the engine has been selling at the base rates when the run starts (no
    #: surge, no stall): a sale meets an engine that has measured its catalog's rates
    #: and lags. 0: the engine starts with the run and knows nothing yet.
    history_s: Seconds = 0.0


class Sku(_Table, frozen=True):
    """One SKU, or with `count` a family of `count` SKUs named `<id>-00001`..."""

    id: Id
    count: Annotated[int, Meta(ge=1, le=1_000_000)] = 1
    stock: Annotated[int, Meta(ge=0, le=2**40)] = 0
    price: Rate = 0.0
    #: its share of each channel's demand, relative to the other SKUs'
    weight: Rate = 1.0
    #: in a family, the n-th SKU's weight is weight / n ** zipf
    zipf: Annotated[float, Meta(ge=0.0, le=10.0)] = 0.0

    def ids(self) -> list[str]:
        if self.count == 1:
            return [self.id]
        return [f"{self.id}-{n:05d}" for n in range(1, self.count + 1)]

    def weights(self) -> list[float]:
        return [self.weight / n**self.zipf for n in range(1, self.count + 1)]


class Channel(_Table, frozen=True):
    """Demand on one of the policy's channels, and its delays."""

    id: Id
    #: buyers per second over the whole catalog, before surges
    rate: Rate = 0.0
    #: whose documented delays are the defaults (default: the channel id)
    platform: str | None = None
    push_lag: Lag | None = None
    order_lag: Lag | None = None
    #: the checkout reserves before it sells (a synchronous storefront)
    checkout_reserves: bool | None = None
    #: the shortest time between two quantity pushes (a feed limit), 0 = every step
    push_every_s: Seconds | None = None
    #: this channel's price as a multiple of the SKU's price
    price: Annotated[float, Meta(gt=0.0, le=1e3)] = 1.0
    #: demand × price ** -elasticity: the price-elastic mix across channels
    elasticity: Annotated[float, Meta(ge=0.0, le=20.0)] = 0.0


class Surge(_Table, frozen=True):
    """Extra demand: from `start_s` it rises over `ramp_s` to `factor` times the base rate,
    stays for `hold_s`, and falls back over `decay_s` (0 = at once)."""

    factor: Annotated[float, Meta(ge=1.0, le=1e6)]
    channels: tuple[Id, ...] = ()
    skus: tuple[Id, ...] = ()
    start_s: Seconds = 0.0
    ramp_s: Seconds = 0.0
    hold_s: Seconds = 0.0
    decay_s: Seconds = 0.0

    def shape(self, t: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The surge's extra demand at times `t`, from 0 to 1."""
        x = t - self.start_s
        ramp = np.clip(x / self.ramp_s, 0.0, 1.0) if self.ramp_s > 0 else (x >= 0).astype(float)
        tail = x - self.ramp_s - self.hold_s
        decay = (
            np.clip(1.0 - tail / self.decay_s, 0.0, 1.0)
            if self.decay_s > 0
            else (tail < 0).astype(float)
        )
        return np.asarray(ramp * decay, dtype=np.float64)


class Stall(_Table, frozen=True):
    """A channel that accepts no quantity push for a while (a stuck feed): what is pushed
    meanwhile is accepted after it ends."""

    channel: Id
    start_s: Seconds
    duration_s: Annotated[float, Meta(gt=0.0, le=30 * _DAY)]


class ScenarioFile(_Table, frozen=True):
    """The whole file, as written."""

    scenario: Head
    skus: Annotated[tuple[Sku, ...], Meta(min_length=1)]
    channels: Annotated[tuple[Channel, ...], Meta(min_length=1)]
    surges: tuple[Surge, ...] = ()
    stalls: tuple[Stall, ...] = ()


@dataclass(frozen=True)
class ChannelPlan:
    """A channel's demand and delays with every default filled in."""

    id: str
    rate: float
    push_lag: Lag | WithinP99
    order_lag: Lag | WithinP99
    checkout_reserves: bool
    push_every_s: float
    price: float
    stalls: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Scenario:
    """A validated scenario, resolved against its policy."""

    source: str
    head: Head
    location: str
    #: every SKU id, families expanded, in file order
    skus: tuple[str, ...]
    stock: tuple[int, ...]
    price: tuple[float, ...]
    weight: tuple[float, ...]
    channels: tuple[ChannelPlan, ...]
    surges: tuple[tuple[Surge, tuple[int, ...], tuple[int, ...]], ...]

    def within_p99(self) -> Scenario:
        """This scenario with every push and order lag cut at its p99 (stalls stay): the
        same seed draws the same buyers and lags, only the tail beyond the p99 goes."""
        return replace(
            self,
            channels=tuple(
                replace(
                    plan,
                    push_lag=WithinP99(plan.push_lag),
                    order_lag=WithinP99(plan.order_lag),
                )
                for plan in self.channels
            ),
        )

    def history(self) -> Scenario | None:
        """The time before the run as a scenario of its own (None without one): the base
        demand over `history_s`, with no surge and no stall, its times counted from its
        own start (`demand.draw` moves them before the run's)."""
        length = self.head.history_s
        if length <= 0:
            return None
        head = msgspec.structs.replace(self.head, horizon_s=length, history_s=0.0)
        channels = tuple(replace(plan, stalls=()) for plan in self.channels)
        return replace(self, head=head, channels=channels, surges=())

    @classmethod
    def from_toml(cls, text: str, policy: Policy, source: str = "<scenario>") -> Scenario:
        """Decode and validate `text` against `policy`; raise `ScenarioError` at the first
        problem."""
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError(source, *syntax_problem(exc, text)) from None
        try:
            document = msgspec.convert(raw, ScenarioFile)
            return cls._resolve(document, policy, source)
        except msgspec.ValidationError as exc:
            path, message = msgspec_path(str(exc), raw)
            raise ScenarioError(source, *locate(text, raw, path, message)) from None
        except _Refusal as refused:
            raise ScenarioError(source, *locate(text, raw, refused.path, refused.message)) from None

    @classmethod
    def load(cls, path: str | PathLike[str], policy: Policy) -> Scenario:
        """Read and validate a scenario file; an unreadable file is a `ScenarioError` too."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ScenarioError(str(path), 0, "file", str(exc)) from None
        return cls.from_toml(text, policy, str(path))

    @classmethod
    def _resolve(cls, doc: ScenarioFile, policy: Policy, source: str) -> Scenario:
        location = _stock_location(doc.scenario, policy)
        skus: list[str] = []
        stock: list[int] = []
        price: list[float] = []
        weight: list[float] = []
        #: a SKU's index by its id, and a family's indices by the family's id
        family: dict[str, list[int]] = {}
        for index, sku in enumerate(doc.skus):
            if sku.stock and policy.sku_kind(sku.id) == "bundle":
                raise _Refusal(
                    ("skus", index, "stock"), "a bundle's stock is its components': set it there"
                )
            if sku.id in family:
                raise _Refusal(("skus", index, "id"), f"SKU {sku.id!r} is listed twice")
            members = family[sku.id] = []
            for name, share in zip(sku.ids(), sku.weights(), strict=True):
                if name != sku.id:
                    if name in family:
                        raise _Refusal(("skus", index, "id"), f"SKU {name!r} is listed twice")
                    family[name] = [len(skus)]
                members.append(len(skus))
                skus.append(name)
                stock.append(sku.stock)
                price.append(sku.price)
                weight.append(share)
        channels = tuple(
            _channel_plan(index, channel, doc.stalls, policy)
            for index, channel in enumerate(doc.channels)
        )
        seen: set[str] = set()
        for index, channel in enumerate(doc.channels):
            if channel.id in seen:
                raise _Refusal(("channels", index, "id"), f"channel {channel.id!r} is listed twice")
            seen.add(channel.id)
        for index, stall in enumerate(doc.stalls):
            if stall.channel not in seen:
                raise _Refusal(
                    ("stalls", index, "channel"), _unknown("channel", stall.channel, seen)
                )
        by_id = {channel.id: n for n, channel in enumerate(doc.channels)}
        surges = tuple(
            (
                surge,
                _members(("surges", index, "channels"), surge.channels, by_id),
                _family_members(("surges", index, "skus"), surge.skus, family),
            )
            for index, surge in enumerate(doc.surges)
        )
        return cls(
            source=source,
            head=doc.scenario,
            location=location,
            skus=tuple(skus),
            stock=tuple(stock),
            price=tuple(price),
            weight=tuple(weight),
            channels=channels,
            surges=surges,
        )


class _Refusal(Exception):
    """A rule broken at `path`; turned into a `ScenarioError` once the line is known."""

    def __init__(self, path: FieldPath, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def _unknown(what: str, name: str, known: Any) -> str:
    names = sorted(known)
    listed = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    return f"unknown {what} {name!r} (known: {listed})"


def _stock_location(head: Head, policy: Policy) -> str:
    online = [loc.id for loc in policy.document.locations if loc.online]
    if head.location is None:
        if not online:
            raise _Refusal(("scenario", "location"), "the policy has no online location")
        return online[0]
    if head.location not in online:
        raise _Refusal(("scenario", "location"), _unknown("online location", head.location, online))
    return head.location


def _channel_plan(
    index: int, channel: Channel, stalls: tuple[Stall, ...], policy: Policy
) -> ChannelPlan:
    if channel.id not in policy.channels:
        raise _Refusal(("channels", index, "id"), _unknown("channel", channel.id, policy.channels))
    platform = PLATFORMS.get(channel.platform or channel.id)
    if channel.platform is not None and platform is None:
        raise _Refusal(
            ("channels", index, "platform"), _unknown("platform", channel.platform, PLATFORMS)
        )
    if platform is None and (channel.push_lag is None or channel.order_lag is None):
        missing = "push_lag" if channel.push_lag is None else "order_lag"
        raise _Refusal(
            ("channels", index, missing),
            f"no platform is named {channel.id!r}: give push_lag and order_lag, or platform",
        )
    push_lag = channel.push_lag or (platform.push_lag if platform else Fixed(s=0.0))
    order_lag = channel.order_lag or (platform.order_lag if platform else Fixed(s=0.0))
    reserves = channel.checkout_reserves
    if reserves is None:
        reserves = platform.checkout_reserves if platform else False
    every = channel.push_every_s
    if every is None:
        every = platform.push_every_s if platform else 0.0
    return ChannelPlan(
        id=channel.id,
        rate=channel.rate * channel.price**-channel.elasticity,
        push_lag=push_lag,
        order_lag=order_lag,
        checkout_reserves=reserves,
        push_every_s=every,
        price=channel.price,
        stalls=tuple(
            (stall.start_s, stall.start_s + stall.duration_s)
            for stall in stalls
            if stall.channel == channel.id
        ),
    )


def _members(
    path: FieldPath, names: tuple[str, ...], index_of: Mapping[str, int]
) -> tuple[int, ...]:
    """Indices of the named entries (all of them when none is named)."""
    if not names:
        return tuple(index_of.values())
    for position, name in enumerate(names):
        if name not in index_of:
            raise _Refusal((*path, position), _unknown("channel", name, index_of))
    return tuple(index_of[name] for name in names)


def _family_members(
    path: FieldPath, names: tuple[str, ...], family: Mapping[str, list[int]]
) -> tuple[int, ...]:
    """Indices of the named SKUs or families (every SKU when none is named)."""
    if not names:
        return tuple(sorted(i for members in family.values() for i in members))
    out: list[int] = []
    for position, name in enumerate(names):
        if name not in family:
            raise _Refusal((*path, position), _unknown("SKU", name, family))
        out += family[name]
    return tuple(out)
