"""What a running service is told: where NATS is, which policy, where state goes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from invsync.errors import InvsyncError


@dataclass(frozen=True)
class ConnectionOptions:
    """NATS connection settings passed through to nats-py."""

    url: str = "nats://127.0.0.1:4222"
    name: str = "invsync"
    creds: Path | None = None
    nkeys_seed: Path | None = None
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Where this client's replies arrive; with the shipped permissions a client
    # may only subscribe under its role's prefix (invsync.security.roles).
    inbox_prefix: str = "_INBOX"
    reconnect_wait_s: float = 0.5
    # The service retries forever; a one-shot command gives up and says so.
    reconnect_attempts: int = -1


@dataclass(frozen=True)
class ServiceConfig:
    """One service instance; defaults are the documented CLI defaults."""

    policy_path: Path
    connection: ConnectionOptions = field(default_factory=ConnectionOptions)
    prefix: str = "inv"
    stream: str = "INVSYNC"
    duplicate_window_s: float = 120.0
    state_dir: Path | None = None
    metrics_port: int | None = 9464
    metrics_addr: str = "127.0.0.1"
    flush_ms: float = 5.0
    # Bigger fetches read faster, but what is requested and not yet read piles up
    # in the server; past its max_pending (64 MB) it drops us as a slow consumer.
    fetch_batch: int = 10_000
    snapshot_every_events: int = 200_000
    snapshot_every_s: float = 60.0
    snapshots_kept: int = 3
    tick_s: float = 1.0
    publish_audit: bool = True
    # This instance applies partition `partition` of `partitions` (SKU families by
    # `partition_of`); 0 of 1 is every SKU, as before partitions existed.
    partition: int = 0
    partitions: int = 1
    # Follow the partition's log and take over when its leader's lease lapses,
    # instead of claiming a lease nobody ever held at start.
    standby: bool = False
    lease_s: float = 1.0

    @property
    def sku_share(self) -> tuple[int, int]:
        """(k, n): the partition of the SKUs this instance applies and publishes; (0, 1)
        with one partition, whatever `partition` names (its lease, say)."""
        return (self.partition, self.partitions) if self.partitions > 1 else (0, 1)


_ORDINAL = re.compile(r"-(\d+)$")


def resolve_partition(value: str, partitions: int, hostname: str) -> int:
    """The partition `--partition` names: a number, or `auto` for the StatefulSet pod
    ordinal at the end of `hostname` (`name-<ordinal>`). Refuses what does not exist."""
    if partitions < 1:
        raise InvsyncError(f"--partitions {partitions}: there must be at least 1")
    if value == "auto":
        found = _ORDINAL.search(hostname)
        if found is None:
            raise InvsyncError(
                f"--partition auto: hostname {hostname!r} does not end in a pod ordinal "
                "('name-<ordinal>', as a StatefulSet names its pods); give --partition K"
            )
        partition = int(found.group(1))
    elif value.isdigit():
        partition = int(value)
    else:
        raise InvsyncError(f"--partition {value!r}: expected a number or 'auto'")
    if partition >= partitions:
        raise InvsyncError(
            f"partition {partition} does not exist with --partitions {partitions} "
            f"(0 to {partitions - 1})"
        )
    return partition
