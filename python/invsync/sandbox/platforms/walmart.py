"""Walmart Marketplace on loopback: the token API, `PUT /v3/inventory`, the bulk
inventory feed with its item statuses and `PUT /v3/price`, each as strict as Walmart
documents it.

What it refuses, and how (facts and sources in `invsync.marketplaces.walmart`):
- a token request without the client credentials grant or with other client
  credentials than the channel's (HTTP Basic): 401 with Walmart's error body;
- a call without `WM_SVC.NAME` or `WM_QOS.CORRELATION_ID`: 400;
- a missing, unknown or expired `WM_SEC.ACCESS_TOKEN`: 401 `UNAUTHORIZED`;
- more PUTs than the seller's token bucket holds, or more than 10 inventory feeds in
  an hour: 429, every reply carrying `X-Current-Token-Count` and a 429 also
  `X-Next-Replenishment-Time`;
- a PUT body that is not `{"sku", "quantity": {"unit": "EACH", "amount"}}` with a
  whole amount from 0, or whose `sku` differs from the query's: 400; an unknown SKU:
  404 `CONTENT_NOT_FOUND`; another ship node than the channel's `ship_node`: 400;
- a feed file over 5 MB: 413; a file that is not a version 1.4 inventory feed of 1 to
  50,000 entries: 400;
- a price body that is not `{"sku", "pricing": [{"currentPriceType": "BASE",
  "currentPrice": {"currency", "amount"}}]}` with a positive amount of at most the
  currency's decimals, in the channel's currency: 400 `INVALID_REQUEST_CONTENT`; an
  unknown SKU: 404 (the price calls spend the same assumed bucket as the PUTs, their
  own).

The pricing rule [RULES]: an offer priced more than `reasonable_price_pct` (channel
option; default 15, Walmart publishes no figure) above the seller's lowest price for
the same item on another marketplace of the sandbox is `UNPUBLISHED` with reason
"Reasonable Price Not Satisfied" (not for sale), and published again as soon as it is
back in range (Walmart: within 15 minutes).

A feed answers with its id at once and is processed `job_delay_s` later (default 30
minutes): RECEIVED, then INPROGRESS, then PROCESSED with one ingestion status per item:
SUCCESS, or DATA_ERROR for an unknown SKU or a bad quantity (partial success). Feeds
and tokens do not survive a sandbox restart.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import BodyPartReader, web

from invsync.gateway.secrets import Secret
from invsync.marketplaces import walmart as wm
from invsync.marketplaces.money import decimals, price_problem
from invsync.sandbox.market import Bucket, Market, SandboxListing
from invsync.sandbox.platforms.access import IssuedTokens, require_credentials
from invsync.sandbox.platforms.base import SandboxFactory, SandboxSettings, basic_credentials


@dataclass
class _Feed:
    feed_id: str
    done_at: float
    status: str = "RECEIVED"
    items: list[dict[str, Any]] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)


class WalmartSandbox:
    """One seller account's Walmart marketplace on the sandbox."""

    platform = "walmart"

    def __init__(
        self,
        market: Market,
        credentials: Mapping[str, Secret],
        settings: SandboxSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        require_credentials("walmart", market, credentials, wm.CREDENTIALS)
        self.market = market
        self.order_delay_s = settings.order_delay(wm.ORDER_DELAY_S)
        self._client = tuple(credentials[name].reveal() for name in wm.CREDENTIALS)
        self._feed_delay_s = (
            wm.FEED_PROCESSING_S if settings.job_delay_s is None else settings.job_delay_s
        )
        self._clock = clock
        self.tokens = IssuedTokens(settings.token_ttl_s, clock)
        self._puts = Bucket(wm.PUT_RATE, wm.PUT_BURST, clock)
        self._feeds_bucket = Bucket(wm.FEED_RATE, wm.FEED_BURST, clock)
        self._feeds: dict[str, _Feed] = {}
        self._prices = Bucket(wm.PUT_RATE, wm.PUT_BURST, clock)
        self.currency = market.currency(wm.CURRENCY)
        self.reasonable_pct = Decimal(
            market.options.get("reasonable_price_pct", str(wm.REASONABLE_PRICE_PCT))
        )
        market.rules.append(self)

    def routes(self) -> Iterable[web.RouteDef]:
        return [
            web.post(wm.TOKEN_PATH, self._token),
            web.put(wm.INVENTORY_PATH, self._put_inventory),
            web.put(wm.PRICE_PATH, self._put_price),
            web.post(wm.FEEDS_PATH, self._submit_feed),
            web.get(wm.FEED_PATH, self._feed_status),
        ]

    def state(self) -> Mapping[str, Any]:
        return {
            "feeds": {feed.feed_id: feed.status for feed in self._feeds.values()},
            "currency": self.currency,
            "reasonable_price_pct": str(self.reasonable_pct),
        }

    def off_sale(self, listing: SandboxListing) -> tuple[str, str] | None:
        """Walmart's pricing rule: unpublished while priced too far above the seller's
        lowest price for the item elsewhere [RULES]."""
        elsewhere = self.market.prices_elsewhere(listing)
        if listing.price is None or not elsewhere:
            return None
        platform, lowest = min(elsewhere, key=lambda entry: entry[1])
        ceiling = lowest * (1 + self.reasonable_pct / 100)
        if Decimal(listing.price) <= ceiling:
            return None
        return "UNPUBLISHED", (
            f"{wm.UNPUBLISHED_REASON}: {listing.price} is more than {self.reasonable_pct}% "
            f"above {lowest} on {platform}"
        )

    # Token API

    async def _token(self, request: web.Request) -> web.Response:
        self.market.counters.requests += 1
        refusal = self._service_headers(request)
        if refusal is not None:
            return refusal
        form = await request.post()
        if basic_credentials(request.headers.get("Authorization")) != self._client:
            return self._refuse(
                401, wm.UNAUTHORIZED, "Invalid client id or secret", "Authorization"
            )
        if form.get("grant_type") != "client_credentials":
            return self._refuse(400, wm.UNAUTHORIZED, "Unsupported grant_type", "grant_type")
        token = secrets.token_urlsafe(32)
        self.tokens.issue(token)
        return web.json_response(
            {"access_token": token, "token_type": "Bearer", "expires_in": self.tokens.expires_in}
        )

    # The gate every Marketplace API call passes: headers, token, then budget

    def _refuse(self, status: int, code: str, description: str, field: str = "") -> web.Response:
        self.market.counters.rejected += 1
        return web.json_response(wm.error_body(code, description, field), status=status)

    def _service_headers(self, request: web.Request) -> web.Response | None:
        for header in (wm.SERVICE_NAME_HEADER, wm.CORRELATION_HEADER):
            if not request.headers.get(header):
                return self._refuse(400, wm.MISSING_HEADER, f"{header} is required", header)
        return None

    def _gate(self, request: web.Request, bucket: Bucket | None) -> web.Response | None:
        """The refusal for this call's headers, token or budget, or None to serve it."""
        self.market.counters.requests += 1
        refusal = self._service_headers(request)
        if refusal is not None:
            return refusal
        if not self.tokens.valid(request.headers.get(wm.ACCESS_TOKEN_HEADER, "")):
            return self._refuse(401, wm.UNAUTHORIZED, "Unauthorized", wm.ACCESS_TOKEN_HEADER)
        if bucket is not None and not bucket.take(1.0):
            self.market.counters.throttled += 1
            wait_s = bucket.wait_s(1.0)
            headers = {
                wm.TOKEN_COUNT_HEADER: "0",
                wm.REPLENISH_HEADER: str(int((time.time() + wait_s) * 1000)),
            }
            body = wm.error_body(wm.TOO_MANY_REQUESTS, "Too Many Requests")
            return web.json_response(body, status=429, headers=headers)
        return None

    def _reply(self, body: Mapping[str, Any], bucket: Bucket, status: int = 200) -> web.Response:
        headers = {wm.TOKEN_COUNT_HEADER: str(int(bucket.available()))}
        return web.json_response(dict(body), status=status, headers=headers)

    # PUT /v3/inventory

    async def _put_inventory(self, request: web.Request) -> web.Response:
        refusal = self._gate(request, self._puts)
        if refusal is not None:
            return refusal
        try:
            body = await request.json()
        except ValueError:
            return self._refuse(400, wm.INVALID_CONTENT, "The body is not JSON")
        sku = body.get("sku") if isinstance(body, Mapping) else None
        if not isinstance(sku, str) or not sku:
            return self._refuse(400, wm.INVALID_CONTENT, "sku is required", "sku")
        if request.query.get("sku", sku) != sku:
            return self._refuse(400, wm.INVALID_CONTENT, "sku differs from the query's", "sku")
        own_node = self.market.options.get("ship_node")
        node = request.query.get("shipNode")
        if node is not None and node != own_node:
            return self._refuse(400, wm.INVALID_CONTENT, f"Unknown ship node {node}", "shipNode")
        problem = wm.quantity_problem(body)
        if problem is not None:
            return self._refuse(400, wm.INVALID_CONTENT, problem, "quantity")
        listing = self.market.listings.get(sku)
        if listing is None:
            return self._refuse(404, wm.NOT_FOUND, f"Item not found for sku {sku}", "sku")
        listing.qty = body["quantity"]["amount"]
        listing.updates += 1
        return self._reply(wm.inventory(sku, listing.qty), self._puts)

    # The price API

    async def _put_price(self, request: web.Request) -> web.Response:
        refusal = self._gate(request, self._prices)
        if refusal is not None:
            return refusal
        try:
            body = await request.json()
        except ValueError:
            return self._refuse(400, wm.PRICE_INVALID, "The body is not JSON")
        sku = body.get("sku") if isinstance(body, Mapping) else None
        if not isinstance(sku, str) or not sku:
            return self._refuse(400, wm.PRICE_INVALID, "sku is required", "sku")
        amount, problem = self._price(body)
        if problem is not None:
            return self._refuse(400, wm.PRICE_INVALID, problem, "pricing")
        listing = self.market.listings.get(sku)
        if listing is None:
            return self._refuse(404, wm.PRICE_NOT_FOUND, f"Item not found for sku {sku}", "sku")
        listing.price = amount
        listing.updates += 1
        answer = {
            "mart": "WALMART_US",
            "sku": sku,
            "message": "Thank you. Your price has been updated. Please allow up to five "
            "minutes for this change to be reflected on the site.",
        }
        return self._reply({"ItemPriceResponse": answer}, self._prices)

    def _price(self, body: Mapping[str, Any]) -> tuple[str, str | None]:
        """The BASE price's amount as a decimal string, or why the body has none Walmart
        would take."""
        pricing = body.get("pricing")
        entry = pricing[0] if isinstance(pricing, list) and len(pricing) == 1 else None
        if not isinstance(entry, Mapping) or entry.get("currentPriceType") != wm.PRICE_TYPE:
            return "", "pricing must hold one BASE currentPrice {currency, amount}"
        current = entry.get("currentPrice")
        if not isinstance(current, Mapping):
            return "", "pricing must hold one BASE currentPrice {currency, amount}"
        amount, currency = current.get("amount"), current.get("currency")
        if isinstance(amount, bool) or not isinstance(amount, int | float):
            return "", "currentPrice.amount must be a number"
        if currency != self.currency:
            return "", f"currentPrice.currency must be {self.currency}, not {currency}"
        text = str(Decimal(str(amount)))
        problem = price_problem(text, self.currency)
        if problem is not None:
            return "", problem
        # A JSON number loses trailing zeros; the offer shows the currency's decimals.
        return str(Decimal(text).quantize(Decimal(10) ** -decimals(self.currency))), None

    # The bulk inventory feed

    async def _submit_feed(self, request: web.Request) -> web.Response:
        refusal = self._gate(request, self._feeds_bucket)
        if refusal is not None:
            return refusal
        if request.query.get("feedType") != wm.FEED_TYPE:
            return self._refuse(400, wm.FEED_INVALID, "this sandbox takes feedType=inventory")
        if request.content_length is not None and request.content_length > wm.FEED_MAX_BYTES:
            return self._refuse(413, wm.FEED_INVALID, "Payload Too Large")
        try:
            content = await _feed_file(request)
        except ValueError as exc:
            return self._refuse(400, wm.FEED_INVALID, str(exc))
        if content is None:
            return self._refuse(413, wm.FEED_INVALID, "Payload Too Large")
        try:
            items = _feed_items(json.loads(content))
        except ValueError as exc:
            return self._refuse(400, wm.FEED_INVALID, str(exc))
        now = self._clock()
        feed = _Feed(uuid.uuid4().hex.upper() + "@AQMB", now + self._feed_delay_s)
        self._feeds[feed.feed_id] = feed
        loop = asyncio.get_running_loop()
        feed.timer = loop.call_later(self._feed_delay_s, self._process, feed, items)
        return self._reply({"feedId": feed.feed_id}, self._feeds_bucket, status=202)

    def _process(self, feed: _Feed, items: list[Mapping[str, Any]]) -> None:
        """Apply each entry alone: one bad entry fails itself, not the feed."""
        for index, entry in enumerate(items):
            sku = entry.get("sku")
            listing = self.market.listings.get(sku) if isinstance(sku, str) else None
            problem = wm.quantity_problem(entry)
            if listing is None:
                problem = f"Item not found for sku {sku}"
            status = wm.ITEM_SUCCESS if problem is None else wm.ITEM_DATA_ERROR
            errors = []
            if problem is not None:
                self.market.counters.rejected += 1
                code = wm.NOT_FOUND if listing is None else wm.INVALID_CONTENT
                errors.append(
                    {"type": "DATA_ERROR", "code": code, "field": "sku", "description": problem}
                )
            elif listing is not None:
                listing.qty = entry["quantity"]["amount"]
                listing.updates += 1
            feed.items.append(
                {
                    "martId": 0,
                    "sku": sku,
                    "index": index,
                    "ingestionStatus": status,
                    "ingestionErrors": {"ingestionError": errors or None},
                }
            )
        feed.status = wm.FEED_PROCESSED

    async def _feed_status(self, request: web.Request) -> web.Response:
        refusal = self._gate(request, None)
        if refusal is not None:
            return refusal
        feed = self._feeds.get(request.match_info["feed_id"])
        if feed is None:
            return self._refuse(404, wm.FEED_NOT_FOUND, "Feed not found", "feedId")
        try:
            offset = int(request.query.get("offset", "0"))
            limit = int(request.query.get("limit", "50"))
        except ValueError:
            return self._refuse(400, wm.FEED_INVALID, "offset and limit are whole numbers")
        if offset < 0 or not 1 <= limit <= wm.STATUS_PAGE_MAX:
            return self._refuse(400, wm.FEED_INVALID, f"limit is 1 to {wm.STATUS_PAGE_MAX}")
        if feed.status == "RECEIVED" and self._clock() >= feed.done_at - self._feed_delay_s / 2:
            feed.status = "INPROGRESS"
        succeeded = sum(1 for item in feed.items if item["ingestionStatus"] == wm.ITEM_SUCCESS)
        body: dict[str, Any] = {
            "feedId": feed.feed_id,
            "feedStatus": feed.status,
            "itemsReceived": len(feed.items),
            "itemsSucceeded": succeeded,
            "itemsFailed": len(feed.items) - succeeded,
            "itemsProcessing": 0,
            "offset": offset,
            "limit": limit,
        }
        if request.query.get("includeDetails") == "true":
            page = feed.items[offset : offset + limit]
            body["itemDetails"] = {"itemIngestionStatus": page}
        return web.json_response(body)


async def _feed_file(request: web.Request) -> bytes | None:
    """The multipart part `file`, read as a stream (so the application's body limit does
    not apply); None when it is over Walmart's 5 MB, ValueError when there is none."""
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError):  # aiohttp asserts the multipart type
        raise ValueError("the body is not a multipart file") from None
    async for part in reader:
        if isinstance(part, BodyPartReader) and part.name == "file":
            content = bytearray()
            while chunk := await part.read_chunk():
                content.extend(chunk)
                if len(content) > wm.FEED_MAX_BYTES:
                    return None
            return bytes(content)
    raise ValueError("the feed file goes in the part 'file'")


def _feed_items(document: object) -> list[Mapping[str, Any]]:
    """The entries of an inventory feed file; ValueError naming what is wrong."""
    header = document.get("InventoryHeader") if isinstance(document, Mapping) else None
    if not isinstance(header, Mapping) or header.get("version") != wm.FEED_VERSION:
        raise ValueError(f"InventoryHeader.version must be {wm.FEED_VERSION}")
    assert isinstance(document, Mapping)
    items = document.get("Inventory")
    if not isinstance(items, list) or not 1 <= len(items) <= wm.FEED_MAX_ITEMS:
        raise ValueError(f"Inventory must hold 1 to {wm.FEED_MAX_ITEMS} entries")
    if not all(isinstance(item, Mapping) for item in items):
        raise ValueError("every Inventory entry must be an object")
    return items


SANDBOX: SandboxFactory = WalmartSandbox
