"""Amazon (Selling Partner API): a per-item patchListingsItem lane, and a JSON_LISTINGS_FEED
lane for backlogs the per-item budget would take longer to clear than a feed takes.
The patch lane also sets prices (`purchasable_offer`), in the same PATCH as the
listing's quantity when both are pending; the feed lane carries quantities only.

Both lanes share one selling account: its seller id, marketplace, product type and the
Login with Amazon access token, refreshed ahead of expiry and once more when Amazon
answers 403 `Unauthorized`. Amazon's "ACCEPTED" means queued for processing; a 200 can
also carry `status: INVALID` with the issues that refused it. The feed lane's reply is a
feed id; `poll` reads the processing report and maps its issues to items by
`messageId`. Facts and their sources: `invsync.marketplaces.amazon`.

Channel options (strings): `seller_id` and `marketplace_id` (required); `product_type`
(default "PRODUCT"); `patch_op` "merge" (default: sets the quantity and keeps the lead
time and restock date) or "replace"; `feed_processing_s`, how long a feed usually takes
(default 300); `token_url` (default: Login with Amazon's for Amazon's own hosts, else
`<base_url>/auth/o2/token`, where the sandbox serves it). Overrides: `rate` and `burst` of the patch lane.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping, Sequence
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
    Price,
    ProfileFactory,
    ProfileSettings,
    Reply,
    Throttled,
    TransientError,
)
from invsync.gateway.platforms.documents import json_document
from invsync.gateway.platforms.lanes import SynchronousLane
from invsync.gateway.secrets import Secret
from invsync.gateway.tokens import RefreshingToken, oauth_token
from invsync.marketplaces import amazon as az


def _budget(headers: Mapping[str, str], status: int) -> BudgetReport:
    """The usage plan rate Amazon says it applied, when it says one."""
    try:
        return BudgetReport(rate=float(headers[az.RATE_LIMIT_HEADER]))
    except (KeyError, ValueError):
        return BudgetReport()


def _token_url(base_url: str) -> str:
    """Login with Amazon for any of Amazon's regional endpoints; a stand-in (the
    sandbox) serves the token endpoint itself."""
    host = urlsplit(base_url).hostname or ""
    return az.TOKEN_URL if host.endswith(az.AMAZON_HOST_SUFFIX) else base_url + az.TOKEN_PATH


class _Account:
    """One selling account as both lanes reach it: base URL, ids, and its access token."""

    def __init__(self, settings: ProfileSettings) -> None:
        channel.require_credentials(settings, "amazon", az.CREDENTIALS)
        options = settings.options
        self.seller_id = channel.require_option(settings, "amazon", "seller_id")
        self.marketplace_id = channel.require_option(settings, "amazon", "marketplace_id")
        self.channel = settings.channel
        self.product_type = options.get("product_type", az.DEFAULT_PRODUCT_TYPE)
        self.patch_op = options.get("patch_op", "merge")
        if self.patch_op not in az.QUANTITY_OPS:
            raise ValueError(
                f"channel {settings.channel}: patch_op must be one of {az.QUANTITY_OPS}, "
                f"not {self.patch_op!r}"
            )
        base_url = channel.base_url(settings, az.DEFAULT_BASE_URL)
        self.base_url = base_url
        token_url = options.get("token_url") or _token_url(base_url)
        credentials = {name: settings.credentials[name] for name in az.CREDENTIALS}
        self.sources = ", ".join(secret.source for secret in credentials.values())

        async def fetch(http: aiohttp.ClientSession) -> tuple[Secret, float]:
            form: dict[str, str | Secret] = {"grant_type": "refresh_token", **credentials}
            return await oauth_token(http, token_url, form)

        self.token = RefreshingToken(fetch)

    def patch(self, qty: int | None, price: Price | None = None) -> dict[str, Any]:
        """The patches of one listing: its quantity, its price, or both [PO]."""
        patches = [] if qty is None else [az.quantity_patch(self.patch_op, qty)]
        if price is not None:
            patches.append(
                az.price_patch(self.patch_op, self.marketplace_id, price.amount, price.currency)
            )
        return {"productType": self.product_type, "patches": patches}

    async def call(
        self,
        http: aiohttp.ClientSession,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> calls.Response:
        """One SP-API call with a valid access token. Returns 2xx and 404 replies; raises
        for the rest: 403 (after one refresh) AuthError, 429 Throttled, 5xx and network
        failures TransientError, any other refusal BatchRefused."""

        async def attempt(token: Secret) -> calls.Response:
            return await self._send(http, method, path, token, body, params)

        return await self.token.call(
            http, attempt, lambda response: response.status == 403, self._refused
        )

    def _refused(self, response: calls.Response) -> AuthError:
        return AuthError(
            f"amazon channel {self.channel}: a fresh access token was refused "
            f"({az.first_error(response.payload)}); check that seller {self.seller_id} "
            f"authorised the app, and the credentials from {self.sources}"
        )

    async def _send(
        self,
        http: aiohttp.ClientSession,
        method: str,
        path: str,
        token: Secret,
        body: Mapping[str, Any] | None,
        params: Mapping[str, str] | None,
    ) -> calls.Response:
        headers = {az.ACCESS_TOKEN_HEADER: token.reveal(), "Accept": "application/json"}
        what = f"amazon {method} {path}"
        response = await calls.request(
            http,
            method,
            self.base_url + path,
            what,
            _budget,
            json=body,
            params=params,
            headers=headers,
        )
        if response.status < 300 or response.status in (403, 404):
            return response
        calls.raise_refused(
            what,
            response.status,
            az.first_error(response.payload),
            response.budget,
        )


def _expect(
    response: calls.Response, status: int, what: str, keys: Sequence[str]
) -> Mapping[str, Any]:
    """The reply's body when it has the documented status and fields; otherwise the
    platform answered something the profile does not know, which a person must see."""
    payload = response.payload
    if (
        response.status != status
        or not isinstance(payload, Mapping)
        or any(not isinstance(payload.get(key), str) for key in keys)
    ):
        raise BatchRefused(
            f"amazon {what}: expected HTTP {status} with {', '.join(keys)}, got HTTP "
            f"{response.status} ({az.first_error(payload)})"
        )
    return payload


class PatchLane(SynchronousLane):
    """patchListingsItem: one SKU per request, within the selling account's usage plan."""

    name = "patch"
    call = "patchListingsItem"
    prices = True

    def __init__(self, account: _Account, limits: LaneLimits) -> None:
        super().__init__(limits)
        self._account = account

    async def send(self, http: aiohttp.ClientSession, changes: Sequence[Change]) -> Reply:
        self.one_call(changes)
        change = changes[0]
        account = self._account
        response = await account.call(
            http,
            "PATCH",
            az.listings_item_path(account.seller_id, change.listing.ids["seller_sku"]),
            body=account.patch(change.qty, change.price),
            params={"marketplaceIds": account.marketplace_id},
        )
        if response.status == 404:
            outcome = Outcome(applied=False, reason=az.first_error(response.payload))
        else:
            outcome = _submission_outcome(response.payload)
        return Reply(outcomes=[outcome], budget=response.budget)


def _submission_outcome(payload: object) -> Outcome:
    """ACCEPTED is applied; INVALID (inside a 200) is refused with the ERROR issues."""
    if not isinstance(payload, Mapping):
        return Outcome(applied=False, retry=True, reason="amazon: a 200 without a JSON body")
    status = payload.get("status")
    if status == az.STATUS_ACCEPTED:
        return Outcome(applied=True)
    reasons = az.issue_reasons(payload.get("issues"))
    return Outcome(applied=False, reason="; ".join(reasons) or f"{status}: no issue given")


class FeedLane:
    """JSON_LISTINGS_FEED: up to 25,000 SKUs per feed, within createFeed's usage plan
    and 5 listings feeds per 5 minutes; applied once Amazon has processed the feed,
    which `poll` watches."""

    name = "feed"
    asynchronous = True
    quantities = True
    prices = False

    def __init__(self, account: _Account, limits: LaneLimits) -> None:
        self._account = account
        self.limits = limits
        # Feed id -> how many messages it holds (message ids 1..n, in the batch's order).
        self._jobs: dict[str, int] = {}

    async def send(self, http: aiohttp.ClientSession, changes: Sequence[Change]) -> Reply:
        account = self._account

        def feed() -> dict[str, Any]:
            messages = [
                {
                    "messageId": number,
                    "sku": change.listing.ids["seller_sku"],
                    "operationType": az.FEED_OPERATION,
                    **account.patch(change.quantity),
                }
                for number, change in enumerate(changes, start=1)
            ]
            return az.feed_document(account.seller_id, messages)

        document = await json_document(feed)
        created = _expect(
            await account.call(
                http, "POST", az.FEED_DOCUMENTS_PATH, body={"contentType": az.FEED_CONTENT_TYPE}
            ),
            201,
            "createFeedDocument",
            ("feedDocumentId", "url"),
        )
        await _transfer(http, "PUT", created["url"], document)
        response = await account.call(
            http,
            "POST",
            az.FEEDS_PATH,
            body={
                "feedType": az.FEED_TYPE,
                "marketplaceIds": [account.marketplace_id],
                "inputFeedDocumentId": created["feedDocumentId"],
            },
        )
        feed_id = _expect(response, 202, "createFeed", ("feedId",))["feedId"]
        self._jobs[feed_id] = len(changes)
        return Reply(outcomes=[], budget=response.budget, job=feed_id)

    async def poll(self, http: aiohttp.ClientSession, job: str) -> Reply | None:
        """None while the feed is queued or processing, or while getFeed is throttled or
        unreachable; every item retried when the feed ended FATAL or CANCELLED, or when
        Amazon no longer knows it."""
        count = self._jobs[job]
        account = self._account
        try:
            response = await account.call(http, "GET", az.FEED_PATH.format(feed_id=job))
            if response.status == 404:
                feed: Mapping[str, Any] = {"processingStatus": "unknown to Amazon"}
            else:
                feed = _expect(response, 200, "getFeed", ("processingStatus",))
            status = feed["processingStatus"]
            if status in az.FEED_PENDING:
                return None
            result_id = feed.get("resultFeedDocumentId")
            if status != az.FEED_DONE or not isinstance(result_id, str):
                reason = f"amazon feed {job} ended {status}; its items are sent again"
                outcomes = [Outcome(applied=False, retry=True, reason=reason)] * count
            else:
                outcomes = await self._report_outcomes(http, result_id, count)
        except (Throttled, TransientError):
            return None
        del self._jobs[job]
        return Reply(outcomes=outcomes, budget=response.budget)

    async def _report_outcomes(
        self, http: aiohttp.ClientSession, document_id: str, count: int
    ) -> list[Outcome]:
        located = _expect(
            await self._account.call(
                http, "GET", az.FEED_DOCUMENT_PATH.format(document_id=document_id)
            ),
            200,
            "getFeedDocument",
            ("url",),
        )
        content = await _transfer(http, "GET", located["url"])
        try:
            if located.get("compressionAlgorithm") == az.GZIP and content.startswith(az.GZIP_MAGIC):
                content = gzip.decompress(content)
            report = json.loads(content)
        except (ValueError, EOFError, OSError):
            raise TransientError("amazon processing report is not (gzipped) JSON") from None
        issues = report.get("issues") if isinstance(report, Mapping) else None
        by_message: dict[int, list[Any]] = {}
        for issue in issues if isinstance(issues, list) else []:
            if isinstance(issue, Mapping) and isinstance(issue.get("messageId"), int):
                by_message.setdefault(issue["messageId"], []).append(issue)
        outcomes = []
        for number in range(1, count + 1):
            reasons = az.issue_reasons(by_message.get(number, []))
            outcomes.append(
                Outcome(applied=False, reason="; ".join(reasons)) if reasons else Outcome(True)
            )
        return outcomes


async def _transfer(
    http: aiohttp.ClientSession, method: str, url: str, data: bytes | None = None
) -> bytes:
    """Upload to or download from a presigned document URL: it carries its own
    signature, so no access token goes there."""
    headers = {"Content-Type": az.FEED_CONTENT_TYPE} if data is not None else {}
    try:
        async with http.request(
            method, url, data=data, headers=headers, timeout=calls.TIMEOUT
        ) as resp:
            if resp.status != 200:
                raise TransientError(f"amazon feed document {method}: HTTP {resp.status}")
            return await resp.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise calls.unreachable(f"amazon feed document {method}", exc) from None


class AmazonProfile:
    """The Amazon profile: lanes "patch" (first, per item) and "feed" (backlogs)."""

    platform = "amazon"
    id_fields: tuple[str, ...] = ("seller_sku",)
    daily_revisions: int | None = None

    def __init__(self, settings: ProfileSettings) -> None:
        channel.refuse_daily_revisions(settings, "amazon")
        self.currency = channel.currency(settings, az.CURRENCY)
        channel.require_single_item_batch(settings, "patchListingsItem")
        account = _Account(settings)
        processing_s = channel.seconds_option(settings, "feed_processing_s", az.FEED_PROCESSING_S)
        patch_limits = channel.overridden_limits(settings, az.PATCH_RATE, az.PATCH_BURST, 1)
        feed_limits = LaneLimits(
            rate=az.FEED_RATE,
            burst=az.FEED_BURST,
            batch=az.FEED_MAX_MESSAGES,
            processing_s=processing_s,
        )
        self.lanes: Sequence[Lane] = (
            PatchLane(account, patch_limits),
            FeedLane(account, feed_limits),
        )

    def listing_key(self, listing: Listing) -> str:
        return listing.ids["seller_sku"]


PROFILE: ProfileFactory = AmazonProfile
