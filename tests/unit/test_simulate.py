"""`invsync simulate`: scenarios are checked like policies, runs are deterministic, the
oracle never oversells, and a small run's numbers are the ones worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from invsync.cli import main
from invsync.errors import ScenarioError
from invsync.policy import Policy
from invsync.simulate import strategies
from invsync.simulate.compare import Summary, compare, dominates, draw_all, search_candidates
from invsync.simulate.demand import Buyers, draw
from invsync.simulate.feeds import Feeds
from invsync.simulate.run import Outcome, simulate
from invsync.simulate.scenario import PLATFORMS, Scenario

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "scenarios"

POLICY = Policy.from_toml(
    """
[[tiers]]
tier = 1
[[locations]]
id = "wh"
kind = "warehouse"
[[channels]]
id = "shopify"
tier = 1
[[channels]]
id = "amazon"
tier = 1
""",
    "policy.toml",
)

SCENARIO = """\
[scenario]
horizon_s = 100

[[skus]]
id = "A"
stock = 5
price = 10.0

[[channels]]
id = "shopify"
push_lag = { dist = "fixed", s = 0 }

[[channels]]
id = "amazon"
push_lag = { dist = "fixed", s = 50 }
order_lag = { dist = "fixed", s = 10 }
"""


def _refusal(text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as caught:
        Scenario.from_toml(text, POLICY, "sale.toml")
    return caught.value


def test_a_scenario_channel_the_policy_lacks_is_refused_at_its_line() -> None:
    refused = _refusal(SCENARIO.replace('id = "amazon"', 'id = "walmart"'))
    assert (refused.source, refused.line, refused.field) == (
        "sale.toml",
        14,
        'channels["walmart"].id',
    )
    assert "walmart" in refused.message and "amazon" in refused.message


def test_a_negative_rate_is_refused_at_its_line() -> None:
    refused = _refusal(SCENARIO.replace('id = "amazon"\n', 'id = "amazon"\nrate = -0.5\n'))
    assert (refused.line, refused.field) == (15, 'channels["amazon"].rate')


def test_a_negative_history_is_refused_at_its_line() -> None:
    refused = _refusal(SCENARIO.replace("horizon_s = 100\n", "horizon_s = 100\nhistory_s = -60\n"))
    assert (refused.line, refused.field) == (3, "scenario.history_s")


@pytest.mark.parametrize(
    ("lag", "field"),
    [
        ('{ dist = "lognormal", p50 = 60, p99 = 10 }', 'channels["amazon"].order_lag'),
        ('{ dist = "gamma", s = 3 }', 'channels["amazon"].order_lag.dist'),
        ("{ s = 3 }", 'channels["amazon"].order_lag.dist'),
        ('{ dist = "uniform", min = 9, max = 3 }', 'channels["amazon"].order_lag'),
        ('{ dist = "fixed", s = -1 }', 'channels["amazon"].order_lag.s'),
    ],
)
def test_a_malformed_distribution_is_refused_at_its_line(lag: str, field: str) -> None:
    refused = _refusal(SCENARIO.replace('{ dist = "fixed", s = 10 }', lag))
    assert (refused.line, refused.field) == (16, field)


def test_a_surge_on_an_unknown_sku_and_stock_on_a_bundle_are_refused() -> None:
    surge = SCENARIO + '\n[[surges]]\nskus = ["A", "B"]\nfactor = 2\n'
    refused = _refusal(surge)
    assert (refused.line, refused.field) == (19, "surges[0].skus[1]")
    bundles = Policy.from_toml(
        POLICY.text
        + '[[skus]]\nid = "A"\n[[skus]]\nid = "KIT"\nkind = "bundle"\n'
        + 'components = [{ sku = "A", qty = 2 }]\n'
    )
    kit = SCENARIO.replace('id = "A"\nstock = 5', 'id = "KIT"\nstock = 5')
    with pytest.raises(ScenarioError) as caught:
        Scenario.from_toml(kit, bundles, "kit.toml")
    assert (caught.value.line, caught.value.field) == (6, 'skus["KIT"].stock')


def test_a_channel_without_a_known_platform_must_give_its_lags() -> None:
    policy = Policy.from_toml(POLICY.text.replace('"amazon"', '"b2b"'))
    text = SCENARIO.replace('"amazon"', '"b2b"')
    with pytest.raises(ScenarioError) as caught:
        Scenario.from_toml(text.replace('order_lag = { dist = "fixed", s = 10 }\n', ""), policy)
    assert (caught.value.line, caught.value.field) == (13, 'channels["b2b"].order_lag')
    assert Scenario.from_toml(text, policy).channels[1].push_lag.p99 == 50


def test_platform_defaults_follow_the_documented_delays() -> None:
    scenario = Scenario.from_toml(
        SCENARIO.replace('push_lag = { dist = "fixed", s = 0 }\n', ""), POLICY
    )
    shopify = scenario.channels[0]
    assert shopify.checkout_reserves and shopify.order_lag.p99 == 0
    assert PLATFORMS["walmart"].push_lag.sample(np.random.default_rng(1), 1000).mean() > 1500
    assert not PLATFORMS["amazon"].checkout_reserves


def _buyers(rows: list[tuple[float, int]]) -> Buyers:
    """Buyers of SKU A by hand: (time, channel 0 = shopify / 1 = amazon)."""
    lags = {0: 0.0, 1: 10.0}
    return Buyers(
        time=[t for t, _ in rows],
        channel=[c for _, c in rows],
        sku=[0] * len(rows),
        order_lag=[lags[c] for _, c in rows],
        expected=np.array([1.0]),
    )


HAND_BUYERS = [
    (0.5, 1),
    (1.5, 1),
    (2.5, 1),
    (5.5, 0),
    (6.5, 0),
    (7.5, 0),
    (20.5, 1),
    (30.5, 1),
    (59.5, 1),
]


def test_a_small_run_gives_the_numbers_worked_out_by_hand() -> None:
    """Five units. Amazon shows 5, sells 3 in the first seconds; their orders arrive
    10 s later. The storefront reserves 3 at checkout meanwhile, so the third amazon
    order (applied at 13 s) is oversold. Amazon still displays 2: what it was shown at
    the start, minus its own sales, until the push of 6 s lands at 56 s. It sells at
    20.5 s and 30.5 s (both oversold), then the stale push sets it back to 4 and 2 at
    56-58 s, and it sells once more at 59.5 s: four oversold in all, five kept."""
    scenario = Scenario.from_toml(SCENARIO, POLICY)
    run = simulate(scenario, strategies.static(POLICY), _buyers(HAND_BUYERS), seed=1)
    assert (run.sold, run.oversold, run.cancellations, run.turned_away) == (5, 4, 4, 0)
    assert run.unsold == 0 and run.sellout_s == 12.0
    assert run.revenue_by_tier == {1: 50.0}


def test_the_oracle_of_the_same_buyers_sells_the_stock_and_turns_the_rest_away() -> None:
    scenario = Scenario.from_toml(SCENARIO, POLICY)
    run = simulate(scenario, strategies.oracle(POLICY), _buyers(HAND_BUYERS), seed=1)
    assert (run.sold, run.oversold, run.turned_away, run.unsold) == (5, 0, 4, 0)


def test_the_oracle_decides_each_buyer_after_the_sales_before_it_in_the_same_step() -> None:
    """One second, one channel: three parts in stock, a kit of two parts. Two parts sell,
    so the kit buyer after them finds it unavailable; a part still sells; the next part
    buyer finds none left, and so does the next kit buyer. Of a SKU in no bundle, one
    unit: its first buyer takes it, the second finds none."""
    policy = Policy.from_toml(
        POLICY.text + '[[skus]]\nid = "PART"\n[[skus]]\nid = "KIT"\nkind = "bundle"\n'
        'components = [{ sku = "PART", qty = 2 }]\n'
    )
    scenario = Scenario.from_toml(
        "[scenario]\nhorizon_s = 2\n"
        '[[skus]]\nid = "PART"\nstock = 3\nprice = 1.0\n'
        '[[skus]]\nid = "KIT"\nprice = 10.0\n'
        '[[skus]]\nid = "SOLO"\nstock = 1\nprice = 5.0\n'
        '[[channels]]\nid = "amazon"\npush_lag = { dist = "fixed", s = 0 }\n'
        'order_lag = { dist = "fixed", s = 0 }\n',
        policy,
    )
    part, kit, solo = 0, 1, 2
    wanted = [part, part, kit, part, part, kit, solo, solo]
    buyers = Buyers(
        time=[0.1 * (n + 1) for n in range(len(wanted))],
        channel=[0] * len(wanted),
        sku=wanted,
        order_lag=[0.0] * len(wanted),
        expected=np.array([4.0, 2.0, 2.0]),
    )
    run = simulate(scenario, strategies.oracle(policy), buyers, seed=1)
    assert (run.sold, run.turned_away, run.oversold) == (4, 4, 0)
    assert run.revenue_by_tier == {1: 8.0}


def _surge_scenario() -> tuple[Policy, Scenario]:
    policy = Policy.load(EXAMPLES / "policy.toml")
    return policy, Scenario.load(EXAMPLES / "tiktok-flash.toml", policy)


def test_the_same_seed_gives_the_same_run_and_another_seed_another() -> None:
    policy, scenario = _surge_scenario()
    static = strategies.static(policy)
    first = simulate(scenario, static, draw(scenario, 3), seed=3)
    again = simulate(scenario, static, draw(scenario, 3), seed=3)
    other = simulate(scenario, static, draw(scenario, 4), seed=4)
    assert first == again
    assert first != other


#: Seed 1 of two example scenarios, each strategy: (buyers, sold, oversold, cancelled,
#: turned away, unsold, hot SKU sold out at), oversold by channel, revenue by tier, and
#: sums over the hot SKU's series (ATS, decided, displayed). Measured once; the
#: simulator's speed-ups must leave every number as it was (the auto runs were measured
#: again when kits' buffers began to count their parts' sales and a fresh engine's slow
#: rates were corrected for how long it had counted; every run when the example sales
#: gained two hours of history, which leaves the oracle's numbers as they were; the
#: auto runs again when rates gained a day-long part).
PINNED = {
    ("tiktok-flash", "static"): (
        (4360, 3365, 93, 93, 902, 585, 7239.0),
        {"amazon": 34, "walmart": 59},
        {1: 19236.0, 2: 48789.0},
        (2257725, 8958833, 10891190),
    ),
    ("tiktok-flash", "auto"): (
        (4360, 3338, 0, 0, 1022, 612, 9778.0),
        {},
        {1: 22599.0, 2: 45021.0},
        (2429714, 6665978, 8132042),
    ),
    ("tiktok-flash", "oracle"): (
        (4360, 3367, 0, 0, 993, 583, 7220.0),
        {},
        {1: 19173.0, 2: 48882.0},
        (2233553, 8934212, 8934212),
    ),
    ("bundles", "static"): (
        (1425, 1104, 23, 23, 298, 8, 7225.0),
        {"amazon": 23},
        {1: 47489.0, 2: 136817.0},
        (1300496, 5151560, 5265688),
    ),
    ("bundles", "auto"): (
        (1425, 1107, 0, 0, 318, 22, 9034.0),
        {},
        {1: 57518.0, 2: 126115.0},
        (1346489, 4362189, 4452555),
    ),
    ("bundles", "oracle"): (
        (1425, 1104, 0, 0, 321, 8, 7194.0),
        {},
        {1: 46761.0, 2: 137545.0},
        (1289819, 5159276, 5159276),
    ),
}


@pytest.mark.parametrize("name", ["tiktok-flash", "bundles"])
def test_a_seeded_run_gives_the_numbers_it_always_gave(name: str) -> None:
    """The same scenario, seed and strategy give the same outcome from one version of
    the simulator to the next, down to the hot SKU's series: a faster loop that moved
    one sale would show here."""
    policy = Policy.load(EXAMPLES / "policy.toml")
    scenario = Scenario.load(EXAMPLES / f"{name}.toml", policy)
    buyers = draw(scenario, 1)
    for strategy in (
        strategies.static(policy),
        strategies.auto(policy, scenario),
        strategies.oracle(policy),
    ):
        run = simulate(scenario, strategy, buyers, seed=1, record=True)
        assert run.series is not None
        series = run.series
        measured = (
            (
                run.buyers,
                run.sold,
                run.oversold,
                run.cancellations,
                run.turned_away,
                run.unsold,
                run.sellout_s,
            ),
            run.oversold_by_channel,
            run.revenue_by_tier,
            (sum(series.ats), sum(map(sum, series.decided)), sum(map(sum, series.displayed))),
        )
        assert measured == PINNED[(name, strategy.name)], strategy.name


def test_the_oracle_never_oversells_where_lagged_strategies_do() -> None:
    policy, scenario = _surge_scenario()
    lineup = [strategies.static_buffers(policy, {"amazon": 0, "walmart": 0, "tiktok": 0})]
    static, oracle = compare(
        scenario, [*lineup, strategies.oracle(policy)], draw_all(scenario, range(1, 4))
    )
    assert static.oversold > 0
    assert oracle.oversold == 0 and oracle.cancellations == 0
    assert all(run.sold > 0 for run in oracle.runs)


def test_the_static_search_keeps_checkout_channels_at_zero() -> None:
    _, scenario = _surge_scenario()
    candidates = search_candidates(scenario, 40)
    assert len(candidates) == 40
    assert all(c["shopify"] == 0 for c in candidates)
    assert {c["walmart"] for c in candidates} > {0, 1, 144}


def test_simulate_prints_json_and_refuses_a_bad_scenario_with_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY.text)
    good = tmp_path / "sale.toml"
    good.write_text(SCENARIO.replace('id = "shopify"\n', 'id = "shopify"\nrate = 0.2\n'))
    assert main(["simulate", "--policy", str(policy), "--scenario", str(good), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [s["strategy"] for s in out["strategies"]] == ["static", "auto", "oracle"]
    assert out["strategies"][2]["oversold"] == 0
    bad = tmp_path / "bad.toml"
    bad.write_text(SCENARIO.replace("horizon_s = 100", "horizon_s = -1"))
    assert main(["simulate", "--policy", str(policy), "--scenario", str(bad)]) == 2
    assert f"{bad}:2: scenario.horizon_s: " in capsys.readouterr().err


def test_a_feed_limit_coalesces_pushes_a_stall_holds_them_and_acks_measure_the_lag() -> None:
    """Walmart takes a feed every 360 s: messages in between go out as one push, with
    each SKU's newest quantity, and are all acked when it is accepted; the service's
    measurement of the lag then counts from each message. A push sent while the feed
    is stalled is accepted when the stall ends."""
    policy = Policy.from_toml(POLICY.text.replace('"amazon"', '"walmart"'))
    text = SCENARIO.replace('"amazon"', '"walmart"').replace(
        'push_lag = { dist = "fixed", s = 50 }',
        'push_lag = { dist = "fixed", s = 50 }\npush_every_s = 360',
    )
    stalled = text + '\n[[stalls]]\nchannel = "walmart"\nstart_s = 1000\nduration_s = 2000\n'
    feeds = Feeds(Scenario.from_toml(stalled, policy), seed=1)
    sku = np.array([0])
    for second in range(25):
        # only the first goes at once; the next slot is at 360 s
        feeds.publish(float(second), [(1, (sku, np.array([30 - second])))])
    assert feeds.next_at == 50.0
    assert feeds.accepted_by(49.0) == []
    assert len(feeds.accepted_by(50.0)) == 1
    assert feeds.lags.p99("walmart") is None  # one ack is not a measurement
    feeds.flush(360.0)
    assert feeds.next_at == 410.0
    [(channel, (skus, quantities))] = feeds.accepted_by(410.0)
    assert (channel, skus.tolist(), quantities.tolist()) == (1, [0], [6])
    assert feeds.lags.pending() == {"walmart": 409.0}  # 410 s after the message of 1 s
    feeds.publish(1200.0, [(1, (sku, np.array([2])))])
    assert feeds.next_at == 3000.0


STEADY = """\
[scenario]
horizon_s = 7200

[[skus]]
id = "A"
stock = 400
price = 10.0

[[channels]]
id = "shopify"
rate = 0.02

[[channels]]
id = "amazon"
rate = 0.03

[[channels]]
id = "walmart"
rate = 0.02
"""


def _steady_policy() -> Policy:
    """The storefront, and Amazon and Walmart without buffers."""
    return Policy.from_toml(
        POLICY.text.replace('id = "amazon"\ntier = 1', 'id = "amazon"\ntier = 1\nbuffer = 0')
        + '[[channels]]\nid = "walmart"\ntier = 1\n'
    )


def test_automatic_buffers_do_not_oversell_steady_demand_that_a_zero_buffer_oversells() -> None:
    """Steady demand, delays at their documented p99 or under: the automatic buffers
    count what every channel sells while Walmart's feed is on its way, so nothing is
    oversold, where the same channels without buffers oversell."""
    policy = _steady_policy()
    scenario = Scenario.from_toml(STEADY, policy)
    buyers = draw_all(scenario, range(1, 4))
    bare, auto = compare(
        scenario,
        [strategies.static(policy), strategies.auto(policy, scenario)],
        buyers,
    )
    assert bare.oversold > 0
    assert auto.oversold == 0
    assert auto.sold > 0.85 * bare.sold


def test_a_history_warms_the_engine_and_leaves_the_run_its_own_buyers_and_stock() -> None:
    """Two hours of base demand before the run. The run meets the same buyers as without
    them and counts them alone. A fresh engine knows no rate and shows Walmart all its
    stock; the engine that sold through the history holds Walmart back from the first
    step. And the run sells the scenario's stock, not what the history was given."""
    policy = _steady_policy()
    fresh = Scenario.from_toml(STEADY, policy)
    warm = Scenario.from_toml(STEADY.replace("7200\n", "7200\nhistory_s = 7200\n", 1), policy)
    run_buyers, all_buyers = draw(fresh, 2), draw(warm, 2)
    before = all_buyers.history
    assert before > 0 and max(all_buyers.time[:before]) <= 0.0
    assert all_buyers.time[before:] == run_buyers.time
    assert all_buyers.sku[before:] == run_buyers.sku
    assert all_buyers.order_lag[before:] == run_buyers.order_lag
    cold = simulate(fresh, strategies.auto(policy, fresh), run_buyers, seed=2, record=True)
    warmed = simulate(warm, strategies.auto(policy, warm), all_buyers, seed=2, record=True)
    assert cold.series is not None and warmed.series is not None
    walmart = cold.series.channels.index("walmart")
    assert cold.series.decided[0][walmart] == cold.series.ats[0]
    assert warmed.series.decided[0][walmart] < warmed.series.ats[0] // 2
    oracle = simulate(warm, strategies.oracle(policy), all_buyers, seed=2)
    for run in (warmed, oracle):
        assert run.buyers == len(run_buyers.time)
        assert run.sold + run.unsold == 400


def _summary(sold: int, oversold: int, revenue: float) -> Summary:
    return Summary("s", [Outcome("s", sold=sold, oversold=oversold, revenue_by_tier={1: revenue})])


def test_a_strategy_is_beaten_by_more_revenue_not_by_more_units() -> None:
    """Kits sharing parts: holding kits back sells more parts one by one, more order lines
    for less money. That is no better place on the frontier."""
    auto = _summary(sold=1_068, oversold=2, revenue=90_000.0)
    more_lines = _summary(sold=1_091, oversold=0, revenue=88_000.0)
    more_money = _summary(sold=1_050, oversold=0, revenue=91_000.0)
    assert not dominates(more_lines, auto)
    assert dominates(more_money, auto)


def test_lags_within_their_p99_are_the_same_draws_cut_at_the_p99() -> None:
    _, scenario = _surge_scenario()
    within = scenario.within_p99()
    wild, tame = draw(scenario, 5), draw(within, 5)
    assert (wild.time, wild.channel, wild.sku) == (tame.time, tame.channel, tame.sku)
    p99 = [plan.order_lag.p99 for plan in scenario.channels]
    cut = [min(lag, p99[c]) for lag, c in zip(wild.order_lag, wild.channel, strict=True)]
    assert tame.order_lag == cut
    assert any(lag > p99[c] for lag, c in zip(wild.order_lag, wild.channel, strict=True))
    rng = np.random.default_rng(1)
    walmart = next(plan for plan in within.channels if plan.id == "walmart")
    assert walmart.push_lag.sample(rng, 10_000).max() <= walmart.push_lag.p99
    assert [plan.stalls for plan in within.channels] == [plan.stalls for plan in scenario.channels]
