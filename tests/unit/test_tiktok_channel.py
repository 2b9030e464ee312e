"""A TikTok Shop channel as a seller writes it: one channels file and listing CSV read by
both the sandbox and the gateway's profile; a backlog of more products than a second's
budget of calls, pushed by the shared scheduler, lands signed and in full with one call
per product (two for a product of more than 100 SKUs) and without a throttled request,
and a sale shows in the sandbox's state without any credential."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from invsync.marketplaces import tiktok as tt
from tests.channel_sandbox import (
    channel_on_the_sandbox,
    export_credentials,
    write_channels_file,
)
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
    return write_channels_file(
        folder, "tiktok-my", "tiktok", SOURCES, header + rows, shop_cipher=SHOP_CIPHER
    )


async def test_a_backlog_from_the_channels_file_lands_signed_without_throttling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export_credentials(monkeypatch, SOURCES, SECRET_VALUES)
    async with channel_on_the_sandbox(write_channel(tmp_path)) as on:
        pushes = [(listing, 0, n + 1) for n, listing in enumerate(on.listings)]
        settled, alerts = await push_all(on.profile, on.http, pushes)
        sale = {"platform": "tiktok", "listing": "S7", "qty": 3}
        async with on.http.post(on.url + "/sandbox/sale", json=sale) as resp:
            assert resp.status == 200
        state = await on.platform_state()
    assert settled == [True] * BACKLOG and alerts == []
    shown = {key: listing["qty"] for key, listing in state["listings"].items()}
    assert shown == {f"S{n}": n + 1 - (3 if n == 7 else 0) for n in range(BACKLOG)}
    assert state["channel"] == "tiktok-my"
    # The calls and one token refresh.
    assert state["counters"] == {"requests": CALLS + 1, "throttled": 0, "rejected": 0}
    assert not any(value in json.dumps(state) for value in SECRET_VALUES.values())
