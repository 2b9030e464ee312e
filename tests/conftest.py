"""Shared fixtures: a real nats-server on a free loopback port, one per test (or a
three-node cluster of them), and an HTTP client session for the tests that call an
emulated platform.

Tests that use a server are marked `nats`; `pytest -m "not nats"` skips them. Servers
run with the shipped permissions and the harness's test client user.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from invsync.gateway.platforms import calls
from invsync.nats_server import NatsServer
from tests.cluster import NatsCluster
from tests.users import TEST_USERS


@pytest.fixture
def anyio_backend() -> str:
    """nats-py is asyncio-only."""
    return "asyncio"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session for the tests that call an emulated platform over HTTP."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def short_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Profiles give up on a platform's reply after 0.2 s, so a test of a time-out
    waits no longer."""
    monkeypatch.setattr(calls, "TIMEOUT", aiohttp.ClientTimeout(total=0.2))


@pytest.fixture
def nats_server() -> Iterator[NatsServer]:
    with NatsServer(users=TEST_USERS) as server:
        yield server


@pytest.fixture
def nats_cluster() -> Iterator[NatsCluster]:
    """Three clustered servers on loopback, formed; the test creates its stream."""
    with NatsCluster(users=TEST_USERS) as cluster:
        yield cluster


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if {"nats_server", "nats_cluster"} & fixtures:
            item.add_marker(pytest.mark.nats)
        if "nats_cluster" in fixtures:
            item.add_marker(pytest.mark.cluster)
