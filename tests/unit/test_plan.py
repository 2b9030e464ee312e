"""`invsync plan`: the example policy's playbook carries the figures a team acts on,
a velocity file turns automatic buffers into numbers and checks every buffer against
its lag, and bad input is refused at its file, line and column."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from invsync.catalog.rules import listing_rules
from invsync.cli import main
from invsync.plan import build_plan
from invsync.plan.document import Document, Heading, Section, Table
from invsync.plan.markdown import render
from invsync.plan.velocity import read_velocity
from invsync.policy import Policy

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_POLICY = ROOT / "examples" / "policy.toml"
DAY = date(2026, 12, 5)


def _plan(velocity_csv: str | None = None, tmp_path: Path | None = None) -> Document:
    policy = Policy.load(EXAMPLE_POLICY)
    velocity = None
    if velocity_csv is not None:
        assert tmp_path is not None
        path = tmp_path / "velocity.csv"
        path.write_text(velocity_csv)
        velocity = read_velocity(path, policy.channels)
    return build_plan(policy, velocity, DAY)


def _section(document: Document, title: str) -> Section:
    return next(section for section in document.sections if section.title == title)


def _table(section: Section, first_header: str, second_header: str) -> dict[str, dict[str, str]]:
    """The section's table whose header starts with these two names, by first cell."""
    table = next(t for t in section.tables() if t.header[:2] == (first_header, second_header))
    return {row[0]: table.row(row[0]) for row in table.rows}


def _table_under(section: Section, heading: str) -> Table:
    """The first table after the sub-heading `heading`."""
    at = section.blocks.index(Heading(heading))
    return next(b for b in section.blocks[at:] if isinstance(b, Table))


def test_the_example_playbook_has_four_sections_in_order(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["plan", "--policy", str(EXAMPLE_POLICY)]) == 0
    out = capsys.readouterr().out
    headings = [line for line in out.splitlines() if line.startswith("## ")]
    assert headings == [
        "## 1. Inventory matrix",
        "## 2. Pricing matrix",
        "## 3. Listing rules in force",
        "## 4. Risk checklist",
    ]
    assert out.startswith(f"# Channel playbook: {EXAMPLE_POLICY}\n")
    assert "### How to read this" in out


def test_the_inventory_matrix_shows_each_channels_rules_from_the_policy() -> None:
    inventory = _section(_plan(), "Inventory matrix")
    channels = _table(inventory, "channel", "tier")
    assert channels["amazon"] == {
        "channel": "amazon",
        "tier": "2",
        "share": "0.8",
        "cap": "none",
        "buffer": "auto",
        "pause": "never",
        "sells": "new",
        "stale feed": "`feed_stale` alert after 300 s without an ack",
    }
    assert channels["shopify"]["cap"] == "200"
    assert channels["tiktok"]["pause"] == "shown 0 while ATS < 40"
    assert channels["ebay"]["sells"] == "new, used, refurbished"
    assert channels["shopee"]["buffer"] == "3"
    assert channels["b2b-portal"]["stale feed"].endswith("after 900 s without an ack")

    automatic = _table(inventory, "channel", "lag_s")
    assert set(automatic) == {"amazon", "walmart", "tiktok"}
    assert automatic["walmart"] == {
        "channel": "walmart",
        "lag_s": "1,800 s",
        "order_lag_s": "300 s",
        "risk": "1.5",
        "buffer_min": "2",
        "buffer_max": "none",
    }
    assert automatic["tiktok"]["risk"] == "2"

    tiers = _table(inventory, "tier", "protect (only tiers ≤ it may take)")
    assert tiers["1"]["protect (only tiers ≤ it may take)"] == "20"
    assert tiers["3"]["channels"] == "ebay, tiktok, shopee, lazada"


def test_the_inventory_matrix_shows_overrides_and_safety_stock_per_class_and_sku() -> None:
    inventory = _section(_plan(), "Inventory matrix")
    overrides = next(t for t in inventory.tables() if t.header[0] == "applies to")
    assert ("SKU A", "amazon", "cap 300") in overrides.rows
    assert ("class bestseller (A, B)", "amazon", "buffer 3") in overrides.rows
    assert ("class clearance (CASE-B)", "walmart", "share 1, buffer 0") in overrides.rows

    safety = _table(inventory, "SKU or class", "safety")
    assert safety["every SKU not listed"]["safety"] == "5"
    assert safety["SKU A"] == {"SKU or class": "SKU A", "safety": "75", "from": "the SKU"}
    assert safety["SKU B"] == {"SKU or class": "SKU B", "safety": "10", "from": "class bestseller"}
    assert safety["SKU CASE-B"]["safety"] == "0"
    assert safety["SKU OLD-7"] == {"SKU or class": "SKU OLD-7", "safety": "5", "from": "defaults"}
    assert safety["SKU GIFT-50"]["safety"] == "none needed"


def test_the_pricing_matrix_shows_each_channels_price_rules() -> None:
    pricing = _section(_plan(), "Pricing matrix")
    channels = _table(pricing, "channel", "markup")
    assert channels["amazon"] == {
        "channel": "amazon",
        "markup": "0%",
        "fees": "15%",
        "rounding": "up to .99",
        "max change": "50%",
        "margin floor": "10%",
        "parity": "not above the lowest other channel",
        "max promotion discount": "50%",
    }
    assert channels["ebay"]["markup"] == "8%"
    assert channels["shopify"]["max change"] == "no limit"
    assert channels["tiktok"]["max promotion discount"] == "60%"
    assert "b2b-portal" not in channels
    text = render(Document("t", (), (pricing,)))
    assert "Not priced by invsync (no `price` table): b2b-portal." in text
    overrides = _table(pricing, "applies to", "channel")
    assert overrides["class clearance (CASE-B)"]["changes"] == "markup_pct 0, margin_floor_pct 0"


def _small_policy(tmp_path: Path, channel: str) -> Policy:
    path = tmp_path / "policy.toml"
    path.write_text("[[tiers]]\ntier = 1\n\n[[channels]]\n" + channel)
    return Policy.load(path)


def test_an_automatic_buffer_set_by_a_sku_shows_its_channels_inputs(tmp_path: Path) -> None:
    policy = _small_policy(
        tmp_path,
        'id = "walmart"\ntier = 1\nlag_s = 1800\n\n'
        '[[skus]]\nid = "X"\nchannels = { walmart = { buffer = "auto", risk = 2.0 } }\n',
    )
    inventory = _section(build_plan(policy, None, DAY), "Inventory matrix")
    assert _table(inventory, "channel", "lag_s")["walmart"]["lag_s"] == "1,800 s"
    assert _table(inventory, "applies to", "channel")["SKU X"]["changes"] == "buffer auto, risk 2"


def test_a_policy_without_price_tables_says_so(tmp_path: Path) -> None:
    policy = _small_policy(tmp_path, 'id = "amazon"\ntier = 1\n')
    pricing = _section(build_plan(policy, None, DAY), "Pricing matrix")
    assert "No pricing rules in this policy" in render(Document("t", (), (pricing,)))
    assert not pricing.tables()


def test_an_amazon_price_without_parity_or_margin_floor_is_on_the_risk_list(
    tmp_path: Path,
) -> None:
    policy = _small_policy(tmp_path, 'id = "amazon"\ntier = 1\nprice = { fee_pct = 15 }\n')
    checks = _section(build_plan(policy, None, DAY), "Risk checklist").checks()
    prices = [c for c in checks if c.subject == "amazon prices"]
    assert len(prices) == 2
    assert "Featured Offer" in prices[0].finding and "not_above_lowest" in prices[0].action
    assert "below cost after the channel's 15% fees" in prices[1].finding
    example = _section(_plan(), "Risk checklist").checks()
    assert not [c for c in example if c.subject.endswith(" prices")]


def test_the_listing_section_prints_the_rules_listing_check_applies_per_platform() -> None:
    listing = _section(_plan(), "Listing rules in force")
    text = render(Document("t", (), (listing,)))
    assert "### eBay (ebay)" in text
    assert "### Other channels (b2b-portal)" in text
    ebay = _table_under(listing, "eBay (ebay)")
    assert ("title", "per channel", "at most 80 characters") in [row[:3] for row in ebay.rows]
    for channel in listing_rules(Policy.load(EXAMPLE_POLICY)):
        for row in channel.rows:
            assert f"| {row.field} | {row.scope} |" in text
    assert "content, then price, then quantity" in text


def test_the_risk_checklist_of_the_example_without_velocity() -> None:
    checks = {c.subject: c for c in _section(_plan(), "Risk checklist").checks()}
    assert "not checked" in checks["Buffers against lags"].finding
    assert "class clearance (CASE-B)" in checks
    assert "SKU A" not in checks and "SKUs not listed" not in checks
    assert "lag_s 1,800 s" in checks["walmart"].finding
    assert checks["shopify, b2b-portal, shopee, lazada"].finding.startswith("no `order_lag_s`")
    assert "< 2.5%" in checks["amazon cancellations"].finding
    assert "< 2%" in checks["walmart cancellations"].finding
    assert "≤ 2%" in checks["ebay cancellations"].finding
    assert "tiktok cancellations" not in checks


#: Flash sale on A: 0.5/s on tiktok, 0.1/s on amazon (360 a hour).
FLASH = "sku,channel,units_per_s,units_per_day\nA,tiktok,0.5,\nA,amazon,,8640\n"


def test_velocity_turns_automatic_buffers_into_numbers(tmp_path: Path) -> None:
    inventory = _section(_plan(FLASH, tmp_path), "Inventory matrix")
    table = next(t for t in inventory.tables() if t.header[:2] == ("SKU", "channel"))
    rows = {(row[0], row[1]): dict(zip(table.header, row, strict=True)) for row in table.rows}
    # walmart: ceil(1.5 × (0.5 × (1800 + 30) + 0.1 × (1800 + 120))) = ceil(1660.5)
    assert rows["A", "walmart"]["buffer"] == "1,661"
    assert rows["A", "walmart"]["how"] == (
        "buffer 1661 = ceil((0.1/s × (1800 s + 120 s) + 0.5/s × (1800 s + 30 s)) × 1.5)"
    )
    # tiktok: 2 × (0.5 × (60 + 30) + 0.1 × (60 + 120)) = 126
    assert rows["A", "tiktok"]["buffer"] == "126"
    # amazon: bestseller's static 3 overrides the automatic buffer; 0.5 × 330 + 0.1 × 420
    assert rows["A", "amazon"]["buffer"] == "3"
    assert rows["A", "amazon"]["sold during the lag"] == "207"
    assert rows["A", "amazon"]["how"] == "static"
    assert rows["A", "ebay"]["sold during the lag"] == "lag_s not given"

    without = _section(_plan(), "Inventory matrix")
    assert not [t for t in without.tables() if t.header[:2] == ("SKU", "channel")]


def test_a_kit_is_held_back_by_its_parts_sales_as_the_core_holds_it(tmp_path: Path) -> None:
    # KIT-B is one B and two CASE-B. Cases sell alone on tiktok and the kit sells on
    # amazon: the kit's amazon buffer is the larger of its own and the cases' in kits,
    # and the cases' rates count the kit's sales too.
    csv = "sku,channel,units_per_s\nCASE-B,tiktok,0.4\nKIT-B,amazon,0.01\n"
    inventory = _section(_plan(csv, tmp_path), "Inventory matrix")
    table = next(t for t in inventory.tables() if t.header[:2] == ("SKU", "channel"))
    rows = {(row[0], row[1]): dict(zip(table.header, row, strict=True)) for row in table.rows}
    case = int(rows["CASE-B", "amazon"]["buffer"])
    kit = int(rows["KIT-B", "amazon"]["buffer"])
    # CASE-B: 0.4/s on tiktok and 2 × 0.01/s through kits on amazon.
    assert "0.02/s × (300 s + 120 s)" in rows["CASE-B", "amazon"]["how"]
    assert abs(kit - case / 2) <= 1, (kit, case)
    assert rows["KIT-B", "amazon"]["how"].endswith("(from CASE-B's sales, in kits of 2)")
    # B sells only through the kit: its rates are the kit's. 19.2 units expected while
    # walmart's number is late: the risk's 29, their clumps' p99 30.
    assert rows["B", "walmart"]["how"] == (
        "buffer 30 = max(ceil(0.01/s × (1800 s + 120 s) × 1.5), p99 30)"
    )


def test_velocity_puts_buffers_shorter_than_their_lag_on_the_risk_list(tmp_path: Path) -> None:
    checks = {c.subject: c for c in _section(_plan(FLASH, tmp_path), "Risk checklist").checks()}
    assert "Buffers against lags" not in checks
    amazon = checks["amazon · A"]
    assert "sell 207 units during amazon's 300 s lag" in amazon.finding
    assert "its buffer is 3" in amazon.finding
    assert "set by class bestseller" in amazon.action and "at least 207" in amazon.action
    assert "storefront" not in amazon.action
    assert "storefront whose checkout reserves" in checks["shopify · A"].action
    # shopify (2 s lag, buffer 0): 0.5 × 32 + 0.1 × 122 = 28.2 → 29 units
    assert "sell 29 units" in checks["shopify · A"].finding
    assert "walmart · A" not in checks and "tiktok · A" not in checks
    assert "b2b-portal, ebay, shopee, lazada" in checks


def test_a_capped_automatic_buffer_short_of_its_lag_asks_for_a_higher_buffer_max(
    tmp_path: Path,
) -> None:
    policy_path = tmp_path / "policy.toml"
    policy_path.write_text(
        "[[tiers]]\ntier = 1\n\n"
        '[[channels]]\nid = "walmart"\ntier = 1\nbuffer = "auto"\nbuffer_max = 10\n'
        "lag_s = 1800\n"
    )
    velocity = tmp_path / "velocity.csv"
    velocity.write_text("sku,channel,units_per_s\nX,walmart,0.1\n")
    policy = Policy.load(policy_path)
    plan = build_plan(policy, read_velocity(velocity, policy.channels), DAY)
    check = next(c for c in _section(plan, "Risk checklist").checks() if c.subject == "walmart · X")
    assert "sell 180 units" in check.finding and "its buffer is 10" in check.finding
    assert "raise buffer_max (set by the channel) to at least 180" in check.action


def test_plan_out_writes_the_markdown_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "playbook.md"
    velocity = ROOT / "examples" / "velocity.csv"
    args = ["plan", "--policy", str(EXAMPLE_POLICY), "--velocity", str(velocity)]
    assert main([*args, "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"{out}: playbook of {EXAMPLE_POLICY} written"
    text = out.read_text()
    assert "## 4. Risk checklist" in text
    assert f"at the peak rates of `{velocity}`" in text


def test_plan_refuses_a_bad_policy_at_its_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[tiers]]\ntier = 1\n\n[[channels]]\nid = "amazon"\ntier = 1\nshare = 1.5\n')
    assert main(["plan", "--policy", str(bad)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f'invsync plan: {bad}:7: channels["amazon"].share: ' in captured.err


@pytest.mark.parametrize(
    ("csv", "line", "column"),
    [
        ("sku,channel,units_per_s\nA,amazon,0.1\nA,walmart,fast\n", 3, "units_per_s"),
        ("sku,channel,units_per_s\nA,etsy,0.1\n", 2, "channel"),
        ("sku,channel,units_per_s\n,amazon,0.1\n", 2, "sku"),
        ("sku,channel,units_per_s,units_per_day\nA,amazon,0.1,100\n", 2, "units_per_day"),
        ("sku,channel,units_per_s,units_per_day\nA,amazon,,\n", 2, "units_per_s"),
        ("sku,channel,units_per_day\n\nA,amazon,-4\n", 3, "units_per_day"),
        ("sku,channel,units_per_s\nA,amazon,nan\n", 2, "units_per_s"),
        ("sku,channel,units_per_s\nA,amazon,1e9\n", 2, "units_per_s"),
        ("sku,channel,units_per_s\nA,amazon,1\nB,amazon,1\nA,amazon,2\n", 4, "channel"),
        ("sku,channel,units_per_s\nA,amazon\n", 2, "row"),
        ("sku,units_per_s\nA,1\n", 1, "channel"),
        ("sku,channel\nA,amazon\n", 1, "units_per_s"),
        ("sku,channel,units_per_hour\nA,amazon,1\n", 1, "units_per_hour"),
    ],
)
def test_plan_refuses_a_bad_velocity_line_naming_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], csv: str, line: int, column: str
) -> None:
    velocity = tmp_path / "velocity.csv"
    velocity.write_text(csv)
    args = ["plan", "--policy", str(EXAMPLE_POLICY), "--velocity", str(velocity)]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"invsync plan: {velocity}:{line}: {column}: ")


def test_readme_plan_excerpt_is_real_output(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every line of the README's excerpt is a line `invsync plan` prints today."""
    readme = (ROOT / "README.md").read_text()
    excerpt = readme.split("<!-- plan excerpt -->", 2)[1].split("```markdown", 1)[1]
    excerpt = excerpt.split("```", 1)[0]
    monkeypatch.chdir(ROOT)  # the README's paths
    assert (
        main(["plan", "--policy", "examples/policy.toml", "--velocity", "examples/velocity.csv"])
        == 0
    )
    printed = set(capsys.readouterr().out.splitlines())
    lines = [line for line in excerpt.splitlines() if line.strip() and line.strip() != "..."]
    assert lines, "the README excerpt is empty"
    assert [line for line in lines if line not in printed] == []
