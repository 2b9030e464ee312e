"""The eBay profile: quantities and prices through bulkUpdatePriceQuantity, 25 listings
a call, with a user access token from the seller's refresh token.

Each quantity sets the inventory item's ship-to-home quantity and its offer's available
quantity to the same number, since the listing shows the smaller of the two; a price
sets the offer's `price`, in the same entry when both are pending. A 200 or 207 reply
carries one response per item and per offer; a change is applied when all of its were, refused with eBay's `<errorId>: <message>` when either was refused, and retried
when eBay answered it with a 5xx. The facts (path, limits, error ids, payload shapes)
live in `invsync.marketplaces.ebay`, shared with the sandbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp
import msgspec

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
    Profile,
    ProfileFactory,
    ProfileSettings,
    Reply,
    Throttled,
    TransientError,
    retry_after_s,
)
from invsync.gateway.secrets import Secret
from invsync.gateway.tokens import RefreshingToken, oauth_token
from invsync.marketplaces import ebay

_ENCODER = msgspec.json.Encoder()
_REPLY = msgspec.json.Decoder(ebay.BulkPriceQuantityResponse)
_ERRORS = msgspec.json.Decoder(ebay.ErrorResponse)


def build_request(changes: Sequence[Change]) -> ebay.BulkPriceQuantity:
    """One request entry per change: the item's quantity and its offer's, both `qty`,
    and the offer's price."""
    return ebay.BulkPriceQuantity([_entry(change) for change in changes])


def _entry(change: Change) -> ebay.PriceQuantity:
    price = change.price
    offer = ebay.OfferPriceQuantity(
        change.listing.ids["offer_id"],
        available_quantity=change.qty,
        price=None if price is None else ebay.Amount(price.amount, price.currency),
    )
    if change.qty is None:  # the offer's price alone
        return ebay.PriceQuantity(offers=[offer])
    return ebay.PriceQuantity(
        sku=change.listing.ids["ebay_sku"],
        ship_to_location_availability=ebay.ShipToLocationAvailability(change.qty),
        offers=[offer],
    )


def read_outcomes(
    changes: Sequence[Change], reply: ebay.BulkPriceQuantityResponse
) -> list[Outcome]:
    """One outcome per change, from the responses naming its SKU or its offer. A change
    eBay's reply does not mention is retried: nothing says it was applied."""
    outcomes = []
    for change in changes:
        sku, offer = change.listing.ids["ebay_sku"], change.listing.ids["offer_id"]
        mine = [r for r in reply.responses if r.sku == sku or r.offer_id == offer]
        outcomes.append(_outcome(change, mine))
    return outcomes


def _outcome(change: Change, responses: list[ebay.PriceQuantityResponse]) -> Outcome:
    if not responses:
        return Outcome(applied=False, retry=True, reason="eBay's reply has no entry for it")
    refused = [r for r in responses if not 200 <= r.status_code < 300]
    if not refused:
        return Outcome(applied=True, shown=change.qty)
    transient = all(r.status_code >= 500 for r in refused)
    first = refused[0]
    reason = first.errors[0].reason() if first.errors else f"status {first.status_code}"
    return Outcome(applied=False, retry=transient, reason=reason)


def error_reason(body: bytes, status: int) -> str:
    """eBay's errors of a refused request as `<errorId>: <message>; ...`, or the HTTP
    status when the body is not eBay's error shape."""
    try:
        errors = _ERRORS.decode(body).errors
    except msgspec.DecodeError:
        return f"HTTP {status}"
    return "; ".join(error.reason() for error in errors) or f"HTTP {status}"


@dataclass
class BulkUpdateLane:
    """The one eBay lane: POST bulk_update_price_quantity, synchronous."""

    url: str
    token: RefreshingToken
    limits: LaneLimits
    name: str = "bulk_update_price_quantity"
    asynchronous: bool = False
    quantities: bool = True
    prices: bool = True

    async def send(self, http: aiohttp.ClientSession, changes: Sequence[Change]) -> Reply:
        body = _ENCODER.encode(build_request(changes))
        status, payload, retry_after = await self._post(http, body)
        if status in (401, 403):
            raise AuthError(
                f"eBay refused the access token ({error_reason(payload, status)}) even after "
                "a refresh, or it lacks the sell.inventory scope; check the channel's "
                "credentials"
            )
        if status == 429:
            raise Throttled(error_reason(payload, status), BudgetReport(retry_after_s=retry_after))
        if status >= 500:
            raise TransientError(f"eBay answered HTTP {status}: {error_reason(payload, status)}")
        if status not in (200, 207):
            raise BatchRefused(f"eBay refused the batch: {error_reason(payload, status)}")
        try:
            reply = _REPLY.decode(payload)
        except msgspec.DecodeError:
            raise TransientError(
                f"eBay answered HTTP {status} with a body that is not a BulkPriceQuantityResponse"
            ) from None
        return Reply(read_outcomes(changes, reply))

    async def poll(self, http: aiohttp.ClientSession, job: str) -> Reply | None:
        raise NotImplementedError("bulk_update_price_quantity is synchronous: no jobs")

    async def _post(
        self, http: aiohttp.ClientSession, body: bytes
    ) -> tuple[int, bytes, float | None]:
        """POST, and once more with a new token if eBay says the token is invalid (a
        token can be revoked, or expire before its `expires_in`)."""
        token = await self.token.get(http)
        answer = await self._post_with(http, body, token)
        if answer[0] == 401:
            self.token.invalidate(token)
            answer = await self._post_with(http, body, await self.token.get(http))
        return answer

    async def _post_with(
        self, http: aiohttp.ClientSession, body: bytes, token: Secret
    ) -> tuple[int, bytes, float | None]:
        try:
            async with http.post(
                self.url,
                data=body,
                headers={
                    "Authorization": f"Bearer {token.reveal()}",
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                },
                timeout=calls.TIMEOUT,
            ) as resp:
                return (
                    resp.status,
                    await resp.read(),
                    retry_after_s(resp.headers.get("Retry-After")),
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise calls.unreachable("eBay unreachable", exc) from None


@dataclass
class EbayProfile:
    """eBay: one synchronous lane, listings keyed by the seller SKU, 250 revisions per
    listing per day."""

    lanes: Sequence[Lane]
    daily_revisions: int | None
    currency: str
    platform: str = ebay.PLATFORM
    id_fields: tuple[str, ...] = field(default=ebay.ID_FIELDS)

    def listing_key(self, listing: Listing) -> str:
        return listing.ids["ebay_sku"]


def _limits(settings: ProfileSettings) -> LaneLimits:
    overrides = settings.overrides
    batch = int(overrides.get("batch", ebay.MAX_REQUESTS))
    if not 1 <= batch <= ebay.MAX_REQUESTS:
        raise ValueError(
            f"channel {settings.channel}: batch must be 1..{ebay.MAX_REQUESTS} for eBay "
            f"(bulkUpdatePriceQuantity takes at most {ebay.MAX_REQUESTS}), got {batch}"
        )
    rate = float(overrides.get("rate", ebay.DEFAULT_RATE))
    burst = float(overrides.get("burst", ebay.GATEWAY_BURST))
    if rate <= 0 or burst < 1:
        raise ValueError(
            f"channel {settings.channel}: rate must be > 0 and burst >= 1, "
            f"got rate {rate}, burst {burst}"
        )
    return LaneLimits(rate=rate, burst=burst, batch=batch)


def _credential(settings: ProfileSettings, name: str) -> Secret:
    try:
        return settings.credentials[name]
    except KeyError:
        raise ValueError(
            f"channel {settings.channel}: eBay needs credential {name} "
            f"(give {name}_env or {name}_file)"
        ) from None


def build_profile(settings: ProfileSettings) -> Profile:
    """The eBay profile for one channel. The token URL is eBay's, or `base_url`'s when
    that is overridden (a sandbox), unless option `token_url` names one."""
    refresh_token = _credential(settings, "refresh_token")
    client_id = _credential(settings, "client_id")
    client_secret = _credential(settings, "client_secret")
    base_url = (settings.base_url or ebay.API_URL).rstrip("/")
    token_url = settings.options.get("token_url", base_url + ebay.TOKEN_PATH)
    daily = int(settings.overrides.get("daily_revisions", ebay.DAILY_REVISIONS))
    if daily < 1:
        raise ValueError(f"channel {settings.channel}: daily_revisions must be >= 1, got {daily}")

    async def fetch(http: aiohttp.ClientSession) -> tuple[Secret, float]:
        return await oauth_token(
            http,
            token_url,
            {"grant_type": "refresh_token", "refresh_token": refresh_token, "scope": ebay.SCOPE},
            basic=(client_id, client_secret),
        )

    lane = BulkUpdateLane(
        url=base_url + ebay.BULK_UPDATE_PATH,
        token=RefreshingToken(fetch),
        limits=_limits(settings),
    )
    currency = channel.currency(settings, ebay.CURRENCY)
    return EbayProfile(lanes=[lane], daily_revisions=daily, currency=currency)


PROFILE: ProfileFactory = build_profile
