"""Changing how many partitions share the SKUs, offline, at a log position, losing nothing.

Replaying the log under the new count would decide again what the old partitions
decided: a reservation spanning partitions was decided by their votes and time-outs,
which another count never sees. So the state is moved, not rebuilt:
1. no allocator of the stream may run: no lease or candidate entry is renewed while
   we watch, and no lease holder answers its presence subject;
2. each old partition's state is brought to the stream's last sequence S: its newest
   snapshot (or nothing, when the stream still holds everything before S) plus the
   log after it, applied in-process as the service applies it, publishing nothing;
3. a reservation spanning partitions that the log has not decided by S is refused:
   its votes or its time-out are still to come, from the old partitions;
4. partition k of the new count is built from the old states (`Engine.split`), and
   its snapshot written at S where partition k keeps its snapshots;
5. the new count is recorded with S (partition_count.py: `invsync serve` refuses any
   other count, and a new partition without a snapshot at or after S), and the old
   partitions' other snapshots are retired. The `seq` ceilings stay, and each new
   snapshot carries the last `seq`s its partition index published, so no `seq` of a
   (channel, partition) is used twice.
Interrupted before 5, nothing is recorded: the old count still runs from its own
snapshots (a restore skips another count's), and the resize can run again.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import msgspec
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import StreamInfo
from nats.js.errors import BucketNotFoundError, NoKeysError, NotFoundError
from nats.js.kv import KeyValue

from invsync.engine import Engine
from invsync.errors import InvsyncError, PolicyError, SnapshotError
from invsync.policy import Policy
from invsync.security.roles import leases_bucket
from invsync.service.applier import Applier
from invsync.service.consumer import LogReader
from invsync.service.leadership import Lease
from invsync.service.metrics import Metrics
from invsync.service.outbox import Outbox
from invsync.service.partition_count import record_partitions, recorded_partitions
from invsync.service.snapshots import (
    Snapshot,
    partition_store,
    snapshot_name,
)
from invsync.service.subjects import Subjects

_LEASE_KEY = re.compile(r"^p(\d+)$")
# Partition 0's snapshots keep the names of a service without partitions.
_SNAPSHOT_OBJECT = re.compile(r"^(p\d+-)?snapshot-\d+\.bin$")
_LEASE = msgspec.json.Decoder(Lease)
# Messages per fetch while an old partition replays its tail.
REPLAY_BATCH = 5_000
# How long the log may stay silent before we ask whether the rest is on our subjects.
REPLAY_IDLE_S = 1.0
SNAPSHOTS_KEPT = 3


class ResizeRefused(InvsyncError):
    """Resizing now would lose state; the message says what to do instead."""


@dataclass
class Resized:
    """What a resize did, for the operator."""

    stream: str
    from_partitions: int
    to_partitions: int
    # The stream sequence the new partitions' snapshots are at.
    at_sequence: int
    written: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)


def check_history(info: StreamInfo, stream: str, partition: int, after: int) -> None:
    """Old partition `partition` replays from `after` + 1: that message must still be there."""
    state = info.state
    dropped = state.first_seq > after + 1 or (after == 0 and bool(state.num_deleted))
    if dropped:
        start = f"its snapshot at sequence {after}" if after else "the start (it has no snapshot)"
        raise ResizeRefused(
            f"old partition {partition} must replay stream {stream} from {start}, but the "
            f"stream now starts at sequence {state.first_seq} ({state.num_deleted or 0} "
            "deleted inside): a purge or a max_age / max_msgs / max_bytes limit dropped "
            "messages it never applied. Start the old partitions until each has written a "
            "snapshot (they do so on a clean stop), or restore the stream from a backup, "
            "then resize again"
        )


async def live_allocators(
    nc: Client, leases: KeyValue, subjects: Subjects, watch_s: float
) -> list[str]:
    """Why an allocator may still run: a lease or candidate entry renewed within
    `watch_s` (longer than a lease), or a lease holder that answers or may be paused."""
    before = await _revisions(leases)
    found: list[str] = []
    for key in before:
        matched = _LEASE_KEY.match(key)
        if matched is None:
            continue
        entry = await leases.get(key)
        lease = _LEASE.decode(entry.value or b"")
        if not lease.holder:
            continue  # released by a clean stop
        presence = subjects.leader_presence(int(matched.group(1)))
        try:
            await nc.request(presence, b"", timeout=watch_s)
            found.append(f"{lease.holder} leads partition {matched.group(1)}")
        except NoRespondersError:
            pass  # its connection is gone: it died without releasing the lease
        except NatsTimeoutError:
            found.append(
                f"{lease.holder} holds partition {matched.group(1)}'s lease and does not "
                "answer: it may be paused"
            )
    await anyio.sleep(watch_s)
    after = await _revisions(leases)
    for key, revision in after.items():
        if before.get(key) != revision:
            found.append(f"lease entry {key} was written while we watched")
    return found


async def _revisions(leases: KeyValue) -> dict[str, int]:
    try:
        keys = await leases.keys()
    except NoKeysError:
        return {}
    revisions = {}
    for key in keys:
        if key == "partitions":
            continue
        try:
            revisions[key] = (await leases.get(key)).revision or 0
        except NotFoundError:
            continue  # deleted in between
    return revisions


async def released_seqs(leases: KeyValue, partition: int) -> dict[str, int]:
    """The last `seq`s a clean stop of partition `partition`'s leader handed over."""
    try:
        entry = await leases.get(f"p{partition}")
    except NotFoundError:
        return {}
    try:
        return dict(_LEASE.decode(entry.value or b"").seqs or {})
    except msgspec.DecodeError:
        return {}


async def replay(
    js: JetStreamContext, stream: str, subjects: Subjects, engine: Engine, after: int, through: int
) -> None:
    """Applies the log after `after` up to `through` to `engine`, as the service's
    consume loop does (`Applier`), publishing nothing."""
    partition, partitions = engine.partition
    applier = Applier(
        engine, subjects, Metrics(), Outbox(), partition=partition, partitions=partitions
    )
    reader = LogReader(js, stream, subjects)
    await reader.open(after)
    applied = after
    idle_since = time.monotonic()
    try:
        while applied < through:
            msgs = [m for m in await reader.fetch(REPLAY_BATCH) if m.stream_seq <= through]
            if msgs:
                applier.apply_batch(msgs)
                applier.outbox.take()
                applier.outbox.take_votes()
                applied = msgs[-1].stream_seq
                idle_since = time.monotonic()
                continue
            if reader.last_sequence >= through:
                break  # the rest up to `through` is not on our subjects
            if time.monotonic() - idle_since > REPLAY_IDLE_S:
                await reader.reopen()
                if await reader.undelivered() == 0:
                    break  # nothing of ours is left before `through`
                idle_since = time.monotonic()
    finally:
        await reader.close()


async def old_partition_at(
    js: JetStreamContext,
    info: StreamInfo,
    stream: str,
    subjects: Subjects,
    file_policy: Policy,
    state_dir: Path | None,
    share: tuple[int, int],
    through: int,
) -> tuple[Engine, Snapshot | None]:
    """Old partition `share`'s state at stream sequence `through`: its newest snapshot
    plus the log after it; and that snapshot."""
    k, n = share
    store = partition_store(js, stream, state_dir, k, SNAPSHOTS_KEPT)
    snapshot = await store.load_newest(share)
    if snapshot is not None and snapshot.stream_sequence > through:
        raise ResizeRefused(
            f"old partition {k}'s snapshot is at stream sequence {snapshot.stream_sequence}, "
            f"past the stream's last message {through}: is this the right stream or store?"
        )
    after = 0 if snapshot is None else snapshot.stream_sequence
    check_history(info, stream, k, after)
    try:
        if snapshot is None:
            engine = Engine(file_policy, partition=k, partitions=n)
        else:
            policy = Policy.from_toml(snapshot.policy_text, snapshot.policy_source)
            engine = Engine.restore(policy, snapshot.engine, partition=k, partitions=n)
    except (SnapshotError, PolicyError) as exc:
        raise ResizeRefused(
            f"old partition {k}'s snapshot at {after} cannot be restored ({exc}): remove it "
            "so the partition replays from its previous one, then resize again"
        ) from None
    await replay(js, stream, subjects, engine, after, through)
    return engine, snapshot


def refuse_undecided(olds: list[Engine], timeout_s: int) -> None:
    """Refuses when a reservation spanning partitions still waits for votes at S."""
    undecided = sorted({r for e in olds for r in e.undecided_requests()})
    if undecided:
        raise ResizeRefused(
            f"{len(undecided)} reservation(s) spanning partitions are undecided at the end "
            f"of the log (request {undecided[0]!r}, ...): their votes, or their time-out "
            f"{timeout_s} s after they were made, are still to come from the old partitions. "
            "Start the old partitions again for at least cross_partition_timeout_s "
            f"({timeout_s} s) with no reservation clients (or until they answer), stop "
            "them, and resize again"
        )


def split_policy(olds: list[Engine]) -> Policy:
    """The policy every old partition applies at S (the log's, the same for all)."""
    policy = olds[0].policy
    for k, engine in enumerate(olds):
        if engine.policy.text != policy.text:
            raise ResizeRefused(
                f"old partitions 0 and {k} apply different policies at the end of the log "
                f"({policy.source} and {engine.policy.source}): one of them restored a "
                "snapshot of another stream or store. Check --state-dir and --stream"
            )
    return policy


def retire_directory_snapshots(state_dir: Path, keep: set[Path]) -> list[str]:
    """Every partition's snapshots under `state_dir` (partition 0's in it, partition k's
    in partition-<k>/) but `keep`; the `seq` ceilings stay, so no `seq` is used twice."""
    found = [*state_dir.glob("snapshot-*.bin"), *state_dir.glob("partition-*/snapshot-*.bin")]
    retired = [path for path in found if path not in keep]
    for path in retired:
        path.unlink()
    return sorted(str(path) for path in retired)


async def retire_object_snapshots(js: JetStreamContext, stream: str, keep: set[str]) -> list[str]:
    """Every partition's snapshots in the stream's snapshot bucket but `keep`."""
    try:
        store = await js.object_store(f"{stream}_SNAPSHOTS")
        infos = await store.list()
    except (BucketNotFoundError, NotFoundError):
        return []
    names = sorted(
        i.name
        for i in infos
        if i.name and not i.deleted and _SNAPSHOT_OBJECT.match(i.name) and i.name not in keep
    )
    for name in names:
        await store.delete(name)
    return names


def written_name(state_dir: Path | None, partition: int, sequence: int) -> str:
    """Where `partition_store` keeps partition `partition`'s snapshot at `sequence`."""
    name = snapshot_name(sequence)
    if state_dir is None:
        return f"p{partition}-{name}" if partition else name
    return str(state_dir / f"partition-{partition}" / name if partition else state_dir / name)


async def resize(
    nc: Client,
    stream: str,
    prefix: str,
    policy: Policy,
    from_partitions: int,
    to_partitions: int,
    state_dir: Path | None,
    watch_s: float,
) -> Resized:
    """Move the state of `from_partitions` partitions into `to_partitions` at the log's
    end and record the new count, or refuse with why."""
    if from_partitions < 1 or to_partitions < 1:
        raise ResizeRefused("--from and --to must be at least 1")
    js = nc.jetstream()
    subjects = Subjects(prefix)
    try:
        await js.stream_info(stream)
        leases = await js.key_value(leases_bucket(stream))
    except NotFoundError:
        raise ResizeRefused(
            f"stream {stream} or its lease bucket does not exist: start `invsync serve "
            f"--partitions {to_partitions}` directly, there is nothing to resize"
        ) from None
    recorded = await recorded_partitions(leases)
    if recorded is not None and recorded != from_partitions:
        raise ResizeRefused(
            f"stream {stream} is served by {recorded} partition(s), not --from "
            f"{from_partitions}: run with --from {recorded}"
        )
    running = await live_allocators(nc, leases, subjects, watch_s)
    if running:
        raise ResizeRefused(
            "allocators of stream "
            f"{stream} may still run ({'; '.join(running)}): stop every allocator, leaders "
            "and standbys, of every partition, then run this again"
        )
    # Nothing appends service entries (reservations, votes, ticks) any more; producers'
    # events after S are applied by the new partitions.
    info = await js.stream_info(stream)
    at = info.state.last_seq
    olds: list[Engine] = []
    seqs: list[dict[str, int]] = []
    for k in range(from_partitions):
        share = (k, from_partitions)
        engine, snapshot = await old_partition_at(
            js, info, stream, subjects, policy, state_dir, share, at
        )
        olds.append(engine)
        seqs.append(dict(snapshot.channel_seqs) if snapshot is not None else {})
    moved = split_policy(olds)
    refuse_undecided(olds, moved.document.defaults.cross_partition_timeout_s)
    images = [engine.snapshot() for engine in olds]
    del olds  # their state is in `images` now: not held twice while the new ones build
    done = Resized(stream, from_partitions, to_partitions, at)
    for k in range(to_partitions):
        new = Engine.split(moved, images, partition=k, partitions=to_partitions)
        # Above every `seq` partition index k sent (ceilings, kept in its store, and a
        # lapsed lease's epoch take care of the rest when it starts).
        channel_seqs = dict(seqs[k]) if k < from_partitions else {}
        for channel, seq in (await released_seqs(leases, k)).items():
            channel_seqs[channel] = max(channel_seqs.get(channel, 0), seq)
        snapshot = Snapshot(
            stream_sequence=at,
            channel_seqs=channel_seqs,
            policy_text=moved.text,
            policy_source=moved.source,
            engine=new.snapshot(),
            partition=k,
            partitions=to_partitions,
        )
        await partition_store(js, stream, state_dir, k, SNAPSHOTS_KEPT).save(snapshot)
        done.written.append(written_name(state_dir, k, at))
    await record_partitions(leases, to_partitions, at)
    if state_dir is not None:
        done.retired = retire_directory_snapshots(state_dir, {Path(p) for p in done.written})
    else:
        done.retired = await retire_object_snapshots(js, stream, set(done.written))
    return done
