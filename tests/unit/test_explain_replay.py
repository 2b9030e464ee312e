"""`invsync explain SKU --events FILE` replays a JSON-lines file in order, reports each
bad event with its line number and skips it, and explains the state the rest left."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.small_policy import ONE_WAREHOUSE_POLICY as POLICY
from tests.small_policy import TS


def line(kind: str, event_id: str, **fields: Any) -> str:
    return json.dumps({"type": kind, "event_id": event_id, "ts": TS, **fields})


def test_a_replay_skips_bad_events_by_line_and_applies_the_rest_in_order(
    tmp_path: Path,
) -> None:
    order = {"channel": "shopify", "lines": [{"line_id": "1", "sku": "A", "qty": 3}]}
    hold = {
        "type": "reserve",
        "request_id": "r-1",
        "order_id": "h-1",
        "channel": "shopify",
        "ts": TS,
        "lines": [{"line_id": "1", "sku": "A", "qty": 2}],
    }
    events = [
        line("stock.set", "s1", sku="A", location="wh", on_hand=10),
        "{not json",
        line("order.placed", "o1", order_id="o-1", **order),
        line("stock.set", "s2", sku="A", location="nowhere", on_hand=99),
        json.dumps(hold),
        "",
        line("order.placed", "o2", order_id="o-2", **order),
        line("stock.adjust", "a1", sku="A", location="wh", delta=-50, reason="count"),
    ]
    (tmp_path / "policy.toml").write_text(POLICY, encoding="utf-8")
    (tmp_path / "events.jsonl").write_text("\n".join(events) + "\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "invsync.cli", "explain", "A", "--json"]
        + ["--policy", str(tmp_path / "policy.toml"), "--events", str(tmp_path / "events.jsonl")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    explained = json.loads(done.stdout)
    assert (explained["on_hand"], explained["reserved"], explained["ats"]) == (10, 8, 2)
    skipped = [row.split(": skipped:")[0] for row in done.stderr.splitlines()]
    events_file = tmp_path / "events.jsonl"
    assert skipped == [f"{events_file}:2", f"{events_file}:4", f"{events_file}:8"]
