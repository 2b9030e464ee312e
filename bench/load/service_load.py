"""Service load figures: how fast events go JetStream in → channel quantities out.

Run:  python bench/load/service_load.py [--events 300000] [--recovery-events 1000000]

Starts an embedded nats-server and `invsync serve` as a subprocess (its own
process and core, as in production), then prints, in one run:

1. raw ceiling: nats-py reading the preloaded stream and doing nothing else,
   both as a plain no-ack pull consumer (`fetch`, same batch size) and as a
   plain no-ack push consumer with flow control; the higher of the two is the
   ceiling;
2. sustained: the service started on that same preloaded stream of
   `order.placed` events (one event per message), timed from its first
   quantity message to the quantity message caused by a marker event at the end
   of the stream; events/s and its share of the ceiling. Ceiling and service
   are measured in turns, SUSTAINED_ROUNDS times (the figures are the medians).
   Beside them, the service's own reader (the same push consumer, read through
   its fast lane) doing nothing, to show what the lane saves;
3. sync latency p50/p99 at 50% of the sustained rate, in LATENCY_ROUNDS rounds
   against one service (the figure is the median round's): a paced producer in
   its own process (paced_producer.py, at a lower priority) stamps each event's
   `ts` with the wall clock; the service's histogram gives `ts` → publish, and a
   connector subscribed to `inv.qty.amazon` measures receipt − `source_ts`.
   Each round also reports the share of a core the service, nats-server and the
   producer used. One more round runs at `--headroom-rate` (30,000 events/s), a
   rate this machine carries with cores to spare, against a fresh service;
4. reservation request/reply p50/p99 with 64 concurrent clients, beside a
   trivial NATS responder (another process answering at once) in the same
   run, and the single-client round trip;
5. recovery: a stream of `--recovery-events` messages and a snapshot taken
   10,000 events before its end; time from `invsync serve` launch (interpreter
   start included) until it answers `inv.query.sku`.

Bulk stocking at set-up uses contract `batch` events (as a WMS would); every
measured order event is its own message. All traffic is on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import msgspec
import nats
import numpy as np
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from prometheus_client.parser import text_string_to_metric_families

from invsync.nats_server import NatsServer, free_port
from invsync.service import fastlane
from invsync.service.consumer import LogReader
from invsync.service.stream import ensure_stream
from invsync.service.subjects import Subjects

ROOT = Path(__file__).resolve().parents[2]
STREAM = "INVSYNC"
SKUS = 1000
CHANNELS = ("amazon", "walmart", "ebay")
FETCH_BATCH = 10_000
LATENCY_ROUNDS = 3
SUSTAINED_ROUNDS = 3
POLICY = """
[defaults]
safety = 0

[[tiers]]
tier = 1
protect = 0

[[tiers]]
tier = 2
protect = 50

[[locations]]
id = "wh-1"
kind = "warehouse"

[[channels]]
id = "shopify"
tier = 1

[[channels]]
id = "amazon"
tier = 2
share = 0.8

[[channels]]
id = "walmart"
tier = 2
share = 0.5

[[channels]]
id = "ebay"
tier = 2
cap = 50
"""


def now_ts() -> str:
    return datetime.now(UTC).isoformat()


ORDER = (
    b'{"type":"order.placed","event_id":"o-%d","ts":"%s","order_id":"o-%d","channel":"%s",'
    b'"lines":[{"line_id":"1","sku":"S%d","qty":1}]}'
)
CHANNEL_NAMES = tuple(channel.encode() for channel in CHANNELS)


def order(n: int, ts: str) -> bytes:
    """One `order.placed` of one unit; formatted from a template, so the paced
    producer spends its core on sending rather than on encoding."""
    return ORDER % (n, ts.encode(), n, CHANNEL_NAMES[n % len(CHANNELS)], n % SKUS)


def stock_batches(units: int, tag: str) -> list[bytes]:
    events = [
        {
            "type": "stock.set",
            "event_id": f"{tag}-{i}",
            "ts": now_ts(),
            "sku": f"S{i}",
            "location": "wh-1",
            "on_hand": units,
        }
        for i in range(SKUS)
    ]
    return [
        msgspec.json.encode(
            {"type": "batch", "event_id": f"{tag}-batch", "ts": now_ts(), "events": events}
        )
    ]


async def preload(nc: Client, count: int, start: int = 0, per_message: int = 1) -> None:
    """`count` order events into the stream with core publishes (stored by JetStream),
    one per message or `per_message` to a contract `batch`."""
    js = nc.jetstream()
    expected = (await js.stream_info(STREAM)).state.messages
    ts = now_ts()
    for first in range(start, start + count, per_message):
        numbers = range(first, min(first + per_message, start + count))
        if per_message == 1:
            body = order(first, ts)
        else:
            events = b",".join(order(n, ts) for n in numbers)
            body = b'{"type":"batch","event_id":"b-%d","ts":"%s","events":[%s]}' % (
                first,
                ts.encode(),
                events,
            )
        await nc.publish(f"inv.order.{CHANNELS[first % len(CHANNELS)]}", body)
        expected += 1
        if expected % 2000 == 0:
            await nc.flush()
    await nc.flush()
    while (await js.stream_info(STREAM)).state.messages < expected:
        await asyncio.sleep(0.05)


def start_service(
    url: str, state: Path, policy: Path, *extra: str, source: Path | None = None
) -> subprocess.Popen[bytes]:
    """`invsync serve` in its own process; with `source`, the package in that source
    tree's `python/` (with its extension built) instead of the installed one."""
    env = None
    if source is not None:
        env = {**os.environ, "PYTHONPATH": str(source / "python")}
    command = [
        sys.executable,
        "-m",
        "invsync.cli",
        "serve",
        "--nats",
        url,
        "--policy",
        str(policy),
        "--state",
        str(state),
        "--metrics-port",
        "0",
        "--log-level",
        "WARNING",
        "--fetch-batch",
        str(FETCH_BATCH),
        *extra,
    ]
    return subprocess.Popen(command, env=env)


def stop_service(service: subprocess.Popen[bytes]) -> None:
    service.terminate()
    service.wait(timeout=60)


async def wait_serving(nc: Client, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            await nc.request("inv.query.sku", b'{"sku": "S0"}', timeout=0.5)
            return
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
            await asyncio.sleep(0.01)
    raise TimeoutError("service did not start serving")


async def pull_ceiling(nc: Client, total: int) -> float:
    """Messages/s of a plain nats-py no-ack pull consumer, `fetch(FETCH_BATCH)`, no work."""
    config = ConsumerConfig(
        ack_policy=AckPolicy.NONE,
        deliver_policy=DeliverPolicy.ALL,
        filter_subjects=Subjects().stream_subjects,
        inactive_threshold=30.0,
    )
    sub = await nc.jetstream().pull_subscribe(
        "inv.>",
        stream=STREAM,
        config=config,
        pending_msgs_limit=1_000_000,
        pending_bytes_limit=512 * 1024 * 1024,
    )
    started = time.perf_counter()
    seen = 0
    while seen < total:
        try:
            # A short timeout, as the service used: nats-py turns a long one into
            # a lingering pull that the server feeds several times slower.
            seen += len(await sub.fetch(FETCH_BATCH, timeout=0.005))
        except (nats.errors.TimeoutError, TimeoutError):
            pass  # an idle fetch (nats-py raises either kind), not an error
    rate = seen / (time.perf_counter() - started)
    await sub.unsubscribe()
    return rate


async def push_ceiling(nc: Client, total: int) -> float:
    """Messages/s of a plain nats-py no-ack push consumer with flow control, no work."""
    done = asyncio.Event()
    seen = 0

    async def count(msg: Msg) -> None:
        nonlocal seen
        seen += 1
        if seen >= total:
            done.set()

    config = ConsumerConfig(
        ack_policy=AckPolicy.NONE,
        deliver_policy=DeliverPolicy.ALL,
        filter_subjects=Subjects().stream_subjects,
        flow_control=True,
        idle_heartbeat=1.0,
    )
    started = time.perf_counter()
    sub = await nc.jetstream().subscribe(
        "inv.>",
        stream=STREAM,
        cb=count,
        manual_ack=True,
        config=config,
        pending_msgs_limit=1_000_000,
        pending_bytes_limit=512 * 1024 * 1024,
    )
    await asyncio.wait_for(done.wait(), timeout=600)
    rate = seen / (time.perf_counter() - started)
    await sub.unsubscribe()
    return rate


async def reader_rate(url: str, total: int) -> float:
    """Messages/s of the service's own reader (push, flow control, fast lane), no work."""
    nc = Client()
    fastlane.install(nc)
    await nc.connect(url, pending_size=256 * 1024 * 1024)
    reader = LogReader(nc.jetstream(), STREAM, Subjects())
    await reader.open(0)
    started = time.perf_counter()
    seen = 0
    while seen < total:
        seen += len(await reader.fetch(FETCH_BATCH))
    rate = seen / (time.perf_counter() - started)
    await reader.close()
    await nc.close()
    return rate


async def sustained(
    nc: Client,
    url: str,
    tmp: Path,
    policy: Path,
    total: int,
    run: int = 0,
    credentials: tuple[str, ...] = (),
) -> float:
    """Service on the preloaded stream: first quantities out → marker's quantities out.

    Each `run` replays the whole stream into a fresh state directory; its marker
    goes at the end of the stream as it is then. `credentials` are the service's
    connection options on a server that runs with permissions."""
    first: list[float] = []
    marker_seen = asyncio.Event()
    sku = f"MARKER-{run}"

    async def on_qty(msg: Msg) -> None:
        if not first:
            first.append(time.perf_counter())
        if b'"%s"' % sku.encode() in msg.data:
            marker_seen.set()

    sub = await nc.subscribe("inv.qty.shopify", cb=on_qty)
    marker = msgspec.json.encode(
        {
            "type": "stock.set",
            "event_id": f"marker-{run}",
            "ts": now_ts(),
            "sku": sku,
            "location": "wh-1",
            "on_hand": 1,
        }
    )
    await nc.jetstream().publish("inv.stock.wh-1", marker)
    service = start_service(
        url, tmp / f"sustained-{run}", policy, "--snapshot-events", "100000000", *credentials
    )
    try:
        await asyncio.wait_for(marker_seen.wait(), timeout=600)
        rate = total / (time.perf_counter() - first[0])
    finally:
        stop_service(service)
        await sub.unsubscribe()
    return rate


def histogram_quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """Prometheus-style quantile from cumulative (upper bound, count) buckets."""
    total = buckets[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            share = (rank - lower_count) / max(count - lower_count, 1)
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return lower_bound


def service_latency_buckets(port: int) -> list[tuple[float, float]]:
    """invsync_sync_latency_seconds summed over channels, from the service's /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    counts: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "invsync_sync_latency_seconds":
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    bound = float(sample.labels["le"])
                    counts[bound] = counts.get(bound, 0.0) + sample.value
    return sorted(counts.items())


class Latency(NamedTuple):
    sent: int
    service_p50: float  # event ts → publish, the service's own histogram
    service_p99: float
    connector_p50: float  # event ts → receipt by a subscriber of inv.qty.amazon
    connector_p99: float
    cpu: dict[str, float]  # share of a core per process while the producer sent


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


PRODUCER = Path(__file__).with_name("paced_producer.py")
PRODUCER_NICE = 10


def paced_round(
    url: str, rate: float, seconds: float, first: int, watched: dict[str, int]
) -> tuple[dict[str, float], dict[str, float]]:
    """One round of paced_producer.py in its own process, at a lower priority; with
    the share of a core each `watched` process used while the producer was sending."""
    command = ["nice", "-n", str(PRODUCER_NICE), sys.executable, str(PRODUCER), url]
    command += [str(rate), str(seconds), str(first)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as producer:
        assert producer.stdout is not None
        lines = iter(producer.stdout)
        if next(lines).strip() != "sending":
            raise RuntimeError("paced producer did not start")
        began = time.perf_counter()
        before = {name: cpu_seconds(pid) for name, pid in watched.items()}
        if next(lines).strip() != "sent":
            raise RuntimeError("paced producer did not finish")
        elapsed = time.perf_counter() - began
        cpu = {name: (cpu_seconds(pid) - before[name]) / elapsed for name, pid in watched.items()}
        result: dict[str, float] = msgspec.json.decode(next(lines))
    if producer.returncode != 0:
        raise RuntimeError(f"paced producer exited with {producer.returncode}")
    cpu["producer"] = result["cpu"]
    return result, cpu


async def latency(
    nc: Client,
    url: str,
    server_pid: int,
    tmp: Path,
    policy: Path,
    rate: float,
    rounds: int,
    seconds: float,
    start: int,
) -> list[Latency]:
    """`rounds` rounds against one service; the service's figures per round are the
    difference of its latency histogram across the round."""
    port = free_port()
    service = start_service(
        url,
        tmp / f"latency-{rate:.0f}",
        policy,
        "--snapshot-events",
        "100000000",
        "--metrics-port",
        str(port),
    )
    results: list[Latency] = []
    try:
        await wait_serving(nc)
        await asyncio.sleep(0.5)
        first = start
        for _ in range(rounds):
            # The replay at start republishes old events: only what follows counts.
            before = dict(await asyncio.to_thread(service_latency_buckets, port))
            watched = {"service": service.pid, "server": server_pid}
            seen, cpu = await asyncio.to_thread(paced_round, url, rate, seconds, first, watched)
            after = await asyncio.to_thread(service_latency_buckets, port)
            buckets = [(bound, count - before.get(bound, 0.0)) for bound, count in after]
            sent = int(seen["sent"])
            first += sent
            results.append(
                Latency(
                    sent,
                    histogram_quantile(buckets, 0.5),
                    histogram_quantile(buckets, 0.99),
                    seen["connector_p50"],
                    seen["connector_p99"],
                    cpu,
                )
            )
    finally:
        stop_service(service)
    return results


def print_latency(rate: float, results: list[Latency]) -> None:
    for i, lat in enumerate(results, 1):
        shares = ", ".join(f"{name} {share:.0%}" for name, share in lat.cpu.items())
        print(
            f"sync latency at {rate:,.0f} events/s, round {i} ({lat.sent} events): "
            f"service (ts → publish) p50 {lat.service_p50 * 1000:.2f} ms, "
            f"p99 {lat.service_p99 * 1000:.2f} ms; "
            f"connector (ts → receipt) p50 {lat.connector_p50 * 1000:.2f} ms, "
            f"p99 {lat.connector_p99 * 1000:.2f} ms; share of a core while sending: {shares}"
        )
    p99s = sorted(lat.service_p99 for lat in results)
    print(
        f"sync latency p99 at {rate:,.0f} events/s, median of {len(results)} rounds: "
        f"{p99s[len(p99s) // 2] * 1000:.2f} ms"
    )


def start_responder(url: str) -> subprocess.Popen[bytes]:
    code = (
        "import asyncio, nats\n"
        "async def main():\n"
        f"    nc = await nats.connect({url!r})\n"
        "    async def echo(msg):\n"
        "        await msg.respond(b'{\"ok\": true}')\n"
        "    await nc.subscribe('bench.echo', cb=echo)\n"
        "    await asyncio.Event().wait()\n"
        "asyncio.run(main())\n"
    )
    return subprocess.Popen([sys.executable, "-c", code])


async def trivial_responder(
    nc: Client, url: str, clients: int, seconds: float
) -> tuple[float, float]:
    """p50/p99 of request/reply to a responder in another process that answers at once."""
    responder = start_responder(url)
    rtts: list[float] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                await nc.request("bench.echo", b"{}", timeout=0.5)
                break
            except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)

        async def client() -> None:
            began = time.perf_counter()
            while time.perf_counter() - began < seconds:
                sent = time.perf_counter()
                await nc.request("bench.echo", b'{"type": "reserve"}', timeout=10)
                rtts.append(time.perf_counter() - sent)

        await asyncio.gather(*(client() for _ in range(clients)))
    finally:
        stop_service(responder)
    arr = np.array(rtts)
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


async def reservations(
    nc: Client, url: str, tmp: Path, policy: Path, clients: int, seconds: float
) -> tuple[float, float, float]:
    rtts: list[float] = []
    service = start_service(url, tmp / "reserve", policy, "--snapshot-events", "100000000")
    try:
        await wait_serving(nc)
        await asyncio.sleep(0.5)  # the start-up snapshot and first flushes are not measured

        async def client(number: int) -> None:
            i = 0
            began = time.perf_counter()
            while time.perf_counter() - began < seconds:
                i += 1
                body = msgspec.json.encode(
                    {
                        "type": "reserve",
                        "request_id": f"bench-{number}-{i}",
                        "order_id": f"bench-{number}-{i}",
                        "channel": "shopify",
                        "hold_seconds": 60,
                        "lines": [
                            {"line_id": "1", "sku": f"S{(number * 7919 + i) % SKUS}", "qty": 1}
                        ],
                    }
                )
                sent = time.perf_counter()
                await nc.request("inv.reserve.shopify", body, timeout=10)
                rtts.append(time.perf_counter() - sent)

        began = time.perf_counter()
        await asyncio.gather(*(client(c) for c in range(clients)))
        elapsed = time.perf_counter() - began
    finally:
        stop_service(service)
    arr = np.array(rtts)
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99)), len(rtts) / elapsed


async def recovery(tmp: Path, policy: Path, total: int) -> tuple[float, int]:
    """A fresh server: `total` events, snapshot at total − 10,000, then time a cold start."""
    # Here and below the servers run without permissions: the raw log reader and
    # the echo responder that measure NATS's own floor are no invsync roles.
    with NatsServer(permissions=False) as server:
        nc = await nats.connect(server.url, pending_size=256 * 1024 * 1024)
        js = nc.jetstream()
        await ensure_stream(js, STREAM, Subjects(), 120)
        for body in stock_batches(10**9, "stock"):
            await js.publish("inv.stock.wh-1", body)
        await preload(nc, total - 10_000 - 1)
        service = start_service(
            server.url, tmp / "recovery", policy, "--snapshot-events", "100000000"
        )
        await wait_serving(nc, timeout_s=600)  # it serves once it has replayed the stream
        stop_service(service)  # graceful: a snapshot at the stream's end so far
        await preload(nc, 10_000, start=total - 10_000 - 1)
        began = time.perf_counter()
        service = start_service(
            server.url, tmp / "recovery", policy, "--snapshot-events", "100000000"
        )
        await wait_serving(nc, timeout_s=600)
        elapsed = time.perf_counter() - began
        stop_service(service)
        messages = (await js.stream_info(STREAM)).state.messages
        await nc.close()
    return elapsed, messages


async def batched(tmp: Path, policy: Path, total: int, per_message: int) -> tuple[float, float]:
    """Ceiling and sustained events/s when a bulk producer sends `batch` messages."""
    with NatsServer(permissions=False) as server:
        nc = await nats.connect(server.url, pending_size=256 * 1024 * 1024)
        await ensure_stream(nc.jetstream(), STREAM, Subjects(), 120)
        for body in stock_batches(10**9, "stock"):
            await nc.jetstream().publish("inv.stock.wh-1", body)
        await preload(nc, total, per_message=per_message)
        messages = -(-total // per_message) + 1
        raw = await push_ceiling(nc, messages) * total / messages
        rate = await sustained(nc, server.url, tmp, policy, total)
        await nc.close()
    return raw, rate


async def main(args: argparse.Namespace) -> None:
    with (
        NatsServer(permissions=False) as server,
        tempfile.TemporaryDirectory(prefix="invsync-load-") as tmpdir,
    ):
        tmp = Path(tmpdir)
        policy = tmp / "policy.toml"
        policy.write_text(POLICY)
        nc = await nats.connect(server.url, pending_size=256 * 1024 * 1024)
        js = nc.jetstream()
        await ensure_stream(js, STREAM, Subjects(), 120)
        for body in stock_batches(10**9, "stock"):
            await js.publish("inv.stock.wh-1", body)
        print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        await preload(nc, args.events)
        # Ceiling and service in turns, so each ratio compares neighbours in time.
        rounds: list[tuple[float, float]] = []
        for run in range(SUSTAINED_ROUNDS):
            pull = await pull_ceiling(nc, args.events + 1 + run)
            push = await push_ceiling(nc, args.events + 1 + run)
            raw = max(pull, push)
            rate = await sustained(nc, server.url, tmp, policy, args.events, run)
            rounds.append((raw, rate))
            print(
                f"round {run + 1}: raw ceiling, nats-py no-ack pull fetch({FETCH_BATCH}) "
                f"{pull:,.0f} / push + flow control {push:,.0f} events/s, no work; "
                f"service sustained, order.placed 1 per message: {rate:,.0f} events/s "
                f"({rate / raw:.0%} of that round's ceiling)"
            )
        raw = statistics.median(raw for raw, _ in rounds)
        rate = statistics.median(rate for _, rate in rounds)
        share = statistics.median(rate / raw for raw, rate in rounds)
        print(
            f"median of {SUSTAINED_ROUNDS} rounds: ceiling {raw:,.0f} events/s, service "
            f"{rate:,.0f} events/s, {share:.0%} of the ceiling"
        )
        own = await reader_rate(server.url, args.events + 1 + SUSTAINED_ROUNDS)
        print(
            f"the service's own reader (push + flow control + fast lane), no work: "
            f"{own:,.0f} events/s ({own / raw:.1f}× the ceiling)"
        )
        server_pid = server.pid
        assert server_pid is not None
        # Half the sustained rate (the target's), then a rate this machine carries with room.
        for paced, rounds_run, first in (
            (rate / 2, LATENCY_ROUNDS, args.events),
            (args.headroom_rate, 1, args.events + 10**7),
        ):
            results = await latency(
                nc, server.url, server_pid, tmp, policy, paced, rounds_run, args.seconds, first
            )
            print_latency(paced, results)
        t50, t99 = await trivial_responder(nc, server.url, 64, args.seconds)
        print(
            f"trivial NATS responder, 64 clients: p50 {t50 * 1000:.2f} ms, p99 {t99 * 1000:.2f} ms"
        )
        r50, r99, rps = await reservations(nc, server.url, tmp, policy, 64, args.seconds)
        print(
            f"reservation request/reply, 64 clients: p50 {r50 * 1000:.2f} ms, "
            f"p99 {r99 * 1000:.2f} ms, {rps:,.0f} req/s ({r99 / t99:.1f}× the trivial p99)"
        )
        s50, s99, _ = await reservations(nc, server.url, tmp, policy, 1, min(args.seconds, 3.0))
        print(
            f"reservation request/reply, 1 client: p50 {s50 * 1000:.2f} ms, p99 {s99 * 1000:.2f} ms"
        )
        await nc.close()
        raw_b, rate_b = await batched(tmp / "batched", policy, args.events, 100)
        print(
            f"bulk producer, order.placed in batches of 100: ceiling {raw_b:,.0f} events/s, "
            f"service {rate_b:,.0f} events/s"
        )
        took, messages = await recovery(tmp, policy, args.recovery_events)
        print(
            f"recovery: {messages:,} messages in the stream, snapshot 10,000 behind: "
            f"{took:.2f} s from launch to serving"
        )
        print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--recovery-events", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--headroom-rate",
        type=float,
        default=30_000,
        help="events/s of one more latency round, at a rate this machine carries with room",
    )
    asyncio.run(main(parser.parse_args()))
