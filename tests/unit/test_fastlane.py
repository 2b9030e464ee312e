"""The log's fast lane: one subscription's frames out of the read buffer, all else to nats-py."""

from __future__ import annotations

from typing import Any

import pytest

from invsync._core import LogMessage
from invsync.service.fastlane import LaneParser

pytestmark = pytest.mark.anyio

STREAM = (
    b"MSG inv.order.amazon 7 $JS.ACK.INVSYNC.c.1.41.1.1700000000.9 5\r\nfirst\r\n"
    b"PING\r\n"
    b"MSG _INBOX.other 3 6\r\nreply!\r\n"
    b"HMSG inv.stock.wh-1 7 $JS.ACK.INVSYNC.c.1.42.2.1700000000.8 28 30\r\n"
    b"NATS/1.0\r\nNats-Msg-Id: a\r\n\r\nhi\r\n"
    b"HMSG _INBOX.log 7 $JS.FC.INVSYNC.c.xyz 19 19\r\nNATS/1.0 100 FC\r\n\r\n\r\n"
)


class FakeClient:
    """What nats-py's parser calls back into."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def _process_ping(self) -> None:
        self.calls.append(("ping",))

    async def _process_msg(
        self, sid: int, subject: bytes, reply: bytes, data: bytes, hdr: Any
    ) -> None:
        self.calls.append(("msg", sid, subject, data))


async def feed(chunks: list[bytes]) -> tuple[FakeClient, list[LogMessage], list[LogMessage]]:
    client = FakeClient()
    parser = LaneParser(client)  # type: ignore[arg-type]
    messages: list[LogMessage] = []
    statuses: list[LogMessage] = []

    def on_messages(m: Any, s: Any) -> None:
        messages.extend(m)
        statuses.extend(s)

    parser.route(7, on_messages)
    for chunk in chunks:
        await parser.parse(chunk)
    return client, messages, statuses


def check(client: FakeClient, messages: list[LogMessage], statuses: list[LogMessage]) -> None:
    assert [(m.subject, m.data, m.stream_seq, m.consumer_seq) for m in messages] == [
        ("inv.order.amazon", b"first", 41, 1),
        ("inv.stock.wh-1", b"hi", 42, 2),
    ]
    assert messages[0].reply is None and messages[0].headers is None
    assert messages[1].headers == {"Nats-Msg-Id": "a"}
    [fc] = statuses
    assert fc.headers == {"Status": "100", "Description": "FC"}
    assert fc.reply == "$JS.FC.INVSYNC.c.xyz"
    assert client.calls == [("ping",), ("msg", 3, b"_INBOX.other", b"reply!")]


async def test_whole_buffer() -> None:
    check(*await feed([STREAM]))


@pytest.mark.parametrize("cut", [1, 3, 10, 40, 70, 75, 90, 120, 160, len(STREAM) - 1])
async def test_frames_cut_anywhere_across_reads(cut: int) -> None:
    check(*await feed([STREAM[:cut], STREAM[cut:]]))


async def test_byte_by_byte() -> None:
    check(*await feed([STREAM[i : i + 1] for i in range(len(STREAM))]))


async def test_unrouted_everything_goes_to_the_client() -> None:
    client = FakeClient()
    parser = LaneParser(client)  # type: ignore[arg-type]
    parser.route(7, lambda m, s: None)
    await parser.parse(STREAM[:30])  # inside the first frame
    parser.unroute(7)
    await parser.parse(STREAM[30:])
    assert [c[0] for c in client.calls].count("msg") == 4


async def test_each_routed_subscription_gets_its_own_messages() -> None:
    client = FakeClient()
    parser = LaneParser(client)  # type: ignore[arg-type]
    got: dict[int, list[bytes]] = {7: [], 3: []}
    parser.route(7, lambda m, s: got[7].extend(x.data for x in m))
    parser.route(3, lambda m, s: got[3].extend(x.data for x in m))
    await parser.parse(STREAM)
    assert got == {7: [b"first", b"hi"], 3: [b"reply!"]}
    assert client.calls == [("ping",)]
