"""Lazada (Open Platform): one lane, UpdatePriceQuantity, up to 20 SKUs per call, each
setting the SKU's quantity, its price (in the venture's currency) or both.

Every call is signed with the app secret over the API path and the sorted parameters
(uppercase hex), its timestamp taken when it is sent. The access token comes from the
refresh token at Lazada's auth host; a refresh may hand out a new refresh token, and
the profile keeps the newest in memory. A call that fails for some SKUs answers code
501 with a `detail` entry per failed SKU (by seller SKU): those are refused with
Lazada's message, the others were applied. Lazada never lets the quantity go below the
stock it has locked (withhold + occupy + campaign): for a refused SKU the lane reads
GetProductItem and reports the locked stock as the outcome's `held`, so the scheduler
sends that floor instead and the hold is alerted and explained. Facts and sources: `invsync.marketplaces.lazada`.

Channel options (strings): `app_key` (required); `token_url` (default: Lazada's auth
host for Lazada's own API hosts, else `<base_url>/rest/auth/token/refresh`, where the
sandbox serves it). `base_url` is the venture's host, e.g. https://api.lazada.co.th
(default Singapore's). Overrides: `rate`, `burst`, `batch` (at most 50; default 20,
Lazada's recommendation).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

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
from invsync.marketplaces import lazada as lz

log = logging.getLogger("invsync.gateway")

# [UPQ] "please retry in the next second" after a QPS refusal.
THROTTLE_PAUSE_S = 1.0


def _token_url(base_url: str) -> str:
    """Lazada's auth host serves every venture's tokens; a stand-in (the sandbox) serves
    them itself."""
    host = urlsplit(base_url).hostname or ""
    root = lz.AUTH_BASE_URL if host.startswith("api.lazada.") else base_url
    return root + lz.REST_PREFIX + lz.REFRESH_PATH


def _reason(payload: Mapping[str, Any]) -> str:
    return f"{payload.get('code', '?')}: {payload.get('message') or ''}".strip()


class _Seller:
    """One authorised seller of one venture: the app that signs, and its tokens."""

    def __init__(self, settings: ProfileSettings, clock: Callable[[], float] = time.time) -> None:
        channel.require_credentials(settings, "lazada", lz.CREDENTIALS)
        self.app_key = channel.require_option(settings, "lazada", "app_key")
        self.channel = settings.channel
        base_url = channel.base_url(settings, lz.DEFAULT_BASE_URL)
        self.api_root = base_url + lz.REST_PREFIX
        self.token_url = settings.options.get("token_url") or _token_url(base_url)
        self.app_secret = settings.credentials["app_secret"]
        self.refresh_source = settings.credentials["refresh_token"].source
        self._refresh = settings.credentials["refresh_token"]
        self._clock = clock
        self.token = RefreshingToken(self._fetch_token)

    def _signed(self, api_path: str, params: Mapping[str, str]) -> dict[str, str]:
        every = {
            **params,
            "app_key": self.app_key,
            "timestamp": str(int(self._clock() * 1000)),
            "sign_method": lz.SIGN_METHOD,
        }
        return every | {"sign": lz.sign(self.app_secret.reveal(), api_path, every)}

    async def _fetch_token(self, http: aiohttp.ClientSession) -> tuple[Secret, float]:
        params = self._signed(lz.REFRESH_PATH, {"refresh_token": self._refresh.reveal()})
        payload = await self._send(http, "POST", self.token_url, params, {})
        self._raise_for_request(payload, "token refresh")
        access, refresh = payload.get("access_token"), payload.get("refresh_token")
        lifetime = payload.get("expires_in")
        if str(payload.get("code")) != lz.SUCCESS or not isinstance(access, str) or not access:
            raise AuthError(
                f"lazada channel {self.channel}: the token refresh was refused "
                f"({_reason(payload)}); re-authorise the seller and check the refresh_token "
                f"from {self.refresh_source}"
            )
        if isinstance(refresh, str) and refresh:
            self._refresh = Secret(f"lazada's refresh of {self.refresh_source}", refresh)
        ttl = float(lifetime) if isinstance(lifetime, int | float) else lz.ACCESS_TOKEN_TTL_S
        return Secret(f"lazada access token of app {self.app_key}", access), ttl

    async def call(
        self,
        http: aiohttp.ClientSession,
        api_path: str,
        form: Mapping[str, str],
        method: str = "POST",
    ) -> Mapping[str, Any]:
        """One signed API call with a valid token: the reply of a call Lazada took (code
        0 or an item-level 501); raises for whole-request failures, after one token
        refresh for a refused access token. A GET carries `form` in the query."""

        async def attempt(token: Secret) -> Mapping[str, Any]:
            params = self._signed(api_path, {**form, "access_token": token.reveal()})
            if method == "GET":
                query, body = params, {}
            else:
                query, body = {k: v for k, v in params.items() if k not in form}, dict(form)
            return await self._send(http, method, self.api_root + api_path, query, body)

        payload = await self.token.call(
            http,
            attempt,
            lambda payload: str(payload.get("code")) == lz.ILLEGAL_ACCESS_TOKEN,
            self._refused,
        )
        self._raise_for_request(payload, api_path)
        return payload

    def _refused(self, payload: Mapping[str, Any]) -> AuthError:
        return AuthError(
            f"lazada channel {self.channel}: a fresh access token was refused "
            f"({_reason(payload)}); check that the seller still authorises app {self.app_key} "
            f"and the refresh_token from {self.refresh_source}"
        )

    async def _send(
        self,
        http: aiohttp.ClientSession,
        method: str,
        url: str,
        query: Mapping[str, str],
        form: Mapping[str, str],
    ) -> Mapping[str, Any]:
        """A POST with the system parameters in the query and the API's in the form, as
        Lazada's SDKs do, or a GET with them all in the query."""
        path = urlsplit(url).path
        data = dict(form) if method == "POST" else None
        response = await calls.request(
            http, method, url, f"lazada {path}", calls.no_budget, params=query, data=data
        )
        if response.status >= 500:
            raise TransientError(f"lazada {path}: HTTP {response.status}")
        if not isinstance(response.payload, dict):
            raise TransientError(f"lazada {path}: HTTP {response.status} without a JSON reply")
        return response.payload

    def _raise_for_request(self, payload: Mapping[str, Any], what: str) -> None:
        """Raise for a failure of the whole request; return for success or a 501."""
        code = str(payload.get("code"))
        reason = f"lazada {what}: {_reason(payload)}"
        if code in (lz.SUCCESS, lz.UPDATE_FAILED):
            return
        if code in lz.THROTTLED:
            raise Throttled(reason, BudgetReport(retry_after_s=THROTTLE_PAUSE_S))
        if code in lz.TRANSIENT:
            raise TransientError(reason)
        if code == lz.INCOMPLETE_SIGNATURE:
            raise AuthError(
                f"{reason}; check the app_secret from {self.app_secret.source} and "
                f"app_key {self.app_key}"
            )
        if code == lz.INVALID_TIMESTAMP:
            raise AuthError(
                f"{reason}; Lazada takes a timestamp within {lz.TIMESTAMP_WINDOW_S:g} s of "
                "UTC: check this host's clock"
            )
        if code in (lz.ILLEGAL_ACCESS_TOKEN, lz.ILLEGAL_REFRESH_TOKEN):
            raise AuthError(f"{reason}; check the refresh_token from {self.refresh_source}")
        raise BatchRefused(reason)


def _outcomes(payload: Mapping[str, Any], changes: Sequence[Change]) -> list[Outcome]:
    """Code 0: every SKU applied. Code 501: the SKUs its `detail` names are refused with
    Lazada's message, the others applied; if an entry names no SKU, the SKUs it might
    concern are sent again rather than guessed applied."""
    if str(payload.get("code")) == lz.SUCCESS:
        return [Outcome(applied=True) for _ in changes]
    failed: dict[str, str] = {}
    unnamed: list[str] = []
    detail = payload.get("detail")
    for entry in detail if isinstance(detail, list) else []:
        if not isinstance(entry, Mapping):
            continue
        message = f"{entry.get('field') or 'Sku'}: {entry.get('message') or _reason(payload)}"
        seller_sku = entry.get("seller_sku")
        if isinstance(seller_sku, str) and seller_sku:
            failed[seller_sku] = message
        else:
            unnamed.append(message)
    outcomes = []
    for change in changes:
        seller_sku = change.listing.ids["seller_sku"]
        if seller_sku in failed:
            outcomes.append(Outcome(applied=False, reason=f"lazada: {failed[seller_sku]}"))
        elif unnamed or not failed:
            reason = f"lazada: {_reason(payload)} ({'; '.join(unnamed) or 'no detail'})"
            outcomes.append(Outcome(applied=False, reason=reason, retry=True))
        else:
            outcomes.append(Outcome(applied=True))
    return outcomes


class PriceQuantityLane(SynchronousLane):
    """UpdatePriceQuantity: the total stock of up to `batch` SKUs per call."""

    name = "price_quantity"
    call = "UpdatePriceQuantity"
    prices = True

    def __init__(self, seller: _Seller, limits: LaneLimits) -> None:
        super().__init__(limits)
        self._seller = seller

    async def send(self, http: aiohttp.ClientSession, changes: Sequence[Change]) -> Reply:
        self.one_call(changes)
        skus = [
            (
                ids["seller_sku"],
                ids["item_id"],
                ids["sku_id"],
                change.qty,
                None if change.price is None else change.price.amount,
            )
            for change in changes
            for ids in (change.listing.ids,)
        ]
        form = {"payload": lz.update_payload(skus)}
        payload = await self._seller.call(http, lz.UPDATE_PATH, form)
        outcomes = _outcomes(payload, changes)
        refused = [i for i, o in enumerate(outcomes) if not (o.applied or o.retry)]
        if refused:
            await self._held(http, changes, outcomes, refused)
        return Reply(outcomes=outcomes)

    async def _held(
        self,
        http: aiohttp.ClientSession,
        changes: Sequence[Change],
        outcomes: list[Outcome],
        refused: Sequence[int],
    ) -> None:
        """Refused SKUs may be under locked stock: read what Lazada locks for them
        (GetProductItem, once per item) rather than trust the wording of the refusal,
        and mark those asked for less as `held`. A refusal stands as it is when the
        read fails or shows no locked stock (or none above the quantity sent)."""
        items: dict[str, Mapping[str, Any]] = {}
        for index in refused:
            ids = changes[index].listing.ids
            if ids["item_id"] not in items:
                try:
                    reply = await self._seller.call(
                        http, lz.ITEM_PATH, {"item_id": ids["item_id"]}, method="GET"
                    )
                except (AuthError, BatchRefused, Throttled, TransientError) as exc:
                    log.info("lazada item %s: locked stock not read: %s", ids["item_id"], exc)
                    reply = {}
                data = reply.get("data")
                items[ids["item_id"]] = data if isinstance(data, Mapping) else {}
            locked = lz.locked_stock(items[ids["item_id"]], ids["seller_sku"])
            qty = changes[index].qty
            if qty is not None and locked is not None and locked > max(qty, 0):
                outcomes[index] = replace(outcomes[index], held=locked)


class LazadaProfile:
    """The Lazada profile: one lane, "price_quantity"."""

    platform = lz.PLATFORM
    id_fields: tuple[str, ...] = lz.ID_FIELDS
    daily_revisions: int | None = None

    def __init__(self, settings: ProfileSettings) -> None:
        channel.refuse_daily_revisions(settings, "lazada")
        self.currency = channel.currency(settings, lz.CURRENCY)
        batch = channel.batch_override(settings, "lazada", lz.RECOMMENDED_SKUS, lz.MAX_SKUS)
        limits = channel.overridden_limits(settings, lz.RATE, lz.CLIENT_BURST, batch)
        self.lanes: Sequence[Lane] = (PriceQuantityLane(_Seller(settings), limits),)

    def listing_key(self, listing: Listing) -> str:
        return listing.ids["seller_sku"]


PROFILE: ProfileFactory = LazadaProfile
