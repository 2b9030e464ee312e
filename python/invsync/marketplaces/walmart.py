"""Walmart Marketplace (US): what the gateway profile and the sandbox both rely on.

Sources (checked 2026-12-05):
- [TOK] developer.walmart.com/us-marketplace/docs/get-an-access-token and
  /us-marketplace/docs/authentication-authorization: `POST /v3/token` with
  `grant_type=client_credentials`, the client id and secret as HTTP Basic auth; access
  tokens live 15 minutes (900 s); every call carries the token in `WM_SEC.ACCESS_TOKEN`
  beside `WM_SVC.NAME` and `WM_QOS.CORRELATION_ID`; 401 means a missing, malformed or
  expired token.
- [INV] developer.walmart.com/us-marketplace/docs/update-single-item-inventory and
  /us-marketplace/docs/inventory-api-overview: `PUT /v3/inventory` (query `sku`, optional
  `shipNode`; without it the default node) with `{"sku", "quantity": {"unit": "EACH",
  "amount"}}`.
- [FEED] developer.walmart.com/cl-marketplace/docs/bulk-inventory-update and
  /us-marketplace/docs/update-inventory-data: `POST /v3/feeds?feedType=inventory`, a
  multipart file of `{"InventoryHeader": {"version": "1.4"}, "Inventory": [...]}`
  (version 1.4: the XSD refuses the 1.5 of one XML example), 10 feeds per hour, 5 MB,
  50,000 items, about 30 minutes to process; the reply is a `feedId` only.
- [STATUS] developer.walmart.com/mx-marketplace/docs/feed-overview,
  /suppliers/docs/understanding-statuses-available-for-feeds and
  /us-marketplace/docs/feed-item-status-api-for-tracking-fitment-files: `GET
  /v3/feeds/{feedId}?includeDetails=true&offset&limit` (limit at most 1000); feedStatus
  RECEIVED, INPROGRESS, PROCESSED ("nothing is implied about the status of the individual
  elements") or ERROR (nothing processed); per item `itemDetails.itemIngestionStatus[]`
  with `sku`, `index`, `ingestionStatus` (SUCCESS, DATA_ERROR, SYSTEM_ERROR,
  TIMEOUT_ERROR, INPROGRESS) and `ingestionErrors.ingestionError[]` (`type`, `code`,
  `field`, `description`); highsidelabs/walmart-api-php PartnerFeedResponse.
- [THR] developer.walmart.com/us-marketplace/docs/throttling and
  /suppliers/docs/rate-limiting: per-API limits, 429 beyond them, the bucket reported in
  `X-Current-Token-Count` and `X-Next-Replenishment-Time`, refilled gradually. The
  figure for `PUT /v3/inventory` is not published (see PUT_RATE).
- [ERR] Walmart's error body `{"errors": [{"code", "field", "description", "info",
  "severity", "category"}]}`; codes read `<REASON>.GMP_<API>` (e.g.
  `UNAUTHORIZED.GMP_GATEWAY_API`, `CONTENT_NOT_FOUND.GMP_INVENTORY_API`) as seen in
  replies quoted by sellers (inference: no published code list for this API).
- [PRICE] Walmart's Price Management API, "Update a price"
  (developer.walmart.com/us-marketplace/reference/updateprice; its OpenAPI definition
  as mirrored in paragonsean/openapi-directory APIs/walmart.com/price/1.0.0 and
  highsidelabs/walmart-api-php docs/Apis/MP/US/PricesApi.md): `PUT /v3/price` with
  `{"sku", "pricing": [{"currentPriceType": "BASE", "currentPrice": {"currency",
  "amount"}}]}`, answered `{"ItemPriceResponse": {"mart", "sku", "message"}}`; the
  bulk price feed (`feedType=price`) is 10 an hour, 10 MB, 10,000 items, up to 4 h.
  The single-item call's rate is not published (the same assumption as PUT_RATE).
- [RULES] Walmart Pricing Rules (marketplacelearn.walmart.com/guides/Catalog
  management/Price management/Pricing-rules) and the older "Automatic Pricing Rules
  Overview": an offer "priced egregiously higher" than prices currently or recently
  offered for the same item elsewhere is unpublished with reason "Reasonable Price Not
  Satisfied" (Price Parity: the same seller cheaper on another channel) and republished
  automatically, within 15 minutes, once back in range. Walmart publishes no
  threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

# The currency a channel sells in unless its option `currency` says otherwise: Walmart
# Marketplace US sells in USD.
CURRENCY = "USD"

DEFAULT_BASE_URL: Final = "https://marketplace.walmartapis.com"
TOKEN_PATH: Final = "/v3/token"  # [TOK]: on the API host itself
TOKEN_TTL_S: Final = 900
CREDENTIALS: Final = ("client_id", "client_secret")
ACCESS_TOKEN_HEADER: Final = "WM_SEC.ACCESS_TOKEN"
SERVICE_NAME_HEADER: Final = "WM_SVC.NAME"
SERVICE_NAME: Final = "Walmart Marketplace"
CORRELATION_HEADER: Final = "WM_QOS.CORRELATION_ID"
TOKEN_COUNT_HEADER: Final = "X-Current-Token-Count"  # [THR]
# When the window ends [THR]; read as Unix epoch milliseconds, the form Walmart's
# timestamps take elsewhere (inference: the pages give no format).
REPLENISH_HEADER: Final = "X-Next-Replenishment-Time"

# PUT /v3/inventory [INV]. Walmart publishes no figure for it [THR]: 200 requests a
# minute with a burst of 10 is a conservative start (inference); the gateway slows to
# what the token count and 429s say, and `rate` overrides it.
INVENTORY_PATH: Final = "/v3/inventory"
PUT_RATE: Final = 200.0 / 60.0
PUT_BURST: Final = 10.0
UNIT: Final = "EACH"
# The quantity is a 32-bit integer in Walmart's schema (inference from the XSD's xsd:int).
MAX_QTY: Final = 2_147_483_647

# The inventory feed [FEED] [STATUS]
FEEDS_PATH: Final = "/v3/feeds"
FEED_PATH: Final = "/v3/feeds/{feed_id}"
FEED_TYPE: Final = "inventory"
FEED_VERSION: Final = "1.4"
FEED_MAX_ITEMS: Final = 50_000
FEED_MAX_BYTES: Final = 5 * 1024 * 1024
FEEDS_PER_HOUR: Final = 10.0
FEED_RATE: Final = FEEDS_PER_HOUR / 3600.0
FEED_BURST: Final = FEEDS_PER_HOUR
FEED_PROCESSING_S: Final = 1800.0
STATUS_PAGE_MAX: Final = 1000
FEED_PENDING: Final = ("RECEIVED", "INPROGRESS")
FEED_PROCESSED: Final = "PROCESSED"
FEED_ERROR: Final = "ERROR"
ITEM_SUCCESS: Final = "SUCCESS"
ITEM_DATA_ERROR: Final = "DATA_ERROR"
# Walmart's own trouble with one item: worth sending again.
ITEM_TRANSIENT: Final = ("SYSTEM_ERROR", "TIMEOUT_ERROR", "INPROGRESS")

# Error codes [ERR]
UNAUTHORIZED: Final = "UNAUTHORIZED.GMP_GATEWAY_API"
MISSING_HEADER: Final = "INVALID_REQUEST_HEADER.GMP_GATEWAY_API"
TOO_MANY_REQUESTS: Final = "REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API"
NOT_FOUND: Final = "CONTENT_NOT_FOUND.GMP_INVENTORY_API"
INVALID_CONTENT: Final = "INVALID_REQUEST_CONTENT.GMP_INVENTORY_API"
FEED_NOT_FOUND: Final = "CONTENT_NOT_FOUND.GMP_FEED_API"
FEED_INVALID: Final = "INVALID_REQUEST_CONTENT.GMP_FEED_API"

# From a sale to the order reaching the seller's Orders API: no documented figure; about
# a minute (inference).
ORDER_DELAY_S: Final = 60.0

PRICE_PATH: Final = "/v3/price"  # [PRICE]
PRICE_TYPE: Final = "BASE"  # [PRICE] the item's selling price
PRICE_NOT_FOUND: Final = "CONTENT_NOT_FOUND.GMP_PRICE_API"
PRICE_INVALID: Final = "INVALID_REQUEST_CONTENT.GMP_PRICE_API"
UNPUBLISHED_REASON: Final = "Reasonable Price Not Satisfied"  # [RULES]
# [RULES] gives no threshold for "egregiously higher". The sandbox unpublishes an offer
# priced more than this far above the seller's lowest price for the item on another
# channel (inference; a rehearsal may set its own with the channel option
# `reasonable_price_pct`).
REASONABLE_PRICE_PCT: Final = 15.0


def inventory(sku: str, qty: int) -> dict[str, Any]:
    """One SKU's quantity, as the PUT body and as a feed's `Inventory` entry [INV] [FEED]."""
    return {"sku": sku, "quantity": {"unit": UNIT, "amount": qty}}


def price(sku: str, amount: str, currency: str) -> dict[str, Any]:
    """One SKU's base price, the body of `PUT /v3/price` [PRICE]. The amount goes as a
    JSON number: Walmart's schema types it so."""
    current = {"currency": currency, "amount": float(amount)}
    return {"sku": sku, "pricing": [{"currentPriceType": PRICE_TYPE, "currentPrice": current}]}


def feed_document(items: list[dict[str, Any]]) -> dict[str, Any]:
    """A bulk inventory feed file [FEED]."""
    return {"InventoryHeader": {"version": FEED_VERSION}, "Inventory": items}


def error_body(code: str, description: str, field: str = "") -> dict[str, Any]:
    """Walmart's error body [ERR]."""
    error = {
        "code": code,
        "field": field,
        "description": description,
        "info": description,
        "severity": "ERROR",
        "category": "DATA",
    }
    return {"errors": [error]}


def first_error(payload: object) -> str:
    """`code: description` of Walmart's error body, or a note that the reply had none."""
    if isinstance(payload, Mapping):
        errors = payload.get("errors") or payload.get("error")
        if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
            error = errors[0]
            return f"{error.get('code', '?')}: {error.get('description', '')}".strip()
    return "no error list in the reply"


def quantity_problem(entry: object) -> str | None:
    """Why an inventory entry's quantity is not one Walmart takes, None when it is."""
    quantity = entry.get("quantity") if isinstance(entry, Mapping) else None
    if not isinstance(quantity, Mapping) or quantity.get("unit") != UNIT:
        return f"quantity must be an object with unit {UNIT} and amount"
    amount = quantity.get("amount")
    if not isinstance(amount, int) or isinstance(amount, bool):
        return "quantity.amount must be a whole number"
    if not 0 <= amount <= MAX_QTY:
        return f"quantity.amount must be from 0 to {MAX_QTY}"
    return None


def ingestion_reason(item: Mapping[str, Any]) -> str:
    """`code: description` of each ingestion error of one feed item [STATUS]."""
    errors = item.get("ingestionErrors")
    listed = errors.get("ingestionError") if isinstance(errors, Mapping) else None
    reasons = [
        f"{error.get('code', '?')}: {error.get('description', '')}"
        for error in listed or []
        if isinstance(error, Mapping)
    ]
    return "; ".join(reasons) or f"{item.get('ingestionStatus')}: no ingestion error given"
