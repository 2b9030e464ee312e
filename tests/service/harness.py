"""Running the service in-process against the test's nats-server, and talking to it.

The server runs with the shipped permissions: the service connects as the
`service` user; the test talks as TEST_CLIENT, a user holding the client roles
of the data account (producer, connector, observer), and as `admin` (in its own
account) for policy reloads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anyio
import msgspec
import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from prometheus_client import CollectorRegistry

from invsync import Engine, Policy
from invsync.nats_server import NatsServer
from invsync.service.app import run_service
from invsync.service.applier import Applier
from invsync.service.config import ServiceConfig
from invsync.service.connection import client_kwargs
from invsync.service.consumer import LogReader
from invsync.service.metrics import Metrics
from invsync.service.outbox import Outbox
from invsync.service.subjects import Subjects
from tests.users import TEST_CLIENT

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_POLICY = ROOT / "examples" / "policy.toml"
TS = "2026-11-23T10:00:00Z"


async def connect_as(server: NatsServer, user: str = TEST_CLIENT) -> Client:
    return await nats.connect(**client_kwargs(server.client(user)))


def cli_connection(server: NatsServer, user: str) -> list[str]:
    """The `invsync` command-line options that connect as `user`."""
    seed = server.client(user).nkeys_seed
    return ["--nats", server.url, "--nkey", str(seed)]


def service_config(server: NatsServer, state_dir: Path | None, **overrides: Any) -> ServiceConfig:
    config = ServiceConfig(
        policy_path=EXAMPLE_POLICY,
        connection=server.client("service"),
        state_dir=state_dir,
        metrics_port=None,
        flush_ms=2.0,
    )
    return replace(config, **overrides)


@dataclass
class Running:
    nc: Client
    admin: Client
    registry: CollectorRegistry
    stop: anyio.Event

    async def wait_applied(self, sequence: int, timeout_s: float = 10.0) -> None:
        """Until the service's engine reflects the log up to stream `sequence`."""
        with anyio.fail_after(timeout_s):
            while (self.registry.get_sample_value("invsync_stream_sequence") or 0) < sequence:
                await anyio.sleep(0.01)


@asynccontextmanager
async def running_service(
    server: NatsServer, config: ServiceConfig, engine_type: Any = None
) -> AsyncIterator[Running]:
    """The service started and caught up; stopped gracefully (snapshot written) on exit."""
    registry = CollectorRegistry()
    ready, stop = anyio.Event(), anyio.Event()
    nc = await connect_as(server)
    admin = await connect_as(server, "admin")
    try:
        async with anyio.create_task_group() as tg:

            async def serve() -> None:
                await run_service(
                    config, ready=ready, stop=stop, registry=registry, engine_type=engine_type
                )

            tg.start_soon(serve)
            with anyio.fail_after(10):
                await ready.wait()
            yield Running(nc, admin, registry, stop)
            stop.set()
    finally:
        await nc.close()
        await admin.close()


class Collector:
    """Subscribes to a subject and keeps every message, decoded from JSON."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, Any]] = []

    async def on_msg(self, msg: Msg) -> None:
        self.messages.append((msg.subject, msgspec.json.decode(msg.data)))

    async def wait_for(self, predicate: Any, timeout_s: float = 5.0) -> None:
        with anyio.fail_after(timeout_s):
            while not predicate(self.messages):
                await anyio.sleep(0.01)


def event(kind: str, event_id: str, **fields: Any) -> bytes:
    return msgspec.json.encode({"type": kind, "event_id": event_id, "ts": TS, **fields})


async def replay_stream(js: Any, policy: Policy, through: int) -> Engine:
    """The stream up to sequence `through` into a fresh engine, as a restart without
    snapshots would. A clock tick the service appended after its last snapshot moves
    time-decayed numbers (sales rates), so the replay stops where the snapshot does."""
    engine = Engine(policy)
    applier = Applier(engine, Subjects(), Metrics(CollectorRegistry()), Outbox(), audit=False)
    reader = LogReader(js, "INVSYNC", Subjects())
    await reader.open(0)
    while reader.last_sequence < through:
        applier.apply_batch(await reader.fetch(min(20_000, through - reader.last_sequence)))
        applier.outbox.take()
    await reader.close()
    return engine
