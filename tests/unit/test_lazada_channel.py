"""A Lazada channel as a seller writes it: one channels file and listing CSV read by the
sandbox and by the profile, pushed by the shared scheduler: a backlog clears in calls of
20 SKUs without a throttled call, and an update below the locked stock is sent again at
the locked stock and reported as a hold with Lazada's reason while the rest of its call
lands."""

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
from invsync.marketplaces import lazada as lz
from invsync.sandbox.app import Sandbox, serving
from invsync.sandbox.channels import storefronts
from invsync.sandbox.orders import OrderBook
from invsync.sandbox.platforms.base import SandboxSettings
from invsync.sandbox.platforms.lazada import LOCKED_PATH
from tests.lazada_market import (
    APP_KEY,
    SECRET_VALUES,
    SOURCES,
)

pytestmark = pytest.mark.anyio
TS = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
BACKLOG = 45  # three calls of at most 20


def write_channel(folder: Path) -> Path:
    rows = "".join(f"sku-{n},,LZ-{n},900{n},700{n}\n" for n in range(1, BACKLOG + 1))
    header = "sku,condition,seller_sku,item_id,sku_id\n"
    (folder / "lazada.csv").write_text(header + rows, encoding="utf-8")
    env = {name: source.removeprefix("$") for name, source in SOURCES.items()}
    channels = folder / "channels.toml"
    channels.write_text(
        f"""
[[channels]]
id = "lazada-th"
platform = "lazada"
credentials = {{ app_secret_env = "{env["app_secret"]}", refresh_token_env = "{env["refresh_token"]}" }}
listings = "lazada.csv"
app_key = "{APP_KEY}"
""",
        encoding="utf-8",
    )
    return channels


async def ignore(channel: str, order: OrderPlaced) -> None:
    """No OMS in this test: nothing is sold."""


async def test_a_backlog_clears_in_calls_of_20_and_locked_stock_becomes_the_floor(
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
        if len(settled) == BACKLOG:
            done.set()

    async with serving(box, port=0) as port, aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{port}"
        async with http.post(url + LOCKED_PATH, json={"listing": "LZ-2", "locked": 5}) as r:
            assert r.status == 200
        pointed = dataclasses.replace(channel, base_url=url)
        profile = profile_factory("lazada")(pointed.settings(pointed.secrets(channels.base)))
        listings = read_listing_csv(channel.listings_path(channels.base), profile.id_fields)
        scheduler = Scheduler(
            profile,
            http,
            GatewayMetrics(CollectorRegistry()).channel("lazada-th"),
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
            state = (await resp.json())["platforms"]["lazada"]
    # LZ-2 was asked for 2 while Lazada holds 5 locked: sent again at 5, which lands.
    assert settled.count(False) == 0 and alerts == []
    assert holds == [("sku-2", 2, 5, f"lazada: Quantity: {lz.below_locked(5)}")]
    shown = {key: li["qty"] for key, li in state["listings"].items()}
    assert shown == {f"LZ-{n}": (5 if n == 2 else n) for n in range(1, BACKLOG + 1)}
    # Three update calls (20 + 20 + 5), one GetProductItem, LZ-2 again at 5, and one
    # token refresh; none throttled.
    assert (state["counters"]["requests"], state["counters"]["throttled"]) == (6, 0)
    # No credential, nor a token the platform handed out, in any log line or alert.
    handed_out = set(box.storefronts["lazada"].emulation.tokens)  # type: ignore[attr-defined]
    said = caplog.text + "".join(alerts)
    assert handed_out and not any(v in said for v in (*SECRET_VALUES.values(), *handed_out))
