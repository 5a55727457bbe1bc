"""Catalog importers on small fixture files written like real exports.

Properties checked:
  1. each format maps its columns onto catalog format v1 (variants, stock, prices, categories);
  2. every invalid row is reported with file, line and an actionable reason; the rest is kept;
  3. nothing is dropped silently: every row is a product part or a rejection;
  4. the rejected share is enforced; the format is detected from the file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.importers import TooManyRejections, detect_format, load_catalog

FIXTURES = Path(__file__).parent / "fixtures" / "catalogs"


def _by_id(report):
    return {p.id: p for p in report.products}


# ---- Google Merchant Center --------------------------------------------------------------


def test_merchant_feed_groups_rows_by_item_group_id_into_variants() -> None:
    report = load_catalog(FIXTURES / "merchant_feed.tsv")
    dress = _by_id(report)["DRS-1"]
    assert dress.title == "Floral Midi Dress"
    assert [v.sku for v in dress.variants] == ["DRS-1-S", "DRS-1-M", "DRS-1-L"]
    assert [v.size for v in dress.variants] == ["S", "M", "L"]
    assert {v.colour for v in dress.variants} == {"Red"}
    assert dress.categories == ["Apparel", "Women", "Dresses"]
    assert dress.attributes["material"] == "viscose"
    assert dress.description == "A floral midi dress."


def test_merchant_availability_sets_variant_stock() -> None:
    dress = _by_id(load_catalog(FIXTURES / "merchant_feed.tsv"))["DRS-1"]
    assert {v.size: v.stock for v in dress.variants} == {"S": 1, "M": 0, "L": 1}
    assert dress.available_sizes == ["S", "L"]


def test_merchant_sale_price_and_currency_suffix_are_read() -> None:
    products = _by_id(load_catalog(FIXTURES / "merchant_feed.tsv"))
    assert products["DRS-1"].price == 49.0  # the L variant's sale price is the lowest
    assert products["MUG-7"].price == 14.5
    assert products["MUG-7"].variants == [] and products["MUG-7"].in_stock
    assert not products["LMP-2"].in_stock  # out of stock without variants keeps its state


def test_merchant_invalid_rows_are_rejected_with_line_and_reason() -> None:
    report = load_catalog(FIXTURES / "merchant_feed.tsv")
    rejections = {r.line: r for r in report.rejections}
    assert set(rejections) == {6, 7}
    assert rejections[6].file == "merchant_feed.tsv"
    assert "price" in rejections[6].reason and "'cheap'" in rejections[6].reason
    assert "availability" in rejections[7].reason
    assert str(rejections[6]).startswith("merchant_feed.tsv:6: ")
    assert report.rows == 7


# ---- Shopify -------------------------------------------------------------------------------


def test_shopify_export_groups_rows_by_handle_and_maps_options() -> None:
    report = load_catalog(FIXTURES / "shopify_export.csv")
    shirt = _by_id(report)["linen-shirt"]
    assert shirt.title == "Relaxed Linen Shirt"
    assert shirt.brand == "Nordhavn"
    assert shirt.description == "Breathable linen. Regular fit"
    assert [(v.sku, v.size, v.colour, v.stock) for v in shirt.variants] == [
        ("LS-S-WHT", "S", "White", 4),
        ("LS-M-WHT", "M", "White", 0),
        ("LS-L-BLU", "L", "Blue", 7),
    ]
    assert shirt.price == 45.0
    assert shirt.attributes["tags"] == "summer, linen"
    assert shirt.categories == ["Apparel & Accessories", "Clothing", "Shirts"]
    assert shirt.image == "https://cdn.example/ls.jpg"


def test_shopify_untracked_inventory_counts_as_available_and_default_title_is_no_option() -> None:
    tote = _by_id(load_catalog(FIXTURES / "shopify_export.csv"))["canvas-tote"]
    assert len(tote.variants) == 1
    assert tote.variants[0].stock == 1 and tote.variants[0].size is None
    assert "title" not in tote.attributes


def test_shopify_other_options_become_attributes() -> None:
    beanie = _by_id(load_catalog(FIXTURES / "shopify_export.csv"))["wool-beanie"]
    assert beanie.attributes["material"] == "Merino, Cashmere"
    assert beanie.price == 19.0


def test_shopify_row_without_handle_is_rejected_and_image_rows_are_not_variants() -> None:
    report = load_catalog(FIXTURES / "shopify_export.csv")
    assert [(r.line, "Handle" in r.reason) for r in report.rejections] == [(7, True)]
    assert len(_by_id(report)["linen-shirt"].variants) == 3


# ---- CSV in catalog format v1 --------------------------------------------------------------


def test_csv_rows_sharing_an_id_are_variants_of_one_product() -> None:
    report = load_catalog(FIXTURES / "catalog.csv")
    tee = _by_id(report)["tee-1"]
    assert tee.categories == ["Men", "Clothing", "T-Shirts"]
    assert tee.attributes == {"colour": "Navy", "material": "cotton"}
    assert [(v.size, v.stock, v.price) for v in tee.variants] == [("S", 5, None), ("M", 0, None), ("L", 2, 21.99)]
    assert tee.review_count == 12 and tee.rating == 4.5
    vase = _by_id(report)["vase-2"]
    assert vase.variants == [] and vase.price == 29.0


def test_csv_invalid_rows_are_reported_with_line_and_reason() -> None:
    report = load_catalog(FIXTURES / "catalog.csv")
    reasons = {r.line: r.reason for r in report.rejections}
    assert set(reasons) == {6, 7, 8}
    assert "price" in reasons[6] and "'abc'" in reasons[6]
    assert "attributes" in reasons[7]
    assert "id" in reasons[8]
    assert len(report.products) == 2 and report.rows == 7


# ---- JSON Lines ----------------------------------------------------------------------------


def test_jsonl_rejects_bad_lines_and_keeps_the_rest() -> None:
    report = load_catalog(FIXTURES / "products_v1.jsonl")
    assert sorted(p.id for p in report.products) == ["42", "a1"]
    reasons = {r.line: r.reason for r in report.rejections}
    assert set(reasons) == {2, 3, 4, 6}
    assert reasons[2].startswith("price")
    assert "invalid JSON" in reasons[3]
    assert reasons[4].startswith("title")
    assert "duplicate" in reasons[6]
    assert _by_id(report)["42"].description == "Fine & dandy"


# ---- limits and detection ------------------------------------------------------------------


def test_load_catalog_raises_when_rejected_share_exceeds_limit() -> None:
    with pytest.raises(TooManyRejections) as caught:
        load_catalog(FIXTURES / "products_v1.jsonl", max_rejected_share=0.2)
    assert "4 of 6 rows rejected" in str(caught.value)
    assert len(caught.value.report.rejections) == 4
    assert load_catalog(FIXTURES / "products_v1.jsonl", max_rejected_share=0.9).products


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("merchant_feed.tsv", "merchant"), ("shopify_export.csv", "shopify"), ("catalog.csv", "csv"), ("products_v1.jsonl", "jsonl")],
)
def test_format_is_detected_from_the_file(name, fmt) -> None:
    assert detect_format(FIXTURES / name) == fmt


def test_unknown_format_and_missing_file_give_clear_errors(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown catalog format"):
        load_catalog(FIXTURES / "catalog.csv", "xml")
    with pytest.raises(FileNotFoundError, match="not found"):
        load_catalog(tmp_path / "missing.jsonl")
