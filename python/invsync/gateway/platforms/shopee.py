"""Shopee (Open Platform v2): `v2.product.update_stock` for quantities and
`v2.product.update_price` for prices, each one item's models per call.

Every call is signed with the partner key over partner id, path, timestamp, access
token and shop id; Shopee refuses a timestamp older than five minutes, so each call is
signed when it is sent. The access token (four hours) comes from the refresh token,
and every refresh hands out a new refresh token, valid once: the profile keeps the
newest in memory. Shopee never lets stock go below what a promotion has reserved: such
an update comes back in `failure_list`; the lane then reads the reserved stock
(get_model_list, or get_item_base_info for an item without variants) and reports it
as the outcome's `held`, so the scheduler sends that floor instead and the hold is
alerted and explained. Facts and
sources: `invsync.marketplaces.shopee`.

Update_stock takes one item with up to 50 of its models, so the lane groups by
`item_id`: each call carries up to 50 of one item's models.

Channel options (strings): `partner_id` and `shop_id` (required, numbers),
`location_id` (only for a shop with several warehouses). Overrides: `rate`, `burst`
(Shopee publishes no rate; the default is 10 calls a second), `batch` (models per
call, 1 to 50).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
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
from invsync.gateway.platforms.lanes import SynchronousLane
from invsync.gateway.secrets import Secret
from invsync.gateway.tokens import RefreshingToken
from invsync.marketplaces import shopee as sp

log = logging.getLogger("invsync.gateway")


def _number(settings: ProfileSettings, name: str) -> int:
    value = settings.options.get(name, "")
    if not value.isdigit():
        raise ValueError(f"channel {settings.channel}: shopee needs option {name} (a number)")
    return int(value)


def _retry_after(headers: Mapping[str, str], status: int) -> BudgetReport:
    try:
        return BudgetReport(retry_after_s=float(headers["Retry-After"]))
    except (KeyError, ValueError):
        return BudgetReport()


class _Shop:
    """One authorised shop: its ids, the partner key that signs, and its tokens."""

    def __init__(self, settings: ProfileSettings, clock: Callable[[], float] = time.time) -> None:
        channel.require_credentials(settings, "shopee", sp.CREDENTIALS)
        self.channel = settings.channel
        self.partner_id = _number(settings, "partner_id")
        self.shop_id = _number(settings, "shop_id")
        self.location_id = settings.options.get("location_id", "")
        self.base_url = channel.base_url(settings, sp.DEFAULT_BASE_URL)
        self.partner_key = settings.credentials["partner_key"]
        self.refresh_source = settings.credentials["refresh_token"].source
        # Shopee answers every refresh with a new refresh token and spends the old one.
        self._refresh = settings.credentials["refresh_token"]
        self._clock = clock
        self.token = RefreshingToken(self._fetch_token)

    def _signed(self, path: str, token: Secret | None) -> dict[str, str]:
        """The common query parameters of one call, signed now."""
        timestamp = int(self._clock())
        params = {"partner_id": str(self.partner_id), "timestamp": str(timestamp)}
        if token is None:
            base = sp.base_string(self.partner_id, path, timestamp)
        else:
            base = sp.base_string(self.partner_id, path, timestamp, token.reveal(), self.shop_id)
            params |= {"access_token": token.reveal(), "shop_id": str(self.shop_id)}
        return params | {"sign": sp.sign(self.partner_key.reveal(), base)}

    async def _fetch_token(self, http: aiohttp.ClientSession) -> tuple[Secret, float]:
        body = {
            "refresh_token": self._refresh.reveal(),
            "partner_id": self.partner_id,
            "shop_id": self.shop_id,
        }
        status, payload, budget = await self._request(http, sp.REFRESH_PATH, None, body)
        self._raise_for_request(status, payload, budget, "RefreshAccessToken")
        access, refresh = payload.get("access_token"), payload.get("refresh_token")
        lifetime = payload.get("expire_in")
        if payload.get("error") or not isinstance(access, str) or not access:
            raise AuthError(
                f"shopee channel {self.channel}: the token refresh was refused "
                f"({_reason(payload)}); re-authorise the shop and check the refresh_token "
                f"from {self.refresh_source} (each Shopee refresh token works once)"
            )
        if isinstance(refresh, str) and refresh:
            self._refresh = Secret(f"shopee's refresh of {self.refresh_source}", refresh)
        ttl = float(lifetime) if isinstance(lifetime, int | float) else sp.ACCESS_TOKEN_TTL_S
        return Secret(f"shopee access token of shop {self.shop_id}", access), ttl

    async def update_stock(
        self, http: aiohttp.ClientSession, body: Mapping[str, Any]
    ) -> tuple[Mapping[str, Any], BudgetReport]:
        """One signed update_stock call with a valid token: the reply body of an item-level
        result; raises for whole-request failures (after one token refresh for a refused
        access token)."""
        return await self._shop_call(http, sp.UPDATE_STOCK_PATH, "update_stock", body=body)

    async def update_price(
        self, http: aiohttp.ClientSession, body: Mapping[str, Any]
    ) -> tuple[Mapping[str, Any], BudgetReport]:
        """One signed update_price call, answered and raising like `update_stock`."""
        return await self._shop_call(http, sp.UPDATE_PRICE_PATH, "update_price", body=body)

    async def stock_of(
        self, http: aiohttp.ClientSession, item: int, variants: bool
    ) -> Mapping[str, Any]:
        """The `response` that tells an item's reserved stock: its models' [ML], or for
        an item without variants the item's own [BI]; empty when the reply has none.
        Raises like `update_stock`."""
        if variants:
            path, query = sp.MODEL_LIST_PATH, {"item_id": str(item)}
        else:
            path, query = sp.ITEM_BASE_INFO_PATH, {"item_id_list": str(item)}
        payload, _ = await self._shop_call(http, path, path.rsplit("/", 1)[-1], query=query)
        response = payload.get("response")
        if payload.get("error") or not isinstance(response, Mapping):
            return {}
        return response

    async def _shop_call(
        self,
        http: aiohttp.ClientSession,
        path: str,
        what: str,
        body: Mapping[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> tuple[Mapping[str, Any], BudgetReport]:
        """A signed Shop API call with a valid token: a POST of `body`, or a GET with
        `query`; one token refresh for a refused access token."""

        async def attempt(token: Secret) -> tuple[int, Mapping[str, Any], BudgetReport]:
            return await self._request(http, path, token, body, query)

        def refused(reply: tuple[int, Mapping[str, Any], BudgetReport]) -> bool:
            status, payload, _ = reply
            return status == sp.AUTH_STATUS and payload.get("error") == sp.ERROR_AUTH

        status, payload, budget = await self.token.call(http, attempt, refused, self._refused)
        self._raise_for_request(status, payload, budget, what)
        return payload, budget

    def _refused(self, reply: tuple[int, Mapping[str, Any], BudgetReport]) -> AuthError:
        return AuthError(
            f"shopee channel {self.channel}: a fresh access token was refused "
            f"({_reason(reply[1])}); check that shop {self.shop_id} still authorises the app "
            f"and the refresh_token from {self.refresh_source}"
        )

    async def _request(
        self,
        http: aiohttp.ClientSession,
        path: str,
        token: Secret | None,
        body: Mapping[str, Any] | None,
        query: Mapping[str, str] | None = None,
    ) -> tuple[int, Mapping[str, Any], BudgetReport]:
        """POST `body` as JSON, or GET with `query` when there is no body."""
        method = "GET" if body is None else "POST"
        params = {**(query or {}), **self._signed(path, token)}
        response = await calls.request(
            http,
            method,
            self.base_url + path,
            f"shopee {path}",
            _retry_after,
            params=params,
            json=None if body is None else dict(body),
        )
        payload = response.payload if isinstance(response.payload, dict) else {}
        return response.status, payload, response.budget

    def _raise_for_request(
        self, status: int, payload: Mapping[str, Any], budget: BudgetReport, what: str
    ) -> None:
        """Raise for a failure of the whole request; return for an item-level result."""
        error = payload.get("error")
        reason = f"shopee {what}: HTTP {status} {_reason(payload)}"
        if status == 429 or error == sp.ERROR_TOO_MANY_REQUESTS:
            raise Throttled(reason, budget)
        if status >= 500 or error in sp.TRANSIENT_ERRORS:
            raise TransientError(reason)
        if error == sp.ERROR_SIGN:
            raise AuthError(
                f"{reason}; check the partner_key from {self.partner_key.source} and "
                f"partner_id {self.partner_id}"
            )
        if error == sp.ERROR_PARAM and payload.get("message") == sp.INVALID_TIMESTAMP:
            raise AuthError(
                f"{reason}; Shopee takes a timestamp within {sp.TIMESTAMP_WINDOW_S:g} s of "
                "its own clock: check this host's clock"
            )
        if status == sp.AUTH_STATUS:
            raise AuthError(f"{reason}; check the credentials from {self.refresh_source}")
        if status != 200 and error not in (sp.ERROR_ITEM_NOT_FOUND, sp.ERROR_PARAM):
            raise BatchRefused(reason)


def _reason(payload: Mapping[str, Any]) -> str:
    """`error: message` of a Shopee reply."""
    return f"{payload.get('error') or 'no error name'}: {payload.get('message') or ''}".strip()


def _outcomes(
    payload: Mapping[str, Any], models: Sequence[int], none_applied: str
) -> list[Outcome]:
    """Each model's outcome: applied when `success_list` names it, refused with the
    `failed_reason` of `failure_list`; every model refused with the reply's error when
    the item itself was refused (unknown item, wrong model). `none_applied` is the
    call's error when no model was (its models are in `failure_list` all the same)."""
    error = payload.get("error") or ""
    response = payload.get("response")
    if error not in ("", none_applied) or not isinstance(response, Mapping):
        reason = _reason(payload) if error else "shopee: a reply without `response`"
        return [Outcome(applied=False, reason=reason, retry=not error) for _ in models]
    succeeded = {
        entry.get("model_id"): entry.get("stock")
        for entry in response.get("success_list") or []
        if isinstance(entry, Mapping)
    }
    failed = {
        entry.get("model_id"): entry.get("failed_reason")
        for entry in response.get("failure_list") or []
        if isinstance(entry, Mapping)
    }
    outcomes = []
    for model in models:
        if model in failed:
            outcomes.append(Outcome(applied=False, reason=f"{sp.PLATFORM}: {failed[model]}"))
        elif model in succeeded:
            stock = succeeded[model]
            outcomes.append(Outcome(applied=True, shown=stock if isinstance(stock, int) else None))
        else:
            reason = f"shopee: model {model} is in neither success_list nor failure_list"
            outcomes.append(Outcome(applied=False, reason=reason, retry=True))
    return outcomes


def _id(value: str) -> int | None:
    """A Shopee id from the listing map: a number, else None."""
    try:
        return int(value)
    except ValueError:
        return None


def _not_numbers(change: Change) -> Outcome:
    reason = f"shopee ids must be numbers: {dict(change.listing.ids)}"
    return Outcome(applied=False, reason=reason)


class UpdateStockLane(SynchronousLane):
    """v2.product.update_stock, models of one item per call."""

    name = "update_stock"
    call = "update_stock"

    def __init__(self, shop: _Shop, limits: LaneLimits) -> None:
        super().__init__(limits)
        self._shop = shop

    async def send(self, http: aiohttp.ClientSession, changes: Sequence[Change]) -> Reply:
        self.one_call(changes)
        item = _id(changes[0].listing.ids["item_id"])
        models = [_id(change.listing.ids["model_id"]) for change in changes]
        sendable = [
            (model, change.quantity)
            for model, change in zip(models, changes, strict=True)
            if model is not None
        ]
        if item is None or not sendable:
            return Reply(outcomes=[_not_numbers(change) for change in changes])
        body = sp.stock_request(item, sendable, self._shop.location_id)
        payload, budget = await self._shop.update_stock(http, body)
        answered = await self._held(
            http,
            item,
            sendable,
            _outcomes(payload, [m for m, _ in sendable], sp.ERROR_UPDATE_STOCK_FAILED),
        )
        replies = iter(answered)
        outcomes = [
            _not_numbers(change) if model is None else next(replies)
            for model, change in zip(models, changes, strict=True)
        ]
        return Reply(outcomes=outcomes, budget=budget)

    async def _held(
        self,
        http: aiohttp.ClientSession,
        item: int,
        models: Sequence[tuple[int, int]],
        outcomes: Sequence[Outcome],
    ) -> list[Outcome]:
        """The outcomes of one update_stock call for `(model_id, stock)` of `item`, each
        refused model marked `held` with what a promotion reserves for it above the
        stock sent. Read from Shopee (once per call) rather than trusted to the
        wording of the refusal, which Shopee words several ways [ML]; a refusal stands
        as it is when the read fails or shows no such reserved stock."""
        refused = [not (o.applied or o.retry) for o in outcomes]
        if not any(refused):
            return list(outcomes)
        variants = any(model != sp.NO_VARIANTS for model, _ in models)
        try:
            response = await self._shop.stock_of(http, item, variants)
        except (AuthError, BatchRefused, Throttled, TransientError) as exc:
            log.info("shopee item %s: reserved stock not read: %s", item, exc)
            return list(outcomes)
        marked = []
        for (model, stock), outcome, was_refused in zip(models, outcomes, refused, strict=True):
            reserved = sp.reserved_stock(response, item, model) if was_refused else None
            held = reserved is not None and reserved > max(stock, 0)
            marked.append(replace(outcome, held=reserved) if held else outcome)
        return marked


class UpdatePriceLane(SynchronousLane):
    """v2.product.update_price, the prices of one item's models per call [UP]."""

    name = "update_price"
    call = "update_price"
    quantities = False
    prices = True

    def __init__(self, shop: _Shop, limits: LaneLimits) -> None:
        super().__init__(limits)
        self._shop = shop

    async def send(self, http: aiohttp.ClientSession, changes: Sequence[Change]) -> Reply:
        self.one_call(changes)
        item = _id(changes[0].listing.ids["item_id"])
        models = [_id(change.listing.ids["model_id"]) for change in changes]
        sendable = [
            (model, change.price.amount)
            for model, change in zip(models, changes, strict=True)
            if model is not None and change.price is not None
        ]
        if item is None or len(sendable) != len(changes):
            return Reply(outcomes=[_not_numbers(change) for change in changes])
        payload, budget = await self._shop.update_price(http, sp.price_request(item, sendable))
        outcomes = _outcomes(payload, [m for m, _ in sendable], sp.ERROR_UPDATE_PRICE_FAILED)
        return Reply(outcomes=outcomes, budget=budget)


class ShopeeProfile:
    """The Shopee profile: one lane, "update_stock"."""

    platform = sp.PLATFORM
    id_fields: tuple[str, ...] = sp.ID_FIELDS
    daily_revisions: int | None = None

    def __init__(self, settings: ProfileSettings) -> None:
        channel.refuse_daily_revisions(settings, "shopee")
        self.currency = channel.currency(settings, sp.CURRENCY)
        batch = channel.batch_override(
            settings, "shopee", sp.MAX_MODELS, sp.MAX_MODELS, " models per item"
        )
        limits = channel.overridden_limits(settings, sp.RATE, sp.CLIENT_BURST, batch, "item_id")
        # Shopee publishes no rate for either call: update_price gets the same assumed
        # budget as update_stock, its own.
        shop = _Shop(settings)
        self.lanes: Sequence[Lane] = (
            UpdateStockLane(shop, limits),
            UpdatePriceLane(shop, limits),
        )

    def listing_key(self, listing: Listing) -> str:
        return sp.listing_key(listing.ids["item_id"], listing.ids["model_id"])


PROFILE: ProfileFactory = ShopeeProfile
