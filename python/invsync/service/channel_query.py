"""`{p}.query.channel`: every quantity last published on a channel, in pages, as of a `seq`.

A connector resyncs from it on start and after a gap in `seq`: it takes the first
page's `seq`, pages through with `after` = `next` until `next` is null, then applies
the `{p}.qty.<channel>` messages with a greater `seq`, in order. A page is read from
the core's record of what was published (updated by the same drain that the
publisher numbers, with no await in between) together with the publisher's `seq`
for the channel, in one step of the event loop: the items are exactly what the
messages up to that `seq` said, so the messages after it are the only ones to apply.
Each item also carries its SKU's last published `{p}.price.<channel>` price, if any:
prices have no `seq`, so a connector queues it like a price message (the newest wins).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from invsync.events import ChannelPage, ChannelQuery, ShownItem, encode_json
from invsync.service.subjects import UNKNOWN_CHANNEL_ERROR, Subjects, reply_inbox

if TYPE_CHECKING:
    from invsync.engine import Engine
    from invsync.service.publisher import Publisher

log = logging.getLogger("invsync.service")

_QUERY = msgspec.json.Decoder(ChannelQuery)
BAD_CURSOR_ERROR = "after: not a cursor this service returned as `next`"
REPUBLISHING_ERROR = "a policy change is being published: ask again in a moment"
# Key indices are u32 in the core.
_MAX_KEY = 2**32 - 1


class BadQuery(Exception):
    """A query this service answers `{"ok": false, "error": ...}`."""


def parse_cursor(after: str | None) -> int:
    """The stock key a page starts at: 0 for the first page, else the decoded `next`."""
    if after is None:
        return 0
    if not after.isascii() or not after.isdigit() or int(after) > _MAX_KEY:
        raise BadQuery(BAD_CURSOR_ERROR)
    return int(after)


def answer(
    engine: Engine,
    channel_seqs: Mapping[str, int],
    data: bytes,
    partition: tuple[int, int] = (0, 1),
) -> ChannelPage:
    """The page `data` asks for, of partition `partition` = (k, n); BadQuery names what
    is wrong with a bad request."""
    mine, partitions = partition
    try:
        query = _QUERY.decode(data)
    except msgspec.DecodeError as exc:
        raise BadQuery(str(exc)) from exc
    if query.channel not in engine.policy.channels:
        raise BadQuery(UNKNOWN_CHANNEL_ERROR)
    start = parse_cursor(query.after)
    if engine.republishing:
        raise BadQuery(REPUBLISHING_ERROR)
    # No await from here to the reply's encoding: `seq` and the items are of one moment.
    rows, next_key = engine.published_page(query.channel, start, query.limit)
    return ChannelPage(
        channel=query.channel,
        seq=channel_seqs.get(query.channel, 0),
        items=[
            ShownItem(sku=sku, condition=cond, qty=qty, price=price, currency=currency)
            for sku, cond, qty, price, currency in rows
        ],
        next=None if next_key is None else str(next_key),
        partition=mine,
        partitions=partitions,
    )


def addressed_to(data: bytes) -> int:
    """The partition a channel query asks: the one it names, else partition 0 (which
    also answers a query too bad to name one)."""
    try:
        return _QUERY.decode(data).partition or 0
    except msgspec.DecodeError:
        return 0


class ChannelQueryServer:
    """Answers `{p}.query.channel` from the engine and the publisher's `seq` counters."""

    def __init__(
        self,
        nc: Client,
        subjects: Subjects,
        engine: Engine,
        publisher: Publisher,
        partition: tuple[int, int] = (0, 1),
    ) -> None:
        """`partition`: (k, n); every partition hears every query, the one it names answers."""
        self.partition = partition
        self.nc = nc
        self.subjects = subjects
        self.engine = engine
        self.publisher = publisher
        self._sub: Subscription | None = None

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(self.subjects.query_channel, cb=self._on_query)

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None

    async def _on_query(self, msg: Msg) -> None:
        reply = reply_inbox(msg.reply)
        if reply is None:
            return
        if self.partition[1] > 1 and addressed_to(msg.data) != self.partition[0]:
            return
        try:
            page = answer(self.engine, self.publisher.channel_seqs, msg.data, self.partition)
            body = encode_json(page)
        except BadQuery as exc:
            log.debug("channel query refused: %s", exc)
            body = encode_json({"ok": False, "error": str(exc)})
        await self.nc.publish(reply, body)
