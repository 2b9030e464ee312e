"""`invsync loadtest`: the seeded workload, the independent checker, the summary, and a
short run against the embedded service (the CI smoke run)."""

from __future__ import annotations

import io
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from invsync.flashsale.checker import (
    BackorderCause,
    Checker,
    SkuState,
    compare,
    reserved_beyond_stock,
)
from invsync.flashsale.observe import DepletionRecorder, FeedRecorder, depletion, tier_layers
from invsync.flashsale.progress import ProgressLine, render_sale
from invsync.flashsale.report import backorder_table, depletion_table, shown_over_time
from invsync.flashsale.scenario import Mix, ScenarioConfig, generate
from invsync.flashsale.session import LOADTEST_POLICY, Outcome, embedded_service

SMALL = ScenarioConfig(
    rate=200.0, duration_s=5.0, skus=50, hot_skus=3, seed=7, run_id="t", spike_channel="tiktok"
)


def test_same_seed_generates_the_same_sale() -> None:
    assert generate(SMALL) == generate(SMALL)


def test_other_seed_generates_another_sale() -> None:
    other = ScenarioConfig(**{**SMALL.__dict__, "seed": 8})
    assert generate(other).steps != generate(SMALL).steps


def test_hot_skus_start_small_and_draw_most_demand() -> None:
    sale = generate(SMALL)
    opening = {event["sku"]: event["on_hand"] for event in sale.setup}
    assert [opening[sku] for sku in sale.hot] == [SMALL.hot_stock] * 3
    demanded = Counter(
        line["sku"] for step in sale.steps if "lines" in step.body for line in step.body["lines"]
    )
    hot_share = sum(demanded[sku] for sku in sale.hot) / sum(demanded.values())
    assert hot_share > 0.35  # Zipf(1.1) over 50 SKUs gives the top 3 about 44 %


def test_promotion_adds_traffic_on_its_channel_inside_its_window() -> None:
    sale = generate(SMALL)
    start, end = (share * SMALL.duration_s for share in SMALL.spike_window)

    def tiktok_steps(inside: bool) -> int:
        return sum(
            1
            for step in sale.steps
            if step.subject.endswith(".tiktok") and (start <= step.at < end) == inside
        )

    window, rest = end - start, SMALL.duration_s - (end - start)
    assert tiktok_steps(True) / window > 2 * tiktok_steps(False) / rest


def test_checkout_follow_ups_come_after_the_hold_and_before_it_expires() -> None:
    sale = generate(SMALL)
    holds = [step for step in sale.steps if step.is_request]
    assert holds and all(step.body["type"] == "reserve" for step in holds)
    for step in holds:
        assert all(0 < then.at < SMALL.hold_seconds + 1.0 for then in step.then)
        placed = [then for then in step.then if then.body["type"] == "order.placed"]
        assert all(then.body["order_id"] == step.body["order_id"] for then in placed)


def test_mix_weights_are_normalised_and_typos_refused() -> None:
    assert Mix.parse("reserve=3,order=1") == Mix(reserve=0.75, order=0.25, receive=0.0)
    with pytest.raises(ValueError, match="mix"):
        Mix.parse("reserv=3")


def _state(on_hand: int, reserved: int, ats: int, shopify: int) -> SkuState:
    return SkuState(
        on_hand=on_hand, reserved=reserved, backordered=0, ats=ats, shown={"shopify": shopify}
    )


def test_compare_names_every_number_the_service_got_wrong() -> None:
    expected = {"A": _state(10, 4, 6, 6), "B": _state(5, 0, 5, 5)}
    observed = {"A": _state(10, 5, 5, 6), "B": None}
    found = [(d.sku, d.field, d.expected, d.observed) for d in compare(expected, observed)]
    assert found == [
        ("A", "reserved", 4, 5),
        ("A", "ats", 6, 5),
        ("B", "present", 1, None),
    ]


def test_reserved_beyond_sellable_stock_counts_as_oversold() -> None:
    observed = {"A": _state(3, 5, 0, 0), "B": _state(5, 5, 0, 0)}
    assert reserved_beyond_stock(observed) == {"A": 2}


def test_reserve_depletion_follows_the_nested_protection_layers() -> None:
    layers = tier_layers({1: 10, 2: 5, 3: 0})
    assert layers == {1: (0, 10), 2: (10, 5)}
    assert [depletion(ats, layers[2]) for ats in (20, 15, 12, 10, 0)] == [0.0, 0.0, 0.6, 1.0, 1.0]
    assert depletion(5, layers[1]) == 0.5
    recorder = DepletionRecorder(protect={1: 10, 2: 5, 3: 0})
    recorder.sample(1.0, [15, 5])
    recorder.sample(2.0, [30, 30])
    assert recorder.series == {1: [(1.0, 0.25), (2.0, 0.0)], 2: [(1.0, 0.5), (2.0, 0.0)]}
    text = depletion_table(recorder.series, duration_s=4.0)
    assert text.splitlines()[0].split() == [
        "reserve",
        "depleted",
        "1.0s",
        "2.0s",
        "3.0s",
        "4.0s",
        "peak",
    ]
    assert text.splitlines()[2].split() == ["tier", "1", "25%", "0%", "0%", "0%", "25%"]


def test_feed_latency_is_receipt_minus_source_ts() -> None:
    feed = FeedRecorder(hot=frozenset({"A"}), origin=1_700_000_000.0)
    payload = json.dumps(
        {
            "type": "channel.quantities",
            "channel": "shopify",
            "seq": 1,
            "ts": "2023-11-14T22:13:20.010000Z",
            "items": [
                {
                    "sku": "A",
                    "condition": "new",
                    "qty": 7,
                    "source_ts": "2023-11-14T22:13:20.000000Z",
                },
                {
                    "sku": "Z",
                    "condition": "new",
                    "qty": 1,
                    "source_ts": "2023-11-14T22:13:19.990000Z",
                },
            ],
        }
    ).encode()
    feed.record("shopify", payload, received=1_700_000_000.020)
    assert [round(v, 3) for v in feed.latency["shopify"]] == [0.02, 0.03]
    assert feed.shown == {("shopify", "A"): [(pytest.approx(0.02), 7)]}


def test_opening_stock_sets_shown_quantities_but_not_latency() -> None:
    feed = FeedRecorder(hot=frozenset({"A"}))
    item = {"sku": "A", "condition": "new", "qty": 40, "source_ts": "2023-11-14T22:13:19Z"}
    payload = json.dumps({"type": "channel.quantities", "items": [item]}).encode()
    feed.record("shopify", payload, received=1_700_000_000.0)
    assert feed.shown == {("shopify", "A"): [(0.0, 40)]}
    assert feed.all_latencies() == []


def test_progress_line_is_silent_when_not_a_terminal() -> None:
    stream = io.StringIO()
    line = ProgressLine(stream)
    line.show(render_sale(5.0, 10.0, 1000, 200.0, 3.5))
    line.close()
    assert stream.getvalue() == ""
    text = render_sale(5.0, 10.0, 1000, 200.0, 3.5)
    assert "5.0/10s" in text and "1,000" in text and "200/s" in text and "3.5 ms" in text


# --- with the engine: the checker replays what was sent -------------------------------------


def _engine_checker() -> Checker:
    engine_module = pytest.importorskip("invsync.engine")
    from invsync.policy import Policy

    return Checker(engine_module.Engine(Policy.from_toml(LOADTEST_POLICY, "loadtest.toml")))


def _sent(checker: Checker) -> None:
    checker.sent(
        json.dumps(
            {
                "type": "stock.set",
                "event_id": "e1",
                "ts": "2026-11-23T10:00:00Z",
                "sku": "HOT",
                "location": "wh-1",
                "on_hand": 20,
            }
        ).encode()
    )


def test_checker_fails_a_service_that_ends_in_the_wrong_state() -> None:
    checker = _engine_checker()
    _sent(checker)
    expected = checker.expected(["HOT"], datetime(2026, 11, 23, 10, 1, tzinfo=UTC))
    assert expected["HOT"].on_hand == 20
    wrong = {"HOT": SkuState(**{**expected["HOT"].__dict__, "on_hand": 19})}
    verdict = checker.verdict(expected, wrong)
    assert not verdict.ok
    assert [str(d) for d in verdict.discrepancies] == ["HOT on_hand: expected 20, service has 19"]
    assert checker.verdict(expected, dict(expected)).ok


def test_checker_counts_a_grant_beyond_available_stock_as_oversold() -> None:
    checker = _engine_checker()
    _sent(checker)
    request = {
        "type": "reserve",
        "request_id": "r1",
        "order_id": "o1",
        "channel": "shopify",
        "ts": "2026-11-23T10:00:01Z",
        "hold_seconds": 60,
        "lines": [{"line_id": "1", "sku": "HOT", "qty": 25}],
    }
    granted = {"ok": True, "order_id": "o1", "lines": [], "expires_at": None}
    checker.answered(
        json.dumps(request).encode(), granted, datetime(2026, 11, 23, 10, 0, 1, tzinfo=UTC)
    )
    expected = checker.expected(["HOT"], datetime(2026, 11, 23, 10, 0, 2, tzinfo=UTC))
    verdict = checker.verdict(expected, dict(expected))
    assert verdict.oversold_by_reservation == {"HOT": 25}
    assert not verdict.ok


def test_checker_follows_a_refusal_so_later_grants_are_judged_fairly() -> None:
    checker = _engine_checker()
    _sent(checker)

    def request(n: int, qty: int) -> bytes:
        return json.dumps(
            {
                "type": "reserve",
                "request_id": f"r{n}",
                "order_id": f"o{n}",
                "channel": "shopify",
                "ts": f"2026-11-23T10:00:0{n}Z",
                "hold_seconds": 60,
                "lines": [{"line_id": "1", "sku": "HOT", "qty": qty}],
            }
        ).encode()

    checker.answered(request(1, 10), {"ok": False}, datetime(2026, 11, 23, 10, 0, 1, tzinfo=UTC))
    checker.answered(request(2, 18), {"ok": True}, datetime(2026, 11, 23, 10, 0, 2, tzinfo=UTC))
    expected = checker.expected(["HOT"], datetime(2026, 11, 23, 10, 0, 3, tzinfo=UTC))
    assert expected["HOT"].reserved == 18
    assert checker.verdict(expected, dict(expected)).ok


# --- end to end against the embedded service ------------------------------------------------


@pytest.mark.nats
def test_short_embedded_loadtest_passes_and_writes_its_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("invsync.engine")
    from invsync.cli import main

    report = tmp_path / "report"
    code = main(
        [
            "loadtest",
            "--embedded",
            "--rate",
            "150",
            "--duration",
            "3",
            "--skus",
            "40",
            "--hot-skus",
            "2",
            "--hot-stock",
            "15",
            "--seed",
            "3",
            "--report",
            str(report),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "checker: PASS" in out
    summary = json.loads((report / "summary.json").read_text())
    assert summary["ok"] is True
    assert summary["oversold_by_reservation"] == 0
    assert summary["sent_steps"] == summary["offered_steps"] > 0
    assert summary["reservations_granted"] > 0 and summary["reservations_refused"] > 0
    assert {row["channel"] for row in summary["latency"]} >= {"shopify", "all"}
    assert (report / "flashsale.png").stat().st_size > 10_000


def test_backorder_table_lists_the_largest_and_sums_the_rest() -> None:
    causes = [BackorderCause("amazon", f"S{n}", units=n, orders=1) for n in range(1, 13)]
    lines = backorder_table(causes, limit=2).splitlines()
    assert [line.split()[:4] for line in lines[2:]] == [
        ["amazon", "S12", "12", "1"],
        ["amazon", "S11", "11", "1"],
        ["10", "more", "55", "10"],
    ]


def test_shown_over_time_holds_the_last_quantity_each_channel_was_sent() -> None:
    feed = FeedRecorder(hot=frozenset({"A"}))
    feed.shown[("shopify", "A")] = [(0.0, 30), (1.5, 12)]
    feed.shown[("amazon", "A")] = [(0.4, 5)]
    lines = shown_over_time(feed, "A", ["shopify", "amazon", "ebay"], 1.0, 2.5).splitlines()
    assert [line.split() for line in lines[2:]] == [
        ["0.0s", "30", "0", "0"],
        ["1.0s", "30", "5", "0"],
        ["2.0s", "12", "5", "0"],
        ["2.5s", "12", "5", "0"],
    ]


def test_loadtest_without_nats_says_so_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    from invsync.cli import main
    from invsync.nats_server import free_port

    url = f"nats://127.0.0.1:{free_port()}"
    policy = Path(__file__).resolve().parents[2] / "examples" / "policy.toml"
    code = main(["loadtest", "--nats", url, "--policy", str(policy), "--duration", "1"])
    assert code == 2
    assert capsys.readouterr().out.startswith(f"invsync loadtest: cannot connect to NATS at {url}")


@pytest.mark.nats
def test_checker_fails_a_run_where_the_service_saw_an_order_it_was_not_sent(
    tmp_path: Path,
) -> None:
    pytest.importorskip("invsync.engine")
    import anyio
    import nats

    from invsync.flashsale.session import run_sale
    from invsync.policy import Policy
    from invsync.service.connection import client_kwargs

    policy_path = tmp_path / "policy.toml"
    policy_path.write_text(LOADTEST_POLICY)
    policy = Policy.load(policy_path)
    config = ScenarioConfig(**{**SMALL.__dict__, "rate": 60.0, "duration_s": 2.0, "skus": 10})
    sale = generate(config)
    rogue = {
        "type": "order.placed",
        "event_id": "rogue-1",
        "ts": "2026-11-23T10:00:00Z",
        "order_id": "rogue-1",
        "channel": "amazon",
        "lines": [{"line_id": "1", "sku": sale.hot[0], "qty": 5}],
    }

    async def sale_after_a_rogue_order() -> Outcome:
        async with embedded_service(policy_path) as driver:
            producer = await nats.connect(**client_kwargs(driver))
            await producer.publish(
                "inv.order.amazon", json.dumps(rogue).encode(), headers={"Nats-Msg-Id": "rogue-1"}
            )
            await producer.drain()
            return await run_sale(driver, policy, sale)

    verdict = anyio.run(sale_after_a_rogue_order).verdict
    assert not verdict.ok
    assert (sale.hot[0], "reserved") in {(d.sku, d.field) for d in verdict.discrepancies}


def test_marketplaces_need_the_embedded_service(capsys: pytest.CaptureFixture[str]) -> None:
    from invsync.cli import main

    assert (
        main(["loadtest", "--nats", "nats://127.0.0.1:1", "--policy", "p.toml", "--marketplaces"])
        == 2
    )
    assert "--marketplaces needs --embedded" in capsys.readouterr().out


# Every platform the sandbox emulates, in the loadtest policy's channel order.
SEVEN = ("shopify", "amazon", "walmart", "ebay", "tiktok", "shopee", "lazada")


@pytest.mark.nats
def test_marketplaces_sell_through_the_sandbox_and_oversells_are_per_channel(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from invsync.cli import main

    code = main(
        [
            "loadtest",
            "--embedded",
            "--marketplaces",
            "--rate",
            "60",
            "--duration",
            "2",
            "--skus",
            "20",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    market = out.split("Marketplaces (sandbox)", 1)[1]
    rows = [line.split() for line in market.splitlines()[3:10]]
    assert [cells[0] for cells in rows] == list(SEVEN)
    for cells in rows:
        # channel platform sold refused pushes p50 p99 requests throttled equal less
        assert int(cells[4]) > 0, f"the gateway pushed nothing to {cells[0]}"
    oversells = out.split("Oversells by channel", 1)[1].splitlines()
    channels = [line.split()[0] for line in oversells[3:]]
    assert set(SEVEN) <= set(channels)
