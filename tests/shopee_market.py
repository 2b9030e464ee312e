"""An emulated Shopee shop served on a free loopback port, for the tests of the sandbox
emulation and of the gateway profile that talks to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from invsync.gateway.platforms.base import ProfileSettings
from invsync.gateway.secrets import Secret
from invsync.sandbox.market import Market, SandboxListing
from invsync.sandbox.platforms.base import SandboxSettings
from invsync.sandbox.platforms.shopee import ShopeeSandbox
from tests import marketplace
from tests.marketplace import ManualClock, frozen_wall, served_alone

PARTNER_ID = "2001887"
SHOP_ID = "14701711"
SECRET_VALUES = {"partner_key": "partner-key-value-5d2a", "refresh_token": "refresh-value-77c1"}
SOURCES = {"partner_key": "$SHOPEE_PARTNER_KEY", "refresh_token": "$SHOPEE_REFRESH"}
CREDENTIALS = {name: Secret(SOURCES[name], value) for name, value in SECRET_VALUES.items()}
# Item 800 has two models; item 900 has none (model 0).
KEYS = ("800:1", "800:2", "900:0")


def shopee_market(**options: str) -> Market:
    listings = {
        key: SandboxListing(
            key=key,
            sku=f"stock-{key}",
            condition="new",
            ids={"item_id": key.split(":")[0], "model_id": key.split(":")[1]},
        )
        for key in KEYS
    }
    own = {"partner_id": PARTNER_ID, "shop_id": SHOP_ID, **options}
    return Market(platform="shopee", channel="shopee", listings=listings, options=own)


def profile_settings(
    base_url: str | None, credentials: Mapping[str, Secret] = CREDENTIALS, **options: str
) -> ProfileSettings:
    return ProfileSettings(
        channel="shopee",
        base_url=base_url,
        credentials=credentials,
        options={"partner_id": PARTNER_ID, "shop_id": SHOP_ID, **options},
        overrides={},
    )


Served = marketplace.Served[ShopeeSandbox]


@asynccontextmanager
async def served_shopee(
    clock: ManualClock | None = None,
    settings: SandboxSettings | None = None,
    **options: str,
) -> AsyncIterator[Served]:
    """The emulated shop alone on an application of its own."""
    sandbox = ShopeeSandbox(
        shopee_market(**options), CREDENTIALS, settings or SandboxSettings(), clock or frozen_wall()
    )
    async with served_alone(sandbox) as served:
        yield served
