"""eBay on the sandbox: the OAuth refresh-token grant and bulkUpdatePriceQuantity, as
strict as eBay documents them.

It refuses what eBay refuses, in eBay's shapes: a bad client or refresh token at the
token endpoint (RFC 6749 errors), a missing or expired access token (401, errorId
1001), calls beyond the application's budget (429, errorId 2001), malformed bodies and
more than 25 requests or offers (400), and per item in a 207: an unknown SKU or offer,
a quantity out of range, a price that is not a positive decimal with at most the
currency's decimals or not in the marketplace's currency (25709), a listing revised 250
times today. A price and a quantity in one entry apply together or not at all. Facts and payload shapes
come from `invsync.marketplaces.ebay`, the same the gateway profile sends.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import msgspec
from aiohttp import web

from invsync.gateway.secrets import Secret
from invsync.marketplaces import ebay
from invsync.marketplaces.money import price_problem
from invsync.sandbox.market import Bucket, Market, SandboxListing
from invsync.sandbox.platforms.access import IssuedTokens
from invsync.sandbox.platforms.base import SandboxFactory, SandboxSettings, basic_credentials

# eBay documents no delay between a sale and the order reaching the seller's systems
# (inference: seconds); a rehearsal sets its own with `order_delay_s`.
DEFAULT_ORDER_DELAY_S = 2.0
_GRANTED_SCOPES = frozenset({ebay.SCOPE})
_REQUEST = msgspec.json.Decoder(ebay.BulkPriceQuantity)


def utc_today() -> date:
    return datetime.now(UTC).date()


def _json(body: object, status: int) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(body), status=status, content_type="application/json"
    )


def _oauth_error(error: str, description: str, status: int) -> web.Response:
    return _json({"error": error, "error_description": description}, status)


def _refusal(error_id: int, message: str, status: int = 400) -> web.Response:
    category = ebay.CATEGORY_APPLICATION if status >= 500 else ebay.CATEGORY_REQUEST
    detail = ebay.ErrorDetail(
        error_id, domain=ebay.DOMAIN_INVENTORY, category=category, message=message
    )
    return _json(ebay.ErrorResponse([detail]), status)


def _item_error(error_id: int, message: str) -> ebay.ErrorDetail:
    return ebay.ErrorDetail(
        error_id, domain=ebay.DOMAIN_INVENTORY, category=ebay.CATEGORY_REQUEST, message=message
    )


class _BadRequest(Exception):
    """The whole request is malformed: HTTP 400 with this errorId and message."""

    def __init__(self, error_id: int, message: str) -> None:
        super().__init__(message)
        self.error_id = error_id


@dataclass
class _Levels:
    """The item's and the offer's quantity as last set, and the listing's sales count
    then: a sale lowers both, so each level now is the one set minus sales since."""

    item: int | None
    offer: int | None
    sold_at: int

    def now(self, sold: int) -> tuple[int | None, int | None]:
        since = sold - self.sold_at
        return (
            None if self.item is None else max(0, self.item - since),
            None if self.offer is None else max(0, self.offer - since),
        )


class EbaySandbox:
    """One seller account on eBay: its credentials, access tokens, listings, call
    budget and revision counts per listing for the current UTC day."""

    platform = ebay.PLATFORM

    def __init__(
        self,
        market: Market,
        credentials: Mapping[str, Secret],
        settings: SandboxSettings,
        *,
        bucket: Bucket | None = None,
        clock: Callable[[], float] = time.monotonic,
        today: Callable[[], date] = utc_today,
    ) -> None:
        missing = [
            n for n in ("refresh_token", "client_id", "client_secret") if n not in credentials
        ]
        if missing:
            raise ValueError(
                f"channel {market.channel}: eBay needs credentials {', '.join(missing)}"
            )
        self.market = market
        self.order_delay_s = settings.order_delay(DEFAULT_ORDER_DELAY_S)
        self._credentials = credentials
        self._bucket = bucket or Bucket(ebay.DEFAULT_RATE, ebay.DEFAULT_BURST)
        self._today = today
        self.tokens = IssuedTokens(settings.token_ttl_s, clock)
        self._day = today()
        self._revisions: dict[str, int] = {}
        self._levels: dict[str, _Levels] = {}
        self._offers: dict[str, SandboxListing] = {}
        self.token_requests = 0
        self.tokens_refused = 0

    def routes(self) -> Iterable[web.RouteDef]:
        return [
            web.post(ebay.TOKEN_PATH, self._token),
            web.post(ebay.BULK_UPDATE_PATH, self._bulk_update),
        ]

    def state(self) -> Mapping[str, Any]:
        self._roll_day()
        return {
            "day": self._day.isoformat(),
            "daily_revisions": ebay.DAILY_REVISIONS,
            "revisions_today": {key: n for key, n in sorted(self._revisions.items()) if n},
            "token_requests": self.token_requests,
            "tokens_refused": self.tokens_refused,
        }

    # -- OAuth ---------------------------------------------------------------------

    def _matches(self, name: str, given: str) -> bool:
        return hmac.compare_digest(self._credentials[name].reveal().encode(), given.encode())

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        refusal = self._token_refusal(request.headers.get("Authorization"), await request.post())
        if refusal is not None:
            self.tokens_refused += 1
            return refusal
        self.tokens.forget_expired()
        token = "v^1.1#i^1#" + secrets.token_urlsafe(32)
        self.tokens.issue(token)
        return _json(
            {
                "access_token": token,
                "expires_in": max(1, round(self.tokens.ttl_s)),
                "token_type": "User Access Token",
            },
            200,
        )

    def _token_refusal(
        self, authorization: str | None, form: Mapping[str, str | object]
    ) -> web.Response | None:
        login, password = basic_credentials(authorization)
        if not (self._matches("client_id", login) and self._matches("client_secret", password)):
            return _oauth_error("invalid_client", "client authentication failed", 401)
        if form.get("grant_type") != "refresh_token":
            return _oauth_error(
                "unsupported_grant_type",
                "grant type in request is not supported by the authorization server",
                400,
            )
        refresh_token = form.get("refresh_token")
        if not isinstance(refresh_token, str) or not self._matches("refresh_token", refresh_token):
            return _oauth_error(
                "invalid_grant",
                "the provided authorization refresh token is invalid or was issued to "
                "another client",
                400,
            )
        scope = form.get("scope")
        if scope is not None and (
            not isinstance(scope, str) or not set(scope.split()) <= _GRANTED_SCOPES
        ):
            return _oauth_error(
                "invalid_scope",
                "The requested scope is invalid, unknown, malformed, or exceeds the scope "
                "granted to the client",
                400,
            )
        return None

    def _authorized(self, authorization: str | None) -> bool:
        scheme, _, token = (authorization or "").partition(" ")
        return scheme == "Bearer" and self.tokens.valid(token)

    # -- bulkUpdatePriceQuantity ---------------------------------------------------

    async def _bulk_update(self, request: web.Request) -> web.Response:
        counters = self.market.counters
        counters.requests += 1
        if not self._authorized(request.headers.get("Authorization")):
            counters.rejected += 1
            return _json(ebay.invalid_access_token(), 401)
        if not self._bucket.take(1):
            counters.throttled += 1
            return _json(ebay.too_many_requests(), 429)
        try:
            body = self._decode(request.content_type, await request.read())
        except _BadRequest as exc:
            counters.rejected += 1
            return _refusal(exc.error_id, str(exc))
        self._roll_day()
        responses = [r for entry in body.requests for r in self._apply(entry)]
        if any(r.status_code != 200 for r in responses):
            counters.rejected += 1
            return _json(ebay.BulkPriceQuantityResponse(responses), 207)
        return _json(ebay.BulkPriceQuantityResponse(responses), 200)

    def _decode(self, content_type: str, raw: bytes) -> ebay.BulkPriceQuantity:
        """The body, or _BadRequest for anything eBay refuses as a whole."""
        if content_type != "application/json":
            raise _BadRequest(
                ebay.ERROR_INVALID_VALUE, "Invalid value for Content-Type. Use application/json."
            )
        try:
            body = _REQUEST.decode(raw)
        except msgspec.DecodeError as exc:
            raise _BadRequest(
                ebay.ERROR_INVALID_VALUE, f"Invalid value for the body. {exc}"
            ) from None
        if not body.requests:
            raise _BadRequest(ebay.ERROR_INVALID_VALUE, "Invalid value for requests. It is empty.")
        if len(body.requests) > ebay.MAX_REQUESTS:
            raise _BadRequest(
                ebay.ERROR_USER,
                f"A user error has occurred. The number of requests cannot exceed "
                f"{ebay.MAX_REQUESTS}.",
            )
        offers = [offer for entry in body.requests for offer in entry.offers or ()]
        if len(offers) > ebay.MAX_OFFERS:
            raise _BadRequest(
                ebay.ERROR_OFFERS_EXCEEDED,
                f"The number of offers in the request cannot exceed {ebay.MAX_OFFERS}.",
            )
        skus = [entry.sku for entry in body.requests if entry.sku is not None]
        if len(set(skus)) != len(skus):
            raise _BadRequest(ebay.ERROR_SKU_NOT_UNIQUE, "SKU should be unique in the request.")
        offer_ids = [offer.offer_id for offer in offers]
        if len(set(offer_ids)) != len(offer_ids):
            raise _BadRequest(
                ebay.ERROR_OFFER_NOT_UNIQUE, "OfferId should be unique in the request."
            )
        for entry in body.requests:
            _check_shape(entry)
        return body

    def _apply(self, entry: ebay.PriceQuantity) -> list[ebay.PriceQuantityResponse]:
        """One response for the item (when its quantity is set) and one per offer; the
        entry applies whole or not at all."""
        listing, error = self._resolve(entry)
        if error is None and listing is not None:
            error = (
                self._quantity_error(entry)
                or self._price_error(entry)
                or self._revision_error(listing)
            )
        status = 200 if error is None else 400
        errors = None if error is None else [error]
        sku = entry.sku or (listing.ids.get("ebay_sku") if listing else None)
        responses = []
        if entry.ship_to_location_availability is not None:
            responses.append(ebay.PriceQuantityResponse(status, sku=sku, errors=errors))
        responses.extend(
            ebay.PriceQuantityResponse(status, sku=sku, offer_id=offer.offer_id, errors=errors)
            for offer in entry.offers or ()
        )
        if error is None and listing is not None:
            self._set(listing, entry)
        return responses

    def _resolve(
        self, entry: ebay.PriceQuantity
    ) -> tuple[SandboxListing | None, ebay.ErrorDetail | None]:
        """The listing an entry updates: by its SKU, else by its offers; every offer
        must be that listing's."""
        listing = None
        if entry.sku is not None:
            listing = self.market.listings.get(entry.sku)
            if listing is None:
                message = f"{entry.sku} could not be found or is not available in the system."
                return None, _item_error(ebay.ERROR_SKU_NOT_FOUND, message)
        for offer in entry.offers or ():
            owner = self._offer_listing(offer.offer_id)
            if owner is None or (listing is not None and owner is not listing):
                message = f"This Offer is not available : {offer.offer_id}."
                return listing, _item_error(ebay.ERROR_OFFER_NOT_AVAILABLE, message)
            listing = owner
        return listing, None

    def _offer_listing(self, offer_id: str) -> SandboxListing | None:
        """The listing whose published offer is `offer_id`, from an index rebuilt when
        it disagrees with the market (listings can be added while the sandbox runs)."""
        listing = self._offers.get(offer_id)
        if listing is None or self.market.listings.get(listing.key) is not listing:
            self._offers = {
                entry.ids["offer_id"]: entry
                for entry in self.market.listings.values()
                if "offer_id" in entry.ids
            }
            listing = self._offers.get(offer_id)
        return listing

    @staticmethod
    def _quantity_error(entry: ebay.PriceQuantity) -> ebay.ErrorDetail | None:
        quantities = [o.available_quantity for o in entry.offers or ()]
        if entry.ship_to_location_availability is not None:
            quantities.append(entry.ship_to_location_availability.quantity)
        for qty in quantities:
            if qty is not None and not 0 <= qty <= ebay.MAX_QUANTITY:
                return _item_error(
                    ebay.ERROR_INVALID_QUANTITY,
                    f"Invalid quantity. {qty} is outside 0..{ebay.MAX_QUANTITY}.",
                )
        return None

    def _price_error(self, entry: ebay.PriceQuantity) -> ebay.ErrorDetail | None:
        currency = self.market.currency(ebay.CURRENCY)
        for offer in entry.offers or ():
            if offer.price is None:
                continue
            problem = price_problem(offer.price.value, offer.price.currency)
            if problem is None and offer.price.currency != currency:
                problem = f"{offer.price.currency} is not this marketplace's currency {currency}"
            if problem is not None:
                return _item_error(ebay.ERROR_INVALID_VALUE, f"Invalid value for price. {problem}.")
        return None

    def _revision_error(self, listing: SandboxListing) -> ebay.ErrorDetail | None:
        if self._revisions.get(listing.key, 0) < ebay.DAILY_REVISIONS:
            return None
        return _item_error(
            ebay.ERROR_CANNOT_REVISE,
            f"This listing has been revised {ebay.DAILY_REVISIONS} times today; it "
            "cannot be revised again until the next calendar day.",
        )

    def _set(self, listing: SandboxListing, entry: ebay.PriceQuantity) -> None:
        """Apply an accepted entry: the listing shows the smaller of the item's and the
        offer's quantity, and one revision is spent."""
        previous = self._levels.get(listing.key)
        item, offer = previous.now(listing.sold) if previous else (None, None)
        if entry.ship_to_location_availability is not None:
            item = entry.ship_to_location_availability.quantity
        for update in entry.offers or ():
            if update.available_quantity is not None:
                offer = update.available_quantity
            if update.price is not None:
                listing.price = update.price.value
        self._levels[listing.key] = _Levels(item, offer, listing.sold)
        shown = [level for level in (item, offer) if level is not None]
        if shown:
            listing.qty = min(shown)
        listing.updates += 1
        self._revisions[listing.key] = self._revisions.get(listing.key, 0) + 1

    def _roll_day(self) -> None:
        today = self._today()
        if today != self._day:
            self._day = today
            self._revisions.clear()


def _check_shape(entry: ebay.PriceQuantity) -> None:
    """What the schema and the method text require of one entry, beyond types."""
    if entry.sku is None and not entry.offers:
        raise _BadRequest(
            ebay.ERROR_INVALID_VALUE,
            "Invalid value for requests. Each request needs a sku or offers.",
        )
    if entry.sku is not None and not 0 < len(entry.sku) <= ebay.MAX_SKU_LENGTH:
        raise _BadRequest(
            ebay.ERROR_INVALID_VALUE,
            f"Invalid value for sku. It must be 1..{ebay.MAX_SKU_LENGTH} characters.",
        )
    availability = entry.ship_to_location_availability
    if availability is not None and (entry.sku is None or availability.quantity is None):
        raise _BadRequest(
            ebay.ERROR_INVALID_VALUE,
            "Invalid value for shipToLocationAvailability. It needs a quantity and the sku.",
        )
    if entry.sku is not None and availability is None and not entry.offers:
        raise _BadRequest(
            ebay.ERROR_INVALID_VALUE,
            f"Invalid value for requests. {entry.sku} has neither shipToLocationAvailability "
            "nor offers.",
        )
    for offer in entry.offers or ():
        if offer.available_quantity is None and offer.price is None:
            raise _BadRequest(
                ebay.ERROR_INVALID_VALUE,
                f"Invalid value for offers. Offer {offer.offer_id} needs availableQuantity "
                "or price.",
            )


SANDBOX: SandboxFactory = EbaySandbox
