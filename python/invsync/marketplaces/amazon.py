"""Amazon Selling Partner API: what the gateway profile and the sandbox both rely on.

Sources (checked 2026-12-05):
- [LI] amzn/selling-partner-api-models, models/listings-items-api-model/
  listingsItems_2021-08-01.json: patchListingsItem path, `ListingsItemPatchRequest`
  (`productType` and `patches` required), `PatchOperation` ops, the
  `ListingsItemSubmissionResponse` (`status` ACCEPTED / INVALID with `issues`, inside a
  200), usage plan 5 rps burst 5, the `x-amzn-RateLimit-Limit` header, `ErrorList`.
- [FD] the same repository, models/feeds-api-model/feeds_2021-06-30.json: createFeedDocument
  (201, presigned `url`), createFeed (202, `feedId`), getFeed (`processingStatus`,
  `resultFeedDocumentId`), getFeedDocument (`url`, optional `compressionAlgorithm` GZIP).
- [LF] the same repository, schemas/feeds/listings-feed-schema-v2.json and
  listings-feed-processing-report-schema-v2.json: the JSON_LISTINGS_FEED document
  (header `sellerId`, `version` "2.0"; at most 25,000 messages of `messageId`, `sku`,
  `operationType`, `productType`, `patches`) and its processing report (`issues` keyed by
  `messageId` with `severity`, `code`, `message`; `summary`).
- [CL] developer-docs.amazon.com/sp-api/changelog/update-feed-size-and-rate-limit-changes-
  for-the-json_listings_feed: 25,000 items and 5 submissions per 5 minutes per region.
- [MG] developer-docs.amazon.com/sp-api/changelog/update-listings-items-v2021-08-01-api-and-
  json_listing_feed-now-include-a-json-patch-merge-operation: `merge` updates `quantity`
  alone, but needs the selector `fulfillment_channel_code`.
- [AUTH] Login with Amazon token endpoint https://api.amazon.com/auth/o2/token (refresh-token
  grant), the same for every region's SP-API endpoint (sellingpartnerapi-na / -eu / -fe
  .amazon.com); the access token travels in `x-amz-access-token` (no AWS signature since
  October 2023). SP-API answers a refused access token with HTTP 403 `Unauthorized`
  (amzn/selling-partner-api-models issues 2333, 4122).
- [ISS] amzn/selling-partner-api-models issues 4554 and jlevers/selling-partner-api 493: a
  missing `fulfillment_channel_code` is refused as "does not have enough values" inside a 200;
  issue 2344: the wording of a bound violation ("Value for '...' is greater than the allowed
  maximum"); issue 4429: a SKU with '/' or '#' must be percent-encoded in the path.
- [PO] the PRODUCT product type definition (getDefinitionsProductType, the schema the
  Listings Items API validates attributes against) and Amazon's listings guides on
  updating a price (developer-docs.amazon.com/sp-api/docs/building-listings-management-
  workflows-guide): the price is the top-level attribute `purchasable_offer`, each entry
  `{"marketplace_id", "currency", "audience": "ALL", "our_price": [{"schedule":
  [{"value_with_tax"}]}]}`, patched like `fulfillment_availability` (so one PATCH may
  carry both); `merge` selects the entry by `marketplace_id` and `audience` [MG]. The
  same shape in sellers' public clients that patch it (e.g. the spapi-listing-builder
  package's ListingPrice), read 2026-12-05.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

# The currency a channel sells in unless its option `currency` says otherwise: the US
# marketplace's (ATVPDKIKX0DER) currency; option `currency` for another.
CURRENCY = "USD"

DEFAULT_BASE_URL: Final = "https://sellingpartnerapi-na.amazon.com"
TOKEN_URL: Final = "https://api.amazon.com/auth/o2/token"  # [AUTH]
TOKEN_PATH: Final = "/auth/o2/token"
# Amazon's own hosts (every region's SP-API endpoint) take tokens from TOKEN_URL.
AMAZON_HOST_SUFFIX: Final = ".amazon.com"
ACCESS_TOKEN_HEADER: Final = "x-amz-access-token"
RATE_LIMIT_HEADER: Final = "x-amzn-RateLimit-Limit"  # [LI] [FD]: the plan actually applied
CREDENTIALS: Final = ("refresh_token", "client_id", "client_secret")

# patchListingsItem [LI]
LISTINGS_ITEM_PATH: Final = "/listings/2021-08-01/items/{seller_id}/{sku}"
PATCH_RATE: Final = 5.0  # requests per second per selling account
PATCH_BURST: Final = 5.0
FULFILLMENT_PATH: Final = "/attributes/fulfillment_availability"
# "DEFAULT" is the merchant-fulfilled stock; AMAZON_NA / AMAZON_EU entries are FBA's own.
MERCHANT_CHANNEL: Final = "DEFAULT"
PRICE_PATH: Final = "/attributes/purchasable_offer"  # [PO]
PRICE_AUDIENCE: Final = "ALL"  # [PO] the offer to every buyer (not a B2B one)
PATCH_OPS: Final = ("add", "replace", "merge", "delete")
QUANTITY_OPS: Final = ("replace", "merge")
DEFAULT_PRODUCT_TYPE: Final = "PRODUCT"
STATUS_ACCEPTED: Final = "ACCEPTED"
STATUS_INVALID: Final = "INVALID"

# Feeds API 2021-06-30 [FD] and JSON_LISTINGS_FEED [LF] [CL]
FEED_DOCUMENTS_PATH: Final = "/feeds/2021-06-30/documents"
FEED_DOCUMENT_PATH: Final = "/feeds/2021-06-30/documents/{document_id}"
FEEDS_PATH: Final = "/feeds/2021-06-30/feeds"
FEED_PATH: Final = "/feeds/2021-06-30/feeds/{feed_id}"
FEED_TYPE: Final = "JSON_LISTINGS_FEED"
FEED_CONTENT_TYPE: Final = "application/json; charset=UTF-8"
FEED_VERSION: Final = "2.0"
FEED_MAX_MESSAGES: Final = 25_000
FEED_SUBMISSIONS: Final = 5.0  # createFeed of a JSON_LISTINGS_FEED, per window [CL]
FEED_WINDOW_S: Final = 300.0
FEED_OPERATION: Final = "PATCH"
# Feeds are queued and processed in turn; Amazon documents no figure. Minutes are
# typical for a small feed (inference), hours under load (selling-partner-api-models
# issue 2633).
FEED_PROCESSING_S: Final = 300.0
# Usage plans by operation [LI] [FD]: (rate per second, burst). createFeed's
# own plan applies to every feed type besides the JSON_LISTINGS_FEED limit above, so a
# sustained feed rate is the lower of the two (inference; the x-amzn-RateLimit-Limit
# header says which plan Amazon applied).
USAGE_PLANS: Final[Mapping[str, tuple[float, float]]] = {
    "patchListingsItem": (PATCH_RATE, PATCH_BURST),
    "createFeedDocument": (0.5, 15.0),
    "createFeed": (0.0083, 15.0),
    "getFeed": (2.0, 15.0),
    "cancelFeed": (2.0, 15.0),
    "getFeedDocument": (0.0222, 10.0),
}
FEED_RATE: Final = min(USAGE_PLANS["createFeed"][0], FEED_SUBMISSIONS / FEED_WINDOW_S)
FEED_BURST: Final = min(USAGE_PLANS["createFeed"][1], FEED_SUBMISSIONS)
FEED_DONE: Final = "DONE"
FEED_FAILED: Final = ("FATAL", "CANCELLED")
FEED_PENDING: Final = ("IN_QUEUE", "IN_PROGRESS")
# Processing reports may come gzipped, flagged `compressionAlgorithm: GZIP` (issue 4907);
# the flag has been seen on plain content (issue 2618), and a `Content-Encoding: gzip`
# header beside it made HTTP clients decompress once already (issue 3200).
GZIP: Final = "GZIP"
GZIP_MAGIC: Final = b"\x1f\x8b"
# From a sale to the order reaching the seller (Orders API, order notifications): no
# documented figure; about two minutes is commonly seen (inference).
ORDER_DELAY_S: Final = 120.0

# ErrorList codes [LI] [FD] [AUTH]
UNAUTHORIZED: Final = "Unauthorized"
QUOTA_EXCEEDED: Final = "QuotaExceeded"
INVALID_INPUT: Final = "InvalidInput"
NOT_FOUND: Final = "NOT_FOUND"
# Issue codes inside a 200 INVALID or a processing report: 99022 is the published
# example of "does not have enough values" [LF]; 90000900 "The attributes are invalid."
# is the model's example of an invalid attribute value [LI].
ISSUE_NOT_ENOUGH_VALUES: Final = "99022"
ISSUE_INVALID_ATTRIBUTE: Final = "90000900"
SEVERITY_ERROR: Final = "ERROR"


def listings_item_path(seller_id: str, sku: str) -> str:
    """The patchListingsItem path, with both ids percent-encoded [ISS]."""
    return LISTINGS_ITEM_PATH.format(seller_id=quote(seller_id, safe=""), sku=quote(sku, safe=""))


def quantity_patch(op: str, qty: int) -> dict[str, Any]:
    """The one JSON patch that sets the merchant-fulfilled quantity [LI] [MG]."""
    return {
        "op": op,
        "path": FULFILLMENT_PATH,
        "value": [{"fulfillment_channel_code": MERCHANT_CHANNEL, "quantity": qty}],
    }


def price_patch(op: str, marketplace_id: str, amount: str, currency: str) -> dict[str, Any]:
    """The one JSON patch that sets the listing's price in one marketplace [PO]; the
    amount goes as a JSON number, as the schema types it."""
    offer = {
        "marketplace_id": marketplace_id,
        "currency": currency,
        "audience": PRICE_AUDIENCE,
        "our_price": [{"schedule": [{"value_with_tax": float(amount)}]}],
    }
    return {"op": op, "path": PRICE_PATH, "value": [offer]}


def feed_document(seller_id: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """A JSON_LISTINGS_FEED document [LF]."""
    return {"header": {"sellerId": seller_id, "version": FEED_VERSION}, "messages": messages}


def error_list(code: str, message: str, details: str = "") -> dict[str, Any]:
    """The SP-API error body of every non-2xx reply [LI] [FD]."""
    return {"errors": [{"code": code, "message": message, "details": details}]}


def first_error(payload: object) -> str:
    """`code: message` of an ErrorList, or a note that the reply had none."""
    if isinstance(payload, Mapping):
        errors = payload.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
            error = errors[0]
            return f"{error.get('code', '?')}: {error.get('message', '')}".strip()
    return "no error list in the reply"


def issue_reasons(issues: object) -> list[str]:
    """`code: message` of each ERROR issue (WARNING and INFO do not stop a submission)."""
    if not isinstance(issues, list):
        return []
    return [
        f"{issue.get('code', '?')}: {issue.get('message', '')}"
        for issue in issues
        if isinstance(issue, Mapping) and issue.get("severity") == SEVERITY_ERROR
    ]
