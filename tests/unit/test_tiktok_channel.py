"""A TikTok Shop channel as a seller writes it: one channels file and listing CSV read by
both the sandbox and the gateway's profile; a backlog of more products than a second's
budget of calls, pushed by the shared scheduler, lands signed and in full with one call
per product (two for a product of more than 100 SKUs) and without a throttled request,
and a sale shows in the sandbox's state without any credential."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import aiohttp
import pytest

from invsync.events import OrderPlaced
from invsync.gateway.config import load_channels
from invsync.gateway.listings import read_listing_csv
from invsync.gateway.platforms import profile_factory
from invsync.marketplaces import tiktok as tt
from invsync.sandbox.app import Sandbox, serving
from invsync.sandbox.channels import storefronts
from invsync.sandbox.orders import OrderBook
from invsync.sandbox.platforms.base import SandboxSettings
from tests.scheduled import push_all
from tests.tiktok_market import (
    SECRET_VALUES,
    SHOP_CIPHER,
    SOURCES,
)

pytestmark = pytest.mark.anyio
# One product of more SKUs than a call takes, then more small products than the burst.
BIG = tt.MAX_SKUS + 50
SMALL_PRODUCTS, SMALL = int(tt.BURST) + 10, 4
BACKLOG = BIG + SMALL_PRODUCTS * SMALL
CALLS = 2 + SMALL_PRODUCTS


def product(n: int) -> str:
    return "PBIG" if n < BIG else f"P{n % SMALL_PRODUCTS}"


def write_channel(folder: Path) -> Path:
    rows = "".join(f"item-{n},,{product(n)},S{n},W{n % 2}\n" for n in range(BACKLOG))
    header = "sku,condition,product_id,sku_id,warehouse_id\n"
    (folder / "tiktok.csv").write_text(header + rows, encoding="utf-8")
    env = {name: source.removeprefix("$") for name, source in SOURCES.items()}
    credentials = ", ".join(f'{name}_env = "{var}"' for name, var in env.items())
    channels = folder / "channels.toml"
    channels.write_text(
        f"""
[[channels]]
id = "tiktok-my"
platform = "tiktok"
credentials = {{ {credentials} }}
listings = "tiktok.csv"
shop_cipher = "{SHOP_CIPHER}"
""",
        encoding="utf-8",
    )
    return channels


async def ignore(channel: str, order: OrderPlaced) -> None:
    """No OMS in this test: the sale's order stays pending."""


async def test_a_backlog_from_the_channels_file_lands_signed_without_throttling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, source in SOURCES.items():
        monkeypatch.setenv(source.removeprefix("$"), SECRET_VALUES[name])
    channels = load_channels(write_channel(tmp_path))
    (channel,) = channels.channels
    box = Sandbox(storefronts(channels, SandboxSettings()), OrderBook(ignore))
    async with serving(box, port=0) as port, aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{port}"
        pointed = dataclasses.replace(channel, base_url=url)
        profile = profile_factory("tiktok")(pointed.settings(pointed.secrets(channels.base)))
        listings = read_listing_csv(channel.listings_path(channels.base), profile.id_fields)
        pushes = [(listing, 0, n + 1) for n, listing in enumerate(listings)]
        settled, alerts = await push_all(profile, http, pushes)
        sale = {"platform": "tiktok", "listing": "S7", "qty": 3}
        async with http.post(url + "/sandbox/sale", json=sale) as resp:
            assert resp.status == 200
        async with http.get(url + "/sandbox/state") as resp:
            state = json.loads(await resp.read())["platforms"]["tiktok"]
    assert settled == [True] * BACKLOG and alerts == []
    shown = {key: listing["qty"] for key, listing in state["listings"].items()}
    assert shown == {f"S{n}": n + 1 - (3 if n == 7 else 0) for n in range(BACKLOG)}
    assert state["channel"] == "tiktok-my"
    # The calls and one token refresh.
    assert state["counters"] == {"requests": CALLS + 1, "throttled": 0, "rejected": 0}
    assert not any(value in json.dumps(state) for value in SECRET_VALUES.values())
