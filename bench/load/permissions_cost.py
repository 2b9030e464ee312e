"""What the NATS permissions cost the service: sustained events/s with and without.

Run:  python bench/load/permissions_cost.py [--events 300000] [--rounds 3]

`bench/load/service_load.py` runs its server without permissions (its raw
readers and echo responder are measuring tools, not invsync roles). This runs
the same sustained measurement, in alternating rounds, on a server with the
shipped permissions (the service connects as `service`, the load as a
producer + connector) and on one without, so the ratio compares neighbours in
time on a noisy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path

import nats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from service_load import POLICY, STREAM, preload, stock_batches, sustained

from invsync.nats_server import NatsServer
from invsync.service.connection import client_kwargs
from invsync.service.stream import ensure_stream
from invsync.service.subjects import Subjects

LOAD_USER = "load"


async def one_round(tmp: Path, policy: Path, events: int, permissions: bool, run: int) -> float:
    with NatsServer(
        users={LOAD_USER: ("producer", "connector")}, permissions=permissions
    ) as server:
        if permissions:
            service_nc = await nats.connect(**client_kwargs(server.client("service")))
            nc = await nats.connect(
                **client_kwargs(server.client(LOAD_USER)), pending_size=256 * 1024 * 1024
            )
            credentials: tuple[str, ...] = ("--nkey", str(server.client("service").nkeys_seed))
        else:
            service_nc = nc = await nats.connect(server.url, pending_size=256 * 1024 * 1024)
            credentials = ()
        await ensure_stream(service_nc.jetstream(), STREAM, Subjects(), 120)
        for body in stock_batches(10**9, "stock"):
            await nc.jetstream().publish("inv.stock.wh-1", body)
        await preload(nc, events)
        rate = await sustained(nc, server.url, tmp, policy, events, run, credentials)
        await nc.close()
        if service_nc is not nc:
            await service_nc.close()
    return rate


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="invsync-perms-") as tmpdir:
        tmp = Path(tmpdir)
        policy = tmp / "policy.toml"
        policy.write_text(POLICY)
        print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        ratios = []
        for run in range(args.rounds):
            on = await one_round(tmp, policy, args.events, True, 2 * run)
            off = await one_round(tmp, policy, args.events, False, 2 * run + 1)
            ratios.append(on / off)
            print(
                f"round {run + 1}: with permissions {on:,.0f} events/s, "
                f"without {off:,.0f} events/s ({on / off:.2f}×)"
            )
        print(f"median ratio with/without permissions: {statistics.median(ratios):.2f}×")
        print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
