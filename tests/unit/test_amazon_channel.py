"""An Amazon channel as a seller writes it: one channels file and listing CSV read by both
the sandbox (`invsync sandbox`) and the gateway's profile, which then agree on the
credentials, the seller SKU and what the marketplace ends up showing."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import anyio
import pytest

from invsync.events import OrderPlaced
from invsync.gateway.config import load_channels
from invsync.gateway.listings import read_listing_csv
from invsync.gateway.platforms import profile_factory
from invsync.gateway.platforms.base import Change, Outcome
from invsync.sandbox.app import Sandbox, serving
from invsync.sandbox.channels import storefronts
from invsync.sandbox.orders import OrderBook
from invsync.sandbox.platforms.base import SandboxSettings
from tests.amazon_market import (
    MARKETPLACE_ID,
    SECRET_VALUES,
    SELLER_ID,
    SOURCES,
)

pytestmark = pytest.mark.anyio
TS = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def write_channel(folder: Path) -> Path:
    (folder / "amazon.csv").write_text(
        "sku,condition,seller_sku\nmug,,MUG-RED-1\nlamp,used,LAMP/USED-2\n", encoding="utf-8"
    )
    env = {name: source.removeprefix("$") for name, source in SOURCES.items()}
    channels = folder / "channels.toml"
    channels.write_text(
        f"""
[[channels]]
id = "amazon-us"
platform = "amazon"
credentials = {{ refresh_token_env = "{env["refresh_token"]}", client_id_env = "{env["client_id"]}", client_secret_env = "{env["client_secret"]}" }}
listings = "amazon.csv"
seller_id = "{SELLER_ID}"
marketplace_id = "{MARKETPLACE_ID}"
feed_processing_s = "0.2"
""",
        encoding="utf-8",
    )
    return channels


async def ignore(channel: str, order: OrderPlaced) -> None:
    """No OMS in this test: nothing is sold."""


async def test_both_lanes_push_to_the_sandbox_built_from_the_same_channels_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, source in SOURCES.items():
        monkeypatch.setenv(source.removeprefix("$"), SECRET_VALUES[name])
    channels = load_channels(write_channel(tmp_path))
    (channel,) = channels.channels
    box = Sandbox(storefronts(channels, SandboxSettings(job_delay_s=0.1)), OrderBook(ignore))
    async with serving(box, port=0) as port, aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{port}"
        pointed = dataclasses.replace(channel, base_url=url)
        profile = profile_factory("amazon")(pointed.settings(pointed.secrets(channels.base)))
        mug, lamp = read_listing_csv(channel.listings_path(channels.base), profile.id_fields)
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
        async with http.get(url + "/sandbox/state") as resp:
            state = json.loads(await resp.read())["platforms"]["amazon"]
    assert state["channel"] == "amazon-us"
    shown = {key: (li["qty"], li["updates"]) for key, li in state["listings"].items()}
    assert shown == {"MUG-RED-1": (9, 2), "LAMP/USED-2": (0, 2)}
    assert state["state"] == {"feeds": {sent.job: "DONE"}}
    assert (state["counters"]["throttled"], state["counters"]["rejected"]) == (0, 0)
