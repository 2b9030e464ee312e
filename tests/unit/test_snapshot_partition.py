"""A snapshot says which partition of how many wrote it, and another share never loads it:
after a resize, a partition restoring an old snapshot would apply SKUs another partition
applies too, and skip some that none does."""

from __future__ import annotations

from pathlib import Path

import pytest

from invsync import Engine, Policy
from invsync.service.app import restore
from invsync.service.config import ServiceConfig
from invsync.service.snapshots import DirectorySnapshotStore, Snapshot

pytestmark = pytest.mark.anyio

POLICY = Path(__file__).resolve().parents[2] / "examples" / "policy.toml"


async def saved(tmp_path: Path, partition: int, partitions: int) -> DirectorySnapshotStore:
    policy = Policy.load(POLICY)
    engine = Engine(policy, partition=partition, partitions=partitions)
    store = DirectorySnapshotStore(tmp_path, keep=3)
    await store.save(
        Snapshot(
            stream_sequence=7,
            channel_seqs={},
            policy_text=policy.text,
            policy_source=policy.source,
            engine=engine.snapshot(),
            partition=partition,
            partitions=partitions,
        )
    )
    return store


@pytest.mark.parametrize(("partition", "partitions"), [(0, 3), (1, 2)])
async def test_a_snapshot_of_another_share_is_not_loaded(
    tmp_path: Path, partition: int, partitions: int
) -> None:
    store = await saved(tmp_path, 0, 2)
    config = ServiceConfig(policy_path=POLICY, partition=partition, partitions=partitions)
    engine, snapshot = await restore(store, Policy.load(POLICY), Engine, config)
    assert snapshot is None, "replayed from the start instead"
    assert engine.partition == (partition, partitions)


async def test_a_snapshot_of_the_same_share_is_loaded(tmp_path: Path) -> None:
    store = await saved(tmp_path, 1, 2)
    config = ServiceConfig(policy_path=POLICY, partition=1, partitions=2)
    _, snapshot = await restore(store, Policy.load(POLICY), Engine, config)
    assert snapshot is not None and snapshot.stream_sequence == 7
