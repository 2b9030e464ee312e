"""The reservation workload every approach runs, and what a run of it measured.

All approaches replay the same seeded operation sequence, so a sequential run
must grant exactly what `reference_granted` computes: that makes a wrong
conditional decrement visible in the table, not only a slow one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

TIER_FLOOR = {1: 0, 2: 20}
"""Units a tier-t request must leave behind: tier 1 may take all, tier 2 stops at 20."""


@dataclass(frozen=True)
class ZipfWorkload:
    """Conditional decrements over many SKUs with Zipf-skewed (hot-SKU) demand."""

    skus: int
    stock: int
    sku: npt.NDArray[np.uint32]
    qty: npt.NDArray[np.int64]
    tier: npt.NDArray[np.uint8]

    @classmethod
    def generate(
        cls, skus: int, ops: int, stock: int = 100, zipf_s: float = 1.1, seed: int = 7
    ) -> ZipfWorkload:
        rng = np.random.default_rng(seed)
        weights = 1.0 / np.arange(1, skus + 1, dtype=np.float64) ** zipf_s
        # Hot SKUs are scattered over the id space, as real catalogues are.
        rank_to_sku = rng.permutation(skus).astype(np.uint32)
        ranks = rng.choice(skus, size=ops, p=weights / weights.sum())
        return cls(
            skus=skus,
            stock=stock,
            sku=rank_to_sku[ranks],
            qty=rng.integers(1, 4, size=ops, dtype=np.int64),
            tier=rng.integers(1, 3, size=ops, dtype=np.uint8),
        )

    @property
    def ops(self) -> int:
        return len(self.sku)

    def floors(self) -> npt.NDArray[np.int64]:
        return np.where(self.tier == 1, TIER_FLOOR[1], TIER_FLOOR[2]).astype(np.int64)

    def as_rows(self, count: int) -> list[tuple[int, int, int]]:
        """The first `count` operations as plain (sku, qty, floor) tuples for client loops."""
        return list(
            zip(
                self.sku[:count].tolist(),
                self.qty[:count].tolist(),
                self.floors()[:count].tolist(),
                strict=True,
            )
        )


def reference_granted(workload: ZipfWorkload, count: int) -> int:
    """Units granted when the first `count` operations run one after another."""
    available = [workload.stock] * workload.skus
    granted = 0
    for sku, qty, floor in workload.as_rows(count):
        if available[sku] - qty >= floor:
            available[sku] -= qty
            granted += qty
    return granted


@dataclass(frozen=True)
class FlashSale:
    """One SKU, fixed stock, many clients each asking for one unit at a time."""

    stock: int
    clients: int
    attempts_per_client: int

    @property
    def attempts(self) -> int:
        return self.clients * self.attempts_per_client


@dataclass(frozen=True)
class Measurement:
    """One approach on one case: how fast, how long each call waited, what it granted."""

    approach: str
    case: str
    clients: int
    ops: int
    seconds: float
    latencies_ns: npt.NDArray[np.int64]
    latency_of: str
    granted_units: int
    atomic: bool
    decides_grants: bool = True
    """False for rows that only carry traffic (a NATS echo, post-sale orders that always commit)."""

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.seconds if self.seconds > 0 else 0.0

    def latency_us(self, percentile: float) -> float:
        if len(self.latencies_ns) == 0:
            return float("nan")
        return float(np.percentile(self.latencies_ns, percentile)) / 1000.0


@dataclass(frozen=True)
class Skipped:
    """An approach that could not run here, with the reason shown in the table."""

    approach: str
    case: str
    reason: str


Outcome = Measurement | Skipped


@dataclass
class ClientResult:
    """What one client loop reports back: operations done, units granted, call latencies."""

    ops: int = 0
    granted_units: int = 0
    latencies_ns: list[int] = field(default_factory=list)

    def record(self, started_ns: int, ops: int, granted_units: int) -> None:
        """Count one call that started at `started_ns` and just returned."""
        self.latencies_ns.append(time.perf_counter_ns() - started_ns)
        self.ops += ops
        self.granted_units += granted_units


def run_clients(
    clients: Sequence[Callable[[ClientResult], None]],
) -> tuple[list[ClientResult], float]:
    """Run client loops on threads released together; return their results and wall time.

    The drivers under test (redis-py, psycopg, the engine's batch calls) release
    the GIL while they wait, so threads give real concurrency at the server.
    """
    results = [ClientResult() for _ in clients]
    start = threading.Barrier(len(clients) + 1)

    def body(client: Callable[[ClientResult], None], result: ClientResult) -> None:
        start.wait()
        client(result)

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        futures = [
            pool.submit(body, client, result)
            for client, result in zip(clients, results, strict=True)
        ]
        start.wait()
        began = time.perf_counter()
        for future in futures:
            future.result()  # re-raises a client's error here
        elapsed = time.perf_counter() - began
    return results, elapsed


def measurement(
    approach: str,
    case: str,
    results: Sequence[ClientResult],
    seconds: float,
    latency_of: str,
    atomic: bool,
    decides_grants: bool = True,
) -> Measurement:
    """Merge client results into one table row."""
    latencies = [ns for result in results for ns in result.latencies_ns]
    return Measurement(
        approach=approach,
        case=case,
        clients=len(results),
        ops=sum(result.ops for result in results),
        seconds=seconds,
        latencies_ns=np.asarray(latencies, dtype=np.int64),
        latency_of=latency_of,
        granted_units=sum(result.granted_units for result in results),
        atomic=atomic,
        decides_grants=decides_grants,
    )
