"""The saved `seq` ceilings: read back as written; a damaged file is not trusted."""

from __future__ import annotations

from pathlib import Path

import anyio

from invsync.service.snapshots import CEILINGS_NAME, DirectorySnapshotStore


def test_ceilings_read_back_as_written_and_a_damaged_file_counts_as_none(tmp_path: Path) -> None:
    store = DirectorySnapshotStore(tmp_path, keep=3)

    async def scenario() -> None:
        assert await store.load_ceilings() == {}
        await store.save_ceilings({"amazon": 100_007, "shopify": 100_000})
        assert await store.load_ceilings() == {"amazon": 100_007, "shopify": 100_000}
        path = tmp_path / CEILINGS_NAME
        path.write_bytes(path.read_bytes()[:-1] + b"\x00")  # one byte flipped
        assert await store.load_ceilings() == {}

    anyio.run(scenario)
