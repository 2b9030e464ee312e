"""Sales on the sandbox's marketplaces, reaching the seller's OMS after the platform's
order delay, as `order.placed` on NATS.

A real marketplace tells the seller about a sale some time after it happened; that
order lag is half of what causes oversells (DESIGN "The loop to the channels"), so
the sandbox keeps it. Pending orders are plain data with a wall-clock due time, so
they survive a sandbox restart through the state file.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime

import anyio
import msgspec
from nats.errors import Error as NatsError
from nats.js.client import JetStreamContext

from invsync.events import OrderLine, OrderPlaced, encode_json
from invsync.service.subjects import Subjects

log = logging.getLogger("invsync.sandbox")

# After a failed publish (no NATS, no stream yet) the order waits this long and is
# tried again: a marketplace keeps an order until the seller has it.
RETRY_AFTER_S = 1.0

OrderSink = Callable[[str, OrderPlaced], Awaitable[None]]
"""Delivers one order to the OMS: (channel, order). Raises DeliveryError when it was not
delivered."""


class DeliveryError(Exception):
    """An order did not reach the OMS this time (no NATS, no stream, no ack)."""


class PendingOrder(msgspec.Struct, frozen=True):
    """A sale the OMS has not been told about yet; `due` is a Unix time."""

    order: OrderPlaced
    due: float


def new_order(channel: str, sku: str, condition: str, qty: int, sold_at: datetime) -> OrderPlaced:
    """The `order.placed` of one sale. `ts` is when the marketplace sold, not when the
    order is delivered: the service measures order lag from it."""
    order_id = f"sbx-{channel}-{uuid.uuid4().hex}"
    return OrderPlaced(
        event_id=order_id,
        ts=sold_at,
        order_id=order_id,
        channel=channel,
        lines=[OrderLine(line_id="1", sku=sku, qty=qty, condition=condition)],
    )


class OrderBook:
    """Orders waiting for their platform's delay, delivered in due order by `run`."""

    def __init__(self, sink: OrderSink | None, clock: Callable[[], float] = time.time) -> None:
        self._sink = sink
        self._clock = clock
        # (due, arrival, order): a heap, so a flash sale's thousands of pending orders
        # cost a logarithm each, not a scan.
        self._heap: list[tuple[float, int, PendingOrder]] = []
        self._arrivals = itertools.count()
        self._wake = anyio.Event()
        self.delivered = 0

    def place(self, order: OrderPlaced, delay_s: float) -> PendingOrder:
        pending = PendingOrder(order, self._clock() + max(0.0, delay_s))
        self._push(pending)
        return pending

    def restore(self, pending: Iterable[PendingOrder]) -> None:
        for order in pending:
            self._push(order)

    def _push(self, pending: PendingOrder) -> None:
        heapq.heappush(self._heap, (pending.due, next(self._arrivals), pending))
        self._wake.set()

    @property
    def waiting(self) -> int:
        return len(self._heap)

    @property
    def pending(self) -> list[PendingOrder]:
        """Orders not delivered yet, soonest first."""
        return [entry[2] for entry in sorted(self._heap)]

    async def run(self) -> None:
        """Deliver each order once it is due, until cancelled. Without a sink (no
        --nats) due orders are logged and dropped from the queue: nobody listens.
        An order that cannot be delivered waits RETRY_AFTER_S, and so do the ones
        behind it: what stopped it (NATS, the stream) would stop them too."""
        while True:
            self._wake = anyio.Event()
            while self._heap and self._heap[0][0] <= self._clock():
                _, _, pending = heapq.heappop(self._heap)
                if not await self._deliver(pending):
                    self._push(PendingOrder(pending.order, self._clock() + RETRY_AFTER_S))
                    break
            upcoming = self._heap[0][0] if self._heap else self._clock() + 3600.0
            with anyio.move_on_after(max(0.0, upcoming - self._clock())):
                await self._wake.wait()

    async def _deliver(self, pending: PendingOrder) -> bool:
        order = pending.order
        if self._sink is None:
            log.info("order %s on %s sold; no NATS to deliver it to", order.order_id, order.channel)
            return True
        try:
            await self._sink(order.channel, order)
        except DeliveryError as exc:
            log.warning("order %s not delivered yet: %s", order.order_id, exc)
            return False
        self.delivered += 1
        return True


def jetstream_sink(js: JetStreamContext, subjects: Subjects, timeout_s: float = 5.0) -> OrderSink:
    """Orders into the service's stream on `<prefix>.order.<channel>`, de-duplicated by
    `Nats-Msg-Id` = `event_id`, so an order retried after a lost ack counts once."""

    async def publish(channel: str, order: OrderPlaced) -> None:
        try:
            await js.publish(
                subjects.order_on(channel),
                encode_json(order),
                timeout=timeout_s,
                headers={"Nats-Msg-Id": order.event_id},
            )
        except (NatsError, OSError, TimeoutError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from None

    return publish
