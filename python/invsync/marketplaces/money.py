"""Prices as the marketplaces take them: a decimal amount in a currency's minor units.

Sources: ISO 4217's table of minor units (https://www.iso.org/iso-4217-currency-codes.html,
the six-digit "Minor unit" column): most currencies have 2 decimals; those below have
none. The marketplaces refuse a price with more decimals than its currency has (eBay's
Amount.value, Walmart's and Amazon's amounts, Lazada's and Shopee's prices are all in
the currency's units).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Final

# ISO 4217 currencies without minor units among those the seven marketplaces sell in.
NO_MINOR_UNITS: Final = frozenset({"JPY", "KRW", "VND", "CLP", "ISK", "UGX", "PYG"})


def decimals(currency: str) -> int:
    """How many decimals a price in `currency` may have."""
    return 0 if currency in NO_MINOR_UNITS else 2


def price_problem(amount: str, currency: str, free: bool = False) -> str | None:
    """Why `amount` is not a price in `currency` (not a plain decimal, not above 0, or
    below 0 where the platform takes `free` items, more decimals than the currency has),
    or None when it is one."""
    try:
        value = Decimal(amount)
    except InvalidOperation:
        return f"{amount!r} is not a decimal number"
    if not value.is_finite() or "e" in amount.lower():
        return f"{amount!r} is not a plain decimal number"
    if value < 0 or (value == 0 and not free):
        return f"{amount} is not above 0"
    places = max(0, -int(value.as_tuple().exponent))
    if places > decimals(currency):
        return f"{amount} has more decimals than {currency} has ({decimals(currency)})"
    return None
