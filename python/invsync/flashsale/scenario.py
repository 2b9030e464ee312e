"""A seeded flash-sale workload: what each producer sends, and when.

The same seed gives the same steps, so a run that found a problem can be
replayed. Demand is Zipf-skewed over the SKUs; the most popular ones are the
hot SKUs and start with little stock. Shoppers take checkout holds and then
buy (a few cancel later) or walk away (the hold expires); marketplaces report
orders after the sale (which may backorder); the warehouse ships and receives
mid-sale; one channel runs a promotion that adds a burst of traffic in the middle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Body = dict[str, Any]

# The channels of a typical multichannel seller, highest priority first.
DEFAULT_CHANNELS: tuple[tuple[str, int], ...] = (
    ("shopify", 1),
    ("b2b", 1),
    ("amazon", 2),
    ("walmart", 2),
    ("ebay", 3),
    ("tiktok", 3),
)
MAX_STEPS = 2_000_000


@dataclass(frozen=True)
class Mix:
    """Shares of the primary traffic: checkout holds, post-sale orders, stock receipts."""

    reserve: float = 0.6
    order: float = 0.35
    receive: float = 0.05

    @classmethod
    def parse(cls, text: str) -> Mix:
        """Read `reserve=60,order=35,receive=5` (any positive weights; normalised)."""
        weights = {"reserve": 0.0, "order": 0.0, "receive": 0.0}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, sep, value = part.partition("=")
            if not sep or name.strip() not in weights:
                raise ValueError(f"mix: expected reserve=N,order=N,receive=N, got {part!r}")
            weight = float(value)
            if weight < 0:
                raise ValueError(f"mix: {name.strip()} must not be negative")
            weights[name.strip()] = weight
        total = sum(weights.values())
        if total <= 0:
            raise ValueError("mix: at least one weight must be positive")
        return cls(**{name: weight / total for name, weight in weights.items()})


@dataclass(frozen=True)
class ScenarioConfig:
    """Everything that shapes a run; two equal configs generate equal steps."""

    channels: tuple[tuple[str, int], ...] = DEFAULT_CHANNELS
    location: str = "wh-1"
    rate: float = 500.0
    duration_s: float = 10.0
    skus: int = 200
    hot_skus: int = 3
    hot_stock: int = 40
    cold_stock: tuple[int, int] = (50, 500)
    zipf_exponent: float = 1.1
    mix: Mix = field(default_factory=Mix)
    seed: int = 1
    run_id: str = "run"
    sku_names: tuple[str, ...] = ()
    hold_seconds: int = 3
    spike_channel: str | None = None
    spike_window: tuple[float, float] = (0.4, 0.7)
    spike_extra: float = 0.5
    checkout_share: float = 0.7
    cancel_share: float = 0.1
    ship_share: float = 0.5
    order_cancel_share: float = 0.1


@dataclass(frozen=True)
class Step:
    """One message at `at` seconds into the sale.

    `subject` is relative to the prefix (`order.shopify`, `reserve.b2b`); `sku`
    is the one SKU the message touches. The `then` steps follow at their `at`
    seconds after this one is sent (after a request's reply, and only when the
    service granted it). A `neutral` event leaves the SKU's availability as it
    was (a purchase converting its own live hold, a shipment of reserved units),
    so no reservation decision depends on whether it came first.
    """

    at: float
    subject: str
    body: Body
    sku: str
    is_request: bool = False
    neutral: bool = False
    then: tuple[Step, ...] = ()


@dataclass(frozen=True)
class Scenario:
    """The generated workload: stock before the sale, then the timed steps."""

    config: ScenarioConfig
    skus: tuple[str, ...]
    hot: tuple[str, ...]
    setup: tuple[Body, ...]
    steps: tuple[Step, ...]

    @property
    def stock_subject(self) -> str:
        return f"stock.{self.config.location}"

    @property
    def offered(self) -> int:
        """Primary steps scheduled (follow-ups depend on the service's answers)."""
        return len(self.steps)


def sku_names(config: ScenarioConfig) -> tuple[str, ...]:
    """The SKUs in popularity order: the configured names first, then generated ones."""
    named = config.sku_names[: config.skus]
    generated = (f"{config.run_id}-{rank:05d}" for rank in range(len(named), config.skus))
    return (*named, *generated)


def zipf_weights(count: int, exponent: float) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Probability of each popularity rank (rank 1 first)."""
    weights = 1.0 / np.arange(1, count + 1, dtype=np.float64) ** exponent
    result: np.ndarray[Any, np.dtype[np.float64]] = weights / weights.sum()
    return result


class _Ids:
    """Unique ids per run, so repeated runs against one service never collide."""

    def __init__(self, run_id: str) -> None:
        self._run_id = run_id
        self._counts: dict[str, int] = {}

    def next(self, kind: str) -> str:
        count = self._counts.get(kind, 0) + 1
        self._counts[kind] = count
        return f"{self._run_id}-{kind}{count}"


def generate(config: ScenarioConfig) -> Scenario:
    """Build the whole workload up front from the seed."""
    if config.skus < 1 or not 0 <= config.hot_skus <= config.skus:
        raise ValueError("need at least one SKU and no more hot SKUs than SKUs")
    if not config.channels:
        raise ValueError("need at least one channel")
    expected_steps = config.rate * config.duration_s * (1 + config.spike_extra)
    if expected_steps > MAX_STEPS:
        raise ValueError(f"about {expected_steps:,.0f} steps is over the {MAX_STEPS:,} limit")
    rng = np.random.default_rng(config.seed)
    ids = _Ids(config.run_id)
    skus = sku_names(config)
    hot = skus[: config.hot_skus]
    setup = tuple(_initial_stock(config, rng, ids, skus))
    arrivals = _arrivals(config, rng)
    builder = _StepBuilder(config, rng, ids, skus)
    steps = tuple(builder.step(at, channel) for at, channel in arrivals)
    return Scenario(config=config, skus=skus, hot=hot, setup=setup, steps=steps)


def _initial_stock(
    config: ScenarioConfig, rng: np.random.Generator, ids: _Ids, skus: Sequence[str]
) -> list[Body]:
    low, high = config.cold_stock
    events = []
    for rank, sku in enumerate(skus):
        on_hand = config.hot_stock if rank < config.hot_skus else int(rng.integers(low, high + 1))
        events.append(
            {
                "type": "stock.set",
                "event_id": ids.next("e"),
                "sku": sku,
                "location": config.location,
                "on_hand": on_hand,
            }
        )
    return events


def _arrivals(config: ScenarioConfig, rng: np.random.Generator) -> list[tuple[float, str]]:
    """Poisson arrivals over the sale, plus the promotion burst on one channel."""
    names = [name for name, _tier in config.channels]
    base = _poisson_times(rng, config.rate, 0.0, config.duration_s)
    picks = rng.integers(0, len(names), size=len(base))
    arrivals = [(float(at), names[int(pick)]) for at, pick in zip(base, picks, strict=True)]
    spike = config.spike_channel
    if spike is not None and config.spike_extra > 0:
        start, end = (share * config.duration_s for share in config.spike_window)
        burst = _poisson_times(rng, config.rate * config.spike_extra, start, end)
        arrivals.extend((float(at), spike) for at in burst)
    arrivals.sort(key=lambda arrival: arrival[0])
    return arrivals


def _poisson_times(
    rng: np.random.Generator, rate: float, start: float, end: float
) -> np.ndarray[Any, np.dtype[np.float64]]:
    expected = max(0.0, rate * (end - start))
    count = int(rng.poisson(expected)) if expected > 0 else 0
    return np.sort(rng.uniform(start, end, size=count))


class _StepBuilder:
    """Turns one arrival into a step; every random draw comes from the seeded generator."""

    def __init__(
        self, config: ScenarioConfig, rng: np.random.Generator, ids: _Ids, skus: Sequence[str]
    ) -> None:
        self._config = config
        self._rng = rng
        self._ids = ids
        self._skus = skus
        # Cumulative shares, so a draw is one binary search instead of a pass over every SKU.
        self._popularity = np.cumsum(zipf_weights(len(skus), config.zipf_exponent))
        mix = config.mix
        self._kinds = np.cumsum([mix.reserve, mix.order, mix.receive])

    def step(self, at: float, channel: str) -> Step:
        draw = self._rng.random() * self._kinds[-1]
        if draw < self._kinds[0]:
            return self._checkout(at, channel)
        if draw < self._kinds[1]:
            return self._marketplace_order(at, channel)
        return self._receipt(at)

    def _sku(self) -> str:
        rank = int(np.searchsorted(self._popularity, self._rng.random(), side="right"))
        return self._skus[min(rank, len(self._skus) - 1)]

    def _qty(self) -> int:
        draw = self._rng.random()
        return 1 if draw < 0.8 else 2 if draw < 0.95 else 3

    def _checkout(self, at: float, channel: str) -> Step:
        """A checkout hold; the shopper buys (and maybe cancels later) or walks away."""
        config = self._config
        order_id = self._ids.next("o")
        sku, qty = self._sku(), self._qty()
        request = {
            "type": "reserve",
            "request_id": self._ids.next("r"),
            "order_id": order_id,
            "channel": channel,
            "lines": [{"line_id": "1", "sku": sku, "qty": qty}],
            "hold_seconds": config.hold_seconds,
        }
        fate = self._rng.random()
        # Shoppers decide well inside the hold, so a purchase always converts a live hold.
        decide_at = float(self._rng.uniform(0.05, 0.3)) * config.hold_seconds
        then: tuple[Step, ...] = ()
        if fate < config.checkout_share:
            placed = self._placed(decide_at, channel, order_id, sku, qty, converts_hold=True)
            then = (placed,)
            if self._rng.random() < config.ship_share:
                ship_at = decide_at + float(self._rng.uniform(0.2, 1.0))
                then += (self._shipped(ship_at, channel, order_id, sku, qty),)
        elif fate < config.checkout_share + config.cancel_share:
            placed = self._placed(decide_at, channel, order_id, sku, qty, converts_hold=True)
            cancel_at = decide_at + float(self._rng.uniform(0.2, 1.0))
            then = (placed, self._cancelled(cancel_at, channel, order_id, sku))
        return Step(at, f"reserve.{channel}", request, sku, is_request=True, then=then)

    def _marketplace_order(self, at: float, channel: str) -> Step:
        """An order the channel already sold: committed, backordered beyond stock."""
        order_id, sku = self._ids.next("o"), self._sku()
        placed = self._placed(at, channel, order_id, sku, self._qty())
        if self._rng.random() >= self._config.order_cancel_share:
            return placed
        cancel = self._cancelled(float(self._rng.uniform(0.2, 1.0)), channel, order_id, sku)
        return Step(at, placed.subject, placed.body, sku, then=(cancel,))

    def _receipt(self, at: float) -> Step:
        """A delivery put away mid-sale; it fills backorders first.

        Deliveries were ordered before the sale, so they do not follow its demand:
        any SKU is equally likely.
        """
        config = self._config
        sku = self._skus[int(self._rng.integers(0, len(self._skus)))]
        event = {
            "type": "stock.received",
            "event_id": self._ids.next("e"),
            "sku": sku,
            "location": config.location,
            "qty": int(self._rng.integers(5, 31)),
        }
        return Step(at, f"stock.{config.location}", event, sku)

    def _placed(
        self,
        at: float,
        channel: str,
        order_id: str,
        sku: str,
        qty: int,
        *,
        converts_hold: bool = False,
    ) -> Step:
        event = {
            "type": "order.placed",
            "event_id": self._ids.next("e"),
            "order_id": order_id,
            "channel": channel,
            "lines": [{"line_id": "1", "sku": sku, "qty": qty}],
        }
        return Step(at, f"order.{channel}", event, sku, neutral=converts_hold)

    def _cancelled(self, at: float, channel: str, order_id: str, sku: str) -> Step:
        event = {"type": "order.cancelled", "event_id": self._ids.next("e"), "order_id": order_id}
        return Step(at, f"order.{channel}", event, sku)

    def _shipped(self, at: float, channel: str, order_id: str, sku: str, qty: int) -> Step:
        location = self._config.location
        event = {
            "type": "order.shipped",
            "event_id": self._ids.next("e"),
            "order_id": order_id,
            "lines": [{"line_id": "1", "qty": qty, "location": location}],
        }
        return Step(at, f"order.{channel}", event, sku, neutral=True)
