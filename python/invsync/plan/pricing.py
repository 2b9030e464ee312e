"""Section 2, the pricing matrix: each channel's price rules (CONTRACT 14)."""

from __future__ import annotations

from invsync.plan.document import Paragraph, Section

__all__ = ["pricing_section"]


def pricing_section() -> Section:
    """Policies have no `price` tables yet: the section says so rather than guessing."""
    return Section(
        "Pricing matrix",
        (
            Paragraph(
                "No pricing rules in this policy: no channel has a `price` table (markup, "
                "fees, rounding, the largest change allowed, margin floor, parity), so "
                "invsync does not guard prices on any channel."
            ),
        ),
    )
