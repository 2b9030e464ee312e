"""Side-by-side reservation benchmark: invsync against Redis Lua and PostgreSQL UPDATE.

    python bench/peers/run.py [--quick] [--out bench/RESULTS.md] [--json FILE]

Installs redis-server and postgresql from Debian packages when missing, runs
private instances on free loopback ports, and stops them at the end. Every
approach runs the same seeded workload; every loop is bounded in count and
time. Exits 1 when an approach grants a wrong amount or an atomic one oversells.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import report
import servers
from report import Row, Target
from workload import FlashSale, Measurement, Skipped, ZipfWorkload, reference_granted

PIPELINE = 1000
ENGINE_BATCH = 1000
ENGINE_FLASH_BATCH = 100
EVENTS_PER_MESSAGE = 1000
REQUESTERS = 64
PEERS_HINT = "pip install -e '.[peers]'"
INVSYNC_HINT = "build and install invsync: pip install -e ."


@dataclass(frozen=True)
class Sizes:
    """How much each approach runs: operation counts, and a wall-clock cap per approach."""

    skus: int
    redis_single: int
    redis_pipelined: int
    postgres_single: int
    postgres_pooled: int
    postgres_connections: int
    engine_calls: int
    engine_batch_ops: int
    engine_batch_passes: int
    flash: FlashSale
    engine_flash: FlashSale
    service_requests: int
    service_pooled: int
    service_events: int
    service_events_batched: int
    time_limit_s: float

    @property
    def zipf_ops(self) -> int:
        return max(
            self.redis_single,
            self.redis_pipelined,
            self.postgres_single,
            self.postgres_pooled,
            self.engine_calls,
            self.engine_batch_ops,
            self.service_requests,
            self.service_pooled,
            self.service_events,
            self.service_events_batched,
        )


FULL = Sizes(
    skus=10_000,
    redis_single=20_000,
    redis_pipelined=200_000,
    postgres_single=5_000,
    postgres_pooled=20_000,
    postgres_connections=8,
    engine_calls=100_000,
    engine_batch_ops=1_000_000,
    engine_batch_passes=10,
    flash=FlashSale(stock=1_000, clients=8, attempts_per_client=500),
    engine_flash=FlashSale(stock=1_000, clients=8, attempts_per_client=200_000),
    service_requests=2_000,
    service_pooled=20_000,
    service_events=50_000,
    service_events_batched=500_000,
    time_limit_s=60.0,
)
QUICK = Sizes(
    skus=10_000,
    redis_single=300,
    redis_pipelined=2_000,
    postgres_single=200,
    postgres_pooled=400,
    postgres_connections=8,
    engine_calls=2_000,
    engine_batch_ops=20_000,
    engine_batch_passes=2,
    flash=FlashSale(stock=100, clients=8, attempts_per_client=25),
    engine_flash=FlashSale(stock=100, clients=8, attempts_per_client=2_000),
    service_requests=200,
    service_pooled=1_000,
    service_events=1_000,
    service_events_batched=5_000,
    time_limit_s=10.0,
)


class Run:
    """Collects rows and versions while the approaches run, one group at a time."""

    def __init__(self, sizes: Sizes) -> None:
        self.sizes = sizes
        self.workload = ZipfWorkload.generate(sizes.skus, sizes.zipf_ops)
        self.rows: list[Row] = []
        self.versions = {
            "Python": platform.python_version(),
            "numpy": importlib.metadata.version("numpy"),
        }

    def deadline(self) -> float:
        return time.perf_counter() + self.sizes.time_limit_s

    def sequential(self, measured: Measurement, replayed: int | None = None) -> None:
        """Add a single-client zipf row, checked against the reference grants.

        `replayed`: the operation count replayed per pass, for runs that repeat it.
        """
        if replayed is None:
            expected = reference_granted(self.workload, measured.ops)
        else:
            expected = measured.ops // replayed * reference_granted(self.workload, replayed)
        self.rows.append(Row(measured, expected_units=expected))

    def zipf(self, measured: Measurement) -> None:
        self.rows.append(Row(measured))

    def flash(self, measured: Measurement, sale: FlashSale) -> None:
        self.rows.append(Row(measured, stock=sale.stock))

    @contextmanager
    def group(self, name: str, cases: tuple[str, ...], install_hint: str) -> Iterator[None]:
        """Run one group of approaches; if its server or module is missing, list it as skipped."""
        started = time.perf_counter()
        try:
            yield
        except servers.ServerUnavailable as error:
            self.rows += [Row(Skipped(name, case, str(error))) for case in cases]
        except ImportError as error:
            reason = f"{error} ({install_hint})"
            self.rows += [Row(Skipped(name, case, reason)) for case in cases]
        print(f"  {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)


def run_redis(run: Run, installable: str | None) -> None:
    with run.group("Redis", ("zipf", "flash"), PEERS_HINT):
        if installable:
            raise servers.ServerUnavailable(installable)
        import redis
        from redis_peer import RedisPeer

        run.versions["redis-py"] = redis.__version__
        with servers.redis_server() as server:
            run.versions["redis-server"] = server.version
            peer = RedisPeer(server.port)
            sizes, workload = run.sizes, run.workload
            run.sequential(peer.per_request(workload, sizes.redis_single, run.deadline()))
            run.sequential(
                peer.pipelined(workload, sizes.redis_pipelined, PIPELINE, run.deadline())
            )
            for atomic in (True, False):
                run.flash(peer.flash(sizes.flash, atomic, run.deadline()), sizes.flash)


def run_postgres(run: Run, installable: str | None) -> None:
    with run.group("PostgreSQL", ("zipf", "flash"), PEERS_HINT):
        if installable:
            raise servers.ServerUnavailable(installable)
        import psycopg
        from postgres_peer import PostgresPeer

        run.versions["psycopg"] = psycopg.__version__
        with servers.postgres_server() as server:
            peer = PostgresPeer(server.port, server.user)
            run.versions["PostgreSQL"] = peer.version
            sizes, workload = run.sizes, run.workload
            run.sequential(peer.zipf(workload, sizes.postgres_single, 1, run.deadline()))
            run.zipf(
                peer.zipf(
                    workload, sizes.postgres_pooled, sizes.postgres_connections, run.deadline()
                )
            )
            run.flash(peer.flash(sizes.flash, run.deadline()), sizes.flash)


def run_engine(run: Run) -> None:
    with run.group("invsync engine", ("zipf", "flash"), INVSYNC_HINT):
        import engine_peer

        run.versions["invsync"] = importlib.metadata.version("invsync")
        sizes, workload = run.sizes, run.workload
        run.sequential(engine_peer.per_call(workload, sizes.engine_calls, run.deadline()))
        run.sequential(
            engine_peer.batch(
                workload,
                sizes.engine_batch_ops,
                ENGINE_BATCH,
                sizes.engine_batch_passes,
                run.deadline(),
            ),
            replayed=sizes.engine_batch_ops,
        )
        run.flash(
            engine_peer.flash(sizes.engine_flash, ENGINE_FLASH_BATCH, run.deadline()),
            sizes.engine_flash,
        )


def run_service(run: Run) -> None:
    with run.group("invsync service", ("zipf", "flash"), INVSYNC_HINT):
        import service_peer

        run.versions["nats-py"] = importlib.metadata.version("nats-py")
        sizes, workload = run.sizes, run.workload
        with service_peer.running_service() as service:
            peer = service_peer.ServicePeer(service)
            run.sequential(peer.request_reply(workload, sizes.service_requests, 1, run.deadline()))
            run.zipf(peer.request_reply(workload, sizes.service_pooled, REQUESTERS, run.deadline()))
            with service_peer.trivial_responder(service.url):
                run.zipf(peer.trivial(sizes.service_pooled, REQUESTERS, run.deadline()))
            run.flash(peer.flash(sizes.flash, run.deadline()), sizes.flash)
            run.zipf(peer.event_stream(workload, sizes.service_events, 1, run.deadline()))
            run.zipf(
                peer.event_stream(
                    workload, sizes.service_events_batched, EVENTS_PER_MESSAGE, run.deadline()
                )
            )


def _find(rows: list[Row], case: str, prefix: str) -> Measurement | None:
    for row in rows:
        outcome = row.outcome
        if (
            isinstance(outcome, Measurement)
            and outcome.case == case
            and outcome.approach.startswith(prefix)
        ):
            return outcome
    return None


def _throughput_target(
    name: str, numerator: Measurement | None, denominator: Measurement | None, goal: float
) -> Target:
    if numerator is None or denominator is None or denominator.ops_per_s == 0:
        return Target(name, f"≥ {goal:,.0f}×")
    times = numerator.ops_per_s / denominator.ops_per_s
    return Target(name, f"≥ {goal:,.0f}×", f"{times:,.1f}×", times >= goal)


def targets(rows: list[Row]) -> list[Target]:
    """The targets of the project's benchmark issue, judged on this run's rows."""
    redis_pipelined = _find(rows, "zipf", "Redis Lua, pipelined")
    service = _find(rows, "zipf", f"invsync service, request/reply, {REQUESTERS}")
    trivial = _find(rows, "zipf", "NATS request/reply to a trivial responder")
    found = [
        _throughput_target(
            "engine batch ÷ Redis Lua pipelined",
            _find(rows, "zipf", "invsync engine, reserve_batch"),
            redis_pipelined,
            1000,
        ),
        _throughput_target(
            f"service event stream ({EVENTS_PER_MESSAGE} per message) ÷ Redis Lua pipelined",
            _find(rows, "zipf", f"invsync service, event stream, {EVENTS_PER_MESSAGE}"),
            redis_pipelined,
            2,
        ),
    ]
    p99_name = f"service request/reply p99 at {REQUESTERS} in flight"
    p99_goal = "≤ 2 × trivial responder p99"
    if service is None or trivial is None:
        found.append(Target(p99_name, p99_goal))
    else:
        ours, floor = service.latency_us(99), trivial.latency_us(99)
        found.append(
            Target(p99_name, p99_goal, f"{ours:,.0f} µs vs {floor:,.0f} µs", ours <= 2 * floor)
        )
    atomic_flash = [
        row
        for row in rows
        if isinstance(row.outcome, Measurement)
        and row.outcome.case == "flash"
        and row.outcome.atomic
    ]
    oversold = sum(row.oversold or 0 for row in atomic_flash)
    found.append(
        Target(
            "oversold units, atomic approaches, flash sale",
            "0",
            f"{oversold} over {len(atomic_flash)} approaches" if atomic_flash else None,
            oversold == 0 if atomic_flash else None,
        )
    )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny run (seconds), for CI")
    parser.add_argument("--out", type=Path, help="replace the peers section of this Markdown file")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    args = parser.parse_args(argv)

    run = Run(QUICK if args.quick else FULL)
    try:
        installed = servers.ensure_installed()
        if installed:
            print(f"installed {', '.join(installed)}", file=sys.stderr)
        installable = None
    except servers.ServerUnavailable as error:
        installable = str(error)
    run_redis(run, installable)
    run_postgres(run, installable)
    run_engine(run)
    run_service(run)

    rows = run.rows
    references = {
        "zipf": _find(rows, "zipf", "invsync engine, reserve_batch"),
        "flash": _find(rows, "flash", "invsync engine"),
    }
    judged = targets(rows)
    command = "python bench/peers/run.py" + (" --quick" if args.quick else "")
    section = report.render(rows, references, judged, run.versions, command)
    print(section)
    if args.out:
        report.splice(args.out, section)
    if args.json:
        args.json.write_text(report.to_json(rows, judged, run.versions))
    failed = [row.outcome.approach for row in rows if row.failed]
    if failed:
        print(f"wrong grants or oversold: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
