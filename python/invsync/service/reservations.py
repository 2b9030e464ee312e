"""The reservation gateway: request/reply on `{p}.reserve.<channel>`.

A request on a channel the policy does not know is answered "unknown channel"
at once and counted under UNKNOWN_CHANNEL, before anything else is looked at.
Any other request is validated here, stamped with `ts` when absent, and appended to
`{p}.log.reserve.<channel>` with the requester's inbox. The applier decides it in
log order and answers that inbox, so a reservation is in the durable log before
anyone is told it was granted. Nats-Msg-Id is deliberately not set: the engine
de-duplicates `request_id` in order, and a duplicate must still get its (first)
answer.

Appends are group commits: requests that arrive while earlier appends await
their JetStream acknowledgement go out together as one `ReservationGroup`, so
at 64 concurrent clients the log costs one write per group, not per request.
Requests arrive through the client's fast lane (fastlane.py) in batches where it
has one, so taking a request in is a decode and a list append.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Container, Sequence
from datetime import UTC, datetime

import anyio
import msgspec
from anyio.abc import TaskGroup
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError

from invsync.errors import BadInputError
from invsync.events import LoggedReservation, ReservationGroup, decode_reserve, encode_json
from invsync.service import natsclient
from invsync.service.consumer import LogEntry, PlainEntry
from invsync.service.fastlane import lane
from invsync.service.logwriter import Fenced, LogWriter
from invsync.service.metrics import UNKNOWN_CHANNEL, Metrics
from invsync.service.outbox import dead_letter
from invsync.service.subjects import (
    CONTENT_TYPE_HEADER,
    MSGPACK,
    UNKNOWN_CHANNEL_ERROR,
    Subjects,
    reply_inbox,
)
from invsync.service.wire import PublishBatch

log = logging.getLogger("invsync.service")

QUEUE_GROUP = "invsync-reserve"
# Group appends awaiting their acknowledgement at once; requests arriving meanwhile
# gather into the next group.
MAX_APPENDS_IN_FLIGHT = 4
MAX_GROUP = 256
# Requests taken in and not yet in the log; beyond this new ones are refused
# at once with OVERLOADED (bounded memory, and the client knows to retry).
MAX_PENDING = 4096
OVERLOADED = "overloaded, retry"
NOT_AN_INBOX = "reply subject is not an inbox"


class ReservationGateway:
    def __init__(
        self,
        nc: Client,
        writer: LogWriter,
        subjects: Subjects,
        metrics: Metrics,
        channels: Callable[[], Container[str]],
    ) -> None:
        """`channels()` gives the channels of the policy in force (it changes on reload)."""
        self.nc = nc
        self.writer = writer
        self.subjects = subjects
        self.metrics = metrics
        self.channels = channels
        self._appends = anyio.Semaphore(MAX_APPENDS_IN_FLIGHT)
        self._pending: dict[str, list[LoggedReservation]] = {}
        self._queued = 0  # taken in, not yet appended
        # Answers to refused requests and their dead letters, sent by the append loop.
        self._refusals = PublishBatch(nc)
        self._wake = anyio.Event()
        self._sub: Subscription | None = None

    async def start(self, tg: TaskGroup) -> None:
        async def on_request(msg: Msg) -> None:
            self._on_requests([PlainEntry.of(msg)], [])

        tg.start_soon(self._append_groups, tg)
        self._sub = await self.nc.subscribe(
            self.subjects.reserve_requests, queue=QUEUE_GROUP, cb=on_request
        )
        fast = lane(self.nc)
        if fast is not None:
            fast.route(natsclient.subscription_id(self._sub), self._on_requests)

    async def stop(self) -> None:
        if self._sub is not None:
            fast = lane(self.nc)
            if fast is not None:
                fast.unroute(natsclient.subscription_id(self._sub))
            await self._sub.unsubscribe()
            self._sub = None

    def _on_requests(self, requests: Sequence[LogEntry], _statuses: Sequence[LogEntry]) -> None:
        for msg in requests:
            self._accept(msg)
        self._wake.set()

    def _accept(self, msg: LogEntry) -> None:
        """Validates and queues one request; a malformed one is refused (and answered)."""
        channel = msg.subject.rsplit(".", 1)[-1]
        if channel not in self.channels():
            self.metrics.reservations.labels(UNKNOWN_CHANNEL, "error").inc()
            self._refuse(msg, UNKNOWN_CHANNEL_ERROR, dead_letter_it=False)
            return
        if msg.reply and reply_inbox(msg.reply) is None:
            self._refuse(msg, NOT_AN_INBOX)  # dead-lettered, and not answered there
            return
        if self._queued >= MAX_PENDING:
            self.metrics.reservations.labels(channel, "error").inc()
            self._refuse(msg, OVERLOADED, dead_letter_it=False)
            return
        msgpack = msg.headers is not None and msg.headers.get(CONTENT_TYPE_HEADER) == MSGPACK
        try:
            request = decode_reserve(msg.data, msgpack=msgpack)
            if request.channel != channel:
                raise BadInputError(
                    f"channel: {request.channel!r} does not match subject channel {channel!r}"
                )
        except BadInputError as exc:
            self._refuse(msg, str(exc))
            return
        if request.ts is None:
            request = msgspec.structs.replace(request, ts=datetime.now(UTC))
        entry = LoggedReservation(request=request, reply=msg.reply or None)
        self._pending.setdefault(channel, []).append(entry)
        self._queued += 1

    async def _append_groups(self, tg: TaskGroup) -> None:
        """Forever: take what is pending, per channel, and append it in groups."""
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            if len(self._refusals):
                await self._refusals.send()
            pending, self._pending = self._pending, {}
            for channel, entries in pending.items():
                for start in range(0, len(entries), MAX_GROUP):
                    await self._appends.acquire()
                    tg.start_soon(self._append, channel, entries[start : start + MAX_GROUP])

    async def _append(self, channel: str, entries: list[LoggedReservation]) -> None:
        try:
            await self.writer.append(
                self.subjects.reserve_log(channel), encode_json(ReservationGroup(entries))
            )
        except Fenced:
            # Deposed: the requests are not in the log and a deposed leader answers
            # nobody; each client's retry reaches the new leader.
            log.warning("%d reservations dropped: no longer the leader", len(entries))
        except NatsError as exc:
            log.warning("could not append %d reservations: %s", len(entries), exc)
            self.metrics.reservations.labels(channel, "error").inc(len(entries))
            failed = encode_json({"ok": False, "error": "log unavailable, retry"})
            for entry in entries:
                if entry.reply:
                    await self.nc.publish(entry.reply, failed)
        finally:
            self._appends.release()
            self._queued -= len(entries)

    def _refuse(self, msg: LogEntry, error: str, *, dead_letter_it: bool = True) -> None:
        """Answer at once (with the next send) so no client waits for a time-out."""
        reply = reply_inbox(msg.reply)
        if reply:
            self._refusals.add(reply, encode_json({"ok": False, "error": error}))
        if dead_letter_it:
            self.metrics.dead_letters.labels("bad_request").inc()
            dead = dead_letter(msg.subject, msg.data, error)
            self._refusals.add(self.subjects.dlq, encode_json(dead))
