"""The subject names of CONTRACT section 5, under a configurable prefix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Subjects:
    """Every subject the service reads or writes, built once from the prefix."""

    prefix: str = "inv"

    @property
    def stock(self) -> str:
        return f"{self.prefix}.stock.>"

    @property
    def order(self) -> str:
        return f"{self.prefix}.order.>"

    @property
    def catalog(self) -> str:
        return f"{self.prefix}.catalog.>"

    def catalog_from(self, source: str) -> str:
        """Where a catalog (PIM, ERP, pricing tool) sends prices and promotions."""
        return f"{self.prefix}.catalog.{source}"

    def price(self, channel: str) -> str:
        """Where a channel's prices are published (CONTRACT 14)."""
        return f"{self.prefix}.price.{channel}"

    @property
    def log(self) -> str:
        return f"{self.prefix}.log.>"

    def stock_at(self, location: str) -> str:
        """Where producers send stock events of one location."""
        return f"{self.prefix}.stock.{location}"

    def order_on(self, channel: str) -> str:
        """Where producers send order events of one channel."""
        return f"{self.prefix}.order.{channel}"

    @property
    def stream_subjects(self) -> list[str]:
        return [self.stock, self.order, self.catalog, self.log]

    @property
    def reserve_requests(self) -> str:
        return f"{self.prefix}.reserve.*"

    def reserve_log(self, channel: str) -> str:
        return f"{self.prefix}.log.reserve.{channel}"

    @property
    def reserve_log_prefix(self) -> str:
        return f"{self.prefix}.log.reserve."

    @property
    def clock_log(self) -> str:
        return f"{self.prefix}.log.clock"

    @property
    def policy_log(self) -> str:
        return f"{self.prefix}.log.policy"

    @property
    def vote_log(self) -> str:
        """Where partitions append their votes on reservations spanning partitions."""
        return f"{self.prefix}.log.vote"

    def leader_log(self, partition: int) -> str:
        """Where each new leader of `partition` appends its epoch entry: the fence."""
        return f"{self.prefix}.log.leader.{partition}"

    def leader_presence(self, partition: int) -> str:
        """Answered by the partition's leader while it holds the lease: with no
        subscriber left, the server tells a standby at once that the leader is gone."""
        return f"{self.prefix}.part.{partition}.leader"

    @property
    def leader_log_prefix(self) -> str:
        return f"{self.prefix}.log.leader."

    def qty(self, channel: str) -> str:
        return f"{self.prefix}.qty.{channel}"

    def route(self, location: str) -> str:
        return f"{self.prefix}.route.{location}"

    def alert(self, kind: str) -> str:
        return f"{self.prefix}.alert.{kind}"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}.dlq"

    @property
    def audit(self) -> str:
        return f"{self.prefix}.audit"

    @property
    def query_sku(self) -> str:
        return f"{self.prefix}.query.sku"

    @property
    def query_channel(self) -> str:
        return f"{self.prefix}.query.channel"

    @property
    def admin_policy(self) -> str:
        return f"{self.prefix}.admin.policy"

    @property
    def acks(self) -> str:
        return f"{self.prefix}.ack.*"

    def ack(self, channel: str) -> str:
        """Where a connector acknowledges the channel's quantities."""
        return f"{self.prefix}.ack.{channel}"


# Where answers may go: client inboxes, and the server's mapped replies of
# requests imported from another account. The service may publish on the log
# and the feeds; a request's reply subject must not make it do so.
REPLY_PREFIXES = ("_INBOX.", "_R_.")


def reply_inbox(reply: str | None) -> str | None:
    """`reply` when it is an inbox the service may answer, else None."""
    return reply if reply and reply.startswith(REPLY_PREFIXES) else None


# Header on log entries that are answered after they are applied (reservations,
# policy reloads): the requester's reply inbox.
REPLY_HEADER = "Invsync-Reply-To"
# Header on a logged policy: who asked for it, as NATS identified them (admin.py).
REQUESTED_BY_HEADER = "Invsync-Requested-By"
# The answer to a request or ack on a channel the policy does not know.
UNKNOWN_CHANNEL_ERROR = "unknown channel"
CONTENT_TYPE_HEADER = "Content-Type"
MSGPACK = "application/msgpack"
