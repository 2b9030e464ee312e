"""`invsync sandbox`: the marketplaces of a channels file on loopback, strict as the
platforms are, selling into the OMS's order subjects when given NATS."""

from __future__ import annotations

import argparse
from pathlib import Path

from invsync.commands.credentials import add_credential_arguments, connection_options

HELP = "run local marketplaces that behave like the channels' platforms (tests, demos, rehearsals)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--channels", type=Path, required=True, help="channels TOML file (as for invsync connect)"
    )
    parser.add_argument("--port", type=int, default=8790, help="HTTP port (0: any free port)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default %(default)s)"
    )
    parser.add_argument(
        "--nats",
        default=None,
        help="NATS server URL; sales then reach the service as order.placed (default: none)",
    )
    parser.add_argument("--prefix", default="inv", help="subject prefix of the service")
    parser.add_argument(
        "--state",
        type=Path,
        default=None,
        help="JSON file that keeps what the marketplaces show across restarts",
    )
    parser.add_argument(
        "--token-ttl",
        type=float,
        default=3600.0,
        help="lifetime in seconds of the access tokens handed out (short to exercise refresh)",
    )
    parser.add_argument(
        "--order-delay",
        type=float,
        default=None,
        help="seconds from a sale to its order.placed (default: each platform's own)",
    )
    parser.add_argument(
        "--job-delay",
        type=float,
        default=None,
        help="seconds an asynchronous feed takes to process (default: each platform's own)",
    )
    parser.add_argument(
        "--review-delay",
        type=float,
        default=None,
        help="seconds a listing a price change sent back to review (Lazada's QC) stays off "
        "sale (default: a day)",
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    add_credential_arguments(parser, "producer")


def run(args: argparse.Namespace) -> int:
    import logging
    import sys

    import anyio
    from nats.errors import Error as NatsError

    from invsync.errors import ConfigError
    from invsync.gateway.secrets import CredentialError
    from invsync.sandbox.state import StateFileError

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for name in ("token_ttl", "order_delay", "job_delay", "review_delay"):
        value = getattr(args, name)
        if value is not None and value < 0:
            print(f"invsync sandbox: --{name.replace('_', '-')} must be >= 0", file=sys.stderr)
            return 2
    try:
        anyio.run(_serve, args)
    except (
        ConfigError,
        CredentialError,
        StateFileError,
        LookupError,
        ValueError,
        OSError,
        NatsError,
    ) as exc:
        print(f"invsync sandbox: {exc}", file=sys.stderr)
        return 2
    return 0


async def _serve(args: argparse.Namespace) -> None:
    import logging
    import signal

    import anyio

    from invsync.gateway.config import load_channels
    from invsync.gateway.secrets import RedactSecrets
    from invsync.sandbox.app import Sandbox, serving
    from invsync.sandbox.channels import storefronts
    from invsync.sandbox.orders import OrderBook, jetstream_sink
    from invsync.sandbox.platforms.base import SandboxSettings
    from invsync.service.connection import connect
    from invsync.service.subjects import Subjects

    settings = SandboxSettings(
        token_ttl_s=args.token_ttl,
        order_delay_s=args.order_delay,
        job_delay_s=args.job_delay,
        review_delay_s=args.review_delay,
    )
    channels = load_channels(args.channels)
    fronts = storefronts(channels, settings)
    # Every handler of the process: a credential in a request line (TikTok's token
    # refresh takes them in its query) is logged redacted.
    redaction = RedactSecrets(
        secret
        for channel in channels.channels
        for secret in channel.secrets(channels.base).values()
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(redaction)
    nc = None
    if args.nats is not None:
        nc = await connect(connection_options(args, args.nats, "invsync-sandbox"))
    try:
        sink = jetstream_sink(nc.jetstream(), Subjects(args.prefix)) if nc is not None else None
        sandbox = Sandbox(fronts, OrderBook(sink))
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with serving(sandbox, args.host, args.port, args.state) as port:
                for front in fronts:
                    market = front.emulation.market
                    print(
                        f"{market.platform:<8} channel {market.channel:<12} "
                        f"{len(market.listings):>6} listings",
                        flush=True,
                    )
                print(f"sandbox listening on http://{args.host}:{port}", flush=True)
                async for _ in signals:
                    break
            pending = sandbox.orders.waiting
            if pending and args.state is None:
                print(f"stopped with {pending} orders not yet delivered", flush=True)
    finally:
        if nc is not None:
            await nc.drain()
