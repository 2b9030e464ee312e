"""Redis, the way teams usually build a stock counter: a Lua conditional decrement.

The script runs atomically inside Redis, so concurrent clients cannot oversell.
The flash-sale case also runs the read-then-decrement many first versions ship
(GET, compare in the client, DECRBY), to show the oversell the check catches.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
from workload import (
    ClientResult,
    FlashSale,
    Measurement,
    ZipfWorkload,
    measurement,
    run_clients,
)

RESERVE_LUA = """
local available = tonumber(redis.call('GET', KEYS[1]) or '0')
local qty = tonumber(ARGV[1])
if available - qty >= tonumber(ARGV[2]) then
  redis.call('DECRBY', KEYS[1], qty)
  return 1
end
return 0
"""
FLASH_KEY = "flash:stock"


def _key(sku: int) -> str:
    return f"stock:{sku}"


class RedisPeer:
    """Runs each case against one redis-server; every case starts from freshly loaded stock."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.client = self.connect()
        self.reserve = self.client.register_script(RESERVE_LUA)

    def connect(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port)

    def load(self, workload: ZipfWorkload) -> None:
        self.client.flushdb()
        keys = [_key(sku) for sku in range(workload.skus)]
        for start in range(0, len(keys), 1000):
            self.client.mset({key: workload.stock for key in keys[start : start + 1000]})

    def per_request(self, workload: ZipfWorkload, count: int, deadline: float) -> Measurement:
        """One EVALSHA round trip per reservation."""
        self.load(workload)
        rows = workload.as_rows(count)

        def client(result: ClientResult) -> None:
            for sku, qty, floor in rows:
                if time.perf_counter() > deadline:
                    break
                started = time.perf_counter_ns()
                granted = self.reserve(keys=[_key(sku)], args=[qty, floor])
                result.record(started, 1, qty if granted else 0)

        results, seconds = run_clients([client])
        return measurement("Redis Lua, 1 per round trip", "zipf", results, seconds, "op", True)

    def pipelined(
        self, workload: ZipfWorkload, count: int, batch: int, deadline: float
    ) -> Measurement:
        """`batch` EVALSHA calls per pipeline, one round trip per pipeline."""
        self.load(workload)
        rows = workload.as_rows(count)

        def client(result: ClientResult) -> None:
            pipe = self.client.pipeline(transaction=False)
            for start in range(0, len(rows), batch):
                if time.perf_counter() > deadline:
                    break
                chunk = rows[start : start + batch]
                started = time.perf_counter_ns()
                for sku, qty, floor in chunk:
                    self.reserve(keys=[_key(sku)], args=[qty, floor], client=pipe)
                replies = pipe.execute()
                granted = sum(qty for (_, qty, _), ok in zip(chunk, replies, strict=True) if ok)
                result.record(started, len(chunk), granted)

        results, seconds = run_clients([client])
        return measurement(
            f"Redis Lua, pipelined {batch}", "zipf", results, seconds, f"batch of {batch}", True
        )

    def flash(self, sale: FlashSale, atomic: bool, deadline: float) -> Measurement:
        """`sale.clients` threads, each with its own connection, buying one unit at a time."""
        self.client.set(FLASH_KEY, sale.stock)

        buy = self._buy_atomically if atomic else self._buy_check_then_decrement

        def client_on(connection: redis.Redis) -> Callable[[ClientResult], None]:
            def client(result: ClientResult) -> None:
                for _ in range(sale.attempts_per_client):
                    if time.perf_counter() > deadline:
                        break
                    started = time.perf_counter_ns()
                    result.record(started, 1, 1 if buy(connection) else 0)

            return client

        # Connect before the clock starts: connection set-up is not what is measured.
        connections = [self.connect() for _ in range(sale.clients)]
        for connection in connections:
            connection.ping()
        try:
            results, seconds = run_clients([client_on(c) for c in connections])
        finally:
            for connection in connections:
                connection.close()
        name = "Redis Lua" if atomic else "Redis GET then DECRBY (no script)"
        return measurement(name, "flash", results, seconds, "op", atomic)

    def _buy_atomically(self, connection: redis.Redis) -> bool:
        return bool(self.reserve(keys=[FLASH_KEY], args=[1, 0], client=connection))

    @staticmethod
    def _buy_check_then_decrement(connection: redis.Redis) -> bool:
        if int(connection.get(FLASH_KEY) or 0) < 1:
            return False
        connection.decrby(FLASH_KEY, 1)
        return True
