"""Core speed and memory (issue targets in brackets), single thread unless stated.

Run: `pytest bench/python --benchmark-only` (figures go to bench/RESULTS.md by hand).
Each ratio is taken against a baseline measured in the same run.

- batch tier-aware reservation, 1,000,000 requests on 100,000 Zipf-hot SKUs  [≥ 50 M/s]
- the same workload in a pure-Python dict implementation                   [baseline]
- `engine.reserve` one dict request at a time                              [≥ 300 k/s]
- `engine.reserve` with the contract's exact request (no `ts`)               [≥ 300 k/s]
- the same requests in a dict of counters behind a lock, one at a time       [baseline]
- `engine.apply_many` of contract dicts, against `apply_all` of Structs      [within 2×]
- shown-quantity drain as the publisher takes it (recompute and wire JSON),
  100,000 dirty SKUs × 8 channels                 [recompute alone: ≥ 20 M cells/s]
  (static buffers, and automatic ones with every SKU selling on two channels)
- a cadence tick (every automatic number due is recomputed), 100,000 SKUs that sold on
  two channels: static buffers, automatic ones, and automatic ones whose push lag moves
  on every tick (every key recomputed)                              [ratios, same run]
- memory, 1,000,000 SKUs × 8 channels loaded                               [< 400 MB RSS]
- the slowest of 200-order `apply_all` batches while 1,000,000 orders open  [no stall]
"""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
import pytest
from conftest import CHANNELS, stocked_engine

from invsync import Engine
from invsync.engine import AppliedEvent
from invsync.events import ClockTick, InboundEvent, OrderLine, OrderPlaced

PLENTY = 10**12
#: The publisher's message size (`invsync.service.publisher.MAX_ITEMS_PER_MESSAGE`).
MAX_ITEMS_PER_MESSAGE = 5000
FALLBACK_TS = datetime(2026, 11, 23, tzinfo=UTC)
SKUS = 100_000


def dict_reserve_batch(
    avail: dict[int, int],
    floors: dict[int, list[int]],
    idx: list[int],
    qty: list[int],
    tier: list[int],
) -> list[bool]:
    """What people write first: a dict of counters and a floor check, one request at a time."""
    out = []
    for i, q, t in zip(idx, qty, tier):
        left = avail[i] - q
        if left >= floors[i][t]:
            avail[i] = left
            out.append(True)
        else:
            out.append(False)
    return out


def test_batch_reservation_zipf(benchmark: Any, workload: dict[str, npt.NDArray[Any]]) -> None:
    engine, _ = stocked_engine(SKUS, PLENTY)
    idx, qty, tier = workload["idx"], workload["qty"], workload["tier"]
    granted = benchmark(engine.reserve_batch, idx, qty, tier)
    assert granted.all()
    benchmark.extra_info["requests"] = len(idx)
    benchmark.extra_info["per_second"] = len(idx) / benchmark.stats.stats.mean


def test_python_dict_baseline(benchmark: Any, workload: dict[str, npt.NDArray[Any]]) -> None:
    avail = dict.fromkeys(range(SKUS), PLENTY)
    floors = {i: [0, 2, 7, 10] for i in range(SKUS)}
    idx, qty, tier = (workload[k].tolist() for k in ("idx", "qty", "tier"))
    granted = benchmark.pedantic(
        dict_reserve_batch, args=(avail, floors, idx, qty, tier), rounds=3, iterations=1
    )
    assert all(granted)
    benchmark.extra_info["per_second"] = len(idx) / benchmark.stats.stats.mean


def test_reserve_one_request_at_a_time(benchmark: Any) -> None:
    engine, _ = stocked_engine(10_000, PLENTY)
    batches = iter(range(1_000))
    n = 50_000

    def requests() -> tuple[tuple[list[dict[str, Any]]], dict[str, Any]]:
        b = next(batches)
        reqs = [
            {
                "type": "reserve",
                "request_id": f"r{b}-{i}",
                "order_id": f"o{b}-{i}",
                "channel": CHANNELS[i % 8],
                "ts": "2026-11-23T10:00:00Z",
                "lines": [{"line_id": "1", "sku": f"SKU-{i % 10_000}", "qty": 1}],
                "hold_seconds": 600,
            }
            for i in range(n)
        ]
        # The prepared requests are the benchmark's, not the engine's: keep the
        # collector from walking them again and again while the loop runs.
        gc.collect()
        gc.freeze()
        return (reqs,), {}

    def reserve_all(reqs: list[dict[str, Any]]) -> None:
        for r in reqs:
            engine.reserve(r)

    benchmark.pedantic(reserve_all, setup=requests, rounds=5, iterations=1)
    gc.unfreeze()
    benchmark.extra_info["per_second"] = n / benchmark.stats.stats.mean
    assert engine.reserved("SKU-1") == 5 * n // 10_000


REQUESTS = 50_000


def contract_requests(round_number: int) -> list[dict[str, Any]]:
    """Requests exactly as CONTRACT section 2 shows them: `type`, `hold_seconds`, no `ts`."""
    return [
        {
            "type": "reserve",
            "request_id": f"r{round_number}-{i}",
            "order_id": f"o{round_number}-{i}",
            "channel": CHANNELS[i % 8],
            "lines": [{"line_id": "1", "sku": f"SKU-{i % 10_000}", "qty": 1}],
            "hold_seconds": 600,
        }
        for i in range(REQUESTS)
    ]


def frozen_rounds(
    make: Callable[[int], Any],
) -> Callable[[], tuple[tuple[Any, ...], dict[str, Any]]]:
    """A pedantic `setup` that builds each round's input and keeps the collector from
    walking it while the loop runs: the input is the benchmark's, not the engine's."""
    rounds = iter(range(1_000))

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        made = make(next(rounds))
        gc.collect()
        gc.freeze()
        return (made,), {}

    return setup


def test_reserve_contract_shape_one_at_a_time(benchmark: Any) -> None:
    engine, _ = stocked_engine(10_000, PLENTY)

    def reserve_all(reqs: list[dict[str, Any]]) -> None:
        for r in reqs:
            engine.reserve(r)

    benchmark.pedantic(reserve_all, setup=frozen_rounds(contract_requests), rounds=5, iterations=1)
    gc.unfreeze()
    benchmark.extra_info["per_second"] = REQUESTS / benchmark.stats.stats.mean
    assert engine.reserved("SKU-1") == 5 * REQUESTS // 10_000


class DictAndLock:
    """What people write first for reservations: a dict of counters, a lock, a floor
    check per line, all lines or none, the hold remembered by request_id."""

    def __init__(self, skus: int, on_hand: int) -> None:
        self.lock = threading.Lock()
        self.avail = {f"SKU-{i}": on_hand for i in range(skus)}
        self.floor = {ch: 2 + (0, 5, 8)[i % 3] for i, ch in enumerate(CHANNELS)}
        self.replies: dict[str, dict[str, Any]] = {}
        self.holds: dict[str, tuple[float, list[tuple[str, int]]]] = {}

    def reserve(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            known = self.replies.get(request["request_id"])
            if known is not None:
                return known
            floor = self.floor[request["channel"]]
            lines = request["lines"]
            ok = all(self.avail.get(line["sku"], 0) - line["qty"] >= floor for line in lines)
            expires = None
            if ok:
                for line in lines:
                    self.avail[line["sku"]] -= line["qty"]
                expires = time.time() + request.get("hold_seconds", 900)
                self.holds[request["order_id"]] = (
                    expires,
                    [(line["sku"], line["qty"]) for line in lines],
                )
            reply = {
                "ok": ok,
                "order_id": request["order_id"],
                "lines": [{**line, "granted": ok, "reason": None} for line in lines],
                "expires_at": expires,
            }
            self.replies[request["request_id"]] = reply
            return reply


def test_dict_and_lock_reserve_baseline(benchmark: Any) -> None:
    store = DictAndLock(10_000, PLENTY)

    def reserve_all(reqs: list[dict[str, Any]]) -> None:
        for r in reqs:
            store.reserve(r)

    benchmark.pedantic(reserve_all, setup=frozen_rounds(contract_requests), rounds=5, iterations=1)
    gc.unfreeze()
    benchmark.extra_info["per_second"] = REQUESTS / benchmark.stats.stats.mean
    assert store.avail["SKU-1"] == PLENTY - 5 * REQUESTS // 10_000


EVENTS = 20_000


def contract_events() -> list[dict[str, Any]]:
    """A day's JSON-lines file in small: stock counts and one-line orders, as dicts."""
    events: list[dict[str, Any]] = []
    for i in range(EVENTS):
        common = {"event_id": f"e{i}", "ts": "2026-11-23T10:00:00Z"}
        if i % 4 == 0:
            events.append(
                {"type": "stock.set", **common, "sku": f"SKU-{i % 10_000}", "location": "wh"}
                | {"on_hand": 1_000}
            )
        else:
            line = {"line_id": "1", "sku": f"SKU-{i % 10_000}", "qty": 1}
            events.append(
                {"type": "order.placed", **common, "order_id": f"o{i}", "channel": CHANNELS[i % 8]}
                | {"lines": [line]}
            )
    return events


def fresh_engine(events: Any) -> Callable[[int], tuple[Engine, Any]]:
    """Each round applies the same events to an engine stocked the same way."""
    return lambda _: (stocked_engine(10_000, PLENTY)[0], events)


#: Units of SKU-1 the event mix leaves reserved: its two one-unit orders.
SKU_1_RESERVED = 2


def test_apply_many_contract_dicts(benchmark: Any) -> None:
    engines: list[Engine] = []

    def apply(made: tuple[Engine, list[dict[str, Any]]]) -> None:
        made[0].apply_many(made[1])
        engines.append(made[0])

    events = contract_events()
    benchmark.pedantic(apply, setup=frozen_rounds(fresh_engine(events)), rounds=10, iterations=1)
    gc.unfreeze()
    benchmark.extra_info["per_second"] = EVENTS / benchmark.stats.stats.mean
    assert all(engine.reserved("SKU-1") == SKU_1_RESERVED for engine in engines)


def test_apply_all_structs(benchmark: Any) -> None:
    engines: list[Engine] = []

    def apply(made: tuple[Engine, list[AppliedEvent]]) -> None:
        assert not made[0].apply_all(made[1]).refused
        engines.append(made[0])

    structs = [msgspec.convert(e, InboundEvent) for e in contract_events()]
    benchmark.pedantic(apply, setup=frozen_rounds(fresh_engine(structs)), rounds=10, iterations=1)
    gc.unfreeze()
    benchmark.extra_info["per_second"] = EVENTS / benchmark.stats.stats.mean
    assert all(engine.reserved("SKU-1") == SKU_1_RESERVED for engine in engines)


def selling_on_every_channel(engine: Engine, skus: int) -> None:
    """Two one-unit orders per SKU on each of two channels: every key has sales rates."""
    events: list[AppliedEvent] = []
    for i in range(skus):
        for n in range(4):
            events.append(
                OrderPlaced(
                    event_id=f"v-{i}-{n}",
                    ts=FALLBACK_TS,
                    order_id=f"v-{i}-{n}",
                    channel=CHANNELS[(i + n // 2) % len(CHANNELS)],
                    lines=[OrderLine(line_id="1", sku=f"SKU-{i}", qty=1)],
                )
            )
    assert not engine.apply_all(events).refused


@pytest.mark.parametrize("buffers", ["static", "automatic"])
def test_shown_recompute(benchmark: Any, buffers: str) -> None:
    automatic = buffers == "automatic"
    engine, idx = stocked_engine(SKUS, 100, automatic=automatic)
    if automatic:
        selling_on_every_channel(engine, SKUS)
        engine.drain_json(MAX_ITEMS_PER_MESSAGE, FALLBACK_TS)
    one = np.ones(SKUS, np.int64)
    tiers = np.ones(SKUS, np.uint8)
    flip = iter(range(10**6))

    def dirty_everything() -> tuple[tuple[()], dict[str, Any]]:
        # alternate take/give back so every key's shown quantities really change
        if next(flip) % 2:
            engine.release_batch(idx, one)
        else:
            engine.reserve_batch(idx, one, tiers)
        return (), {}

    def drain() -> int:
        # What the service's publisher drains: wire JSON, a message's worth per piece.
        pieces = engine.drain_json(MAX_ITEMS_PER_MESSAGE, FALLBACK_TS)
        return sum(len(keys) for _, _, keys, _ in pieces)

    changed = benchmark.pedantic(drain, setup=dirty_everything, rounds=20)
    assert changed >= SKUS  # at least one channel moved per key
    benchmark.extra_info["cells_per_second"] = SKUS * len(CHANNELS) / benchmark.stats.stats.mean


@pytest.mark.parametrize("buffers", ["static", "automatic", "automatic-lags-moving"])
def test_cadence_tick(benchmark: Any, buffers: str) -> None:
    """One tick per cadence (10 s of log time) after every SKU sold: the cadence
    recomputes the keys whose numbers may have moved; a push lag that moves beyond its
    tolerance on every tick makes that every key."""
    engine, _ = stocked_engine(SKUS, 100, automatic=buffers != "static")
    selling_on_every_channel(engine, SKUS)
    engine.drain_json(MAX_ITEMS_PER_MESSAGE, FALLBACK_TS)
    ticks = iter(range(1, 10**6))

    def next_tick() -> tuple[tuple[ClockTick], dict[str, Any]]:
        n = next(ticks)
        lags = {"amazon": 10.0 * (1 + n % 2)} if buffers == "automatic-lags-moving" else None
        tick = ClockTick(
            event_id=f"tick-{n}", ts=FALLBACK_TS + timedelta(seconds=10 * n), push_lag_s=lags
        )
        return (tick,), {}

    def tick(event: ClockTick) -> None:
        engine.apply_all([event])

    benchmark.pedantic(tick, setup=next_tick, rounds=30, warmup_rounds=1)
    benchmark.extra_info["keys_per_second"] = SKUS / benchmark.stats.stats.mean


def test_open_orders_growing_to_a_million(benchmark: Any) -> None:
    """`apply_all` of 200 one-line `order.placed` at a time until 1,000,000 orders are
    open: the slowest batch shows any stop while the registry grows."""
    engine, _ = stocked_engine(10_000, PLENTY)
    ts = datetime(2026, 11, 23, 10, tzinfo=UTC)
    batches = [
        [
            OrderPlaced(
                event_id=f"e{n}",
                ts=ts,
                order_id=f"o{n}",
                channel=CHANNELS[n % 8],
                lines=[OrderLine(line_id="1", sku=f"SKU-{n % 10_000}", qty=1)],
            )
            for n in range(start, start + 200)
        ]
        for start in range(0, 1_000_000, 200)
    ]
    gc.collect()
    gc.freeze()
    took: list[float] = []

    def apply_them() -> None:
        for batch in batches:
            began = time.perf_counter()
            engine.apply_all(batch)
            took.append(time.perf_counter() - began)

    benchmark.pedantic(apply_them, rounds=1, iterations=1)
    gc.unfreeze()
    assert engine.reserved("SKU-1") == 100
    ms = sorted(t * 1000 for t in took)
    benchmark.extra_info["median_batch_ms"] = ms[len(ms) // 2]
    benchmark.extra_info["slowest_batch_ms"] = ms[-1]
    print(f"200-order batches: median {ms[len(ms) // 2]:.2f} ms, slowest {ms[-1]:.2f} ms")


def test_memory_million_skus(benchmark: Any) -> None:
    """Loads 1,000,000 SKUs × 8 channels in a fresh process and reports its peak RSS
    (timed too, as load-and-drain time, so `--benchmark-only` runs it)."""
    script = textwrap.dedent(
        """
        import resource, sys
        from datetime import UTC, datetime
        sys.path.insert(0, "bench/python")
        from conftest import stocked_engine
        engine, idx = stocked_engine(1_000_000, 50, drain=False)
        fallback = datetime(2026, 11, 23, tzinfo=UTC)
        while engine.drain_json(5000, fallback, max_keys=8_192):
            pass
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        """
    )

    def load() -> str:
        return subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=600
        ).stdout

    out = benchmark.pedantic(load, rounds=1, iterations=1)
    rss_mb = int(out.strip()) / 1024
    benchmark.extra_info["peak_rss_mb"] = rss_mb
    print(f"peak RSS with 1,000,000 SKUs × 8 channels: {rss_mb:.0f} MB")
    assert rss_mb < 400, f"{rss_mb:.0f} MB"


@pytest.fixture(autouse=True)
def _stamp() -> None:
    """Marks the run, so RESULTS.md can cite when the figures were taken."""
    print(f"\nrun at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
