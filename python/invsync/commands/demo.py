"""`invsync demo`: a short flash sale on an embedded NATS server and service, shown as
tables; the channels named after a marketplace (Shopify, Amazon, eBay, Walmart, TikTok
Shop, Shopee, Lazada) sell on the sandbox's marketplaces, which the gateway keeps at
what invsync decides."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = (
    "start nats-server, the service, the sandbox marketplaces and the gateway, run a short "
    "flash sale; show what each channel saw"
)
EXAMPLE_POLICY = Path("examples") / "policy.toml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy",
        type=Path,
        metavar="FILE",
        help=f"policy to run (default: {EXAMPLE_POLICY} of the source tree)",
    )
    parser.add_argument(
        "--duration", type=float, default=8.0, help="seconds of sale (default %(default)s)"
    )
    parser.add_argument(
        "--rate", type=float, default=150.0, help="steps per second (default %(default)s)"
    )
    parser.add_argument(
        "--hot-stock",
        type=int,
        default=200,
        help="opening stock of a hot SKU (default %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="same seed, same sale (default %(default)s)"
    )
    parser.add_argument(
        "--no-marketplaces",
        dest="marketplaces",
        action="store_false",
        help="no sandbox or gateway: marketplace orders go straight to the service",
    )


def example_policy() -> Path | None:
    """examples/policy.toml from the working directory or the source tree, if there is one."""
    source_tree = Path(__file__).resolve().parents[3]
    for base in (Path.cwd(), source_tree):
        if (base / EXAMPLE_POLICY).is_file():
            return base / EXAMPLE_POLICY
    return None


def run(args: argparse.Namespace) -> int:
    import anyio

    from invsync.errors import PolicyError
    from invsync.flashsale import marketplaces
    from invsync.flashsale.report import render, shown_over_time, summarize
    from invsync.flashsale.scenario import ScenarioConfig, generate
    from invsync.flashsale.session import (
        Interrupted,
        PolicyFacts,
        RunError,
        run_embedded_sale,
        until_interrupted,
    )
    from invsync.policy import Policy

    policy_path = args.policy or example_policy()
    if policy_path is None:
        print(f"invsync demo: no {EXAMPLE_POLICY} here; pass --policy FILE")
        return 2
    try:
        policy = Policy.load(policy_path)
        facts = PolicyFacts.of(policy)
    except (PolicyError, ValueError) as exc:
        print(f"invsync demo: {exc}")
        return 2
    # The policy's own plain SKUs are the hot ones, so their rules show in the tables.
    named = tuple(sku.id for sku in policy.document.skus if sku.kind == "standard")
    scenario = generate(
        ScenarioConfig(
            channels=facts.channels,
            location=facts.location,
            rate=args.rate,
            duration_s=args.duration,
            skus=50,
            hot_skus=min(3, len(named)) or 3,
            hot_stock=args.hot_stock,
            seed=args.seed,
            run_id=f"demo{args.seed}",
            sku_names=named[:3],
            spike_channel=facts.channels[-1][0],
        )
    )
    channels = [name for name, _tier in facts.channels]
    print(
        f"invsync demo: {args.duration:.0f} s flash sale at {args.rate:.0f} steps/s on "
        f"{len(channels)} channels ({policy_path}); hot SKUs {', '.join(scenario.hot)}, "
        f"{args.hot_stock} units each, a promotion on {scenario.config.spike_channel}"
    )
    sold_there = marketplaces.marketplace_channels(channels) if args.marketplaces else {}
    if sold_there:
        print(
            f"  {', '.join(sold_there)} sell on the sandbox's marketplaces, kept current by "
            "the gateway, within each platform's documented rate budget and batch limits"
        )
        print(f"  shortened for the rehearsal: {marketplaces.shortened(sold_there.values())}")
    try:
        outcome = anyio.run(
            until_interrupted,
            lambda: run_embedded_sale(
                policy_path, policy, scenario, marketplaces=args.marketplaces
            ),
        )
    except (Interrupted, KeyboardInterrupt):
        print("invsync demo: interrupted; everything it started is stopped")
        return 130
    except RunError as exc:
        print(f"invsync demo: {exc}")
        return 2
    for sku in scenario.hot:
        print()
        print(shown_over_time(outcome.feed, sku, channels, 1.0, outcome.stats.sale_s))
    summary = summarize(
        scenario, outcome.stats, outcome.feed, outcome.reserve, outcome.verdict, outcome.expected
    )
    print()
    print(render(summary))
    if outcome.marketplaces is None:
        return 0 if summary.ok else 1
    print()
    print(marketplaces.render(outcome.marketplaces))
    return 0 if summary.ok and marketplaces.ok(outcome.marketplaces) else 1
