"""The latency phase's load: order events at a steady rate, and a connector's view.

Run by service_load.py in its own process:

    python bench/load/paced_producer.py URL RATE SECONDS FIRST_ORDER_NUMBER

Sends `order.placed` events at RATE per second for SECONDS, each stamped with the
wall clock as it is sent (one burst per millisecond, written in one piece), and
subscribes to `inv.qty.amazon` as a channel connector would, measuring receipt −
`source_ts` per item. Prints `sending` and `sent` around the paced part, then
one JSON line: events sent, the connector's p50/p99 in seconds, and the share
of a core this process used while sending.

It runs apart from the harness, at a lower priority (the harness starts it with
`nice`), because on a small machine it shares the cores with nats-server and the
service it measures: in production the order sources are other machines.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import datetime

import msgspec
import nats
import numpy as np
from nats.aio.msg import Msg
from service_load import CHANNELS, now_ts, order

from invsync.service.wire import PublishBatch

SUBJECTS = tuple(f"inv.order.{channel}" for channel in CHANNELS)


class _Item(msgspec.Struct):
    sku: str
    source_ts: str


class _Quantities(msgspec.Struct):
    items: list[_Item]


_QUANTITIES = msgspec.json.Decoder(_Quantities)


async def run(url: str, rate: float, seconds: float, first: int) -> dict[str, float]:
    nc = await nats.connect(url, pending_size=256 * 1024 * 1024)
    lags: list[float] = []

    async def on_qty(msg: Msg) -> None:
        received = time.time()
        for item in _QUANTITIES.decode(msg.data).items:
            if item.sku.startswith("S"):
                lags.append(received - datetime.fromisoformat(item.source_ts).timestamp())

    sub = await nc.subscribe("inv.qty.amazon", cb=on_qty)
    await nc.flush()
    per_tick = max(1, int(rate / 1000))  # one burst per millisecond
    batch = PublishBatch(nc)
    n = first
    print("sending", flush=True)
    began = time.perf_counter()
    cpu_began = time.process_time()
    while time.perf_counter() - began < seconds:
        ts = now_ts()
        for _ in range(per_tick):
            batch.add(SUBJECTS[n % len(CHANNELS)], order(n, ts))
            n += 1
        await batch.send()
        due = began + (n - first) / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
    await nc.flush()
    cpu = (time.process_time() - cpu_began) / (time.perf_counter() - began)
    print("sent", flush=True)
    await asyncio.sleep(1.0)  # the last events' quantities
    await sub.unsubscribe()
    await nc.close()
    arr = np.array(lags or [float("nan")])
    return {
        "sent": n - first,
        "connector_p50": float(np.percentile(arr, 50)),
        "connector_p99": float(np.percentile(arr, 99)),
        "cpu": cpu,
    }


if __name__ == "__main__":
    url, rate, seconds, first = (
        sys.argv[1],
        float(sys.argv[2]),
        float(sys.argv[3]),
        int(sys.argv[4]),
    )
    print(msgspec.json.encode(asyncio.run(run(url, rate, seconds, first))).decode())
