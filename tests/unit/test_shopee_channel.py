"""A Shopee channel as a seller writes it: one channels file and listing CSV read by the
sandbox and by the profile, pushed by the shared scheduler: a backlog of more items than
a second's budget of calls clears with one call per item (two for an item of more than
50 models) without a throttled call, and an update below a promotion's reserved stock is
sent again at the reserved stock and reported as a hold with Shopee's reason while the
rest of its item lands."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from invsync.marketplaces import shopee as sp
from invsync.sandbox.platforms.shopee import RESERVED_PATH
from tests.channel_sandbox import (
    channel_on_the_sandbox,
    export_credentials,
    write_channels_file,
)
from tests.scheduled import push_all
from tests.shopee_market import (
    PARTNER_ID,
    SECRET_VALUES,
    SHOP_ID,
    SOURCES,
)

pytestmark = pytest.mark.anyio
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
    header = "sku,condition,item_id,model_id\n"
    return write_channels_file(
        folder,
        "shopee-sg",
        "shopee",
        SOURCES,
        header + rows,
        partner_id=PARTNER_ID,
        shop_id=SHOP_ID,
    )


async def test_a_backlog_clears_without_429_and_reserved_stock_becomes_the_floor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    export_credentials(monkeypatch, SOURCES, SECRET_VALUES)
    holds: list[tuple[str, int, int, str]] = []
    async with channel_on_the_sandbox(write_channel(tmp_path)) as on:
        async with on.http.post(
            on.url + RESERVED_PATH, json={"listing": "700:1", "reserved": 3}
        ) as r:
            assert r.status == 200
        pushes = [(listing, 0, n) for n, listing in enumerate(on.listings, start=1)]
        settled, alerts = await push_all(on.profile, on.http, pushes, holds=holds)
        state = await on.platform_state()
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
    handed_out = set(on.box.storefronts["shopee"].emulation.tokens)  # type: ignore[attr-defined]
    said = caplog.text + "".join(alerts)
    assert handed_out and not any(v in said for v in (*SECRET_VALUES.values(), *handed_out))
