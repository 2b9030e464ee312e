"""eBay's Sell Inventory API as far as quantities go: the bulk price-and-quantity call,
its OAuth token, limits and error ids, read by the gateway profile and the sandbox.

Sources (checked 2026-12-05):
- [OAS] eBay's Sell Inventory API OpenAPI contract, sell_inventory_v1_oas3.json
  v1.18.x (https://developer.ebay.com/api-docs/master/sell/inventory/openapi/3/
  sell_inventory_v1_oas3.json): the path, the BulkPriceQuantity / PriceQuantity /
  OfferPriceQuantity / BulkPriceQuantityResponse / PriceQuantityResponse / Error
  schemas, responses 200 / 207 / 400 / 500 with their `x-response-codes`, the scope
  and the token URL. OfferPriceQuantity: "Either the availableQuantity field or the
  price container is required, but not necessarily both"; `price` is an Amount.
- [METHOD] https://developer.ebay.com/api-docs/sell/inventory/resources/inventory_item/
  methods/bulkUpdatePriceQuantity and the bulk-updates guide
  (https://developer.ebay.com/api-docs/sell/static/inventory/bulk-updates.html).
  The method text says "one SKU, up to 25 offers" while the schema says up to 25
  inventory items: we send at most 25 request entries and 25 offers in all.
- [LIMITS] https://developer.ebay.com/develop/api/sell/api_call_limits: the Inventory
  API's default quota, 2,000,000 calls per day per application (the same figure in
  several copies of that table), raised by an Application Growth Check.
- [OAUTH] https://developer.ebay.com/api-docs/static/oauth-refresh-token-request.html
  and oauth-rate-limits.html: the refresh-token grant (HTTP Basic client id and secret,
  form `grant_type=refresh_token`, `refresh_token`, `scope`), user access tokens live
  7,200 s; token errors follow RFC 6749 section 5.2 (`invalid_client` 401,
  `invalid_grant` / `invalid_scope` / `unsupported_grant_type` 400).
- [ERRORS] https://developer.ebay.com/develop/api/sell/error_codes and
  https://developer.ebay.com/api-docs/static/handling-error-messages.html: every REST
  error is `{"errors": [{"errorId", "domain", "category", "message", ...}]}`; the common
  errors 1001 (invalid access token, HTTP 401) and 2001 (too many requests, HTTP 429).
"""

from __future__ import annotations

import msgspec

PLATFORM = "ebay"
# The currency a channel sells in unless its option `currency` says otherwise: the
# EBAY_US marketplace's currency; option `currency` for another.
CURRENCY = "USD"
API_URL = "https://api.ebay.com"
TOKEN_PATH = "/identity/v1/oauth2/token"  # [OAS] securitySchemes tokenUrl
BULK_UPDATE_PATH = "/sell/inventory/v1/bulk_update_price_quantity"  # [OAS]
SCOPE = "https://api.ebay.com/oauth/api_scope/sell.inventory"  # [OAS] security
# The listing map's columns for eBay: the seller SKU of the inventory item and the id of
# its published offer (the live listing); both are needed to set the quantity at the
# item and at the offer level.
ID_FIELDS = ("ebay_sku", "offer_id")

MAX_REQUESTS = 25  # [OAS] BulkPriceQuantity.requests "(up to 25)"
MAX_OFFERS = 25  # [METHOD] "Up to 25 offers ... may be updated with one call"
MAX_SKU_LENGTH = 50  # [OAS] PriceQuantity.sku "Max Length: 50"
# [OAS] quantity and availableQuantity are int32; a negative quantity means nothing.
MAX_QUANTITY = 2**31 - 1
# [METHOD] "Each listing can be revised up to 250 times in one calendar day." eBay does
# not name the time zone of that day; we count UTC days.
DAILY_REVISIONS = 250
TOKEN_LIFETIME_S = 7200.0  # [OAUTH] user access token lifetime

# [LIMITS] eBay publishes a daily quota, not a per-second rate. Spreading the default
# quota evenly over the day gives 23.1 calls/s; a seller whose quota was raised
# overrides `rate` in the channels file. The burst (inference: eBay documents none) is
# about one second of calls, so a bucket that starts full cannot outrun the day's share.
DAILY_CALL_QUOTA = 2_000_000
DEFAULT_RATE = DAILY_CALL_QUOTA / 86_400
DEFAULT_BURST = 25.0
# The gateway sends from a smaller bucket than eBay's: eBay counts a call when it
# arrives, the gateway when it sends, and a call the network delays can arrive right
# before the next one. Ten calls in hand absorb 0.4 s of such jitter at the default
# rate, and eBay's replies say nothing about the budget that could correct it.
GATEWAY_BURST = DEFAULT_BURST - 10.0

# Error ids. [OAS] lists 25002, 25709 and 25759 (HTTP 400) and 25001 (HTTP 500) for this
# method; the per-item ids below are the Inventory API's own for the same conditions in
# its other methods (the method page does not list per-item ids).
ERROR_SYSTEM = 25001  # "A system error has occurred." (500; per item: transient)
ERROR_USER = 25002  # "Any User error. {additionalInfo}" (400)
ERROR_INVALID_QUANTITY = 25004  # "Invalid quantity. {additionalInfo}"
# "Cannot revise the listing" (inventory-error-details#25019). eBay does not publish
# which id a bulk update gets once the 250-revision cap is reached (inference).
ERROR_CANNOT_REVISE = 25019
ERROR_SKU_NOT_FOUND = 25702  # "{skuValue} could not be found or is not available ..."
ERROR_INVALID_VALUE = 25709  # "Invalid value for {fieldName}. {additionalInfo}" (400)
ERROR_OFFER_NOT_AVAILABLE = 25713  # "This Offer is not available : {additionalInfo}."
ERROR_OFFERS_EXCEEDED = 25730  # "The number of offers in the request cannot exceed ..."
ERROR_OFFER_NOT_UNIQUE = 25731  # "OfferId should be unique in the request."
ERROR_SKU_NOT_UNIQUE = 25734  # "SKU should be unique in the request."
ERROR_INVALID_TOKEN = 1001  # [ERRORS] "Invalid access token", HTTP 401
ERROR_TOO_MANY_REQUESTS = 2001  # [ERRORS] "Too many requests.", HTTP 429

DOMAIN_INVENTORY = "API_INVENTORY"
CATEGORY_REQUEST = "REQUEST"
CATEGORY_APPLICATION = "APPLICATION"


class ShipToLocationAvailability(msgspec.Struct, omit_defaults=True):
    """[OAS] ShipToLocationAvailability: the item's total ship-to-home quantity."""

    quantity: int | None = None


class Amount(msgspec.Struct):
    """[OAS] Amount: an offer's price, `value` a decimal string in `currency` (an ISO
    4217 code of the listing's marketplace)."""

    value: str
    currency: str


class OfferPriceQuantity(msgspec.Struct, rename="camel", omit_defaults=True):
    """[OAS] OfferPriceQuantity: one published offer's quantity (and/or price)."""

    offer_id: str
    available_quantity: int | None = None
    price: Amount | None = None


class PriceQuantity(msgspec.Struct, rename="camel", omit_defaults=True):
    """[OAS] PriceQuantity: one inventory item (by `sku`) and/or its offers. The listing
    shows the smaller of the item's quantity and the offer's `availableQuantity`, so the
    gateway sets both."""

    sku: str | None = None
    ship_to_location_availability: ShipToLocationAvailability | None = None
    offers: list[OfferPriceQuantity] | None = None


class BulkPriceQuantity(msgspec.Struct):
    """[OAS] BulkPriceQuantity: the request body of bulkUpdatePriceQuantity."""

    requests: list[PriceQuantity]


class ErrorDetail(msgspec.Struct, rename="camel", omit_defaults=True):
    """[OAS] Error / [ERRORS] ErrorType: one error or warning."""

    error_id: int
    domain: str | None = None
    category: str | None = None
    message: str | None = None
    long_message: str | None = None

    def reason(self) -> str:
        """`<errorId>: <message>`, the reason an alert carries."""
        return f"{self.error_id}: {self.message or self.long_message or 'no message'}"


class ErrorResponse(msgspec.Struct):
    """[ERRORS] The body of every refused REST request."""

    errors: list[ErrorDetail]


class PriceQuantityResponse(msgspec.Struct, rename="camel", omit_defaults=True):
    """[OAS] PriceQuantityResponse: the outcome for one offer (with `offerId`) or for
    one inventory item's quantity (without)."""

    status_code: int
    sku: str | None = None
    offer_id: str | None = None
    errors: list[ErrorDetail] | None = None
    warnings: list[ErrorDetail] | None = None


class BulkPriceQuantityResponse(msgspec.Struct):
    """[OAS] BulkPriceQuantityResponse: the 200 or 207 reply, one entry per update."""

    responses: list[PriceQuantityResponse]


def too_many_requests() -> ErrorResponse:
    """The 429 body eBay sends when a call exceeds the application's quota."""
    return ErrorResponse(
        [
            ErrorDetail(
                ERROR_TOO_MANY_REQUESTS,
                domain="ACCESS",
                category=CATEGORY_REQUEST,
                message="Too many requests.",
                long_message="The request limit has been reached for the resource.",
            )
        ]
    )


def invalid_access_token() -> ErrorResponse:
    """The 401 body eBay sends for a missing, unknown or expired access token."""
    return ErrorResponse(
        [
            ErrorDetail(
                ERROR_INVALID_TOKEN,
                domain="OAuth",
                category=CATEGORY_REQUEST,
                message="Invalid access token",
                long_message=(
                    "Invalid access token. Check the value of the Authorization HTTP "
                    "request header."
                ),
            )
        ]
    )
