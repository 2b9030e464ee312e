"""Lazada on loopback: the token refresh and UpdatePriceQuantity under `/rest`, as strict as
Lazada documents them (facts and sources in `invsync.marketplaces.lazada`). Every reply
is HTTP 200 with Lazada's `code`, as Lazada answers.

What it refuses, and how:
- a missing system parameter or another `sign_method`: `IncompleteSignature`; a
  signature not made with the channel's app secret over the path and sorted
  parameters: `IncompleteSignature`;
- a timestamp more than 7200 s from the sandbox's clock: `InvalidTimestamp`;
- an unknown or expired access token: `IllegalAccessToken`; a refresh token that is
  neither the channel's nor one it handed out: `IllegalRefreshToken` (Lazada documents
  no single use of refresh tokens, unlike Shopee);
- more than 50 calls a second: `ApiCallLimit`;
- a payload that is not the single-warehouse XML: `5` (E005 Invalid Request Format);
  more than 50 SKUs: `4171`;
- per SKU, in `detail` under code `501` "Update product failed" (the other SKUs of
  the call are applied): a seller SKU the seller does not have or whose item and SKU
  ids differ (`SELLER_SKU_INVALID`), a quantity that is negative, not a whole number
  or above 999,999, or below the stock Lazada has locked, a `Price` that is not a
  positive decimal with at most the venture currency's decimals. A SKU's price and
  quantity apply together or not at all.

A price change of 80% or more of the SKU's current price sends the product back to QC
[PRICE]: it is applied, and the listing shows `status` `pending` (not for sale, so
`POST /sandbox/sale` refuses it) for `review_delay_s` (default a day; Lazada publishes
no figure).

GetProductItem (`GET /rest/product/item/get`, the same gate; reads do not spend the
inventory APIs' 50 a second, inference) answers the item's SKUs with their quantity and
the locked stock as a campaign's `channelInventories`; no `item_id`, or one that is not
a number: `5`; an item the seller does not have: `208` "Product not found" (inference).

`POST /sandbox/lazada/locked` `{"listing": "<seller_sku>", "locked": n}` sets the stock
Lazada holds locked for a listing (withhold + occupy + campaign; 0 ends it).
"""

from __future__ import annotations

import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from aiohttp import web
from msgspec import Meta

from invsync.gateway.secrets import Secret
from invsync.marketplaces import lazada as lz
from invsync.marketplaces.money import price_problem
from invsync.sandbox.market import Bucket, Market, SandboxListing
from invsync.sandbox.platforms.access import IssuedTokens, require_credentials
from invsync.sandbox.platforms.base import SandboxFactory, SandboxSettings

LOCKED_PATH = "/sandbox/lazada/locked"


class LockedStock(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    listing: str
    locked: Annotated[int, Meta(ge=0, le=lz.MAX_QUANTITY)]


class _Refused(Exception):
    """A whole request Lazada refuses: its code and message."""

    def __init__(self, code: str, message: str, throttled: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.throttled = throttled


def _reply(code: str = lz.SUCCESS, **fields: Any) -> web.Response:
    return web.json_response({"code": code, "request_id": secrets.token_hex(12), **fields})


class LazadaSandbox:
    """One authorised Lazada seller on the sandbox."""

    platform = lz.PLATFORM

    def __init__(
        self,
        market: Market,
        credentials: Mapping[str, Secret],
        settings: SandboxSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        require_credentials("lazada", market, credentials, lz.CREDENTIALS)
        self.market = market
        self.order_delay_s = settings.order_delay(lz.ORDER_DELAY_S)
        self._app_secret = credentials["app_secret"].reveal()
        self._authorised_refresh = credentials["refresh_token"].reveal()
        self._issued_refresh: set[str] = set()
        self._clock = clock
        self.tokens = IssuedTokens(settings.token_ttl_s, clock)
        self._budget = Bucket(lz.RATE, lz.BURST, clock)
        self.locked: dict[str, int] = {}
        self.currency = market.currency(lz.CURRENCY)
        self.review_delay_s = (
            lz.REVIEW_DELAY_S if settings.review_delay_s is None else settings.review_delay_s
        )
        # Seller SKU -> (when its QC review ends, the price change that caused it).
        self.reviews: dict[str, tuple[float, str]] = {}
        market.rules.append(self)

    def routes(self) -> Iterable[web.RouteDef]:
        return [
            web.post(lz.REST_PREFIX + lz.REFRESH_PATH, self._refresh),
            web.post(lz.REST_PREFIX + lz.UPDATE_PATH, self._update),
            web.get(lz.REST_PREFIX + lz.ITEM_PATH, self._item),
            web.post(LOCKED_PATH, self._set_locked),
        ]

    def state(self) -> Mapping[str, Any]:
        return {"locked": dict(self.locked)}

    def off_sale(self, listing: SandboxListing) -> tuple[str, str] | None:
        """A product under QC after a large price change is not sold until it passes."""
        review = self.reviews.get(listing.key)
        if review is None:
            return None
        until, change = review
        if self._clock() >= until:
            del self.reviews[listing.key]
            return None
        return lz.REVIEW_STATUS, f"back in QC after a price change of {change}"

    # The gate: system parameters, timestamp, signature, token, budget

    async def _params(self, request: web.Request, api: bool) -> dict[str, str]:
        """Every parameter of the call, from the query and the form, once checked."""
        form = await request.post()
        params = {**request.query, **{k: v for k, v in form.items() if isinstance(v, str)}}
        required = ("app_key", "timestamp", "sign_method", "sign") + (
            ("access_token",) if api else ()
        )
        absent = [name for name in required if not params.get(name)]
        if absent or params["sign_method"] != lz.SIGN_METHOD:
            reason = f"missing {', '.join(absent)}" if absent else "sign_method must be sha256"
            raise _Refused(
                lz.INCOMPLETE_SIGNATURE, f"The request signature is incomplete: {reason}"
            )
        timestamp = params["timestamp"]
        if (
            not timestamp.isdigit()
            or abs(self._clock() * 1000 - int(timestamp)) > lz.TIMESTAMP_WINDOW_S * 1000
        ):
            raise _Refused(lz.INVALID_TIMESTAMP, "The timestamp is more than 7200 s from UTC")
        api_path = request.path.removeprefix(lz.REST_PREFIX)
        if not secrets.compare_digest(params["sign"], lz.sign(self._app_secret, api_path, params)):
            raise _Refused(
                lz.INCOMPLETE_SIGNATURE,
                "The request signature does not conform to lazada standards",
            )
        if api and not self.tokens.valid(params["access_token"]):
            raise _Refused(
                lz.ILLEGAL_ACCESS_TOKEN, "The specified access token is invalid or expired"
            )
        return params

    def _refusal(self, refused: _Refused) -> web.Response:
        if refused.throttled:
            self.market.counters.throttled += 1
        else:
            self.market.counters.rejected += 1
        return _reply(refused.code, type="ISV", message=refused.message)

    # /auth/token/refresh

    async def _refresh(self, request: web.Request) -> web.Response:
        self.market.counters.requests += 1
        try:
            params = await self._params(request, api=False)
            used = params.get("refresh_token")
            if used != self._authorised_refresh and used not in self._issued_refresh:
                raise _Refused(lz.ILLEGAL_REFRESH_TOKEN, "The refresh token is invalid or expired")
        except _Refused as refused:
            return self._refusal(refused)
        token = secrets.token_hex(20)
        self.tokens.issue(token)
        refresh = secrets.token_hex(20)
        self._issued_refresh.add(refresh)
        return _reply(
            access_token=token,
            refresh_token=refresh,
            expires_in=self.tokens.expires_in,
            refresh_expires_in=30 * 86_400,
            account_platform="seller_center",
        )

    # /product/price_quantity/update

    async def _update(self, request: web.Request) -> web.Response:
        self.market.counters.requests += 1
        try:
            params = await self._params(request, api=True)
            if not self._budget.take(1.0):
                raise _Refused(
                    lz.API_CALL_LIMIT, "The request has exceeded the limit", throttled=True
                )
            skus = _read_skus(params.get("payload", ""))
        except _Refused as refused:
            return self._refusal(refused)
        detail = []
        for seller_sku, item, sku_id, quantity, price in skus:
            refusal = self._sku_refusal(seller_sku, item, sku_id, quantity, price)
            if refusal is not None:
                field, message = refusal
                detail.append({"field": field, "seller_sku": seller_sku, "message": message})
                continue
            listing = self.market.listings[seller_sku]
            if quantity is not None:
                listing.qty = int(quantity)
            if price is not None:
                self._reprice(listing, price)
            listing.updates += 1
        if detail:
            self.market.counters.rejected += 1
            return _reply(
                lz.UPDATE_FAILED, type="ISV", message="Update product failed", detail=detail
            )
        return _reply(data={})

    def _reprice(self, listing: SandboxListing, price: str) -> None:
        """Set the price; a change of 80% or more of the old one starts a QC review."""
        old = listing.price
        listing.price = price
        if old is None:
            return
        change = abs(Decimal(price) - Decimal(old)) / Decimal(old)
        if change >= Decimal(str(lz.REVIEW_CHANGE)):
            described = f"{change:.0%} ({old} to {price} {self.currency})"
            self.reviews[listing.key] = (self._clock() + self.review_delay_s, described)

    def _sku_refusal(
        self, seller_sku: str, item: str, sku_id: str, quantity: str | None, price: str | None
    ) -> tuple[str, str] | None:
        """The field and message of a SKU Lazada would not update, None when it would."""
        listing = self.market.listings.get(seller_sku)
        if listing is None or (listing.ids.get("item_id"), listing.ids.get("sku_id")) != (
            item,
            sku_id,
        ):
            return "Sku", lz.SELLER_SKU_INVALID
        if price is not None:
            problem = price_problem(price, self.currency)
            if problem is not None:
                return "Price", f"Price is invalid: {problem}"
        if quantity is None:
            return None
        message = self._quantity_refusal(seller_sku, quantity)
        return None if message is None else ("Quantity", message)

    def _quantity_refusal(self, seller_sku: str, quantity: str) -> str | None:
        try:
            qty = int(quantity)
        except ValueError:
            return f"Quantity must be a whole number, not {quantity!r}"
        if qty < 0:
            return lz.NEGATIVE_QUANTITY
        if qty > lz.MAX_QUANTITY:
            return f"Quantity must not exceed {lz.MAX_QUANTITY}"
        locked = self.locked.get(seller_sku, 0)
        if qty < locked:
            return lz.below_locked(locked)
        return None

    # /product/item/get

    async def _item(self, request: web.Request) -> web.Response:
        self.market.counters.requests += 1
        try:
            params = await self._params(request, api=True)
            item = params.get("item_id", "")
            if not item.isdigit():
                raise _Refused(lz.INVALID_FORMAT, "E005: Invalid Request Format: item_id")
            skus = [
                (key, listing.ids.get("sku_id", ""), listing.qty, self.locked.get(key, 0))
                for key, listing in self.market.listings.items()
                if listing.ids.get("item_id") == item
            ]
            if not skus:
                raise _Refused(lz.PRODUCT_NOT_FOUND, "Product not found")
        except _Refused as refused:
            return self._refusal(refused)
        return _reply(data={"item_id": int(item), "skus": lz.item_skus(skus)})

    # The sandbox's own: stock Lazada holds locked

    async def _set_locked(self, request: web.Request) -> web.Response:
        try:
            body = msgspec.json.decode(await request.read(), type=LockedStock)
        except msgspec.DecodeError as exc:
            return web.json_response({"error": f"bad locked stock: {exc}"}, status=400)
        if body.listing not in self.market.listings:
            return web.json_response(
                {"error": f"lazada has no listing {body.listing!r}"}, status=404
            )
        if body.locked:
            self.locked[body.listing] = body.locked
        else:
            self.locked.pop(body.listing, None)
        return web.json_response({"listing": body.listing, "locked": body.locked})


def _read_skus(payload: str) -> list[tuple[str, str, str, str | None, str | None]]:
    """`(seller_sku, item_id, sku_id, quantity, price)` of each `Sku` of a single-warehouse
    payload (a `Sku` sets its quantity, its price or both), or `_Refused` for one Lazada
    would not take. The payload comes from the
    gateway on loopback; ElementTree expands no external entities."""
    try:
        root = ET.fromstring(payload)
    except ET.ParseError:
        raise _Refused(lz.INVALID_FORMAT, "E005: Invalid Request Format") from None
    skus = root.findall("./Product/Skus/Sku")
    if root.tag != "Request" or not skus:
        raise _Refused(lz.INVALID_FORMAT, "E005: Invalid Request Format")
    if len(skus) > lz.MAX_SKUS:
        raise _Refused(
            lz.TOO_MANY_SKUS,
            f"The updated SKU quantity exceeds the maximum number {lz.MAX_SKUS}, please do not "
            f"update more than {lz.MAX_SKUS} SKUs at once",
        )
    read = []
    for sku in skus:
        fields = [(sku.findtext(name) or "").strip() for name in ("SellerSku", "ItemId", "SkuId")]
        quantity, price = sku.findtext("Quantity"), sku.findtext("Price")
        if (
            not all(fields)
            or (quantity is None and price is None)
            or sku.find("MultiWarehouseInventories") is not None
        ):
            raise _Refused(lz.INVALID_FORMAT, "E005: Invalid Request Format")
        read.append(
            (
                fields[0],
                fields[1],
                fields[2],
                None if quantity is None else quantity.strip(),
                None if price is None else price.strip(),
            )
        )
    return read


SANDBOX: SandboxFactory = LazadaSandbox
