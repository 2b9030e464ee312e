"""Walmart Marketplace: a single-item `PUT /v3/inventory` lane, the bulk inventory
feed for backlogs the per-item budget would take longer to clear than a feed takes,
and a single-item `PUT /v3/price` lane for prices (the Price API's own budget).

Both lanes share one seller account and its access token, fetched with the client
credentials grant (15 minutes), refreshed ahead of expiry and once more when Walmart
answers 401. A feed id is not success: `poll` reads the feed's item statuses and maps
each item's ingestion status to its change by `index`: SUCCESS applied, DATA_ERROR
refused with Walmart's reason, SYSTEM_ERROR / TIMEOUT_ERROR sent again. Facts and
their sources: `invsync.marketplaces.walmart`.

Channel options (strings): `ship_node` (default: the seller's default node),
`feed_processing_s` (default 1800), `token_url` (default `<base_url>/v3/token`, where
Walmart serves it). Overrides: `rate` and `burst` of the PUT lane.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from invsync.gateway.platforms import calls
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
)
from invsync.gateway.platforms.documents import json_document
from invsync.gateway.platforms.lanes import SynchronousLane
from invsync.gateway.secrets import Secret
from invsync.gateway.tokens import RefreshingToken, oauth_token
from invsync.marketplaces import walmart as wm

# PUTs sent a budget slot apart can reach Walmart bunched (the event loop, connection
# set-up): this much of the bucket stays unspent so bunching costs no 429. The sustained
# rate is the bucket's own.
BURST_HEADROOM = 2.0


def _budget(headers: Mapping[str, str], status: int) -> BudgetReport:
    """The tokens Walmart says are left, and on a 429 how long until the next one."""
    try:
        available: float | None = float(headers[wm.TOKEN_COUNT_HEADER])
    except (KeyError, ValueError):
        available = None
    retry_after_s = None
    if status == 429:
        try:
            replenished_at = float(headers[wm.REPLENISH_HEADER]) / 1000.0
            retry_after_s = max(0.0, replenished_at - time.time())
        except (KeyError, ValueError):
            pass
    return BudgetReport(available=available, retry_after_s=retry_after_s)


class _Seller:
    """One seller account as both lanes reach it: base URL, ship node and access token."""

    def __init__(self, settings: ProfileSettings) -> None:
        channel.require_credentials(settings, "walmart", wm.CREDENTIALS)
        self.channel = settings.channel
        self.base_url = channel.base_url(settings, wm.DEFAULT_BASE_URL)
        self.ship_node = settings.options.get("ship_node")
        token_url = settings.options.get("token_url") or self.base_url + wm.TOKEN_PATH
        client_id, client_secret = (settings.credentials[name] for name in wm.CREDENTIALS)
        self.sources = f"{client_id.source}, {client_secret.source}"

        async def fetch(http: aiohttp.ClientSession) -> tuple[Secret, float]:
            form: dict[str, str | Secret] = {"grant_type": "client_credentials"}
            return await oauth_token(
                http, token_url, form, basic=(client_id, client_secret), headers=_service()
            )

        self.token = RefreshingToken(fetch)

    async def call(
        self,
        http: aiohttp.ClientSession,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        form: aiohttp.FormData | None = None,
    ) -> calls.Response:
        """One Marketplace API call with a valid access token. Returns 2xx, 400 and 404
        replies; raises for the rest: 401 (after one refresh) or 403 AuthError, 429
        Throttled, 5xx and network failures TransientError, others BatchRefused."""

        async def attempt(token: Secret) -> calls.Response:
            return await self._send(http, method, path, token, params, body, form)

        return await self.token.call(
            http, attempt, lambda response: response.status == 401, self._refused
        )

    def _refused(self, response: calls.Response) -> AuthError:
        return AuthError(
            f"walmart channel {self.channel}: a fresh access token was refused "
            f"({wm.first_error(response.payload)}); check the credentials from {self.sources}"
        )

    async def _send(
        self,
        http: aiohttp.ClientSession,
        method: str,
        path: str,
        token: Secret,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
        form: aiohttp.FormData | None,
    ) -> calls.Response:
        headers = {**_service(), wm.ACCESS_TOKEN_HEADER: token.reveal()}
        what = f"walmart {method} {path}"
        response = await calls.request(
            http,
            method,
            self.base_url + path,
            what,
            _budget,
            params=params,
            json=body,
            data=form,
            headers=headers,
        )
        status, reason = response.status, wm.first_error(response.payload)
        if status < 300 or status in (400, 401, 404):
            return response
        if status == 403:
            raise AuthError(
                f"{what}: {reason}; the app lacks this API's permission "
                f"for the seller of the credentials from {self.sources}"
            )
        calls.raise_refused(what, status, reason, response.budget)


def _service() -> dict[str, str]:
    """The headers every Walmart call carries besides the token [TOK]."""
    return {
        wm.SERVICE_NAME_HEADER: wm.SERVICE_NAME,
        wm.CORRELATION_HEADER: str(uuid.uuid4()),
        "Accept": "application/json",
    }


class InventoryLane(SynchronousLane):
    """`PUT /v3/inventory`: one SKU per request, within the seller's token bucket."""

    name = "put"
    call = "PUT /v3/inventory"

    def __init__(self, seller: _Seller, limits: LaneLimits) -> None:
        super().__init__(limits)
        self._seller = seller

    async def send(self, http: aiohttp.ClientSession, changes: Sequence[Change]) -> Reply:
        self.one_call(changes)
        change = changes[0]
        sku = change.listing.ids["walmart_sku"]
        params = {"sku": sku}
        if self._seller.ship_node:
            params["shipNode"] = self._seller.ship_node
        response = await self._seller.call(
            http, "PUT", wm.INVENTORY_PATH, params=params, body=wm.inventory(sku, change.quantity)
        )
        if response.status < 300:
            outcome = Outcome(applied=True, shown=change.quantity)
        else:  # 400 or 404: Walmart refused this SKU's update
            outcome = Outcome(applied=False, reason=wm.first_error(response.payload))
        return Reply(outcomes=[outcome], budget=response.budget)


class PriceLane(SynchronousLane):
    """`PUT /v3/price`: one SKU's base price per request."""

    name = "price"
    call = "PUT /v3/price"
    quantities = False
    prices = True

    def __init__(self, seller: _Seller, limits: LaneLimits) -> None:
        super().__init__(limits)
        self._seller = seller

    async def send(self, http: aiohttp.ClientSession, changes: Sequence[Change]) -> Reply:
        self.one_call(changes)
        change = changes[0]
        if change.price is None or change.qty is not None:
            raise ValueError(f"{self.call} takes prices alone, not {change}")
        sku = change.listing.ids["walmart_sku"]
        body = wm.price(sku, change.price.amount, change.price.currency)
        response = await self._seller.call(http, "PUT", wm.PRICE_PATH, body=body)
        if response.status < 300:
            outcome = Outcome(applied=True)
        else:  # 400 or 404: Walmart refused this SKU's price
            outcome = Outcome(applied=False, reason=wm.first_error(response.payload))
        return Reply(outcomes=[outcome], budget=response.budget)


class FeedLane:
    """The bulk inventory feed: up to 50,000 SKUs per feed, 10 feeds an hour, applied
    once Walmart has processed the feed, which `poll` watches."""

    name = "feed"
    asynchronous = True
    quantities = True
    prices = False

    def __init__(self, seller: _Seller, limits: LaneLimits) -> None:
        self._seller = seller
        self.limits = limits
        # Feed id -> how many items it holds (index 0..n-1, in the batch's order).
        self._jobs: dict[str, int] = {}

    async def send(self, http: aiohttp.ClientSession, changes: Sequence[Change]) -> Reply:
        document = await json_document(
            lambda: wm.feed_document(
                [wm.inventory(c.listing.ids["walmart_sku"], c.quantity) for c in changes]
            )
        )
        if len(document) > wm.FEED_MAX_BYTES:
            raise BatchRefused(
                f"walmart feed of {len(changes)} items is {len(document)} bytes, over "
                f"Walmart's {wm.FEED_MAX_BYTES}; lower `batch` for channel {self._seller.channel}"
            )
        form = aiohttp.FormData()
        form.add_field("file", document, filename="inventory.json", content_type="application/json")
        response = await self._seller.call(
            http, "POST", wm.FEEDS_PATH, params={"feedType": wm.FEED_TYPE}, form=form
        )
        feed_id = response.payload.get("feedId") if isinstance(response.payload, Mapping) else None
        if response.status >= 300 or not isinstance(feed_id, str) or not feed_id:
            raise BatchRefused(
                f"walmart feed submission: expected a feedId, got HTTP {response.status} "
                f"({wm.first_error(response.payload)})"
            )
        self._jobs[feed_id] = len(changes)
        return Reply(outcomes=[], budget=response.budget, job=feed_id)

    async def poll(self, http: aiohttp.ClientSession, job: str) -> Reply | None:
        """None while the feed is RECEIVED or INPROGRESS, or while the status call is
        throttled or unreachable; every item sent again when the feed ended in ERROR or
        Walmart no longer knows it."""
        count = self._jobs[job]
        feed_status = "unknown to Walmart"
        statuses: dict[int, Mapping[str, Any]] = {}
        try:
            while True:
                page = await self._status_page(http, job, offset=len(statuses))
                if page is None:
                    break
                feed_status = str(page.get("feedStatus"))
                if feed_status in wm.FEED_PENDING:
                    return None
                if feed_status != wm.FEED_PROCESSED:
                    break
                listed = _item_statuses(page)
                statuses.update(listed)
                if not listed or len(statuses) >= count:
                    break
        except (Throttled, TransientError):
            return None
        del self._jobs[job]
        if not statuses:
            reason = f"walmart feed {job} ended {feed_status}; its items are sent again"
            return Reply(outcomes=[Outcome(applied=False, retry=True, reason=reason)] * count)
        return Reply(outcomes=[_item_outcome(job, statuses.get(i)) for i in range(count)])

    async def _status_page(
        self, http: aiohttp.ClientSession, job: str, offset: int
    ) -> Mapping[str, Any] | None:
        params = {
            "includeDetails": "true",
            "offset": str(offset),
            "limit": str(wm.STATUS_PAGE_MAX),
        }
        response = await self._seller.call(
            http, "GET", wm.FEED_PATH.format(feed_id=job), params=params
        )
        if response.status == 404:
            return None
        if response.status >= 300 or not isinstance(response.payload, Mapping):
            raise BatchRefused(
                f"walmart feed status {job}: HTTP {response.status} "
                f"({wm.first_error(response.payload)})"
            )
        return response.payload


def _item_statuses(page: Mapping[str, Any]) -> dict[int, Mapping[str, Any]]:
    """A status page's items by their index in the feed."""
    details = page.get("itemDetails")
    items = details.get("itemIngestionStatus") if isinstance(details, Mapping) else None
    return {
        item["index"]: item
        for item in items or []
        if isinstance(item, Mapping) and isinstance(item.get("index"), int)
    }


def _item_outcome(job: str, item: Mapping[str, Any] | None) -> Outcome:
    if item is None:
        return Outcome(applied=False, retry=True, reason=f"walmart feed {job} did not list it")
    status = item.get("ingestionStatus")
    if status == wm.ITEM_SUCCESS:
        return Outcome(applied=True)
    reason = wm.ingestion_reason(item)
    return Outcome(applied=False, retry=status in wm.ITEM_TRANSIENT, reason=reason)


class WalmartProfile:
    """The Walmart profile: lanes "put" (first, per item) and "feed" (backlogs)."""

    platform = "walmart"
    id_fields: tuple[str, ...] = ("walmart_sku",)
    daily_revisions: int | None = None

    def __init__(self, settings: ProfileSettings) -> None:
        channel.refuse_daily_revisions(settings, "walmart")
        self.currency = channel.currency(settings, wm.CURRENCY)
        channel.require_single_item_batch(settings, "PUT /v3/inventory")
        seller = _Seller(settings)
        processing_s = channel.seconds_option(settings, "feed_processing_s", wm.FEED_PROCESSING_S)
        put_burst = wm.PUT_BURST - BURST_HEADROOM
        put_limits = channel.overridden_limits(settings, wm.PUT_RATE, put_burst, 1)
        feed_limits = LaneLimits(
            rate=wm.FEED_RATE,
            burst=wm.FEED_BURST,
            batch=wm.FEED_MAX_ITEMS,
            processing_s=processing_s,
        )
        price_limits = LaneLimits(rate=wm.PUT_RATE, burst=put_burst, batch=1)
        self.lanes: Sequence[Lane] = (
            InventoryLane(seller, put_limits),
            FeedLane(seller, feed_limits),
            PriceLane(seller, price_limits),
        )

    def listing_key(self, listing: Listing) -> str:
        return listing.ids["walmart_sku"]


PROFILE: ProfileFactory = WalmartProfile
