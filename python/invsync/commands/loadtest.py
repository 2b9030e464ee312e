"""`invsync loadtest`: a seeded flash sale against a service, judged by an independent checker."""

from __future__ import annotations

import argparse
from pathlib import Path

from invsync.commands.credentials import add_credential_arguments, connection_options

HELP = "flash-sale load test: throughput, sync latency, reservations, oversells, checked"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--nats", metavar="URL", help="drive the service behind this NATS server")
    target.add_argument(
        "--embedded", action="store_true", help="start nats-server and the service here"
    )
    parser.add_argument(
        "--policy",
        type=Path,
        metavar="FILE",
        help="the service's policy (required with --nats; --embedded has a built-in one)",
    )
    parser.add_argument("--prefix", default="inv", help="subject prefix of the --nats service")
    parser.add_argument(
        "--rate", type=float, default=500.0, help="steps offered per second (default %(default)s)"
    )
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds of sale (default %(default)s)"
    )
    parser.add_argument(
        "--skus", type=int, default=200, help="SKUs in the sale (default %(default)s)"
    )
    parser.add_argument(
        "--hot-skus",
        type=int,
        default=3,
        help="most popular SKUs, little stock (default %(default)s)",
    )
    parser.add_argument(
        "--hot-stock", type=int, default=40, help="opening stock of a hot SKU (default %(default)s)"
    )
    parser.add_argument(
        "--channels", type=int, default=None, help="use the policy's first N channels (all)"
    )
    parser.add_argument(
        "--mix",
        default="reserve=60,order=35,receive=5",
        help="weights of checkout holds, post-sale orders and stock receipts (%(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="same seed, same workload (default %(default)s)"
    )
    parser.add_argument(
        "--marketplaces",
        action="store_true",
        help="with --embedded: the channels named after a marketplace (shopify, amazon, "
        "ebay, walmart, tiktok, shopee, lazada) sell on the sandbox, kept current by the "
        "gateway, so push lag and order lag are real",
    )
    parser.add_argument(
        "--report", type=Path, metavar="DIR", help="write summary.json and a PNG here"
    )
    # With --nats, the user needs the producer and observer roles (docs/security.md).
    add_credential_arguments(parser, "producer")


def run(args: argparse.Namespace) -> int:
    import tempfile

    from invsync.flashsale.session import LOADTEST_POLICY

    if args.nats and args.policy is None:
        print("invsync loadtest: --nats needs --policy (the policy the service runs)")
        return 2
    if args.marketplaces and not args.embedded:
        print("invsync loadtest: --marketplaces needs --embedded (it starts the sandbox here)")
        return 2
    with tempfile.TemporaryDirectory(prefix="invsync-loadtest-") as workdir:
        policy_path = args.policy or Path(workdir) / "loadtest-policy.toml"
        if args.policy is None:
            policy_path.write_text(LOADTEST_POLICY)
        return _run(args, policy_path)


def _run(args: argparse.Namespace, policy_path: Path) -> int:
    import sys
    import time

    import anyio

    from invsync.errors import PolicyError
    from invsync.flashsale import marketplaces
    from invsync.flashsale.progress import ProgressLine, render_sale
    from invsync.flashsale.report import render, summarize, write_report
    from invsync.flashsale.scenario import Mix, ScenarioConfig, generate
    from invsync.flashsale.session import (
        Interrupted,
        PolicyFacts,
        RunError,
        run_embedded_sale,
        run_sale,
        until_interrupted,
    )
    from invsync.policy import Policy

    try:
        policy = Policy.load(policy_path)
        facts = PolicyFacts.of(policy)
        if args.channels is not None and args.channels < 1:
            raise ValueError("--channels must be at least 1")
        channels = facts.channels[: args.channels]
        # Against a shared service every run needs fresh ids and SKUs; an embedded
        # service starts empty, so the same seed reproduces the same names too.
        run_id = f"s{args.seed}" if args.embedded else f"s{args.seed}-{int(time.time()):x}"
        scenario = generate(
            ScenarioConfig(
                channels=channels,
                location=facts.location,
                rate=args.rate,
                duration_s=args.duration,
                skus=args.skus,
                hot_skus=args.hot_skus,
                hot_stock=args.hot_stock,
                mix=Mix.parse(args.mix),
                seed=args.seed,
                run_id=run_id,
                spike_channel=channels[-1][0],
            )
        )
    except (PolicyError, ValueError) as exc:
        print(f"invsync loadtest: {exc}")
        return 2

    line = ProgressLine(sys.stderr)

    def progress(elapsed_s: float, sent: int, rate: float, p99_ms: float | None) -> None:
        line.show(render_sale(elapsed_s, args.duration, sent, rate, p99_ms))

    try:
        if args.embedded:
            outcome = anyio.run(
                until_interrupted,
                lambda: run_embedded_sale(
                    policy_path,
                    policy,
                    scenario,
                    progress=progress,
                    marketplaces=args.marketplaces,
                ),
            )
        else:
            outcome = anyio.run(
                until_interrupted,
                lambda: run_sale(
                    connection_options(args, args.nats, "invsync-loadtest"),
                    policy,
                    scenario,
                    prefix=args.prefix,
                    progress=progress,
                ),
            )
    except (Interrupted, KeyboardInterrupt):
        print("invsync loadtest: interrupted")
        return 130
    except RunError as exc:
        print(f"invsync loadtest: {exc}")
        return 2
    finally:
        line.close()
    summary = summarize(
        scenario, outcome.stats, outcome.feed, outcome.reserve, outcome.verdict, outcome.expected
    )
    print(render(summary))
    ok = summary.ok
    if outcome.marketplaces is not None:
        print()
        print(marketplaces.render(outcome.marketplaces))
        print()
        print(marketplaces.render_oversells(outcome.verdict.backorders, outcome.marketplaces))
        ok = ok and marketplaces.ok(outcome.marketplaces)
    elif args.marketplaces:
        print(f"invsync loadtest: no channel is named {', '.join(marketplaces.PLATFORMS)}")
    if args.report is not None:
        for path in write_report(args.report, summary, outcome.feed, outcome.reserve):
            print(f"wrote {path}")
    return 0 if ok else 1
