"""One marketplace's listings and request counters, shared by its routes, the sale
endpoint and `GET /sandbox/state`; and the price rules that take a listing off sale."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

LIVE = "live"


@dataclass
class Counters:
    """Requests a platform served: every request, those throttled (429 or the
    platform's throttle reply) and those refused (bad auth, shape, batch, quantity)."""

    requests: int = 0
    throttled: int = 0
    rejected: int = 0


@dataclass
class SandboxListing:
    """A listing as the marketplace holds it: `key` is the platform's id for it (what
    `POST /sandbox/sale` names), `sku`/`condition` the seller's stock key it maps to."""

    key: str
    sku: str
    condition: str
    ids: dict[str, str]
    qty: int = 0
    sold: int = 0
    updates: int = 0
    # The price the marketplace sells at (a decimal string in the market's currency),
    # None until one was pushed; and what its sales brought in.
    price: str | None = None
    revenue: Decimal = Decimal(0)


class PriceRule(Protocol):
    """A platform's rule that takes a listing off sale over its price (Lazada's QC
    review, Walmart's reasonable-price rule)."""

    def off_sale(self, listing: SandboxListing) -> tuple[str, str] | None:
        """(status, reason) while the rule keeps `listing` off sale, else None."""
        ...


@dataclass
class Market:
    """One platform's marketplace on the sandbox, selling for one policy channel.
    `options` are the channel's platform options from the channels file (e.g. Shopify
    `plan`), so the emulation serves the account the gateway is configured for."""

    platform: str
    channel: str
    listings: dict[str, SandboxListing] = field(default_factory=dict)
    counters: Counters = field(default_factory=Counters)
    options: dict[str, str] = field(default_factory=dict)
    rules: list[PriceRule] = field(default_factory=list)
    # The sandbox's other marketplaces, where a rule looks for the seller's prices.
    neighbours: list[Market] = field(default_factory=list)

    def currency(self, default: str) -> str:
        """The currency the channel sells in: its option `currency`, else `default`."""
        return self.options.get("currency", default)

    def status(self, listing: SandboxListing) -> tuple[str, str | None]:
        """Whether `listing` is for sale (`live`), or which rule keeps it off and why."""
        for rule in self.rules:
            off = rule.off_sale(listing)
            if off is not None:
                return off
        return LIVE, None

    def prices_elsewhere(self, listing: SandboxListing) -> list[tuple[str, Decimal]]:
        """The seller's prices for the same (sku, condition) on the other marketplaces
        (platform, price), whatever their currency (a rehearsal sells in one)."""
        return [
            (market.platform, Decimal(other.price))
            for market in self.neighbours
            for other in market.listings.values()
            if (other.sku, other.condition) == (listing.sku, listing.condition)
            and other.price is not None
        ]


class Bucket:
    """A token bucket as platforms enforce one: `capacity` tokens, refilled at `rate`
    per second. `take(cost)` spends and returns True, or returns False (throttled)."""

    def __init__(
        self, rate: float, capacity: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._level = capacity
        self._at = clock()

    def available(self) -> float:
        now = self._clock()
        self._level = min(self.capacity, self._level + (now - self._at) * self.rate)
        self._at = now
        return self._level

    def take(self, cost: float) -> bool:
        if self.available() < cost:
            return False
        self._level -= cost
        return True

    def wait_s(self, cost: float) -> float:
        """Seconds until `cost` tokens are there (for a Retry-After)."""
        return max(0.0, (cost - self.available()) / self.rate)
