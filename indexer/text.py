"""How a product is turned into text: weighted lexical fields for BM25 and one passage to embed."""

from __future__ import annotations

from indexer.catalog import Product
from indexer.normalize import canonical

# Attributes worth searching; free-form keys beyond these are still indexed, but after them.
_SALIENT_ATTRIBUTES = ("colour", "color", "material", "pattern", "gender", "style", "usage")


def lexical_fields(product: Product) -> dict[str, str]:
    """The text of each BM25 field (boosts are applied at query time, see search.stages)."""
    attributes = [product.attributes[k] for k in _SALIENT_ATTRIBUTES if k in product.attributes]
    attributes += [v for k, v in product.attributes.items() if k not in _SALIENT_ATTRIBUTES]
    attributes += [c for c in product.colours if c not in attributes]
    fields = {
        "title": product.title,
        "brand": product.brand or "",
        "categories": " ".join(product.categories),
        "attributes": " ".join(attributes),
        "description": product.description,
    }
    return {name: canonical(text) for name, text in fields.items()}


def passage(product: Product, description_chars: int = 0) -> str:
    """The text embedded for semantic search: what the product is, then how it is described.

    Most informative first (title, category path, brand, salient attributes), because the
    encoder truncates at IndexConfig.passage_max_tokens and shorter passages encode faster.
    """
    parts = [product.title]
    if product.categories:
        parts.append(" > ".join(product.categories))
    if product.brand and product.brand.lower() not in product.title.lower():
        parts.append(product.brand)
    salient = [product.attributes[k] for k in _SALIENT_ATTRIBUTES if k in product.attributes]
    if salient:
        parts.append(", ".join(dict.fromkeys(salient)))
    if product.description and description_chars:
        text = product.description[:description_chars]
        if len(product.description) > description_chars:
            text = text.rsplit(" ", 1)[0]
        parts.append(text)
    return ". ".join(parts)
