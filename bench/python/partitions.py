"""What partitions cost, as same-run ratios (figures go to bench/RESULTS.md by hand).

    python bench/python/partitions.py core          # filter and reservations in the core
    python bench/python/partitions.py nats          # reservations through NATS, 2 partitions
    python bench/python/partitions.py events        # one timing of the core event bench

- the core's event bench (`test_core.py::test_apply_all_structs`: 20,000 stock and
  order events) on one engine, and on each of two partition engines that read all of
  it and apply their half;
- one reservation inside a partition against one spanning two, in the core: the
  single one decided by its partition; the spanning one prepared by both, its two
  votes applied by both and its answer taken;
- the same two through NATS with two `invsync serve` partitions on one server,
  one client asking one at a time (the latency a checkout sees).

`events` prints one median in ms for the engine this interpreter imports, so the
same bench can run against a build without partitions (`PYTHONPATH=<that build>`).
"""

from __future__ import annotations

import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from conftest import bench_policy, stocked_engine
from test_core import contract_events

from invsync import Engine, _core
from invsync.events import InboundEvent, ReserveRequest

ROUNDS = 9
T0 = datetime(2026, 11, 23, 10, tzinfo=UTC)


def _median_ms(run: Callable[[], None], setup: Callable[[], None], rounds: int = ROUNDS) -> float:
    times = []
    for _ in range(rounds):
        setup()
        gc.collect()
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def events_bench(partitions: int = 1, partition: int = 0) -> float:
    """The event bench's median ms on one engine (partition `partition` of `partitions`)."""
    structs = [msgspec.convert(e, InboundEvent) for e in contract_events()]
    engine: list[Engine] = []

    def setup() -> None:
        if partitions == 1:
            engine[:] = [stocked_engine(10_000, 10**12)[0]]
            return
        # Stocked like `stocked_engine`, with this partition's SKUs only.
        part = Engine(bench_policy(), partition=partition, partitions=partitions)
        own = [f"SKU-{i}" for i in range(10_000)]
        own = [s for s in own if part.partition_of(s) == partition]
        idx = np.fromiter((part.index(s) for s in own), np.uint32, len(own))
        on_hand = np.full(len(own), 10**12, np.int64)
        part.set_on_hand_batch(idx, "wh", on_hand, event_id="bench-count", ts=T0)
        part.drain_json(5000, T0)
        engine[:] = [part]

    def run() -> None:
        assert not engine[0].apply_all(structs).refused  # type: ignore[arg-type]

    return _median_ms(run, setup)


def _skus(partition: int, count: int) -> list[str]:
    names = (f"SKU-{i}" for i in range(10_000))
    return [s for s in names if _core.partition_of(s, 2) == partition][:count]


def _requests(n: int, lines: Callable[[int], list[tuple[str, int]]]) -> list[ReserveRequest]:
    return [
        msgspec.convert(
            {
                "request_id": f"r{i}",
                "order_id": f"o{i}",
                "channel": "shopify",
                "ts": (T0 + timedelta(microseconds=i)).isoformat(),
                "lines": [
                    {"line_id": str(k), "sku": s, "qty": q} for k, (s, q) in enumerate(lines(i))
                ],
            },
            ReserveRequest,
        )
        for i in range(n)
    ]


def core_reservations(n: int = 5_000) -> tuple[float, float]:
    """µs per single-partition and per cross-partition request, all the core work of
    both partitions for the cross one."""
    left, right = _skus(0, 100), _skus(1, 100)
    single = _requests(n, lambda i: [(left[i % 100], 1), (left[(i + 1) % 100], 1)])
    cross = _requests(n, lambda i: [(left[i % 100], 1), (right[i % 100], 1)])
    engines: list[Engine] = []

    def setup() -> None:
        engines[:] = [Engine(bench_policy(), partition=k, partitions=2) for k in (0, 1)]
        stock = [
            {
                "type": "stock.set",
                "event_id": f"s-{s}",
                "ts": T0.isoformat(),
                "sku": s,
                "location": "wh",
                "on_hand": 10**9,
            }
            for s in left + right
        ]
        for engine in engines:
            engine.apply_many(stock)

    def run_single() -> None:
        for request in single:
            engines[0].reserve_share(request)

    def run_cross() -> None:
        for request in cross:
            votes = [v for e in engines if (v := e.reserve_share(request, "_INBOX.x").vote)]
            for engine in engines:
                for vote in votes:
                    engine.apply_vote(vote)
            engines[0].take_cross_answers()

    one = _median_ms(run_single, setup, 5) * 1000 / n
    two = _median_ms(run_cross, setup, 5) * 1000 / n
    return one, two


async def nats_reservations(n: int = 300) -> tuple[float, float]:
    """Median ms a client waits for a single-partition and a cross-partition answer."""
    import anyio

    from invsync.nats_server import NatsServer
    from invsync.service.app import run_service
    from invsync.service.config import ServiceConfig
    from invsync.service.connection import connect

    policy = Path(__file__).resolve().parents[2] / "examples" / "policy.toml"
    left, right = _skus(0, 50), _skus(1, 50)
    with NatsServer() as server, tempfile.TemporaryDirectory() as state:
        stops = [anyio.Event(), anyio.Event()]
        readies = [anyio.Event(), anyio.Event()]
        async with anyio.create_task_group() as tg:
            for k in (0, 1):
                config = ServiceConfig(
                    policy_path=policy,
                    connection=server.client("service"),
                    state_dir=Path(state),
                    metrics_port=None,
                    partition=k,
                    partitions=2,
                )
                tg.start_soon(lambda c=config, k=k: run_service(c, ready=readies[k], stop=stops[k]))
            with anyio.fail_after(30):
                for ready in readies:
                    await ready.wait()
            nc = await connect(server.client("producer"))
            js = nc.jetstream()
            for s in left + right:
                body = {
                    "type": "stock.set",
                    "event_id": f"s-{s}",
                    "ts": T0.isoformat(),
                    "sku": s,
                    "location": "wh-3",
                    "on_hand": 10**6,
                }
                await js.publish("inv.stock.wh-3", msgspec.json.encode(body))

            async def latency(name: str, lines: Callable[[int], list[tuple[str, int]]]) -> float:
                times = []
                for i in range(n):
                    body = {
                        "request_id": f"{name}{i}",
                        "order_id": f"{name}{i}",
                        "channel": "shopify",
                        "lines": [
                            {"line_id": str(k), "sku": s, "qty": q}
                            for k, (s, q) in enumerate(lines(i))
                        ],
                    }
                    started = time.perf_counter()
                    reply = await nc.request("inv.reserve.shopify", msgspec.json.encode(body), 10)
                    times.append((time.perf_counter() - started) * 1000)
                    assert msgspec.json.decode(reply.data)["ok"], reply.data
                return statistics.median(times)

            with anyio.fail_after(120):
                single = await latency("s", lambda i: [(left[i % 50], 1), (left[(i + 7) % 50], 1)])
                cross = await latency("x", lambda i: [(left[i % 50], 1), (right[i % 50], 1)])
            await nc.close()
            for stop in stops:
                stop.set()
    return single, cross


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else "core"
    if what == "events":
        print(f"{events_bench():.2f}")
    elif what == "core":
        whole = events_bench()
        halves = [events_bench(2, k) for k in (0, 1)]
        print(
            f"event bench, 20,000 events: one engine {whole:.1f} ms; partitions of 2: "
            f"{halves[0]:.1f} ms and {halves[1]:.1f} ms "
            f"({halves[0] / whole:.2f}x and {halves[1] / whole:.2f}x)"
        )
        one, two = core_reservations()
        print(
            f"reservation in the core: single partition {one:.2f} µs, "
            f"spanning two {two:.2f} µs ({two / one:.1f}x)"
        )
    else:
        import anyio

        single, cross = anyio.run(nats_reservations)
        print(
            f"reservation through NATS (median wait): single partition {single:.2f} ms, "
            f"spanning two {cross:.2f} ms ({cross / single:.1f}x)"
        )


if __name__ == "__main__":
    main()
