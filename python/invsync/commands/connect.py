"""`invsync connect`: the channel gateway (CONTRACT 10)."""

from __future__ import annotations

import argparse
from pathlib import Path

from invsync.commands.credentials import add_credential_arguments, connection_options

HELP = "run the channel gateway: each channel's quantities to its marketplace, acks back"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nats", default="nats://127.0.0.1:4222", help="NATS server URL")
    parser.add_argument(
        "--channels", type=Path, required=True, help="channels TOML file (docs/gateway.md)"
    )
    parser.add_argument(
        "--channel",
        action="append",
        default=[],
        metavar="ID",
        help="run only this channel of the file (repeatable; default: every channel)",
    )
    parser.add_argument(
        "--metrics-port", type=int, default=9465, help="Prometheus /metrics port (0 = off)"
    )
    parser.add_argument(
        "--metrics-addr",
        default="127.0.0.1",
        help="address /metrics listens on (default %(default)s; 0.0.0.0 in a pod)",
    )
    parser.add_argument("--prefix", default="inv", help="subject prefix")
    parser.add_argument(
        "--check",
        action="store_true",
        help="check the channels file, profiles, credentials and listing files, then exit",
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    add_credential_arguments(parser, "connector")


def run(args: argparse.Namespace) -> int:
    import logging

    import anyio

    from invsync.gateway.app import GatewayConfig, GatewaySetupError, prepare, run_gateway

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = GatewayConfig(
        channels_path=args.channels,
        connection=connection_options(args, args.nats, "invsync-connect"),
        prefix=args.prefix,
        channels=tuple(args.channel),
        metrics_port=args.metrics_port or None,
        metrics_addr=args.metrics_addr,
    )
    try:
        if args.check:
            ready = prepare(config)
            print(
                f"{args.channels}: {len(ready)} channel(s) ready: "
                + ", ".join(f"{p.channel.id} ({p.channel.platform})" for p in ready)
            )
            return 0
        anyio.run(lambda: run_gateway(config, handle_signals=True))
    except GatewaySetupError as exc:
        print(f"invsync connect: {exc}")
        return 2
    return 0
