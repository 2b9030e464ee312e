"""The five roles of an invsync deployment and the NATS subjects each may use.

This table is the one source of the permissions: the embedded server's config,
`invsync auth`, docs/security.md and the Kubernetes NATS values are all made
from it or checked against it. Every list is an allow list; a user holding
several roles gets the union. Nothing is denied explicitly, so what a role does
not list it may not do: only `service` publishes under `<prefix>.log.>`, only
`admin` reloads the policy or purges or deletes the stream.

`admin` users live in an account of their own, ADMIN_ACCOUNT, which imports
exactly the admin subjects from the data account as services. A request that
crosses accounts carries the requester's identity in a `Nats-Request-Info`
header set by the server, so the service can record who reloaded the policy;
within one account NATS says nothing about the publisher.

Replies travel on inboxes: each role subscribes only under its own
`_INBOX.<role>.>`, so no client reads another role's replies. The service
publishes to `_INBOX.>` (and `_R_.>`, where the server maps replies to imported
requests) because it answers reservations and reloads after they are in the
log, possibly after a restart, when NATS's per-connection `allow_responses`
bookkeeping no longer knows the requester.
"""

from __future__ import annotations

from dataclasses import dataclass

ROLE_NAMES = ("producer", "connector", "service", "admin", "observer")
DATA_ACCOUNT = "INVSYNC"
ADMIN_ACCOUNT = "INVSYNC_ADMIN"
JS_API = "$JS.API"


@dataclass(frozen=True)
class Role:
    """One role: who holds it, the subjects it may publish to and subscribe to,
    and the NATS account its users are in."""

    name: str
    holder: str
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    account: str = DATA_ACCOUNT


def inbox_prefix(role: str) -> str:
    """The inbox prefix a client of `role` must connect with (nats-py `inbox_prefix`)."""
    return f"_INBOX.{role}"


def snapshot_bucket(stream: str) -> str:
    """The object store bucket the service keeps snapshots in without --state."""
    return f"{stream}_SNAPSHOTS"


def leases_bucket(stream: str) -> str:
    """The JetStream KV bucket of the partitions' leader leases."""
    return f"{stream}_leaders"


def _stream_reads(stream: str) -> tuple[str, ...]:
    return (f"{JS_API}.INFO", f"{JS_API}.STREAM.INFO.{stream}")


def _own_stream(stream: str) -> tuple[str, ...]:
    """What the service needs of its log: create or widen it, and read it with its
    own ephemeral push consumers (flow control answered)."""
    return (
        f"{JS_API}.STREAM.CREATE.{stream}",
        f"{JS_API}.STREAM.UPDATE.{stream}",
        f"{JS_API}.STREAM.MSG.GET.{stream}",  # the newest epoch entry (leadership.py)
        f"{JS_API}.CONSUMER.CREATE.{stream}",
        f"{JS_API}.CONSUMER.CREATE.{stream}.>",
        f"{JS_API}.CONSUMER.INFO.{stream}.*",
        f"{JS_API}.CONSUMER.DELETE.{stream}.*",
        f"$JS.FC.{stream}.>",
    )


def _stream_api(stream: str) -> tuple[str, ...]:
    """Every JetStream API request on one stream and its consumers, purge and delete included."""
    return (
        f"{JS_API}.STREAM.*.{stream}",
        f"{JS_API}.STREAM.MSG.*.{stream}",
        f"{JS_API}.CONSUMER.*.{stream}",
        f"{JS_API}.CONSUMER.*.{stream}.>",
        f"{JS_API}.DIRECT.GET.{stream}",
        f"{JS_API}.DIRECT.GET.{stream}.>",
    )


def _kv_reads(bucket: str) -> tuple[str, ...]:
    """Watching a KV bucket: find its stream, run an ordered consumer on it (created,
    re-created after a gap, looked at, removed) and answer its flow control."""
    stream = f"KV_{bucket}"
    return (
        f"{JS_API}.STREAM.INFO.{stream}",
        f"{JS_API}.CONSUMER.CREATE.{stream}",
        f"{JS_API}.CONSUMER.CREATE.{stream}.>",
        f"{JS_API}.CONSUMER.INFO.{stream}.*",
        f"{JS_API}.CONSUMER.DELETE.{stream}.*",
        f"$JS.FC.{stream}.>",
    )


def _kv_writes(bucket: str) -> tuple[str, ...]:
    """Maintaining a KV bucket: create it, look it up, put and delete keys."""
    stream = f"KV_{bucket}"
    return (f"{JS_API}.STREAM.CREATE.{stream}", f"{JS_API}.STREAM.INFO.{stream}", f"$KV.{bucket}.>")


def listings_bucket(prefix: str) -> str:
    """The JetStream KV bucket of listing maps that connectors may read
    (`listings = "kv:<bucket>"` in the channels file)."""
    return f"{prefix}_listings"


def _object_store(bucket: str) -> tuple[str, ...]:
    """An object store bucket, wholly: its stream's API, reading it through consumers,
    chunks and metadata (listing it looks its stream up by subject, hence STREAM.NAMES)."""
    stream = f"OBJ_{bucket}"
    return (
        *_stream_api(stream),
        f"$JS.FC.{stream}.>",
        f"$JS.ACK.{stream}.>",
        f"{JS_API}.STREAM.NAMES",
        f"$O.{bucket}.>",
    )


def roles(prefix: str = "inv", stream: str = "INVSYNC") -> dict[str, Role]:
    """The role table for one deployment's subject prefix and stream name."""
    p = prefix
    feeds = (
        f"{p}.qty.>",
        f"{p}.price.>",
        f"{p}.route.>",
        f"{p}.alert.>",
        f"{p}.audit",
        f"{p}.dlq",
    )
    table = (
        Role(
            "producer",
            "OMS, WMS, POS, catalog: stock, order and catalog events, reservations, "
            "queries and the channels' listing map",
            # Stream reads let `invsync publish` find the stream and its message limit.
            publish=(
                f"{p}.stock.>",
                f"{p}.order.>",
                f"{p}.catalog.>",
                f"{p}.reserve.*",
                f"{p}.query.sku",
                *_stream_reads(stream),
                f"{JS_API}.STREAM.NAMES",
                *_kv_writes(listings_bucket(p)),
            ),
            subscribe=(f"{inbox_prefix('producer')}.>",),
        ),
        Role(
            "connector",
            "a sales channel's connector (`invsync connect`): reads its quantities, prices "
            "and listing map, acknowledges quantities, raises channel alerts, queries",
            publish=(
                f"{p}.ack.*",
                f"{p}.alert.channel_error",
                f"{p}.alert.mapping_missing",
                f"{p}.alert.platform_hold",
                f"{p}.query.sku",
                f"{p}.query.channel",
                *_kv_reads(listings_bucket(p)),
            ),
            subscribe=(f"{p}.qty.>", f"{p}.price.>", f"{inbox_prefix('connector')}.>"),
        ),
        Role(
            "service",
            "the allocator (`invsync serve`): its log, outputs, replies, stream and snapshots",
            publish=(
                f"{p}.log.>",
                f"{p}.part.*.leader",
                *feeds,
                "_INBOX.>",
                "_R_.>",  # replies to requests imported from the admin account
                *_stream_reads(stream),
                *_own_stream(stream),
                *_object_store(snapshot_bucket(stream)),
                # Leases: read keys directly, compare-and-set them, watch the candidates.
                *_kv_reads(leases_bucket(stream)),
                f"{JS_API}.STREAM.CREATE.KV_{leases_bucket(stream)}",
                f"{JS_API}.STREAM.MSG.GET.KV_{leases_bucket(stream)}",
                f"$KV.{leases_bucket(stream)}.>",
            ),
            subscribe=(
                f"{p}.part.*.leader",
                f"{p}.reserve.*",
                f"{p}.query.sku",
                f"{p}.query.channel",
                f"{p}.admin.policy",
                f"{p}.ack.*",
                f"{inbox_prefix('service')}.>",
            ),
        ),
        Role(
            "admin",
            "an operator: policy reloads, and managing the stream and the snapshot bucket "
            f"(from the {ADMIN_ACCOUNT} account)",
            publish=(
                f"{p}.admin.policy",
                f"{JS_API}.INFO",
                *_stream_api(stream),
                *_stream_api(f"OBJ_{snapshot_bucket(stream)}"),
            ),
            subscribe=(f"{inbox_prefix('admin')}.>",),
            account=ADMIN_ACCOUNT,
        ),
        Role(
            "observer",
            "dashboards and reports: reads every output and the stream's state, writes nothing",
            publish=(f"{p}.query.sku", f"{p}.query.channel", *_stream_reads(stream)),
            subscribe=(*feeds, f"{inbox_prefix('observer')}.>"),
        ),
    )
    return {role.name: role for role in table}


def permissions(held: tuple[Role, ...]) -> dict[str, dict[str, list[str]]]:
    """A NATS user's `permissions` block for the union of `held` roles."""
    publish: list[str] = []
    subscribe: list[str] = []
    for role in held:
        publish += [s for s in role.publish if s not in publish]
        subscribe += [s for s in role.subscribe if s not in subscribe]
    return {"publish": {"allow": publish}, "subscribe": {"allow": subscribe}}
