"""What a standby's apply costs per event against its leader's, as a same-run ratio.

    python bench/python/standby.py [--events 100000] [--rounds 5]

The consume loop's apply step (`Applier.apply_batch`, batches of 500 log messages,
the outbox emptied after each as a flush would) in process, no NATS, once as a
leader (publishing: routes, alerts, audit records built) and once as a follower
(`publishing` false: none built), alternating rounds, over the same messages:
one-line `order.placed` and `stock.adjust` (an audit record each). Prints CPU µs
per event per round, the medians and follower/leader.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
from prometheus_client import CollectorRegistry

from invsync import Engine, Policy
from invsync.service.applier import Applier
from invsync.service.consumer import LogEntry, PlainEntry
from invsync.service.metrics import Metrics
from invsync.service.outbox import Outbox
from invsync.service.subjects import Subjects

# The service load bench's policy and SKUs: the same events cost the same here.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "load"))
from service_load import POLICY, SKUS

SLICE = 500  # the consume loop's APPLY_SLICE
TS = "2026-11-23T10:00:00Z"


def _message(n: int, subject: str, body: dict[str, object]) -> PlainEntry:
    data = msgspec.json.encode({"event_id": f"e-{n}", "ts": TS, **body})
    return PlainEntry(subject, None, None, data, n, n)


def _stock() -> list[LogEntry]:
    return [
        _message(
            i + 1,
            "inv.stock.wh-1",
            {"type": "stock.set", "sku": f"S{i}", "location": "wh-1", "on_hand": 10**9},
        )
        for i in range(SKUS)
    ]


def _workload(kind: str, events: int) -> list[LogEntry]:
    first = SKUS + 1
    if kind == "order.placed":
        return [
            _message(
                first + i,
                "inv.order.shopify",
                {
                    "type": "order.placed",
                    "order_id": f"o-{i}",
                    "channel": "shopify",
                    "lines": [{"line_id": "1", "sku": f"S{i % SKUS}", "qty": 1}],
                },
            )
            for i in range(events)
        ]
    return [
        _message(
            first + i,
            "inv.stock.wh-1",
            {
                "type": "stock.adjust",
                "sku": f"S{i % SKUS}",
                "location": "wh-1",
                "delta": 1,
                "reason": "count",
            },
        )
        for i in range(events)
    ]


def cpu_us_per_event(policy: Policy, messages: list[LogEntry], publishing: bool) -> float:
    applier = Applier(
        Engine(policy),
        Subjects(),
        Metrics(CollectorRegistry()),
        Outbox(),
        route_frames=True,
        publishing=lambda: publishing,
    )
    applier.apply_batch(_stock())
    applier.outbox.take()
    gc.collect()
    started = time.process_time()
    for start in range(0, len(messages), SLICE):
        applier.apply_batch(messages[start : start + SLICE])
        applier.outbox.take()
    return (time.process_time() - started) / len(messages) * 1e6


def main(args: argparse.Namespace) -> None:
    policy = Policy.from_toml(POLICY)
    roles: dict[str, Callable[[list[LogEntry]], float]] = {
        "leader": lambda messages: cpu_us_per_event(policy, messages, True),
        "follower": lambda messages: cpu_us_per_event(policy, messages, False),
    }
    for kind in ("order.placed", "stock.adjust"):
        messages = _workload(kind, args.events)
        measured: dict[str, list[float]] = {role: [] for role in roles}
        for _ in range(args.rounds):
            for role, run in roles.items():
                measured[role].append(run(messages))
        medians = {role: statistics.median(values) for role, values in measured.items()}
        for role, values in measured.items():
            rounds = " / ".join(f"{v:.2f}" for v in values)
            print(f"{kind}, {role}: {rounds} µs per event, median {medians[role]:.2f}")
        print(f"{kind}: follower / leader {medians['follower'] / medians['leader']:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    main(parser.parse_args())
