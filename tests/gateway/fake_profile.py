"""An in-process platform for the push machinery's tests: no HTTP, a script of what
to answer, and a record of every request, so a test reads as a story ("429, then
200"; "refuse this listing")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp

from invsync.gateway.platforms.base import (
    BudgetReport,
    Change,
    LaneLimits,
    Listing,
    Outcome,
    Price,
    Reply,
)

ID_FIELDS = ("item_id",)
# The id column a grouping lane batches by, like TikTok's product or Shopee's item.
PARENT = "parent_id"


def listing(sku: str, condition: str = "new") -> Listing:
    return Listing(sku, condition, {"item_id": f"{sku}-{condition}"})


def child(sku: str, parent: str) -> Listing:
    """A listing that is one variant of `parent`: a grouping lane sends it only with its
    siblings."""
    return Listing(sku, "new", {"item_id": f"{sku}-new", PARENT: parent})


@dataclass
class FakeLane:
    """A lane that applies everything unless told otherwise. `failures` are raised one
    per request before anything is applied; `refuse` maps a listing key to the
    platform's reason; `retry` keys get a transient per-item outcome once; `held` maps a
    listing key to stock the platform holds for a promotion, below which it refuses.
    `quantities` and `prices` say what it carries; `refuse_prices` maps a listing key to
    the reason the platform refuses any price for it (a change carrying one is refused
    whole, as eBay's entries are)."""

    name: str
    limits: LaneLimits
    asynchronous: bool = False
    quantities: bool = True
    prices: bool = False
    shown: dict[str, int] = field(default_factory=dict)
    priced: dict[str, Price] = field(default_factory=dict)
    refuse_prices: dict[str, str] = field(default_factory=dict)
    requests: list[list[Change]] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    retry: set[str] = field(default_factory=set)
    held: dict[str, int] = field(default_factory=dict)
    budget: BudgetReport = field(default_factory=BudgetReport)
    jobs: dict[str, list[Outcome]] = field(default_factory=dict)
    polls_until_done: int = 1
    _polls: dict[str, int] = field(default_factory=dict)

    async def send(self, http: aiohttp.ClientSession, changes: Sequence[Change]) -> Reply:
        self.requests.append(list(changes))
        if self.failures:
            raise self.failures.pop(0)
        outcomes = [self._apply(change) for change in changes]
        if self.asynchronous:
            job = f"job-{len(self.jobs) + 1}"
            self.jobs[job] = outcomes
            return Reply([], self.budget, job=job)
        return Reply(outcomes, self.budget)

    async def poll(self, http: aiohttp.ClientSession, job: str) -> Reply | None:
        self._polls[job] = self._polls.get(job, 0) + 1
        if self._polls[job] < self.polls_until_done:
            return None
        return Reply(self.jobs[job])

    def answer(self, changes: Sequence[Change]) -> list[Outcome]:
        """What a synchronous call with `changes` would answer, recorded as sent."""
        self.requests.append(list(changes))
        return [self._apply(change) for change in changes]

    def _apply(self, change: Change) -> Outcome:
        key = change.listing.ids["item_id"]
        assert change.qty is None or self.quantities, f"{self.name} got a quantity"
        assert change.price is None or self.prices, f"{self.name} got a price"
        if key in self.refuse:
            return Outcome(applied=False, reason=self.refuse[key])
        if change.price is not None and key in self.refuse_prices:
            return Outcome(applied=False, reason=self.refuse_prices[key])
        if key in self.retry:
            self.retry.discard(key)
            return Outcome(applied=False, reason="E500: try again", retry=True)
        floor = self.held.get(key, 0)
        if change.qty is not None and change.qty < floor:
            return Outcome(applied=False, reason=f"E_HOLD: {floor} held", held=floor)
        if change.qty is not None:
            self.shown[key] = change.qty
        if change.price is not None:
            self.priced[key] = change.price
        return Outcome(applied=True)

    def sent_keys(self) -> list[list[str]]:
        return [[c.listing.ids["item_id"] for c in request] for request in self.requests]


@dataclass
class FakeProfile:
    lanes: list[FakeLane]
    platform: str = "fake"
    id_fields: tuple[str, ...] = ID_FIELDS
    daily_revisions: int | None = None
    currency: str = "USD"

    def listing_key(self, listing: Listing) -> str:
        return listing.ids["item_id"]


def per_item_lane(rate: float = 10.0, burst: float = 10.0, batch: int = 1) -> FakeLane:
    return FakeLane("item", LaneLimits(rate=rate, burst=burst, batch=batch))


def price_lane(rate: float = 10.0, burst: float = 10.0, batch: int = 1) -> FakeLane:
    """A lane that carries prices only (Walmart's PUT /v3/price)."""
    return FakeLane(
        "price", LaneLimits(rate=rate, burst=burst, batch=batch), quantities=False, prices=True
    )


def price_quantity_lane(rate: float = 10.0, burst: float = 10.0, batch: int = 5) -> FakeLane:
    """A lane that sets price and quantity in one call (eBay's, Lazada's)."""
    return FakeLane("price_quantity", LaneLimits(rate=rate, burst=burst, batch=batch), prices=True)


def per_parent_lane(rate: float = 100.0, burst: float = 100.0, batch: int = 10) -> FakeLane:
    """A lane whose call updates one parent's variants, `batch` at most."""
    return FakeLane("parent", LaneLimits(rate=rate, burst=burst, batch=batch, group_by=PARENT))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
