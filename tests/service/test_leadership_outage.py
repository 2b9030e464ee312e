"""A candidate outlives a NATS outage: when its watch of the other candidates cannot
start (the node it talks to died), it watches again instead of taking the whole
service down with it, so the partition keeps its standby."""

from __future__ import annotations

from typing import Any

import anyio
import msgspec
import nats.errors
import pytest
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue
from prometheus_client import CollectorRegistry

from invsync.nats_server import NatsServer
from invsync.service.leadership import Leadership, Progress, open_leases
from invsync.service.logwriter import LogWriter
from invsync.service.metrics import Metrics
from invsync.service.stream import ensure_stream
from invsync.service.subjects import Subjects
from tests.service.harness import connect_as

pytestmark = pytest.mark.anyio

LEASE_S = 0.4


class FirstWatchTimesOut:
    """The lease bucket, except that the first watch times out as during a node's death."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv
        self.failed = False

    async def watch(self, keys: str, **kwargs: Any) -> Any:
        if not self.failed:
            self.failed = True
            raise nats.errors.TimeoutError
        return await self._kv.watch(keys, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kv, name)


async def test_a_candidate_whose_watch_fails_watches_again_and_defers_to_a_rival_ahead(
    nats_server: NatsServer,
) -> None:
    nc = await connect_as(nats_server, "service")
    try:
        js = nc.jetstream()
        await ensure_stream(js, "INVSYNC", Subjects(), 120.0)
        kv = await open_leases(js, "INVSYNC", 1)
        flaky = FirstWatchTimesOut(kv)

        async def stream_last() -> int:
            return 10

        behind = Leadership(
            nc,
            flaky,  # type: ignore[arg-type]
            LogWriter(js, "INVSYNC"),
            Subjects(),
            Metrics(CollectorRegistry()),
            partition=0,
            holder="a-behind",
            lease_s=LEASE_S,
            eager=False,
            applied=lambda: 10,
            stream_last=stream_last,
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(behind.run)
            # A live rival further along the log, which never claims in this test.
            for _ in range(int(4 * LEASE_S / 0.1)):
                await kv.put("p0.cand.b-ahead", msgspec.json.encode(Progress(applied=100)))
                await anyio.sleep(0.1)
            tg.cancel_scope.cancel()
        assert flaky.failed
        # It saw the rival through its second watch, so it left the lease alone.
        with pytest.raises(KeyNotFoundError):
            await kv.get("p0")
    finally:
        await nc.close()
