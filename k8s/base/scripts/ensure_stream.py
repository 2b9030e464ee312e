"""Create the invsync stream replicated across the NATS cluster, before the allocator starts.

`invsync serve` creates its stream when it is missing, but with one replica
(the server default) and it never changes the replica count of an existing
stream. Run as an init container, this script creates the stream with the
service's own stream configuration (subjects, file storage, de-duplication
window, message size) plus `INVSYNC_STREAM_REPLICAS` replicas, or raises the
replica count of an existing stream. It never lowers it and never touches
subjects or limits: the service adds any subjects it is missing itself.

Environment: INVSYNC_NATS_URL, INVSYNC_PREFIX, INVSYNC_STREAM,
INVSYNC_STREAM_REPLICAS (default 3), and optionally INVSYNC_NATS_CREDS,
INVSYNC_NATS_NKEY, INVSYNC_NATS_TLS_CA, INVSYNC_NATS_TLS_CERT, INVSYNC_NATS_TLS_KEY
(the same files `invsync serve` takes as --creds, --nkey, --tls-*). It connects
as the `service` role, whose replies arrive under that role's inbox prefix.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from nats.errors import Error as NatsError
from nats.js.errors import NotFoundError

from invsync.security.roles import inbox_prefix
from invsync.service.config import ConnectionOptions, ServiceConfig
from invsync.service.connection import connect
from invsync.service.stream import stream_config
from invsync.service.subjects import Subjects


def _path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


async def ensure(url: str, prefix: str, stream: str, replicas: int) -> str:
    options = ConnectionOptions(
        url=url,
        name="invsync-ensure-stream",
        creds=_path("INVSYNC_NATS_CREDS"),
        nkeys_seed=_path("INVSYNC_NATS_NKEY"),
        tls_ca=_path("INVSYNC_NATS_TLS_CA"),
        tls_cert=_path("INVSYNC_NATS_TLS_CERT"),
        tls_key=_path("INVSYNC_NATS_TLS_KEY"),
        inbox_prefix=inbox_prefix("service"),
    )
    nc = await connect(options)
    try:
        js = nc.jetstream()
        try:
            info = await js.stream_info(stream)
        except NotFoundError:
            wanted = stream_config(stream, Subjects(prefix), ServiceConfig.duplicate_window_s)
            wanted.num_replicas = replicas
            await js.add_stream(wanted)
            return f"created stream {stream} with {replicas} replicas"
        have = info.config.num_replicas or 1
        if have >= replicas:
            return f"stream {stream} exists with {have} replicas"
        info.config.num_replicas = replicas
        await js.update_stream(info.config)
        return f"stream {stream}: replicas {have} -> {replicas}"
    finally:
        await nc.close()


def main() -> int:
    url = os.environ.get("INVSYNC_NATS_URL", "nats://127.0.0.1:4222")
    prefix = os.environ.get("INVSYNC_PREFIX", "inv")
    stream = os.environ.get("INVSYNC_STREAM", "INVSYNC")
    replicas = int(os.environ.get("INVSYNC_STREAM_REPLICAS", "3"))
    try:
        print(asyncio.run(asyncio.wait_for(ensure(url, prefix, stream, replicas), 60)))
    except (NatsError, OSError, TimeoutError, ValueError) as exc:
        # The pod restarts the init container until NATS is there; say why.
        print(f"ensure-stream: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
