"""An emulated TikTok shop served on a free loopback port, for the tests of the sandbox
emulation and of the gateway profile that talks to it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from invsync.gateway.platforms.base import ProfileSettings
from invsync.gateway.secrets import Secret
from invsync.sandbox.market import Market, SandboxListing
from invsync.sandbox.platforms.base import SandboxSettings
from invsync.sandbox.platforms.tiktok import TikTokSandbox
from tests import marketplace
from tests.marketplace import ManualClock, served_alone

# Values a test greps for in every message it sees.
SECRET_VALUES = {
    "app_key": "6a1b2c3d4e5f",
    "app_secret": "tt-app-secret-0c9d",
    "refresh_token": "TTP_refresh-value-71aa",
}
SOURCES = {"app_key": "$TT_APP_KEY", "app_secret": "$TT_APP_SECRET", "refresh_token": "$TT_REFRESH"}
CREDENTIALS = {name: Secret(SOURCES[name], value) for name, value in SECRET_VALUES.items()}
SHOP_CIPHER = "ROW_shopcipher0001"
PRODUCT = "1729000000000000001"
# Two SKUs of one product, each in its own warehouse: sku_id -> warehouse_id.
SKUS = {"1729000000000000101": "7068000000000000001", "1729000000000000102": "7068000000000000002"}


def tiktok_market() -> Market:
    listings = {
        sku_id: SandboxListing(
            key=sku_id,
            sku=f"stock-{n}",
            condition="new",
            ids={"product_id": PRODUCT, "sku_id": sku_id, "warehouse_id": warehouse},
        )
        for n, (sku_id, warehouse) in enumerate(SKUS.items())
    }
    return Market("tiktok", "tiktok", listings=listings, options={"shop_cipher": SHOP_CIPHER})


def profile_settings(
    base_url: str | None, credentials: Mapping[str, Secret] = CREDENTIALS
) -> ProfileSettings:
    return ProfileSettings(
        channel="tiktok",
        base_url=base_url,
        credentials=credentials,
        options={"shop_cipher": SHOP_CIPHER},
        overrides={},
    )


Served = marketplace.Served[TikTokSandbox]


@asynccontextmanager
async def served_tiktok(
    settings: SandboxSettings | None = None, clock: ManualClock | None = None, port: int = 0
) -> AsyncIterator[Served]:
    """The emulated shop alone on an application of its own."""
    sandbox = TikTokSandbox(
        tiktok_market(), CREDENTIALS, settings or SandboxSettings(), clock or time.time
    )
    async with served_alone(sandbox, port) as served:
        yield served
