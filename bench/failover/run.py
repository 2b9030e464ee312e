"""Failover time: kill -9 the partition's leader under reservation load, 10 times.

A leader and a hot standby (`invsync serve` and `invsync serve --standby`, lease
1 s) on an embedded nats-server, and reservation clients that retry each request
until it is answered. Each round kills whichever process leads, times from the
kill to the first answer to a reservation attempt sent after it, restarts the
killed one as the new standby and waits until it has caught up. Prints each
round, then the median and the max (goal: max < 2 s, median < 1 s).

    python bench/failover/run.py [--kills 10] [--clients 8] [--lease-s 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the process harness the failover test uses

from invsync.nats_server import NatsServer
from tests.integration.failover import (
    ReservationClients,
    ServiceProcess,
    start_service,
)
from tests.service.harness import connect_as
from tests.users import TEST_USERS

SKUS = [f"H{i}" for i in range(8)]
ROUND_TIMEOUT_S = 30.0


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{platform.machine()}, {os.cpu_count()} cores ({model}), load average {load}"


async def until_leader(processes: list[ServiceProcess]) -> ServiceProcess:
    with anyio.fail_after(ROUND_TIMEOUT_S):
        while True:
            for service in processes:
                if await anyio.to_thread.run_sync(service.metric, "invsync_partition_leader") == 1:
                    return service
            await anyio.sleep(0.05)


async def bench(kills: int, clients_n: int, lease_s: float) -> list[float]:
    extra = ("--lease-s", str(lease_s))
    with NatsServer(users=TEST_USERS) as server:
        nc = await connect_as(server)
        processes = [start_service(server, standby=False, extra=extra)]
        await until_leader(processes)
        js = nc.jetstream()
        for sku in SKUS:
            await js.publish(
                "inv.stock.wh-3",
                (
                    f'{{"type": "stock.set", "event_id": "s-{sku}", "ts": "2026-11-23T10:00:00Z",'
                    f' "sku": "{sku}", "location": "wh-3", "on_hand": 10000000}}'
                ).encode(),
            )
        processes.append(start_service(server, standby=True, extra=extra))
        await processes[1].wait_metric("invsync_standby_lag_events", 0, ROUND_TIMEOUT_S)
        clients = ReservationClients(nc, SKUS)
        await clients.start()
        done = anyio.Event()
        times: list[float] = []
        try:
            async with anyio.create_task_group() as tg:
                for n in range(clients_n):
                    tg.start_soon(clients.run, f"c{n}", done, ROUND_TIMEOUT_S, 1_000_000)
                for round_no in range(1, kills + 1):
                    leader = await until_leader(processes)
                    standby = next(p for p in processes if p is not leader)
                    await standby.wait_metric("invsync_standby_lag_events", 0, ROUND_TIMEOUT_S)
                    await anyio.sleep(1.0)  # load running against a settled pair
                    killed_at = time.monotonic()
                    leader.process.kill()
                    leader.process.wait()
                    with anyio.fail_after(ROUND_TIMEOUT_S):
                        while (answered := clients.first_answer_after(killed_at)) is None:
                            await anyio.sleep(0.002)
                    times.append(answered - killed_at)
                    print(f"kill {round_no}: reservations answered again after {times[-1]:.3f} s")
                    processes.remove(leader)
                    processes.append(start_service(server, standby=True, extra=extra))
                done.set()
        finally:
            for service in processes:
                service.process.kill()
                service.process.wait()
            await nc.close()
        return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--lease-s", type=float, default=1.0)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    times = anyio.run(bench, args.kills, args.clients, args.lease_s)
    print(
        f"{len(times)} kills, lease {args.lease_s} s, {args.clients} clients: "
        f"median {statistics.median(times):.3f} s, max {max(times):.3f} s"
    )


if __name__ == "__main__":
    main()
