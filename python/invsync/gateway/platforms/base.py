"""What a platform profile gives the shared push machinery, and what it gets back.

A profile knows one marketplace's wire: how to authenticate, how to turn a batch of
quantity and price changes into requests, and how to read the reply into one `Outcome` per
change plus what the reply says about the budget. It keeps no queue and never
sleeps: ordering, coalescing, budgets, retries and acks are the scheduler's and the
connector's, the same for every platform.

A profile has one or more lanes. A lane is one way of sending (Amazon: a per-item
PATCH, or a JSON_LISTINGS_FEED for backlogs; Walmart: a single-item PUT or a bulk
feed), with its own batch size and budget. A synchronous lane's reply says what was
applied; an asynchronous lane's reply names a job whose outcomes `poll` reads later.
A lane says what it carries: quantities, prices, or both where the platform sets them
in one call (eBay's bulkUpdatePriceQuantity, Lazada's UpdatePriceQuantity, Amazon's
listing PATCH), so a pending price and quantity of one listing go in one request.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Protocol

import aiohttp

from invsync.gateway.secrets import Secret


@dataclass(frozen=True)
class Listing:
    """The platform's ids for one (sku, condition), from the listing map. `ids` holds the
    columns the profile names in `id_fields` (e.g. Shopify `inventory_item_id`,
    `location_id`; Amazon `seller_sku`; eBay `ebay_sku`, `offer_id`)."""

    sku: str
    condition: str
    ids: Mapping[str, str]


@dataclass(frozen=True)
class Price:
    """A listing's price as the service published it: `amount` a decimal string
    ("19.99", sent to the platform as written) in `currency` (ISO 4217)."""

    amount: str
    currency: str

    @property
    def value(self) -> Decimal:
        return Decimal(self.amount)

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


@dataclass(frozen=True)
class Change:
    """One listing's quantity and/or price to send. `known` is what the marketplace was
    last known to show (its last accepted quantity from us, or what it reported), None
    when unknown: Shopify's compare-and-swap sends it as `changeFromQuantity`. `qty` is
    None in a change that sets only the price (`price` None: only the quantity); a lane
    that carries no prices is only ever given quantities."""

    listing: Listing
    qty: int | None
    known: int | None
    source_ts: datetime
    price: Price | None = None

    @property
    def quantity(self) -> int:
        """The quantity of a change on a lane that carries only quantities."""
        if self.qty is None:
            raise ValueError(f"a quantity lane was given a price-only change of {self.listing}")
        return self.qty


@dataclass(frozen=True)
class Outcome:
    """What the platform did with one `Change`.

    - applied: accepted; `shown` is the quantity it now shows when the reply says so.
    - refused (applied False, retry False): the platform rejected this item for a reason
      a person must act on (unknown listing, quantity out of range, listing not live,
      revision cap reached); alerted as `channel_error` with `reason`, not retried blindly.
    - retry (applied False, retry True): transient for this item (Shopify's
      CHANGE_FROM_QUANTITY_STALE with the quantity it now shows in `shown`, a per-item
      5xx, a job that did not apply it): sent again after a backoff.
    - bystander (with retry): not applied only because another item of the same
      all-or-nothing request was refused; sent again at once, and not counted as a
      failed attempt of its own.
    - held (applied False, `held` above the quantity sent): the platform refused to go
      below the stock it holds for its own promotions or orders (Shopee's reserved
      stock, Lazada's locked stock); `held` is that floor and `reason` the platform's
      word. The scheduler sends `held` instead and reports the hold.
    """

    applied: bool
    reason: str | None = None
    retry: bool = False
    shown: int | None = None
    held: int | None = None
    bystander: bool = False


@dataclass(frozen=True)
class BudgetReport:
    """What a reply says about the lane's budget, all optional: a 429's `Retry-After`,
    a rate from a header (Amazon `x-amzn-RateLimit-Limit`), Shopify's throttleStatus
    (`available`, `capacity`, `rate` in cost points), Walmart's token count."""

    retry_after_s: float | None = None
    rate: float | None = None
    capacity: float | None = None
    available: float | None = None


@dataclass(frozen=True)
class Reply:
    """A lane's reply to one batch: one outcome per change, in order (empty while `job`
    is set: the outcomes come from `poll`)."""

    outcomes: Sequence[Outcome]
    budget: BudgetReport = field(default_factory=BudgetReport)
    job: str | None = None


@dataclass(frozen=True)
class LaneLimits:
    """A lane's documented budget: `rate` cost units per second refilled into a bucket of
    `burst`; `batch` changes per request at most; `cost_per_request` and
    `cost_per_item` in the same units (Shopify: query cost points; else requests).
    `processing_s` is how long an asynchronous lane's job usually takes to apply: the
    scheduler sends a backlog through such a lane only when the per-item lane would
    take longer than that to clear it. `group_by` names the listing id column every
    change of one request must share, for a platform whose call updates one parent
    (TikTok `product_id`, Shopee `item_id`); None: any listings go together. Lanes
    whose limits name the same `shared_budget` spend one bucket (Shopify's calls all
    spend the store's query-cost bucket); "" : the lane's own."""

    rate: float
    burst: float
    batch: int
    cost_per_request: float = 1.0
    cost_per_item: float = 0.0
    processing_s: float = 0.0
    group_by: str | None = None
    shared_budget: str = ""

    def cost(self, items: int) -> float:
        return self.cost_per_request + self.cost_per_item * items

    @property
    def floor_s(self) -> float:
        """The least latency the lane's documented budget allows a full request: its
        share of the rate (one slot), plus the job's processing time on an
        asynchronous lane."""
        return self.cost(self.batch) / self.rate + self.processing_s


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """A `Retry-After` header in seconds: delta-seconds or an HTTP date (RFC 9110
    10.2.3); None when absent or unreadable."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # "-0000": UTC by RFC 5322
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


class Throttled(Exception):
    """The whole request was throttled (HTTP 429, Shopify THROTTLED): send it again later;
    the budget report says when."""

    def __init__(self, reason: str, budget: BudgetReport) -> None:
        super().__init__(reason)
        self.budget = budget


class TransientError(Exception):
    """The whole request failed in a way worth retrying: a 5xx, a time-out, a broken
    connection. The message is the platform's reason, never a credential."""


class AuthError(Exception):
    """The credentials were refused even after a refresh: a person must fix them. The
    message says which credential (by its variable or file name), never its value."""


class BatchRefused(Exception):
    """The platform refused the whole request as malformed (HTTP 400 on the request
    itself): a bug or a profile out of date, alerted with the platform's reason."""


@dataclass(frozen=True)
class ProfileSettings:
    """What the channels file gives a profile: the policy channel it serves, the base
    URL (None: the platform's own), the credentials it named, its other platform keys
    (e.g. Amazon `seller_id`, `marketplace_id`, `token_url`; Shopify `api_version`)
    and overrides of the per-item lane's documented limits (`rate`, `burst`, `batch`,
    `daily_revisions`)."""

    channel: str
    base_url: str | None
    credentials: Mapping[str, Secret]
    options: Mapping[str, str]
    overrides: Mapping[str, float]


class Lane(Protocol):
    """One way of sending quantities and/or prices to a platform: `quantities` and
    `prices` say which it carries."""

    name: str
    limits: LaneLimits
    asynchronous: bool
    quantities: bool
    prices: bool

    async def send(self, http: aiohttp.ClientSession, changes: Sequence[Change]) -> Reply:
        """Send one batch (at most `limits.batch` changes). Raises Throttled,
        TransientError, AuthError or BatchRefused for whole-request failures."""
        ...

    async def poll(self, http: aiohttp.ClientSession, job: str) -> Reply | None:
        """An asynchronous job's outcomes, in the order of the batch that made it; None
        while the platform is still processing it. Synchronous lanes never get polled."""
        ...


class Profile(Protocol):
    """One marketplace: its lanes (of those carrying quantities, the first is the
    per-item lane and a second, if any, the bulk lane for backlogs; the first lane
    carrying prices sends them), the listing id columns it needs, and the currency the
    channel sells in (a price in another is refused before it is sent)."""

    platform: str
    id_fields: tuple[str, ...]
    lanes: Sequence[Lane]
    currency: str
    # eBay: revisions per listing per calendar day (UTC); None where there is no cap.
    daily_revisions: int | None

    def listing_key(self, listing: Listing) -> str:
        """The id the marketplace knows the listing by (the sandbox's `listing`)."""
        ...


class ProfileFactory(Protocol):
    """Builds a platform's profile from its settings; raises ValueError naming the
    missing or bad setting."""

    def __call__(self, settings: ProfileSettings) -> Profile: ...
