"""The BM25 side of the index: tantivy schema, analyzer and documents.

Text fields are analysed with one analyzer ("vitrine_en": split on non-alphanumerics, drop
overlong tokens, lowercase, fold accents, English Snowball stemming); the query side uses the
same analyzer (`query_analyzer`) so that shopper words and indexed terms always agree. Field
boosts are applied at query time (search.stages.lexical) so they can be tuned without a rebuild.
Numbers that ranking needs (price, margin, popularity) are fast fields.

Filter fields (format 3) let retrieval apply the shopper's filters as query clauses and let
tantivy count and aggregate every matching product (search.stages.exact): brand, category path,
colours and sizes in stock as raw, lower-cased terms (the same keys as search.columns), stock
state, the effective price and the creation time. Stock changes rewrite the document so that
"size available" stays exact.
"""

from __future__ import annotations

from pathlib import Path

import tantivy

from indexer.catalog import Product
from indexer.text import lexical_fields

# Filter and facet fields: (field, product values). Keys are normalised as search.columns does.
F_BRAND, F_CATEGORY, F_COLOUR, F_SIZE = "f_brand", "f_category", "f_colour", "f_size"
F_IN_STOCK, F_PRICE, F_CREATED = "f_in_stock", "f_price", "f_created"
KEYWORD_FIELDS = (F_BRAND, F_CATEGORY, F_COLOUR, F_SIZE)

ANALYZER = "vitrine_en"
TEXT_FIELDS = ("title", "brand", "categories", "attributes", "description")


def _analyzer() -> tantivy.TextAnalyzer:
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


def query_analyzer() -> tantivy.TextAnalyzer:
    """The analyzer the index uses, for turning shopper text into index terms."""
    return _analyzer()


def build_schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw")
    builder.add_unsigned_field("ord", stored=True, indexed=True, fast=True)
    for name in TEXT_FIELDS:
        builder.add_text_field(name, stored=False, tokenizer_name=ANALYZER)
    builder.add_float_field("price", fast=True)
    builder.add_float_field("margin", fast=True)
    builder.add_float_field("popularity", fast=True)
    for name in KEYWORD_FIELDS:
        builder.add_text_field(name, stored=False, fast=True, tokenizer_name="raw", index_option="basic")
    builder.add_unsigned_field(F_IN_STOCK, indexed=True, fast=True)
    builder.add_float_field(F_PRICE, indexed=True, fast=True)  # absent when the product has no price
    builder.add_float_field(F_CREATED, fast=True)
    return builder.build()


def keyword(value: str) -> str:
    """The indexed form of a filter value: search.columns matches values the same way."""
    return value.strip().lower()


def keyword_values(product: Product) -> dict[str, list[str]]:
    brand = [product.brand] if product.brand else []
    raw = {F_BRAND: brand, F_CATEGORY: product.categories, F_COLOUR: product.colours, F_SIZE: product.available_sizes}
    return {name: list(dict.fromkeys(keyword(v) for v in values if v and v.strip())) for name, values in raw.items()}


def effective_price(product: Product) -> float | None:
    """The price a shopper sees first: the product price, else the lowest variant price."""
    if product.price is not None:
        return float(product.price)
    prices = [v.price for v in product.variants if v.price is not None]
    return float(min(prices)) if prices else None


def open_index(path: Path, create: bool = False) -> tantivy.Index:
    if create:
        path.mkdir(parents=True, exist_ok=True)
        index = tantivy.Index(build_schema(), path=str(path), reuse=False)
    else:
        index = tantivy.Index.open(str(path))
    index.register_tokenizer(ANALYZER, _analyzer())
    return index


def make_document(product: Product, ord_: int) -> tantivy.Document:
    doc = tantivy.Document()
    doc.add_text("id", product.id)
    # Unsigned fields need add_unsigned: a plain int is i64 and kills the writer thread.
    doc.add_unsigned("ord", ord_)
    for name, text in lexical_fields(product).items():
        if text:
            doc.add_text(name, text)
    doc.add_float("price", float(product.price or 0.0))
    doc.add_float("margin", float(product.margin or 0.0))
    doc.add_float("popularity", float(product.popularity or 0.0))
    for name, values in keyword_values(product).items():
        for value in values:
            doc.add_text(name, value)
    doc.add_unsigned(F_IN_STOCK, int(product.in_stock))
    price = effective_price(product)
    if price is not None:
        doc.add_float(F_PRICE, price)
    doc.add_float(F_CREATED, product.created_at.timestamp() if product.created_at is not None else 0.0)
    return doc


def delete_product(writer: tantivy.IndexWriter, product_id: str) -> None:
    writer.delete_documents_by_term("id", product_id)
