"""Amazon on loopback: the LWA token endpoint, patchListingsItem and the Feeds API with a
JSON_LISTINGS_FEED processed after a delay, each as strict as Amazon documents it.

What it refuses, and how (facts and sources in `invsync.marketplaces.amazon`):
- a missing, unknown or expired `x-amz-access-token`: 403 `Unauthorized`;
- more than an operation's usage plan (patch 5/s burst 5, each Feeds API call's own)
  or than 5 JSON_LISTINGS_FEED per 5 minutes: 429 `QuotaExceeded` with
  `x-amzn-RateLimit-Limit`;
- a body that cannot be parsed (no `productType`, no `patches`, an unknown op):
  400 `InvalidInput`;
- an attribute Amazon would not accept (a `fulfillment_availability` entry without
  `fulfillment_channel_code`, a quantity below 0 or not a whole number, a nested
  path; a `purchasable_offer` entry without `our_price`, for another marketplace, in
  another currency than the channel's, or with a price that is not positive or has
  more decimals than its currency): HTTP 200 with `status: INVALID` and the issues, as
  Amazon answers; a PATCH applies whole or not at all;
- another seller's id in the path (403) or a request without the channel's
  `marketplace_id` (400), when the channels file names them;
- a seller SKU the market does not hold: 404 `NOT_FOUND` (the sandbox's choice: the
  published model lists no 404 for patchListingsItem, and the real feed may accept an
  unknown SKU silently, issue 4402; here both name it, in the reply or the report).

Feeds are processed one after another, each taking `job_delay_s`; a feed still
IN_QUEUE can be cancelled; processing reports are served gzipped. The presigned upload and download URLs are served at
`/amazon-documents/<id>` on the same port.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import web

from invsync.gateway.secrets import Secret
from invsync.marketplaces import amazon as az
from invsync.marketplaces.money import decimals, price_problem
from invsync.sandbox.market import Bucket, Market, SandboxListing
from invsync.sandbox.platforms.access import IssuedTokens, require_credentials
from invsync.sandbox.platforms.base import SandboxFactory, SandboxSettings

DOCUMENT_URL_PATH = "/amazon-documents/{document_id}"
_TOP_LEVEL_ATTRIBUTE = re.compile(r"/attributes/[A-Za-z0-9_]+")
_UNPARSABLE = "Request has missing or invalid parameters and cannot be parsed."


class _Unparsable(Exception):
    """The request body is not a patch request: Amazon's 400 InvalidInput."""


@dataclass
class _Document:
    content_type: str
    signature: str
    content: bytes | None = None
    gzipped: bool = False


@dataclass
class _Feed:
    feed_id: str
    document_id: str
    created: str
    start_at: float
    done_at: float
    status: str = "IN_QUEUE"
    result_document_id: str | None = None
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)


def _issue(code: str, message: str, attribute: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "severity": az.SEVERITY_ERROR,
        "attributeNames": [attribute],
    }


def read_patches(body: object) -> list[Mapping[str, Any]]:
    """The patch operations of a patch request or feed message, or `_Unparsable` when
    the shape is not one ([LI] ListingsItemPatchRequest, PatchOperation)."""
    if not isinstance(body, Mapping):
        raise _Unparsable("the body is not a JSON object")
    product_type = body.get("productType")
    patches = body.get("patches")
    if not isinstance(product_type, str) or not product_type:
        raise _Unparsable("productType is required")
    if not isinstance(patches, list) or not patches:
        raise _Unparsable("patches must hold at least one operation")
    for patch in patches:
        if not isinstance(patch, Mapping) or not isinstance(patch.get("path"), str):
            raise _Unparsable("every patch needs op and path")
        if patch.get("op") not in az.PATCH_OPS:
            raise _Unparsable(f"op must be one of {', '.join(az.PATCH_OPS)}")
        if "value" in patch and not isinstance(patch["value"], list):
            raise _Unparsable("a patch value must be an array")
    return patches


def quantity_of(patches: list[Mapping[str, Any]]) -> tuple[int | None, list[dict[str, Any]]]:
    """The merchant-fulfilled quantity the patches set (None: they set none) and the
    issues Amazon would return for them."""
    qty: int | None = None
    issues: list[dict[str, Any]] = []
    attribute = "fulfillment_availability"
    for patch in patches:
        path = patch["path"]
        if not _TOP_LEVEL_ATTRIBUTE.fullmatch(path):
            issues.append(
                _issue(
                    az.ISSUE_INVALID_ATTRIBUTE,
                    f"Only top-level attributes can be patched, not '{path}'.",
                    path,
                )
            )
            continue
        if path != az.FULFILLMENT_PATH:
            continue  # other attributes are accepted; the sandbox tracks only quantity
        if patch["op"] == "delete":
            qty = 0
            continue
        entries = patch.get("value") or []
        if not entries:
            issues.append(
                _issue(
                    az.ISSUE_NOT_ENOUGH_VALUES,
                    f"The attribute '{attribute}' does not have enough values. "
                    "The required minimum is '1' value(s).",
                    attribute,
                )
            )
        for entry in entries:
            code = entry.get("fulfillment_channel_code") if isinstance(entry, Mapping) else None
            if not isinstance(code, str) or not code:
                issues.append(
                    _issue(
                        az.ISSUE_NOT_ENOUGH_VALUES,
                        f"The field 'fulfillment_channel_code' for the attribute '{attribute}' "
                        "does not have enough values. The required minimum is '1' value(s).",
                        attribute,
                    )
                )
                continue
            assert isinstance(entry, Mapping)
            if "quantity" not in entry:
                continue
            value = entry["quantity"]
            if not isinstance(value, int) or isinstance(value, bool):
                issues.append(
                    _issue(
                        az.ISSUE_INVALID_ATTRIBUTE,
                        f"Value for '{attribute}' must be a whole number.",
                        attribute,
                    )
                )
            elif value < 0:
                issues.append(
                    _issue(
                        az.ISSUE_INVALID_ATTRIBUTE,
                        f"Value for '{attribute}' is less than the allowed minimum '0'.",
                        attribute,
                    )
                )
            elif code == az.MERCHANT_CHANNEL:
                qty = value
    return qty, issues


def price_of(
    patches: list[Mapping[str, Any]], marketplace_id: str | None, currency: str
) -> tuple[str | None, list[dict[str, Any]]]:
    """The price the patches set for the channel's marketplace (None: they set none), as
    a decimal string, and the issues Amazon would return for them (facts: `invsync.marketplaces.amazon` [PO])."""
    attribute = "purchasable_offer"
    price: str | None = None
    issues: list[dict[str, Any]] = []
    for patch in patches:
        if patch["path"] != az.PRICE_PATH or patch["op"] == "delete":
            continue
        for entry in patch.get("value") or []:
            problem, amount = _offer_problem(entry, marketplace_id, currency)
            if problem is not None:
                issues.append(_issue(az.ISSUE_INVALID_ATTRIBUTE, problem, attribute))
            else:
                price = amount
    return price, issues


def _offer_problem(
    entry: object, marketplace_id: str | None, currency: str
) -> tuple[str | None, str | None]:
    """Why one `purchasable_offer` entry is refused, else its price as a decimal string."""
    if not isinstance(entry, Mapping):
        return "Each 'purchasable_offer' value must be an object.", None
    if marketplace_id is not None and entry.get("marketplace_id") != marketplace_id:
        return f"'purchasable_offer' must name marketplace_id '{marketplace_id}'.", None
    if entry.get("currency") != currency:
        return f"'purchasable_offer' currency must be '{currency}'.", None
    try:
        value = entry["our_price"][0]["schedule"][0]["value_with_tax"]
    except (KeyError, IndexError, TypeError):
        return "'purchasable_offer' needs our_price[].schedule[].value_with_tax.", None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "Value for 'our_price' must be a number.", None
    amount = str(Decimal(str(value)))
    problem = price_problem(amount, currency)
    if problem is not None:
        return f"Value for 'our_price' is invalid: {problem}.", None
    return None, str(Decimal(amount).quantize(Decimal(10) ** -decimals(currency)))


def _error(status: int, code: str, message: str, details: str = "", **headers: str) -> web.Response:
    return web.json_response(az.error_list(code, message, details), status=status, headers=headers)


class AmazonSandbox:
    """One selling account's Amazon marketplace on the sandbox."""

    platform = "amazon"

    def __init__(
        self,
        market: Market,
        credentials: Mapping[str, Secret],
        settings: SandboxSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        require_credentials("amazon", market, credentials, az.CREDENTIALS)
        self.market = market
        self.order_delay_s = settings.order_delay(az.ORDER_DELAY_S)
        self._credentials = {name: credentials[name] for name in az.CREDENTIALS}
        self._feed_delay_s = (
            az.FEED_PROCESSING_S if settings.job_delay_s is None else settings.job_delay_s
        )
        self._clock = clock
        self.tokens = IssuedTokens(settings.token_ttl_s, clock)
        self._plans = {
            operation: Bucket(rate, burst, clock)
            for operation, (rate, burst) in az.USAGE_PLANS.items()
        }
        # Beside createFeed's own plan: 5 JSON_LISTINGS_FEED per 5 minutes.
        self._listings_feeds = Bucket(
            az.FEED_SUBMISSIONS / az.FEED_WINDOW_S, az.FEED_SUBMISSIONS, clock
        )
        self._documents: dict[str, _Document] = {}
        self._feeds: dict[str, _Feed] = {}

    def routes(self) -> Iterable[web.RouteDef]:
        return [
            web.post(az.TOKEN_PATH, self._token),
            web.patch(az.LISTINGS_ITEM_PATH, self._patch_listings_item),
            web.post(az.FEED_DOCUMENTS_PATH, self._create_feed_document),
            web.get(az.FEED_DOCUMENT_PATH, self._get_feed_document),
            web.post(az.FEEDS_PATH, self._create_feed),
            web.get(az.FEED_PATH, self._get_feed),
            web.delete(az.FEED_PATH, self._cancel_feed),
            web.put(DOCUMENT_URL_PATH, self._upload),
            web.get(DOCUMENT_URL_PATH, self._download),
        ]

    def state(self) -> Mapping[str, Any]:
        return {"feeds": {feed.feed_id: feed.status for feed in self._feeds.values()}}

    # Login with Amazon

    async def _token(self, request: web.Request) -> web.Response:
        self.market.counters.requests += 1
        form = await request.post()
        if form.get("grant_type") != "refresh_token":
            return self._oauth_refusal(
                400, "unsupported_grant_type", "The grant type is not supported."
            )
        if not (self._matches(form, "client_id") and self._matches(form, "client_secret")):
            return self._oauth_refusal(401, "invalid_client", "Client authentication failed.")
        if not self._matches(form, "refresh_token"):
            return self._oauth_refusal(
                400, "invalid_grant", "The request has an invalid grant parameter : refresh_token"
            )
        token = "Atza|" + secrets.token_urlsafe(24)
        self.tokens.issue(token)
        lifetime = self.tokens.expires_in  # LWA sends whole seconds
        return web.json_response(
            {"access_token": token, "token_type": "bearer", "expires_in": lifetime}
        )

    def _matches(self, form: Mapping[str, object], name: str) -> bool:
        return form.get(name) == self._credentials[name].reveal()

    def _oauth_refusal(self, status: int, error: str, description: str) -> web.Response:
        self.market.counters.rejected += 1
        body = {"error": error, "error_description": description}
        return web.json_response(body, status=status)

    # The selling partner API's gate: token, then usage plan

    def _gate(self, request: web.Request, operation: str) -> web.Response | None:
        """The refusal for this request's token or usage plan, or None to serve it."""
        self.market.counters.requests += 1
        token = request.headers.get(az.ACCESS_TOKEN_HEADER, "")
        if not self.tokens.valid(token):
            self.market.counters.rejected += 1
            details = (
                "The access token you provided is revoked, malformed or invalid."
                if not self.tokens.known(token)
                else "The access token you provided has expired."
            )
            return _error(403, az.UNAUTHORIZED, "Access to requested resource is denied.", details)
        budgets = [self._plans[operation]]
        if operation == "createFeed":
            budgets.append(self._listings_feeds)
        if any(budget.available() < 1.0 for budget in budgets):
            self.market.counters.throttled += 1
            return _error(
                429,
                az.QUOTA_EXCEEDED,
                "You exceeded your quota for the requested resource.",
                **self._plan_header(operation),
            )
        for budget in budgets:
            budget.take(1.0)
        return None

    def _plan_header(self, operation: str) -> dict[str, str]:
        return {az.RATE_LIMIT_HEADER: f"{self._plans[operation].rate:g}"}

    def _reply(self, body: Mapping[str, Any], operation: str, status: int = 200) -> web.Response:
        return web.json_response(dict(body), status=status, headers=self._plan_header(operation))

    def _invalid_input(self, details: str) -> web.Response:
        self.market.counters.rejected += 1
        return _error(400, az.INVALID_INPUT, _UNPARSABLE, details)

    def _foreign(self, seller_id: str | None, marketplaces: list[Any]) -> web.Response | None:
        """The refusal of a request for another seller (403, as for an app the seller did
        not authorise) or without this account's marketplace (400), if the channels file
        names them; None to serve it."""
        own_seller = self.market.options.get("seller_id")
        own_marketplace = self.market.options.get("marketplace_id")
        if seller_id is not None and own_seller and seller_id != own_seller:
            self.market.counters.rejected += 1
            return _error(403, az.UNAUTHORIZED, "Access to requested resource is denied.")
        if not any(marketplaces) or (own_marketplace and own_marketplace not in marketplaces):
            return self._invalid_input(f"marketplaceIds must include {own_marketplace or 'one'}")
        return None

    # patchListingsItem

    async def _patch_listings_item(self, request: web.Request) -> web.Response:
        refusal = self._gate(request, "patchListingsItem")
        if refusal is not None:
            return refusal
        marketplaces = request.query.get("marketplaceIds", "")
        refusal = self._foreign(request.match_info["seller_id"], marketplaces.split(","))
        if refusal is not None:
            return refusal
        try:
            patches = read_patches(await request.json())
        except ValueError:
            return self._invalid_input("the body is not JSON")
        except _Unparsable as exc:
            return self._invalid_input(str(exc))
        sku = request.match_info["sku"]
        listing = self.market.listings.get(sku)
        if listing is None:
            self.market.counters.rejected += 1
            return _error(404, az.NOT_FOUND, f"SKU '{sku}' not found for this seller.")
        issues = self._apply(listing, patches)
        if issues:
            self.market.counters.rejected += 1
        body = {
            "sku": sku,
            "status": az.STATUS_INVALID if issues else az.STATUS_ACCEPTED,
            "submissionId": uuid.uuid4().hex,
            "issues": issues,
        }
        return self._reply(body, "patchListingsItem")

    # Feeds API

    async def _create_feed_document(self, request: web.Request) -> web.Response:
        refusal = self._gate(request, "createFeedDocument")
        if refusal is not None:
            return refusal
        try:
            body = await request.json()
        except ValueError:
            return self._invalid_input("the body is not JSON")
        content_type = body.get("contentType") if isinstance(body, Mapping) else None
        if not isinstance(content_type, str) or not content_type:
            return self._invalid_input("contentType is required")
        document_id = str(uuid.uuid4())
        document = _Document(content_type, secrets.token_hex(16))
        self._documents[document_id] = document
        reply = {"feedDocumentId": document_id, "url": self._document_url(request, document_id)}
        return self._reply(reply, "createFeedDocument", status=201)

    def _document_url(self, request: web.Request, document_id: str) -> str:
        signature = self._documents[document_id].signature
        path = DOCUMENT_URL_PATH.format(document_id=document_id)
        return f"{request.url.origin()}{path}?X-Amz-Signature={signature}"

    async def _upload(self, request: web.Request) -> web.Response:
        document = self._signed_document(request)
        if document is None:
            return web.Response(status=403, text="AccessDenied")
        if request.content_type != document.content_type.split(";")[0].strip():
            return web.Response(status=403, text="SignatureDoesNotMatch: Content-Type")
        document.content = await request.read()
        return web.Response(status=200)

    async def _download(self, request: web.Request) -> web.Response:
        document = self._signed_document(request)
        if document is None or document.content is None:
            return web.Response(status=403, text="AccessDenied")
        return web.Response(body=document.content, content_type="application/json")

    def _signed_document(self, request: web.Request) -> _Document | None:
        document = self._documents.get(request.match_info["document_id"])
        if document is None or request.query.get("X-Amz-Signature") != document.signature:
            return None
        return document

    async def _get_feed_document(self, request: web.Request) -> web.Response:
        refusal = self._gate(request, "getFeedDocument")
        if refusal is not None:
            return refusal
        document_id = request.match_info["document_id"]
        if document_id not in self._documents:
            self.market.counters.rejected += 1
            return _error(404, az.NOT_FOUND, f"Feed document {document_id} not found.")
        reply = {"feedDocumentId": document_id, "url": self._document_url(request, document_id)}
        if self._documents[document_id].gzipped:
            reply["compressionAlgorithm"] = az.GZIP
        return self._reply(reply, "getFeedDocument")

    async def _create_feed(self, request: web.Request) -> web.Response:
        refusal = self._gate(request, "createFeed")
        if refusal is not None:
            return refusal
        try:
            body = await request.json()
        except ValueError:
            return self._invalid_input("the body is not JSON")
        if not isinstance(body, Mapping):
            return self._invalid_input("the body is not a JSON object")
        marketplaces = body.get("marketplaceIds")
        document = self._documents.get(str(body.get("inputFeedDocumentId")))
        if body.get("feedType") != az.FEED_TYPE:
            return self._invalid_input(f"this sandbox takes feedType {az.FEED_TYPE}")
        if not isinstance(marketplaces, list) or not 1 <= len(marketplaces) <= 25:
            return self._invalid_input("marketplaceIds must list 1 to 25 marketplaces")
        refusal = self._foreign(None, marketplaces)
        if refusal is not None:
            return refusal
        if document is None or document.content is None:
            return self._invalid_input("inputFeedDocumentId names no uploaded document")
        feed = self._queue_feed(str(body["inputFeedDocumentId"]))
        return self._reply({"feedId": feed.feed_id}, "createFeed", status=202)

    def _queue_feed(self, document_id: str) -> _Feed:
        """Feeds are processed in turn: this one starts when the one before it ends."""
        now = self._clock()
        start_at = max(
            [now, *(f.done_at for f in self._feeds.values() if f.status in az.FEED_PENDING)]
        )
        feed = _Feed(
            feed_id=str(50_000_000 + len(self._feeds)),
            document_id=document_id,
            created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            start_at=start_at,
            done_at=start_at + self._feed_delay_s,
        )
        self._feeds[feed.feed_id] = feed
        feed.timer = asyncio.get_running_loop().call_later(feed.done_at - now, self._process, feed)
        return feed

    async def _get_feed(self, request: web.Request) -> web.Response:
        refusal = self._gate(request, "getFeed")
        if refusal is not None:
            return refusal
        feed = self._feeds.get(request.match_info["feed_id"])
        if feed is None:
            self.market.counters.rejected += 1
            return _error(404, az.NOT_FOUND, f"Feed {request.match_info['feed_id']} not found.")
        if feed.status == "IN_QUEUE" and self._clock() >= feed.start_at:
            feed.status = "IN_PROGRESS"
        reply: dict[str, Any] = {
            "feedId": feed.feed_id,
            "feedType": az.FEED_TYPE,
            "createdTime": feed.created,
            "processingStatus": feed.status,
        }
        if feed.result_document_id is not None:
            reply["resultFeedDocumentId"] = feed.result_document_id
        return self._reply(reply, "getFeed")

    async def _cancel_feed(self, request: web.Request) -> web.Response:
        refusal = self._gate(request, "cancelFeed")
        if refusal is not None:
            return refusal
        feed = self._feeds.get(request.match_info["feed_id"])
        if feed is None or feed.status != "IN_QUEUE" or self._clock() >= feed.start_at:
            return self._invalid_input("only a feed that is IN_QUEUE can be cancelled")
        feed.status = "CANCELLED"
        if feed.timer is not None:
            feed.timer.cancel()
        return self._reply({}, "cancelFeed")

    def _process(self, feed: _Feed) -> None:
        """Apply a feed's messages and write its processing report ([LF] report v2)."""
        content = self._documents[feed.document_id].content or b""
        seller_id = ""
        try:
            document = json.loads(content)
            issues, accepted, processed = self._apply_feed(document)
            seller_id = str(document["header"].get("sellerId", ""))
            feed.status = az.FEED_DONE
        except (ValueError, _Unparsable) as exc:
            issues = [{"severity": az.SEVERITY_ERROR, "code": "FATAL", "message": str(exc)}]
            accepted = processed = 0
            feed.status = "FATAL"
        report = {
            "header": {"sellerId": seller_id, "version": az.FEED_VERSION, "feedId": feed.feed_id},
            "issues": issues,
            "summary": {
                "errors": sum(1 for i in issues if i["severity"] == az.SEVERITY_ERROR),
                "warnings": 0,
                "messagesProcessed": processed,
                "messagesAccepted": accepted,
                "messagesInvalid": processed - accepted,
            },
        }
        result_id = str(uuid.uuid4())
        content = gzip.compress(json.dumps(report).encode())
        self._documents[result_id] = _Document(
            "application/json", secrets.token_hex(16), content, gzipped=True
        )
        feed.result_document_id = result_id

    def _apply_feed(self, document: object) -> tuple[list[dict[str, Any]], int, int]:
        """The report issues, messages accepted and messages processed of a feed document;
        `_Unparsable` when the document itself is not a listings feed (the feed is FATAL)."""
        if not isinstance(document, Mapping) or not isinstance(document.get("header"), Mapping):
            raise _Unparsable("the feed document has no header")
        header = document["header"]
        if header.get("version") != az.FEED_VERSION:
            raise _Unparsable(f"the feed header's version must be {az.FEED_VERSION}")
        own_seller = self.market.options.get("seller_id")
        if not header.get("sellerId") or (own_seller and header["sellerId"] != own_seller):
            raise _Unparsable("the feed header's sellerId is not this selling account's")
        messages = document.get("messages")
        if not isinstance(messages, list) or not 1 <= len(messages) <= az.FEED_MAX_MESSAGES:
            raise _Unparsable(f"a feed holds 1 to {az.FEED_MAX_MESSAGES} messages")
        issues: list[dict[str, Any]] = []
        accepted = 0
        for message in messages:
            message_issues = self._apply_message(message)
            if not message_issues:
                accepted += 1
            else:
                self.market.counters.rejected += 1
            ids = message if isinstance(message, Mapping) else {}
            issues.extend(
                {
                    "messageId": ids.get("messageId"),
                    "sku": ids.get("sku"),
                    "code": issue["code"],
                    "severity": issue["severity"],
                    "message": issue["message"],
                    "attributeName": issue["attributeNames"][0],
                }
                for issue in message_issues
            )
        return issues, accepted, len(messages)

    def _apply_message(self, message: object) -> list[dict[str, Any]]:
        if not isinstance(message, Mapping) or message.get("operationType") != az.FEED_OPERATION:
            return [_issue(az.INVALID_INPUT, "this sandbox takes PATCH messages", "operationType")]
        message_id = message.get("messageId")
        if not isinstance(message_id, int) or isinstance(message_id, bool) or message_id < 1:
            return [
                _issue(az.INVALID_INPUT, "messageId must be a whole number from 1", "messageId")
            ]
        try:
            patches = read_patches(message)
        except _Unparsable as exc:
            return [_issue(az.INVALID_INPUT, str(exc), "patches")]
        listing = self.market.listings.get(str(message.get("sku")))
        if listing is None:
            return [_issue(az.NOT_FOUND, f"SKU '{message.get('sku')}' not found.", "sku")]
        return self._apply(listing, patches)

    def _apply(
        self, listing: SandboxListing, patches: list[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """Apply one listing's patches whole, or none of them: the issues if refused."""
        qty, issues = quantity_of(patches)
        currency = self.market.currency(az.CURRENCY)
        price, price_issues = price_of(patches, self.market.options.get("marketplace_id"), currency)
        issues += price_issues
        if issues or (qty is None and price is None):
            return issues
        if qty is not None:
            listing.qty = qty
        if price is not None:
            listing.price = price
        listing.updates += 1
        return issues


SANDBOX: SandboxFactory = AmazonSandbox
