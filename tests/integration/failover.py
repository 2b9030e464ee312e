"""A leader and a standby as `invsync serve` processes, and reservation clients that
retry until answered: what the failover test and the failover benchmark share.

Each client attempt has a reply inbox of its own that stays subscribed, so a late
answer, or a second one, to any attempt is seen. A retry keeps its request_id: the
service answers a duplicate with the first decision.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field

import anyio
import msgspec
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from prometheus_client.parser import text_string_to_metric_families

from invsync.nats_server import NatsServer, free_port
from tests.service.harness import EXAMPLE_POLICY, cli_connection

CHANNEL = "shopify"
ATTEMPT_TIMEOUT_S = 0.25


@dataclass
class ServiceProcess:
    process: subprocess.Popen[bytes]
    metrics_port: int

    def metric(self, name: str) -> float | None:
        """A sample of the process's /metrics (partition 0), None when unreachable."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                text = response.read().decode()
        except OSError:
            return None
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name:
                    return float(sample.value)
        return None

    async def wait_metric(self, name: str, value: float, timeout_s: float) -> None:
        with anyio.fail_after(timeout_s):
            while await anyio.to_thread.run_sync(self.metric, name) != value:
                await anyio.sleep(0.05)


def start_service(
    server: NatsServer, *, standby: bool, extra: tuple[str, ...] = ()
) -> ServiceProcess:
    """`invsync serve` with snapshots in the server's object store, shared by both."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "invsync.cli",
        "serve",
        *cli_connection(server, "service"),
        "--policy",
        str(EXAMPLE_POLICY),
        "--metrics-port",
        str(port),
        "--lease-s",
        "1",
        "--log-level",
        "WARNING",
        *(["--standby"] if standby else []),
        *extra,
    ]
    return ServiceProcess(subprocess.Popen(command), port)


@dataclass
class Attempt:
    request_id: str
    sent_at: float
    answers: list[dict[str, object]] = field(default_factory=list)
    answered_at: float | None = None


class ReservationClients:
    """Clients that reserve one unit of a SKU each time, retrying a request until answered."""

    def __init__(self, nc: Client, skus: list[str]) -> None:
        self.nc = nc
        self.skus = skus
        self.attempts: dict[str, Attempt] = {}
        self.decided: dict[str, dict[str, object]] = {}  # request_id -> first answer
        self.granted: dict[str, int] = dict.fromkeys(skus, 0)
        self._inbox = nc.new_inbox()
        self._answered: dict[str, anyio.Event] = {}

    async def start(self) -> None:
        await self.nc.subscribe(f"{self._inbox}.>", cb=self._on_answer)

    async def _on_answer(self, msg: Msg) -> None:
        if msg.headers and "Status" in msg.headers:
            return  # the server's "no responders": nobody serves at this moment
        attempt = self.attempts[msg.subject]
        answer = msgspec.json.decode(msg.data)
        attempt.answers.append(answer)
        if attempt.answered_at is None:
            attempt.answered_at = time.monotonic()
        if attempt.request_id not in self.decided:
            self.decided[attempt.request_id] = answer
            self._answered[attempt.request_id].set()

    async def reserve(self, request_id: str, sku: str, deadline_s: float) -> dict[str, object]:
        """Until answered (retrying), or TimeoutError after `deadline_s`."""
        body = msgspec.json.encode(
            {
                "type": "reserve",
                "request_id": request_id,
                "order_id": f"o-{request_id}",
                "channel": CHANNEL,
                "hold_seconds": 3600,
                "lines": [{"line_id": "1", "sku": sku, "qty": 1}],
            }
        )
        answered = self._answered[request_id] = anyio.Event()
        with anyio.fail_after(deadline_s):
            for n in range(1_000_000):
                inbox = f"{self._inbox}.{request_id}.{n}"
                self.attempts[inbox] = Attempt(request_id, time.monotonic())
                try:
                    await self.nc.publish(f"inv.reserve.{CHANNEL}", body, reply=inbox)
                except nats.errors.Error:
                    pass
                with anyio.move_on_after(ATTEMPT_TIMEOUT_S):
                    await answered.wait()
                if answered.is_set():
                    break
        answer = self.decided[request_id]
        if answer.get("ok"):
            self.granted[sku] += 1
        return answer

    async def run(self, name: str, stop: anyio.Event, deadline_s: float, limit: int) -> None:
        """One client: reservations one after another until `stop` (at most `limit`)."""
        for n in range(limit):
            if stop.is_set():
                return
            await self.reserve(f"{name}-{n}", self.skus[n % len(self.skus)], deadline_s)
            await anyio.sleep(0.01)

    def answers_per_attempt(self) -> int:
        return max((len(a.answers) for a in self.attempts.values()), default=0)

    def first_answer_after(self, moment: float) -> float | None:
        """When the first attempt sent after `moment` (monotonic) was answered."""
        return min(
            (
                a.answered_at
                for a in self.attempts.values()
                if a.sent_at >= moment and a.answered_at is not None
            ),
            default=None,
        )
