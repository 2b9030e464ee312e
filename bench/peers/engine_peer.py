"""The invsync engine in-process: the full reservation API per call, and the raw batch API.

Tier floors come from the policy, not from the caller: tier 1 protects
`TIER_FLOOR[2]` units from tier 2, which is the floor the peers are given per request.
"""

from __future__ import annotations

import time

import numpy as np
from workload import (
    TIER_FLOOR,
    ClientResult,
    FlashSale,
    Measurement,
    ZipfWorkload,
    measurement,
    run_clients,
)

from invsync import Engine, Policy

TS = "2026-11-23T10:00:00Z"
CHANNEL_OF_TIER = {1: "web", 2: "marketplace"}
FLASH_SKU = "flash"
POLICY_TOML = f"""
[defaults]
safety = 0

[[tiers]]
tier = 1
protect = {TIER_FLOOR[2] - TIER_FLOOR[1]}

[[tiers]]
tier = 2
protect = 0

[[locations]]
id = "wh-1"
kind = "warehouse"
online = true
priority = 1

[[channels]]
id = "{CHANNEL_OF_TIER[1]}"
tier = 1

[[channels]]
id = "{CHANNEL_OF_TIER[2]}"
tier = 2
"""


def _sku(number: int) -> str:
    return f"sku-{number:05d}"


def stocked_engine(stock: dict[str, int]) -> Engine:
    """A fresh engine with `stock` units of each SKU on hand at one warehouse."""
    engine = Engine(Policy.from_toml(POLICY_TOML, source="bench-peers.toml"))
    engine.apply_many(
        [
            {
                "type": "stock.set",
                "event_id": f"stock-{sku}",
                "ts": TS,
                "sku": sku,
                "location": "wh-1",
                "on_hand": units,
            }
            for sku, units in stock.items()
        ]
    )
    return engine


def _zipf_engine(workload: ZipfWorkload) -> Engine:
    return stocked_engine({_sku(number): workload.stock for number in range(workload.skus)})


def per_call(workload: ZipfWorkload, count: int, deadline: float) -> Measurement:
    """One `engine.reserve(request)` per reservation: a contract request, reply and hold."""
    engine = _zipf_engine(workload)
    requests = [
        {
            "type": "reserve",
            "request_id": f"r-{n}",
            "order_id": f"o-{n}",
            "channel": CHANNEL_OF_TIER[int(tier)],
            "ts": TS,
            "hold_seconds": 600,
            "lines": [{"line_id": "1", "sku": _sku(int(sku)), "qty": int(qty)}],
        }
        for n, (sku, qty, tier) in enumerate(
            zip(workload.sku[:count], workload.qty[:count], workload.tier[:count], strict=True)
        )
    ]

    quantities = workload.qty[:count].tolist()

    def client(result: ClientResult) -> None:
        for request, qty in zip(requests, quantities, strict=True):
            if time.perf_counter() > deadline:
                break
            started = time.perf_counter_ns()
            reply = engine.reserve(request)
            result.record(started, 1, qty if reply["ok"] else 0)

    results, seconds = run_clients([client])
    return measurement("invsync engine, reserve() per call", "zipf", results, seconds, "op", True)


def batch(
    workload: ZipfWorkload, count: int, size: int, passes: int, deadline: float
) -> Measurement:
    """`reserve_batch` over numpy arrays, `size` reservations per call.

    The first `count` operations are replayed `passes` times; the units each pass
    granted are released (untimed) before the next, so every pass starts from the
    same stock and must grant the same units.
    """
    engine = _zipf_engine(workload)
    index_of = np.array(
        [engine.index(_sku(number), "new") for number in range(workload.skus)], dtype=np.uint32
    )
    indices = index_of[workload.sku[:count]]
    qty = np.ascontiguousarray(workload.qty[:count])
    tier = np.ascontiguousarray(workload.tier[:count])
    chunks = [
        (indices[start : start + size], qty[start : start + size], tier[start : start + size])
        for start in range(0, count, size)
    ]
    result = ClientResult()
    seconds = 0.0
    for _ in range(passes):
        if time.perf_counter() > deadline:
            break
        granted_masks = []
        began = time.perf_counter()
        for chunk_indices, chunk_qty, chunk_tier in chunks:
            started = time.perf_counter_ns()
            granted = engine.reserve_batch(chunk_indices, chunk_qty, chunk_tier)
            result.record(started, len(chunk_indices), 0)
            granted_masks.append(granted)
        seconds += time.perf_counter() - began
        mask = np.concatenate(granted_masks)
        result.granted_units += int(qty[mask].sum())
        engine.release_batch(indices[mask], qty[mask])
    return measurement(
        f"invsync engine, reserve_batch {size}",
        "zipf",
        [result],
        seconds,
        f"batch of {size}",
        True,
    )


def flash(sale: FlashSale, size: int, deadline: float) -> Measurement:
    """`sale.clients` threads hammering one SKU through `reserve_batch`, `size` units per call."""
    engine = stocked_engine({FLASH_SKU: sale.stock})
    hot = engine.index(FLASH_SKU, "new")
    indices = np.full(size, hot, dtype=np.uint32)
    ones = np.ones(size, dtype=np.int64)
    tier_one = np.ones(size, dtype=np.uint8)

    def client(result: ClientResult) -> None:
        for _ in range(sale.attempts_per_client // size):
            if time.perf_counter() > deadline:
                break
            started = time.perf_counter_ns()
            granted = engine.reserve_batch(indices, ones, tier_one)
            result.record(started, size, int(granted.sum()))

    results, seconds = run_clients([client] * sale.clients)
    return measurement(
        f"invsync engine, reserve_batch {size}",
        "flash",
        results,
        seconds,
        f"batch of {size}",
        True,
    )
