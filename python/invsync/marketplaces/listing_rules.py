"""What each marketplace documents about listing content: required fields, length limits,
image and bullet counts, variant structure. Data only, one table per platform, each
figure with the page it was read from (checked 2026-12-05); `invsync listing check`
applies them and `invsync plan` prints them.

A figure the platform's own pages did not give is not invented: it is named in the
platform's `unknown` list, and a figure only third parties report is a warning, never an
error. Where two pages disagree, the rule's `note` says so and the stricter page wins.
Several platforms serve the binding numbers per category at run time (Shopee's
`get_item_limit`, Amazon's product type definitions, eBay's `GeteBayDetails`): these
tables hold what holds for every category, and the `unknown` lists say what a category
can tighten.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["PLATFORM_LISTINGS", "Check", "ListingRule", "PlatformListing", "Severity"]

Severity = Literal["error", "warning"]
#: what a rule measures on a catalog field
Check = Literal[
    "required",  # present and not empty
    "max_chars",  # characters (code points), each item of a list field on its own
    "min_chars",
    "max_items",  # entries of a list field (images, bullets)
    "min_items",
    "forbidden_chars",  # none of `forbidden` may appear
    "max_option_names",  # option dimensions (Color, Size, ...)
    "max_option_values",  # distinct values of any one option
    "max_option_name_chars",
    "max_option_value_chars",
    "max_variants",  # variants (SKUs) of one product
]


@dataclass(frozen=True, slots=True)
class ListingRule:
    """One documented rule on one catalog field, with the page that says so."""

    field: str
    check: Check
    limit: int | None
    source: str
    severity: Severity = "error"
    note: str = ""
    forbidden: str = ""


@dataclass(frozen=True, slots=True)
class PlatformListing:
    """A platform's listing rules, and the figures its pages did not give."""

    name: str
    rules: tuple[ListingRule, ...]
    unknown: tuple[str, ...] = ()


# --- Shopify ------------------------------------------------------------------------
SHOPIFY_OPTIONS = "https://shopify.dev/docs/api/admin-graphql/2024-04/input-objects/ProductSetInput"
SHOPIFY_VARIANTS = (
    "https://shopify.dev/changelog/the-product-variant-limit-is-now-2048-for-all-merchants"
)
SHOPIFY_CREATE = (
    "https://shopify.dev/docs/api/admin-graphql/2026-01/input-objects/ProductCreateInput"
)

SHOPIFY: Final = PlatformListing(
    name="Shopify",
    rules=(
        ListingRule(
            "title",
            "required",
            None,
            SHOPIFY_CREATE,
            note="the input schema marks title optional; a product without one is refused "
            "as blank (inference from the admin, not stated on the page)",
        ),
        # "List of custom product options and option values (maximum of 3 per product)."
        ListingRule("options", "max_option_names", 3, SHOPIFY_OPTIONS),
        # "up to 2,048 variants ... exceeding our historical variant limit of 100"
        ListingRule(
            "variants",
            "max_variants",
            2048,
            SHOPIFY_VARIANTS,
            note="apps on the REST product API still see at most 100",
        ),
    ),
    unknown=(
        "title and description length: not stated on the Admin API product pages read",
        "image count per product: not stated on the pages read",
    ),
)

# --- Amazon -------------------------------------------------------------------------
AMAZON_DETAIL_PAGE = "https://sellercentral.amazon.com/gp/help/external/200390640"
AMAZON_TITLE = "https://sellercentral-europe.amazon.com/help/hub/reference/external/201100890"
AMAZON_GTIN = "https://sellercentral-europe.amazon.com/gp/help/external/200317470"
AMAZON_PRODUCT_TYPES = (
    "https://developer-docs.amazon.com/sp-api/docs/product-type-api-use-case-guide"
)
AMAZON_SHORT_TITLE = (
    "https://dev.to/toolmaxo/amazon-cut-product-titles-to-75-characters-a-small-checker"
    "-that-finds-every-problem-2b0a"
)
AMAZON_BULLETS = "https://www.amazonlistingaudit.com/policy/bullet-point-guidelines"
AMAZON_IMAGES = "https://www.mercatuslab.com/blog/amazon-product-image-requirements/"

AMAZON: Final = PlatformListing(
    name="Amazon",
    rules=(
        ListingRule("title", "required", None, AMAZON_TITLE),
        # "Product title length must not exceed a maximum of 200 characters (including
        # spaces) in all categories. Some of the categories may have [fewer]."
        ListingRule("title", "max_chars", 200, AMAZON_DETAIL_PAGE),
        ListingRule(
            "title",
            "max_chars",
            75,
            AMAZON_SHORT_TITLE,
            severity="warning",
            note=(
                "a third-party report of a 75-character limit outside media categories "
                "since 27 July 2026; Amazon's own pages read still say 200"
            ),
        ),
        # "Titles must not use the following special characters: !, $, ?, _, {, }, ^, ¬, ¦"
        ListingRule("title", "forbidden_chars", None, AMAZON_TITLE, forbidden="!$?_{}^¬¦"),
        ListingRule("brand", "required", None, AMAZON_PRODUCT_TYPES),
        # "Most categories require sellers to use a product identifier to create new
        # product pages" (a GTIN exemption lifts it for a category).
        ListingRule(
            "identifiers",
            "required",
            None,
            AMAZON_GTIN,
            note="unless the brand has a GTIN exemption",
        ),
        ListingRule(
            "images",
            "min_items",
            1,
            AMAZON_IMAGES,
            severity="warning",
            note="a main image; third-party guides agree, Amazon's own image page was not read",
        ),
        ListingRule("category", "required", None, AMAZON_PRODUCT_TYPES, note="the product type"),
        ListingRule(
            "bullets",
            "max_items",
            5,
            AMAZON_BULLETS,
            severity="warning",
            note="five bullet points is the figure third parties cite; not on Amazon's pages read",
        ),
    ),
    unknown=(
        (
            "description and bullet length: set per product type by the Product Type "
            "Definitions API, not one figure"
        ),
        "variation structure: variation themes are per product type",
    ),
)

# --- eBay ---------------------------------------------------------------------------
EBAY_PRODUCT = "https://developer.ebay.com/api-docs/sell/inventory/types/slr:Product"
EBAY_TITLE = (
    "https://developer.ebay.com/api-docs/user-guides/static/trading-user-guide/listing-title.html"
)
EBAY_SPECIFICATION = "https://developer.ebay.com/api-docs/sell/inventory/types/slr:Specification"
EBAY_VARIATION_SPECIFICS = (
    "https://developer.ebay.com/devzone/xml/docs/Reference/ebay/types/NameValueListArrayType.html"
)
EBAY_OFFER = (
    "https://developer.ebay.com/api-docs/sell/inventory/resources/offer/methods/"
    "publishOfferByInventoryItemGroup"
)

EBAY: Final = PlatformListing(
    name="eBay",
    rules=(
        ListingRule("title", "required", None, EBAY_PRODUCT),
        # product.title "Max Length: 80"; Trading Item.Title "Maximum length: 80 characters"
        ListingRule("title", "max_chars", 80, EBAY_TITLE),
        # publishOffer fails without product.description or the offer's listingDescription
        ListingRule("description", "required", None, EBAY_PRODUCT),
        ListingRule(
            "description",
            "max_chars",
            4000,
            EBAY_PRODUCT,
            note="the inventory item's product.description; an offer's listingDescription "
            "takes up to 500,000",
        ),
        # "Before an offer can be published, at least one image must exist"
        ListingRule("images", "min_items", 1, EBAY_PRODUCT),
        # "Most eBay sites support up to 12 pictures free of charge, and eBay Motors
        # listings can have up to 24"; the Sell Listing API: "Maximum: 12 URLs (for most
        # categories and marketplaces)". Third-party tools refuse past 24 everywhere.
        ListingRule("images", "max_items", 24, EBAY_PRODUCT, note="eBay Motors' figure"),
        ListingRule(
            "images",
            "max_items",
            12,
            EBAY_PRODUCT,
            severity="warning",
            note="most sites and categories; more may cost a fee or be refused",
        ),
        ListingRule("brand", "max_chars", 65, EBAY_PRODUCT),
        ListingRule("category", "required", None, EBAY_OFFER, note="the offer's categoryId"),
        # "Specify up to five VariationSpecifics in each Variation node."
        ListingRule("options", "max_option_names", 5, EBAY_VARIATION_SPECIFICS),
        # specifications.name "Max Length: 40"; an aspect value "Max Length ... 50"
        ListingRule("options", "max_option_name_chars", 40, EBAY_SPECIFICATION),
        ListingRule("options", "max_option_value_chars", 50, EBAY_PRODUCT),
    ),
    unknown=(
        (
            "variations per listing and values per variation specific: per site, from "
            "GeteBayDetails (MaxVariationsPerItem, MaxValuesPerVariationSpecificsSetName)"
        ),
    ),
)

# --- Walmart ------------------------------------------------------------------------
WALMART_CONTENT = (
    "https://marketplacelearn.walmart.com/guides/Item%20setup/"
    "Item%20content,%20imagery,%20and%20media/Product-Detail-Page:-overview"
)
WALMART_VARIANTS = (
    "https://developer.walmart.com/us-marketplace/docs/setting-up-multiple-variants-of-an-item"
)
WALMART_SEARCH = (
    "https://developer.walmart.com/us-marketplace/docs/item-search-for-the-walmart-catalog"
)

WALMART: Final = PlatformListing(
    name="Walmart",
    rules=(
        ListingRule("title", "required", None, WALMART_CONTENT),
        # "Writing brief titles not exceeding 150 characters." Noncompliance "may result
        # in products being unpublished".
        ListingRule(
            "title",
            "max_chars",
            150,
            WALMART_CONTENT,
            note="the item spec accepts longer product names; the content policy binds",
        ),
        ListingRule("description", "required", None, WALMART_CONTENT),
        # Full item setup (MP_ITEM) is keyed by a product identifier (UPC, GTIN, EAN, ISBN).
        ListingRule(
            "identifiers",
            "required",
            None,
            WALMART_SEARCH,
            note="unless Walmart grants an exemption",
        ),
        ListingRule("images", "min_items", 1, WALMART_CONTENT),
        ListingRule("category", "required", None, WALMART_SEARCH, note="the product type"),
        # "Variant groups can vary by up to three attributes"
        ListingRule("options", "max_option_names", 3, WALMART_VARIANTS),
    ),
    unknown=(
        (
            "description length and key feature (bullet) count: not on Walmart's pages read "
            "(third parties cite 4,000 characters)"
        ),
        "variants per variant group: not stated",
    ),
)

# --- TikTok Shop --------------------------------------------------------------------
TIKTOK_CREATE = (
    "https://partner.tiktokshop.com/docv2/page/6502fc8da57708028b42b18a"  # Create Product 202309
)

TIKTOK: Final = PlatformListing(
    name="TikTok Shop",
    rules=(
        ListingRule("title", "required", None, TIKTOK_CREATE),
        # "For US and UK shops, the product name must have at least 1 character and no
        # more than 255 characters. For shops in other regions ... at least 25"
        ListingRule("title", "max_chars", 255, TIKTOK_CREATE),
        ListingRule(
            "title",
            "min_chars",
            25,
            TIKTOK_CREATE,
            severity="warning",
            note="outside the US and UK; US and UK shops take 1",
        ),
        # "This field character limit needs to be within 10000 characters."
        ListingRule("description", "required", None, TIKTOK_CREATE),
        ListingRule("description", "max_chars", 10_000, TIKTOK_CREATE),
        # main_images: "Upload 1 to 9 images"
        ListingRule("images", "min_items", 1, TIKTOK_CREATE),
        ListingRule("images", "max_items", 9, TIKTOK_CREATE),
        ListingRule("category", "required", None, TIKTOK_CREATE, note="a leaf category"),
        # sales attributes: "The level of sales attribute names (variations) can not
        # exceed 3"; names "range [1,20]"; value names "can not exceed 50 characters"
        ListingRule("options", "max_option_names", 3, TIKTOK_CREATE),
        ListingRule("options", "max_option_name_chars", 20, TIKTOK_CREATE),
        ListingRule("options", "max_option_value_chars", 50, TIKTOK_CREATE),
        # "The number of SKUs in the US market and UK market should not exceed 100, while
        # the number of SKUs in other markets should not exceed 300."
        ListingRule("variants", "max_variants", 300, TIKTOK_CREATE),
        ListingRule(
            "variants", "max_variants", 100, TIKTOK_CREATE, severity="warning", note="US and UK"
        ),
    ),
)

# --- Shopee -------------------------------------------------------------------------
SHOPEE_CREATING = "https://open.shopee.com/developer-guide/211"  # "Creating product"
SHOPEE_VARIANTS = "https://open.shopee.com/developer-guide/219"  # "Variant management"
SHOPEE_LIMITS = "https://open.shopee.com/documents/v2/v2.product.get_item_limit?module=89&type=1"

SHOPEE: Final = PlatformListing(
    name="Shopee",
    rules=(
        ListingRule("title", "required", None, SHOPEE_CREATING),
        ListingRule("description", "required", None, SHOPEE_CREATING),
        # "Each product must have product images"
        ListingRule("images", "min_items", 1, SHOPEE_CREATING),
        ListingRule("category", "required", None, SHOPEE_CREATING, note="a leaf category"),
        # "up to two levels of specifications. The total number of variants cannot exceed 50."
        ListingRule("options", "max_option_names", 2, SHOPEE_VARIANTS),
        ListingRule("variants", "max_variants", 50, SHOPEE_VARIANTS),
    ),
    unknown=(
        (
            "title and description length, image count, variation name and option length: "
            f"served per shop and category by v2.product.get_item_limit ({SHOPEE_LIMITS}), "
            "not one figure"
        ),
    ),
)

# --- Lazada -------------------------------------------------------------------------
LAZADA_CREATE = "https://open.lazada.com/doc/doc?docId=120949&nodeId=30715"  # "Create a product"
LAZADA_VARIATIONS = "https://open.lazada.com/doc/doc?docId=120259&nodeId=29614"  # sales attributes

LAZADA: Final = PlatformListing(
    name="Lazada",
    rules=(
        # name: "Mandatory ... Maximum 255 characters."
        ListingRule("title", "required", None, LAZADA_CREATE),
        ListingRule("title", "max_chars", 255, LAZADA_CREATE),
        # description: "Maximum 25000 characters."
        ListingRule("description", "max_chars", 25_000, LAZADA_CREATE),
        # brand_id: Mandatory
        ListingRule("brand", "required", None, LAZADA_CREATE),
        ListingRule("category", "required", None, LAZADA_CREATE, note="PrimaryCategory"),
        # Images: "a maximum of 8 images passed into each Image field"
        ListingRule("images", "max_items", 8, LAZADA_CREATE),
        # CreateProduct errors: VARIATION_SIZE_LIMIT "The Size Limit is: 2",
        # OPTIONS_SIZE_LIMIT 50, VARIATION_NAME_LENGTH_LIMIT 15, VARIATION_OPTION_LENGTH_LIMIT 20
        ListingRule(
            "options",
            "max_option_names",
            2,
            LAZADA_VARIATIONS,
            note="Variation3 and Variation4 exist for a few categories only",
        ),
        ListingRule("options", "max_option_values", 50, LAZADA_VARIATIONS),
        ListingRule("options", "max_option_name_chars", 15, LAZADA_VARIATIONS),
        ListingRule("options", "max_option_value_chars", 20, LAZADA_VARIATIONS),
    ),
    unknown=("SKUs per product: not stated (a request of more than 50 SKUs times out)",),
)

#: platform id (as CONTRACT 10 names them) -> its listing rules
PLATFORM_LISTINGS: Final[Mapping[str, PlatformListing]] = {
    "shopify": SHOPIFY,
    "amazon": AMAZON,
    "ebay": EBAY,
    "walmart": WALMART,
    "tiktok": TIKTOK,
    "shopee": SHOPEE,
    "lazada": LAZADA,
}
