"""A channel as a seller writes it, pointed at the sandbox built from the same channels
file: how the channel tests show a profile and its emulation agreeing, as
`invsync connect` and `invsync sandbox` would run them."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from invsync.events import OrderPlaced
from invsync.gateway.config import load_channels
from invsync.gateway.listings import read_listing_csv
from invsync.gateway.platforms import profile_factory
from invsync.gateway.platforms.base import Listing, Profile
from invsync.sandbox.app import Sandbox, serving
from invsync.sandbox.channels import storefronts
from invsync.sandbox.orders import OrderBook
from invsync.sandbox.platforms.base import SandboxSettings


def export_credentials(
    monkeypatch: pytest.MonkeyPatch, sources: Mapping[str, str], values: Mapping[str, str]
) -> None:
    """Each credential's value in the environment variable (`$NAME`) it is read from."""
    for name, source in sources.items():
        monkeypatch.setenv(source.removeprefix("$"), values[name])


async def _no_oms(channel: str, order: OrderPlaced) -> None:
    """No OMS in these tests: a sale's order stays pending."""


@dataclass
class OnTheSandbox:
    box: Sandbox
    url: str
    http: aiohttp.ClientSession
    profile: Profile
    listings: Sequence[Listing]

    async def platform_state(self) -> Mapping[str, Any]:
        """The profile's platform in `GET /sandbox/state`."""
        async with self.http.get(self.url + "/sandbox/state") as resp:
            state = await resp.json()
        platform: Mapping[str, Any] = state["platforms"][self.profile.platform]
        return platform


@asynccontextmanager
async def channel_on_the_sandbox(
    channels_file: Path, settings: SandboxSettings | None = None
) -> AsyncIterator[OnTheSandbox]:
    """The file's one channel: its sandbox served on a free port, its profile pointed
    there, and its listing map read."""
    channels = load_channels(channels_file)
    (channel,) = channels.channels
    box = Sandbox(storefronts(channels, settings or SandboxSettings()), OrderBook(_no_oms))
    async with serving(box, port=0) as port, aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{port}"
        pointed = dataclasses.replace(channel, base_url=url)
        profile = profile_factory(channel.platform)(
            pointed.settings(pointed.secrets(channels.base))
        )
        listings = read_listing_csv(channel.listings_path(channels.base), profile.id_fields)
        yield OnTheSandbox(box, url, http, profile, listings)


def write_channels_file(
    folder: Path,
    channel_id: str,
    platform: str,
    sources: Mapping[str, str],
    listing_csv: str,
    **options: str,
) -> Path:
    """A channels file of one channel as a seller writes it, in `folder`: its listing
    map `<platform>.csv` beside it, each credential read from the environment variable
    its source (`$NAME`) names, and `options` as the channel's string keys."""
    (folder / f"{platform}.csv").write_text(listing_csv, encoding="utf-8")
    credentials = ", ".join(
        f'{name}_env = "{source.removeprefix("$")}"' for name, source in sources.items()
    )
    lines = [
        "[[channels]]",
        f'id = "{channel_id}"',
        f'platform = "{platform}"',
        f"credentials = {{ {credentials} }}",
        f'listings = "{platform}.csv"',
        *(f'{key} = "{value}"' for key, value in options.items()),
    ]
    channels = folder / "channels.toml"
    channels.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return channels
