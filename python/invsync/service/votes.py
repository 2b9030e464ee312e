"""Appending this partition's votes on reservations spanning partitions to the log.

A vote is written once per (request, partition): `Nats-Msg-Id: vote:<request>:<k>`
lets the stream drop a re-sent one (a replaying partition recomputes the same vote),
and the engine counts only the first per partition anyway. Votes go through the
partition's `LogWriter`, fenced like every other append of its leader. A vote that
cannot be appended is logged; the request then times out
(`cross_partition_timeout_s`).
"""

from __future__ import annotations

import logging

from nats.errors import Error as NatsError

from invsync.events import Vote, encode_json
from invsync.service.logwriter import Fenced, LogWriter
from invsync.service.subjects import Subjects

log = logging.getLogger("invsync.service")


class VoteWriter:
    def __init__(self, writer: LogWriter, subjects: Subjects) -> None:
        self.writer = writer
        self.subject = subjects.vote_log

    async def append(self, votes: list[Vote]) -> None:
        for vote in votes:
            msg_id = f"vote:{vote.request_id}:{vote.partition}"
            try:
                await self.writer.append(self.subject, encode_json(vote), {"Nats-Msg-Id": msg_id})
            except Fenced:
                return  # deposed: the new leader writes the votes it recomputes
            except NatsError as exc:
                log.warning("vote %s not appended (the request will time out): %s", msg_id, exc)
