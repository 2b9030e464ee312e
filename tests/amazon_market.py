"""An emulated Amazon selling account served on a free loopback port, for the tests of the
sandbox emulation and of the gateway profile that talks to it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from invsync.gateway.platforms.base import ProfileSettings
from invsync.gateway.secrets import Secret
from invsync.sandbox.market import Market, SandboxListing
from invsync.sandbox.platforms.amazon import AmazonSandbox
from invsync.sandbox.platforms.base import SandboxSettings
from tests import marketplace
from tests.marketplace import ManualClock, served_alone

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


def amazon_market() -> Market:
    listings = {
        sku: SandboxListing(key=sku, sku=f"stock-{n}", condition="new", ids={"seller_sku": sku})
        for n, sku in enumerate(SKUS)
    }
    options = {"seller_id": SELLER_ID, "marketplace_id": MARKETPLACE_ID}
    return Market(platform="amazon", channel="amazon", listings=listings, options=options)


def profile_settings(
    base_url: str | None,
    credentials: Mapping[str, Secret] = CREDENTIALS,
    **options: str,
) -> ProfileSettings:
    return ProfileSettings(
        channel="amazon",
        base_url=base_url,
        credentials=credentials,
        options={"seller_id": SELLER_ID, "marketplace_id": MARKETPLACE_ID, **options},
        overrides={},
    )


Served = marketplace.Served[AmazonSandbox]


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
    async with served_alone(emulated_amazon(settings, clock), port) as served:
        yield served
