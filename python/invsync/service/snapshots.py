"""Durable snapshots of the service state, so a restart replays only the tail of the log.

A snapshot is the engine's bytes plus what the engine does not know: the stream
sequence it reflects, the per-channel `seq` of `inv.qty.*` and the active policy
text. It is written whole or not at all (temp file + rename) and checksummed, so
a crash mid-write or a corrupt file is skipped in favour of an older one.

Beside the snapshots, the store keeps the `seq` ceilings: per channel, a `seq`
no message has gone past. A restart after a crash starts above them, so no
`seq` a connector has seen is used again for another message.
"""

from __future__ import annotations

import logging
import os
import zlib
from pathlib import Path
from typing import Protocol

import anyio
import msgspec
from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError, NotFoundError
from nats.js.object_store import ObjectStore

log = logging.getLogger("invsync.service")

MAGIC = b"INVSNAP1"
CEILINGS_MAGIC = b"INVSEQC1"
CEILINGS_NAME = "seq-ceilings.bin"


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    """Everything needed to resume at `stream_sequence + 1`, by the partition that wrote
    it: `partition` of `partitions` (0 of 1 in a snapshot from before partitions)."""

    stream_sequence: int
    channel_seqs: dict[str, int]
    policy_text: str
    policy_source: str
    engine: bytes
    partition: int = 0
    partitions: int = 1


def encode_snapshot(snapshot: Snapshot) -> bytes:
    return _sealed(MAGIC, msgspec.msgpack.encode(snapshot))


def decode_snapshot(data: bytes) -> Snapshot:
    """The snapshot in `data`; ValueError when it is truncated, corrupt or foreign."""
    try:
        return msgspec.msgpack.decode(_unsealed(MAGIC, data), type=Snapshot)
    except msgspec.DecodeError as exc:
        raise ValueError(str(exc)) from exc


def _sealed(magic: bytes, body: bytes) -> bytes:
    return magic + zlib.crc32(body).to_bytes(4, "big") + body


def _unsealed(magic: bytes, data: bytes) -> memoryview:
    """The checksummed body; ValueError when truncated, corrupt or foreign."""
    if not data.startswith(magic) or len(data) < len(magic) + 4:
        raise ValueError("not an invsync file")
    checksum = int.from_bytes(data[len(magic) : len(magic) + 4], "big")
    body = memoryview(data)[len(magic) + 4 :]  # engine state runs to 100 MB: no copy
    if zlib.crc32(body) != checksum:
        raise ValueError("checksum mismatch")
    return body


def encode_ceilings(ceilings: dict[str, int]) -> bytes:
    return _sealed(CEILINGS_MAGIC, msgspec.msgpack.encode(ceilings))


def decode_ceilings(data: bytes) -> dict[str, int]:
    """The ceilings in `data`; ValueError when they cannot be trusted."""
    try:
        return msgspec.msgpack.decode(_unsealed(CEILINGS_MAGIC, data), type=dict[str, int])
    except msgspec.DecodeError as exc:
        raise ValueError(str(exc)) from exc


def snapshot_name(stream_sequence: int) -> str:
    # Zero-padded so names sort in sequence order.
    return f"snapshot-{stream_sequence:020d}.bin"


Share = tuple[int, int]
"""(partition, partitions): which SKUs a snapshot holds."""


class SnapshotStore(Protocol):
    async def save(self, snapshot: Snapshot) -> None: ...

    async def load_newest(self, share: Share | None = None) -> Snapshot | None:
        """The newest good snapshot; of partition `share` only, when given (a resize
        leaves another count's snapshots beside them until it retires them)."""
        ...

    async def save_ceilings(self, ceilings: dict[str, int]) -> None: ...

    async def load_ceilings(self) -> dict[str, int]:
        """The last saved `seq` ceilings; empty when there are none to trust."""
        ...


class DirectorySnapshotStore:
    """Snapshots as files in a directory, newest few kept."""

    def __init__(self, directory: Path, keep: int) -> None:
        self.directory = directory
        self.keep = keep
        directory.mkdir(parents=True, exist_ok=True)

    def _names(self) -> list[Path]:
        return sorted(self.directory.glob("snapshot-*.bin"), reverse=True)

    def _write_whole(self, name: str, data: bytes) -> None:
        """`data` as `name`, whole or not at all, on disk before this returns."""
        final = self.directory / name
        tmp = final.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)

    def _write(self, snapshot: Snapshot) -> None:
        self._write_whole(snapshot_name(snapshot.stream_sequence), encode_snapshot(snapshot))
        for old in self._names()[self.keep :]:
            old.unlink(missing_ok=True)

    def _read_newest(self, share: Share | None) -> Snapshot | None:
        for path in self._names():
            try:
                snapshot = decode_snapshot(path.read_bytes())
            except (OSError, ValueError) as exc:
                log.warning("skipping snapshot %s: %s", path.name, exc)
                continue
            if share is None or of_share(snapshot, share):
                return snapshot
        return None

    async def save(self, snapshot: Snapshot) -> None:
        # Off the event loop: a large snapshot's fsync must not stall consumption.
        await anyio.to_thread.run_sync(self._write, snapshot)

    async def load_newest(self, share: Share | None = None) -> Snapshot | None:
        return await anyio.to_thread.run_sync(self._read_newest, share)

    async def save_ceilings(self, ceilings: dict[str, int]) -> None:
        await anyio.to_thread.run_sync(self._write_whole, CEILINGS_NAME, encode_ceilings(ceilings))

    async def load_ceilings(self) -> dict[str, int]:
        try:
            return decode_ceilings((self.directory / CEILINGS_NAME).read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("ignoring %s: %s", CEILINGS_NAME, exc)
            return {}


class ObjectStoreSnapshotStore:
    """Snapshots in a JetStream object store bucket, for pods without a volume.

    Objects are named with `prefix` in front, so the partitions share one bucket."""

    def __init__(self, js: JetStreamContext, bucket: str, keep: int, prefix: str = "") -> None:
        self._js = js
        self.bucket = bucket
        self.keep = keep
        self.prefix = prefix
        self._ceilings_name = prefix + CEILINGS_NAME
        self._store: ObjectStore | None = None

    async def _open(self) -> ObjectStore:
        if self._store is None:
            try:
                self._store = await self._js.object_store(self.bucket)
            except (BucketNotFoundError, NotFoundError):
                self._store = await self._js.create_object_store(self.bucket)
        return self._store

    async def _names(self, store: ObjectStore) -> list[str]:
        try:
            infos = await store.list()
        except NotFoundError:
            return []
        names = (i.name for i in infos if i.name and not i.deleted)
        own = f"{self.prefix}snapshot-"
        return sorted((n for n in names if n.startswith(own)), reverse=True)

    async def save_ceilings(self, ceilings: dict[str, int]) -> None:
        store = await self._open()
        await store.put(self._ceilings_name, encode_ceilings(ceilings))

    async def load_ceilings(self) -> dict[str, int]:
        store = await self._open()
        try:
            return decode_ceilings((await store.get(self._ceilings_name)).data or b"")
        except NotFoundError:
            return {}
        except ValueError as exc:
            log.warning("ignoring %s: %s", self._ceilings_name, exc)
            return {}

    async def save(self, snapshot: Snapshot) -> None:
        store = await self._open()
        name = self.prefix + snapshot_name(snapshot.stream_sequence)
        await store.put(name, encode_snapshot(snapshot))
        for old in (await self._names(store))[self.keep :]:
            await store.delete(old)

    async def load_newest(self, share: Share | None = None) -> Snapshot | None:
        store = await self._open()
        for name in await self._names(store):
            try:
                result = await store.get(name)
                snapshot = decode_snapshot(result.data or b"")
            except (NotFoundError, ValueError) as exc:
                log.warning("skipping snapshot %s: %s", name, exc)
                continue
            if share is None or of_share(snapshot, share):
                return snapshot
        return None


def of_share(snapshot: Snapshot, share: Share) -> bool:
    return (snapshot.partition, snapshot.partitions) == share


def partition_store(
    js: JetStreamContext, stream: str, state_dir: Path | None, partition: int, keep: int
) -> DirectorySnapshotStore | ObjectStoreSnapshotStore:
    """Where partition `partition`'s leader keeps its snapshots: partition 0 where a
    service without partitions always has, each other partition beside it under its
    own name (a directory `partition-<k>`, an object name prefix `p<k>-`)."""
    if state_dir is not None:
        directory = state_dir / f"partition-{partition}" if partition else state_dir
        return DirectorySnapshotStore(directory, keep)
    prefix = f"p{partition}-" if partition else ""
    return ObjectStoreSnapshotStore(js, f"{stream}_SNAPSHOTS", keep, prefix)
