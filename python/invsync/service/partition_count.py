"""How many partitions share a stream's SKUs, recorded once beside the leases.

Every partition's state is a function of the log, its index and the partition
count: an allocator started with another count than its peers would apply SKUs
that another partition also applies, and skip some that nobody does. The count
lives under the key `partitions` of the lease bucket (`<stream>_leaders`): the
first allocator to start records its own, every later one must match it, and
only `invsync partitions resize` changes it.

A resize also records the stream sequence its state was moved at: the new
partitions' states start there, as snapshots. The log before it was applied under
the old count, so a new partition without such a snapshot must not replay it.
"""

from __future__ import annotations

import msgspec
from nats.js.errors import KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue

from invsync.errors import InvsyncError

KEY = "partitions"


class PartitionCount(msgspec.Struct, frozen=True, omit_defaults=True):
    partitions: int
    # The stream sequence of the last resize's snapshots; 0: never resized.
    resized_at: int = 0


_DECODE = msgspec.json.Decoder(PartitionCount)


class PartitionCountError(InvsyncError):
    """An allocator started with another partition count than the stream's."""


class MissingResizeSnapshot(PartitionCountError):
    """A partition of a resized stream started without the snapshot the resize wrote
    for it: replaying the log from its start would apply it under the wrong count."""


async def recorded_count(leases: KeyValue) -> PartitionCount | None:
    """The stream's partition count and last resize; None when no allocator has
    recorded one yet."""
    try:
        entry = await leases.get(KEY)
    except NotFoundError:  # never recorded, or deleted
        return None
    return None if entry.value is None else _DECODE.decode(entry.value)


async def recorded_partitions(leases: KeyValue) -> int | None:
    """The stream's partition count; None when no allocator has recorded one yet."""
    recorded = await recorded_count(leases)
    return None if recorded is None else recorded.partitions


async def record_partitions(leases: KeyValue, partitions: int, resized_at: int) -> None:
    await leases.put(KEY, msgspec.json.encode(PartitionCount(partitions, resized_at)))


async def check_partitions(leases: KeyValue, stream: str, partitions: int) -> int:
    """Record `partitions` when the stream has no count yet; refuse another count.
    Returns the stream sequence of the last resize (0: never resized)."""
    recorded = await recorded_count(leases)
    if recorded is None:
        try:
            await leases.create(KEY, msgspec.json.encode(PartitionCount(partitions)))
            return 0
        except KeyWrongLastSequenceError:  # another allocator recorded one meanwhile
            recorded = await recorded_count(leases)
    if recorded is not None and recorded.partitions != partitions:
        raise PartitionCountError(
            f"stream {stream} is served by {recorded.partitions} partition(s), not "
            f"--partitions {partitions}: start every allocator with --partitions "
            f"{recorded.partitions}, or stop them all and run `invsync partitions resize "
            f"--from {recorded.partitions} --to {partitions}` first (docs/scaling.md)"
        )
    return 0 if recorded is None else recorded.resized_at
