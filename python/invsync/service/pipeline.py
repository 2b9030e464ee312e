"""The data path as one straight line: fetch → apply → flush → snapshot.

The engine is only ever touched from this loop (and from request handlers on
the same event loop between its awaits), so it needs no locks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio
from nats.errors import Error as NatsError

from invsync.service.applier import Applier
from invsync.service.config import ServiceConfig
from invsync.service.consumer import LogReader
from invsync.service.publisher import Publisher
from invsync.service.snapshots import Snapshot, SnapshotStore
from invsync.service.votes import VoteWriter

if TYPE_CHECKING:
    from invsync.engine import Engine

log = logging.getLogger("invsync.service")

# Messages applied between two chances to flush: ~5 ms of engine work.
APPLY_SLICE = 500
# Votes a standby keeps for when it is promoted: those of the requests still
# undecided are among the latest (a request is decided within
# cross_partition_timeout_s of log time).
HELD_VOTES = 10_000
CATCH_UP_IDLE_S = 1.0
CATCH_UP_FETCH_TIMEOUT_S = 0.05
# At the tail, flushes are at least this far apart: a trickle of events is
# published within about a millisecond, and a busy tail cannot turn into a
# flush (drain, encode, write per channel) for every few events.
TAIL_FLUSH_S = 0.001
# A follower lets the log gather this long between two applies: it publishes
# nothing and answers nobody, so nobody waits for it, and it wakes a few dozen
# times a second instead of for every burst that arrives (a wake costs the event
# loop, a fetch, an apply call and a flush check, on cores the leader needs). Its
# applied position trails the log by at most this much; promoted, it serves only
# once it has applied its own epoch entry, which the log holds after everything.
FOLLOW_GATHER_S = 0.025


class ConsumeLoop:
    """fetch → apply → flush (at once at the tail, else per interval) → snapshot."""

    def __init__(
        self,
        config: ServiceConfig,
        reader: LogReader,
        applier: Applier,
        publisher: Publisher,
        store: SnapshotStore,
        engine: Engine,
        votes: VoteWriter | None = None,
        leading: Callable[[], bool] = lambda: True,
    ) -> None:
        """`leading()`: whether this process leads its partition; only a leader
        writes snapshots (and `seq` ceilings)."""
        self.config = config
        # Partitioned: this partition's votes go to the log before the flush.
        self.votes = votes
        self.leading = leading
        self.reader = reader
        self.applier = applier
        self.publisher = publisher
        self.store = store
        self.engine = engine
        self._flush_interval = config.flush_ms / 1000.0
        self._last_flush = time.monotonic()
        self._dirty = False
        self._flushed = anyio.Event()
        # The stream sequence the engine reflects: what a snapshot records.
        self.applied_sequence = reader.last_sequence
        self._snapshot_sequence = reader.last_sequence
        self._last_snapshot = time.monotonic()

    async def _step(self, timeout_s: float) -> int:
        msgs = await self.reader.fetch(self.config.fetch_batch, timeout_s)
        # A big batch is applied in slices with flushes between, so quantities
        # keep flowing (and requests get answered) while a backlog drains.
        for start in range(0, len(msgs), APPLY_SLICE):
            chunk = msgs[start : start + APPLY_SLICE]
            self.applier.apply_batch(chunk)
            self.applied_sequence = chunk[-1].stream_seq
            self.applier.metrics.stream_sequence.set(self.applied_sequence)
            self._dirty = True
            await self._flush_when_due(at_tail=start + APPLY_SLICE >= len(msgs))
        if not msgs:
            await self._flush_when_due(at_tail=True)
        return len(msgs)

    async def flush_soon(self) -> None:
        """Returns after the loop's next flush, which it does at once even when nothing
        new is applied: a new leader's first quantities go out before it serves."""
        flushed = self._flushed
        self._dirty = True
        await flushed.wait()

    async def _flush_when_due(self, at_tail: bool) -> None:
        # At the log's tail nothing more is waiting to be coalesced: publish now.
        # While a backlog drains, coalesce over the flush interval. A client
        # waiting for its reservation answer is never kept waiting for the
        # interval; quantities ride along with the answer.
        if not self._dirty:
            return
        now = time.monotonic()
        since = now - self._last_flush
        if (
            (at_tail and self.reader.buffered == 0 and since >= TAIL_FLUSH_S)
            or since >= self._flush_interval
            or self.publisher.outbox.replies
            or (self.publisher.outbox.votes and self.leading())
        ):
            await self._flush(now)

    async def _flush(self, now: float) -> None:
        if self.votes is not None and self.publisher.outbox.votes:
            if self.leading():
                await self.votes.append(self.publisher.outbox.take_votes())
            else:
                # A standby writes nothing, but keeps its latest votes: promoted, it
                # appends them (the log keeps the first vote per request and partition).
                del self.publisher.outbox.votes[:-HELD_VOTES]
        try:
            await self.publisher.flush(self.engine)
        except NatsError:
            raise  # the connection's trouble, not a bug: the service restarts on it
        except Exception:  # a bug: what this flush held is lost, the loop goes on
            log.exception("publishing failed")
            self.applier.metrics.internal_errors.labels("flush").inc()
        self._dirty = False
        self._last_flush = now
        self._flushed.set()
        self._flushed = anyio.Event()
        behind = self.applied_sequence - self._snapshot_sequence
        if not self.leading():
            return
        if behind >= self.config.snapshot_every_events or (
            behind > 0 and now - self._last_snapshot >= self.config.snapshot_every_s
        ):
            await self.snapshot()

    async def catch_up(self, target_sequence: int, stop: anyio.Event | None = None) -> None:
        """Replay until the stream position seen at start; quantities go out as usual.

        Returns early when `stop` is set (the caller then finishes: flush, snapshot).
        """
        idle_since = time.monotonic()
        while self.applied_sequence < target_sequence:
            if stop is not None and stop.is_set():
                log.info(
                    "stopping during catch-up at %d of %d", self.applied_sequence, target_sequence
                )
                return
            if await self._step(CATCH_UP_FETCH_TIMEOUT_S):
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > CATCH_UP_IDLE_S:
                # Deliveries lost in a reconnect look like an idle log: ask a
                # fresh consumer. Nothing pending there means the rest of the
                # stream is on subjects that are not ours.
                await self.reader.reopen()
                if await self.reader.undelivered() == 0:
                    log.info(
                        "catch-up ends at %d of %d: the rest is not on our subjects",
                        self.applied_sequence,
                        target_sequence,
                    )
                    break
                idle_since = time.monotonic()
        await self._flush(time.monotonic())

    async def run(self, stop: anyio.Event) -> None:
        # A leader's loop wakes as messages arrive; the time-out only bounds how
        # long pending side output (alerts of the feed monitor) waits.
        while not stop.is_set():
            if not self.leading():
                with anyio.move_on_after(FOLLOW_GATHER_S):
                    await stop.wait()
            await self._step(TAIL_FLUSH_S if self._dirty else self._flush_interval)

    async def finish(self) -> None:
        """After the last batch: everything out, state saved, the seq lease returned
        (a follower has nothing to publish or save)."""
        await self.publisher.flush(self.engine)
        if not self.leading():
            return
        await self.snapshot()
        await self.publisher.retire_lease()

    async def snapshot(self) -> None:
        sequence = self.applied_sequence
        if sequence == self._snapshot_sequence:
            return
        policy = self.engine.policy
        partition, partitions = self.config.sku_share
        snapshot = Snapshot(
            stream_sequence=sequence,
            partition=partition,
            partitions=partitions,
            channel_seqs=dict(self.publisher.channel_seqs),
            policy_text=policy.text,
            policy_source=policy.source,
            # The core copies its state with the GIL released: the event loop
            # keeps reading the socket, appending reservation requests and
            # answering pings meanwhile. Nothing is applied until it returns
            # (this loop is the only writer), so the bytes are at `sequence`.
            engine=await anyio.to_thread.run_sync(self.engine.snapshot),
        )
        await self.store.save(snapshot)
        self._snapshot_sequence = sequence
        self._last_snapshot = time.monotonic()
        log.info("snapshot at stream sequence %d", sequence)
