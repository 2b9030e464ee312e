"""The invsync service over NATS: reservation request/reply and the JetStream event stream.

An embedded nats-server, and `invsync serve` in its own process as in
production (as Redis and PostgreSQL run in theirs); the clients are plain
nats-py connections in this process, as an OMS or storefront would use. The
trivial responder it is compared with is its own process too. Each case
reserves from its own freshly stocked SKUs, so cases do not see each other's
holds.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import msgspec
import nats
import numpy as np
from engine_peer import CHANNEL_OF_TIER, POLICY_TOML
from nats.aio.client import Client
from servers import ServerUnavailable
from workload import ClientResult, FlashSale, Measurement, ZipfWorkload, measurement

from invsync.nats_server import NatsServer, free_port

LOCATION = "wh-1"
STOCK_BATCH = 1000
REQUEST_TIMEOUT_S = 10.0
READY_TIMEOUT_S = 60.0
APPLIED_POLL_S = 0.05
APPLY_GRACE_S = 60.0
CHANNEL = CHANNEL_OF_TIER[1]
ECHO_SUBJECT = "bench.echo"
EVENTS_IN_FLIGHT = 256


@dataclass
class ServiceUnderTest:
    """A running service: where to reach it, and its metrics endpoint to see its progress."""

    url: str
    metrics_port: int

    def applied_sequence(self) -> int:
        """The stream sequence the service has applied (blocking: one scrape)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        text = urllib.request.urlopen(url, timeout=READY_TIMEOUT_S).read().decode()
        for line in text.splitlines():
            if line.startswith("invsync_stream_sequence "):
                return int(float(line.split()[1]))
        return 0


@contextmanager
def own_process(name: str, command: list[str], ready: Callable[[], bool]) -> Iterator[None]:
    """Run `command` while the block runs, once `ready()`; stopped (SIGTERM) on exit."""
    process = subprocess.Popen(command)
    try:
        give_up = time.monotonic() + READY_TIMEOUT_S
        while not ready():
            if process.poll() is not None or time.monotonic() > give_up:
                raise ServerUnavailable(f"{name} did not start (exit code {process.poll()})")
            time.sleep(0.05)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=READY_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running_service() -> Iterator[ServiceUnderTest]:
    """nats-server plus `invsync serve`, stopped (state saved) on exit."""
    # Permissions off: the echo responder probing the NATS floor is no invsync role.
    with (
        NatsServer(permissions=False) as server,
        tempfile.TemporaryDirectory(prefix="invsync-peers-") as tmp,
    ):
        policy = Path(tmp) / "policy.toml"
        policy.write_text(POLICY_TOML)
        service = ServiceUnderTest(url=server.url, metrics_port=free_port())
        command = [sys.executable, "-m", "invsync.cli", "serve", "--nats", server.url]
        command += ["--policy", str(policy), "--state", str(Path(tmp) / "state")]
        command += ["--metrics-port", str(service.metrics_port), "--log-level", "WARNING"]

        def serving() -> bool:  # the metrics endpoint opens once the service serves
            try:
                service.applied_sequence()
            except OSError:
                return False
            return True

        with own_process("invsync serve", command, serving):
            yield service


def _sku(case: str, number: int) -> str:
    return f"{case}-{number:05d}"


def _event(kind: str, event_id: str, **fields: object) -> dict[str, object]:
    return {"type": kind, "event_id": event_id, "ts": "2026-11-23T10:00:00Z", **fields}


async def _publish_all(
    nc: Client,
    subject: str,
    messages: list[tuple[bytes, int]],
    window: int,
    result: ClientResult,
    deadline: float,
) -> int:
    """JetStream-publish (payload, events in it) pairs, `window` in flight, until the deadline.

    Returns the stream sequence of the last message stored.
    """
    js = nc.jetstream()
    last = 0

    async def one(payload: bytes, events: int) -> int:
        started = time.perf_counter_ns()
        ack = await js.publish(subject, payload, timeout=REQUEST_TIMEOUT_S)
        result.record(started, events, 0)
        return int(ack.seq)

    for start in range(0, len(messages), window):
        if time.perf_counter() > deadline:
            break
        sequences = await asyncio.gather(*(one(*m) for m in messages[start : start + window]))
        last = max(last, *sequences)
    return last


async def _until_applied(service: ServiceUnderTest, sequence: int, deadline: float) -> None:
    # Each look is a scrape the service renders: often enough to time a run of
    # seconds to about 1 %, rarely enough not to slow the service down.
    while await asyncio.to_thread(service.applied_sequence) < sequence:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"service did not apply stream sequence {sequence} in time")
        await asyncio.sleep(APPLIED_POLL_S)


async def _stock(
    service: ServiceUnderTest, nc: Client, skus: list[str], units: int, deadline: float
) -> None:
    """Put `units` on hand for each SKU, in `batch` events, and wait until they are applied."""
    sets = [
        _event("stock.set", f"set-{sku}", sku=sku, location=LOCATION, on_hand=units) for sku in skus
    ]
    messages = _batched(sets, STOCK_BATCH, f"stock-{skus[0]}")
    # Stocking is set-up, not measured, so it is not cut short by the deadline.
    last = await _publish_all(
        nc, f"inv.stock.{LOCATION}", messages, 16, ClientResult(), float("inf")
    )
    await _until_applied(service, last, deadline)


def _batched(events: list[dict[str, object]], size: int, batch_id: str) -> list[tuple[bytes, int]]:
    """Messages of `size` events each (a contract `batch`), or one event per message."""
    if size == 1:
        return [(msgspec.json.encode(event), 1) for event in events]
    return [
        (
            msgspec.json.encode(_event("batch", f"{batch_id}-{i}", events=events[i : i + size])),
            len(events[i : i + size]),
        )
        for i in range(0, len(events), size)
    ]


def _reserve_request(case: str, number: int, sku: str, qty: int, tier: int) -> tuple[str, bytes]:
    channel = CHANNEL_OF_TIER[tier]
    body = {
        "type": "reserve",
        "request_id": f"{case}-r-{number}",
        "order_id": f"{case}-o-{number}",
        "channel": channel,
        "hold_seconds": 600,
        "lines": [{"line_id": "1", "sku": sku, "qty": qty}],
    }
    return f"inv.reserve.{channel}", msgspec.json.encode(body)


async def _request_clients(
    nc: Client, requests: list[tuple[str, bytes, int]], clients: int, deadline: float
) -> tuple[list[ClientResult], float]:
    """`clients` concurrent requesters sharing `requests` (subject, body, qty) round-robin."""

    async def client(mine: list[tuple[str, bytes, int]], result: ClientResult) -> None:
        for subject, body, qty in mine:
            if time.perf_counter() > deadline:
                break
            started = time.perf_counter_ns()
            reply = msgspec.json.decode((await nc.request(subject, body, REQUEST_TIMEOUT_S)).data)
            result.record(started, 1, qty if reply.get("ok") else 0)

    results = [ClientResult() for _ in range(clients)]
    began = time.perf_counter()
    await asyncio.gather(
        *(client(requests[i::clients], result) for i, result in enumerate(results))
    )
    return results, time.perf_counter() - began


class ServicePeer:
    """The cases, each an async function run on the benchmark thread's own event loop."""

    def __init__(self, service: ServiceUnderTest) -> None:
        self.service = service

    def _run(self, body: Callable[[Client], Awaitable[Measurement]]) -> Measurement:
        async def main() -> Measurement:
            nc = await nats.connect(self.service.url, pending_size=64 * 1024 * 1024)
            try:
                return await body(nc)
            finally:
                await nc.drain()

        return asyncio.run(main())

    def request_reply(
        self, workload: ZipfWorkload, count: int, clients: int, deadline: float
    ) -> Measurement:
        """Reservations as contract requests on inv.reserve.<channel>, `clients` in flight."""
        case = f"rr{clients}"

        async def body(nc: Client) -> Measurement:
            skus = [_sku(case, n) for n in range(workload.skus)]
            await _stock(self.service, nc, skus, workload.stock, deadline)
            requests = [
                (*_reserve_request(case, n, skus[sku], qty, tier), qty)
                for n, (sku, qty, tier) in enumerate(_ops(workload, count))
            ]
            results, seconds = await _request_clients(nc, requests, clients, deadline)
            return measurement(
                f"invsync service, request/reply, {clients} in flight",
                "zipf",
                results,
                seconds,
                "op",
                True,
            )

        return self._run(body)

    def trivial(self, count: int, clients: int, deadline: float) -> Measurement:
        """Requests to the trivial responder: the NATS round trip alone, same clients."""

        async def body(nc: Client) -> Measurement:
            requests = [(ECHO_SUBJECT, b"{}", 0)] * count
            results, seconds = await _request_clients(nc, requests, clients, deadline)
            return measurement(
                f"NATS request/reply to a trivial responder, {clients} in flight",
                "zipf",
                results,
                seconds,
                "op",
                False,
                decides_grants=False,
            )

        return self._run(body)

    def flash(self, sale: FlashSale, deadline: float) -> Measurement:
        """The flash sale through request/reply: `sale.clients` requesters, one unit each."""

        async def body(nc: Client) -> Measurement:
            sku = _sku("flash", 0)
            await _stock(self.service, nc, [sku], sale.stock, deadline)
            requests = [(*_reserve_request("flash", n, sku, 1, 1), 1) for n in range(sale.attempts)]
            results, seconds = await _request_clients(nc, requests, sale.clients, deadline)
            return measurement(
                "invsync service, request/reply", "flash", results, seconds, "op", True
            )

        return self._run(body)

    def event_stream(
        self, workload: ZipfWorkload, count: int, per_message: int, deadline: float
    ) -> Measurement:
        """Post-sale `order.placed` events into JetStream, timed until the service applied all.

        Stock is ample, so every line commits (no backorders): the figure is the
        durable log plus the apply path, not refusals.
        """
        case = f"es{per_message}"

        async def body(nc: Client) -> Measurement:
            skus = [_sku(case, n) for n in range(workload.skus)]
            await _stock(self.service, nc, skus, 1_000_000_000, deadline)
            orders = [
                _event(
                    "order.placed",
                    f"{case}-e-{n}",
                    order_id=f"{case}-o-{n}",
                    channel=CHANNEL,
                    lines=[{"line_id": "1", "sku": skus[sku], "qty": qty}],
                )
                for n, (sku, qty, _) in enumerate(_ops(workload, count))
            ]
            messages = _batched(orders, per_message, case)
            result = ClientResult()
            began = time.perf_counter()
            # About EVENTS_IN_FLIGHT events unacknowledged at a time, however they are packed.
            window = max(2, EVENTS_IN_FLIGHT // per_message)
            last = await _publish_all(
                nc, f"inv.order.{CHANNEL}", messages, window, result, deadline
            )
            await _until_applied(self.service, last, deadline + APPLY_GRACE_S)
            seconds = time.perf_counter() - began
            unit = "message" if per_message == 1 else f"message of {per_message} events"
            return measurement(
                f"invsync service, event stream, {per_message} per message",
                "zipf",
                [result],
                seconds,
                f"JetStream publish ack, {unit}",
                True,
                decides_grants=False,
            )

        return self._run(body)


def _ops(workload: ZipfWorkload, count: int) -> Iterator[tuple[int, int, int]]:
    """The first `count` operations as (sku number, qty, tier)."""
    return zip(
        workload.sku[:count].tolist(),
        workload.qty[:count].tolist(),
        workload.tier[:count].astype(np.int64).tolist(),
        strict=True,
    )


@contextmanager
def trivial_responder(url: str) -> Iterator[None]:
    """A responder in its own process that answers every request at once, like the
    service's process: its latency is the floor any request/reply service on this
    NATS server sits on."""
    code = (
        "import asyncio, nats\n"
        "async def main():\n"
        f"    nc = await nats.connect({url!r})\n"
        "    async def answer(msg):\n"
        "        await msg.respond(b'{\"ok\":true}')\n"
        f"    await nc.subscribe({ECHO_SUBJECT!r}, cb=answer)\n"
        "    await asyncio.Event().wait()\n"
        "asyncio.run(main())\n"
    )

    def answering() -> bool:
        async def ask() -> bool:
            nc = await nats.connect(url)
            try:
                await nc.request(ECHO_SUBJECT, b"{}", timeout=0.5)
            except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
                return False
            finally:
                await nc.close()
            return True

        return asyncio.run(ask())

    with own_process("trivial NATS responder", [sys.executable, "-c", code], answering):
        yield
