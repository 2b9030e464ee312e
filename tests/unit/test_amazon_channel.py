"""An Amazon channel as a seller writes it: one channels file and listing CSV read by both
the sandbox (`invsync sandbox`) and the gateway's profile, which then agree on the
credentials, the seller SKU and what the marketplace ends up showing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from invsync.gateway.platforms.base import Change, Outcome
from invsync.sandbox.platforms.base import SandboxSettings
from tests.amazon_market import (
    MARKETPLACE_ID,
    SECRET_VALUES,
    SELLER_ID,
    SOURCES,
)
from tests.channel_sandbox import (
    channel_on_the_sandbox,
    export_credentials,
    write_channels_file,
)

pytestmark = pytest.mark.anyio
TS = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def write_channel(folder: Path) -> Path:
    listing_csv = "sku,condition,seller_sku\nmug,,MUG-RED-1\nlamp,used,LAMP/USED-2\n"
    options = {"seller_id": SELLER_ID, "marketplace_id": MARKETPLACE_ID}
    return write_channels_file(
        folder, "amazon-us", "amazon", SOURCES, listing_csv, **options, feed_processing_s="0.2"
    )


async def test_both_lanes_push_to_the_sandbox_built_from_the_same_channels_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export_credentials(monkeypatch, SOURCES, SECRET_VALUES)
    settings = SandboxSettings(job_delay_s=0.1)
    async with channel_on_the_sandbox(write_channel(tmp_path), settings) as on:
        http, profile = on.http, on.profile
        mug, lamp = on.listings
        patch = profile.lanes[0]
        reply = await patch.send(http, [Change(mug, 6, None, TS)])
        assert reply.outcomes == [Outcome(applied=True)]
        reply = await patch.send(http, [Change(lamp, 2, None, TS)])
        assert reply.outcomes == [Outcome(applied=True)]
        feed = profile.lanes[1]
        sent = await feed.send(http, [Change(mug, 9, None, TS), Change(lamp, 0, None, TS)])
        assert sent.job is not None
        with anyio.fail_after(5):
            while (done := await feed.poll(http, sent.job)) is None:
                await anyio.sleep(0.05)
        assert done.outcomes == [Outcome(applied=True), Outcome(applied=True)]
        state = await on.platform_state()
    assert state["channel"] == "amazon-us"
    shown = {key: (li["qty"], li["updates"]) for key, li in state["listings"].items()}
    assert shown == {"MUG-RED-1": (9, 2), "LAMP/USED-2": (0, 2)}
    assert state["state"] == {"feeds": {sent.job: "DONE"}}
    assert (state["counters"]["throttled"], state["counters"]["rejected"]) == (0, 0)
