"""The sandbox's one aiohttp application: every platform's routes, plus the three of
its own that a rehearsal drives it with.

- `POST /sandbox/sale` `{"platform", "listing", "qty"}`: a buyer takes `qty` of what
  the listing shows (never more: a marketplace does not sell what it does not show, nor
  a listing a price rule took off sale), at its price;
  after the platform's order delay the OMS gets the `order.placed`.
- `GET /sandbox/state`: per platform and listing the quantity it now shows, its price,
  whether it is for sale (`status`, `status_reason`) and what it sold, plus the
  request counters (`requests`, `throttled`, `rejected`) and the platform's own state.
- `POST /sandbox/listings` `{"platform", "listings": [{"sku", "condition"?, "ids",
  "qty"?}]}`: listings a channel gains without a listing file (e.g. a `kv:` map).
- `POST /sandbox/faults` `{"platform", "count"?, "status"?, "delay_s"?}`: the platform's
  next `count` requests are held `delay_s` (a time-out, for a client that waits less)
  and/or answered `status` (429 with `Retry-After: 1`, or a 5xx), to rehearse an outage.

Platforms' paths do not collide (Shopify `/admin/api/...`, Amazon `/auth/o2/token`,
`/listings/...`, `/feeds/...`, eBay `/identity/...`, `/sell/...`), so one port serves
them all; for the same reason each platform may serve one channel.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, cast

import msgspec
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse
from msgspec import Meta

from invsync.gateway.platforms.base import Listing
from invsync.sandbox.market import LIVE, Market, SandboxListing
from invsync.sandbox.orders import OrderBook, new_order
from invsync.sandbox.platforms.base import SandboxFactory, SandboxPlatform
from invsync.sandbox.state import keep_saved, load, restore, save, snapshot

# Every platform the sandbox emulates, by the name the channels file gives it; each is
# the module invsync.sandbox.platforms.<name> exposing SANDBOX.
PLATFORMS = ("shopify", "amazon", "walmart", "ebay", "tiktok", "shopee", "lazada")

# The largest quantity a sale or a new listing may carry: beyond any real stock, and
# far inside every platform's integer range.
MAX_QTY = 1_000_000_000


def sandbox_factory(platform: str) -> SandboxFactory:
    """The emulation of `platform`, imported by name: a platform listed here whose
    module is missing fails loudly with the module's name."""
    if platform not in PLATFORMS:
        raise ValueError(f"no sandbox for platform {platform!r}; it has {', '.join(PLATFORMS)}")
    module = importlib.import_module(f"invsync.sandbox.platforms.{platform}")
    return cast(SandboxFactory, module.SANDBOX)


@dataclass(frozen=True)
class Storefront:
    """One channel on the sandbox: its emulated platform, and how the platform keys a
    listing from the seller's listing map (the gateway profile's `id_fields` and
    `listing_key`, so both sides agree on what `listing` names)."""

    emulation: SandboxPlatform
    id_fields: tuple[str, ...]
    listing_key: Callable[[Listing], str]

    def key_of(self, listing: Listing) -> str:
        """The platform's key for `listing`; ValueError when an id it needs is missing."""
        missing = [f for f in self.id_fields if not listing.ids.get(f)]
        if missing:
            raise ValueError(f"listing of sku {listing.sku!r} lacks {', '.join(missing)}")
        return self.listing_key(listing)

    def add(self, listing: Listing, qty: int = 0) -> SandboxListing:
        """Lists `listing` showing `qty`, replacing a listing with the same key."""
        key = self.key_of(listing)
        held = SandboxListing(key, listing.sku, listing.condition, dict(listing.ids), qty)
        self.emulation.market.listings[key] = held
        return held


class SaleRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    platform: str
    listing: str
    qty: Annotated[int, Meta(ge=1, le=MAX_QTY)]


class NewListing(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    sku: Annotated[str, Meta(min_length=1)]
    ids: dict[str, str]
    condition: Annotated[str, Meta(min_length=1)] = "new"
    qty: Annotated[int, Meta(ge=0, le=MAX_QTY)] = 0


class FaultRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    platform: str
    count: Annotated[int, Meta(ge=1, le=10_000)] = 1
    status: Annotated[int, Meta(ge=429, le=599)] | None = None
    delay_s: Annotated[float, Meta(ge=0, le=300)] = 0.0


class ListingsRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    platform: str
    listings: list[NewListing]


def _refuse(status: int, error: str) -> web.Response:
    return web.json_response({"error": error}, status=status)


def _no_platform(platform: str) -> web.Response:
    return _refuse(404, f"no marketplace for platform {platform!r} on this sandbox")


class Sandbox:
    """The marketplaces of one channels file, and the orders their sales owe the OMS."""

    def __init__(self, storefronts: Sequence[Storefront], orders: OrderBook) -> None:
        self.storefronts: dict[str, Storefront] = {}
        for front in storefronts:
            platform = front.emulation.platform
            if platform in self.storefronts:
                other = self.storefronts[platform].emulation.market.channel
                raise ValueError(
                    f"channels {other!r} and {front.emulation.market.channel!r} are both on "
                    f"{platform}: one sandbox serves one channel per platform (their paths "
                    "would collide); run a second sandbox on another port"
                )
            self.storefronts[platform] = front
        for market in self.markets:
            market.neighbours = [other for other in self.markets if other is not market]
        self.orders = orders
        # Faults still to inject, per platform, in order.
        self.faults: dict[str, list[FaultRequest]] = {}
        self._route_platform: dict[str, str] = {}

    @property
    def markets(self) -> list[Market]:
        return [f.emulation.market for f in self.storefronts.values()]

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self._inject_faults])
        for platform, front in self.storefronts.items():
            routes = list(front.emulation.routes())
            for route in routes:
                if isinstance(route, web.RouteDef):
                    self._route_platform[route.path] = platform
            app.add_routes(routes)
        app.add_routes(
            [
                web.post("/sandbox/sale", self._sale),
                web.get("/sandbox/state", self._state),
                web.post("/sandbox/listings", self._add_listings),
                web.post("/sandbox/faults", self._add_faults),
            ]
        )
        return app

    @web.middleware
    async def _inject_faults(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        resource = request.match_info.route.resource
        platform = self._route_platform.get(resource.canonical) if resource else None
        queue = self.faults.get(platform or "")
        if not queue:
            return await handler(request)
        fault = queue[0]
        if fault.count > 1:
            queue[0] = msgspec.structs.replace(fault, count=fault.count - 1)
        else:
            queue.pop(0)
        await asyncio.sleep(fault.delay_s)
        if fault.status is None:
            return await handler(request)
        counters = self.storefronts[str(platform)].emulation.market.counters
        counters.requests += 1
        headers = {}
        if fault.status == 429:
            counters.throttled += 1
            headers["Retry-After"] = "1"
        body = {"errors": [{"message": f"sandbox fault: answered {fault.status}"}]}
        return web.json_response(body, status=fault.status, headers=headers)

    async def _add_faults(self, request: web.Request) -> web.Response:
        try:
            fault = msgspec.json.decode(await request.read(), type=FaultRequest)
        except msgspec.DecodeError as exc:
            return _refuse(400, f"bad fault: {exc}")
        if fault.platform not in self.storefronts:
            return _refuse(404, f"no marketplace for platform {fault.platform!r} on this sandbox")
        self.faults.setdefault(fault.platform, []).append(fault)
        return web.json_response(
            {"platform": fault.platform, "queued": len(self.faults[fault.platform])}
        )

    async def _sale(self, request: web.Request) -> web.Response:
        try:
            sale = msgspec.json.decode(await request.read(), type=SaleRequest)
        except msgspec.DecodeError as exc:
            return _refuse(400, f"bad sale: {exc}")
        front = self.storefronts.get(sale.platform)
        if front is None:
            return _no_platform(sale.platform)
        market = front.emulation.market
        listing = market.listings.get(sale.listing)
        if listing is None:
            return _refuse(404, f"{sale.platform} has no listing {sale.listing!r}")
        if sale.qty > listing.qty:
            return _refuse(
                409,
                f"{sale.platform} shows {listing.qty} of {sale.listing!r}; cannot sell {sale.qty}",
            )
        status, reason = market.status(listing)
        if status != LIVE:
            return _refuse(409, f"{sale.platform} does not sell {sale.listing!r}: {reason}")
        listing.qty -= sale.qty
        listing.sold += sale.qty
        if listing.price is not None:
            listing.revenue += Decimal(listing.price) * sale.qty
        order = new_order(
            market.channel, listing.sku, listing.condition, sale.qty, datetime.now(UTC)
        )
        pending = self.orders.place(order, front.emulation.order_delay_s)
        return web.json_response(
            {
                "order_id": order.order_id,
                "channel": market.channel,
                "sku": listing.sku,
                "condition": listing.condition,
                "qty": sale.qty,
                "unit_price": listing.price,
                "shown": listing.qty,
                "order_due": datetime.fromtimestamp(pending.due, UTC).isoformat(),
            }
        )

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "platforms": {
                    platform: {
                        "channel": front.emulation.market.channel,
                        "listings": {
                            li.key: _listing_state(front.emulation.market, li)
                            for li in front.emulation.market.listings.values()
                        },
                        "counters": msgspec.to_builtins(front.emulation.market.counters),
                        "state": dict(front.emulation.state()),
                    }
                    for platform, front in self.storefronts.items()
                },
                "orders": {"pending": self.orders.waiting, "delivered": self.orders.delivered},
            }
        )

    async def _add_listings(self, request: web.Request) -> web.Response:
        try:
            body = msgspec.json.decode(await request.read(), type=ListingsRequest)
        except msgspec.DecodeError as exc:
            return _refuse(400, f"bad listings: {exc}")
        front = self.storefronts.get(body.platform)
        if front is None:
            return _no_platform(body.platform)
        listings = [(Listing(new.sku, new.condition, new.ids), new.qty) for new in body.listings]
        try:  # all or none: every listing is checked before any is added
            for listing, _ in listings:
                front.key_of(listing)
        except ValueError as exc:
            return _refuse(400, str(exc))
        keys = [front.add(listing, qty).key for listing, qty in listings]
        return web.json_response(
            {"platform": body.platform, "channel": front.emulation.market.channel, "listings": keys}
        )


def _listing_state(market: Market, listing: SandboxListing) -> dict[str, object]:
    """One listing in `GET /sandbox/state`: what it shows, at what price, whether it is
    for sale (and if not, which rule keeps it off), and what it sold."""
    status, reason = market.status(listing)
    return {
        "sku": listing.sku,
        "condition": listing.condition,
        "qty": listing.qty,
        "price": listing.price,
        "status": status,
        "status_reason": reason,
        "sold": listing.sold,
        "revenue": str(listing.revenue),
        "updates": listing.updates,
    }


class PathOnlyAccessLogger(AbstractAccessLogger):
    """Logs each request without its query string: Shopee and Lazada carry the access
    token and the signature there, as their APIs require, and no credential may reach
    a log line."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %d %.3fs", request.remote, request.method, request.path, response.status, time
        )


@asynccontextmanager
async def serving(
    sandbox: Sandbox, host: str = "127.0.0.1", port: int = 8790, state_file: Path | None = None
) -> AsyncIterator[int]:
    """Serve the sandbox on host:port (0: a free port) and yield the port; deliver
    orders as they fall due and keep `state_file` current. On exit the listener closes
    first, then the state is saved a last time, so no accepted change is lost."""
    if state_file is not None:
        saved = load(state_file)
        if saved is not None:
            restore(saved, {m.channel: m for m in sandbox.markets}, sandbox.orders)
        # Written once before serving, so a state file that cannot be written stops
        # the start instead of failing quietly later.
        save(state_file, snapshot(sandbox.markets, sandbox.orders))
    # One line per request would cost a rehearsal more than the request itself: the
    # access log is kept for --log-level DEBUG.
    access = logging.getLogger("aiohttp.access")
    runner = web.AppRunner(
        sandbox.application(),
        handle_signals=False,
        access_log=access if access.isEnabledFor(logging.DEBUG) else None,
        access_log_class=PathOnlyAccessLogger,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = int(runner.addresses[0][1])
        # Plain asyncio tasks (aiohttp runs on asyncio anyway), so an exception from
        # the caller's block comes out as itself, not inside a task group's.
        background = [asyncio.create_task(sandbox.orders.run())]
        if state_file is not None:
            background.append(
                asyncio.create_task(keep_saved(state_file, sandbox.markets, sandbox.orders))
            )
        try:
            yield bound
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
    finally:
        await runner.cleanup()
        if state_file is not None:
            save(state_file, snapshot(sandbox.markets, sandbox.orders))
