"""The nats-py internals the service's fast paths use are all there.

A nats-py release that drops or renames one would silently turn the fast lane
and the one-write publishes off (the service falls back to the public API). This
fails instead, naming the member, so a dependency bump is checked, not guessed.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from nats.aio.client import Client

from invsync.service import natsclient
from invsync.service.fastlane import LaneParser, install, lane

ROOT = Path(__file__).resolve().parents[2]


def test_every_nats_py_internal_the_service_uses_is_present() -> None:
    assert natsclient.missing_internals() == []


def test_the_fast_lane_installs_on_a_new_client() -> None:
    nc = Client()
    install(nc)
    assert isinstance(lane(nc), LaneParser)


def test_pyproject_allows_only_the_nats_py_releases_the_internals_were_checked_on() -> None:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (nats_py,) = [d for d in dependencies if re.match(r"nats-py\b", d)]
    assert nats_py.removeprefix("nats-py") == natsclient.TESTED_WITH


def test_a_missing_internal_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(Client, "_send_command")
    assert natsclient.missing_internals() == ["Client._send_command"]
    assert natsclient.can_write_raw(Client()) is False
