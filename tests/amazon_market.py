"""An emulated Amazon selling account served on a free loopback port, for the tests of the
sandbox emulation and of the gateway profile that talks to it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from invsync.gateway.secrets import Secret
from invsync.sandbox.market import Market, SandboxListing
from invsync.sandbox.platforms.amazon import AmazonSandbox
from invsync.sandbox.platforms.base import SandboxSettings

SELLER_ID = "A2SELLER0TEST"
MARKETPLACE_ID = "ATVPDKIKX0DER"
# Values a test greps for in every message it sees.
SECRET_VALUES = {
    "refresh_token": "Atzr|refresh-value-4f1c",
    "client_id": "amzn1.application-oa2-client.id-77",
    "client_secret": "client-secret-value-9b2e",
}
SOURCES = {"refresh_token": "$AMZ_REFRESH", "client_id": "$AMZ_ID", "client_secret": "$AMZ_SECRET"}
CREDENTIALS = {name: Secret(SOURCES[name], value) for name, value in SECRET_VALUES.items()}
SKUS = ("AMZ-RED-1", "AMZ-BLUE/2")


class ManualClock:
    """A monotonic clock the test moves: the sandbox's token lifetimes and buckets."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def amazon_market() -> Market:
    listings = {
        sku: SandboxListing(key=sku, sku=f"stock-{n}", condition="new", ids={"seller_sku": sku})
        for n, sku in enumerate(SKUS)
    }
    options = {"seller_id": SELLER_ID, "marketplace_id": MARKETPLACE_ID}
    return Market(platform="amazon", channel="amazon", listings=listings, options=options)


@dataclass
class Served:
    sandbox: AmazonSandbox
    url: str


@asynccontextmanager
async def served_app(app: web.Application, port: int = 0) -> AsyncIterator[str]:
    """`app` on 127.0.0.1 at `port` (0: one the system chooses); yields its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def emulated_amazon(
    settings: SandboxSettings | None = None, clock: ManualClock | None = None
) -> AmazonSandbox:
    return AmazonSandbox(
        amazon_market(), CREDENTIALS, settings or SandboxSettings(), clock or time.monotonic
    )


@asynccontextmanager
async def served_amazon(
    settings: SandboxSettings | None = None,
    clock: ManualClock | None = None,
    port: int = 0,
) -> AsyncIterator[Served]:
    """The emulated account alone on an application of its own."""
    sandbox = emulated_amazon(settings, clock)
    app = web.Application()
    app.add_routes(sandbox.routes())
    async with served_app(app, port) as url:
        yield Served(sandbox, url)
