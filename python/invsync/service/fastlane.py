"""A fast lane through nats-py's parser for the service's busy subscriptions.

nats-py spends several microseconds on every message it delivers: a regex per
control line, a `Msg` object, header parsing, a queue hop and a callback task.
At log rates that is most of the service's time. `LaneParser` replaces the
client's parser: the core's `FrameSplitter` cuts each read buffer into frames,
the messages of routed subscriptions (the log, reservation requests) go
straight to their handler as `LogMessage` batches, and every other frame
(pings, errors, replies, other subscriptions) goes to nats-py's own parser
whole and in order, so the rest of the client behaves exactly as before. A
routed subscription stays a nats-py subscription (re-subscribed on reconnect,
unsubscribed as usual); only its deliveries take the lane.

The parser is a private member of nats-py's client (`natsclient`): on a client
without it, `lane(nc)` is None and the reader uses a plain subscription.
"""

from __future__ import annotations

from collections.abc import Callable

from nats.aio.client import Client
from nats.protocol.parser import AWAITING_CONTROL_LINE, Parser

from invsync._core import FrameSplitter, LogMessage
from invsync.service import natsclient

OnMessages = Callable[[list[LogMessage], list[LogMessage]], None]


class LaneParser(Parser):
    """nats-py's parser, with routed subscriptions' messages handed out in bulk."""

    def __init__(self, nc: Client) -> None:
        super().__init__(nc)
        self._rest = b""  # an incomplete frame, waiting for the next read
        self._splitter = FrameSplitter()
        self._routes: dict[int, OnMessages] = {}

    def route(self, sid: int, on_messages: OnMessages) -> None:
        """From now on, subscription `sid`'s messages go to `on_messages(data, status)`."""
        self._splitter.route(sid)
        self._routes[sid] = on_messages

    def unroute(self, sid: int) -> None:
        self._splitter.unroute(sid)
        self._routes.pop(sid, None)

    def reset(self) -> None:
        super().reset()
        self._rest = b""

    async def parse(self, data: bytes = b"") -> None:
        if self._rest:
            data, self._rest = self._rest + data, b""
        if not self._routes:
            await super().parse(data)
            return
        if self.state != AWAITING_CONTROL_LINE:
            # Routed while the client was inside a frame: let it finish that one.
            await super().parse(data)
            if self.state != AWAITING_CONTROL_LINE:
                return
            data = b""
        if self.buf:  # a partial control line the client holds: take it over
            data = bytes(self.buf) + data
            self.buf.clear()
        consumed, routed, others = self._splitter.split(data)
        self._rest = data[consumed:]
        for sid, messages, statuses in routed:
            on_messages = self._routes.get(sid)
            if on_messages is not None:
                on_messages(messages, statuses)
        for start, end in others:
            await super().parse(data[start:end])


def install(nc: Client) -> None:
    """Give a client that is not connected yet the lane-capable parser."""
    if type(natsclient.parser(nc)) is Parser:
        natsclient.set_parser(nc, LaneParser(nc))


def lane(nc: Client) -> LaneParser | None:
    found = natsclient.parser(nc)
    return found if isinstance(found, LaneParser) else None
