"""eBay end to end on the shipped sandbox: one channels file configures both the
sandbox and the gateway profile, the profile's pushes show in `GET /sandbox/state`
with the revisions they spent, and a sale lowers what the listing shows."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from invsync.gateway.config import load_channels
from invsync.gateway.platforms import profile_factory
from invsync.gateway.platforms.base import Change, Listing, Outcome
from invsync.sandbox.app import Sandbox, serving
from invsync.sandbox.channels import storefronts
from invsync.sandbox.orders import OrderBook
from invsync.sandbox.platforms.base import SandboxSettings
from tests.ebay_world import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN

pytestmark = pytest.mark.anyio
TS = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)

CHANNELS = """
[[channels]]
id = "ebay-us"
platform = "ebay"
base_url = "http://127.0.0.1:1"
credentials = { refresh_token_env = "EBAY_RT", client_id_env = "EBAY_ID", client_secret_file = "ebay.secret" }
listings = "ebay.csv"
"""
LISTINGS = "sku,condition,ebay_sku,offer_id\nA,,A-NEW,9001\nA,used,A-USED,9002\n"


@pytest.fixture
def channels_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EBAY_RT", REFRESH_TOKEN)
    monkeypatch.setenv("EBAY_ID", CLIENT_ID)
    (tmp_path / "ebay.secret").write_text(CLIENT_SECRET + "\n")
    (tmp_path / "ebay.csv").write_text(LISTINGS)
    path = tmp_path / "channels.toml"
    path.write_text(CHANNELS)
    return path


async def test_pushes_and_sales_show_in_the_sandbox_state(channels_file: Path) -> None:
    channels = load_channels(channels_file)
    sandbox = Sandbox(storefronts(channels, SandboxSettings()), OrderBook(None))
    async with serving(sandbox, port=0) as port, aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{port}"
        channel = channels.channels[0]
        settings = channel.settings(channel.secrets(channels.base))
        # The sandbox's port is known only now; the file's base_url stands in for it.
        profile = profile_factory("ebay")(replace(settings, base_url=url))
        new = Listing("A", "new", {"ebay_sku": "A-NEW", "offer_id": "9001"})
        used = Listing("A", "used", {"ebay_sku": "A-USED", "offer_id": "9002"})
        reply = await profile.lanes[0].send(
            http, [Change(new, 5, None, TS), Change(used, 2, None, TS)]
        )
        assert list(reply.outcomes) == [Outcome(True, shown=5), Outcome(True, shown=2)]

        sale = {"platform": "ebay", "listing": "A-NEW", "qty": 2}
        async with http.post(url + "/sandbox/sale", json=sale) as r:
            assert r.status == 200
        async with http.get(url + "/sandbox/state") as r:
            state = (await r.json())["platforms"]["ebay"]

    assert state["channel"] == "ebay-us"
    assert {key: li["qty"] for key, li in state["listings"].items()} == {"A-NEW": 3, "A-USED": 2}
    assert state["counters"] == {"requests": 1, "throttled": 0, "rejected": 0}
    assert state["state"]["revisions_today"] == {"A-NEW": 1, "A-USED": 1}
    for secret in (REFRESH_TOKEN, CLIENT_SECRET):
        assert secret not in str(state)
