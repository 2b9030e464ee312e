"""Connecting to NATS: credentials, nkeys, TLS, and reconnecting forever after a drop."""

from __future__ import annotations

import logging
import ssl
from typing import Any

from nats.aio.client import Client

from invsync.service import fastlane, natsclient
from invsync.service.config import ConnectionOptions

log = logging.getLogger("invsync.service")


def tls_context(options: ConnectionOptions) -> ssl.SSLContext | None:
    """A client TLS context when a CA or client certificate is given, else plain TCP."""
    if options.tls_ca is None and options.tls_cert is None:
        return None
    context = ssl.create_default_context(
        cafile=str(options.tls_ca) if options.tls_ca is not None else None
    )
    if options.tls_cert is not None:
        key = str(options.tls_key) if options.tls_key is not None else None
        context.load_cert_chain(str(options.tls_cert), key)
    return context


def client_kwargs(options: ConnectionOptions) -> dict[str, Any]:
    """nats-py `connect()` arguments for who and where: URL, name, credentials, TLS, inboxes.

    Every invsync client (service, load test, explain, tests) connects with these,
    so a credential option works the same everywhere.
    """
    kwargs: dict[str, Any] = {
        "servers": [options.url],
        "name": options.name,
        "inbox_prefix": options.inbox_prefix,
    }
    if options.creds is not None:
        kwargs["user_credentials"] = str(options.creds)
    if options.nkeys_seed is not None:
        kwargs["nkeys_seed"] = str(options.nkeys_seed)
    context = tls_context(options)
    if context is not None:
        kwargs["tls"] = context
    return kwargs


async def connect(options: ConnectionOptions) -> Client:
    """Connect; after a drop nats-py retries `reconnect_attempts` times (-1: forever),
    reconnect_wait_s apart."""
    attempts = 0
    nc = Client()
    fastlane.install(nc)  # before connecting: the parser is the client's from the start

    async def disconnected() -> None:
        nonlocal attempts
        if nc.is_closed or nc.is_draining:
            log.info("nats connection closed")  # our own drain or close: a normal stop
            return
        attempts += 1
        log.warning("nats disconnected (attempt %d)", attempts)

    async def reconnected() -> None:
        nonlocal attempts
        attempts = 0
        log.info("nats reconnected")

    async def error(exc: Exception) -> None:
        log.warning("nats error: %s", exc)

    kwargs: dict[str, Any] = {
        **client_kwargs(options),
        "max_reconnect_attempts": options.reconnect_attempts,
        "reconnect_time_wait": options.reconnect_wait_s,
        "disconnected_cb": disconnected,
        "reconnected_cb": reconnected,
        "error_cb": error,
        "pending_size": 64 * 1024 * 1024,
        "flusher_queue_size": 4096,
    }
    await nc.connect(**kwargs)
    return nc


async def flush_all(nc: Client) -> None:
    """Everything handed to the client so far is at the server: its pending queue is
    written first, then the round trip."""
    await natsclient.write_pending(nc)
    await nc.flush()
