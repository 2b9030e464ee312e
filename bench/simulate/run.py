"""The goals of automatic buffers, measured by `invsync simulate` over many seeds.

    python bench/simulate/run.py scenario examples/scenarios/tiktok-flash.toml --out DIR
    python bench/simulate/run.py day bench/simulate/day-1m.toml
    python bench/simulate/run.py render DIR

`scenario` runs static buffers (the policy's and a search of others), automatic buffers
at risk 1.0-2.0 and the oracle on every seed, and the automatic buffers again with every
drawn lag cut at its p99; it writes DIR/<name>.json and the frontier plot (revenue
against oversold units) DIR/frontier-<name>.png. `day` times a simulated day of about a million orders,
strategy by strategy. `render` prints the table of every scenario in DIR as Markdown,
for bench/RESULTS.md. Each scenario's runs are bounded: seeds x (search + 7) runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from invsync.policy import Policy
from invsync.simulate import strategies
from invsync.simulate.compare import compare, dominates, draw_all, search
from invsync.simulate.demand import draw
from invsync.simulate.report import draw_frontier, sell_through, to_json
from invsync.simulate.run import simulate
from invsync.simulate.scenario import Scenario

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "examples" / "scenarios" / "policy.toml"


def run_scenario(path: Path, policy_path: Path, seeds: int, limit: int, out: Path) -> None:
    policy = Policy.load(policy_path)
    scenario = Scenario.load(path, policy)
    seed_list = list(range(1, seeds + 1))
    started = time.perf_counter()
    buyers = draw_all(scenario, seed_list)
    autos = [strategies.auto(policy, scenario, risk) for risk in strategies.RISKS]
    lineup = [strategies.static(policy), *autos, strategies.oracle(policy)]
    summaries = compare(scenario, lineup, buyers)
    within = scenario.within_p99()
    capped = compare(within, autos, draw_all(within, seed_list))
    searched = search(scenario, policy, buyers, limit)
    oracle = summaries[-1]
    auto = summaries[1 : 1 + len(autos)]
    document = to_json(str(path.relative_to(ROOT)), seed_list, summaries, oracle, searched)
    document["within_p99"] = to_json("", seed_list, capped, oracle)["strategies"]
    document["name"] = scenario.head.name
    document["buyers_per_run"] = sum(b.in_run for b in buyers.values()) / len(seed_list)
    document["seconds"] = time.perf_counter() - started
    document["goals"] = {
        summary.strategy: {
            "static_sets_dominating": [
                buffers for buffers, static in searched if dominates(static, summary)
            ]
            + (["policy"] if dominates(summaries[0], summary) else []),
            "sell_through": sell_through(summary, oracle),
            "oversold_within_p99": cut.oversold,
            "runs_with_oversells_within_p99": cut.runs_with_oversells,
        }
        for summary, cut in zip(auto, capped, strict=True)
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{path.stem}.json").write_text(json.dumps(document, indent=1) + "\n")
    draw_frontier(
        out / f"frontier-{path.stem}.png",
        f"{scenario.head.name} ({seeds} seeds)",
        [s for _, s in searched] + [summaries[0]],
        list(zip(strategies.RISKS, auto, strict=True)),
        oracle,
    )
    print(f"{path.stem}: {document['seconds']:.0f} s, {len(seed_list)} seeds, {limit} static sets")


def run_day(path: Path, policy_path: Path) -> None:
    """Times each strategy over the same buyers: wall seconds, and the CPU seconds this
    process got (the machine is shared; CPU time is what the simulation costs)."""
    policy = Policy.load(policy_path)
    scenario = Scenario.load(path, policy)
    wall, cpu = time.perf_counter(), time.process_time()
    buyers = draw(scenario, scenario.head.seed)
    total_wall, total_cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"draw: {total_wall:.1f} s ({total_cpu:.1f} s CPU), {len(buyers.time):,} buyers")
    lineup = (
        strategies.static(policy),
        strategies.auto(policy, scenario),
        strategies.oracle(policy),
    )
    for strategy in lineup:
        wall, cpu = time.perf_counter(), time.process_time()
        outcome = simulate(scenario, strategy, buyers, scenario.head.seed)
        spent_wall, spent_cpu = time.perf_counter() - wall, time.process_time() - cpu
        total_wall += spent_wall
        total_cpu += spent_cpu
        orders = outcome.sold + outcome.oversold
        print(
            f"{strategy.name}: {spent_wall:.1f} s ({spent_cpu:.1f} s CPU) for {orders:,} "
            f"orders, {outcome.oversold} oversold"
        )
    load = os.getloadavg()[0]
    print(
        f"all three: {total_wall:.1f} s ({total_cpu:.1f} s CPU); "
        f"load average {load:.1f} on {os.cpu_count()} cores"
    )


def _per_run(strategy: dict[str, Any], key: str, seeds: int) -> str:
    value = strategy[key] / seeds
    return f"{value:,.0f}" if value >= 100 or value == int(value) else f"{value:,.1f}"


def _within_p99(goal: dict[str, Any] | None, seeds: int) -> str:
    if goal is None:
        return ""
    per_run = _per_run(goal, "oversold_within_p99", seeds)
    return f"{per_run} ({goal['runs_with_oversells_within_p99']}/{seeds})"


def render(directory: Path) -> None:
    for path in sorted(directory.glob("*.json")):
        doc = json.loads(path.read_text())
        seeds = len(doc["seeds"])
        print(f"### {doc['name']} (`{doc['scenario']}`)\n")
        print(
            f"{seeds} seeds, {doc['buyers_per_run']:,.0f} buyers per run, "
            f"{len(doc['search'])} static buffer sets searched, {doc['seconds']:.0f} s. "
            "Per run (mean over the seeds):\n"
        )
        print(
            "| strategy | revenue | sold | oversold | runs with oversells | oversold, lags within p99 (runs) | sell-through | unsold | hot SKU sold out | static sets that beat it |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for s in doc["strategies"]:
            goal = doc["goals"].get(s["strategy"])
            beaten = "" if goal is None else str(len(goal["static_sets_dominating"]))
            share = s["sell_through"]
            sellout = s["hot_sku_sellout_s"]
            print(
                f"| {s['strategy']} | {_per_run(s, 'revenue', seeds)} | "
                f"{_per_run(s, 'sold', seeds)} | "
                f"{_per_run(s, 'oversold', seeds)} | {s['runs_with_oversells']}/{seeds} | "
                f"{_within_p99(goal, seeds)} | "
                f"{'—' if share is None else f'{share:.1%}'} | {_per_run(s, 'unsold', seeds)} | "
                f"{'never' if sellout is None else f'{sellout / 60:,.0f} min'} | {beaten} |"
            )
        default = next(s for s in doc["strategies"] if s["strategy"] == "auto risk 1.5")
        safe = [s for s in doc["search"] if s["oversold"] <= default["oversold"]]
        best = max(safe or doc["search"], key=lambda s: (s["revenue"], -s["oversold"]))
        among = (
            "of those oversold no more than auto risk 1.5, the best earner"
            if safe
            else "none oversold as little as auto risk 1.5; the best earner"
        )
        print(
            f"\nSearched static sets: {among} is {best['buffers']}: "
            f"{best['revenue'] / seeds:,.0f} revenue, {best['sold'] / seeds:,.1f} sold, "
            f"{best['oversold'] / seeds:,.1f} oversold per run. "
            f"Frontier: ![frontier]({os.path.relpath(path.parent, ROOT / 'bench')}/frontier-{path.stem}.png)\n"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    one = sub.add_parser("scenario")
    one.add_argument("scenario", type=Path)
    one.add_argument("--policy", type=Path, default=POLICY)
    one.add_argument("--seeds", type=int, default=20)
    one.add_argument("--search", type=int, default=24)
    one.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    day = sub.add_parser("day")
    day.add_argument("scenario", type=Path)
    day.add_argument("--policy", type=Path, default=POLICY)
    show = sub.add_parser("render")
    show.add_argument("directory", type=Path)
    args = parser.parse_args()
    if args.mode == "scenario":
        run_scenario(args.scenario.resolve(), args.policy, args.seeds, args.search, args.out)
    elif args.mode == "day":
        run_day(args.scenario, args.policy)
    else:
        render(args.directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
