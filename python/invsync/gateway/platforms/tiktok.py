"""TikTok Shop: Update Inventory for quantities and Update Price for prices, each one
product's SKUs per signed call.

Every call is signed with the app secret (HMAC-SHA256 over the path, the sorted query
and the body, with a timestamp TikTok accepts for 5 minutes) and carries an access
token fetched with the refresh token, refreshed ahead of expiry and once more when
TikTok calls it invalid or expired. A reply with `code: 0` can still hold per-SKU
failures in `data.errors`: those are refused with TikTok's reason. A refused signature
means a wrong app secret or a clock more than 5 minutes off: an AuthError saying both.

Each listing is one TikTok SKU (`sku_id`, the listing key) of a product (`product_id`)
in one warehouse (`warehouse_id`); the call names the product in its path, so the lane
groups by `product_id`: each call carries up to 100 of one product's SKUs, within a
budget of 50 calls a second.

Channel options (strings): `shop_cipher` (required: the shop's cipher from Get
Authorized Shops), `token_url` (default: TikTok's auth host for TikTok's own API host,
else `<base_url>/api/v2/token/refresh`, where the sandbox serves it). Overrides: `rate`,
`burst`, `batch` (SKUs per call, 1 to 100). Facts and their sources:
`invsync.marketplaces.tiktok`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from invsync.gateway.platforms import calls
from invsync.gateway.platforms import settings as channel
from invsync.gateway.platforms.base import (
    AuthError,
    Change,
    Lane,
    LaneLimits,
    Listing,
    Outcome,
    ProfileFactory,
    ProfileSettings,
    Reply,
    TransientError,
)
from invsync.gateway.platforms.lanes import SynchronousLane
from invsync.gateway.secrets import Secret
from invsync.gateway.tokens import RefreshingToken
from invsync.marketplaces import tiktok as tt

_TIKTOK_API_HOST_SUFFIX = ".tiktokglobalshop.com"
_TOKEN_ERRORS = (tt.ACCESS_TOKEN_INVALID, tt.ACCESS_TOKEN_EXPIRED)
# Requests sent a budget slot apart can reach TikTok bunched (the event loop, connection
# set-up): this much of TikTok's burst stays unspent so bunching costs no 429. The
# sustained rate is TikTok's own.
BURST_HEADROOM = 5.0
# The Unix time a request is signed at; a function so a test can skew it.
_now: Callable[[], float] = time.time


def _code(response: calls.Response) -> object:
    """The `code` of TikTok's envelope; None when the reply has no envelope."""
    payload = response.payload
    return payload.get("code") if isinstance(payload, Mapping) else None


def _token_url(base_url: str) -> str:
    """TikTok's auth host for TikTok's API host; a stand-in (the sandbox) serves the
    refresh endpoint itself."""
    host = urlsplit(base_url).hostname or ""
    root = tt.AUTH_URL if host.endswith(_TIKTOK_API_HOST_SUFFIX) else base_url
    return root + tt.REFRESH_PATH


class _Shop:
    """One authorised shop: the app's key and secret, the shop cipher, the access token."""

    def __init__(self, settings: ProfileSettings) -> None:
        channel.require_credentials(settings, "tiktok", tt.CREDENTIALS)
        self.shop_cipher = channel.require_option(settings, "tiktok", "shop_cipher")
        self.channel = settings.channel
        self.base_url = channel.base_url(settings, tt.DEFAULT_BASE_URL)
        self._token_url = settings.options.get("token_url") or _token_url(self.base_url)
        self._credentials = {name: settings.credentials[name] for name in tt.CREDENTIALS}
        self.sources = ", ".join(secret.source for secret in self._credentials.values())
        self.token = RefreshingToken(self._refresh)

    async def _refresh(self, http: aiohttp.ClientSession) -> tuple[Secret, float]:
        """A new access token and its lifetime in seconds [AUTH]."""
        params = {name: secret.reveal() for name, secret in self._credentials.items()}
        params["grant_type"] = "refresh_token"
        try:
            async with http.get(self._token_url, params=params, timeout=calls.TIMEOUT) as resp:
                if resp.status >= 500 or resp.status == 429:
                    raise TransientError(f"tiktok token refresh answered HTTP {resp.status}")
                payload = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(
                f"tiktok token refresh unreachable: {type(exc).__name__}"
            ) from None
        except ValueError:
            raise TransientError(
                "tiktok token refresh answered something other than JSON"
            ) from None
        data = payload.get("data") if isinstance(payload, Mapping) else None
        if not isinstance(data, Mapping) or payload.get("code") != tt.OK:
            raise AuthError(
                f"tiktok channel {self.channel}: token refresh refused "
                f"({tt.reply_reason(payload)}); check the credentials from {self.sources}"
            )
        token, expires_at = data.get("access_token"), data.get("access_token_expire_in")
        if not isinstance(token, str) or not token or not isinstance(expires_at, int | float):
            raise AuthError("tiktok token refresh reply lacks access_token or its expiry")
        return Secret(f"token from {self._token_url}", token), float(expires_at) - _now()

    async def update(
        self, http: aiohttp.ClientSession, path: str, body: Mapping[str, Any]
    ) -> calls.Response:
        """One signed call with a valid access token. Returns replies in TikTok's
        envelope (with per-request codes); raises AuthError for credentials refused after
        one refresh or a refused signature, Throttled for 429, TransientError for 5xx and
        network failures, BatchRefused for anything else."""

        async def attempt(token: Secret) -> calls.Response:
            return await self._send(http, path, token, body)

        return await self.token.call(
            http, attempt, lambda response: _code(response) in _TOKEN_ERRORS, self._refused
        )

    def _refused(self, response: calls.Response) -> AuthError:
        return AuthError(
            f"tiktok channel {self.channel}: a fresh access token was refused "
            f"({tt.reply_reason(response.payload)}); check that the shop authorised the app, "
            f"and the credentials from {self.sources}"
        )

    async def _send(
        self, http: aiohttp.ClientSession, path: str, token: Secret, body: Mapping[str, Any]
    ) -> calls.Response:
        content = json.dumps(body, separators=(",", ":")).encode()
        params = {
            "app_key": self._credentials["app_key"].reveal(),
            "shop_cipher": self.shop_cipher,
            "timestamp": str(int(_now())),
        }
        params["sign"] = tt.sign(self._credentials["app_secret"].reveal(), path, params, content)
        headers = {
            tt.ACCESS_TOKEN_HEADER: token.reveal(),
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        what = f"tiktok POST {path}"
        response = await calls.request(
            http,
            "POST",
            self.base_url + path,
            what,
            calls.no_budget,
            params=params,
            data=content,
            headers=headers,
        )
        status, reason = response.status, tt.reply_reason(response.payload)
        if _code(response) == tt.SIGN_INVALID:
            raise AuthError(
                f"tiktok channel {self.channel}: the signature was refused ({reason}); check "
                f"the app key and secret from {self._credentials['app_key'].source}, "
                f"{self._credentials['app_secret'].source} and that this host's clock is "
                f"within {tt.TIMESTAMP_WINDOW_S} s of the real time"
            )
        if status == 429 or status >= 500 or _code(response) is None:
            calls.raise_refused(what, status, reason, response.budget)
        return response


class InventoryLane(SynchronousLane):
    """Update Inventory: one product's SKUs, each in its warehouse, per call."""

    name = "inventory"
    call = "Update Inventory"

    def __init__(self, shop: _Shop, limits: LaneLimits) -> None:
        super().__init__(limits)
        self._shop = shop

    async def send(self, http: aiohttp.ClientSession, changes: Sequence[Change]) -> Reply:
        self.one_call(changes)
        body = {
            "skus": [
                {
                    "id": change.listing.ids["sku_id"],
                    "inventory": [
                        {
                            "warehouse_id": change.listing.ids["warehouse_id"],
                            "quantity": change.quantity,
                        }
                    ],
                }
                for change in changes
            ]
        }
        path = tt.INVENTORY_PATH.format(product_id=changes[0].listing.ids["product_id"])
        return _reply(changes, await self._shop.update(http, path, body))


class PriceLane(SynchronousLane):
    """Update Price: one product's SKUs' prices per call [PRICE]."""

    name = "price"
    call = "Update Price"
    quantities = False
    prices = True

    def __init__(self, shop: _Shop, limits: LaneLimits) -> None:
        super().__init__(limits)
        self._shop = shop

    async def send(self, http: aiohttp.ClientSession, changes: Sequence[Change]) -> Reply:
        self.one_call(changes)
        skus = []
        for change in changes:
            if change.price is None:
                raise ValueError(f"{self.call} takes prices, not {change}")
            price = {"amount": change.price.amount, "currency": change.price.currency}
            skus.append({"id": change.listing.ids["sku_id"], "price": price})
        path = tt.PRICE_PATH.format(product_id=changes[0].listing.ids["product_id"])
        return _reply(changes, await self._shop.update(http, path, {"skus": skus}))


def _reply(changes: Sequence[Change], response: calls.Response) -> Reply:
    """Every change refused with the reply's code, or in a `code: 0` reply each SKU
    applied unless `data.errors` names it."""
    payload = response.payload
    if _code(response) != tt.OK:
        refused = Outcome(applied=False, reason=tt.reply_reason(payload))
        return Reply(outcomes=[refused] * len(changes))
    failed = tt.sku_errors(payload.get("data"))
    return Reply(outcomes=[_outcome(change, failed) for change in changes])


def _outcome(change: Change, failed: Mapping[str, str]) -> Outcome:
    """A SKU's outcome in a `code: 0` reply: refused when `data.errors` names it."""
    reason = failed.get(change.listing.ids["sku_id"])
    if reason is None:
        return Outcome(applied=True, shown=change.qty)
    return Outcome(applied=False, reason=reason)


class TikTokProfile:
    """The TikTok Shop profile: one lane, "inventory"."""

    platform = "tiktok"
    id_fields: tuple[str, ...] = ("product_id", "sku_id", "warehouse_id")
    daily_revisions: int | None = None

    def __init__(self, settings: ProfileSettings) -> None:
        channel.refuse_daily_revisions(settings, "tiktok")
        self.currency = channel.currency(settings, tt.CURRENCY)
        batch = channel.batch_override(
            settings, "tiktok", tt.MAX_SKUS, tt.MAX_SKUS, " SKUs per product"
        )
        burst = tt.BURST - BURST_HEADROOM
        limits = channel.overridden_limits(settings, tt.RATE, burst, batch, "product_id")
        # 50 calls a second per API [RATE]: Update Price has a budget of its own.
        shop = _Shop(settings)
        self.lanes: Sequence[Lane] = (InventoryLane(shop, limits), PriceLane(shop, limits))

    def listing_key(self, listing: Listing) -> str:
        return listing.ids["sku_id"]


PROFILE: ProfileFactory = TikTokProfile
