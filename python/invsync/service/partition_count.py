"""How many partitions share a stream's SKUs, recorded once beside the leases.

Every partition's state is a function of the log, its index and the partition
count: an allocator started with another count than its peers would apply SKUs
that another partition also applies, and skip some that nobody does. The count
lives under the key `partitions` of the lease bucket (`<stream>_leaders`): the
first allocator to start records its own, every later one must match it, and
only `invsync partitions resize` changes it.
"""

from __future__ import annotations

import msgspec
from nats.js.errors import KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue

from invsync.errors import InvsyncError

KEY = "partitions"


class PartitionCount(msgspec.Struct, frozen=True):
    partitions: int


_DECODE = msgspec.json.Decoder(PartitionCount)


class PartitionCountError(InvsyncError):
    """An allocator started with another partition count than the stream's."""


async def recorded_partitions(leases: KeyValue) -> int | None:
    """The stream's partition count; None when no allocator has recorded one yet."""
    try:
        entry = await leases.get(KEY)
    except NotFoundError:  # never recorded, or deleted
        return None
    return None if entry.value is None else _DECODE.decode(entry.value).partitions


async def record_partitions(leases: KeyValue, partitions: int) -> None:
    await leases.put(KEY, msgspec.json.encode(PartitionCount(partitions)))


async def check_partitions(leases: KeyValue, stream: str, partitions: int) -> None:
    """Record `partitions` when the stream has no count yet; refuse another count."""
    recorded = await recorded_partitions(leases)
    if recorded is None:
        try:
            await leases.create(KEY, msgspec.json.encode(PartitionCount(partitions)))
            return
        except KeyWrongLastSequenceError:  # another allocator recorded one meanwhile
            recorded = await recorded_partitions(leases)
    if recorded is not None and recorded != partitions:
        raise PartitionCountError(
            f"stream {stream} is served by {recorded} partition(s), not --partitions "
            f"{partitions}: start every allocator with --partitions {recorded}, or stop "
            f"them all and run `invsync partitions resize --from {recorded} --to "
            f"{partitions}` first (docs/scaling.md)"
        )
