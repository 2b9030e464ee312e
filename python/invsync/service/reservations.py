"""The reservation gateway: request/reply on `{p}.reserve.<channel>`.

A request is validated here, stamped with `ts` when absent, and appended to
`{p}.log.reserve.<channel>` with the requester's inbox. The applier decides it in
log order and answers that inbox, so a reservation is in the durable log before
anyone is told it was granted. Nats-Msg-Id is deliberately not set: the engine
de-duplicates `request_id` in order, and a duplicate must still get its (first)
answer.

Appends are group commits: requests that arrive while earlier appends await
their JetStream acknowledgement go out together as one `ReservationGroup`, so
at 64 concurrent clients the log costs one write per group, not per request.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import anyio
import msgspec
from anyio.abc import TaskGroup
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from nats.js import JetStreamContext

from invsync.errors import BadInputError
from invsync.events import LoggedReservation, ReservationGroup, decode_reserve, encode_json
from invsync.service.metrics import Metrics
from invsync.service.outbox import dead_letter
from invsync.service.subjects import CONTENT_TYPE_HEADER, MSGPACK, Subjects

log = logging.getLogger("invsync.service")

QUEUE_GROUP = "invsync-reserve"
# Group appends awaiting their acknowledgement at once; requests arriving meanwhile
# gather into the next group.
MAX_APPENDS_IN_FLIGHT = 4
MAX_GROUP = 256
# Requests waiting for a group; beyond this new ones wait (bounded memory).
MAX_PENDING = 4096


class ReservationGateway:
    def __init__(
        self, nc: Client, js: JetStreamContext, subjects: Subjects, metrics: Metrics
    ) -> None:
        self.nc = nc
        self.js = js
        self.subjects = subjects
        self.metrics = metrics
        self._appends = anyio.Semaphore(MAX_APPENDS_IN_FLIGHT)
        self._room = anyio.Semaphore(MAX_PENDING)
        self._pending: dict[str, list[LoggedReservation]] = {}
        self._wake = anyio.Event()
        self._sub: Subscription | None = None

    async def start(self, tg: TaskGroup) -> None:
        async def on_request(msg: Msg) -> None:
            await self._room.acquire()
            if not await self._accept(msg):
                self._room.release()

        tg.start_soon(self._append_groups, tg)
        self._sub = await self.nc.subscribe(
            self.subjects.reserve_requests, queue=QUEUE_GROUP, cb=on_request
        )

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None

    async def _accept(self, msg: Msg) -> bool:
        """Validates and queues one request; False (and answered) when it is malformed."""
        channel = msg.subject.rsplit(".", 1)[-1]
        msgpack = msg.headers is not None and msg.headers.get(CONTENT_TYPE_HEADER) == MSGPACK
        try:
            request = decode_reserve(msg.data, msgpack=msgpack)
            if request.channel != channel:
                raise BadInputError(
                    f"channel: {request.channel!r} does not match subject channel {channel!r}"
                )
        except BadInputError as exc:
            await self._refuse(msg, str(exc))
            return False
        if request.ts is None:
            request = msgspec.structs.replace(request, ts=datetime.now(UTC))
        entry = LoggedReservation(request=request, reply=msg.reply or None)
        self._pending.setdefault(channel, []).append(entry)
        self._wake.set()
        return True

    async def _append_groups(self, tg: TaskGroup) -> None:
        """Forever: take what is pending, per channel, and append it in groups."""
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            pending, self._pending = self._pending, {}
            for channel, entries in pending.items():
                for start in range(0, len(entries), MAX_GROUP):
                    await self._appends.acquire()
                    tg.start_soon(self._append, channel, entries[start : start + MAX_GROUP])

    async def _append(self, channel: str, entries: list[LoggedReservation]) -> None:
        try:
            await self.js.publish(
                self.subjects.reserve_log(channel), encode_json(ReservationGroup(entries))
            )
        except NatsError as exc:
            log.warning("could not append %d reservations: %s", len(entries), exc)
            self.metrics.reservations.labels(channel, "error").inc(len(entries))
            failed = encode_json({"ok": False, "error": "log unavailable, retry"})
            for entry in entries:
                if entry.reply:
                    await self.nc.publish(entry.reply, failed)
        finally:
            self._appends.release()
            for _ in entries:
                self._room.release()

    async def _refuse(self, msg: Msg, error: str) -> None:
        """A malformed request: answer at once so no client waits for a time-out."""
        self.metrics.dead_letters.labels("bad_request").inc()
        if msg.reply:
            await self.nc.publish(msg.reply, encode_json({"ok": False, "error": error}))
        dead = dead_letter(msg.subject, msg.data, error)
        await self.nc.publish(self.subjects.dlq, encode_json(dead))
