"""Incremental updates at the library level, seen by a reader of the index (a Snapshot).

Properties checked:
  1. a stock change is visible to an open reader after refresh, without re-embedding;
  2. a price change updates price and the text index's fast field;
  3. an upsert with unchanged text keeps the product's ordinal and vector;
  4. changed text gets a new ordinal and vector; delete retires the product;
  5. unknown SKUs are reported; a negative stock writes nothing.
"""

from __future__ import annotations

import pytest

from indexer import format as fmt
from indexer.updates import CatalogUpdater
from search.snapshot import Snapshot


@pytest.fixture
def reader(mutable_index_dir):
    snapshot = Snapshot(fmt.current_version_dir(mutable_index_dir))
    yield snapshot
    snapshot.close()


@pytest.fixture
def updater(mutable_index_dir, embedder):
    with CatalogUpdater(mutable_index_dir, embedder=embedder) as updater:
        yield updater


def _sized(reader: Snapshot):
    return next(p for p in reader.products if p is not None and len(p.available_sizes) >= 2)


def test_stock_update_is_visible_to_an_open_reader(reader, updater) -> None:
    product = _sized(reader)
    size = product.available_sizes[0]
    sku = next(v.sku for v in product.variants if v.size == size)
    ord_ = reader.id_to_ord[product.id]
    assert reader.size.mask([size], reader.size_n)[ord_]

    summary = updater.set_stock([(sku, 0)])
    assert summary.updated == 1 and summary.unknown == []
    assert reader.refresh() == 1
    assert size not in reader.product(product.id).available_sizes
    assert not reader.size.mask([size], reader.size_n)[ord_]


def test_selling_out_every_variant_marks_the_product_sold_out(reader, updater) -> None:
    product = _sized(reader)
    updater.set_stock([(v.sku, 0) for v in product.variants])
    reader.refresh()
    assert not reader.in_stock[reader.id_to_ord[product.id]]


def test_price_update_changes_the_reader_price(reader, updater) -> None:
    product = next(p for p in reader.products if p is not None)
    updater.set_prices([(product.id, 1.5)], by="id")
    reader.refresh()
    assert reader.price[reader.id_to_ord[product.id]] == 1.5


def test_upsert_with_same_text_keeps_ordinal_and_vector(reader, updater) -> None:
    product = _sized(reader).model_copy(deep=True)
    ord_before = reader.id_to_ord[product.id]
    product.variants[0].stock = 99
    summary = updater.upsert([product])
    assert (summary.added, summary.updated, summary.embedded) == (0, 1, 0)
    reader.refresh()
    assert reader.id_to_ord[product.id] == ord_before
    assert reader.product(product.id).variants[0].stock == 99


def test_changed_text_gets_a_new_ordinal_and_vector(reader, updater) -> None:
    product = _sized(reader).model_copy(deep=True)
    ord_before = reader.id_to_ord[product.id]
    vectors_before = reader.faiss.ntotal
    product.title = "Aurora Borealis Sequin Evening Gown"
    summary = updater.upsert([product])
    assert summary.embedded == 1
    reader.refresh()
    ord_after = reader.id_to_ord[product.id]
    assert ord_after != ord_before and not reader.live[ord_before]
    assert reader.faiss.ntotal == vectors_before + 1
    ids, _ = reader.search_vectors(reader.vectors[ord_after], 1)
    assert ids[0] == ord_after


def test_delete_retires_the_product(reader, updater) -> None:
    product = _sized(reader)
    assert updater.delete([product.id, "nope"]) == ["nope"]
    reader.refresh()
    assert reader.product(product.id) is None


def test_unknown_sku_is_reported_and_negative_stock_writes_nothing(reader, updater) -> None:
    assert updater.set_stock([("no-such-sku", 3)]).unknown == ["no-such-sku"]
    product = _sized(reader)
    seq = updater.store.last_seq()
    with pytest.raises(ValueError, match="must be 0 or more"):
        updater.set_stock([(product.variants[0].sku, 0), (product.variants[1].sku, -1)])
    assert updater.store.last_seq() == seq
    assert reader.refresh() == 0
