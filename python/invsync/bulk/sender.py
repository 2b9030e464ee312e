"""Stores messages in JetStream in order, many awaiting their acknowledgement at once.

Messages leave one connection in file order, so the stream stores them in that
order; up to `window` wait for their acks together, which is what makes a large
file fast. The first refusal or missing ack stops the run: what was stored by
then is de-duplicated when the same file is sent again.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

import anyio
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js.api import PubAck
from nats.js.errors import APIError, NoStreamResponseError, NotFoundError, TooManyStalledMsgsError

from invsync.bulk.packing import MSG_ID_HEADER, Message
from invsync.service.subjects import Subjects


class PublishError(Exception):
    """Publishing stopped; the message says why and what to do."""


@dataclass
class Tally:
    """What the stream made of the messages sent so far."""

    messages: int = 0
    events: int = 0
    stored: int = 0
    duplicates: int = 0


async def message_limit(nc: Client, subjects: Subjects) -> int:
    """The most bytes one message may have: the server's max_payload, or the stream's
    max_msg_size when that is smaller. Fails when no stream stores our subjects."""
    js = nc.jetstream()
    try:
        name = await js.find_stream_name_by_subject(subjects.stock)
        info = await js.stream_info(name)
    except NotFoundError as exc:
        raise PublishError(
            f"no JetStream stream stores {subjects.stock}: start `invsync serve`"
            f" (with --prefix {subjects.prefix}) on this server first"
        ) from exc
    except NatsError as exc:  # no JetStream on the server, or no permission for its API
        raise PublishError(f"cannot read the stream that stores {subjects.stock}: {exc!r}") from exc
    stream_max = info.config.max_msg_size or -1
    return nc.max_payload if stream_max < 0 else min(nc.max_payload, stream_max)


class Sender:
    """Publishes with `Nats-Msg-Id`, keeping at most `window` messages unacknowledged."""

    def __init__(self, nc: Client, window: int, ack_timeout_s: float) -> None:
        self._js = nc.jetstream(publish_async_max_pending=window)
        self._ack_timeout_s = ack_timeout_s
        self._unacked: deque[tuple[asyncio.Future[PubAck], Message]] = deque()
        self.tally = Tally()

    async def send(self, message: Message) -> None:
        try:
            ack = await self._js.publish_async(
                message.subject,
                message.payload,
                wait_stall=self._ack_timeout_s,
                headers={MSG_ID_HEADER: message.msg_id},
            )
        except TooManyStalledMsgsError as exc:
            raise self._no_ack() from exc
        except NatsError as exc:
            raise PublishError(f"{_lines(message)}: not sent: {exc!r}") from exc
        self._unacked.append((ack, message))
        self._count_acked()

    async def finish(self) -> Tally:
        """Waits for every outstanding ack; the tally of the whole run."""
        try:
            with anyio.fail_after(self._ack_timeout_s):
                await self._js.publish_async_completed()
        except TimeoutError as exc:
            raise self._no_ack() from exc
        self._count_acked()
        return self.tally

    @property
    def unacked(self) -> int:
        return len(self._unacked)

    def _count_acked(self) -> None:
        while self._unacked and self._unacked[0][0].done():
            future, message = self._unacked.popleft()
            error = future.exception()
            if isinstance(error, NoStreamResponseError):
                raise PublishError(
                    f"{_lines(message)}: no JetStream stream stores {message.subject}"
                )
            if isinstance(error, APIError):
                raise PublishError(f"{_lines(message)}: JetStream refused it: {error.description}")
            if error is not None:
                raise PublishError(f"{_lines(message)}: {error!r}")
            self.tally.messages += 1
            self.tally.events += message.events
            if future.result().duplicate:
                self.tally.duplicates += 1
            else:
                self.tally.stored += 1

    def _no_ack(self) -> PublishError:
        oldest = self._unacked[0][1] if self._unacked else None
        where = f"{_lines(oldest)}: " if oldest is not None else ""
        return PublishError(
            f"{where}no acknowledgement from JetStream within {self._ack_timeout_s:g} s;"
            " send the file again: messages already stored are de-duplicated"
        )


def _lines(message: Message) -> str:
    if message.first_line == message.last_line:
        return f"line {message.first_line}"
    return f"lines {message.first_line}-{message.last_line}"
