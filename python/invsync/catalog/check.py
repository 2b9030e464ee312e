"""Checking a catalog against the listing rules of a policy's channels.

Two kinds of findings. Those on what is shared (the line itself, options and variants,
trade item numbers) hold for every channel and are reported once. Those on what a
platform requires are reported per channel, against the content that channel shows
(the line's, or its `channels.<id>` override). A channel with no platform's rules is
checked for nothing beyond the shared findings.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from invsync.catalog.findings import CATALOG_FORMAT, Finding
from invsync.catalog.read import Catalog, CatalogLine
from invsync.catalog.rules import describe, platform_name, platform_of
from invsync.catalog.schema import ChannelContent, Identifiers, Product
from invsync.marketplaces.listing_rules import PLATFORM_LISTINGS, ListingRule
from invsync.policy import Policy

__all__ = ["CatalogCheck", "ChannelCheck", "check_catalog", "trade_number_problem"]

GS1_CHECK_DIGIT: Final = "https://www.gs1.org/services/how-calculate-check-digit-manually"
PUSH_ORDER_DOC: Final = f"{CATALOG_FORMAT}#push-order"
_GTIN_LENGTHS: Final = (8, 12, 13, 14)


@dataclass(slots=True)
class ChannelCheck:
    """The findings of one channel, and the SKUs it can take a new listing for now."""

    channel: str
    platform: str
    platform_name: str
    findings: list[Finding] = field(default_factory=list)
    ready: list[str] = field(default_factory=list)


@dataclass(slots=True)
class CatalogCheck:
    """Every finding of a catalog against a policy."""

    catalog: str
    policy: str
    products: int
    every_channel: list[Finding]
    channels: list[ChannelCheck]

    def count(self, severity: str) -> int:
        """Findings of `severity` ("error" or "warning") across the whole check."""
        found = [*self.every_channel, *(f for c in self.channels for f in c.findings)]
        return sum(1 for finding in found if finding.severity == severity)


def check_catalog(catalog: Catalog, policy: Policy) -> CatalogCheck:
    """The catalog's findings, shared and per channel, in catalog line order."""
    shared = _shared_findings(catalog, policy.channels)
    broken = {f.sku for f in shared if f.severity == "error"}
    channels = [_channel_check(channel, catalog.lines, broken) for channel in policy.channels]
    return CatalogCheck(catalog.source, policy.source, len(catalog.lines), shared, channels)


def _shared_findings(catalog: Catalog, channels: tuple[str, ...]) -> list[Finding]:
    """What holds for every channel: unreadable lines, structure, SKUs and numbers."""
    found = [*catalog.unreadable]
    for line in catalog.lines:
        found.extend(_structure(line))
        found.extend(_unknown_channels(line, channels))
    found.extend(_catalog_wide(catalog.lines))
    return sorted(found, key=lambda finding: finding.line)


def _channel_check(channel: str, lines: list[CatalogLine], broken: set[str]) -> ChannelCheck:
    """One channel's findings; a product is ready there when neither they nor the shared
    findings (`broken`: SKUs with a shared error) hold an error for it."""
    platform = platform_of(channel)
    result = ChannelCheck(channel, platform, platform_name(platform))
    listing = PLATFORM_LISTINGS.get(platform)
    for line in lines:
        found: list[Finding] = []
        if listing is not None:
            content = line.product.content(channel)
            found.extend(_platform_findings(line, content, listing.rules, result.platform_name))
            found.extend(_push_order(line, content))
        result.findings.extend(found)
        if line.product.sku not in broken and all(f.severity != "error" for f in found):
            result.ready.append(line.product.sku)
    return result


def _platform_findings(
    line: CatalogLine, content: ChannelContent, rules: tuple[ListingRule, ...], name: str
) -> Iterator[Finding]:
    product = line.product
    for rule in rules:
        for where, problem in _breaks(rule, product, content):
            yield Finding(
                rule.severity,
                line.line,
                product.sku,
                where,
                problem,
                f"{name}: {describe(rule)}",
                rule.source,
                rule.limit,
                rule.note,
            )


def _breaks(
    rule: ListingRule, product: Product, content: ChannelContent
) -> Iterator[tuple[str, str]]:
    """(field, what it has) for each place `product`, as `content` shows it, breaks `rule`."""
    limit = rule.limit or 0
    match rule.check:
        case "required":
            yield from _missing(rule.field, product, content)
        case "max_chars":
            for where, text in _texts(rule.field, product, content):
                if len(text) > limit:
                    yield where, f"{len(text)} characters"
        case "min_chars":
            for where, text in _texts(rule.field, product, content):
                if 0 < len(text) < limit:
                    yield where, f"{len(text)} characters"
        case "max_items" | "min_items":
            items = _items(rule.field, content)
            over = len(items) > limit if rule.check == "max_items" else len(items) < limit
            if over:
                yield rule.field, f"{len(items)} given"
        case "forbidden_chars":
            for where, text in _texts(rule.field, product, content):
                used = sorted(set(text) & set(rule.forbidden))
                if used:
                    yield where, f"contains {' '.join(used)}"
        case "max_option_names":
            if len(product.options) > limit:
                named = ", ".join(product.options)
                yield "options", f"{len(product.options)} options ({named})"
        case "max_option_values":
            for name in product.options:
                values = {v.options.get(name) for v in product.variants} - {None}
                if len(values) > limit:
                    yield f"options.{name}", f"{len(values)} values"
        case "max_option_name_chars":
            for name in product.options:
                if len(name) > limit:
                    yield "options", f"{name!r} is {len(name)} characters"
        case "max_option_value_chars":
            for name, value in _option_values(product):
                if len(value) > limit:
                    yield f"options.{name}", f"{value!r} is {len(value)} characters"
        case "max_variants":
            if len(product.variants) > limit:
                yield "variants", f"{len(product.variants)} variants"


def _missing(name: str, product: Product, content: ChannelContent) -> Iterator[tuple[str, str]]:
    if name == "identifiers":
        if product.variants:
            lacking = [v.sku for v in product.variants if not v.identifiers.trade_numbers()]
            if lacking:
                yield name, f"no GTIN, UPC, EAN or ISBN for {', '.join(lacking)}"
        elif not product.identifiers.trade_numbers():
            yield name, "no GTIN, UPC, EAN or ISBN"
        return
    if not any(text.strip() for _, text in _texts(name, product, content)):
        yield name, "missing"


def _texts(name: str, product: Product, content: ChannelContent) -> list[tuple[str, str]]:
    """(field, text) of a text field as the channel shows it; one per bullet point."""
    if name == "brand":
        return [(name, product.brand)]
    if name == "bullets":
        return [(f"bullets[{i}]", bullet) for i, bullet in enumerate(content.bullets or ())]
    value = getattr(content, name)
    return [(name, value)] if isinstance(value, str) else []


def _items(name: str, content: ChannelContent) -> tuple[str, ...]:
    value = getattr(content, name)
    return value if isinstance(value, tuple) else ()


def _option_values(product: Product) -> list[tuple[str, str]]:
    """Each distinct (option, value) pair of a product's variants, in first-seen order."""
    pairs: dict[tuple[str, str], None] = {}
    for variant in product.variants:
        for name, value in variant.options.items():
            pairs.setdefault((name, value), None)
    return list(pairs)


def _push_order(line: CatalogLine, content: ChannelContent) -> Iterator[Finding]:
    """A new listing's content, then its price, then its quantity: no price, no quantity."""
    product = line.product
    if content.price is None:
        if not product.variants:
            yield _push_finding(line, "price", "missing")
        else:
            unpriced = [v.sku for v in product.variants if v.price is None]
            if unpriced:
                yield _push_finding(line, "price", f"missing for {', '.join(unpriced)}")
    if content.currency is None:
        yield _push_finding(line, "currency", "missing")


def _push_finding(line: CatalogLine, name: str, problem: str) -> Finding:
    return Finding(
        "error",
        line.line,
        line.product.sku,
        name,
        problem,
        "a new listing gets its price (with its currency) before its quantity",
        PUSH_ORDER_DOC,
    )


def _structure(line: CatalogLine) -> Iterator[Finding]:
    """Options and variants that fit together, and trade item numbers that are valid."""
    product = line.product

    def error(where: str, problem: str, rule: str, source: str = CATALOG_FORMAT) -> Finding:
        return Finding("error", line.line, product.sku, where, problem, rule, source)

    if product.variants and not product.options:
        yield error("options", "missing while variants are given", _OPTIONS_RULE)
    if product.options and not product.variants:
        yield error("variants", "missing while options are given", _OPTIONS_RULE)
    if len(set(product.options)) < len(product.options):
        yield error("options", "an option is named twice", "each option once")
    seen: dict[tuple[str | None, ...], str] = {}
    for i, variant in enumerate(product.variants):
        where = f"variants[{i}].options"
        lacking = [name for name in product.options if name not in variant.options]
        extra = [name for name in variant.options if name not in product.options]
        if lacking:
            yield error(where, f"no value for {', '.join(lacking)}", _VALUES_RULE)
        if extra:
            yield error(where, f"{', '.join(extra)} is not an option of the product", _VALUES_RULE)
        combination = tuple(variant.options.get(name) for name in product.options)
        if not lacking and combination in seen:
            yield error(where, f"the same values as {seen[combination]}", _DISTINCT_RULE)
        seen.setdefault(combination, variant.sku)
    for where, _, identifiers in _numbered(product):
        for kind, code in identifiers.trade_numbers():
            problem = trade_number_problem(kind, code)
            if problem is not None:
                yield error(f"{where}.{kind}", problem, _VALID_NUMBER, GS1_CHECK_DIGIT)


_OPTIONS_RULE: Final = "a product with variants names its options, and the other way round"
_VALUES_RULE: Final = "every variant has one value for each option of its product"
_DISTINCT_RULE: Final = "variants differ in at least one option value"
_VALID_NUMBER: Final = "a trade item number with a valid GS1 check digit"


def _numbered(product: Product) -> list[tuple[str, str, Identifiers]]:
    """(field, SKU, identifiers) of a product and of each of its variants."""
    own = [("identifiers", product.sku, product.identifiers)]
    return own + [
        (f"variants[{i}].identifiers", v.sku, v.identifiers) for i, v in enumerate(product.variants)
    ]


def _catalog_wide(lines: list[CatalogLine]) -> Iterator[Finding]:
    """A SKU or a trade item number used by two products (or variants) of the catalog."""
    skus: dict[str, int] = {line.product.sku: line.line for line in lines}
    numbers: dict[str, tuple[str, int]] = {}
    for line in lines:
        product = line.product
        for i, variant in enumerate(product.variants):
            first = skus.get(variant.sku)
            if first is None:
                skus[variant.sku] = line.line
                continue
            yield Finding(
                "error",
                line.line,
                product.sku,
                f"variants[{i}].sku",
                f"{variant.sku} is already a SKU on line {first}",
                "each SKU once in the catalog",
                CATALOG_FORMAT,
            )
        for where, sku, identifiers in _numbered(product):
            for kind, code in identifiers.trade_numbers():
                owner, first = numbers.setdefault(code, (sku, line.line))
                if owner != sku:
                    yield Finding(
                        "error",
                        line.line,
                        product.sku,
                        f"{where}.{kind}",
                        f"{code} is already the number of {owner} (line {first})",
                        "one trade item number identifies one SKU",
                        CATALOG_FORMAT,
                    )


def _unknown_channels(line: CatalogLine, channels: tuple[str, ...]) -> Iterator[Finding]:
    for name in line.product.channels:
        if name not in channels:
            yield Finding(
                "warning",
                line.line,
                line.product.sku,
                f"channels.{name}",
                "names no channel of the policy",
                "overrides are for the policy's channels: this one is never shown",
                CATALOG_FORMAT,
            )


def trade_number_problem(kind: str, code: str) -> str | None:
    """What is wrong with a GTIN-family number (None when nothing is): its digits, its
    length (8, 12, 13 or 14; an ISBN may also be 10), or its check digit."""
    if kind == "isbn" and len(code) == 10:
        return _isbn10_problem(code)
    if not (code.isascii() and code.isdigit()):
        return f"{code!r} is not all digits"
    if len(code) not in _GTIN_LENGTHS:
        return f"{len(code)} digits; a GTIN has 8, 12, 13 or 14"
    expected = _gs1_check_digit(code[:-1])
    if int(code[-1]) != expected:
        return f"check digit {code[-1]}, should be {expected}"
    return None


def _gs1_check_digit(body: str) -> int:
    """The GS1 check digit of the digits before it: weights 3, 1, 3, ... from the right."""
    total = sum(int(digit) * (3 if i % 2 == 0 else 1) for i, digit in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def _isbn10_problem(code: str) -> str | None:
    body, last = code[:9], code[9]
    if not (body.isascii() and body.isdigit() and (last.isdigit() or last == "X")):
        return f"{code!r} is not an ISBN-10 (nine digits and a digit or X)"
    total = sum((10 - i) * int(digit) for i, digit in enumerate(body))
    expected = (11 - total % 11) % 11
    want = "X" if expected == 10 else str(expected)
    return None if last == want else f"check digit {last}, should be {want}"
