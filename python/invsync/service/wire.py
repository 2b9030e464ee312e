"""Many NATS publishes handed to the client as one write.

`Client.publish` costs a few microseconds of Python per message (subject checks,
command formatting, the flusher hand-off): at one route per order and a
quantity message per channel per flush, that was a fifth of the service's time.
A flush's messages are formatted here as PUB commands and given to the client
in one piece, which then writes them exactly as it would its own. The messages,
their subjects and their order on the wire are the same as publishing them one
by one; only the client's per-call work is saved.

The raw write is a private path of nats-py's client (`natsclient`). Where it is
missing, or for a payload over the server's limit (so the client raises as it
always did), each message goes through `Client.publish`.
"""

from __future__ import annotations

import re

from nats.aio.client import Client
from nats.errors import BadSubjectError, ConnectionClosedError, ConnectionDrainingError

from invsync.service import natsclient

# What would break the PUB command line (nats-py rejects the same on publish).
_BAD_SUBJECT = re.compile(r"[\s]")


class PublishBatch:
    """Collect (subject, payload) pairs with `add`, then `send` them in order."""

    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._raw = natsclient.can_write_raw(nc)
        self._commands: list[bytes] = []
        self._slow: list[tuple[str, bytes]] = []
        # Subjects repeat (a channel, a location): checked and encoded once.
        self._known: dict[str, bytes] = {}

    def __len__(self) -> int:
        return len(self._commands) + len(self._slow)

    @property
    def takes_frames(self) -> bool:
        """Whether `add_frames` is possible: the client's private write path is there."""
        return self._raw

    def add_frames(self, frames: bytes) -> None:
        """PUB frames written elsewhere (the core writes a batch's routes), in order."""
        if not self._raw or self._slow:
            raise RuntimeError("PUB frames need the client's raw write path")
        self._commands.append(frames)

    def add(self, subject: str, payload: bytes) -> None:
        if not self._raw or len(payload) > self._nc.max_payload or self._slow:
            self._slow.append((subject, payload))
            return
        encoded = self._known.get(subject)
        if encoded is None:
            if not subject or _BAD_SUBJECT.search(subject):
                raise BadSubjectError
            encoded = subject.encode()
            if len(self._known) < 10_000:  # reply inboxes are unique: do not keep them all
                self._known[subject] = encoded
        self._commands.append(b"PUB %s %d\r\n%s\r\n" % (encoded, len(payload), payload))

    async def send(self) -> None:
        """Hand everything added to the client (buffered by it while reconnecting)."""
        commands, self._commands = self._commands, []
        slow, self._slow = self._slow, []
        nc = self._nc
        if commands:
            if nc.is_closed:
                raise ConnectionClosedError
            if nc.is_draining_pubs:
                raise ConnectionDrainingError
            await natsclient.write_raw(nc, b"".join(commands))
        for subject, payload in slow:
            await nc.publish(subject, payload)
