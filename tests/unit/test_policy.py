"""The policy file: refusals point at file, line and field; resolution follows SKU > class > channel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from invsync.engine import Engine
from invsync.errors import InvsyncError, PolicyError
from invsync.policy import Policy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE = EXAMPLES / "policy.toml"

BASE = """\
[defaults]
safety = 4

[[tiers]]
tier = 1
protect = 10

[[tiers]]
tier = 3
protect = 5

[[locations]]
id = "wh-3"
kind = "warehouse"

[[channels]]
id = "shopify"
tier = 1
cap = 200

[[channels]]
id = "amazon"
tier = 3
share = 0.5
buffer = 2
"""


def tables(text: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(Policy.from_toml(text).tables_json())
    return result


def refusal(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        Policy.from_toml(text, source="seller.toml")
    return caught.value


def last_line_with(text: str, needle: str) -> int:
    """1-based line of the last line containing `needle`, so tests do not hard-code numbers."""
    return max(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


# --- the example ---------------------------------------------------------------------------


def test_example_policy_loads_with_channels_in_file_order() -> None:
    policy = Policy.load(EXAMPLE)
    assert policy.source == str(EXAMPLE)
    assert policy.channels == (
        "shopify",
        "b2b-portal",
        "amazon",
        "walmart",
        "ebay",
        "tiktok",
        "shopee",
        "lazada",
    )
    assert policy.locations == ("wh-3", "vendor-acme", "3pl-east", "retail-01")
    assert policy.tiers == (1, 2, 3)
    assert policy.channel_tier("amazon") == 2
    assert policy.stale_after_s("tiktok") == 120.0
    assert policy.stale_after_s("shopify") == 300.0
    assert policy.sku_kind("KIT-B") == "bundle"
    assert policy.sku_kind("never-listed") == "standard"


def test_example_gives_sku_a_the_worked_example_numbers() -> None:
    """ATS 675 with amazon shown 300 and shopify 200, protect levels included."""
    resolved = json.loads(Policy.load(EXAMPLE).tables_json())
    sku_a = next(sku for sku in resolved["skus"] if sku["id"] == "A")
    assert sku_a["safety"] == 75
    ats = 1000 - 250 - sku_a["safety"]
    assert ats == 675
    profile = resolved["profiles"][sku_a["profile"]]
    channels = [channel["id"] for channel in resolved["channels"]]
    tiers = {channel["id"]: channel["tier"] for channel in resolved["channels"]}

    def shown(channel: str) -> int:
        settings = profile[channels.index(channel)]
        pool = max(0, ats - sum(resolved["protect"][: tiers[channel] - 1]))
        wanted = int(settings["share"] * pool) - settings["buffer"]
        return max(0, min(wanted, settings["cap"]))

    assert shown("amazon") == 300
    assert shown("shopify") == 200


def test_example_events_bring_sku_a_to_the_worked_example_state() -> None:
    """1000 on hand at wh-3, 100 inbound, 250 committed by orders still open."""
    policy = Policy.load(EXAMPLE)
    events = [json.loads(line) for line in (EXAMPLES / "events.jsonl").read_text().splitlines()]
    cancelled = {e["order_id"] for e in events if e["type"] == "order.cancelled"}
    of_a = [e for e in events if e.get("sku") == "A"]
    assert [(e["type"], e["location"]) for e in of_a] == [
        ("stock.set", "wh-3"),
        ("stock.inbound", "wh-3"),
    ]
    assert [e.get("on_hand", e.get("qty")) for e in of_a] == [1000, 100]
    ordered = [
        (e["channel"], line["qty"])
        for e in events
        if e["type"] == "order.placed" and e["order_id"] not in cancelled
        for line in e["lines"]
        if line["sku"] == "A"
    ]
    assert sum(qty for _, qty in ordered) == 250
    assert {channel for channel, _ in ordered} <= set(policy.channels)
    assert all(e["ts"].endswith("Z") for e in events)


def test_unreadable_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        Policy.load(tmp_path / "missing.toml")
    assert caught.value.field == "file"
    assert isinstance(caught.value, InvsyncError)


# --- tables --------------------------------------------------------------------------------


def test_tables_have_the_core_shape() -> None:
    resolved = tables(BASE)
    assert resolved["safety"] == 4
    assert resolved["non_inventory_qty"] == 999
    assert resolved["protect"] == [10, 0, 5]  # tier 2 is not declared
    assert resolved["locations"] == [
        {
            "id": "wh-3",
            "kind": "warehouse",
            "online": True,
            "priority": 0,
            "count_pct": 100,
            "release_gate": False,
        }
    ]
    assert resolved["channels"] == [
        {"id": "shopify", "tier": 1, "conditions": ["new"], "lag_s": None, "order_lag_s": 0.0},
        {"id": "amazon", "tier": 3, "conditions": ["new"], "lag_s": None, "order_lag_s": 0.0},
    ]
    assert resolved["profiles"] == [
        [
            {"share": 1.0, "cap": 200, "buffer": 0, "pause_below": 0, "auto": None},
            {"share": 0.5, "cap": None, "buffer": 2, "pause_below": 0, "auto": None},
        ]
    ]
    assert resolved["skus"] == []


PRECEDENCE = (
    BASE
    + """
[[classes]]
id = "bestseller"
safety = 10
channels = { amazon = { buffer = 3, cap = 80 } }

[[skus]]
id = "A"
class = "bestseller"
safety = 75
channels = { amazon = { cap = 300 } }

[[skus]]
id = "B"
class = "bestseller"

[[skus]]
id = "C"

[[skus]]
id = "PRE"
kind = "preorder"
sellable_from = "2026-12-01T01:00:00+01:00"
preorder_limit = 150

[[skus]]
id = "KIT"
kind = "bundle"
components = [{ sku = "B", qty = 2 }, { sku = "C", qty = 1 }]
"""
)


def test_sku_overrides_beat_class_overrides_beat_channel_settings() -> None:
    resolved = tables(PRECEDENCE)
    skus = {sku["id"]: sku for sku in resolved["skus"]}
    amazon_of = {name: resolved["profiles"][sku["profile"]][1] for name, sku in skus.items()}
    # A: cap from the SKU, buffer from the class, share from the channel
    assert amazon_of["A"] == {"share": 0.5, "cap": 300, "buffer": 3, "pause_below": 0, "auto": None}
    # B: the class alone
    assert amazon_of["B"] == {"share": 0.5, "cap": 80, "buffer": 3, "pause_below": 0, "auto": None}
    # C: no class, no overrides
    assert skus["C"]["profile"] == 0
    assert [skus[name]["safety"] for name in ("A", "B", "C")] == [75, 10, 4]


def test_sku_fields_resolve_to_core_values() -> None:
    skus = {sku["id"]: sku for sku in tables(PRECEDENCE)["skus"]}
    assert skus["PRE"]["sellable_from"] == 1_796_083_200_000_000  # 2026-12-01T00:00:00Z in µs
    assert skus["PRE"]["preorder_limit"] == 150
    assert skus["PRE"]["kind"] == "preorder"
    assert skus["KIT"]["components"] == [["B", 2], ["C", 1]]
    assert skus["C"]["sellable_from"] is None


def test_toml_datetime_values_are_accepted_like_strings() -> None:
    text = BASE + '[[skus]]\nid = "P"\nsellable_from = 2026-12-01T00:00:00Z\n'
    assert tables(text)["skus"][0]["sellable_from"] == 1_796_083_200_000_000


def test_identical_overrides_share_one_profile() -> None:
    text = BASE + "".join(
        f'[[skus]]\nid = "S{n}"\nchannels = {{ amazon = {{ cap = {cap} }} }}\n'
        for n, cap in enumerate([300, 300, 50, 300, 50])
    )
    text += '[[skus]]\nid = "same-as-channel"\nchannels = { shopify = { cap = 200 } }\n'
    resolved = tables(text)
    assert [sku["profile"] for sku in resolved["skus"]] == [1, 1, 2, 1, 2, 0]
    assert len(resolved["profiles"]) == 3


def test_hundred_thousand_skus_sharing_a_class_resolve_to_two_profiles() -> None:
    text = BASE + (
        '[[classes]]\nid = "c"\nsafety = 9\nchannels = { amazon = { cap = 30 } }\n'
        + "".join(f'[[skus]]\nid = "S{n}"\nclass = "c"\n' for n in range(100_000))
    )
    resolved = json.loads(Policy.from_toml(text).tables_json())
    assert len(resolved["skus"]) == 100_000
    assert len(resolved["profiles"]) == 2
    assert {sku["profile"] for sku in resolved["skus"]} == {1}


# --- refusals ------------------------------------------------------------------------------


def test_error_text_reads_source_line_field_message() -> None:
    text = BASE.replace("share = 0.5", "share = 1.5")
    error = refusal(text)
    assert (error.source, error.field) == ("seller.toml", 'channels["amazon"].share')
    assert error.line == last_line_with(text, "share = 1.5")
    assert str(error) == f"seller.toml:{error.line}: {error.field}: {error.message}"


@pytest.mark.parametrize(
    ("text", "field", "needle"),
    [
        pytest.param(
            BASE.replace("share = 0.5", "share = -0.1"),
            'channels["amazon"].share',
            "share = -0.1",
            id="share-below-zero",
        ),
        pytest.param(
            BASE.replace("buffer = 2", "buffer = -2"),
            'channels["amazon"].buffer',
            "buffer = -2",
            id="negative-buffer",
        ),
        pytest.param(
            BASE.replace("safety = 4", "safety = -1"),
            "defaults.safety",
            "safety = -1",
            id="negative-safety",
        ),
        pytest.param(
            BASE.replace("protect = 5", "protect = -5"),
            "tiers[1].protect",
            "protect = -5",
            id="negative-protect",
        ),
        pytest.param(
            BASE + '[[locations]]\nid = "v"\nkind = "dropship"\ncount_pct = 120\n',
            'locations["v"].count_pct',
            "count_pct = 120",
            id="count-pct-over-100",
        ),
        pytest.param(
            BASE.replace("buffer = 2", "bufer = 2"),
            'channels["amazon"].bufer',
            "bufer = 2",
            id="misspelt-key",
        ),
        pytest.param(
            BASE.replace('kind = "warehouse"', 'kind = "shed"'),
            'locations["wh-3"].kind',
            'kind = "shed"',
            id="unknown-location-kind",
        ),
        pytest.param(
            BASE + '[[channels]]\nid = "ebay"\ntier = 3\nconditions = []\n',
            'channels["ebay"].conditions',
            "conditions = []",
            id="empty-conditions",
        ),
        pytest.param(
            BASE + '[[skus]]\nid = "P"\nsellable_from = "2026-12-01T00:00:00"\n',
            'skus["P"].sellable_from',
            "sellable_from",
            id="sellable-from-without-tz",
        ),
        pytest.param(
            BASE + '[[skus]]\nid = "P"\nsellable_from = 2026-12-01T00:00:00\n',
            'skus["P"].sellable_from',
            "sellable_from",
            id="toml-local-datetime",
        ),
        pytest.param(
            BASE + '[[skus]]\nid = "K"\nkind = "bundle"\ncomponents = [\n'
            '  { sku = "K2", qty = 1 },\n  { sku = "K3", qty = 0 },\n]\n',
            'skus["K"].components["K3"].qty',
            'sku = "K3"',
            id="component-qty-zero-on-its-own-line",
        ),
        pytest.param(
            BASE
            + '[[skus]]\nid = "A"\nchannels = { shopify = { cap = 1 }, amazon = { cap = -3 } }\n',
            'skus["A"].channels["amazon"].cap',
            "cap = -3",
            id="negative-override-in-inline-table",
        ),
        pytest.param(
            BASE + '[[channels]]\nid = "ebay"\n',
            'channels["ebay"].tier',
            "[[channels]]",
            id="missing-required-key-points-at-table",
        ),
    ],
)
def test_schema_violations_name_field_and_line(text: str, field: str, needle: str) -> None:
    error = refusal(text)
    assert error.field == field
    assert error.line == last_line_with(text, needle)


@pytest.mark.parametrize(
    ("extra", "field", "needle", "message"),
    [
        pytest.param(
            '[[channels]]\nid = "walmart"\ntier = 2\n',
            'channels["walmart"].tier',
            "tier = 2",
            "unknown tier 2",
            id="unknown-tier",
        ),
        pytest.param(
            '[[channels]]\nid = "amazon"\ntier = 1\n',
            'channels["amazon"].id',
            'id = "amazon"',
            "duplicate id 'amazon'",
            id="duplicate-channel",
        ),
        pytest.param(
            "[[tiers]]\ntier = 3\n",
            "tiers[2].tier",
            "tier = 3",
            "duplicate tier 3",
            id="duplicate-tier",
        ),
        pytest.param(
            '[[classes]]\nid = "x"\nchannels = { amazom = { buffer = 1 } }\n',
            'classes["x"].channels["amazom"]',
            "amazom",
            "unknown channel 'amazom'",
            id="unknown-channel-in-class",
        ),
        pytest.param(
            '[[skus]]\nid = "A"\n\n[skus.channels.ebay]\ncap = 3\n',
            'skus["A"].channels["ebay"]',
            "[skus.channels.ebay]",
            "unknown channel 'ebay'",
            id="unknown-channel-in-sku-subtable",
        ),
        pytest.param(
            '[[skus]]\nid = "A"\nclass = "bestseler"\n',
            'skus["A"].class',
            'class = "bestseler"',
            "unknown class 'bestseler'",
            id="unknown-class",
        ),
        pytest.param(
            '[[skus]]\nid = "A"\n[[skus]]\nid = "A"\n',
            'skus["A"].id',
            'id = "A"',
            "duplicate id 'A'",
            id="duplicate-sku",
        ),
        pytest.param(
            '[[skus]]\nid = "B"\n[[skus]]\nid = "A"\ncomponents = [{ sku = "B", qty = 1 }]\n',
            'skus["A"].components',
            "components = ",
            "components on a 'standard' SKU",
            id="components-on-non-bundle",
        ),
        pytest.param(
            '[[skus]]\nid = "K"\nkind = "bundle"\n',
            'skus["K"].components',
            "[[skus]]",
            "a bundle needs at least one component",
            id="bundle-without-components",
        ),
        pytest.param(
            '[[skus]]\nid = "K"\nkind = "bundle"\ncomponents = [{ sku = "NOPE", qty = 1 }]\n',
            'skus["K"].components["NOPE"].sku',
            "components = ",
            "unknown component SKU 'NOPE'",
            id="unknown-component",
        ),
    ],
)
def test_reference_rules_name_field_and_line(
    extra: str, field: str, needle: str, message: str
) -> None:
    text = BASE + extra
    error = refusal(text)
    assert error.field == field
    assert error.line == last_line_with(text, needle)
    assert message in error.message


def test_bundle_cycle_is_refused_and_named() -> None:
    text = BASE + (
        '[[skus]]\nid = "X"\nkind = "bundle"\ncomponents = [{ sku = "Y", qty = 1 }]\n'
        '[[skus]]\nid = "Y"\nkind = "bundle"\ncomponents = [{ sku = "Z", qty = 2 }]\n'
        '[[skus]]\nid = "Z"\nkind = "bundle"\ncomponents = [{ sku = "X", qty = 1 }]\n'
    )
    error = refusal(text)
    assert error.message == "bundle cycle: X -> Y -> Z -> X"
    assert error.field == 'skus["X"].components'
    assert error.line == last_line_with(text, 'sku = "Y"')


def test_bundle_of_bundles_without_cycle_is_accepted() -> None:
    text = BASE + (
        '[[skus]]\nid = "B"\n'
        '[[skus]]\nid = "K1"\nkind = "bundle"\ncomponents = [{ sku = "B", qty = 2 }]\n'
        '[[skus]]\nid = "K2"\nkind = "bundle"\ncomponents = [{ sku = "K1", qty = 1 }, '
        '{ sku = "B", qty = 1 }]\n'
    )
    assert [sku["components"] for sku in tables(text)["skus"]] == [
        [],
        [["B", 2]],
        [["K1", 1], ["B", 1]],
    ]


def test_policy_without_channels_is_refused() -> None:
    error = refusal("[[tiers]]\ntier = 1\n")
    assert error.field == "channels"
    assert "at least one channel" in error.message


def test_toml_syntax_error_keeps_the_parser_line() -> None:
    text = BASE + "[[skus]]\nid = \n"
    error = refusal(text)
    assert error.field == "syntax"
    assert error.line == last_line_with(text, "id = ")
    assert error.source == "seller.toml"


# --- the core's limits: what a running core refuses, the file refuses too -----------------


def _tiers(count: int) -> str:
    return "".join(f"[[tiers]]\ntier = {tier}\n" for tier in range(1, count + 1))


def _chain(depth: int, qty: int = 1) -> str:
    """Bundle K1 holds K2 ... holds K<depth>, which holds the plain SKU B."""
    text = '[[skus]]\nid = "B"\n'
    for level in range(1, depth + 1):
        inner = f"K{level + 1}" if level < depth else "B"
        text += (
            f'[[skus]]\nid = "K{level}"\nkind = "bundle"\n'
            f'components = [{{ sku = "{inner}", qty = {qty} }}]\n'
        )
    return text


def test_sixteen_tiers_load_and_a_seventeenth_is_refused_at_its_line() -> None:
    assert Policy.from_toml(_tiers(16) + '[[channels]]\nid = "c"\ntier = 16\n').tiers[-1] == 16
    text = _tiers(17) + '[[channels]]\nid = "c"\ntier = 1\n'
    error = refusal(text)
    assert error.field == "tiers[16].tier"
    assert error.line == last_line_with(text, "tier = 17")
    assert "at most 16 tiers" in error.message


def test_a_channel_on_an_undeclared_tier_beyond_the_limit_is_refused() -> None:
    text = _tiers(1) + '[[channels]]\nid = "c"\ntier = 17\n'
    error = refusal(text)
    assert (error.field, error.line) == ('channels["c"].tier', last_line_with(text, "tier = 17"))


def test_sixty_five_channels_are_refused_at_the_sixty_fifth() -> None:
    channels = "".join(f'[[channels]]\nid = "c{i}"\ntier = 1\n' for i in range(65))
    assert len(Policy.from_toml(_tiers(1) + channels.rsplit("[[channels]]", 1)[0]).channels) == 64
    error = refusal(_tiers(1) + channels)
    assert error.field == 'channels["c64"]'
    assert error.line == last_line_with(_tiers(1) + channels, "[[channels]]")
    assert "at most 64" in error.message


def test_bundles_nest_sixteen_levels_and_no_deeper() -> None:
    Engine(Policy.from_toml(BASE + _chain(16)))
    text = BASE + _chain(17)
    error = refusal(text)
    assert error.field == 'skus["K1"].components'
    assert "nests 17 levels deep" in error.message


def test_bundle_quantities_that_overflow_64_bits_are_refused() -> None:
    Engine(Policy.from_toml(BASE + _chain(1, qty=2**63 - 1)))
    text = BASE + _chain(2, qty=2**32)
    error = refusal(text)
    assert error.field == 'skus["K1"].components'
    assert "overflow" in error.message


def test_a_component_listed_twice_is_refused() -> None:
    text = BASE + (
        '[[skus]]\nid = "B"\n[[skus]]\nid = "K"\nkind = "bundle"\n'
        'components = [{ sku = "B", qty = 1 }, { sku = "B", qty = 2 }]\n'
    )
    error = refusal(text)
    assert error.field == 'skus["K"].components["B"].sku'
    assert "listed twice" in error.message
