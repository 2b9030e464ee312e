"""Partitions: the stable hash, families from the policy, and each partition's engine
applying its own SKUs' lines of every event so that, together, N partitions hold
exactly what one engine holds."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import msgspec
import pytest

from invsync import _core
from invsync.engine import Engine
from invsync.errors import BadInputError, PolicyError, ReportedElsewhereError
from invsync.events import Batch, OrderPlaced
from invsync.policy import Policy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TS = "2026-11-23T10:00:00Z"

POLICY = """
[[tiers]]
tier = 1
[[tiers]]
tier = 2
[[locations]]
id = "wh"
kind = "warehouse"
[[locations]]
id = "east"
kind = "warehouse"
[[channels]]
id = "shop"
tier = 1
[[channels]]
id = "market"
tier = 2
share = 0.5
[[skus]]
id = "P1"
[[skus]]
id = "P2"
[[skus]]
id = "KIT"
kind = "bundle"
components = [{ sku = "P1", qty = 1 }, { sku = "P2", qty = 2 }]
"""


def fnv1a_64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) % (1 << 64)
    return h


def test_partition_of_is_fnv1a_64_modulo_n() -> None:
    # Written out here so a change to the core's function (which would strand every
    # partition's saved state) fails this test.
    for key in ["", "A", "SKU-000123", "kits", "ünïcode"]:
        for n in (1, 2, 3, 7, 64):
            assert _core.partition_of(key, n) == fnv1a_64(key.encode()) % n
    with pytest.raises(ValueError, match="at least 1"):
        _core.partition_of("A", 0)


def test_a_bundle_and_its_components_share_a_partition() -> None:
    engine = Engine(Policy.from_toml(POLICY), partition=0, partitions=2)
    # The bundle graph component {P1, P2, KIT} is keyed by its smallest id, "KIT".
    for n in (2, 3, 5, 16):
        expected = _core.partition_of("KIT", n)
        assert {engine.partition_of(sku, n) for sku in ("P1", "P2", "KIT")} == {expected}
    assert engine.partition_of("LOOSE", 7) == _core.partition_of("LOOSE", 7)


def test_an_explicit_family_groups_skus_and_carries_their_bundle() -> None:
    text = POLICY.replace('id = "KIT"\n', 'id = "KIT"\nfamily = "gifts"\n') + (
        '[[skus]]\nid = "CARD"\nfamily = "gifts"\n'
    )
    engine = Engine(Policy.from_toml(text))
    for sku in ("P1", "P2", "KIT", "CARD"):
        assert engine.partition_of(sku, 9) == _core.partition_of("gifts", 9)


def test_a_policy_splitting_a_bundle_family_is_refused_at_its_line() -> None:
    text = POLICY.replace('id = "P1"\n', 'id = "P1"\nfamily = "left"\n').replace(
        'id = "KIT"\n', 'id = "KIT"\nfamily = "right"\n'
    )
    with pytest.raises(PolicyError) as refused:
        Policy.from_toml(text, "seller.toml")
    error = refused.value
    assert error.source == "seller.toml"
    assert error.field == 'skus["KIT"].family'
    assert error.line == text.splitlines().index('family = "right"') + 1
    assert "KIT" in error.message and "P1" in error.message


def test_a_reload_that_would_move_a_sku_to_another_partition_is_refused() -> None:
    policy = Policy.from_toml(POLICY)
    mover = next(
        f"F{i}"
        for i in range(100)
        if _core.partition_of(f"F{i}", 2) != _core.partition_of("KIT", 2)
    )
    engine = Engine(policy, partition=_core.partition_of("KIT", 2), partitions=2)
    moved = Policy.from_toml(POLICY.replace('id = "KIT"\n', f'id = "KIT"\nfamily = "{mover}"\n'))
    with pytest.raises(PolicyError) as refused:
        engine.check_policy(moved)
    # The first SKU that would move is named, at its entry.
    assert refused.value.field == 'skus["P1"]'
    # Its [[skus]] header: the line before its id.
    assert refused.value.line == POLICY.splitlines().index('id = "P1"')
    assert "resize offline" in refused.value.message and '"P1"' in refused.value.message
    # The same family under one partition moves nothing: it is taken.
    Engine(policy).check_policy(moved)
    # A family that hashes where the SKUs already are is taken too.
    same = next(
        f"S{i}"
        for i in range(100)
        if _core.partition_of(f"S{i}", 2) == _core.partition_of("KIT", 2)
    )
    engine.check_policy(
        Policy.from_toml(POLICY.replace('id = "KIT"\n', f'id = "KIT"\nfamily = "{same}"\n'))
    )


def test_a_partition_that_does_not_exist_is_refused() -> None:
    with pytest.raises(ValueError, match="partition 2 does not exist among 2"):
        Engine(Policy.from_toml(POLICY), partition=2, partitions=2)


# ---- N partitions together hold what one engine holds ---------------------------------


def _snapshot_of_keys(engine: Engine, keys: list[tuple[str, str]]) -> dict[Any, Any]:
    out = {}
    for sku, condition in keys:
        out[(sku, condition)] = (
            engine.ats(sku, condition),
            engine.reserved(sku, condition),
            engine.backordered(sku, condition),
            tuple(
                engine.shown(sku, ch, condition)
                for ch in engine.policy.channels
                if condition == "new"
            ),
        )
    return out


def _keys(engine: Engine) -> list[tuple[str, str]]:
    return [engine.key_name(i) for i in range(engine._core.key_count())]


def _assert_partitions_add_up(policy: Policy, events: list[Any], n: int) -> None:
    whole = Engine(policy)
    whole.apply_many(events)
    parts = [Engine(policy, partition=k, partitions=n) for k in range(n)]
    for part in parts:
        part.apply_many(events)
    keys = _keys(whole)
    assert keys, "the stream must create stock"
    expected = _snapshot_of_keys(whole, keys)
    for sku, condition in keys:
        owner = parts[whole.partition_of(sku, n)]
        assert _snapshot_of_keys(owner, [(sku, condition)]) == {
            (sku, condition): expected[(sku, condition)]
        }, (sku, condition)
        for other in parts:
            if other is not owner:
                assert (sku, condition) not in _keys(other), "another partition's SKU"


@pytest.mark.parametrize("n", [2, 3])
def test_the_example_stream_splits_over_partitions_without_loss(n: int) -> None:
    policy = Policy.load(EXAMPLES / "policy.toml")
    events = [json.loads(line) for line in (EXAMPLES / "events.jsonl").read_text().splitlines()]
    _assert_partitions_add_up(policy, events, n)


def _random_stream(seed: int) -> list[Any]:
    """Stock, multi-line orders, partial cancels, shipments, failures and returns over a
    dozen SKUs (the bundle family among them), some of them inside `batch` events."""
    rng = random.Random(seed)
    skus = ["P1", "P2", "KIT", *(f"S{i}" for i in range(9))]
    events: list[Any] = []
    n = 0

    def event(kind: str, **fields: Any) -> dict[str, Any]:
        nonlocal n
        n += 1
        return {"type": kind, "event_id": f"e{n}", "ts": TS, **fields}

    for sku in skus:
        if sku != "KIT":
            events.append(event("stock.set", sku=sku, location="wh", on_hand=rng.randint(0, 12)))
    open_lines: dict[str, list[str]] = {}  # order id → its lines not yet cancelled or failed
    for o in range(60):
        roll = rng.random()
        if roll < 0.5 or not open_lines:
            lines: list[dict[str, Any]] = [
                {"line_id": str(i), "sku": sku, "qty": rng.randint(1, 3)}
                for i, sku in enumerate(rng.sample(skus, rng.randint(1, 4)))
            ]
            order_id = f"o{o}"
            channel = rng.choice(["shop", "market"])
            events.append(event("order.placed", order_id=order_id, channel=channel, lines=lines))
            open_lines[order_id] = [line["line_id"] for line in lines]
        elif roll < 0.85:
            order_id = rng.choice(sorted(open_lines))
            line_ids = open_lines[order_id]
            if roll < 0.65:
                chosen = rng.sample(line_ids, rng.randint(1, len(line_ids)))
                events.append(event("order.cancelled", order_id=order_id, line_ids=chosen))
            elif roll < 0.75:
                chosen = list(line_ids)
                events.append(event("order.cancelled", order_id=order_id))
            else:
                chosen = [rng.choice(line_ids)]
                events.append(
                    event(
                        "order.fulfillment_failed",
                        order_id=order_id,
                        line_id=chosen[0],
                        disposition="restock",
                    )
                )
            open_lines[order_id] = [i for i in line_ids if i not in chosen]
            if not open_lines[order_id]:
                del open_lines[order_id]
        else:
            inner = [
                event(
                    "stock.adjust",
                    sku=rng.choice(skus[3:]),
                    location="east",
                    delta=rng.randint(0, 5),
                )
                for _ in range(rng.randint(1, 4))
            ]
            # A batch's inner events are raw JSON: it arrives decoded, as the service reads it.
            events.append(msgspec.json.decode(json.dumps(event("batch", events=inner)), type=Batch))
    return events


@pytest.mark.parametrize("seed", range(6))
def test_random_streams_split_over_two_and_three_partitions_without_loss(seed: int) -> None:
    policy = Policy.from_toml(POLICY)
    events = _random_stream(seed)
    for n in (2, 3):
        _assert_partitions_add_up(policy, events, n)


def test_a_shipment_and_a_return_apply_where_their_line_is() -> None:
    policy = Policy.from_toml(POLICY)
    a, b = _two_partition_skus()
    events = [
        {"type": "stock.set", "event_id": "s1", "ts": TS, "sku": a, "location": "wh", "on_hand": 5},
        {"type": "stock.set", "event_id": "s2", "ts": TS, "sku": b, "location": "wh", "on_hand": 5},
        {
            "type": "order.placed",
            "event_id": "p",
            "ts": TS,
            "order_id": "o",
            "channel": "shop",
            "lines": [{"line_id": "1", "sku": a, "qty": 2}, {"line_id": "2", "sku": b, "qty": 3}],
        },
        {
            "type": "order.shipped",
            "event_id": "sh",
            "ts": TS,
            "order_id": "o",
            "lines": [
                {"line_id": "1", "qty": 2, "location": "wh"},
                {"line_id": "2", "qty": 3, "location": "wh"},
            ],
        },
        {
            "type": "order.returned",
            "event_id": "r",
            "ts": TS,
            "order_id": "o",
            "line_id": "2",
            "sku": b,
            "location": "wh",
            "qty": 1,
            "disposition": "restock",
        },
    ]
    _assert_partitions_add_up(policy, events, 2)


def _two_partition_skus() -> tuple[str, str]:
    """Two SKUs not in the policy that land in partitions 0 and 1 of 2."""
    names = [f"X{i}" for i in range(100)]
    return (
        next(s for s in names if _core.partition_of(s, 2) == 0),
        next(s for s in names if _core.partition_of(s, 2) == 1),
    )


def test_a_bad_order_as_a_whole_is_reported_by_partition_zero_alone() -> None:
    policy = Policy.from_toml(POLICY)
    a, b = _two_partition_skus()
    bad = msgspec.convert(
        {
            "type": "order.placed",
            "event_id": "bad",
            "ts": TS,
            "order_id": "o",
            "channel": "nowhere",
            "lines": [{"line_id": "1", "sku": a, "qty": 1}, {"line_id": "2", "sku": b, "qty": 1}],
        },
        OrderPlaced,
    )
    refusals = [Engine(policy, partition=k, partitions=2).apply_all([bad]).refused for k in (0, 1)]
    [(_, first)] = refusals[0]
    [(_, second)] = refusals[1]
    assert isinstance(first, BadInputError) and not isinstance(first, ReportedElsewhereError)
    assert "channel" in str(first)
    assert isinstance(second, ReportedElsewhereError)


def test_a_bad_line_is_reported_by_the_partition_of_its_sku() -> None:
    policy = Policy.from_toml(POLICY)
    _, b = _two_partition_skus()
    bad = {
        "type": "stock.set",
        "event_id": "s",
        "ts": TS,
        "sku": b,
        "location": "nowhere",
        "on_hand": 1,
    }
    with pytest.raises(BadInputError, match="location"):
        Engine(policy, partition=1, partitions=2).apply(bad)
    assert not Engine(policy, partition=0, partitions=2).apply(bad).duplicate
