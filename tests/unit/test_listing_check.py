"""`invsync listing check`: each channel's findings on a catalog, at the line and field a
seller fixes, with the platform's rule and its source; a bad line does not stop the rest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from invsync.catalog.check import trade_number_problem
from invsync.catalog.rules import listing_rules
from invsync.cli import main
from invsync.marketplaces.listing_rules import PLATFORM_LISTINGS
from invsync.policy import Policy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
POLICY = EXAMPLES / "policy.toml"

# A product every platform of the example policy takes as it is.
CLEAN: dict[str, Any] = {
    "sku": "A",
    "title": "Aurora Wireless Earbuds with Charging Case",
    "description": "True wireless earbuds with a charging case.",
    "brand": "Aurora",
    "category": "Electronics > Audio",
    "images": ["https://cdn.example.com/a/1.jpg"],
    "price": 49.0,
    "currency": "USD",
    "identifiers": {"upc": "036000291452"},
}


def check(tmp_path: Path, *lines: str | dict[str, Any]) -> tuple[int, dict[str, Any]]:
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text(
        "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    )
    return run(catalog)


def run(catalog: Path) -> tuple[int, dict[str, Any]]:
    import contextlib
    import io

    out = io.BytesIO()
    wrapper = io.TextIOWrapper(out, encoding="utf-8")
    with contextlib.redirect_stdout(wrapper):
        status = main(
            ["listing", "check", "--catalog", str(catalog), "--policy", str(POLICY), "--json"]
        )
        wrapper.flush()
    return status, json.loads(out.getvalue())


def findings(report: dict[str, Any]) -> set[tuple[str, str, int, str, str]]:
    """(where, severity, line, sku, field) of every finding; where = a channel or "*"."""
    found = set()
    groups = [("*", report["every_channel"])]
    groups += [(channel["channel"], channel) for channel in report["channels"]]
    for where, group in groups:
        for severity in ("errors", "warnings"):
            for f in group[severity]:
                found.add((where, f["severity"], f["line"], f["sku"], f["field"]))
    return found


def test_the_example_catalog_gets_exactly_the_findings_a_seller_fixes() -> None:
    status, report = run(EXAMPLES / "catalog.jsonl")
    assert status == 1
    currency = {
        (channel, "error", 3, "CASE-B", "currency")
        for channel in ("shopify", "amazon", "walmart", "ebay", "tiktok", "shopee", "lazada")
    }
    assert findings(report) == currency | {
        ("*", "error", 5, "PRE-X", "identifiers.ean"),
        ("*", "error", 9, "", "line"),
        ("*", "warning", 8, "C", "channels.amazn"),
        ("amazon", "error", 4, "KIT-B", "brand"),
        ("amazon", "error", 6, "GIFT-50", "identifiers"),
        ("amazon", "error", 7, "OLD-7", "title"),
        ("amazon", "warning", 1, "A", "title"),
        ("amazon", "warning", 2, "B", "title"),
        ("walmart", "error", 6, "GIFT-50", "identifiers"),
        ("ebay", "error", 2, "B", "title"),
        ("tiktok", "error", 7, "OLD-7", "images"),
        ("tiktok", "warning", 6, "GIFT-50", "title"),
        ("shopee", "error", 10, "TEE", "options"),
        ("lazada", "error", 4, "KIT-B", "brand"),
        ("lazada", "error", 7, "OLD-7", "images"),
        ("lazada", "error", 10, "TEE", "options"),
    }
    channels = {channel["channel"]: channel for channel in report["channels"]}
    ebay_title = channels["ebay"]["errors"][0]
    assert ebay_title["problem"] == "84 characters" and ebay_title["limit"] == 80
    assert ebay_title["rule"] == "eBay: at most 80 characters"
    assert ebay_title["source"].startswith("https://developer.ebay.com/")
    # The generic B2B channel has no listing rules; only the unreadable product waits.
    assert channels["b2b-portal"]["platform"] == "generic"
    assert channels["b2b-portal"]["errors"] == []
    assert "PRE-X" not in channels["b2b-portal"]["ready"]
    assert channels["shopify"]["ready"] == ["A", "B", "KIT-B", "GIFT-50", "OLD-7", "C", "TEE"]
    assert [step["step"] for step in report["push_order"]] == ["content", "price", "quantity"]


def test_a_line_that_is_not_json_or_not_an_object_is_an_error_and_the_rest_is_checked(
    tmp_path: Path,
) -> None:
    long_title = {**CLEAN, "sku": "B", "title": "x" * 81, "identifiers": {"ean": "4006381333931"}}
    status, report = check(tmp_path, CLEAN, '{"sku": "D", "title": ', "[1, 2]", long_title)
    assert status == 1
    assert findings(report) == {
        ("*", "error", 2, "", "line"),
        ("*", "error", 3, "", "line"),
        ("ebay", "error", 4, "B", "title"),
        ("amazon", "warning", 4, "B", "title"),
    }


def test_a_clean_catalog_exits_zero_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text(json.dumps(CLEAN) + "\n\n")
    assert main(["listing", "check", "--catalog", str(catalog), "--policy", str(POLICY)]) == 0
    out = capsys.readouterr().out
    assert "ebay (eBay): 1 of 1 products ready\n" in out
    assert out.rstrip().endswith("0 errors, 0 warnings")


def test_a_channel_override_changes_what_that_channel_shows_and_nothing_else(
    tmp_path: Path,
) -> None:
    title = "Aurora Wireless Earbuds with Active Noise Cancelling and a Thirty Hour Charging Case"
    without = {**CLEAN, "title": title}
    with_override = {**without, "channels": {"ebay": {"title": "Aurora ANC Earbuds 30h Case"}}}
    assert ("ebay", "error", 1, "A", "title") in findings(check(tmp_path, without)[1])
    status, report = check(tmp_path, with_override)
    assert status == 0
    assert findings(report) == {("amazon", "warning", 1, "A", "title")}


def test_a_shared_field_set_for_one_channel_is_refused_at_its_field(tmp_path: Path) -> None:
    line = {**CLEAN, "channels": {"amazon": {"brand": "Other"}}}
    status, report = check(tmp_path, line)
    assert status == 1
    assert findings(report) == {("*", "error", 1, "A", "channels.amazon.brand")}


def test_a_misspelt_or_mistyped_key_is_refused_at_its_field(tmp_path: Path) -> None:
    status, report = check(
        tmp_path,
        {**CLEAN, "titel": "x"},
        {**CLEAN, "sku": "B", "price": -3},
        {**CLEAN, "sku": "C", "channels": {"ebay": {"price": "cheap"}}},
    )
    assert status == 1
    assert findings(report) == {
        ("*", "error", 1, "A", "titel"),
        ("*", "error", 2, "B", "price"),
        ("*", "error", 3, "C", "channels.ebay.price"),
    }


def test_variants_need_a_value_for_each_option_and_distinct_values(tmp_path: Path) -> None:
    tee = {
        **CLEAN,
        "sku": "TEE",
        "identifiers": {},
        "options": ["Color", "Size"],
        "variants": [
            {"sku": "TEE-1", "options": {"Color": "Black", "Size": "M"}},
            {"sku": "TEE-2", "options": {"Color": "Black"}},
            {"sku": "TEE-3", "options": {"Color": "Black", "Size": "M"}},
            {"sku": "A", "options": {"Color": "White", "Size": "M", "Fit": "Slim"}},
        ],
    }
    status, report = check(tmp_path, CLEAN, tee)
    assert status == 1
    shared = {f for f in findings(report) if f[0] == "*"}
    assert shared == {
        ("*", "error", 2, "TEE", "variants[1].options"),
        ("*", "error", 2, "TEE", "variants[2].options"),
        ("*", "error", 2, "TEE", "variants[3].options"),
        ("*", "error", 2, "TEE", "variants[3].sku"),
    }
    # Each variant is a SKU of its own: Amazon and Walmart want a GTIN for every one.
    amazon = next(c for c in report["channels"] if c["channel"] == "amazon")
    assert [f["problem"] for f in amazon["errors"]] == [
        "no GTIN, UPC, EAN or ISBN for TEE-1, TEE-2, TEE-3, A"
    ]


def test_a_new_listing_needs_its_price_before_its_quantity_on_every_platform(
    tmp_path: Path,
) -> None:
    unpriced = {key: value for key, value in CLEAN.items() if key != "price"}
    status, report = check(tmp_path, unpriced)
    assert status == 1
    platforms = ("shopify", "amazon", "walmart", "ebay", "tiktok", "shopee", "lazada")
    assert findings(report) == {(p, "error", 1, "A", "price") for p in platforms}


def test_trade_item_numbers_are_checked_by_length_digits_and_check_digit() -> None:
    assert trade_number_problem("upc", "036000291452") is None
    assert trade_number_problem("ean", "4006381333931") is None
    assert trade_number_problem("isbn", "0306406152") is None
    assert trade_number_problem("upc", "036000291453") == "check digit 3, should be 2"
    assert trade_number_problem("isbn", "0306406153") == "check digit 3, should be 2"
    assert trade_number_problem("gtin", "03600029145") == "11 digits; a GTIN has 8, 12, 13 or 14"
    assert trade_number_problem("ean", "40063813339X1") is not None


def test_an_unreadable_catalog_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere.jsonl"
    assert main(["listing", "check", "--catalog", str(missing), "--policy", str(POLICY)]) == 1
    assert f"invsync listing check: {missing}:0: file: " in capsys.readouterr().err


def test_listing_rules_lists_each_policy_channel_with_its_platform_rules() -> None:
    rules = {c.channel: c for c in listing_rules(Policy.load(POLICY))}
    assert list(rules) == list(Policy.load(POLICY).channels)
    assert rules["b2b-portal"].platform == "generic" and rules["b2b-portal"].rows == ()
    ebay = {(row.field, row.rule): row for row in rules["ebay"].rows}
    title = ebay[("title", "at most 80 characters")]
    assert title.scope == "per channel" and title.severity == "error" and title.limit == 80
    assert ebay[("options", "at most 5 options")].scope == "shared"
    assert rules["shopee"].unknown  # Shopee's limits are per category: said, not invented


def test_every_documented_figure_has_a_page() -> None:
    for listing in PLATFORM_LISTINGS.values():
        for rule in listing.rules:
            assert rule.source.startswith("https://"), (listing.name, rule)
            assert (rule.limit is None) == (rule.check in ("required", "forbidden_chars"))


def test_one_trade_item_number_on_two_skus_is_an_error_at_the_second(tmp_path: Path) -> None:
    status, report = check(tmp_path, CLEAN, {**CLEAN, "sku": "B"})
    assert status == 1
    duplicate = report["every_channel"]["errors"]
    assert [(f["line"], f["field"], f["problem"]) for f in duplicate] == [
        (2, "identifiers.upc", "036000291452 is already the number of A (line 1)")
    ]


def test_a_catalog_saved_with_a_byte_order_mark_and_crlf_lines_reads_as_any_other(
    tmp_path: Path,
) -> None:
    catalog = tmp_path / "catalog.jsonl"
    second = {**CLEAN, "sku": "B", "identifiers": {"ean": "4006381333931"}}
    catalog.write_bytes(
        b"\xef\xbb\xbf"
        + json.dumps(CLEAN).encode()
        + b"\r\n"
        + json.dumps(second).encode()
        + b"\r\n"
    )
    status, report = run(catalog)
    assert (status, report["products"], findings(report)) == (0, 2, set())
