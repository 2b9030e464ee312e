"""A Walmart channel as a seller writes it: one channels file and listing CSV read by both
the sandbox and the gateway's profile; a backlog pushed by the shared scheduler goes out
as one inventory feed plus single PUTs (a sell-out never waits for a feed), and Walmart
ends up showing every latest quantity without a throttled request or an alert. When a
feed would take longer than the PUT budget, the PUTs carry it all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from invsync.sandbox.platforms.base import SandboxSettings
from tests.channel_sandbox import (
    channel_on_the_sandbox,
    export_credentials,
    write_channels_file,
)
from tests.scheduled import push_all
from tests.walmart_market import (
    SECRET_VALUES,
    SHIP_NODE,
    SOURCES,
)

pytestmark = pytest.mark.anyio
BACKLOG = 12


def write_channel(folder: Path, feed_processing_s: str) -> Path:
    rows = "".join(f"item-{n},,WM-{n}\n" for n in range(BACKLOG + 1))
    listing_csv = "sku,condition,walmart_sku\n" + rows
    return write_channels_file(
        folder,
        "walmart-us",
        "walmart",
        SOURCES,
        listing_csv,
        ship_node=SHIP_NODE,
        feed_processing_s=feed_processing_s,
    )


@pytest.mark.parametrize(
    ("feed_processing_s", "feeds"),
    [("0.2", ["PROCESSED"]), ("1800", [])],
    ids=["feeds faster than PUTs", "PUTs faster than a feed"],
)
async def test_a_backlog_from_the_channels_file_lands_without_throttling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, feed_processing_s: str, feeds: list[str]
) -> None:
    export_credentials(monkeypatch, SOURCES, SECRET_VALUES)
    channels_file = write_channel(tmp_path, feed_processing_s)
    async with channel_on_the_sandbox(channels_file, SandboxSettings(job_delay_s=0.1)) as on:
        market = on.box.storefronts["walmart"].emulation.market
        market.listings["WM-0"].qty = 5  # the one that sells out
        sold_out, *rest = on.listings
        pushes = [(sold_out, 5, 0), *((listing, 0, n + 1) for n, listing in enumerate(rest))]
        settled, alerts = await push_all(on.profile, on.http, pushes)
        state = await on.platform_state()
    assert settled == [True] * len(pushes) and alerts == []
    shown = {key: listing["qty"] for key, listing in state["listings"].items()}
    assert shown == {"WM-0": 0, **{f"WM-{n + 1}": n + 1 for n in range(BACKLOG)}}
    assert list(state["state"]["feeds"].values()) == feeds
    assert state["counters"]["throttled"] == 0 and state["counters"]["rejected"] == 0
    assert not any(value in json.dumps(state) for value in SECRET_VALUES.values())
