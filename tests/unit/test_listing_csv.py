"""The listing CSV: (sku, condition) -> the platform's ids, read as the seller wrote it,
and refused with file, line and column when a row cannot be pushed safely."""

from __future__ import annotations

from pathlib import Path

import pytest

from invsync.errors import ListingError
from invsync.gateway.listings import listing_from_fields, read_listing_csv
from invsync.gateway.platforms.base import Listing

SHOPIFY = ("inventory_item_id", "location_id")


def write(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "shopify.csv"
    path.write_text(text, encoding=encoding)
    return path


def refusal(tmp_path: Path, text: str) -> ListingError:
    with pytest.raises(ListingError) as caught:
        read_listing_csv(write(tmp_path, text), SHOPIFY)
    return caught.value


GOOD = """\
sku,condition,inventory_item_id,location_id
A,,gid://shopify/InventoryItem/1,gid://shopify/Location/9
A,used,gid://shopify/InventoryItem/2,gid://shopify/Location/9

 B , new ,gid://shopify/InventoryItem/3,gid://shopify/Location/9
"""


def test_rows_map_sku_and_condition_to_the_platform_ids(tmp_path: Path) -> None:
    listings = read_listing_csv(write(tmp_path, GOOD), SHOPIFY)
    assert listings == [
        Listing(
            "A",
            "new",
            {
                "inventory_item_id": "gid://shopify/InventoryItem/1",
                "location_id": "gid://shopify/Location/9",
            },
        ),
        Listing(
            "A",
            "used",
            {
                "inventory_item_id": "gid://shopify/InventoryItem/2",
                "location_id": "gid://shopify/Location/9",
            },
        ),
        Listing(
            "B",
            "new",
            {
                "inventory_item_id": "gid://shopify/InventoryItem/3",
                "location_id": "gid://shopify/Location/9",
            },
        ),
    ]


def test_columns_may_come_in_any_order_and_a_spreadsheet_bom_is_ignored(tmp_path: Path) -> None:
    text = "location_id,sku,inventory_item_id,condition\nL9,A,I1,\n"
    listings = read_listing_csv(write(tmp_path, text, encoding="utf-8-sig"), SHOPIFY)
    assert listings == [Listing("A", "new", {"inventory_item_id": "I1", "location_id": "L9"})]


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("sku,condition,inventory_item_id\nA,,I1\n", 1, "location_id"),
        ("sku,condition,inventory_item_id,location_id,offer\nA,,I1,L9,x\n", 1, "offer"),
        ("sku,condition,inventory_item_id,location_id\nA,,I1,L9\nB,,,L9\n", 3, "inventory_item_id"),
        ("sku,condition,inventory_item_id,location_id\nA,,I1,L9\n,,I2,L9\n", 3, "sku"),
        ("sku,condition,inventory_item_id,location_id\nA,,I1\n", 2, "row"),
        ("sku,condition,inventory_item_id,location_id\nA,,I1,L9\nA,new,I2,L9\n", 3, "sku"),
        (
            "sku,condition,inventory_item_id,location_id\nA,,I1,L9\nB,,I1,L9\n",
            3,
            "inventory_item_id",
        ),
    ],
    ids=[
        "missing column",
        "unknown column",
        "empty id",
        "empty sku",
        "short row",
        "sku twice",
        "ids twice",
    ],
)
def test_bad_rows_are_refused_with_line_and_column(
    tmp_path: Path, text: str, line: int, column: str
) -> None:
    error = refusal(tmp_path, text)
    assert (error.line, error.field) == (line, column)
    assert error.source == str(tmp_path / "shopify.csv")


def test_a_quoted_field_across_lines_keeps_later_line_numbers_right(tmp_path: Path) -> None:
    text = 'sku,condition,inventory_item_id,location_id\n"A\nB",,I1,L9\nC,,,L9\n'
    assert refusal(tmp_path, text).line == 4


def test_an_unreadable_file_is_a_listing_error(tmp_path: Path) -> None:
    with pytest.raises(ListingError) as caught:
        read_listing_csv(tmp_path / "absent.csv", SHOPIFY)
    assert caught.value.line == 0


def test_a_kv_value_and_a_csv_row_read_the_same_way() -> None:
    value = {"sku": "A", "offer_id": "77", "ebay_sku": "A-NEW"}
    assert listing_from_fields(value, ("ebay_sku", "offer_id")) == Listing(
        "A", "new", {"ebay_sku": "A-NEW", "offer_id": "77"}
    )
    with pytest.raises(ValueError):
        listing_from_fields({"sku": "A", "ebay_sku": 5}, ("ebay_sku", "offer_id"))
