"""TikTok Shop on loopback: the refresh-token endpoint, Update Inventory and Update
Price, each as strict as TikTok documents it.

What it refuses, and how (facts, sources and the sandbox's own codes in
`invsync.marketplaces.tiktok`):
- a refresh with another app key, app secret or refresh token than the channel's: code
  105003 inside the reply;
- a call whose `sign` is not the HMAC-SHA256 of its path, sorted query and body under the
  channel's app secret, whose `timestamp` is more than 5 minutes from the sandbox's
  clock, or with another `app_key`: HTTP 401, code 106001;
- a missing or unknown `x-tts-access-token`: 401, code 105001; an expired one: 401,
  code 105002;
- more than 50 calls a second: 429;
- another `shop_cipher` than the channel's, a body that is not `{"skus": [{"id",
  "inventory": [{"warehouse_id"?, "quantity"}]}]}` with 1 to 100 distinct SKUs: 400;
  a product the shop does not have: 404;
- per SKU, inside an overall `code: 0` (`data.errors` with `detail.sku_id` and
  `extra_errors` per warehouse): a SKU not of this product, another warehouse than the
  SKU's, or a quantity outside 0 to 99,999; for Update Price (`{"skus": [{"id",
  "price": {"amount", "currency"}}]}`, its own 50 calls a second) another currency
  than the channel's, an amount that is not a decimal string with at most the
  currency's decimals, or outside the region's range (US 0.01 to 7,600 USD).

Each listing is one SKU in one warehouse (the listing map's `warehouse_id`), so naming
it, or leaving it out as TikTok allows for a single warehouse, lists all of the SKU's
warehouses. Tokens do not survive a sandbox restart.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from aiohttp import web

from invsync.gateway.secrets import Secret
from invsync.marketplaces import tiktok as tt
from invsync.marketplaces.money import decimals, price_problem
from invsync.sandbox.market import Bucket, Market, SandboxListing
from invsync.sandbox.platforms.access import IssuedTokens, require_credentials
from invsync.sandbox.platforms.base import SandboxFactory, SandboxSettings


class _Invalid(Exception):
    """The body is not an inventory update: HTTP 400, invalid params."""


class TikTokSandbox:
    """One authorised shop's TikTok marketplace on the sandbox. `clock` is Unix time:
    request timestamps and token expiries are compared with it."""

    platform = "tiktok"

    def __init__(
        self,
        market: Market,
        credentials: Mapping[str, Secret],
        settings: SandboxSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        require_credentials("tiktok", market, credentials, tt.CREDENTIALS)
        self.market = market
        self.order_delay_s = settings.order_delay(tt.ORDER_DELAY_S)
        self._credentials = {name: credentials[name].reveal() for name in tt.CREDENTIALS}
        self._clock = clock
        self.tokens = IssuedTokens(settings.token_ttl_s, clock)
        self._bucket = Bucket(tt.RATE, tt.BURST, clock)
        self._price_bucket = Bucket(tt.RATE, tt.BURST, clock)
        self.currency = market.currency(tt.CURRENCY)

    def routes(self) -> Iterable[web.RouteDef]:
        return [
            web.get(tt.REFRESH_PATH, self._refresh),
            web.post(tt.INVENTORY_PATH, self._update_inventory),
            web.post(tt.PRICE_PATH, self._update_price),
        ]

    def state(self) -> Mapping[str, Any]:
        return {}

    def _reply(self, code: int, message: str, status: int = 200, **data: Any) -> web.Response:
        if code != tt.OK:
            self.market.counters.rejected += 1
        return web.json_response(tt.envelope(code, message, data), status=status)

    async def _refresh(self, request: web.Request) -> web.Response:
        self.market.counters.requests += 1
        given = {name: request.query.get(name, "") for name in tt.CREDENTIALS}
        matches = all(
            hmac.compare_digest(given[name], value) for name, value in self._credentials.items()
        )
        if not matches or request.query.get("grant_type") != "refresh_token":
            return self._reply(tt.REFRESH_TOKEN_INVALID, "Invalid app or refresh token.")
        token = "TTP_" + secrets.token_urlsafe(32)
        expires_at = self.tokens.issue(token)
        return self._reply(
            tt.OK,
            "success",
            access_token=token,
            access_token_expire_in=int(expires_at),
            refresh_token=self._credentials["refresh_token"],
            refresh_token_expire_in=int(self._clock() + 365 * 86400),
        )

    def _gate(self, request: web.Request, body: bytes, bucket: Bucket) -> web.Response | None:
        """The refusal for this call's signature, token or budget (each API has its own
        `bucket`), or None to serve it."""
        self.market.counters.requests += 1
        query = request.query
        if query.get("app_key") != self._credentials["app_key"]:
            return self._reply(
                tt.SIGN_INVALID, "Invalid credentials. The 'app_key' is invalid.", 401
            )
        try:
            stale = abs(self._clock() - int(query.get("timestamp", ""))) > tt.TIMESTAMP_WINDOW_S
        except ValueError:
            stale = True
        expected = tt.sign(self._credentials["app_secret"], request.path, dict(query), body)
        if stale or not hmac.compare_digest(query.get("sign", ""), expected):
            return self._reply(
                tt.SIGN_INVALID, "Invalid credentials. The 'sign' query parameter is invalid.", 401
            )
        token = request.headers.get(tt.ACCESS_TOKEN_HEADER, "")
        if not self.tokens.known(token):
            return self._reply(tt.ACCESS_TOKEN_INVALID, "The access token is invalid.", 401)
        if not self.tokens.valid(token):
            return self._reply(tt.ACCESS_TOKEN_EXPIRED, "The access token has expired.", 401)
        if not bucket.take(1.0):
            self.market.counters.throttled += 1
            return web.json_response(
                tt.envelope(tt.TOO_MANY_REQUESTS, "Too many requests."), status=429
            )
        own_cipher = self.market.options.get("shop_cipher")
        if own_cipher and query.get("shop_cipher") != own_cipher:
            return self._reply(tt.INVALID_PARAMS, "The shop_cipher is invalid.", 400)
        return None

    async def _update_inventory(self, request: web.Request) -> web.Response:
        return await self._update(request, self._bucket, "inventory", self._set_inventory)

    async def _update_price(self, request: web.Request) -> web.Response:
        return await self._update(request, self._price_bucket, "price", self._set_price)

    async def _update(
        self, request: web.Request, bucket: Bucket, part: str, apply: _Apply
    ) -> web.Response:
        """One product's SKUs, each with its `part` applied by `apply` unless it names
        why TikTok would not update that SKU (its failures, reported in `data.errors`
        while the others apply)."""
        body = await request.read()
        refusal = self._gate(request, body, bucket)
        if refusal is not None:
            return refusal
        try:
            skus = _skus(body, part)
        except _Invalid as exc:
            return self._reply(tt.INVALID_PARAMS, f"Invalid params: {exc}", 400)
        product_id = request.match_info["product_id"]
        product = {
            li.ids.get("sku_id"): li
            for li in self.market.listings.values()
            if li.ids.get("product_id") == product_id
        }
        if not product:
            return self._reply(tt.PRODUCT_NOT_FOUND, f"Product {product_id} not found.", 404)
        errors = []
        for entry in skus:
            sku_id = entry["id"]
            listing = product.get(sku_id)
            failures = _NOT_IN_PRODUCT if listing is None else apply(listing, entry[part])
            if failures or listing is None:
                self.market.counters.rejected += 1
                detail = {"sku_id": sku_id, "extra_errors": failures}
                errors.append(
                    {
                        "code": failures[0]["code"],
                        "message": failures[0]["message"],
                        "detail": detail,
                    }
                )
                continue
            listing.updates += 1
        return web.json_response(
            tt.envelope(tt.OK, "Success", {"errors": errors} if errors else {})
        )

    def _set_inventory(self, listing: SandboxListing, inventory: Any) -> list[dict[str, Any]]:
        failures = _sku_failures(listing, inventory)
        if not failures:
            listing.qty = inventory[0]["quantity"]
        return failures

    def _set_price(self, listing: SandboxListing, price: Any) -> list[dict[str, Any]]:
        """Set the SKU's price, or why TikTok would not: another currency than the
        region's, an amount that is not a decimal string within the region's range with
        at most the currency's decimals [PRICE]."""
        amount, currency = price.get("amount"), price.get("currency")
        problem = None
        if currency != self.currency:
            problem = f"The currency must be {self.currency}."
        elif not isinstance(amount, str) or price_problem(amount, currency) is not None:
            problem = f"The amount must be a decimal string in {currency}."
        else:
            low, high = tt.PRICE_RANGES.get(currency, ("0.01", "1000000000"))
            if not Decimal(low) <= Decimal(amount) <= Decimal(high):
                problem = f"The amount must be from {low} to {high} {currency}."
        if problem is not None:
            return [{"warehouse_id": "", "code": tt.PRICE_INVALID, "message": problem}]
        places = Decimal(10) ** -decimals(currency)
        listing.price = str(Decimal(amount).quantize(places))
        return []


_NOT_IN_PRODUCT: list[dict[str, Any]] = [
    {"warehouse_id": "", "code": tt.SKU_NOT_FOUND, "message": "SKU not in this product."}
]
# Applies one SKU's part of a request; returns why TikTok would not (empty: it did).
_Apply = Callable[[SandboxListing, Any], list[dict[str, Any]]]


def _skus(body: bytes, part: str) -> list[Mapping[str, Any]]:
    """The SKU entries of an Update Inventory (`part` "inventory") or Update Price
    ("price") body, or `_Invalid` naming what is wrong."""
    try:
        document = json.loads(body)
    except ValueError:
        raise _Invalid("the body is not JSON") from None
    skus = document.get("skus") if isinstance(document, Mapping) else None
    if not isinstance(skus, list) or not 1 <= len(skus) <= tt.MAX_SKUS:
        raise _Invalid(f"skus must list 1 to {tt.MAX_SKUS} SKUs")
    seen: set[str] = set()
    for entry in skus:
        sku_id = entry.get("id") if isinstance(entry, Mapping) else None
        if not isinstance(sku_id, str) or not sku_id or sku_id in seen:
            raise _Invalid("every SKU needs a distinct id")
        seen.add(sku_id)
        if part == "price":
            if not isinstance(entry.get("price"), Mapping):
                raise _Invalid(f"SKU {sku_id} needs its price")
            continue
        inventory = entry.get("inventory")
        if not isinstance(inventory, list) or not inventory:
            raise _Invalid(f"SKU {sku_id} needs its inventory")
        for stock in inventory:
            if not isinstance(stock, Mapping) or "quantity" not in stock:
                raise _Invalid(f"every inventory of SKU {sku_id} needs a quantity")
            if not isinstance(stock.get("warehouse_id", ""), str):
                raise _Invalid("warehouse_id is a string")
    return skus


def _sku_failures(listing: SandboxListing, inventory: list[Any]) -> list[dict[str, Any]]:
    """Why TikTok would not update this SKU's warehouses (empty: it would)."""
    own = listing.ids.get("warehouse_id", "")
    failures = []
    if len(inventory) != 1:
        failures.append(
            {
                "warehouse_id": "",
                "code": tt.WAREHOUSE_INVALID,
                "message": "The SKU has one warehouse.",
            }
        )
    for stock in inventory:
        warehouse = stock.get("warehouse_id", own)
        quantity = stock["quantity"]
        if warehouse != own:
            failures.append(
                {
                    "warehouse_id": warehouse,
                    "code": tt.WAREHOUSE_INVALID,
                    "message": "Not a warehouse of this SKU.",
                }
            )
        elif (
            not isinstance(quantity, int)
            or isinstance(quantity, bool)
            or not 0 <= quantity <= tt.MAX_QTY
        ):
            failures.append(
                {
                    "warehouse_id": warehouse,
                    "code": tt.QUANTITY_OUT_OF_RANGE,
                    "message": f"The quantity must be a whole number from 0 to {tt.MAX_QTY}.",
                }
            )
    return failures


SANDBOX: SandboxFactory = TikTokSandbox
