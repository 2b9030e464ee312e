"""A finding: one thing on one catalog line that a person fixes, and the rule it breaks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from invsync.marketplaces.listing_rules import Severity

__all__ = ["CATALOG_FORMAT", "Finding"]

#: where the catalog's own format is described (rules that are invsync's, not a platform's)
CATALOG_FORMAT: Final = "docs/listings.md"


@dataclass(frozen=True, slots=True)
class Finding:
    """`field` on catalog line `line` (SKU `sku`, "" when unknown) has `problem`;
    `rule` is what is allowed, `limit` its number, `source` the page that says so."""

    severity: Severity
    line: int
    sku: str
    field: str
    problem: str
    rule: str
    source: str
    limit: int | None = None
    note: str = ""

    def text(self) -> str:
        """One line for a person: where, what is wrong, what is allowed (not the source)."""
        where = f"line {self.line}" + (f", sku {self.sku}" if self.sku else "")
        note = f" ({self.note})" if self.note else ""
        return f"{where}, {self.field}: {self.problem}; {self.rule}{note}"
