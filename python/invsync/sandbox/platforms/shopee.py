"""Shopee on loopback: RefreshAccessToken and v2.product.update_stock, as strict as Shopee
documents them (facts and sources in `invsync.marketplaces.shopee`).

What it refuses, and how:
- a missing common parameter, another partner's or shop's id: 400 `error_param` /
  `error_shop`;
- a timestamp more than five minutes from the sandbox's clock: 400 `error_param`
  "Invalid timestamp";
- a signature not made with the channel's partner key over the documented base
  string: 403 `error_sign` "Wrong sign.";
- an unknown or expired access token: 403 `error_auth` "Invalid access_token."; a
  refresh token that is not the channel's nor the latest one handed out: 403
  `error_auth`. Each refresh hands out a new refresh token and spends the one used
  (the channel's own stays valid: it stands for the seller authorising the app again,
  so a restarted gateway can start over);
- more calls than its budget (10 a second): 429 `error_too_many_request`;
- a body that is not one item with 1 to 50 distinct models: 400 `error_param`; an
  unknown item: 400 `error_item_not_found`; a model the item does not have: 400
  `error_param` "Wrong model_id."; a shop configured with `location_id` and a stock
  without it: `error_auth` "Lack of location_id, please double check.";
- per model, in `failure_list`: a stock below 0 or above 999,999, or below the stock a
  promotion has reserved ("Can not update item with stock less than reserved stock").
  The other models of the call are applied; when none is, the reply's error is
  `error_busi_update_stock_failed`.

Reads (`GET`, the same gate but no budget of update_stock's: Shopee rates each API on
its own, inference): `v2.product.get_model_list` (`item_id`) lists the item's models
with the reserved stock and the stock of each; `v2.product.get_item_base_info`
(`item_id_list`, up to 50) the same for items, of use for an item without variants
(model 0). A missing or non-numeric id: 400 `error_param`; an unknown item: 400
`error_item_not_found`.

`POST /sandbox/shopee/reserved` `{"listing": "<item_id>:<model_id>", "reserved": n}`
sets the stock a promotion holds for a listing (0 ends it).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Annotated, Any, TypeGuard

import msgspec
from aiohttp import web
from msgspec import Meta

from invsync.gateway.secrets import Secret
from invsync.marketplaces import shopee as sp
from invsync.marketplaces.money import decimals, price_problem
from invsync.sandbox.market import Bucket, Market
from invsync.sandbox.platforms.access import IssuedTokens, require_credentials
from invsync.sandbox.platforms.base import SandboxFactory, SandboxSettings

RESERVED_PATH = "/sandbox/shopee/reserved"


class ReservedStock(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    listing: str
    reserved: Annotated[int, Meta(ge=0, le=sp.MAX_STOCK)]


class _Refused(Exception):
    """A whole request Shopee refuses: its HTTP status, error name and message."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message


def _reply(status: int = 200, error: str = "", message: str = "", **fields: Any) -> web.Response:
    body = {"request_id": secrets.token_hex(16), "error": error, "message": message, **fields}
    return web.json_response(body, status=status)


def _whole(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


class ShopeeSandbox:
    """One authorised Shopee shop on the sandbox."""

    platform = sp.PLATFORM

    def __init__(
        self,
        market: Market,
        credentials: Mapping[str, Secret],
        settings: SandboxSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        require_credentials("shopee", market, credentials, sp.CREDENTIALS)
        self.market = market
        self.order_delay_s = settings.order_delay(sp.ORDER_DELAY_S)
        self._partner_key = credentials["partner_key"].reveal()
        self._authorised_refresh = credentials["refresh_token"].reveal()
        self._latest_refresh: str | None = None
        self._clock = clock
        self.tokens = IssuedTokens(settings.token_ttl_s, clock)
        self._budget = Bucket(sp.RATE, sp.BURST, clock)
        self._price_budget = Bucket(sp.RATE, sp.BURST, clock)
        self.reserved: dict[str, int] = {}
        self.currency = market.currency(sp.CURRENCY)

    def routes(self) -> Iterable[web.RouteDef]:
        return [
            web.post(sp.REFRESH_PATH, self._refresh),
            web.post(sp.UPDATE_STOCK_PATH, self._update_stock),
            web.post(sp.UPDATE_PRICE_PATH, self._update_price),
            web.get(sp.MODEL_LIST_PATH, self._model_list),
            web.get(sp.ITEM_BASE_INFO_PATH, self._item_base_info),
            web.post(RESERVED_PATH, self._set_reserved),
        ]

    def state(self) -> Mapping[str, Any]:
        return {"reserved": dict(self.reserved)}

    # The gate every call passes: common parameters, timestamp, signature, token, budget

    def _check(self, request: web.Request, shop_api: bool) -> None:
        query = request.query
        names = ("partner_id", "timestamp", "sign") + (
            ("access_token", "shop_id") if shop_api else ()
        )
        for name in names:
            if not query.get(name):
                raise _Refused(400, sp.ERROR_PARAM, f"There is no {name} in query.")
        own_partner = self.market.options.get("partner_id")
        if own_partner and query["partner_id"] != own_partner:
            raise _Refused(400, sp.ERROR_PARAM, "Invalid partner_id.")
        own_shop = self.market.options.get("shop_id")
        if shop_api and own_shop and query["shop_id"] != own_shop:
            raise _Refused(400, "error_shop", "shopid is invalid")
        timestamp = query["timestamp"]
        if not timestamp.isdigit() or abs(self._clock() - int(timestamp)) > sp.TIMESTAMP_WINDOW_S:
            raise _Refused(400, sp.ERROR_PARAM, sp.INVALID_TIMESTAMP)
        token = query.get("access_token", "") if shop_api else ""
        base = sp.base_string(
            query["partner_id"], request.path, int(timestamp), token, query.get("shop_id", "")
        )
        if not secrets.compare_digest(query["sign"], sp.sign(self._partner_key, base)):
            raise _Refused(sp.AUTH_STATUS, sp.ERROR_SIGN, sp.WRONG_SIGN)
        if shop_api and not self.tokens.valid(token):
            raise _Refused(sp.AUTH_STATUS, sp.ERROR_AUTH, sp.INVALID_ACCESS_TOKEN)

    def _refusal(self, refused: _Refused) -> web.Response:
        if refused.status == 429:
            self.market.counters.throttled += 1
        else:
            self.market.counters.rejected += 1
        return _reply(refused.status, refused.error, refused.message)

    async def _json(self, request: web.Request) -> Mapping[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise _Refused(400, "error_data", "parse data failed") from None
        if not isinstance(body, Mapping):
            raise _Refused(400, "error_data", "parse data failed")
        return body

    # RefreshAccessToken

    async def _refresh(self, request: web.Request) -> web.Response:
        self.market.counters.requests += 1
        try:
            self._check(request, shop_api=False)
            body = await self._json(request)
            used = body.get("refresh_token")
            if str(body.get("partner_id")) != request.query["partner_id"]:
                raise _Refused(400, sp.ERROR_PARAM, "Invalid partner_id.")
            own_shop = self.market.options.get("shop_id")
            if own_shop and str(body.get("shop_id")) != own_shop:
                raise _Refused(400, "error_shop", "shopid is invalid")
            if used not in (self._authorised_refresh, self._latest_refresh):
                raise _Refused(sp.AUTH_STATUS, sp.ERROR_AUTH, "Invalid refresh_token.")
        except _Refused as refused:
            return self._refusal(refused)
        token = secrets.token_hex(16)
        self.tokens.issue(token)
        self._latest_refresh = secrets.token_hex(16)
        return _reply(
            access_token=token,
            refresh_token=self._latest_refresh,
            expire_in=self.tokens.expires_in,
            partner_id=int(request.query["partner_id"]),
            shop_id=body.get("shop_id"),
        )

    # v2.product.update_stock

    async def _update_stock(self, request: web.Request) -> web.Response:
        self.market.counters.requests += 1
        try:
            self._check(request, shop_api=True)
            if not self._budget.take(1.0):
                raise _Refused(429, sp.ERROR_TOO_MANY_REQUESTS, "Too many requests.")
            item, models = self._read_stock_list(await self._json(request))
        except _Refused as refused:
            return self._refusal(refused)
        location = self.market.options.get("location_id", "")
        if location and any(where != location for _, _, where in models):
            self.market.counters.rejected += 1
            return _reply(200, sp.ERROR_AUTH, "Lack of location_id, please double check.")
        success, failure = [], []
        for model, stock, where in models:
            key = sp.listing_key(str(item), str(model))
            reason = self._stock_refusal(key, stock)
            if reason is not None:
                failure.append({"model_id": model, "failed_reason": reason})
                continue
            listing = self.market.listings[key]
            listing.qty = stock
            listing.updates += 1
            success.append({"model_id": model, "location_id": where, "stock": stock})
        response = {"failure_list": failure, "success_list": success}
        if failure:
            self.market.counters.rejected += 1
        if not success:
            return _reply(
                200, sp.ERROR_UPDATE_STOCK_FAILED, sp.UPDATE_STOCK_FAILED, response=response
            )
        return _reply(response=response)

    async def _update_price(self, request: web.Request) -> web.Response:
        """update_price [UP]: each model's `original_price`, a positive number with at
        most the shop currency's decimals; the others of the call apply."""
        self.market.counters.requests += 1
        try:
            self._check(request, shop_api=True)
            if not self._price_budget.take(1.0):
                raise _Refused(429, sp.ERROR_TOO_MANY_REQUESTS, "Too many requests.")
            item, models = self._read_models(await self._json(request), "price_list")
        except _Refused as refused:
            return self._refusal(refused)
        success, failure = [], []
        for model, entry in models:
            price, reason = self._price_of(entry)
            if reason is not None:
                failure.append({"model_id": model, "failed_reason": reason})
                continue
            listing = self.market.listings[sp.listing_key(str(item), str(model))]
            listing.price = price
            listing.updates += 1
            success.append({"model_id": model, "original_price": entry["original_price"]})
        response = {"failure_list": failure, "success_list": success}
        if failure:
            self.market.counters.rejected += 1
        if not success:
            return _reply(
                200, sp.ERROR_UPDATE_PRICE_FAILED, sp.UPDATE_PRICE_FAILED, response=response
            )
        return _reply(response=response)

    def _price_of(self, entry: Mapping[str, Any]) -> tuple[str, str | None]:
        value = entry.get("original_price")
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "", "original_price must be a number"
        text = str(Decimal(str(value)))
        problem = price_problem(text, self.currency)
        if problem is not None:
            return "", f"Invalid original_price: {problem}"
        return str(Decimal(text).quantize(Decimal(10) ** -decimals(self.currency))), None

    def _read_models(
        self, body: Mapping[str, Any], field: str
    ) -> tuple[int, list[tuple[int, Mapping[str, Any]]]]:
        """The item and its `(model_id, entry)` pairs of `field`, or `_Refused` for a
        body Shopee would not take: not 1 to 50 entries, an unknown item, a model twice
        or one the item lacks."""
        item = body.get("item_id")
        entries = body.get(field)
        if not _whole(item) or not isinstance(entries, list):
            raise _Refused(400, sp.ERROR_PARAM, f"Wrong parameters, detail: item_id and {field}.")
        if not 1 <= len(entries) <= sp.MAX_MODELS:
            raise _Refused(
                400,
                sp.ERROR_PARAM,
                "Parameter is not match the constraints, "
                f"{field} length should be between 1 to {sp.MAX_MODELS}.",
            )
        held = {key for key in self.market.listings if key.startswith(f"{item}:")}
        if not held:
            raise _Refused(400, sp.ERROR_ITEM_NOT_FOUND, sp.ITEM_NOT_FOUND)
        models: list[tuple[int, Mapping[str, Any]]] = []
        for entry in entries:
            model = entry.get("model_id", 0) if isinstance(entry, Mapping) else None
            if not _whole(model) or not isinstance(entry, Mapping):
                raise _Refused(400, sp.ERROR_PARAM, f"Wrong parameters, detail: {field}.")
            if any(model == seen for seen, _ in models):
                raise _Refused(400, sp.ERROR_PARAM, "Repeat model_id.")
            if sp.listing_key(str(item), str(model)) not in held:
                raise _Refused(400, sp.ERROR_PARAM, sp.WRONG_MODEL)
            models.append((model, entry))
        return item, models

    def _read_stock_list(self, body: Mapping[str, Any]) -> tuple[int, list[tuple[int, Any, str]]]:
        """The item and its `(model_id, stock, location_id)` entries, or `_Refused` for a
        body Shopee would not take."""
        item, entries = self._read_models(body, "stock_list")
        models: list[tuple[int, Any, str]] = []
        for model, entry in entries:
            seller_stock = entry.get("seller_stock")
            if (
                not isinstance(seller_stock, list)
                or len(seller_stock) != 1
                or not isinstance(seller_stock[0], Mapping)
                or "stock" not in seller_stock[0]
            ):
                raise _Refused(
                    400, sp.ERROR_PARAM, "Wrong parameters, detail: model_id and seller_stock."
                )
            where = seller_stock[0].get("location_id", "")
            models.append(
                (model, seller_stock[0]["stock"], where if isinstance(where, str) else "")
            )
        return item, models

    def _stock_refusal(self, key: str, stock: object) -> str | None:
        if not _whole(stock) or not 0 <= stock <= sp.MAX_STOCK:
            return (
                "Parameter is not match the constraints, "
                f"stock should be between 0 and {sp.MAX_STOCK}."
            )
        if stock < self.reserved.get(key, 0):
            return sp.BELOW_RESERVED
        return None

    # v2.product.get_model_list and get_item_base_info

    async def _model_list(self, request: web.Request) -> web.Response:
        self.market.counters.requests += 1
        try:
            self._check(request, shop_api=True)
            (item,) = _item_ids(request.query.get("item_id", ""), most=1)
            models = self._models(item)
        except _Refused as refused:
            return self._refusal(refused)
        entries = [
            {"model_id": model, "stock_info_v2": sp.stock_info(reserved, stock)}
            for model, reserved, stock in models
            if model != sp.NO_VARIANTS
        ]
        return _reply(response={"tier_variation": [], "model": entries})

    async def _item_base_info(self, request: web.Request) -> web.Response:
        self.market.counters.requests += 1
        try:
            self._check(request, shop_api=True)
            items = _item_ids(request.query.get("item_id_list", ""), most=sp.MAX_MODELS)
            listed = [(item, self._models(item)) for item in items]
        except _Refused as refused:
            return self._refusal(refused)
        entries = [
            {
                "item_id": item,
                "has_model": any(model != sp.NO_VARIANTS for model, _, _ in models),
                "stock_info_v2": sp.stock_info(
                    sum(reserved for _, reserved, _ in models), sum(stock for _, _, stock in models)
                ),
            }
            for item, models in listed
        ]
        return _reply(response={"item_list": entries})

    def _models(self, item: int) -> list[tuple[int, int, int]]:
        """`(model_id, reserved, stock)` of each model of `item`, or `_Refused`."""
        prefix = f"{item}:"
        models = [
            (int(key.removeprefix(prefix)), self.reserved.get(key, 0), listing.qty)
            for key, listing in self.market.listings.items()
            if key.startswith(prefix) and key.removeprefix(prefix).isdigit()
        ]
        if not models:
            raise _Refused(400, sp.ERROR_ITEM_NOT_FOUND, sp.ITEM_NOT_FOUND)
        return sorted(models)

    # The sandbox's own: a promotion's reserved stock

    async def _set_reserved(self, request: web.Request) -> web.Response:
        try:
            body = msgspec.json.decode(await request.read(), type=ReservedStock)
        except msgspec.DecodeError as exc:
            return web.json_response({"error": f"bad reserved stock: {exc}"}, status=400)
        if body.listing not in self.market.listings:
            return web.json_response(
                {"error": f"shopee has no listing {body.listing!r}"}, status=404
            )
        if body.reserved:
            self.reserved[body.listing] = body.reserved
        else:
            self.reserved.pop(body.listing, None)
        return web.json_response({"listing": body.listing, "reserved": body.reserved})


def _item_ids(value: str, most: int) -> list[int]:
    """The item ids of a read's query parameter (comma-separated), or `_Refused`."""
    ids = value.split(",") if value else []
    if not ids or len(ids) > most or not all(part.isdigit() for part in ids):
        raise _Refused(400, sp.ERROR_PARAM, "Wrong parameters, detail: item_id.")
    return [int(part) for part in ids]


SANDBOX: SandboxFactory = ShopeeSandbox
