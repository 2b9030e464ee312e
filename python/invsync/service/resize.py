"""Changing how many partitions share the SKUs, offline, losing nothing.

Every partition reads the whole log and applies only its SKUs, so partition k of
M is rebuilt by replaying the log from its first message: no state is moved by
hand. That holds only while nothing else changes the log's meaning, so a resize
is refused unless
- no allocator of the stream runs: no lease or candidate entry is renewed while
  we watch, and no lease holder answers its presence subject;
- the stream holds its whole history (first sequence 1, nothing deleted);
- no logged reservation spans partitions under the old or the new count: its
  decision depends on the count (votes of the old partitions, or none), and a
  replay with another count would decide it again, differently.
Then the new count is recorded (partition_count.py: `invsync serve` refuses any
other) and the old partitions' snapshots are retired, so each new partition
replays from the start.
"""

from __future__ import annotations

import re
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
from invsync.errors import InvsyncError
from invsync.events import ReservationGroup
from invsync.policy import Policy
from invsync.security.roles import leases_bucket
from invsync.service.consumer import LogReader
from invsync.service.leadership import Lease
from invsync.service.partition_count import record_partitions, recorded_partitions
from invsync.service.subjects import Subjects

_LEASE_KEY = re.compile(r"^p(\d+)$")
# Partition 0's snapshots keep the names of a service without partitions.
_SNAPSHOT_OBJECT = re.compile(r"^(p\d+-)?snapshot-\d+\.bin$")
_GROUPS = msgspec.json.Decoder(ReservationGroup)


class ResizeRefused(InvsyncError):
    """Resizing now would lose state; the message says what to do instead."""


@dataclass
class Resized:
    """What a resize did, for the operator."""

    stream: str
    from_partitions: int
    to_partitions: int
    log_messages: int
    retired: list[str] = field(default_factory=list)


def check_whole_history(info: StreamInfo, stream: str) -> None:
    """The new partitions replay from the start: every message must still be there."""
    state = info.state
    dropped = state.first_seq > 1 or bool(state.num_deleted)
    if dropped:
        raise ResizeRefused(
            f"stream {stream} no longer holds its whole history (it starts at sequence "
            f"{state.first_seq}, {state.num_deleted or 0} deleted inside): a purge or a "
            "max_age / max_msgs / max_bytes limit dropped messages, and partitions replayed "
            "without them would lose their state. Restore the stream from a backup that "
            "holds every message since sequence 1 and resize then, or keep the current "
            "partition count"
        )


async def spanning_reservations(
    js: JetStreamContext,
    stream: str,
    subjects: Subjects,
    policy: Policy,
    counts: tuple[int, int],
    through: int,
) -> list[str]:
    """Request ids of logged reservations whose SKUs fall in more than one partition
    under either count. Such a request is decided through votes (or inline, with one
    partition) and a replay with another count decides it again without the votes it
    had: a granted hold can come back aborted, a refused one granted."""
    families = Engine(policy)
    found: list[str] = []
    reader = LogReader(js, stream, subjects)
    await reader.open(0)
    try:
        while reader.last_sequence < through:
            entries = await reader.fetch(min(20_000, through - reader.last_sequence))
            if not entries:
                raise ResizeRefused(
                    f"stream {stream} could not be read past sequence {reader.last_sequence} "
                    f"of {through}: run this again"
                )
            for msg in entries:
                if not msg.subject.startswith(subjects.reserve_log_prefix):
                    continue
                try:
                    group = _GROUPS.decode(msg.data)
                except msgspec.DecodeError:
                    continue  # skipped alike by every partition of any count
                for logged in group.requests:
                    skus = {line.sku for line in logged.request.lines}
                    if any(len({families.partition_of(s, n) for s in skus}) > 1 for n in counts):
                        found.append(logged.request.request_id)
    finally:
        await reader.close()
    return found


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
        lease = msgspec.json.decode(entry.value or b"", type=Lease)
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


def retire_directory_snapshots(state_dir: Path) -> list[str]:
    """Every partition's snapshots under `state_dir` (partition 0's in it, partition k's
    in partition-<k>/); the `seq` ceilings stay, so no `seq` is used twice."""
    found = [*state_dir.glob("snapshot-*.bin"), *state_dir.glob("partition-*/snapshot-*.bin")]
    for path in found:
        path.unlink()
    return sorted(str(path) for path in found)


async def retire_object_snapshots(js: JetStreamContext, stream: str) -> list[str]:
    """Every partition's snapshots in the stream's snapshot bucket."""
    try:
        store = await js.object_store(f"{stream}_SNAPSHOTS")
        infos = await store.list()
    except (BucketNotFoundError, NotFoundError):
        return []
    names = sorted(
        i.name for i in infos if i.name and not i.deleted and _SNAPSHOT_OBJECT.match(i.name)
    )
    for name in names:
        await store.delete(name)
    return names


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
    """Record `to_partitions` for `stream` and retire the snapshots, or refuse with why."""
    if from_partitions < 1 or to_partitions < 1:
        raise ResizeRefused("--from and --to must be at least 1")
    js = nc.jetstream()
    subjects = Subjects(prefix)
    try:
        info = await js.stream_info(stream)
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
    check_whole_history(info, stream)
    counts = (from_partitions, to_partitions)
    last = info.state.last_seq
    spanning = await spanning_reservations(js, stream, subjects, policy, counts, last)
    if spanning:
        raise ResizeRefused(
            f"stream {stream} holds {len(spanning)} reservation(s) whose SKUs span "
            f"partitions with {from_partitions} or {to_partitions} partitions (request "
            f"{spanning[0]!r}, ...): a partition count decides them through its own "
            "partitions' votes, and the new partitions replaying the log would decide them "
            "again, differently, losing or inventing holds. Keep the current partition "
            "count (docs/scaling.md, 'Changing the number of partitions')"
        )
    running = await live_allocators(nc, leases, subjects, watch_s)
    if running:
        raise ResizeRefused(
            "allocators of stream "
            f"{stream} may still run ({'; '.join(running)}): stop every allocator, leaders "
            "and standbys, of every partition, then run this again"
        )
    await record_partitions(leases, to_partitions)
    done = Resized(stream, from_partitions, to_partitions, info.state.last_seq)
    if state_dir is not None:
        done.retired = retire_directory_snapshots(state_dir)
    else:
        done.retired = await retire_object_snapshots(js, stream)
    return done
