"""An emulated Walmart seller account served on a free loopback port, for the tests of the
sandbox emulation and of the gateway profile that talks to it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from invsync.gateway.platforms.base import ProfileSettings
from invsync.gateway.secrets import Secret
from invsync.sandbox.market import Market, SandboxListing
from invsync.sandbox.platforms.base import SandboxSettings
from invsync.sandbox.platforms.walmart import WalmartSandbox
from tests import marketplace
from tests.marketplace import ManualClock, served_alone

# Values a test greps for in every message it sees.
SECRET_VALUES = {"client_id": "wm-client-id-5d1e", "client_secret": "wm-client-secret-83aa"}
SOURCES = {"client_id": "$WM_CLIENT_ID", "client_secret": "$WM_CLIENT_SECRET"}
CREDENTIALS = {name: Secret(SOURCES[name], value) for name, value in SECRET_VALUES.items()}
SKUS = ("WM-MUG-1", "WM-LAMP/2")
SHIP_NODE = "721407"


def walmart_market() -> Market:
    listings = {
        sku: SandboxListing(key=sku, sku=f"stock-{n}", condition="new", ids={"walmart_sku": sku})
        for n, sku in enumerate(SKUS)
    }
    return Market("walmart", "walmart", listings=listings, options={"ship_node": SHIP_NODE})


def profile_settings(
    base_url: str | None,
    credentials: Mapping[str, Secret] = CREDENTIALS,
    **options: str,
) -> ProfileSettings:
    return ProfileSettings(
        channel="walmart",
        base_url=base_url,
        credentials=credentials,
        options={"ship_node": SHIP_NODE, **options},
        overrides={},
    )


Served = marketplace.Served[WalmartSandbox]


@asynccontextmanager
async def served_walmart(
    settings: SandboxSettings | None = None,
    clock: ManualClock | None = None,
    port: int = 0,
) -> AsyncIterator[Served]:
    """The emulated account alone on an application of its own."""
    sandbox = WalmartSandbox(
        walmart_market(), CREDENTIALS, settings or SandboxSettings(), clock or time.monotonic
    )
    async with served_alone(sandbox, port) as served:
        yield served
