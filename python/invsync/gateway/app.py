"""`invsync connect`: one connector per channel of the channels file, sharing one NATS
connection, one HTTP client and one metrics endpoint.

Everything that can be checked before connecting is (the channels file, each
platform's profile, every credential, every listing CSV), so a mistake stops the
start with a message naming the file, channel or variable to fix, never a value.
The gateway keeps no state of its own: killed at any moment, the next start
resyncs every channel from the service.
"""

from __future__ import annotations

import logging
import signal
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import anyio
from nats.js.client import JetStreamContext
from nats.js.errors import BucketNotFoundError
from prometheus_client import CollectorRegistry, start_http_server

from invsync.errors import InvsyncError
from invsync.gateway.config import ChannelConfig, load_channels
from invsync.gateway.connector import Connector
from invsync.gateway.listings import CsvListings, KvListings, ListingSource, read_listing_csv
from invsync.gateway.metrics import GatewayMetrics
from invsync.gateway.platforms import profile_factory
from invsync.gateway.platforms.base import Profile
from invsync.gateway.secrets import CredentialError, RedactSecrets, Secret
from invsync.service.config import ConnectionOptions
from invsync.service.connection import connect
from invsync.service.subjects import Subjects

__all__ = ["GatewayConfig", "GatewaySetupError", "prepare", "run_gateway"]

log = logging.getLogger("invsync.gateway")

# A platform request that takes longer than this has failed (and is retried).
HTTP_TIMEOUT_S = 30.0


class GatewaySetupError(InvsyncError):
    """The gateway cannot start as configured; the message says what to fix."""


@dataclass(frozen=True)
class GatewayConfig:
    """One gateway instance; defaults are the documented CLI defaults. `channels`
    limits it to some of the file's channels (several instances can split a file)."""

    channels_path: Path
    connection: ConnectionOptions = field(default_factory=ConnectionOptions)
    prefix: str = "inv"
    channels: tuple[str, ...] = ()
    metrics_port: int | None = 9465
    metrics_addr: str = "127.0.0.1"
    csv_poll_s: float = 2.0


@dataclass(frozen=True)
class Prepared:
    """A channel ready to connect: its settings, profile and credentials."""

    channel: ChannelConfig
    profile: Profile
    secrets: dict[str, Secret]
    base: Path


def prepare(config: GatewayConfig) -> list[Prepared]:
    """Load and check everything a start needs; GatewaySetupError says what is wrong."""
    try:
        loaded = load_channels(config.channels_path)
    except InvsyncError as exc:
        raise GatewaySetupError(str(exc)) from None
    known = {channel.id for channel in loaded.channels}
    unknown = [name for name in config.channels if name not in known]
    if unknown:
        raise GatewaySetupError(
            f"{config.channels_path}: no channel {', '.join(unknown)} (it has {', '.join(sorted(known))})"
        )
    chosen = [c for c in loaded.channels if not config.channels or c.id in config.channels]
    return [_prepare_one(channel, loaded.base) for channel in chosen]


def _prepare_one(channel: ChannelConfig, base: Path) -> Prepared:
    try:
        factory = profile_factory(channel.platform)
    except LookupError as exc:
        raise GatewaySetupError(f"channel {channel.id}: {exc}") from None
    try:
        secrets = channel.secrets(base)
    except CredentialError as exc:
        raise GatewaySetupError(str(exc)) from None
    try:
        profile = factory(channel.settings(secrets))
    except ValueError as exc:
        raise GatewaySetupError(f"channel {channel.id} ({channel.platform}): {exc}") from None
    if channel.listings_bucket is None:
        try:
            read_listing_csv(channel.listings_path(base), profile.id_fields)
        except InvsyncError as exc:
            raise GatewaySetupError(f"channel {channel.id}: {exc}") from None
    return Prepared(channel, profile, secrets, base)


async def run_gateway(
    config: GatewayConfig,
    *,
    ready: anyio.Event | None = None,
    stop: anyio.Event | None = None,
    registry: CollectorRegistry | None = None,
    handle_signals: bool = False,
) -> None:
    """Run every channel's connector until `stop` is set (or SIGTERM / SIGINT)."""
    prepared = prepare(config)
    # Every handler of the process: a credential echoed anywhere is logged redacted.
    redaction = RedactSecrets(s for item in prepared for s in item.secrets.values())
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(redaction)
    try:
        await _serve(
            config, prepared, GatewayMetrics(registry), stop or anyio.Event(), ready, handle_signals
        )
    finally:
        log.info("gateway stopped")
        for handler in handlers:
            handler.removeFilter(redaction)


async def _serve(
    config: GatewayConfig,
    prepared: list[Prepared],
    metrics: GatewayMetrics,
    stop: anyio.Event,
    ready: anyio.Event | None,
    handle_signals: bool,
) -> None:
    nc = await connect(config.connection)
    server = None
    try:
        await _check_buckets(prepared, nc.jetstream())
        if config.metrics_port is not None:
            server, _ = start_http_server(
                config.metrics_port, addr=config.metrics_addr, registry=metrics.registry
            )
        timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            anyio.create_task_group() as tasks,
        ):

            async def stop_when_asked() -> None:
                await stop.wait()
                tasks.cancel_scope.cancel()

            # Listening from the start: a stop during the first resyncs is a stop too.
            tasks.start_soon(stop_when_asked)
            if handle_signals:
                tasks.start_soon(_stop_on_signals, stop)
            for item in prepared:
                channel = item.channel
                connector = Connector(
                    channel.id,
                    nc,
                    Subjects(config.prefix),
                    item.profile,
                    http,
                    _listing_source(item, nc.jetstream(), config.csv_poll_s),
                    metrics.channel(channel.id),
                    secrets=item.secrets,
                )
                await tasks.start(connector.run)
                log.info("channel %s (%s) connected", channel.id, channel.platform)
            if ready is not None:
                ready.set()
    finally:
        await nc.close()
        if server is not None:
            server.shutdown()


async def _check_buckets(prepared: list[Prepared], js: JetStreamContext) -> None:
    """A `kv:` listing map must exist before its channel starts: the gateway reads it,
    the catalog side creates and fills it."""
    for item in prepared:
        bucket = item.channel.listings_bucket
        if bucket is None:
            continue
        try:
            await js.key_value(bucket)
        except BucketNotFoundError:
            raise GatewaySetupError(
                f"channel {item.channel.id}: KV bucket {bucket} does not exist "
                f"(create it, e.g. `nats kv add {bucket}`, and put the listings in it)"
            ) from None


def _listing_source(item: Prepared, js: JetStreamContext, poll_s: float) -> ListingSource:
    channel = item.channel
    if channel.listings_bucket is not None:
        return KvListings(js, channel.listings_bucket, channel.id, item.profile.id_fields)
    return CsvListings(channel.listings_path(item.base), item.profile.id_fields, poll_s)


async def _stop_on_signals(stop: anyio.Event) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("signal %s: stopping", signal.Signals(signum).name)
            stop.set()
            return
