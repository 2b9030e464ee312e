"""Reading the log in order, in batches, without per-message acks.

The service is a state machine over the stream and its position lives in the
snapshot, so the consumer is ephemeral, starts at (snapshot sequence + 1) and
uses AckPolicy none: acking every message would cap throughput far below the
rate the server can deliver.

It is a push consumer with flow control on a core subscription of our own
inbox. Messages stream in as soon as JetStream has stored them, so the consume
loop takes whatever has arrived: a few messages at the tail of the log (low
latency, no pull round trip and no fetch time-out to wait out), thousands when
catching up. A pull `fetch` costs a request round trip per batch and, in
nats-py, a task per message it waits for; here a message costs the client's
parse and one list append. Back-pressure is the server's flow control: we
answer its flow-control requests only as the loop takes messages, so at most
one window is buffered here.

On a client with the fast lane (fastlane.py) the subscription's messages arrive
as `LogMessage` batches straight from the read buffer; on any other client
through a plain nats-py subscription, as the same kind of entries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import anyio
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from invsync.service import natsclient
from invsync.service.fastlane import lane
from invsync.service.subjects import Subjects

IDLE_FETCH_TIMEOUT_S = 0.005
RETRY_DELAY_S = 0.5
HEARTBEAT_S = 1.0
# No message and no heartbeat for this long: the consumer is gone (a server restart).
SILENCE_S = 3 * HEARTBEAT_S
# Flow-control requests are answered once fewer than this many messages wait here.
LOW_WATER = 20_000
_STATUS = "Status"
_LAST_CONSUMER = "Nats-Last-Consumer"
_STALLED = "Nats-Consumer-Stalled"

log = logging.getLogger("invsync.service")


class LogEntry(Protocol):
    """A delivered log message: a `LogMessage`, or a `PlainEntry` off a plain subscription."""

    @property
    def subject(self) -> str: ...
    @property
    def reply(self) -> str | None: ...
    @property
    def headers(self) -> dict[str, str] | None: ...
    @property
    def data(self) -> bytes: ...
    @property
    def stream_seq(self) -> int: ...
    @property
    def consumer_seq(self) -> int: ...


@dataclass(frozen=True, slots=True)
class PlainEntry:
    subject: str
    reply: str | None
    headers: dict[str, str] | None
    data: bytes
    stream_seq: int
    consumer_seq: int

    @classmethod
    def of(cls, msg: Msg) -> PlainEntry:
        stream_seq, consumer_seq = ack_sequences(msg.reply)
        reply = None if stream_seq else (msg.reply or None)
        return cls(msg.subject, reply, msg.headers, msg.data, stream_seq, consumer_seq)


def ack_sequences(reply: str) -> tuple[int, int]:
    """(stream sequence, consumer sequence) of a JetStream delivery, from its reply subject.

    `$JS.ACK[.<domain>.<account hash>].<stream>.<consumer>.<delivered>.<stream seq>
    .<consumer seq>.<ts>.<pending>`: counted from the end, the layout is the same
    with or without a domain (newer servers may append a random token).
    (0, 0) for any other reply.
    """
    if not reply.startswith("$JS.ACK."):
        return 0, 0
    tokens = reply.split(".")[:11]
    try:
        return int(tokens[-4]), int(tokens[-3])
    except (IndexError, ValueError):
        return 0, 0


class LogReader:
    """An ephemeral no-ack push consumer over the service's subjects, read in batches."""

    def __init__(self, js: JetStreamContext, stream: str, subjects: Subjects) -> None:
        self._js = js
        self._nc: Client = natsclient.jetstream_client(js)
        self._stream = stream
        self._subjects = subjects
        self._sub: Subscription | None = None
        self._consumer: str | None = None
        self._buffer: list[LogEntry] = []
        self._arrived = anyio.Event()
        self._flow_control: list[str] = []
        self._broken: str | None = None
        # The server's count of what it delivered, from its last idle heartbeat.
        self._heartbeat_delivered = 0
        self._heard = time.monotonic()
        self._generation = 0
        self.last_sequence = 0
        self._last_consumer_sequence = 0

    @property
    def buffered(self) -> int:
        """Messages received and not yet handed out: 0 means we are at the log's tail."""
        return len(self._buffer)

    async def open(self, after_sequence: int) -> None:
        """Start delivering from the message after `after_sequence` (0 = from the start)."""
        self.last_sequence = after_sequence
        self._last_consumer_sequence = 0
        self._heartbeat_delivered = 0
        self._buffer = []
        self._flow_control = []
        self._broken = None
        self._heard = time.monotonic()
        self._generation += 1
        generation = self._generation

        async def on_msg(msg: Msg) -> None:
            if generation == self._generation:  # not a late delivery to a dropped subscription
                entry = PlainEntry.of(msg)
                if entry.headers is not None and _STATUS in entry.headers:
                    self._on_statuses([entry])
                else:
                    self._on_messages([entry], [])

        inbox = self._nc.new_inbox()
        # Subscribed before the consumer exists, so its first message has somewhere to go.
        self._sub = await self._nc.subscribe(
            inbox,
            cb=on_msg,
            pending_msgs_limit=1_000_000,
            pending_bytes_limit=512 * 1024 * 1024,
        )
        fast = lane(self._nc)
        if fast is not None:
            fast.route(natsclient.subscription_id(self._sub), self._on_messages)
        config = ConsumerConfig(
            ack_policy=AckPolicy.NONE,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=after_sequence + 1,
            filter_subjects=self._subjects.stream_subjects,
            deliver_subject=inbox,
            flow_control=True,
            idle_heartbeat=HEARTBEAT_S,
            inactive_threshold=30.0,
            mem_storage=True,
        )
        try:
            info = await self._js.add_consumer(self._stream, config)
        except BaseException:
            await self._drop()
            raise
        self._consumer = info.name

    def _on_messages(self, messages: Sequence[LogEntry], statuses: Sequence[LogEntry]) -> None:
        if messages:
            self._buffer += messages
            self._arrived.set()
        if statuses:
            self._on_statuses(statuses)

    def _on_statuses(self, statuses: Sequence[LogEntry]) -> None:
        for msg in statuses:
            headers = msg.headers or {}
            status = headers.get(_STATUS, "")
            if status != "100":
                self._break(f"consumer status {status} {headers.get('Description', '')}".strip())
            elif msg.reply:
                self._flow_control.append(msg.reply)
                if not self._buffer:
                    self._arrived.set()  # nothing to take, so answer it now
            else:  # idle heartbeat
                stalled = headers.get(_STALLED)
                if stalled:
                    self._flow_control.append(stalled)
                self._heartbeat_delivered = int(headers.get(_LAST_CONSUMER, "0") or 0)
                self._heard = time.monotonic()
                self._arrived.set()

    def _break(self, why: str) -> None:
        if self._broken is None:
            self._broken = why
        self._arrived.set()

    async def fetch(self, batch: int, timeout_s: float = IDLE_FETCH_TIMEOUT_S) -> list[LogEntry]:
        """Up to `batch` messages in stream order; waits up to `timeout_s` for the first.

        Returns at once with what has arrived (never waits to fill a batch); an
        empty list when the log is idle. With no acks nothing is redelivered, so
        a hole in the consumer sequence (a slow-consumer drop, a reconnect) is
        fatal to ordering: the reader reopens after the last sequence it handed
        out and returns nothing this time.
        """
        if self._sub is None:
            try:
                await self.open(self.last_sequence)
            except nats.errors.Error as exc:
                log.warning("consumer not opened after sequence %d: %r", self.last_sequence, exc)
                await anyio.sleep(RETRY_DELAY_S)
                return []
        if not self._buffer and self._broken is None:
            if self._arrived.is_set():
                self._arrived = anyio.Event()
            with anyio.move_on_after(timeout_s):
                await self._arrived.wait()
        if self._broken is not None:
            log.warning(
                "log consumer after sequence %d: %s; reopening", self.last_sequence, self._broken
            )
            await self._drop()
            return []
        buffer = self._buffer
        if len(buffer) <= batch:
            msgs, self._buffer = buffer, []
        else:
            msgs = buffer[:batch]
            del buffer[:batch]
        if self._flow_control and len(self._buffer) < LOW_WATER:
            await self._answer_flow_control()
        if not msgs:
            if self._heartbeat_delivered > self._last_consumer_sequence:
                log.warning("gap after sequence %d (heartbeat): reopening", self.last_sequence)
                await self._drop()
            elif time.monotonic() - self._heard > SILENCE_S:
                log.warning("log consumer silent after sequence %d: reopening", self.last_sequence)
                await self._drop()
            return msgs
        self._heard = time.monotonic()
        first, last = msgs[0].consumer_seq, msgs[-1].consumer_seq
        if first != self._last_consumer_sequence + 1 or last != first + len(msgs) - 1:
            log.warning("gap after sequence %d: reopening", self.last_sequence)
            await self._drop()
            return []
        self._last_consumer_sequence = last
        self.last_sequence = msgs[-1].stream_seq
        return msgs

    async def _answer_flow_control(self) -> None:
        replies, self._flow_control = self._flow_control, []
        for reply in replies:
            try:
                await self._nc.publish(reply, b"")
            except nats.errors.Error as exc:
                self._break(f"flow control not answered: {exc!r}")

    async def reopen(self) -> None:
        """A new consumer after the last sequence handed out."""
        await self._drop()
        await self.open(self.last_sequence)

    async def undelivered(self) -> int:
        """Messages of our subjects the server has not delivered to us yet."""
        if self._sub is None or self._consumer is None:
            return 1  # unknown until reopened: assume there is more
        try:
            info = await self._js.consumer_info(self._stream, self._consumer)
        except nats.errors.Error:
            return 1
        return int(info.num_pending or 0) + len(self._buffer)

    async def _drop(self) -> None:
        """Forget the subscription; the next fetch opens a new one after last_sequence."""
        try:
            await self.close()
        except nats.errors.Error:
            self._sub = None
            self._consumer = None

    async def close(self) -> None:
        self._generation += 1
        self._buffer = []
        self._flow_control = []
        sub, self._sub = self._sub, None
        consumer, self._consumer = self._consumer, None
        fast = lane(self._nc)
        if fast is not None and sub is not None:
            fast.unroute(natsclient.subscription_id(sub))
        if sub is not None:
            await sub.unsubscribe()
        if consumer is not None and self._nc.is_connected:
            # Gone already, or the server drops it anyway once its interest lapses.
            with anyio.move_on_after(1.0):
                try:
                    await self._js.delete_consumer(self._stream, consumer)
                except nats.errors.Error:
                    pass
