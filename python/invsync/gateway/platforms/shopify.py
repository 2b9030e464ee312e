"""Shopify: absolute `available` quantities through the Admin GraphQL
`inventorySetQuantities` mutation, 250 per request, within the store's query-cost
bucket (facts and sources: invsync.marketplaces.shopify).

Every quantity carries `changeFromQuantity`: what invsync last knew the store to show
(`Change.known`), or null when it does not know. A store that shows something else
(a sale, an edit in the admin) answers CHANGE_FROM_QUANTITY_STALE; the profile reads
the quantity the store now shows (when its bucket has room) and returns it with a
retry, and the retry goes without the compare: invsync's quantity is what the store
must show either way, and on a listing that keeps selling a compare against the
value just read loses the race again (under a flash sale, five times in a row).

The mutation is all or nothing: when one quantity is refused, the others were not
applied either and come back as retries.

Prices go by `productVariantsBulkUpdate`, one variant per request, spending the same
query-cost bucket. The mutation names the variant and its product, which the listing
map does not: each inventory item's are read once (`InventoryItem.variant`) and kept
for the gateway's lifetime.

Channels file: `base_url` (the store, e.g. "https://example.myshopify.com") or option
`shop` ("example"), credential `access_token`, options `api_version` (default
2026-04) and `plan` (standard, advanced, plus, enterprise: the starting budget; the
replies' throttleStatus corrects it either way).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp

from invsync.gateway.platforms import settings as channel
from invsync.gateway.platforms.base import (
    AuthError,
    BatchRefused,
    BudgetReport,
    Change,
    Lane,
    LaneLimits,
    Listing,
    Outcome,
    ProfileFactory,
    ProfileSettings,
    Reply,
    Throttled,
    TransientError,
    retry_after_s,
)
from invsync.gateway.secrets import Secret
from invsync.marketplaces import shopify as doc

REQUEST_TIMEOUT_S = 15.0
# Every call spends the store's one query-cost bucket.
STORE_BUCKET = "store"
ID_FIELDS = ("inventory_item_id", "location_id")
NOT_APPLIED = "not applied: another quantity in the same request was refused"
# Points left for mutations already on their way (the scheduler keeps up to four
# requests in flight) before a read-back may spend the store's bucket.
READ_HEADROOM = 4 * doc.SET_QUANTITIES_COST


def throttle_report(payload: Mapping[str, Any], throttled: bool = False) -> BudgetReport:
    """The budget a reply reports in `extensions.cost.throttleStatus` (empty if absent).
    A throttled reply also says when the refused request's cost will have leaked back."""
    cost = payload.get("extensions", {}).get("cost", {}) if isinstance(payload, dict) else {}
    status = cost.get("throttleStatus") if isinstance(cost, dict) else None
    if not isinstance(status, dict):
        return BudgetReport()
    rate, capacity = status.get("restoreRate"), status.get("maximumAvailable")
    available = status.get("currentlyAvailable")
    requested = cost.get("requestedQueryCost")
    retry_after = None
    if (
        throttled
        and isinstance(rate, int | float)
        and rate > 0
        and isinstance(available, int | float)
        and isinstance(requested, int | float)
        and requested > available
    ):
        retry_after = (requested - available) / rate
    return BudgetReport(
        retry_after_s=retry_after,
        rate=float(rate) if isinstance(rate, int | float) else None,
        capacity=float(capacity) if isinstance(capacity, int | float) else None,
        available=float(available) if isinstance(available, int | float) else None,
    )


def _quantity_index(field: object) -> int | None:
    """The quantity a userError's `field` path points at (["input", "quantities", "3",
    ...] -> 3), or None for an error about the whole input."""
    if isinstance(field, list) and len(field) >= 3 and field[:2] == ["input", "quantities"]:
        try:
            return int(field[2])
        except (TypeError, ValueError):
            return None
    return None


@dataclass
class GraphQLLane:
    """The one lane: a GraphQL POST with the store's access token."""

    url: str
    token: Secret
    limits: LaneLimits
    name: str = "graphql"
    asynchronous: bool = False
    quantities: bool = True
    prices: bool = False
    # Inventory items whose compare quantity the store refused: their next quantity
    # goes without the check.
    unverified: set[str] = field(default_factory=set)

    async def send(self, http: aiohttp.ClientSession, changes: Sequence[Change]) -> Reply:
        quantities = [
            {
                "inventoryItemId": c.listing.ids["inventory_item_id"],
                "locationId": c.listing.ids["location_id"],
                "quantity": c.quantity,
                "changeFromQuantity": None
                if c.listing.ids["inventory_item_id"] in self.unverified
                else c.known,
            }
            for c in changes
        ]
        self.unverified.difference_update(q["inventoryItemId"] for q in quantities)
        variables = {
            "input": {
                "name": doc.QUANTITY_NAME,
                "reason": doc.SYNC_REASON,
                "quantities": quantities,
            },
            # A fresh key per request: the quantities are absolute and guarded by
            # changeFromQuantity, so a resend after a time-out cannot count twice.
            "key": str(uuid.uuid4()),
        }
        payload = await self.post(http, doc.SET_QUANTITIES, variables)
        budget = throttle_report(payload)
        result = (payload.get("data") or {}).get(doc.MUTATION_FIELD)
        if not isinstance(result, dict):
            raise BatchRefused(f"Shopify answered without {doc.MUTATION_FIELD} data")
        errors = result.get("userErrors") or []
        if not errors:
            return Reply([Outcome(applied=True, shown=c.quantity) for c in changes], budget)
        per_item: dict[int, dict[str, Any]] = {}
        for error in errors:
            index = _quantity_index(error.get("field"))
            if index is None or not 0 <= index < len(changes):
                raise BatchRefused(f"Shopify refused the request: {_describe(error)}")
            per_item.setdefault(index, error)
        stale = [n for n, e in per_item.items() if e.get("code") == doc.CHANGE_FROM_QUANTITY_STALE]
        read, budget = await self._read_back(http, [changes[n].listing for n in stale], budget)
        shown = {stale[p]: qty for p, qty in read.items()}
        self.unverified.update(changes[n].listing.ids["inventory_item_id"] for n in stale)
        outcomes = []
        for n in range(len(changes)):
            error = per_item.get(n)
            if error is None:
                outcomes.append(
                    Outcome(applied=False, retry=True, reason=NOT_APPLIED, bystander=True)
                )
            elif error.get("code") == doc.CHANGE_FROM_QUANTITY_STALE:
                outcomes.append(
                    Outcome(applied=False, retry=True, reason=_describe(error), shown=shown.get(n))
                )
            else:
                outcomes.append(Outcome(applied=False, reason=_describe(error)))
        return Reply(outcomes, budget)

    async def poll(self, http: aiohttp.ClientSession, job: str) -> Reply | None:
        raise NotImplementedError("the Shopify lane is synchronous: it never names a job")

    async def _read_back(
        self, http: aiohttp.ClientSession, listings: Sequence[Listing], budget: BudgetReport
    ) -> tuple[dict[int, int], BudgetReport]:
        """What the store now shows for `listings` (by position), best effort: a
        throttled or failed read leaves them unknown and the retry opts out of the
        check instead of guessing. The read is not in the scheduler's budget, so it is
        made only when the store's bucket has room for it beside the requests that may
        be in flight; under a backlog the retry opts out instead."""
        cost = doc.READ_LEVEL_COST * len(listings)
        if not listings or budget.available is None or budget.available < cost + READ_HEADROOM:
            return {}, budget
        variables: dict[str, Any] = {}
        for n, listing in enumerate(listings):
            variables[f"i{n}"] = listing.ids["inventory_item_id"]
            variables[f"l{n}"] = listing.ids["location_id"]
        try:
            payload = await self.post(http, doc.read_levels(len(listings)), variables)
        except (Throttled, TransientError, BatchRefused):
            return {}, budget
        data = payload.get("data") or {}
        shown: dict[int, int] = {}
        for n in range(len(listings)):
            level = ((data.get(f"q{n}") or {}).get("inventoryLevel")) or {}
            for quantity in level.get("quantities") or []:
                if quantity.get("name") == doc.QUANTITY_NAME and isinstance(
                    quantity.get("quantity"), int
                ):
                    shown[n] = quantity["quantity"]
        return shown, throttle_report(payload)

    async def post(
        self, http: aiohttp.ClientSession, query: str, variables: Mapping[str, Any]
    ) -> dict[str, Any]:
        """One GraphQL request; whole-request failures become the base exceptions."""
        try:
            async with http.post(
                self.url,
                json={"query": query, "variables": variables},
                headers={doc.ACCESS_TOKEN_HEADER: self.token.reveal()},
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
            ) as resp:
                if resp.status in (401, 403):
                    raise AuthError(
                        f"Shopify refused the access token from {self.token.source} "
                        f"(HTTP {resp.status})"
                    )
                if resp.status == 429:
                    retry = retry_after_s(resp.headers.get("Retry-After"))
                    raise Throttled("Shopify answered HTTP 429", BudgetReport(retry_after_s=retry))
                if resp.status >= 500:
                    raise TransientError(f"Shopify answered HTTP {resp.status}")
                try:
                    payload = await resp.json(content_type=None)
                except ValueError:
                    raise TransientError(
                        f"Shopify answered HTTP {resp.status} with something other than JSON"
                    ) from None
                if resp.status != 200 or not isinstance(payload, dict):
                    raise BatchRefused(
                        f"Shopify refused the request (HTTP {resp.status}): "
                        f"{payload.get('errors') if isinstance(payload, dict) else payload}"
                    )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"Shopify unreachable: {type(exc).__name__}") from None
        errors = payload.get("errors")
        if errors:
            codes = [(e.get("extensions") or {}).get("code") for e in errors if isinstance(e, dict)]
            if doc.THROTTLED in codes:
                raise Throttled("Shopify: THROTTLED", throttle_report(payload, throttled=True))
            raise BatchRefused(
                "Shopify refused the request: "
                + "; ".join(_describe(e) for e in errors if isinstance(e, dict))
            )
        return payload


@dataclass
class PriceLane:
    """productVariantsBulkUpdate: one variant's price per request, through the store's
    GraphQL lane and within its bucket."""

    store: GraphQLLane
    limits: LaneLimits
    name: str = "variants"
    asynchronous: bool = False
    quantities: bool = False
    prices: bool = True
    # Inventory item GID -> (variant GID, product GID), read once each.
    variants: dict[str, tuple[str, str]] = field(default_factory=dict)

    async def send(self, http: aiohttp.ClientSession, changes: Sequence[Change]) -> Reply:
        (change,) = changes
        if change.price is None or change.qty is not None:
            raise ValueError(f"{doc.PRICE_MUTATION_FIELD} takes one price alone, not {change}")
        item = change.listing.ids["inventory_item_id"]
        ids = self.variants.get(item) or await self._variant_of(http, item)
        if ids is None:
            reason = f"Shopify has no product variant for inventory item {item}"
            return Reply([Outcome(applied=False, reason=reason)])
        self.variants[item] = ids
        variant, product = ids
        variables = {
            "productId": product,
            "variants": [{"id": variant, "price": change.price.amount}],
        }
        payload = await self.store.post(http, doc.UPDATE_PRICE, variables)
        budget = throttle_report(payload)
        result = (payload.get("data") or {}).get(doc.PRICE_MUTATION_FIELD)
        if not isinstance(result, dict):
            raise BatchRefused(f"Shopify answered without {doc.PRICE_MUTATION_FIELD} data")
        errors = [e for e in result.get("userErrors") or [] if isinstance(e, dict)]
        if errors:
            reason = "; ".join(_describe(error) for error in errors)
            return Reply([Outcome(applied=False, reason=reason)], budget)
        return Reply([Outcome(applied=True)], budget)

    async def poll(self, http: aiohttp.ClientSession, job: str) -> Reply | None:
        raise NotImplementedError("the Shopify price lane is synchronous: it never names a job")

    async def _variant_of(self, http: aiohttp.ClientSession, item: str) -> tuple[str, str] | None:
        """The variant and product GIDs of an inventory item; None when the store has
        none for it."""
        payload = await self.store.post(http, doc.READ_VARIANT, {"id": item})
        node = (payload.get("data") or {}).get("inventoryItem") or {}
        variant = node.get("variant") or {}
        product = variant.get("product") or {}
        if isinstance(variant.get("id"), str) and isinstance(product.get("id"), str):
            return variant["id"], product["id"]
        return None


def _describe(error: Mapping[str, Any]) -> str:
    code = error.get("code") or (error.get("extensions") or {}).get("code") or "ERROR"
    return f"{code}: {error.get('message', '')}"


@dataclass
class ShopifyProfile:
    platform: str
    lanes: Sequence[Lane]
    currency: str
    id_fields: tuple[str, ...] = ID_FIELDS
    daily_revisions: int | None = None

    def listing_key(self, listing: Listing) -> str:
        return listing.ids["inventory_item_id"]


def build_profile(settings: ProfileSettings) -> ShopifyProfile:
    token = settings.credentials.get(doc.CREDENTIAL)
    if token is None:
        raise ValueError(f"channel {settings.channel!r}: shopify needs credential {doc.CREDENTIAL}")
    base_url = settings.base_url
    shop = settings.options.get("shop")
    if base_url is None:
        if not shop:
            raise ValueError(
                f"channel {settings.channel!r}: shopify needs base_url "
                '(e.g. "https://example.myshopify.com") or option shop'
            )
        base_url = f"https://{shop}.myshopify.com"
    plan = settings.options.get("plan", doc.DEFAULT_PLAN)
    if plan not in doc.PLAN_RESTORE_RATES:
        raise ValueError(
            f"channel {settings.channel!r}: plan {plan!r} is not one of "
            f"{', '.join(doc.PLAN_RESTORE_RATES)}"
        )
    rate = settings.overrides.get("rate", doc.PLAN_RESTORE_RATES[plan])
    batch = int(settings.overrides.get("batch", doc.MAX_INPUT_ITEMS))
    if not 1 <= batch <= doc.MAX_INPUT_ITEMS:
        raise ValueError(
            f"channel {settings.channel!r}: batch must be 1..{doc.MAX_INPUT_ITEMS} for shopify"
        )
    limits = LaneLimits(
        rate=rate,
        burst=settings.overrides.get("burst", rate * doc.BUCKET_SECONDS),
        batch=batch,
        cost_per_request=doc.SET_QUANTITIES_COST,
        shared_budget=STORE_BUCKET,
    )
    version = settings.options.get("api_version", doc.API_VERSION)
    url = base_url.rstrip("/") + doc.graphql_path(version)
    currency = channel.currency(settings, doc.CURRENCY)
    store = GraphQLLane(url, token, limits)
    prices = PriceLane(store, replace(limits, batch=1, cost_per_request=doc.UPDATE_PRICE_COST))
    return ShopifyProfile("shopify", [store, prices], currency)


PROFILE: ProfileFactory = build_profile
