"""PostgreSQL, the way teams usually reserve stock: a conditional UPDATE per request.

The row lock taken by UPDATE makes the check-and-decrement atomic; every
statement commits (autocommit), with the server's default durability.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg
from workload import (
    ClientResult,
    FlashSale,
    Measurement,
    ZipfWorkload,
    measurement,
    run_clients,
)

RESERVE_SQL = "UPDATE stock SET available = available - %s WHERE sku = %s AND available - %s >= %s"


class PostgresPeer:
    """Runs each case against one PostgreSQL server; every case starts from fresh stock."""

    def __init__(self, port: int, user: str) -> None:
        self.conninfo = f"host=127.0.0.1 port={port} user={user} dbname=postgres"
        with self.connect() as connection:
            row = connection.execute("SHOW server_version").fetchone()
            self.version = str(row[0]) if row else "?"
            connection.execute(
                "CREATE TABLE IF NOT EXISTS stock (sku integer PRIMARY KEY, available bigint)"
            )

    def connect(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.conninfo, autocommit=True)

    def load(self, skus: int, stock: int) -> None:
        with self.connect() as connection:
            connection.execute("TRUNCATE stock")
            connection.execute(
                "INSERT INTO stock SELECT g, %s FROM generate_series(0, %s) AS g",
                (stock, skus - 1),
            )
            connection.execute("VACUUM ANALYZE stock")

    def zipf(
        self, workload: ZipfWorkload, count: int, connections: int, deadline: float
    ) -> Measurement:
        """`connections` clients, each its own connection, sharing the operations round-robin."""
        self.load(workload.skus, workload.stock)
        rows = workload.as_rows(count)
        clients = [
            self._client(rows[offset::connections], deadline) for offset in range(connections)
        ]
        results, seconds = run_clients(clients)
        per = "1 connection" if connections == 1 else f"{connections} connections"
        name = f"PostgreSQL conditional UPDATE, {per}"
        return measurement(name, "zipf", results, seconds, "op", True)

    def flash(self, sale: FlashSale, deadline: float) -> Measurement:
        """One row, `sale.clients` connections each buying one unit at a time."""
        self.load(1, sale.stock)
        rows = [(0, 1, 0)] * sale.attempts_per_client
        results, seconds = run_clients([self._client(rows, deadline) for _ in range(sale.clients)])
        return measurement("PostgreSQL conditional UPDATE", "flash", results, seconds, "op", True)

    def _client(
        self, rows: list[tuple[int, int, int]], deadline: float
    ) -> Callable[[ClientResult], None]:
        # Connect before the clock starts: connection set-up is not what is measured.
        connection = self.connect()

        def client(result: ClientResult) -> None:
            with connection, connection.cursor() as cursor:
                for sku, qty, floor in rows:
                    if time.perf_counter() > deadline:
                        break
                    started = time.perf_counter_ns()
                    cursor.execute(RESERVE_SQL, (qty, sku, qty, floor))
                    result.record(started, 1, qty if cursor.rowcount == 1 else 0)

        return client
