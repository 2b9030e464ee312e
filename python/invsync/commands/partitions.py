"""`invsync partitions resize`: change how many partitions share the SKUs, offline."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from invsync.commands.credentials import add_credential_arguments, connection_options
from invsync.commands.serve import positive_seconds

HELP = "change the number of partitions of a stopped service (offline)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    resize = sub.add_parser(
        "resize",
        help="move the old partitions' state into a new partition count",
        description="With every allocator of the stream stopped: bring each old "
        "partition's state to the end of the log (its snapshot plus the log after it), "
        "split it by SKU family into the new partitions' snapshots at that position, "
        "record the new count (`invsync serve` refuses any other) and retire the old "
        "snapshots. Refused while a reservation spanning partitions waits for votes.",
    )
    resize.add_argument("--nats", default="nats://127.0.0.1:4222", help="NATS server URL")
    resize.add_argument(
        "--policy",
        type=Path,
        required=True,
        help="the policy TOML file the allocators run (its SKU families place SKUs; "
        "the log's own policy is used where it has one)",
    )
    resize.add_argument("--from", dest="from_partitions", type=int, required=True, metavar="N")
    resize.add_argument("--to", dest="to_partitions", type=int, required=True, metavar="M")
    resize.add_argument("--stream", default="INVSYNC", help="JetStream stream name")
    resize.add_argument("--prefix", default="inv", help="subject prefix")
    resize.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="the snapshot directory the allocators were given with --state "
        "(default: the stream's JetStream object store bucket)",
    )
    resize.add_argument(
        "--watch-s",
        type=positive_seconds,
        default=3.0,
        help="how long to watch the leases for a running allocator; longer than "
        "--lease-s (default %(default)s)",
    )
    add_credential_arguments(resize, "service")


def run(args: argparse.Namespace) -> int:
    import anyio

    from invsync.errors import PolicyError
    from invsync.policy import Policy
    from invsync.service.connection import connect
    from invsync.service.resize import Resized, ResizeRefused, resize

    async def main() -> Resized:
        # A one-shot command: a connection that drops fails it, it is not retried.
        options = replace(
            connection_options(args, args.nats, "invsync-resize"), reconnect_attempts=0
        )
        policy = Policy.load(args.policy)
        nc = await connect(options)
        try:
            return await resize(
                nc,
                args.stream,
                args.prefix,
                policy,
                args.from_partitions,
                args.to_partitions,
                args.state_dir,
                args.watch_s,
            )
        finally:
            await nc.drain()

    try:
        done = anyio.run(main)
    except ResizeRefused as exc:
        print(f"invsync partitions resize: refused: {exc}")
        return 2
    except PolicyError as exc:
        print(f"invsync partitions resize: {exc}")
        return 2
    print(
        f"stream {done.stream}: {done.from_partitions} -> {done.to_partitions} partitions "
        f"recorded at stream sequence {done.at_sequence}; `invsync serve` now refuses any "
        "other --partitions"
    )
    print(f"wrote {len(done.written)} snapshot(s) of the new partitions")
    for name in done.written:
        print(f"  {name}")
    print(f"retired {len(done.retired)} snapshot(s) of the old partitions")
    for name in done.retired:
        print(f"  {name}")
    print(
        f"next: start --partitions {done.to_partitions} --partition K for K = 0 to "
        f"{done.to_partitions - 1}, with the same snapshot store; each starts from its "
        f"snapshot at {done.at_sequence}"
    )
    return 0
