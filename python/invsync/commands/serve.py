"""`invsync serve`: the allocation service on NATS JetStream."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from invsync.commands.credentials import add_credential_arguments, connection_options

HELP = "run the service: events in from JetStream, channel quantities out"


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nats", default="nats://127.0.0.1:4222", help="NATS server URL")
    parser.add_argument("--policy", type=Path, required=True, help="policy TOML file")
    parser.add_argument(
        "--metrics-port", type=int, default=9464, help="Prometheus /metrics port (0 = off)"
    )
    parser.add_argument(
        "--metrics-addr",
        default="127.0.0.1",
        help="address /metrics listens on (default %(default)s: this host only; "
        "0.0.0.0 for every interface, e.g. in a pod)",
    )
    parser.add_argument(
        "--state",
        type=Path,
        default=None,
        help="snapshot directory (default: a JetStream object store bucket)",
    )
    parser.add_argument("--prefix", default="inv", help="subject prefix")
    parser.add_argument("--stream", default="INVSYNC", help="JetStream stream name")
    parser.add_argument(
        "--flush-ms", type=float, default=5.0, help="coalescing interval of channel quantities"
    )
    parser.add_argument(
        "--fetch-batch", type=int, default=10_000, help="most messages taken per fetch"
    )
    parser.add_argument(
        "--snapshot-events", type=int, default=200_000, help="snapshot after this many log messages"
    )
    parser.add_argument(
        "--snapshot-seconds",
        type=float,
        default=60.0,
        help="snapshot at least this often while events arrive",
    )
    parser.add_argument("--no-audit", action="store_true", help="do not publish the audit trail")
    parser.add_argument(
        "--partitions",
        type=int,
        default=1,
        help="how many partitions share the SKUs (default %(default)s: one allocator)",
    )
    parser.add_argument(
        "--partition",
        default="0",
        help="this allocator's partition, 0 to N-1, or 'auto' for the StatefulSet pod "
        "ordinal of HOSTNAME (default %(default)s)",
    )
    parser.add_argument(
        "--standby",
        action="store_true",
        help="hot standby: follow the partition's log and take over when the leader's "
        "lease lapses (without it, a lease nobody holds yet is claimed at start)",
    )
    parser.add_argument(
        "--lease-s",
        type=positive_seconds,
        default=1.0,
        help="leader lease in seconds: a standby takes over this long after the leader "
        "stops renewing it (default %(default)s)",
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    add_credential_arguments(parser, "service")


def run(args: argparse.Namespace) -> int:
    import logging
    import os
    import socket

    import anyio

    from invsync.errors import InvsyncError, PolicyError
    from invsync.service.app import run_service
    from invsync.service.config import ServiceConfig, resolve_partition
    from invsync.service.partition_count import PartitionCountError

    hostname = os.environ.get("HOSTNAME") or socket.gethostname()
    try:
        partition = resolve_partition(args.partition, args.partitions, hostname)
    except InvsyncError as exc:
        print(f"invsync serve: {exc}", file=sys.stderr)
        return 2

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = ServiceConfig(
        policy_path=args.policy,
        connection=connection_options(args, args.nats, "invsync"),
        prefix=args.prefix,
        stream=args.stream,
        state_dir=args.state,
        metrics_port=args.metrics_port or None,
        metrics_addr=args.metrics_addr,
        flush_ms=args.flush_ms,
        fetch_batch=args.fetch_batch,
        snapshot_every_events=args.snapshot_events,
        snapshot_every_s=args.snapshot_seconds,
        publish_audit=not args.no_audit,
        partition=partition,
        partitions=args.partitions,
        standby=args.standby,
        lease_s=args.lease_s,
    )
    refused = False
    try:
        anyio.run(lambda: run_service(config, handle_signals=True))
    except* (PolicyError, PartitionCountError) as group:  # raised inside the task groups
        for refusal in group.exceptions:
            print(f"invsync serve: {refusal}", file=sys.stderr)
        refused = True
    return 2 if refused else 0
