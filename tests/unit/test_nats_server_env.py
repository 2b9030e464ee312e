"""The embedded server leaves the service room on a small machine, unless told otherwise."""

from __future__ import annotations

import os

import pytest

from invsync.nats_server import server_environment


def test_the_server_gets_half_the_cores_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOMAXPROCS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert server_environment()["GOMAXPROCS"] == "4"
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert server_environment()["GOMAXPROCS"] == "1"


def test_an_explicit_gomaxprocs_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOMAXPROCS", "3")
    assert server_environment()["GOMAXPROCS"] == "3"
