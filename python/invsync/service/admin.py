"""Operator requests: policy reload (`{p}.admin.policy`, SIGHUP) and `{p}.query.sku`.

A reload is judged here, as a file and against the live state (a location
that still holds stock, a channel with open orders), and refused with the
reason; a good policy is appended to `{p}.log.policy` and applied in log order,
so a replay switches policy at the same point the live run did. The state may
still change before it is applied: the applier then skips it the same way.
The logged entry names who asked (REQUESTED_BY_HEADER): for a request over NATS,
the identity nats-server put in `Nats-Request-Info`, which it does (and
overwrites any forged one) for requests imported from another account, as the
shipped permissions import them from the admin account. Within one account NATS
does not identify a publisher, and the entry says so.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError

from invsync.errors import InvsyncError, PolicyError
from invsync.events import SkuQuery, encode_json
from invsync.policy import Policy
from invsync.service.applier import POLICY_SOURCE_HEADER
from invsync.service.logwriter import Fenced, LogWriter
from invsync.service.subjects import REPLY_HEADER, REQUESTED_BY_HEADER, Subjects, reply_inbox

if TYPE_CHECKING:
    from invsync.engine import Engine

log = logging.getLogger("invsync.service")

_QUERY = msgspec.json.Decoder(SkuQuery)
NATS_REQUEST_INFO = "Nats-Request-Info"
UNIDENTIFIED = "unidentified (no Nats-Request-Info: a client of the service's own account)"
ON_SIGHUP = "SIGHUP"
AT_START = "start-up (the policy file changed while the service was down)"


class RequestInfo(msgspec.Struct):
    """The fields of nats-server's `Nats-Request-Info` header that name the requester."""

    acc: str = ""
    user: str = ""
    name: str = ""


_REQUEST_INFO = msgspec.json.Decoder(RequestInfo)


def requester(msg: Msg) -> str:
    """Who sent `msg`, as the server identified them, for the audit record."""
    info = (msg.headers or {}).get(NATS_REQUEST_INFO)
    if info is None:
        return UNIDENTIFIED
    try:
        who = _REQUEST_INFO.decode(info)
    except msgspec.DecodeError:
        return UNIDENTIFIED
    named = f" (connection {who.name!r})" if who.name else ""
    return f"user {who.user} of account {who.acc}{named}"


#: Partitioned, any one partition takes a policy reload in.
ADMIN_QUEUE = "invsync-admin"


class Admin:
    def __init__(
        self,
        nc: Client,
        writer: LogWriter,
        subjects: Subjects,
        engine: Engine,
        partition: tuple[int, int] = (0, 1),
    ) -> None:
        """`partition`: (k, n), this instance's partition of n (0 of 1: every SKU)."""
        self.nc = nc
        self.writer = writer
        self.subjects = subjects
        self.engine = engine
        self._partition, self._partitions = partition
        self._subs: list[Subscription] = []

    async def start(self) -> None:
        # Every partition hears every SKU query and only the SKU's owner answers, so
        # one answer comes back with no hop between partitions.
        queue = ADMIN_QUEUE if self._partitions > 1 else ""
        self._subs = [
            await self.nc.subscribe(self.subjects.admin_policy, queue=queue, cb=self._on_policy),
            await self.nc.subscribe(self.subjects.query_sku, cb=self._on_query),
        ]

    async def stop(self) -> None:
        for sub in self._subs:
            await sub.unsubscribe()
        self._subs = []

    async def submit_policy(
        self, text: str, source: str, reply_to: str | None, requested_by: str
    ) -> str | None:
        """Judge and append a policy; returns the refusal text, or None when appended.
        Raises `Fenced` when this process is no longer the leader."""
        try:
            self.engine.check_policy(Policy.from_toml(text, source))
        except PolicyError as exc:
            return str(exc)
        headers = {POLICY_SOURCE_HEADER: source, REQUESTED_BY_HEADER: requested_by}
        if reply_to:
            headers[REPLY_HEADER] = reply_to
        try:
            await self.writer.append(self.subjects.policy_log, text.encode(), headers)
        except NatsError as exc:
            return f"policy not appended: {exc}"
        return None

    async def reload_file(self, path: Path) -> None:
        """SIGHUP: re-read the policy file; a bad one is logged and the old one stays."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            log.error("policy reload refused: %s", exc)
            return
        try:
            refusal = await self.submit_policy(text, str(path), None, ON_SIGHUP)
        except Fenced:
            log.error("policy reload not appended: no longer the leader (reload the leader)")
            return
        if refusal is not None:
            log.error("policy reload refused: %s", refusal)

    async def _on_policy(self, msg: Msg) -> None:
        who, reply = requester(msg), reply_inbox(msg.reply)
        try:
            text = msg.data.decode("utf-8")
        except UnicodeDecodeError:
            refusal: str | None = "policy is not UTF-8 text"
        else:
            try:
                refusal = await self.submit_policy(text, self.subjects.admin_policy, reply, who)
            except Fenced:
                return  # a deposed leader answers nobody: the requester's retry finds the new one
        if refusal is None:
            return
        log.warning("policy reload requested by %s refused: %s", who, refusal)
        if reply:
            await self.nc.publish(reply, encode_json({"ok": False, "error": refusal}))

    async def _on_query(self, msg: Msg) -> None:
        try:
            query = _QUERY.decode(msg.data)
        except msgspec.DecodeError as exc:
            if self._partition != 0:
                return  # a bad query as a whole: partition 0 answers it
            body = encode_json({"ok": False, "error": str(exc)})
        else:
            if self._partitions > 1 and self.engine.partition_of(query.sku) != self._partition:
                return  # its owner answers, known SKU or not
            try:
                body = encode_json(self.engine.explain(query.sku, query.condition).to_dict())
            except (InvsyncError, KeyError) as exc:
                body = encode_json({"ok": False, "error": str(exc)})
        reply = reply_inbox(msg.reply)
        if reply:
            await self.nc.publish(reply, body)
