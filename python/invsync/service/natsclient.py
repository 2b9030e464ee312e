"""The one place invsync reaches into nats-py's private members.

The service's fast paths need four things nats-py has no public API for: the
client's protocol parser (the fast lane replaces it), a subscription's id (the
lane routes deliveries by it), a raw write of ready protocol frames with the
flush of the client's pending buffer (a flush's publishes go out in one write),
and the client behind a JetStream context. Everything else uses the public API.

pyproject.toml caps nats-py below the next minor release it was tested with
(`TESTED_WITH`). Should a release drop or rename one of these members,
`missing_internals()` names it: the test suite fails on it, and `invsync serve`
logs it at start. Where a member is missing, the fast lane and the raw write
step aside (the callers check `parser` and `can_write_raw`) and the service
runs on the public API, slower.
"""

from __future__ import annotations

from typing import Any

from nats.aio.client import Client
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.protocol.parser import Parser

#: The nats-py releases these members were checked against (pyproject.toml agrees).
TESTED_WITH = ">=2.9,<2.17"


def parser(nc: Client) -> Parser | None:
    """The client's protocol parser, or None where nats-py keeps it elsewhere."""
    found = getattr(nc, "_ps", None)
    return found if isinstance(found, Parser) else None


def set_parser(nc: Client, replacement: Parser) -> None:
    """Use `replacement` for every byte the client reads from now on."""
    nc._ps = replacement


def subscription_id(sub: Subscription) -> int:
    """The sid the server puts on the subscription's MSG frames."""
    sid: int = sub._id
    return sid


def can_write_raw(nc: Client) -> bool:
    return callable(getattr(nc, "_send_command", None)) and callable(
        getattr(nc, "_flush_pending", None)
    )


async def write_raw(nc: Client, frames: bytes) -> None:
    """Queue ready protocol frames (PUB ...) exactly as the client queues its own,
    and hand them to its flusher."""
    await nc._send_command(frames)
    await nc._flush_pending()


async def write_pending(nc: Client) -> None:
    """Write what the client holds for its flusher now (nats-py's `flush()` sends its
    PING ahead of that queue, so its PONG alone does not prove a PUB arrived)."""
    await nc._flush_pending(force_flush=True)


def jetstream_client(js: JetStreamContext) -> Client:
    """The connection a JetStream context publishes and subscribes on."""
    nc: Client = js._nc
    return nc


def missing_internals() -> list[str]:
    """The private members above that the installed nats-py lacks, by name."""
    nc = Client()
    checks: dict[str, Any] = {
        "Client._ps": parser(nc),
        "Client._send_command": getattr(nc, "_send_command", None),
        "Client._flush_pending": getattr(nc, "_flush_pending", None),
        "Subscription._id": getattr(Subscription(nc, id=7), "_id", None),
        "JetStreamContext._nc": getattr(JetStreamContext(nc), "_nc", None),
    }
    return [name for name, found in checks.items() if found is None]
