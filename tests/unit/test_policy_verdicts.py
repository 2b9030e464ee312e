"""One judge of a policy: a file `Policy.from_toml` (and so `invsync check`) accepts is one
the core loads, and a file it refuses is refused by the core for the same reason.

Random policies aim at the edges: a 17th tier, 65 channels, deep and cyclic bundles,
component quantities near 2^63, duplicate and unknown ids. Each goes through the file
path and, resolved without any check, straight into the core.
"""

from __future__ import annotations

import tomllib
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invsync import _core
from invsync.engine import Engine
from invsync.errors import InvsyncError, PolicyError
from invsync.policy import Policy, PolicyFile

I64_MAX = 2**63 - 1
SKU_IDS = ("A", "B", "K1", "K2", "K3", "K4")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return str(value)


def to_toml(document: dict[str, list[dict[str, Any]]]) -> str:
    """Arrays of tables, one key per line (all these policies need)."""
    out = []
    for section, entries in document.items():
        for entry in entries:
            out.append(f"[[{section}]]")
            out += [f"{key} = {_toml_value(value)}" for key, value in entry.items()]
            out.append("")
    return "\n".join(out)


tier_numbers = st.integers(min_value=1, max_value=20)
quantities = st.one_of(
    st.integers(min_value=1, max_value=5), st.sampled_from([2**31, 2**32, 2**62, I64_MAX])
)


@st.composite
def components(draw: st.DrawFn) -> list[dict[str, Any]]:
    names = st.sampled_from((*SKU_IDS, "NOPE"))
    return draw(st.lists(st.fixed_dictionaries({"sku": names, "qty": quantities}), max_size=3))


def rarely(draw: st.DrawFn) -> bool:
    """Each edge case in about one policy of eight, so most reach the later checks."""
    return draw(st.integers(0, 7)) == 0


@st.composite
def skus(draw: st.DrawFn) -> list[dict[str, Any]]:
    ids = draw(st.lists(st.sampled_from(SKU_IDS), max_size=6, unique=not rarely(draw)))
    out: list[dict[str, Any]] = []
    for sku in ids:
        kind = draw(st.sampled_from(["standard", "bundle", "bundle", "preorder"]))
        entry: dict[str, Any] = {"id": sku, "kind": kind}
        if kind == "bundle" or rarely(draw):
            entry["components"] = draw(components())
        out.append(entry)
    return out


@st.composite
def chain(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A bundle of a bundle of ... around the 16-level limit, maybe closed into a cycle."""
    depth = draw(st.integers(min_value=14, max_value=18))
    qty = draw(st.sampled_from([1, 2, 2**4]))
    out: list[dict[str, Any]] = [{"id": "B"}]
    for level in range(1, depth + 1):
        inner = f"D{level + 1}" if level < depth else draw(st.sampled_from(["B", "D1"]))
        out.append(
            {"id": f"D{level}", "kind": "bundle", "components": [{"sku": inner, "qty": qty}]}
        )
    return out


@st.composite
def policies(draw: st.DrawFn) -> str:
    if rarely(draw):
        tiers = draw(st.lists(tier_numbers, max_size=5))
    else:
        tiers = list(range(1, draw(st.one_of(st.integers(1, 4), st.integers(15, 18))) + 1))
    channel_count = (
        draw(st.sampled_from([0, 63, 64, 65])) if rarely(draw) else draw(st.integers(1, 4))
    )
    channel_ids = [f"c{i}" for i in range(channel_count)]
    if channel_count and rarely(draw):
        channel_ids[-1] = channel_ids[0]  # a duplicate
    declared = tiers or [1]
    channels = [
        {"id": cid, "tier": draw(tier_numbers if rarely(draw) else st.sampled_from(declared))}
        for cid in channel_ids
    ]
    location_ids = st.sampled_from(["wh", "store", "3pl"])
    locations = [
        {"id": lid, "kind": "warehouse"}
        for lid in draw(st.lists(location_ids, max_size=3, unique=not rarely(draw)))
    ]
    sku_entries = draw(chain() if rarely(draw) else skus())
    return to_toml(
        {
            "tiers": [{"tier": t, "protect": 1} for t in tiers],
            "locations": locations,
            "channels": channels,
            "skus": sku_entries,
        }
    )


def core_verdict(text: str) -> str | None:
    """The core's own verdict on the file resolved without any check: None = it loads."""
    document = msgspec.convert(tomllib.loads(text), PolicyFile)
    tables = Policy(document, text, "<policy>").tables_json()
    refusal = _core.check_policy(tables)
    try:
        _core.Core(tables)
    except InvsyncError as exc:
        assert refusal is not None, f"check_policy passed what Core refuses: {exc}"
        assert refusal[1] in str(exc)
        return refusal[1]
    assert refusal is None, f"check_policy refused what Core loads: {refusal}"
    return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies())
def test_the_file_and_the_core_give_the_same_verdict(text: str) -> None:
    try:
        policy = Policy.from_toml(text)
    except PolicyError as exc:
        assert core_verdict(text) == exc.message
        return
    assert core_verdict(text) is None
    engine = Engine(policy)
    engine.set_policy(policy)  # a reload of the same file, and so a restart, takes it too
