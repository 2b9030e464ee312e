"""A Lazada channel as a seller writes it: one channels file and listing CSV read by the
sandbox and by the profile, pushed by the shared scheduler: a backlog clears in calls of
20 SKUs without a throttled call, and an update below the locked stock is sent again at
the locked stock and reported as a hold with Lazada's reason while the rest of its call
lands."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from invsync.marketplaces import lazada as lz
from invsync.sandbox.platforms.lazada import LOCKED_PATH
from tests.channel_sandbox import (
    channel_on_the_sandbox,
    export_credentials,
    write_channels_file,
)
from tests.lazada_market import (
    APP_KEY,
    SECRET_VALUES,
    SOURCES,
)
from tests.scheduled import push_all

pytestmark = pytest.mark.anyio
BACKLOG = 45  # three calls of at most 20


def write_channel(folder: Path) -> Path:
    rows = "".join(f"sku-{n},,LZ-{n},900{n},700{n}\n" for n in range(1, BACKLOG + 1))
    header = "sku,condition,seller_sku,item_id,sku_id\n"
    return write_channels_file(
        folder, "lazada-th", "lazada", SOURCES, header + rows, app_key=APP_KEY
    )


async def test_a_backlog_clears_in_calls_of_20_and_locked_stock_becomes_the_floor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    export_credentials(monkeypatch, SOURCES, SECRET_VALUES)
    holds: list[tuple[str, int, int, str]] = []
    async with channel_on_the_sandbox(write_channel(tmp_path)) as on:
        async with on.http.post(on.url + LOCKED_PATH, json={"listing": "LZ-2", "locked": 5}) as r:
            assert r.status == 200
        pushes = [(listing, 0, n) for n, listing in enumerate(on.listings, start=1)]
        settled, alerts = await push_all(on.profile, on.http, pushes, holds=holds)
        state = await on.platform_state()
    # LZ-2 was asked for 2 while Lazada holds 5 locked: sent again at 5, which lands.
    assert settled.count(False) == 0 and alerts == []
    assert holds == [("sku-2", 2, 5, f"lazada: Quantity: {lz.below_locked(5)}")]
    shown = {key: li["qty"] for key, li in state["listings"].items()}
    assert shown == {f"LZ-{n}": (5 if n == 2 else n) for n in range(1, BACKLOG + 1)}
    # Three update calls (20 + 20 + 5), one GetProductItem, LZ-2 again at 5, and one
    # token refresh; none throttled.
    assert (state["counters"]["requests"], state["counters"]["throttled"]) == (6, 0)
    # No credential, nor a token the platform handed out, in any log line or alert.
    handed_out = set(on.box.storefronts["lazada"].emulation.tokens)  # type: ignore[attr-defined]
    said = caplog.text + "".join(alerts)
    assert handed_out and not any(v in said for v in (*SECRET_VALUES.values(), *handed_out))
