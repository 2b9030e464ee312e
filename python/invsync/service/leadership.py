"""Who leads a partition: a lease in JetStream KV, taken by the most caught-up candidate.

The bucket `<stream>_leaders` holds key `p<k>` = `{holder, epoch}`. The leader
renews it by compare-and-set every `lease_s / 4`; a candidate that sees its
revision unchanged for `lease_s` claims it by compare-and-set on that revision,
with the next epoch, so of two claimants exactly one wins. Candidates publish
their applied stream sequence under `p<k>.cand.<holder>` every period, and one
claims only if no other live candidate has applied more (ties go to the smaller
holder id): the standby that takes over has the least log left to apply.

The lease alone does not keep a deposed leader quiet: a paused process does not
know its lease ran out. The fence is the log's: the new leader appends its epoch
entry to `<prefix>.log.leader.<k>` (expecting the last epoch entry it has seen),
and from then on the server refuses every write of an older leader (logwriter.py).
The new leader serves only once it has applied the log up to its own epoch entry,
so it decides with everything its predecessor logged.

A leader that died (its connection closed) is not waited out for a whole lease:
while it holds the lease it subscribes to `<prefix>.part.<k>.leader`, and a
candidate that sees the lease unrenewed for one period and gets "no responders"
there claims at once. A paused leader's subscription stays, so it is waited out. A leader whose renewal
fails, whose write is refused, or that reads a newer epoch entry for its
partition demotes itself at once and follows the log again.

A leader that stops cleanly releases the lease (holder "") with its last `seq`
per channel, so its successor claims at once and goes on without a `seq` jump.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import anyio
import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from invsync.events import LeaderEpoch, encode_json
from invsync.security.roles import leases_bucket
from invsync.service.consumer import LogEntry
from invsync.service.logwriter import LogWriter
from invsync.service.metrics import Metrics
from invsync.service.subjects import Subjects

log = logging.getLogger("invsync.service")

LEASE_S = 1.0
RENEWALS_PER_LEASE = 4


class Lease(msgspec.Struct, frozen=True, omit_defaults=True):
    """The value of `p<k>`. `holder` "" is a lease released by a clean stop, which
    hands over the channels' last `seq`s."""

    holder: str
    epoch: int
    seqs: dict[str, int] | None = None


class Progress(msgspec.Struct, frozen=True):
    """What a candidate publishes under `p<k>.cand.<holder>`: how far it has applied."""

    applied: int


_LEASE = msgspec.json.Decoder(Lease)
_PROGRESS = msgspec.json.Decoder(Progress)


def holder_id() -> str:
    """This process, as a KV key token: host name and pid."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{socket.gethostname()}-{os.getpid()}")


async def open_leases(js: JetStreamContext, stream: str, replicas: int) -> KeyValue:
    """The lease bucket, created (as replicated as the log) when missing."""
    bucket = leases_bucket(stream)
    try:
        return await js.key_value(bucket)
    except BucketNotFoundError:
        return await js.create_key_value(
            KeyValueConfig(bucket=bucket, history=1, storage=StorageType.FILE, replicas=replicas)
        )


class Leadership:
    """This process's standing in one partition: following, or leading an epoch.

    `run()` renews or campaigns forever; the consume loop reports every epoch
    entry of the partition it applies (`on_epoch_entry`). Role changes wake
    `changed()` waiters; a demotion also runs the `on_demoted` hooks at once,
    before any further await, so nothing more is published.
    """

    def __init__(
        self,
        nc: Client,
        kv: KeyValue,
        writer: LogWriter,
        subjects: Subjects,
        metrics: Metrics,
        *,
        partition: int,
        holder: str,
        lease_s: float,
        eager: bool,
        applied: Callable[[], int],
        stream_last: Callable[[], Awaitable[int]],
    ) -> None:
        """`eager`: claim a lease nobody ever held at once (a process started without
        --standby); a standby waits a whole lease for a leader to show up first.
        `applied()` is the stream sequence the engine reflects, `stream_last()` the log's."""
        self._nc = nc
        self._kv = kv
        self._presence_subject = subjects.leader_presence(partition)
        self._presence: Subscription | None = None
        self._writer = writer
        self._metrics = metrics
        self.partition = partition
        self.holder = holder
        self.lease_s = lease_s
        self._eager = eager
        self._applied = applied
        self._stream_last = stream_last
        self._key = f"p{partition}"
        self._candidate_key = f"p{partition}.cand.{holder}"
        self.leader_subject = subjects.leader_log(partition)
        self.epoch = 0
        self.handover: dict[str, int] | None = None
        self.leading = False  # serving: our epoch entry is applied
        self._claimed = False  # we hold the lease (our epoch entry may not be applied yet)
        self._revision = 0
        self._renewed_at = 0.0
        self._epoch_entry: int | None = None
        self._newest_entry_seen = 0
        # The lease as last read: its revision and when this process first saw it.
        self._watched: tuple[int, float] | None = None
        self._candidates: dict[str, tuple[int, float]] = {}
        self._changed = anyio.Event()
        self._on_demoted: list[Callable[[], None]] = []
        writer.on_fenced(lambda: self.demote("a log write was refused: another leader is newer"))
        metrics.partition_leader.labels(str(partition)).set(0)
        metrics.partition_epoch.labels(str(partition)).set(0)
        metrics.standby_lag.labels(str(partition)).set(0)

    def on_demoted(self, hook: Callable[[], None]) -> None:
        self._on_demoted.append(hook)

    async def changed(self) -> None:
        """Returns after the next change of role."""
        await self._changed.wait()

    def _announce(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()
        label = str(self.partition)
        self._metrics.partition_leader.labels(label).set(1 if self.leading else 0)
        self._metrics.partition_epoch.labels(label).set(self.epoch)
        if self.leading:
            self._metrics.standby_lag.labels(label).set(0)

    def may_publish(self) -> bool:
        """Leading, with the lease renewed within one lease: a process that was paused
        past its lease holds its output until it knows whether it still leads."""
        return self.leading and time.monotonic() - self._renewed_at < self.lease_s

    def on_epoch_entry(self, msg: LogEntry) -> None:
        """An epoch entry applied from the log, in log order."""
        if msg.subject != self.leader_subject:
            return  # another partition's
        self._newest_entry_seen = max(self._newest_entry_seen, msg.stream_seq)
        self._judge_epoch_entries()

    def _judge_epoch_entries(self) -> None:
        """Lead once our epoch entry is applied; step down once a newer one is."""
        if self._epoch_entry is None:
            return
        if self._newest_entry_seen > self._epoch_entry:
            self.demote(f"a newer epoch entry is in the log at {self._newest_entry_seen}")
        elif self._newest_entry_seen == self._epoch_entry and self._claimed and not self.leading:
            self.leading = True
            log.info("leading partition %d in epoch %d", self.partition, self.epoch)
            self._announce()

    def demote(self, why: str) -> None:
        if not self._claimed:
            return
        log.warning(
            "partition %d: no longer the leader (%s); following the log", self.partition, why
        )
        self._claimed = self.leading = False
        self._epoch_entry = None
        self._watched = None
        for hook in self._on_demoted:
            hook()
        self._announce()

    async def run(self) -> None:
        """Renew while leading, campaign while following; forever."""
        period = self.lease_s / RENEWALS_PER_LEASE
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._watch_candidates)
            while True:
                try:
                    await self._show_presence()
                    if self._claimed:
                        await self._renew()
                        if self._claimed and self._epoch_entry is None:
                            await self._fence()
                    else:
                        await self._campaign()
                except NatsError as exc:
                    log.warning("partition %d lease: %r", self.partition, exc)
                await anyio.sleep(period)

    async def _show_presence(self) -> None:
        """Subscribed to the presence subject exactly while holding the lease."""
        if self._claimed and self._presence is None:
            self._presence = await self._nc.subscribe(self._presence_subject, cb=self._present)
        elif not self._claimed and self._presence is not None:
            presence, self._presence = self._presence, None
            await presence.unsubscribe()

    async def _present(self, msg: Msg) -> None:
        if self._claimed and msg.reply:
            await msg.respond(self.holder.encode())

    async def _leader_gone(self, timeout_s: float) -> bool:
        """Whether nobody answers the presence subject: the server says so at once."""
        try:
            await self._nc.request(self._presence_subject, b"", timeout=timeout_s)
        except NoRespondersError:
            return True
        except NatsTimeoutError:
            return False
        return False

    async def release(self, seqs: dict[str, int]) -> None:
        """On a clean stop: the lease free for the next leader at once, with our last seqs."""
        if not self._claimed:
            return
        self._claimed = self.leading = False
        lease = Lease(holder="", epoch=self.epoch, seqs=seqs)
        try:
            await self._kv.update(self._key, encode_json(lease), last=self._revision)
        except NatsError as exc:
            log.warning("lease of partition %d not released (%r): it lapses", self.partition, exc)

    async def _renew(self) -> None:
        lease = Lease(holder=self.holder, epoch=self.epoch)
        try:
            self._revision = await self._kv.update(
                self._key, encode_json(lease), last=self._revision
            )
        except KeyWrongLastSequenceError:
            self.demote("the lease was taken over")
            return
        self._renewed_at = time.monotonic()

    async def _fence(self) -> None:
        """Our epoch entry into the log; the server takes it only after the newest one we
        have applied, so while the log holds one we have not reached yet, try again later."""
        entry = LeaderEpoch(epoch=self.epoch, holder=self.holder, ts=datetime.now(UTC))
        seq = await self._writer.append_epoch_entry(
            self.leader_subject, encode_json(entry), self._newest_entry_seen
        )
        if seq is None:
            # An epoch entry we have not met: one our snapshot covers (met before the
            # restart) counts as seen; a later one, once the log is applied up to it.
            newest = await self._writer.last_sequence_on(self.leader_subject)
            if newest <= self._applied():
                self._newest_entry_seen = max(self._newest_entry_seen, newest)
            return
        if not self._claimed:
            return
        self._epoch_entry = seq
        self._writer.fence_at(self.leader_subject, seq)
        self._judge_epoch_entries()  # the log may have delivered it before its ack came

    async def _campaign(self) -> None:
        applied = self._applied()
        lag = max(0, await self._stream_last() - applied)
        self._metrics.standby_lag.labels(str(self.partition)).set(lag)
        await self._kv.put(self._candidate_key, encode_json(Progress(applied=applied)))
        try:
            entry = await self._kv.get(self._key)
            revision = entry.revision or 0
            lease: Lease | None = _LEASE.decode(entry.value or b"")
        except KeyNotFoundError:
            revision, lease = 0, None
        now = time.monotonic()
        watched = self._watched
        if watched is None or watched[0] != revision:
            watched = self._watched = (revision, now)
        released = lease is not None and lease.holder == ""
        never_held = lease is None and self._eager
        unrenewed = now - watched[1]
        lapsed = unrenewed >= self.lease_s
        period = self.lease_s / RENEWALS_PER_LEASE
        if lease is not None and lease.holder and not lapsed and unrenewed >= period:
            lapsed = await self._leader_gone(period)
        if (released or never_held or lapsed) and self._most_caught_up(applied, now):
            await self._claim(revision, lease)

    def _most_caught_up(self, applied: int, now: float) -> bool:
        for holder, (theirs, seen) in self._candidates.items():
            if holder == self.holder or now - seen >= self.lease_s:
                continue
            if theirs > applied or (theirs == applied and holder < self.holder):
                return False
        return True

    async def _claim(self, revision: int, lease: Lease | None) -> None:
        epoch = lease.epoch + 1 if lease is not None else 0
        value = encode_json(Lease(holder=self.holder, epoch=epoch))
        try:
            if revision:
                self._revision = await self._kv.update(self._key, value, last=revision)
            else:
                self._revision = await self._kv.create(self._key, value)
        except KeyWrongLastSequenceError:
            return  # another candidate was first
        self._renewed_at = time.monotonic()
        self._claimed = True
        self.epoch = epoch
        self.handover = lease.seqs if lease is not None and lease.holder == "" else None
        log.info("partition %d: lease claimed for epoch %d", self.partition, epoch)
        await self._show_presence()
        await self._fence()

    async def _watch_candidates(self) -> None:
        """Keeps `_candidates` current, watching again when the watch cannot start or
        breaks (a NATS node lost): a leadership that dies with it leaves no standby."""
        while True:
            try:
                await self._follow_candidates()
            except NatsError as exc:
                log.warning("partition %d candidates: %r", self.partition, exc)
            await anyio.sleep(self.lease_s / RENEWALS_PER_LEASE)

    async def _follow_candidates(self) -> None:
        """Who follows the partition, how far, seen when: until the watch ends."""
        watcher = await self._kv.watch(f"p{self.partition}.cand.>")
        prefix = len(f"p{self.partition}.cand.")
        async for entry in watcher:
            if entry is None:
                continue  # the end of what was there when the watch began
            holder = entry.key[prefix:]
            if entry.operation in (KV_DEL, KV_PURGE):
                self._candidates.pop(holder, None)
                continue
            try:
                progress = _PROGRESS.decode(entry.value or b"")
            except msgspec.DecodeError:
                continue
            # What was there before the watch began counts from when it was written.
            created: object = entry.created  # nats-py gives the stored time (a datetime)
            age = (
                (datetime.now(UTC) - created).total_seconds()
                if isinstance(created, datetime)
                else 0.0
            )
            self._candidates[holder] = (progress.applied, time.monotonic() - max(0.0, age))
