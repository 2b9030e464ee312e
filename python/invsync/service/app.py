"""The service's life: start (snapshot + replay), follow or lead, and stop cleanly.

One anyio task group: the consume loop (fetch → apply → flush → snapshot) runs
in the foreground, the partition's leadership (leadership.py) beside it. Each
time this process wins the lease, a `LeaderTerm` starts the clock, the feed
monitor and the request handlers; each time it loses it, they stop and the
process follows the log again, publishing nothing. Stopping finishes the batch
in hand, flushes, writes a snapshot (a leader), releases the lease and drains
the connection.
"""

from __future__ import annotations

import gc
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskGroup
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.kv import KeyValue
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
from invsync.service.leadership import Leadership, holder_id, open_leases
from invsync.service.logwriter import Fenced, LogWriter
from invsync.service.metrics import Metrics
from invsync.service.outbox import Outbox
from invsync.service.partition_count import MissingResizeSnapshot, check_partitions
from invsync.service.pipeline import ConsumeLoop
from invsync.service.publisher import Publisher
from invsync.service.push_lag import PushLags
from invsync.service.reservations import ReservationGateway
from invsync.service.snapshots import Snapshot, SnapshotStore, partition_store
from invsync.service.stream import ensure_stream
from invsync.service.subjects import Subjects
from invsync.service.votes import VoteWriter

if TYPE_CHECKING:
    from invsync.engine import Engine

log = logging.getLogger("invsync.service")


def snapshot_store(config: ServiceConfig, js: JetStreamContext) -> SnapshotStore:
    """Where the partition's leader keeps its snapshots (`partition_store`)."""
    return partition_store(
        js, config.stream, config.state_dir, config.partition, config.snapshots_kept
    )


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
    resized_at: int = 0,
    resize_store: SnapshotStore | None = None,
) -> tuple[Engine, Snapshot | None]:
    """The engine at the newest good snapshot of this partition, or a fresh one on the
    file's policy. After a resize at stream sequence `resized_at` (> 0) the snapshot
    must be at or after it: the log before it was applied under another count. When
    `store` has none, `resize_store` may: a resize that could not reach this
    process's volume writes to the stream's bucket."""
    started = time.perf_counter()
    # Only this partition's share of the SKUs: another count's snapshot would serve
    # some SKUs twice and others not at all.
    snapshot = await store.load_newest(config.sku_share)
    if snapshot is not None and snapshot.stream_sequence < resized_at:
        snapshot = None  # from before the resize
    if snapshot is None and resized_at and resize_store is not None:
        snapshot = await resize_store.load_newest(config.sku_share)
        if snapshot is not None and snapshot.stream_sequence < resized_at:
            snapshot = None
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
            log.warning("snapshot at %d unusable: %s", snapshot.stream_sequence, exc)
    if resized_at:
        k, n = config.sku_share
        raise MissingResizeSnapshot(
            f"partition {k} of {n} has no usable snapshot at or after stream sequence "
            f"{resized_at}, where `invsync partitions resize` moved the state to {n} "
            "partitions; the log before it was applied under another count, and replaying "
            "it under this one would decide its reservations again, differently. Start "
            "this partition with the snapshot store the resize wrote to (its --state-dir "
            "as --state, or the stream's object store bucket), or restore that store from "
            "a backup (docs/scaling.md, 'Changing the number of partitions')"
        )
    return new_engine(engine_type, file_policy, config), None


def settle_heap() -> None:
    """What start-up and replay built (policy, name tables, modules) lives as long as
    the service: keep it out of every later collection, so a collection during a
    burst walks only the burst's own objects."""
    gc.collect()
    gc.freeze()


class LeaderTerm:
    """What only the partition's leader runs: request handlers, the clock, the feed
    monitor. Started on each win of the lease, stopped on each loss."""

    def __init__(
        self,
        service: Service,
        nc: Client,
        writer: LogWriter,
        engine: Engine,
        publisher: Publisher,
        metrics: Metrics,
        push_lags: PushLags,
        file_policy: Policy,
    ) -> None:
        self.service = service
        self.nc = nc
        self.writer = writer
        self.engine = engine
        self.publisher = publisher
        self.metrics = metrics
        self.push_lags = push_lags
        # A policy file that differs from the log's policy at start changed while the
        # service was down: the first term switches to it, through the log, once.
        self._file_policy_pending = engine.policy.text != file_policy.text
        self.file_policy = file_policy
        self._stops: list[Callable[[], Awaitable[None]]] = []

    async def start(self, tg: TaskGroup) -> None:
        service, nc, engine, publisher = self.service, self.nc, self.engine, self.publisher
        subjects, config, metrics = service.subjects, service.config, self.metrics
        partition = config.sku_share
        admin = Admin(nc, self.writer, subjects, engine, partition)
        gateway = ReservationGateway(
            nc, self.writer, subjects, metrics, lambda: engine.policy.channels
        )
        feeds = FeedMonitor(
            nc,
            subjects,
            engine,
            metrics,
            publisher.outbox,
            self.push_lags,
            partition=partition[0],
        )
        channel_query = ChannelQueryServer(nc, subjects, engine, publisher, partition)
        depletion = DepletionSampler(engine, metrics, publisher.touched)
        self._stops = [gateway.stop, admin.stop, channel_query.stop, feeds.stop]
        await admin.start()
        await channel_query.start()
        await gateway.start(tg)
        await feeds.start()
        tg.start_soon(run_clock, self.writer, subjects, config.tick_s, self.push_lags)
        tg.start_soon(feeds.run)
        tg.start_soon(depletion.run)
        service.admin = admin
        try:
            if service.reload_pending:  # a SIGHUP arrived before this process led
                service.reload_pending = False
                await admin.reload_file(config.policy_path)
            elif self._file_policy_pending and engine.policy.text != self.file_policy.text:
                self._file_policy_pending = False
                refusal = await admin.submit_policy(
                    self.file_policy.text, self.file_policy.source, None, AT_START
                )
                if refusal is not None:
                    log.error("policy file not applied, the old one runs: %s", refusal)
        except Fenced:
            return  # deposed already: the caller stops this term

    async def stop(self) -> None:
        self.service.admin = None
        for stop in self._stops:
            await stop()
        self._stops = []


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
        # The policy handler while this process leads; a SIGHUP before then waits for it.
        self.admin: Admin | None = None
        self.reload_pending = False

    def request_stop(self) -> None:
        self.stop_requested.set()

    async def run(self, ready: anyio.Event | None = None, handle_signals: bool = False) -> None:
        if not handle_signals:
            await self._run(ready)
            return
        # Signals are handled from the start: a SIGTERM during the replay stops it
        # at once. Only a leader snapshots, so a process stopped before it led
        # replays again from the last snapshot on its next start.
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
            stream = await js.stream_info(config.stream)
            leases = await open_leases(js, config.stream, stream.config.num_replicas or 1)
            resized_at = await check_partitions(leases, config.stream, config.partitions)
            store = snapshot_store(config, js)
            # Where a resize writes when it cannot reach a volume: the stream's bucket.
            bucket = (
                partition_store(js, config.stream, None, config.partition, config.snapshots_kept)
                if config.state_dir is not None
                else None
            )
            engine, snapshot = await restore(
                store, file_policy, self.engine_type, config, resized_at, bucket
            )
            await self._serve(nc, js, leases, store, engine, snapshot, file_policy, ready)
        finally:
            if not nc.is_closed:
                await nc.drain()

    async def _serve(
        self,
        nc: Client,
        js: JetStreamContext,
        leases: KeyValue,
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
            partition=config.sku_share[0],
        )
        publisher.follow()  # until this process leads its partition
        writer = LogWriter(js, config.stream)
        stream = await js.stream_info(config.stream)

        async def stream_last() -> int:
            return (await js.stream_info(config.stream)).state.last_seq

        leadership = Leadership(
            nc,
            leases,
            writer,
            self.subjects,
            metrics,
            partition=config.partition,
            holder=holder_id(),
            lease_s=config.lease_s,
            eager=not config.standby,
            applied=lambda: loop.applied_sequence,
            stream_last=stream_last,
        )
        leadership.on_demoted(publisher.follow)
        applier = Applier(
            engine,
            self.subjects,
            metrics,
            outbox,
            audit=config.publish_audit,
            route_frames=publisher.takes_frames,
            on_epoch_entry=leadership.on_epoch_entry,
            publishing=lambda: leadership.leading,
            partition=config.sku_share[0],
            partitions=config.partitions,
        )
        reader = LogReader(js, config.stream, self.subjects)
        await reader.open(snapshot.stream_sequence if snapshot else 0)
        votes = VoteWriter(writer, self.subjects) if config.partitions > 1 else None
        loop = ConsumeLoop(
            config, reader, applier, publisher, store, engine, votes, lambda: leadership.leading
        )

        settle_heap()
        await loop.catch_up(stream.state.last_seq, self.stop_requested)
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
        if config.standby and ready is not None:
            ready.set()  # a standby is ready once it follows the log's tail
        term = LeaderTerm(self, nc, writer, engine, publisher, metrics, push_lags, file_policy)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(leadership.run)
                tg.start_soon(self._lead_when_elected, leadership, term, loop, ready)
                await loop.run(self.stop_requested)
                tg.cancel_scope.cancel()
            await loop.finish()
            await leadership.release(dict(publisher.channel_seqs))
        finally:
            await reader.close()
            if metrics_server is not None:
                metrics_server.shutdown()

    async def _lead_when_elected(
        self,
        leadership: Leadership,
        term: LeaderTerm,
        loop: ConsumeLoop,
        ready: anyio.Event | None,
    ) -> None:
        """Each time this process wins the partition: serve until it loses it."""
        while True:
            while not leadership.leading:
                await leadership.changed()
            term.publisher.lead(leadership.epoch, leadership.handover, leadership.may_publish)
            async with anyio.create_task_group() as tg:
                try:
                    # Handlers first: a connector that sees this leader's first `seq`
                    # resyncs at once, and its channel query must find someone.
                    await term.start(tg)
                    await loop.flush_soon()
                    # Subscriptions registered, opening quantities out, before anyone
                    # is told we serve.
                    await flush_all(term.nc)
                    if ready is not None:
                        ready.set()
                    while leadership.leading:
                        await leadership.changed()
                finally:
                    with anyio.CancelScope(shield=True):
                        await term.stop()
                    tg.cancel_scope.cancel()

    async def _on_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async for signum in signals:
                if signum == signal.SIGHUP:
                    if self.admin is None:
                        log.info("SIGHUP before leading: reloading once serving")
                        self.reload_pending = True
                        continue
                    log.info("SIGHUP: reloading %s", self.config.policy_path)
                    await self.admin.reload_file(self.config.policy_path)
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
