"""Partitions on one machine: aggregate events/s with 1 and 2 partitions, and the sync
latency of one partition's leader beside its hot standby.

Run:  python bench/load/partitions.py [--events 300000] [--rounds 3] [--seconds 5]
      [--clients 16] [--latency-rounds 3] [--rates 30000 50000]
      [--latency-only] [--baseline SOURCE_TREE]

Uses bench/load/service_load.py's machinery (its policy, stream, preload, paced
producer, histogram and CPU accounting) on an embedded nats-server, and prints:

1. aggregate: 1 and 2 partitions in alternating rounds on fresh streams of the same
   `--events` one-line `order.placed` events over 1,000 SKUs (both partitions own
   about half). Each round starts the partitions' allocators (`invsync serve
   --partitions N --partition k`, leaders only), waits until every one serves, stops
   them with SIGSTOP, appends the events and one end marker per partition, and lets
   them go with SIGCONT: the time from SIGCONT until every marker's quantity is
   published is JetStream in → quantities out for the whole stream, with no start-up
   or replay inside it. With each round: the share of a core each allocator and
   nats-server used over that time (as service_load.py reports it).
2. the cost of a cross-partition reservation: 2 partitions, `--clients` clients each
   alternating a one-line reservation (one partition, today's path) and a two-line one
   with a line in each partition (prepared, voted on and decided through the log);
   request/reply p50/p99 of each kind in the same run, and their ratio.
3. sync latency, one partition with its standby (a second `invsync serve --standby`
   following the same log), producer and nats-server on the same machine: p50/p99 of
   event `ts` → publish at `--rates` (30,000 and 50,000 events/s), `--latency-rounds`
   rounds each, with each process's share of a core, the standby's CPU per event and
   its lag after each round; and the same rounds against the leader alone (what the
   standby costs). Each round runs every setup on a fresh server, in turn. With
   `--baseline`, every setup also runs the service of another source tree (a checkout
   of the code before a change, its extension built), in the same rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import NamedTuple

import msgspec
import nats
import numpy as np
from nats.aio.client import Client
from nats.aio.msg import Msg
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent))
from service_load import (
    POLICY,
    SKUS,
    STREAM,
    Latency,
    cpu_seconds,
    histogram_quantile,
    now_ts,
    paced_round,
    preload,
    print_latency,
    service_latency_buckets,
    start_service,
    stock_batches,
    stop_service,
)

from invsync._core import partition_of
from invsync.nats_server import NatsServer, free_port
from invsync.service.stream import ensure_stream
from invsync.service.subjects import Subjects

MARKER_TIMEOUT_S = 600.0
SERVING_TIMEOUT_S = 120.0


def owned_sku(prefix: str, k: int, n: int) -> str:
    """The first `<prefix><i>` that partition k of n owns (a SKU of no bundle is its
    own family)."""
    i = 0
    while partition_of(f"{prefix}{i}", n) != k:
        i += 1
    return f"{prefix}{i}"


def partition_args(n: int, k: int, *extra: str) -> tuple[str, ...]:
    return ("--partitions", str(n), "--partition", str(k), "--snapshot-events", "100000000", *extra)


def stock_set(sku: str, tag: str) -> bytes:
    return msgspec.json.encode(
        {
            "type": "stock.set",
            "event_id": tag,
            "ts": now_ts(),
            "sku": sku,
            "location": "wh-1",
            "on_hand": 1,
        }
    )


async def wait_serving(nc: Client, n: int, timeout_s: float = SERVING_TIMEOUT_S) -> None:
    """Until every partition's leader answers a query about a stocked SKU it owns."""
    deadline = time.monotonic() + timeout_s
    for k in range(n):
        body = msgspec.json.encode({"sku": owned_sku("S", k, n)})
        while True:
            try:
                await nc.request("inv.query.sku", body, timeout=0.5)
                break
            except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"partition {k} of {n} did not start serving") from None
                await asyncio.sleep(0.05)


async def aggregate_round(
    tmp: Path, policy: Path, events: int, n: int, run: int
) -> tuple[float, dict[str, float]]:
    """One round on a fresh server: events/s through n partitions, and CPU per process."""
    with NatsServer(permissions=False) as server:
        nc = await nats.connect(server.url, pending_size=256 * 1024 * 1024)
        js = nc.jetstream()
        await ensure_stream(js, STREAM, Subjects(), 120)
        for body in stock_batches(10**9, "stock"):
            await js.publish("inv.stock.wh-1", body)
        services = [
            start_service(server.url, tmp / f"agg-{n}-{run}-p{k}", policy, *partition_args(n, k))
            for k in range(n)
        ]
        markers = {owned_sku(f"END{run}-", k, n) for k in range(n)}
        seen: set[str] = set()
        done = asyncio.Event()

        async def on_qty(msg: Msg) -> None:
            for sku in markers - seen:
                if b'"%s"' % sku.encode() in msg.data:
                    seen.add(sku)
            if seen == markers:
                done.set()

        sub = await nc.subscribe("inv.qty.shopify", cb=on_qty)
        try:
            await wait_serving(nc, n)
            for service in services:
                os.kill(service.pid, signal.SIGSTOP)
            await preload(nc, events)
            for sku in sorted(markers):
                await js.publish("inv.stock.wh-1", stock_set(sku, f"end-{sku}"))
            watched = {f"p{k}": service.pid for k, service in enumerate(services)}
            assert server.pid is not None
            watched["server"] = server.pid
            before = {name: cpu_seconds(pid) for name, pid in watched.items()}
            began = time.perf_counter()
            for service in services:
                os.kill(service.pid, signal.SIGCONT)
            await asyncio.wait_for(done.wait(), timeout=MARKER_TIMEOUT_S)
            elapsed = time.perf_counter() - began
            cpu = {
                name: (cpu_seconds(pid) - before[name]) / elapsed for name, pid in watched.items()
            }
        finally:
            for service in services:
                os.kill(service.pid, signal.SIGCONT)
                stop_service(service)
            await sub.unsubscribe()
            await nc.close()
    return (events + len(markers)) / elapsed, cpu


async def reservation_cost(
    tmp: Path, policy: Path, clients: int, seconds: float
) -> dict[str, tuple[float, float]]:
    """p50/p99 request/reply of single- and cross-partition reservations, interleaved."""
    rtts: dict[str, list[float]] = {"single": [], "cross": []}
    owned = {k: [f"S{i}" for i in range(SKUS) if partition_of(f"S{i}", 2) == k] for k in (0, 1)}
    with NatsServer(permissions=False) as server:
        nc = await nats.connect(server.url, pending_size=256 * 1024 * 1024)
        js = nc.jetstream()
        await ensure_stream(js, STREAM, Subjects(), 120)
        for body in stock_batches(10**9, "stock"):
            await js.publish("inv.stock.wh-1", body)
        services = [
            start_service(server.url, tmp / f"cost-{clients}-p{k}", policy, *partition_args(2, k))
            for k in (0, 1)
        ]

        async def client(number: int) -> None:
            began = time.perf_counter()
            i = 0
            while time.perf_counter() - began < seconds:
                i += 1
                kind = "cross" if i % 2 else "single"
                lines = [{"line_id": "1", "sku": owned[0][(number + i) % len(owned[0])], "qty": 1}]
                if kind == "cross":
                    other = owned[1][(number + i) % len(owned[1])]
                    lines.append({"line_id": "2", "sku": other, "qty": 1})
                body = msgspec.json.encode(
                    {
                        "type": "reserve",
                        "request_id": f"cost-{number}-{i}",
                        "order_id": f"cost-{number}-{i}",
                        "channel": "shopify",
                        "hold_seconds": 60,
                        "lines": lines,
                    }
                )
                sent = time.perf_counter()
                await nc.request("inv.reserve.shopify", body, timeout=10)
                rtts[kind].append(time.perf_counter() - sent)

        try:
            await wait_serving(nc, 2)
            await asyncio.sleep(0.5)  # start-up snapshots and first flushes are not measured
            await asyncio.wait_for(
                asyncio.gather(*(client(c) for c in range(clients))), seconds + 60
            )
        finally:
            for service in services:
                stop_service(service)
            await nc.close()
    return {
        kind: (float(np.percentile(values, 50)), float(np.percentile(values, 99)))
        for kind, values in rtts.items()
    }


def standby_lag(port: int) -> float:
    """invsync_standby_lag_events from a standby's /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    for family in text_string_to_metric_families(text):
        if family.name == "invsync_standby_lag_events":
            return sum(sample.value for sample in family.samples)
    raise RuntimeError("the standby exports no invsync_standby_lag_events")


async def wait_followed(port: int, timeout_s: float = SERVING_TIMEOUT_S) -> None:
    """Until the standby has replayed the log and follows its end (its /metrics answers
    once replay is done)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if await asyncio.to_thread(standby_lag, port) == 0:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("the standby did not catch up")
        await asyncio.sleep(0.1)


class Setup(NamedTuple):
    """One configuration of the sync latency part: the leader alone or with its standby,
    run from the installed package or from `--baseline`'s source tree."""

    standby: bool
    source: Path | None

    @property
    def label(self) -> str:
        who = "the leader with its standby" if self.standby else "the leader alone"
        return f"{who} ({'baseline' if self.source else 'this tree'})"


async def latency_round(
    tmp: Path, policy: Path, rates: list[float], seconds: float, setup: Setup, run: int
) -> list[tuple[Latency, float | None, float | None]]:
    """One paced round per rate against one leader on a fresh server, with its standby
    or alone; per rate, the standby's lag once the producer stopped and its CPU seconds
    per event (from the round's start until it has applied the round's last event)."""
    results: list[tuple[Latency, float | None, float | None]] = []
    name = (
        f"lat-{run}-{'standby' if setup.standby else 'alone'}-{'base' if setup.source else 'new'}"
    )
    with NatsServer(permissions=False) as server:
        nc = await nats.connect(server.url, pending_size=256 * 1024 * 1024)
        js = nc.jetstream()
        await ensure_stream(js, STREAM, Subjects(), 120)
        for body in stock_batches(10**9, "stock"):
            await js.publish("inv.stock.wh-1", body)
        leader_port, standby_port = free_port(), free_port()
        # One partition: no partition options, as a service that has never heard of them.
        leader = start_service(
            server.url, tmp / f"{name}-leader", policy,
            "--snapshot-events", "100000000", "--metrics-port", str(leader_port),
            source=setup.source,
        )  # fmt: skip
        await wait_serving(nc, 1)
        follower = None
        if setup.standby:
            follower = start_service(
                server.url, tmp / f"{name}-standby", policy,
                "--snapshot-events", "100000000", "--metrics-port", str(standby_port), "--standby",
                source=setup.source,
            )  # fmt: skip
        try:
            first = 0
            assert server.pid is not None
            watched = {"leader": leader.pid, "server": server.pid}
            if follower is not None:
                watched["standby"] = follower.pid
                await wait_followed(standby_port)
            for rate in rates:
                before = dict(await asyncio.to_thread(service_latency_buckets, leader_port))
                standby_cpu = cpu_seconds(follower.pid) if follower else 0.0
                seen, cpu = await asyncio.to_thread(
                    paced_round, server.url, rate, seconds, first, watched
                )
                after = await asyncio.to_thread(service_latency_buckets, leader_port)
                buckets = [(bound, count - before.get(bound, 0.0)) for bound, count in after]
                sent = int(seen["sent"])
                first += sent
                latency = Latency(
                    sent,
                    histogram_quantile(buckets, 0.5),
                    histogram_quantile(buckets, 0.99),
                    seen["connector_p50"],
                    seen["connector_p99"],
                    cpu,
                )
                lag, per_event = None, None
                if follower is not None:
                    lag = await asyncio.to_thread(standby_lag, standby_port)
                    await wait_followed(standby_port)
                    per_event = (cpu_seconds(follower.pid) - standby_cpu) / sent
                results.append((latency, lag, per_event))
        finally:
            if follower is not None:
                stop_service(follower)
            stop_service(leader)
            await nc.close()
    return results


async def sync_latency(tmp: Path, policy: Path, args: argparse.Namespace) -> None:
    """Every setup once per round, rounds interleaved, so that a before/after pair meets
    the same machine; then per setup and rate its rounds and their median p99."""
    sources = [None] if args.baseline is None else [args.baseline, None]
    setups = [Setup(standby, source) for standby in (False, True) for source in sources]
    measured: dict[Setup, dict[float, list[tuple[Latency, float | None, float | None]]]] = {
        setup: {rate: [] for rate in args.rates} for setup in setups
    }
    for run in range(args.latency_rounds):
        for setup in setups:
            got = await latency_round(tmp, policy, args.rates, args.seconds, setup, run)
            for rate, result in zip(args.rates, got, strict=True):
                measured[setup][rate].append(result)
    for setup in setups:
        print(f"{setup.label}:")
        for rate, rounds in measured[setup].items():
            print_latency(rate, [latency for latency, _, _ in rounds])
            if setup.standby:
                print(
                    f"standby at {rate:,.0f} events/s, per round: CPU per event "
                    + " / ".join(f"{(cost or 0) * 1e6:.2f} µs" for _, _, cost in rounds)
                    + "; lag when the producer stopped "
                    + " / ".join(f"{lag or 0:,.0f}" for _, lag, _ in rounds)
                )


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="invsync-partitions-") as tmpdir:
        tmp = Path(tmpdir)
        policy = tmp / "policy.toml"
        policy.write_text(POLICY)
        print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        if not args.latency_only:
            print(f"{args.events:,} order.placed events over {SKUS} SKUs per round")
            rates: dict[int, list[float]] = {1: [], 2: []}
            for run in range(args.rounds):
                for n in (1, 2):
                    rate, cpu = await aggregate_round(tmp, policy, args.events, n, run)
                    rates[n].append(rate)
                    shares = ", ".join(f"{name} {share:.0%}" for name, share in cpu.items())
                    print(
                        f"round {run + 1}, {n} partition{'s' if n > 1 else ''}: {rate:,.0f} events/s; "
                        f"share of a core: {shares}"
                    )
            one, two = (statistics.median(rates[n]) for n in (1, 2))
            print(
                f"median of {args.rounds} rounds: 1 partition {one:,.0f} events/s, "
                f"2 partitions {two:,.0f} events/s, ratio {two / one:.2f}"
            )
            for clients in (1, args.clients):
                cost = await reservation_cost(tmp, policy, clients, args.seconds)
                (s50, s99), (c50, c99) = cost["single"], cost["cross"]
                print(
                    f"reservation request/reply, 2 partitions, {clients} client(s): one partition "
                    f"p50 {s50 * 1000:.2f} ms, p99 {s99 * 1000:.2f} ms; across both p50 "
                    f"{c50 * 1000:.2f} ms, p99 {c99 * 1000:.2f} ms ({c50 / s50:.1f}× at p50)"
                )
        await sync_latency(tmp, policy, args)
        print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--latency-rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rates", type=float, nargs="+", default=[30_000.0, 50_000.0])
    parser.add_argument("--latency-only", action="store_true", help="only part 3, the sync latency")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a source tree (extension built) whose service part 3 also runs, "
        "round by round with this one: a before/after on the same machine",
    )
    asyncio.run(main(parser.parse_args()))
