"""The service's life: start (snapshot + replay), serve, and stop cleanly.

One anyio task group: the consume loop (fetch → apply → flush → snapshot) runs
in the foreground; the clock, the feed monitor, request handlers and signal
handling run beside it. Stopping finishes the batch in hand, flushes, writes a
snapshot and drains the connection.
"""

from __future__ import annotations

import gc
import logging
import signal
import time
from importlib.metadata import version
from typing import TYPE_CHECKING

import anyio
from nats.aio.client import Client
from nats.js import JetStreamContext
from prometheus_client import CollectorRegistry, start_http_server

from invsync.errors import PolicyError, SnapshotError
from invsync.policy import Policy
from invsync.service import natsclient
from invsync.service.admin import AT_START, Admin
from invsync.service.applier import Applier
from invsync.service.channel_query import ChannelQueryServer
from invsync.service.clock import run_clock
from invsync.service.config import ServiceConfig
from invsync.service.connection import connect, flush_all
from invsync.service.consumer import LogReader
from invsync.service.depletion import DepletionSampler
from invsync.service.feeds import FeedMonitor
from invsync.service.metrics import Metrics
from invsync.service.outbox import Outbox
from invsync.service.pipeline import ConsumeLoop
from invsync.service.publisher import Publisher
from invsync.service.push_lag import PushLags
from invsync.service.reservations import ReservationGateway
from invsync.service.snapshots import (
    DirectorySnapshotStore,
    ObjectStoreSnapshotStore,
    Snapshot,
    SnapshotStore,
)
from invsync.service.stream import ensure_stream
from invsync.service.subjects import Subjects
from invsync.service.votes import VoteWriter

if TYPE_CHECKING:
    from invsync.engine import Engine

log = logging.getLogger("invsync.service")


def snapshot_store(config: ServiceConfig, js: JetStreamContext) -> SnapshotStore:
    """Where snapshots go; each partition keeps its own (directory or bucket `p<k>`)."""
    part = f"p{config.partition}" if config.partitions > 1 else None
    if config.state_dir is not None:
        directory = config.state_dir / part if part else config.state_dir
        return DirectorySnapshotStore(directory, config.snapshots_kept)
    bucket = f"{config.stream}_SNAPSHOTS" + (f"_{part.upper()}" if part else "")
    return ObjectStoreSnapshotStore(js, bucket, config.snapshots_kept)


def new_engine(
    engine_type: type[Engine], policy: Policy, config: ServiceConfig, data: bytes | None = None
) -> Engine:
    """The engine of this instance's partition, fresh or from snapshot bytes."""
    if config.partitions == 1:  # as before partitions: any engine type will do
        return engine_type(policy) if data is None else engine_type.restore(policy, data)
    k, n = config.partition, config.partitions
    if data is None:
        return engine_type(policy, partition=k, partitions=n)
    return engine_type.restore(policy, data, partition=k, partitions=n)


async def restore(
    store: SnapshotStore,
    file_policy: Policy,
    engine_type: type[Engine],
    config: ServiceConfig,
) -> tuple[Engine, Snapshot | None]:
    """The engine at the newest good snapshot, or a fresh one on the file's policy."""
    started = time.perf_counter()
    snapshot = await store.load_newest()
    if snapshot is not None:
        try:
            policy = Policy.from_toml(snapshot.policy_text, snapshot.policy_source)
            engine = new_engine(engine_type, policy, config, snapshot.engine)
            log.info(
                "restored snapshot at stream sequence %d (%.1f MB) in %.2f s",
                snapshot.stream_sequence,
                len(snapshot.engine) / 1e6,
                time.perf_counter() - started,
            )
            return engine, snapshot
        except (SnapshotError, PolicyError, ValueError) as exc:
            log.warning(
                "snapshot at %d unusable, replaying from the start: %s",
                snapshot.stream_sequence,
                exc,
            )
    return new_engine(engine_type, file_policy, config), None


def settle_heap() -> None:
    """What start-up and replay built (policy, name tables, modules) lives as long as
    the service: keep it out of every later collection, so a collection during a
    burst walks only the burst's own objects."""
    gc.collect()
    gc.freeze()


class Service:
    """One running instance; `run()` returns after a stop request, state saved."""

    def __init__(
        self,
        config: ServiceConfig,
        registry: CollectorRegistry | None = None,
        engine_type: type[Engine] | None = None,
    ) -> None:
        if engine_type is None:
            from invsync.engine import Engine

            engine_type = Engine
        self.engine_type = engine_type
        self.config = config
        self.subjects = Subjects(config.prefix)
        self.metrics = Metrics(registry)
        self.stop_requested = anyio.Event()
        self._admin: Admin | None = None
        self._reload_pending = False

    def request_stop(self) -> None:
        self.stop_requested.set()

    async def run(self, ready: anyio.Event | None = None, handle_signals: bool = False) -> None:
        if not handle_signals:
            await self._run(ready)
            return
        # Signals are handled from the start: a SIGTERM during the replay stops
        # it, and the stop still flushes and snapshots what was applied.
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._on_signals)
            try:
                await self._run(ready)
            finally:
                tg.cancel_scope.cancel()

    async def _run(self, ready: anyio.Event | None) -> None:
        config = self.config
        file_policy = Policy.load(config.policy_path)
        horizon = file_policy.document.defaults.dedupe_horizon_s
        if horizon < config.duplicate_window_s:
            log.warning(
                "%s: dedupe_horizon_s %d is shorter than the stream's duplicate window "
                "(%.0f s): an event re-sent in between would apply twice",
                config.policy_path,
                horizon,
                config.duplicate_window_s,
            )
        missing = natsclient.missing_internals()
        if missing:
            log.warning(
                "nats-py %s lacks %s (checked with nats-py%s): the fast lane and one-write "
                "publishes are off, the service runs slower",
                version("nats-py"),
                ", ".join(missing),
                natsclient.TESTED_WITH,
            )
        nc = await connect(config.connection)
        try:
            js = nc.jetstream()
            await ensure_stream(js, config.stream, self.subjects, config.duplicate_window_s)
            store = snapshot_store(config, js)
            engine, snapshot = await restore(store, file_policy, self.engine_type, config)
            await self._serve(nc, js, store, engine, snapshot, file_policy, ready)
        finally:
            if not nc.is_closed:
                await nc.drain()

    async def _serve(
        self,
        nc: Client,
        js: JetStreamContext,
        store: SnapshotStore,
        engine: Engine,
        snapshot: Snapshot | None,
        file_policy: Policy,
        ready: anyio.Event | None,
    ) -> None:
        config = self.config
        metrics = self.metrics
        metrics.declare_channels(engine.policy.channels, engine.policy.tiers)
        outbox = Outbox()
        push_lags = PushLags()
        publisher = Publisher(
            nc,
            self.subjects,
            metrics,
            outbox,
            snapshot.channel_seqs if snapshot else None,
            ceilings=await store.load_ceilings(),
            save_ceilings=store.save_ceilings,
            push_lags=push_lags,
            partition=config.partition,
        )
        applier = Applier(
            engine,
            self.subjects,
            metrics,
            outbox,
            audit=config.publish_audit,
            route_frames=publisher.takes_frames,
            partition=config.partition,
            partitions=config.partitions,
        )
        reader = LogReader(js, config.stream, self.subjects)
        await reader.open(snapshot.stream_sequence if snapshot else 0)
        votes = VoteWriter(js, self.subjects) if config.partitions > 1 else None
        loop = ConsumeLoop(config, reader, applier, publisher, store, engine, votes)

        settle_heap()
        await loop.catch_up(
            (await js.stream_info(config.stream)).state.last_seq, self.stop_requested
        )
        if self.stop_requested.is_set():
            try:
                await loop.finish()
            finally:
                await reader.close()
            return
        log.info("caught up at stream sequence %d", reader.last_sequence)
        settle_heap()

        metrics_server = None
        if config.metrics_port is not None:
            metrics_server, _ = start_http_server(
                config.metrics_port, addr=config.metrics_addr, registry=metrics.registry
            )
        admin = self._admin = Admin(
            nc, js, self.subjects, engine, (config.partition, config.partitions)
        )
        gateway = ReservationGateway(nc, js, self.subjects, metrics, lambda: engine.policy.channels)
        feeds = FeedMonitor(
            nc, self.subjects, engine, metrics, outbox, push_lags, partition=config.partition
        )
        channel_query = ChannelQueryServer(
            nc, self.subjects, engine, publisher, (config.partition, config.partitions)
        )
        depletion = DepletionSampler(engine, metrics, publisher.touched)
        try:
            async with anyio.create_task_group() as tg:
                await admin.start()
                await channel_query.start()
                await gateway.start(tg)
                await feeds.start()
                tg.start_soon(run_clock, js, self.subjects, config.tick_s, push_lags)
                tg.start_soon(feeds.run)
                tg.start_soon(depletion.run)
                if self._reload_pending:  # a SIGHUP arrived during start-up
                    await admin.reload_file(config.policy_path)
                elif engine.policy.text != file_policy.text:
                    # The file changed while we were down: switch through the log.
                    refusal = await admin.submit_policy(
                        file_policy.text, file_policy.source, None, AT_START
                    )
                    if refusal is not None:
                        log.error("policy file not applied, the old one runs: %s", refusal)
                # Subscriptions registered, opening quantities out, before anyone is told we serve.
                await flush_all(nc)
                if ready is not None:
                    ready.set()
                await loop.run(self.stop_requested)
                await gateway.stop()
                await admin.stop()
                await channel_query.stop()
                await feeds.stop()
                tg.cancel_scope.cancel()
            await loop.finish()
        finally:
            await reader.close()
            if metrics_server is not None:
                metrics_server.shutdown()

    async def _on_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async for signum in signals:
                if signum == signal.SIGHUP:
                    if self._admin is None:
                        log.info("SIGHUP during start-up: reloading once serving")
                        self._reload_pending = True
                        continue
                    log.info("SIGHUP: reloading %s", self.config.policy_path)
                    await self._admin.reload_file(self.config.policy_path)
                else:
                    log.info("signal %d: stopping", signum)
                    self.request_stop()


async def run_service(
    config: ServiceConfig,
    *,
    ready: anyio.Event | None = None,
    stop: anyio.Event | None = None,
    registry: CollectorRegistry | None = None,
    handle_signals: bool = False,
    engine_type: type[Engine] | None = None,
) -> None:
    """Run the service in-process until `stop` is set (or a signal, with handle_signals).

    `ready` is set once the log is replayed and requests are being served.
    """
    service = Service(config, registry, engine_type)
    if stop is None:
        await service.run(ready, handle_signals)
        return

    async def stop_when_asked() -> None:
        await stop.wait()
        service.request_stop()

    async with anyio.create_task_group() as tg:
        tg.start_soon(stop_when_asked)
        await service.run(ready, handle_signals)
        tg.cancel_scope.cancel()
