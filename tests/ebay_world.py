"""One eBay seller for the eBay tests: credentials, a market of listings, and the
sandbox's eBay routes served on a loopback port."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager

from aiohttp import web

from invsync.gateway.platforms.base import ProfileSettings
from invsync.gateway.secrets import Secret
from invsync.sandbox.market import Market, SandboxListing

REFRESH_TOKEN = "rt-8f3a-do-not-print"
CLIENT_ID = "invsync-test-PRD-1234"
CLIENT_SECRET = "PRD-cs-77e1-do-not-print"
CREDENTIALS = {
    "refresh_token": Secret("$EBAY_REFRESH_TOKEN", REFRESH_TOKEN),
    "client_id": Secret("$EBAY_CLIENT_ID", CLIENT_ID),
    "client_secret": Secret("$EBAY_CLIENT_SECRET", CLIENT_SECRET),
}


def basic(login: str, password: str) -> dict[str, str]:
    """HTTP Basic auth headers, as eBay's token endpoint wants the client id and secret."""
    encoded = base64.b64encode(f"{login}:{password}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


def settings(
    base_url: str | None,
    credentials: Mapping[str, Secret] = CREDENTIALS,
    overrides: Mapping[str, float] | None = None,
) -> ProfileSettings:
    return ProfileSettings(
        channel="ebay",
        base_url=base_url,
        credentials=credentials,
        options={},
        overrides=overrides or {},
    )


def market(listings: int = 3) -> Market:
    """Listings SKU-0.. with offers OFF-0.., each showing 0."""
    market = Market(platform="ebay", channel="ebay")
    for i in range(listings):
        key = f"SKU-{i}"
        market.listings[key] = SandboxListing(
            key=key, sku=f"A{i}", condition="new", ids={"ebay_sku": key, "offer_id": f"OFF-{i}"}
        )
    return market


class FakeClock:
    """A monotonic clock a test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def serving(routes: Iterable[web.RouteDef]) -> AsyncIterator[str]:
    """`routes` (an emulated platform's, or a test's own) on 127.0.0.1, port 0; yields
    the base URL."""
    app = web.Application()
    app.add_routes(routes)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()
