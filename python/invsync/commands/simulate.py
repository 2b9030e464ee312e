"""`invsync simulate`: a scenario in simulated time through the engine, strategy by strategy."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

HELP = "a flash sale in simulated time: static vs automatic buffers vs a no-lag oracle"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", type=Path, required=True, metavar="FILE", help="policy TOML")
    parser.add_argument(
        "--scenario", type=Path, required=True, metavar="FILE", help="scenario TOML"
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="first seed (default: the scenario's)"
    )
    parser.add_argument(
        "--seeds", type=int, default=1, help="runs, one seed after another (default %(default)s)"
    )
    parser.add_argument(
        "--search",
        type=int,
        default=0,
        metavar="N",
        help="also try up to N sets of static buffers and show them (default: none)",
    )
    parser.add_argument(
        "--lags-within-p99",
        action="store_true",
        help="cut every drawn push and order lag at its p99 (stalls stay): the delays "
        "automatic buffers are sized for",
    )
    parser.add_argument(
        "--report", type=Path, metavar="DIR", help="write summary.json and PNG figures here"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")


def run(args: argparse.Namespace) -> int:
    from invsync.errors import ConfigError
    from invsync.policy import Policy
    from invsync.simulate import strategies
    from invsync.simulate.compare import compare, draw_all, search
    from invsync.simulate.demand import TooMuchDemand
    from invsync.simulate.report import (
        FRONTIER_FIGURE,
        HOT_FIGURE,
        draw_frontier,
        draw_hottest,
        search_table,
        table,
        to_json,
    )
    from invsync.simulate.scenario import Scenario

    if args.seeds < 1 or args.search < 0:
        print("invsync simulate: --seeds must be at least 1 and --search not negative")
        return 2
    if args.report is not None and importlib.util.find_spec("matplotlib") is None:
        print("invsync simulate: --report draws with matplotlib: pip install 'invsync[report]'")
        return 2
    try:
        policy = Policy.load(args.policy)
        scenario = Scenario.load(args.scenario, policy)
        if args.lags_within_p99:
            scenario = scenario.within_p99()
        first = scenario.head.seed if args.seed is None else args.seed
        seeds = list(range(first, first + args.seeds))
        buyers = draw_all(scenario, seeds)
    except (ConfigError, TooMuchDemand) as exc:
        print(f"invsync simulate: {exc}", file=sys.stderr)
        return 2
    lineup = [
        strategies.static(policy),
        strategies.auto(policy, scenario),
        strategies.oracle(policy),
    ]
    record = seeds[0] if args.report is not None else None
    summaries = compare(scenario, lineup, buyers, record_seed=record)
    oracle = summaries[-1]
    searched, by_risk = [], []
    if args.search:
        searched = search(scenario, policy, buyers, args.search)
        risks = [strategies.auto(policy, scenario, risk) for risk in strategies.RISKS]
        by_risk = compare(scenario, risks, buyers)
        summaries[-1:-1] = by_risk
    document = to_json(str(args.scenario), seeds, summaries, oracle, searched)
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        runs = f"{len(seeds)} run{'s' if len(seeds) > 1 else ''}"
        buyers_per_run = sum(b.in_run for b in buyers.values()) / len(seeds)
        print(
            f"{scenario.head.name or args.scenario}: {runs} (seeds {seeds[0]}-{seeds[-1]}), "
            f"{scenario.head.horizon_s / 3600:g} h, {buyers_per_run:,.0f} buyers per run; "
            "figures per run"
        )
        print(table(summaries, oracle))
        if searched:
            print()
            print(search_table(searched, summaries[1:-1]))
    if args.report is not None:
        args.report.mkdir(parents=True, exist_ok=True)
        (args.report / "summary.json").write_text(json.dumps(document, indent=2) + "\n")
        draw_hottest(
            args.report / HOT_FIGURE,
            [(s.strategy, run.series) for s in summaries for run in s.runs if run.series],
        )
        if searched:
            draw_frontier(
                args.report / FRONTIER_FIGURE,
                scenario.head.name,
                [s for _, s in searched],
                list(zip(strategies.RISKS, by_risk, strict=True)),
                oracle,
            )
    return 0
