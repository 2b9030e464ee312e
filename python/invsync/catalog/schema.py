"""A catalog line: one product as the seller writes it, in JSON, one object per line.

Content a channel may show differently (title, description, bullets, images, category,
price, currency) sits at the top of the line and may be replaced for one channel under
`channels.<channel id>`; what identifies the product (sku, brand, identifiers, options,
variants) is the same on every channel and may only be set once. A misspelt key fails
loudly, as in the policy file.
"""

from __future__ import annotations

from typing import Annotated, Final

from msgspec import Meta, Struct

__all__ = [
    "CHANNEL_FIELDS",
    "SHARED_FIELDS",
    "ChannelContent",
    "Identifiers",
    "Product",
    "Variant",
]

#: the same on every channel: one product, one identity
SHARED_FIELDS: Final = ("sku", "brand", "identifiers", "options", "variants")
#: may differ per channel, under `channels.<channel id>`
CHANNEL_FIELDS: Final = (
    "title",
    "description",
    "bullets",
    "images",
    "category",
    "price",
    "currency",
)

Sku = Annotated[str, Meta(min_length=1, max_length=255)]
Price = Annotated[float, Meta(gt=0.0, le=1e9)]
Currency = Annotated[str, Meta(pattern="^[A-Z]{3}$")]


class _Line(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Base of every object on a catalog line: unknown keys are refused."""


class Identifiers(_Line, frozen=True):
    """Trade item numbers: GTIN-8/12/13/14 (`gtin`, `upc`, `ean`), ISBN, and a
    manufacturer part number (not a trade item number)."""

    gtin: str | None = None
    upc: str | None = None
    ean: str | None = None
    isbn: str | None = None
    mpn: str | None = None

    def trade_numbers(self) -> tuple[tuple[str, str], ...]:
        """(kind, code) of each GTIN-family number given; an MPN is not one."""
        given = (("gtin", self.gtin), ("upc", self.upc), ("ean", self.ean), ("isbn", self.isbn))
        return tuple((kind, code) for kind, code in given if code is not None)


class ChannelContent(_Line, frozen=True):
    """What one channel shows instead of the line's own content; absent = the line's."""

    title: str | None = None
    description: str | None = None
    bullets: tuple[str, ...] | None = None
    images: tuple[str, ...] | None = None
    category: str | None = None
    price: Price | None = None
    currency: Currency | None = None


class Variant(_Line, frozen=True):
    """One sellable SKU of a product with options: a value for each of its options."""

    sku: Sku
    options: dict[str, str]
    identifiers: Identifiers = Identifiers()
    images: tuple[str, ...] = ()
    price: Price | None = None


class Product(_Line, frozen=True):
    """One product: a single SKU, or with `options` and `variants` a group of SKUs."""

    sku: Sku
    title: str = ""
    description: str = ""
    brand: str = ""
    category: str = ""
    bullets: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    price: Price | None = None
    currency: Currency | None = None
    identifiers: Identifiers = Identifiers()
    #: option names in display order, e.g. ("Color", "Size")
    options: tuple[str, ...] = ()
    variants: tuple[Variant, ...] = ()
    channels: dict[str, ChannelContent] = {}

    def content(self, channel: str) -> ChannelContent:
        """The per-channel fields as `channel` shows them: its override, else the line's."""
        own = self.channels.get(channel, ChannelContent())
        return ChannelContent(
            title=self.title if own.title is None else own.title,
            description=self.description if own.description is None else own.description,
            bullets=self.bullets if own.bullets is None else own.bullets,
            images=self.images if own.images is None else own.images,
            category=self.category if own.category is None else own.category,
            price=self.price if own.price is None else own.price,
            currency=self.currency if own.currency is None else own.currency,
        )
