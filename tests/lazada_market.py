"""An emulated Lazada seller served on a free loopback port, for the tests of the sandbox
emulation and of the gateway profile that talks to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from invsync.gateway.platforms.base import ProfileSettings
from invsync.gateway.secrets import Secret
from invsync.sandbox.market import Market, SandboxListing
from invsync.sandbox.platforms.base import SandboxSettings
from invsync.sandbox.platforms.lazada import LazadaSandbox
from tests import marketplace
from tests.marketplace import ManualClock, frozen_wall, served_alone

APP_KEY = "123456"
SECRET_VALUES = {"app_secret": "app-secret-value-31f0", "refresh_token": "lazada-refresh-9a4e"}
SOURCES = {"app_secret": "$LAZADA_APP_SECRET", "refresh_token": "$LAZADA_REFRESH"}
CREDENTIALS = {name: Secret(SOURCES[name], value) for name, value in SECRET_VALUES.items()}
# seller SKU -> (item id, SKU id)
SKUS = {"LZ-RED": ("6718170187", "12761620980"), "LZ-BLUE": ("6718170187", "12761620981")}


def lazada_market() -> Market:
    listings = {
        seller_sku: SandboxListing(
            key=seller_sku,
            sku=f"stock-{seller_sku}",
            condition="new",
            ids={"seller_sku": seller_sku, "item_id": item, "sku_id": sku_id},
        )
        for seller_sku, (item, sku_id) in SKUS.items()
    }
    return Market(
        platform="lazada", channel="lazada", listings=listings, options={"app_key": APP_KEY}
    )


def profile_settings(
    base_url: str | None,
    credentials: Mapping[str, Secret] = CREDENTIALS,
    overrides: Mapping[str, float] | None = None,
) -> ProfileSettings:
    return ProfileSettings(
        channel="lazada",
        base_url=base_url,
        credentials=credentials,
        options={"app_key": APP_KEY},
        overrides=overrides or {},
    )


Served = marketplace.Served[LazadaSandbox]


@asynccontextmanager
async def served_lazada(
    clock: ManualClock | None = None, settings: SandboxSettings | None = None
) -> AsyncIterator[Served]:
    """The emulated seller alone on an application of its own."""
    sandbox = LazadaSandbox(
        lazada_market(), CREDENTIALS, settings or SandboxSettings(), clock or frozen_wall()
    )
    async with served_alone(sandbox) as served:
        yield served
