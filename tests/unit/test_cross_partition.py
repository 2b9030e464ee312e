"""Reservations spanning partitions, decided through the log: each involved partition
prepares its lines where the request sits and votes; the decision follows from the
first vote of every involved partition, or a clock tick past the time-out."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import msgspec
import pytest

from invsync import _core
from invsync.engine import Engine
from invsync.events import ClockTick, ReserveRequest, Vote
from invsync.policy import Policy

POLICY = """
[defaults]
cross_partition_timeout_s = 5
[[tiers]]
tier = 1
[[locations]]
id = "wh"
kind = "warehouse"
[[channels]]
id = "shop"
tier = 1
"""
T0 = datetime.fromisoformat("2026-11-23T10:00:00+00:00")


def _skus_in(partition: int, count: int) -> list[str]:
    names = (f"SKU-{i}" for i in range(1000))
    return [s for s in names if _core.partition_of(s, 2) == partition][:count]


A, A2 = _skus_in(0, 2)
B, B2 = _skus_in(1, 2)


def _engines(stock: dict[str, int]) -> list[Engine]:
    policy = Policy.from_toml(POLICY)
    engines = [Engine(policy, partition=k, partitions=2) for k in (0, 1)]
    events = [
        {
            "type": "stock.set",
            "event_id": f"s-{sku}",
            "ts": T0.isoformat(),
            "sku": sku,
            "location": "wh",
            "on_hand": qty,
        }
        for sku, qty in stock.items()
    ]
    for engine in engines:
        engine.apply_many(events)
    return engines


def _request(rid: str, lines: list[tuple[str, int]], at: datetime = T0) -> ReserveRequest:
    return msgspec.convert(
        {
            "request_id": rid,
            "order_id": f"order-{rid}",
            "channel": "shop",
            "ts": at.isoformat(),
            "hold_seconds": 3600,
            "lines": [
                {"line_id": str(i), "sku": sku, "qty": q} for i, (sku, q) in enumerate(lines)
            ],
        },
        ReserveRequest,
    )


def _tick(n: int, at: datetime) -> ClockTick:
    return msgspec.convert(
        {"type": "clock.tick", "event_id": f"tick-{n}", "ts": at.isoformat()}, ClockTick
    )


def _prepare(engines: list[Engine], request: ReserveRequest) -> list[Vote]:
    votes = []
    for engine in engines:
        share = engine.reserve_share(request, reply_to=f"_INBOX.{request.request_id}")
        assert share.reply is None
        if share.vote is not None:
            votes.append(share.vote)
    return votes


def test_a_request_spanning_partitions_commits_when_every_vote_is_yes() -> None:
    p0, p1 = _engines({A: 5, B: 5})
    v0, v1 = _prepare([p0, p1], _request("r1", [(A, 2), (B, 3)]))
    assert (v0.partition, v0.ok, v1.partition, v1.ok) == (0, True, 1, True)
    for vote in (v0, v1):
        for engine in (p0, p1):
            engine.apply_vote(vote)
    [(rid, inbox, _, reply)] = p0.take_cross_answers()
    assert (rid, inbox, reply["ok"]) == ("r1", "_INBOX.r1", True)
    assert [(line["sku"], line["granted"]) for line in reply["lines"]] == [(A, True), (B, True)]
    assert reply["expires_at"] is not None
    assert p1.take_cross_answers() == [], "the first line's partition answers"
    assert (p0.reserved(A), p1.reserved(B)) == (2, 3)


def test_a_no_vote_aborts_and_releases_what_the_other_partition_prepared() -> None:
    p0, p1 = _engines({A: 5, B: 1})
    v0, v1 = _prepare([p0, p1], _request("r1", [(A, 2), (B, 3)]))
    assert p0.reserved(A) == 2, "prepared: held until decided"
    assert not v1.ok and v1.lines[0].reason == "insufficient"
    for vote in (v1, v0):
        for engine in (p0, p1):
            engine.apply_vote(vote)
    [(_, _, _, reply)] = p0.take_cross_answers()
    assert not reply["ok"]
    assert [(line["granted"], line["reason"]) for line in reply["lines"]] == [
        (False, None),
        (False, "insufficient"),
    ]
    assert (p0.reserved(A), p1.reserved(B), p0.ats(A)) == (0, 0, 5)


def test_a_partition_that_never_votes_times_the_request_out_at_the_first_late_tick() -> None:
    p0, p1 = _engines({A: 5, B: 5})
    v0, _lost = _prepare([p0, p1], _request("r1", [(A, 2), (B, 3)]))
    for engine in (p0, p1):
        engine.apply_vote(v0)
        engine.apply_all([_tick(1, T0 + timedelta(seconds=5))])
    assert p0.take_cross_answers() == [], "not yet past ts + 5 s"
    for engine in (p0, p1):
        engine.apply_all([_tick(2, T0 + timedelta(seconds=5, microseconds=1))])
    [(_, _, _, reply)] = p0.take_cross_answers()
    assert [line["reason"] for line in reply["lines"]] == [None, "timeout"]
    assert (p0.reserved(A), p1.reserved(B)) == (0, 0)
    # A vote arriving after the decision changes nothing.
    for engine in (p0, p1):
        engine.apply_vote(_lost)
    assert (p0.reserved(A), p1.reserved(B)) == (0, 0)


def test_duplicates_of_requests_and_votes_change_nothing() -> None:
    p0, p1 = _engines({A: 5, B: 5})
    request = _request("r1", [(A, 2), (B, 3)])
    v0, v1 = _prepare([p0, p1], request)
    assert all(e.reserve_share(request).vote is None for e in (p0, p1)), "pending: no 2nd vote"
    flipped = msgspec.structs.replace(v0, ok=False)
    for vote in (v0, flipped, v1, v1):
        for engine in (p0, p1):
            engine.apply_vote(vote)
    [(_, _, _, reply)] = p0.take_cross_answers()
    assert reply["ok"], "the first vote of a partition counts"
    again = [e.reserve_share(request) for e in (p0, p1)]
    # Asked again once decided: its coordinator alone answers, with the decision.
    assert [s.reply["ok"] if s.reply else None for s in again] == [True, None]
    assert (p0.reserved(A), p1.reserved(B)) == (2, 3)


def test_a_single_partition_request_is_decided_at_once_by_its_partition_alone() -> None:
    p0, p1 = _engines({A: 5, A2: 5, B: 5})
    request = _request("r1", [(A, 1), (A2, 1)])
    shares = [e.reserve_share(request) for e in (p0, p1)]
    assert shares[0].reply is not None and shares[0].reply["ok"] and shares[0].vote is None
    assert shares[1].reply is None and shares[1].vote is None


def test_a_prepared_request_survives_a_snapshot() -> None:
    p0, p1 = _engines({A: 5, B: 5})
    v0, v1 = _prepare([p0, p1], _request("r1", [(A, 2), (B, 3)]))
    p0 = Engine.restore(p0.policy, p0.snapshot(), partition=0, partitions=2)
    for vote in (v0, v1):
        p0.apply_vote(vote)
    [(rid, inbox, _, reply)] = p0.take_cross_answers()
    assert (rid, inbox, reply["ok"], p0.reserved(A)) == ("r1", "_INBOX.r1", True, 2)


# ---- random interleavings ------------------------------------------------------------


@dataclass
class Log:
    """The shared log as both partitions read it: requests, votes and ticks in order."""

    entries: list[tuple[str, Any]] = field(default_factory=list)


def _apply(engine: Engine, kind: str, entry: Any) -> Vote | None:
    if kind == "request":
        return engine.reserve_share(entry, reply_to="_INBOX").vote
    if kind == "vote":
        engine.apply_vote(entry)
    else:
        engine.apply_all([entry])
    return None


def _run(seed: int) -> None:
    rng = random.Random(seed)
    stock = {
        A: rng.randint(0, 6),
        A2: rng.randint(0, 6),
        B: rng.randint(0, 6),
        B2: rng.randint(0, 6),
    }
    engines = _engines(stock)
    # What is still to come, by position: the log grows as partitions write votes.
    upcoming: list[tuple[str, Any]] = []
    now = T0
    for r in range(12):
        now += timedelta(seconds=rng.choice([0, 1, 2]))
        lines = [(sku, rng.randint(1, 3)) for sku in rng.sample(sorted(stock), rng.randint(1, 3))]
        upcoming.append(("request", _request(f"r{r}", lines, now)))
        if rng.random() < 0.3:
            upcoming.append(("tick", _tick(r, now + timedelta(seconds=rng.choice([1, 6])))))
    upcoming.append(("tick", _tick(99, now + timedelta(seconds=60))))
    log = Log()
    while upcoming:
        kind, entry = upcoming.pop(0)
        log.entries.append((kind, entry))
        for engine in engines:
            vote = _apply(engine, kind, entry)
            if vote is None or rng.random() < 0.1:
                continue  # this partition's leader died before appending its vote
            for _ in range(rng.choice([1, 1, 2])):  # sometimes written twice
                at = rng.randint(0, len(upcoming) - 1) if upcoming else 0
                upcoming.insert(at, ("vote", vote))
    answers = {rid: reply for e in engines for rid, _, _, reply in e.take_cross_answers()}
    requests = [entry for kind, entry in log.entries if kind == "request"]
    committed: dict[str, int] = dict.fromkeys(stock, 0)
    for request in requests:
        # Asked again, the request's coordinator answers with the decision it made.
        coordinator = engines[engines[0].partition_of(request.lines[0].sku)]
        again = coordinator.reserve_share(request).reply
        assert again is not None, request.request_id
        ok = again["ok"]
        involved = {engines[0].partition_of(line.sku) for line in request.lines}
        if len(involved) > 1:
            assert answers[request.request_id]["ok"] == ok, "the answer is the decision"
        if ok:
            for line in request.lines:
                committed[line.sku] += line.qty
    # Every partition applied that decision: each SKU's owner holds exactly what the
    # granted requests asked of it (an abort applied by one partition and not by
    # another would leave a stray hold or lose a grant).
    for sku, held in committed.items():
        owner = engines[engines[0].partition_of(sku)]
        assert owner.reserved(sku) == held, f"{sku}: a stray hold, or a grant lost"
        assert held <= stock[sku], f"{sku}: a unit granted twice"
    # Replaying the log from scratch (votes where they landed) gives the same state.
    replayed = _engines(stock)
    for kind, entry in log.entries:
        for engine in replayed:
            _apply(engine, kind, entry)
    for sku in stock:
        k = engines[0].partition_of(sku)
        assert replayed[k].reserved(sku) == engines[k].reserved(sku), sku
        assert replayed[k].ats(sku) == engines[k].ats(sku), sku


@pytest.mark.parametrize("seed", range(40))
def test_random_interleavings_of_requests_votes_and_ticks_agree_everywhere(seed: int) -> None:
    _run(seed)
