"""A fast lane through nats-py's parser for the log subscription.

nats-py spends several microseconds on every message it delivers: a regex per
control line, a `Msg` object, header parsing, a queue hop and a callback task.
At log rates that is most of the service's time. `LaneParser` replaces the
client's parser: the core's `FrameSplitter` cuts each read buffer into frames,
the log subscription's messages go straight to the reader as `LogMessage`
objects in batches, and every other frame (pings, errors, replies, other
subscriptions) goes to nats-py's own parser whole and in order, so the rest of
the client behaves exactly as before.

This relies on nats-py's `Client._ps` parser attribute (present since 2.0); on a
client without it, `lane(nc)` is None and the reader uses a plain subscription.
"""

from __future__ import annotations

from collections.abc import Callable

from nats.aio.client import Client
from nats.protocol.parser import AWAITING_CONTROL_LINE, Parser

from invsync._core import FrameSplitter, LogMessage

OnMessages = Callable[[list[LogMessage], list[LogMessage]], None]


class LaneParser(Parser):
    """nats-py's parser, with one subscription's messages handed out in bulk."""

    def __init__(self, nc: Client) -> None:
        super().__init__(nc)
        self._rest = b""  # an incomplete frame, waiting for the next read
        self._splitter: FrameSplitter | None = None
        self._on_messages: OnMessages | None = None

    def route(self, sid: int, on_messages: OnMessages) -> None:
        """From now on, subscription `sid`'s messages go to `on_messages(data, status)`."""
        self._splitter = FrameSplitter(str(sid))
        self._on_messages = on_messages

    def unroute(self) -> None:
        self._splitter = None
        self._on_messages = None

    def reset(self) -> None:
        super().reset()
        self._rest = b""

    async def parse(self, data: bytes = b"") -> None:
        if self._rest:
            data, self._rest = self._rest + data, b""
        splitter, on_messages = self._splitter, self._on_messages
        if splitter is None or on_messages is None:
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
        consumed, messages, statuses, others = splitter.split(data)
        self._rest = data[consumed:]
        if messages or statuses:
            on_messages(messages, statuses)
        for start, end in others:
            await super().parse(data[start:end])


def install(nc: Client) -> None:
    """Give a client that is not connected yet the lane-capable parser."""
    if type(getattr(nc, "_ps", None)) is Parser:
        nc._ps = LaneParser(nc)


def lane(nc: Client) -> LaneParser | None:
    parser = getattr(nc, "_ps", None)
    return parser if isinstance(parser, LaneParser) else None
