"""A Shopee channel as a seller writes it: one channels file and listing CSV read by the
sandbox and by the profile, pushed by the shared scheduler: a backlog of more items than
a second's budget of calls clears with one call per item (two for an item of more than
50 models) without a throttled call, and an update below a promotion's reserved stock is
sent again at the reserved stock and reported as a hold with Shopee's reason while the
rest of its item lands."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import anyio
import pytest
from prometheus_client import CollectorRegistry

from invsync.events import OrderPlaced
from invsync.gateway.config import load_channels
from invsync.gateway.listings import read_listing_csv
from invsync.gateway.metrics import GatewayMetrics
from invsync.gateway.platforms import profile_factory
from invsync.gateway.scheduler import Scheduler
from invsync.marketplaces import shopee as sp
from invsync.sandbox.app import Sandbox, serving
from invsync.sandbox.channels import storefronts
from invsync.sandbox.orders import OrderBook
from invsync.sandbox.platforms.base import SandboxSettings
from invsync.sandbox.platforms.shopee import RESERVED_PATH
from tests.shopee_market import (
    PARTNER_ID,
    SECRET_VALUES,
    SHOP_ID,
    SOURCES,
)

pytestmark = pytest.mark.anyio
TS = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
# Item 700 has more models than a call takes; then more small items than the burst.
BIG = sp.MAX_MODELS + 10
SMALL_ITEMS, SMALL = int(sp.BURST) + 10, 3
MODELS = BIG + SMALL_ITEMS * SMALL
CALLS = 2 + SMALL_ITEMS


def item(n: int) -> int:
    """The item of the listing map's `n`th model (from 1): 700 first, then 1 to 20."""
    return 700 if n <= BIG else 1 + n % SMALL_ITEMS


def write_channel(folder: Path) -> Path:
    rows = "".join(f"sku-{n},,{item(n)},{n}\n" for n in range(1, MODELS + 1))
    (folder / "shopee.csv").write_text("sku,condition,item_id,model_id\n" + rows, encoding="utf-8")
    env = {name: source.removeprefix("$") for name, source in SOURCES.items()}
    channels = folder / "channels.toml"
    channels.write_text(
        f"""
[[channels]]
id = "shopee-sg"
platform = "shopee"
credentials = {{ partner_key_env = "{env["partner_key"]}", refresh_token_env = "{env["refresh_token"]}" }}
listings = "shopee.csv"
partner_id = "{PARTNER_ID}"
shop_id = "{SHOP_ID}"
""",
        encoding="utf-8",
    )
    return channels


async def ignore(channel: str, order: OrderPlaced) -> None:
    """No OMS in this test: nothing is sold."""


async def test_a_backlog_clears_without_429_and_reserved_stock_becomes_the_floor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name, source in SOURCES.items():
        monkeypatch.setenv(source.removeprefix("$"), SECRET_VALUES[name])
    channels = load_channels(write_channel(tmp_path))
    (channel,) = channels.channels
    box = Sandbox(storefronts(channels, SandboxSettings()), OrderBook(ignore))
    alerts: list[str] = []
    holds: list[tuple[str, int, int, str]] = []
    settled: list[bool] = []
    done = anyio.Event()

    def heard(applied: bool, reason: str | None) -> None:
        settled.append(applied)
        if len(settled) == MODELS:
            done.set()

    async with serving(box, port=0) as port, aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{port}"
        async with http.post(url + RESERVED_PATH, json={"listing": "700:1", "reserved": 3}) as r:
            assert r.status == 200
        pointed = dataclasses.replace(channel, base_url=url)
        profile = profile_factory("shopee")(pointed.settings(pointed.secrets(channels.base)))
        listings = read_listing_csv(channel.listings_path(channels.base), profile.id_fields)
        scheduler = Scheduler(
            profile,
            http,
            GatewayMetrics(CollectorRegistry()).channel("shopee-sg"),
            lambda listing, reason: alerts.append(reason),
            report_hold=lambda listing, decided, held, reason: holds.append(
                (listing.sku, decided, held, reason)
            ),
        )
        for n, listing in enumerate(listings, start=1):
            scheduler.queue.known[profile.listing_key(listing)] = 0
            scheduler.put(listing, n, TS, heard)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(scheduler.run)
            with anyio.fail_after(20):
                await done.wait()
            tasks.cancel_scope.cancel()
        async with http.get(url + "/sandbox/state") as resp:
            state = (await resp.json())["platforms"]["shopee"]
    # Model 1 was asked for 1 while a promotion holds 3: sent again at 3, which lands.
    assert settled.count(False) == 0 and alerts == []
    assert [(decided, held, reason) for _, decided, held, reason in holds] == [
        (1, 3, f"shopee: {sp.BELOW_RESERVED}")
    ]
    shown = {key: li["qty"] for key, li in state["listings"].items()}
    assert shown == {f"{item(n)}:{n}": (3 if n == 1 else n) for n in range(1, MODELS + 1)}
    # The calls, one token refresh, the read of item 700's reserved stock and the call
    # that sends model 1 again at its floor; one call had a model refused.
    assert state["counters"] == {"requests": CALLS + 3, "throttled": 0, "rejected": 1}
    assert state["state"] == {"reserved": {"700:1": 3}}
    # No credential, nor a token the platform handed out, in any log line or alert.
    handed_out = set(box.storefronts["shopee"].emulation.tokens)  # type: ignore[attr-defined]
    said = caplog.text + "".join(alerts)
    assert handed_out and not any(v in said for v in (*SECRET_VALUES.values(), *handed_out))
