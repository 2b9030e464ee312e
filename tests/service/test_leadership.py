"""The lease goes to the most caught-up candidate, a dead holder is not waited out,
and a holder that loses the lease demotes itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import msgspec
import pytest
from nats.aio.client import Client
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue
from prometheus_client import CollectorRegistry

from invsync.nats_server import NatsServer
from invsync.service.leadership import Leadership, Lease, open_leases
from invsync.service.logwriter import LogWriter
from invsync.service.metrics import Metrics
from invsync.service.stream import ensure_stream
from invsync.service.subjects import Subjects
from tests.service.harness import connect_as

pytestmark = pytest.mark.anyio

LEASE_S = 1.0


@asynccontextmanager
async def service_connection(server: NatsServer) -> AsyncIterator[tuple[Client, KeyValue]]:
    nc = await connect_as(server, "service")
    try:
        js = nc.jetstream()
        await ensure_stream(js, "INVSYNC", Subjects(), 120.0)
        yield nc, await open_leases(js, "INVSYNC", 1)
    finally:
        await nc.close()


def candidate(nc: Client, kv: KeyValue, holder: str, applied: int) -> Leadership:
    async def stream_last() -> int:
        return applied

    return Leadership(
        nc,
        kv,
        LogWriter(nc.jetstream(), "INVSYNC"),
        Subjects(),
        Metrics(CollectorRegistry()),
        partition=0,
        holder=holder,
        lease_s=LEASE_S,
        eager=False,
        applied=lambda: applied,
        stream_last=stream_last,
    )


async def holder_of(kv: KeyValue) -> Lease:
    return msgspec.json.decode((await kv.get("p0")).value or b"", type=Lease)


async def test_the_most_caught_up_candidate_takes_a_dead_leaders_lease(
    nats_server: NatsServer,
) -> None:
    async with service_connection(nats_server) as (nc, kv):
        # A leader that died: its lease stays, nobody renews it or answers for it.
        await kv.create("p0", msgspec.json.encode(Lease(holder="dead", epoch=4)))
        behind = candidate(nc, kv, "a-behind", applied=50)
        ahead = candidate(nc, kv, "b-ahead", applied=100)
        async with anyio.create_task_group() as tg:
            tg.start_soon(behind.run)
            tg.start_soon(ahead.run)
            with anyio.fail_after(10):
                while (await holder_of(kv)).holder == "dead":
                    await anyio.sleep(0.02)
            await anyio.sleep(2 * LEASE_S)  # the winner renews; the other keeps off
            tg.cancel_scope.cancel()
        lease = await holder_of(kv)
        assert (lease.holder, lease.epoch) == ("b-ahead", 5)


async def test_a_tie_goes_to_the_smaller_holder_id(nats_server: NatsServer) -> None:
    async with service_connection(nats_server) as (nc, kv):
        await kv.create("p0", msgspec.json.encode(Lease(holder="dead", epoch=0)))
        first, second = candidate(nc, kv, "a", 70), candidate(nc, kv, "b", 70)
        async with anyio.create_task_group() as tg:
            tg.start_soon(second.run)
            tg.start_soon(first.run)
            with anyio.fail_after(10):
                while (await holder_of(kv)).holder == "dead":
                    await anyio.sleep(0.02)
            await anyio.sleep(2 * LEASE_S)
            tg.cancel_scope.cancel()
        assert (await holder_of(kv)).holder == "a"


async def test_a_holder_whose_lease_is_taken_over_demotes_itself(nats_server: NatsServer) -> None:
    async with service_connection(nats_server) as (nc, kv):
        holder = candidate(nc, kv, "h", 10)
        demoted = anyio.Event()
        holder.on_demoted(demoted.set)
        async with anyio.create_task_group() as tg:
            tg.start_soon(holder.run)
            with anyio.fail_after(10):
                while True:  # a lease nobody held is claimed once no leader showed up
                    try:
                        if (await holder_of(kv)).holder == "h":
                            break
                    except KeyNotFoundError:
                        pass
                    await anyio.sleep(0.02)
            entry = await kv.get("p0")
            await kv.update("p0", msgspec.json.encode(Lease("usurper", 9)), last=entry.revision)
            with anyio.fail_after(5):
                await demoted.wait()
            tg.cancel_scope.cancel()
        assert not holder.leading
