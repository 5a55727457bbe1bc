"""The BM25 side of the index: tantivy schema, analyzer and documents.

Text fields are analysed with one analyzer ("vitrine_en": split on non-alphanumerics, drop
overlong tokens, lowercase, fold accents, English Snowball stemming); the query side uses the
same analyzer (`query_analyzer`) so that shopper words and indexed terms always agree. Field
boosts are applied at query time (search.stages.lexical) so they can be tuned without a rebuild.
Numbers that ranking needs (price, margin, popularity) are fast fields.
"""

from __future__ import annotations

from pathlib import Path

import tantivy

from indexer.catalog import Product
from indexer.text import lexical_fields

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
    return builder.build()


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
    return doc


def delete_product(writer: tantivy.IndexWriter, product_id: str) -> None:
    writer.delete_documents_by_term("id", product_id)
