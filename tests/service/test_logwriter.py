"""The fence is the server's: once a newer epoch entry is in the log, nats-server refuses
every write of the older leader, whatever its subject, and the writer demotes it."""

from __future__ import annotations

import pytest

from invsync.nats_server import NatsServer
from invsync.service.logwriter import Fenced, LogWriter
from invsync.service.stream import ensure_stream
from invsync.service.subjects import Subjects
from tests.service.harness import connect_as

pytestmark = pytest.mark.anyio

SUBJECTS = Subjects()


async def test_a_newer_epoch_entry_fences_every_write_of_the_older_leader(
    nats_server: NatsServer,
) -> None:
    nc = await connect_as(nats_server, "service")
    try:
        js = nc.jetstream()
        await ensure_stream(js, "INVSYNC", SUBJECTS, 120.0)
        leader = SUBJECTS.leader_log(0)
        old, new = LogWriter(js, "INVSYNC"), LogWriter(js, "INVSYNC")
        demoted: list[str] = []
        old.on_fenced(lambda: demoted.append("old"))
        new.on_fenced(lambda: demoted.append("new"))

        first = await old.append_epoch_entry(leader, b'{"epoch": 1}', 0)
        assert first is not None
        old.fence_at(leader, first)
        await old.append(SUBJECTS.clock_log, b"{}")
        await old.append(SUBJECTS.reserve_log("amazon"), b"{}", {"Invsync-Reply-To": "_INBOX.x"})

        # A second claimant that saw the same last epoch entry: exactly one wins.
        second = await new.append_epoch_entry(leader, b'{"epoch": 2}', first)
        assert second is not None
        assert await old.append_epoch_entry(leader, b'{"epoch": 2}', first) is None
        new.fence_at(leader, second)

        before = (await js.stream_info("INVSYNC")).state.last_seq
        for subject in (SUBJECTS.clock_log, SUBJECTS.reserve_log("amazon"), SUBJECTS.policy_log):
            with pytest.raises(Fenced):
                await old.append(subject, b"{}")
        assert (await js.stream_info("INVSYNC")).state.last_seq == before
        assert demoted == ["old"] * 3

        # Another partition's epoch entry does not fence this one's leader.
        other = await LogWriter(js, "INVSYNC").append_epoch_entry(SUBJECTS.leader_log(1), b"{}", 0)
        assert other is not None
        ack = await new.append(SUBJECTS.clock_log, b"{}")
        assert ack.seq == before + 2
        assert demoted == ["old"] * 3
    finally:
        await nc.close()
