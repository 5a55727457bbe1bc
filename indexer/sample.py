"""The sample shop: a seeded, reproducible mixed catalog written by us (no copied data).

Fashion with sizes and colours, shoes, home and accessories, with variants, stock (some sizes
sold out, some products fully sold out), prices, margins, ratings and descriptions varied
enough that search is meaningful: several words for one thing ("sneakers"/"trainers",
"t-shirt"/"tee", "cushion"/"throw pillow") appear across different products, colours and
sizes are unevenly distributed as in a real shop.

    generate_catalog(5000, seed=7) -> list[Product]
    write_catalog(path, 5000, seed=7) -> number of products written
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from indexer.catalog import Product, Variant

APPAREL_SIZES = ("XS", "S", "M", "L", "XL", "XXL")
APPAREL_SIZE_WEIGHTS = (6, 18, 28, 26, 15, 7)
SHOE_SIZES = tuple(str(s) for s in range(36, 46))
SHOE_SIZE_WEIGHTS = (3, 6, 10, 13, 14, 14, 13, 12, 9, 6)

# (name, weight): common colours are common.
COLOURS = (
    ("Black", 22), ("White", 16), ("Navy", 10), ("Grey", 9), ("Blue", 9), ("Beige", 6),
    ("Red", 6), ("Green", 5), ("Pink", 4), ("Brown", 4), ("Olive", 3), ("Burgundy", 3),
    ("Yellow", 2), ("Orange", 2), ("Purple", 2), ("Teal", 2), ("Cream", 3), ("Charcoal", 2),
)

MATERIALS = {
    "apparel": ("cotton", "organic cotton", "linen", "wool", "merino wool", "cashmere", "denim",
                "silk", "viscose", "polyester", "jersey", "fleece", "corduroy"),
    "shoes": ("leather", "suede", "canvas", "mesh", "recycled polyester", "rubber", "nubuck"),
    "home": ("cotton", "linen", "velvet", "ceramic", "stoneware", "oak", "walnut", "rattan",
             "wool", "jute", "glass", "brass", "bamboo"),
    "accessories": ("leather", "vegan leather", "canvas", "stainless steel", "silk", "wool",
                    "straw", "acetate", "gold-plated brass"),
}
PATTERNS = ("solid", "striped", "floral", "checked", "polka dot", "animal print", "paisley",
            "geometric", "plain", "herringbone", "tie-dye", "camouflage")
PATTERN_WEIGHTS = (40, 10, 9, 7, 3, 3, 2, 4, 12, 2, 1, 1)
STYLES = ("casual", "formal", "sporty", "party", "office", "beach", "outdoor", "lounge", "vintage", "minimalist")


@dataclass(frozen=True)
class Kind:
    """A product type: its words, department, category path, price range, sizing."""

    department: str  # apparel | shoes | home | accessories
    names: tuple[str, ...]  # words shops use for it: the first is the category name
    category: tuple[str, ...]
    price: tuple[float, float]
    genders: tuple[str, ...] = ("Women", "Men")
    sizing: str = "apparel"  # apparel | shoes | one | none
    weight: int = 10


KINDS: tuple[Kind, ...] = (
    # apparel
    Kind("apparel", ("Dress", "Dress", "Midi Dress", "Maxi Dress", "Sundress"), ("Clothing", "Dresses"), (29, 189), ("Women",), weight=16),
    Kind("apparel", ("T-Shirt", "T-Shirt", "Tee", "Crew Neck Tee"), ("Clothing", "T-Shirts"), (9, 49), weight=18),
    Kind("apparel", ("Shirt", "Shirt", "Oxford Shirt", "Button-Down Shirt"), ("Clothing", "Shirts"), (25, 119), weight=12),
    Kind("apparel", ("Blouse", "Blouse", "Top"), ("Clothing", "Tops"), (19, 89), ("Women",), weight=8),
    Kind("apparel", ("Jeans", "Jeans", "Slim Jeans", "Straight Jeans"), ("Clothing", "Jeans"), (39, 149), weight=12),
    Kind("apparel", ("Trousers", "Trousers", "Chinos", "Pants"), ("Clothing", "Trousers"), (29, 129), weight=9),
    Kind("apparel", ("Skirt", "Skirt", "Mini Skirt", "Pleated Skirt"), ("Clothing", "Skirts"), (24, 99), ("Women",), weight=7),
    Kind("apparel", ("Jacket", "Jacket", "Bomber Jacket", "Denim Jacket", "Rain Jacket"), ("Clothing", "Jackets & Coats"), (59, 299), weight=9),
    Kind("apparel", ("Coat", "Coat", "Overcoat", "Trench Coat", "Parka"), ("Clothing", "Jackets & Coats"), (89, 399), weight=6),
    Kind("apparel", ("Sweater", "Sweater", "Jumper", "Cardigan", "Pullover"), ("Clothing", "Knitwear"), (35, 179), weight=10),
    Kind("apparel", ("Hoodie", "Hoodie", "Sweatshirt"), ("Clothing", "Sweatshirts & Hoodies"), (29, 99), weight=8),
    Kind("apparel", ("Shorts", "Shorts", "Bermuda Shorts"), ("Clothing", "Shorts"), (19, 69), weight=5),
    Kind("apparel", ("Leggings", "Leggings", "Running Tights"), ("Sportswear", "Leggings"), (19, 79), ("Women",), weight=4),
    Kind("apparel", ("Swimsuit", "Swimsuit", "Bikini", "Swim Shorts"), ("Swimwear",), (19, 89), weight=3),
    Kind("apparel", ("Pyjamas", "Pyjamas", "Pajama Set", "Nightdress"), ("Nightwear",), (25, 89), weight=3),
    # shoes
    Kind("shoes", ("Sneakers", "Sneakers", "Trainers", "Low-Top Sneakers"), ("Shoes", "Sneakers"), (49, 179), sizing="shoes", weight=12),
    Kind("shoes", ("Running Shoes", "Running Shoes", "Road Runners", "Trail Running Shoes"), ("Shoes", "Sports Shoes"), (69, 199), sizing="shoes", weight=7),
    Kind("shoes", ("Boots", "Boots", "Ankle Boots", "Chelsea Boots", "Hiking Boots"), ("Shoes", "Boots"), (79, 259), sizing="shoes", weight=8),
    Kind("shoes", ("Sandals", "Sandals", "Slides", "Flip Flops"), ("Shoes", "Sandals"), (19, 99), sizing="shoes", weight=6),
    Kind("shoes", ("Heels", "Heels", "Pumps", "Stilettos"), ("Shoes", "Heels"), (49, 189), ("Women",), sizing="shoes", weight=4),
    Kind("shoes", ("Loafers", "Loafers", "Moccasins", "Brogues"), ("Shoes", "Loafers"), (59, 189), sizing="shoes", weight=4),
    # home
    Kind("home", ("Cushion", "Cushion", "Throw Pillow", "Cushion Cover"), ("Home", "Decor", "Cushions"), (12, 59), (), "one", 9),
    Kind("home", ("Lamp", "Table Lamp", "Floor Lamp", "Desk Lamp", "Pendant Light"), ("Home", "Lighting"), (25, 249), (), "none", 7),
    Kind("home", ("Rug", "Rug", "Runner Rug", "Area Rug"), ("Home", "Rugs"), (39, 399), (), "none", 5),
    Kind("home", ("Mug", "Mug", "Coffee Mug", "Cup"), ("Home", "Kitchen", "Tableware"), (8, 29), (), "none", 6),
    Kind("home", ("Bedding", "Duvet Cover", "Bed Linen Set", "Pillowcase Set"), ("Home", "Bedroom", "Bedding"), (29, 179), (), "one", 6),
    Kind("home", ("Throw", "Throw Blanket", "Blanket", "Plaid"), ("Home", "Decor", "Blankets"), (29, 149), (), "one", 5),
    Kind("home", ("Vase", "Vase", "Flower Vase"), ("Home", "Decor", "Vases"), (15, 89), (), "none", 4),
    Kind("home", ("Candle", "Scented Candle", "Candle"), ("Home", "Decor", "Candles"), (9, 45), (), "none", 4),
    Kind("home", ("Towel", "Bath Towel", "Towel Set", "Hand Towel"), ("Home", "Bathroom", "Towels"), (12, 69), (), "one", 4),
    Kind("home", ("Sofa", "Sofa", "Couch", "Loveseat"), ("Home", "Furniture", "Sofas"), (399, 1899), (), "none", 2),
    # accessories
    Kind("accessories", ("Bag", "Tote Bag", "Handbag", "Shoulder Bag", "Crossbody Bag", "Backpack"), ("Accessories", "Bags"), (29, 299), weight=9),
    Kind("accessories", ("Belt", "Belt", "Leather Belt"), ("Accessories", "Belts"), (19, 79), weight=4),
    Kind("accessories", ("Scarf", "Scarf", "Scarf Wrap", "Bandana"), ("Accessories", "Scarves"), (15, 89), weight=5),
    Kind("accessories", ("Watch", "Watch", "Wristwatch", "Smartwatch Strap"), ("Accessories", "Watches"), (49, 499), weight=5),
    Kind("accessories", ("Sunglasses", "Sunglasses", "Shades", "Aviator Sunglasses"), ("Accessories", "Sunglasses"), (19, 189), weight=5),
    Kind("accessories", ("Hat", "Hat", "Beanie", "Cap", "Bucket Hat"), ("Accessories", "Hats"), (12, 69), weight=5),
    Kind("accessories", ("Wallet", "Wallet", "Card Holder", "Purse"), ("Accessories", "Wallets"), (19, 129), weight=4),
    Kind("accessories", ("Necklace", "Necklace", "Pendant", "Chain"), ("Accessories", "Jewellery"), (15, 199), ("Women",), weight=4),
)

BRANDS = {
    "apparel": ("Nordhavn", "Maison Lumen", "Atelier Sève", "Blue Harbor", "Kestrel & Co", "Linnea",
                "Urban Thread", "Corvo", "Sunday Studio", "Oak & Ivy", "Fjelde", "Maré", "Vela", "Hartley"),
    "shoes": ("Stride", "Pacer", "Alder Footwear", "Kumo Run", "Ridgeline", "Nordhavn", "Corvo", "Velvet Step"),
    "home": ("Casa Serena", "Hearth & Loom", "Lumo", "Terracotta Lane", "Nordhavn Home", "Willow Row", "Kiln Studio", "Mossgrove"),
    "accessories": ("Atelier Sève", "Corvo", "Linnea", "Brass & Bone", "Horizon Optics", "Tempo Watch Co", "Maison Lumen", "Kestrel & Co"),
}

ADJECTIVES = ("Classic", "Essential", "Relaxed", "Slim", "Oversized", "Cropped", "Soft", "Lightweight",
              "Heavyweight", "Everyday", "Premium", "Vintage", "Textured", "Ribbed", "Washed", "Tailored",
              "Cosy", "Airy", "Structured", "Recycled")

OPENERS = (
    "A {adj} {name} in {material} that works from morning to night.",
    "Our {adj} {name} is cut from {material} for all-day comfort.",
    "Meet the {name}: {material}, {pattern}, and made to last.",
    "This {colour} {name} brings a {style} touch to your wardrobe.",
    "{material_cap} {name} with a {pattern} finish, designed in our studio.",
    "The {name} you will reach for again and again, now in {colour}.",
)
HOME_OPENERS = (
    "A {adj} {name} in {material} that makes any room feel finished.",
    "Our {name} is made of {material} with a {pattern} look.",
    "Bring warmth to your living room with this {colour} {name}.",
    "{material_cap} {name}, crafted by hand in small batches.",
)
DETAILS = {
    "apparel": ("Regular fit, true to size.", "Relaxed fit: size down for a closer fit.", "Breathable and quick to dry.",
                "Machine washable at 30 degrees.", "Two side pockets.", "Soft brushed inside for colder days.",
                "Perfect for summer weekends and holidays.", "Layer it under a jacket for the office.",
                "Stretch fabric that moves with you.", "Finished with tonal stitching."),
    "shoes": ("Cushioned insole for long days on your feet.", "Grippy rubber outsole.", "Fits true to size.",
              "Lightweight and breathable for running.", "Waterproof upper for rainy days.", "Padded collar and tongue.",
              "Removable footbed.", "Great for walking the city."),
    "home": ("Wipe clean with a damp cloth.", "Dishwasher safe.", "Feather-free filling included.",
             "Fits most standard frames.", "Dimmable bulb not included.", "Non-slip backing.",
             "Pairs well with our linen range.", "Ethically sourced materials."),
    "accessories": ("Adjustable strap.", "Magnetic closure with inner zip pocket.", "UV400 protection.",
                    "Water resistant to 50 metres.", "Gift box included.", "Lined with soft cotton.",
                    "Nickel-free and hypoallergenic.", "Fits a 13-inch laptop."),
}


def _weighted(rng: random.Random, items: tuple, weights: tuple) -> str:
    return rng.choices(items, weights=weights, k=1)[0]


def _price(rng: random.Random, low: float, high: float) -> float:
    # Log-uniform: many cheap items, few expensive ones; shop-style endings.
    value = low * (high / low) ** rng.random()
    return round(max(1.0, int(value)) + rng.choice((0.99, 0.95, 0.0, 0.5)), 2)


def _variants(rng: random.Random, kind: Kind, product_id: str, colour: str, sold_out: bool) -> list[Variant]:
    if kind.sizing == "none":
        return []
    if kind.sizing == "one":
        sizes: tuple[str, ...] = ("ONE SIZE",)
    elif kind.sizing == "shoes":
        start = rng.randint(0, 3)
        sizes = SHOE_SIZES[start : start + rng.randint(6, 10)]
    else:
        sizes = APPAREL_SIZES[rng.randint(0, 1) : len(APPAREL_SIZES) - rng.randint(0, 1)]
    variants = []
    for size in sizes:
        weight = 10
        if size in APPAREL_SIZES:
            weight = APPAREL_SIZE_WEIGHTS[APPAREL_SIZES.index(size)]
        elif size in SHOE_SIZES:
            weight = SHOE_SIZE_WEIGHTS[SHOE_SIZES.index(size)]
        # Popular sizes sell out more often.
        out = sold_out or rng.random() < 0.08 + weight / 150
        stock = 0 if out else rng.randint(1, 3 + weight * 2)
        variants.append(Variant(sku=f"{product_id}-{size.replace(' ', '')}", size=size, colour=colour, stock=stock))
    return variants


def _product(rng: random.Random, number: int, now: datetime) -> Product:
    kind = rng.choices(KINDS, weights=[k.weight for k in KINDS], k=1)[0]
    product_id = f"p{number:06d}"
    name = rng.choice(kind.names[1:])
    colour = _weighted(rng, tuple(c for c, _ in COLOURS), tuple(w for _, w in COLOURS))
    material = rng.choice(MATERIALS[kind.department])
    pattern = _weighted(rng, PATTERNS, PATTERN_WEIGHTS)
    style = rng.choice(STYLES)
    adjective = rng.choice(ADJECTIVES)
    brand = rng.choice(BRANDS[kind.department])
    gender = rng.choice(kind.genders) if kind.genders else None

    words = [adjective]
    if pattern not in ("solid", "plain") and rng.random() < 0.7:
        words.append(pattern.title())
    if rng.random() < 0.5:
        words.append(material.title())
    words.append(name)
    title = " ".join(words)
    if gender and rng.random() < 0.5:
        title = f"{gender}'s {title}"
    title = f"{brand} {title} - {colour}"

    fill = {"adj": adjective.lower(), "name": name.lower(), "material": material, "pattern": pattern,
            "colour": colour.lower(), "style": style, "material_cap": material.capitalize()}
    openers = HOME_OPENERS if kind.department == "home" else OPENERS
    sentences = [rng.choice(openers).format(**fill)]
    sentences += rng.sample(DETAILS[kind.department], k=rng.randint(1, 3))
    if rng.random() < 0.25:
        description = "<p>" + sentences[0] + "</p><ul>" + "".join(f"<li>{s}</li>" for s in sentences[1:]) + "</ul>"
    else:
        description = " ".join(sentences)

    categories = [gender, *kind.category] if gender and kind.department != "home" else list(kind.category)
    attributes = {"colour": colour, "material": material, "pattern": pattern, "style": style}
    if gender:
        attributes["gender"] = gender
    attributes["season"] = rng.choice(("spring", "summer", "autumn", "winter", "all seasons"))

    sold_out = rng.random() < 0.05
    variants = _variants(rng, kind, product_id, colour, sold_out)
    rating = round(min(5.0, max(1.0, rng.gauss(4.1, 0.6))), 1)
    slug = "-".join("".join(ch for ch in title.lower() if ch.isalnum() or ch == " ").split())
    return Product(
        id=product_id,
        title=title,
        description=description,
        brand=brand,
        categories=categories,
        attributes=attributes,
        price=_price(rng, *kind.price),
        margin=round(rng.uniform(0.1, 0.6), 2),
        rating=rating,
        review_count=int(rng.paretovariate(1.2) * 3) - 3 if rng.random() < 0.8 else 0,
        popularity=round(rng.paretovariate(1.5), 3),
        url=f"https://demo.vitrine.shop/products/{slug}-{product_id}",
        image=f"https://demo.vitrine.shop/img/{product_id}.jpg",
        created_at=now - timedelta(days=rng.uniform(0, 730)),
        variants=variants,
    )


def generate_catalog(n: int = 5000, seed: int = 7) -> list[Product]:
    rng = random.Random(seed)
    # A fixed "now" keeps the output identical across runs and days.
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return [_product(rng, number, now) for number in range(n)]


def write_catalog(path: str | Path, n: int = 5000, seed: int = 7) -> int:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for product in generate_catalog(n, seed):
            handle.write(product.to_json() + "\n")
    tmp.replace(path)
    return n


# ---- conversational queries -------------------------------------------------------------------

# How shoppers talk to a search box, with the constraints each sentence states. {type} is one of
# the product type's own names, {audience} names a gender, {price} a bound in one of the usual
# forms. Constraints: type (the category), colour, gender, price_min / price_max.
_CONVERSATIONAL = (
    ("{colour} {type} under {price}", ("colour", "max")),
    ("looking for a {colour} {type} {audience} under £{price}", ("colour", "gender", "max")),
    ("something {colour} to wear, a {type} less than ${price}", ("colour", "max")),
    ("{audience_adj} {type} between {low} and {price}", ("gender", "range")),
    ("i need a {type} in {colour} {audience}", ("colour", "gender")),
    ("show me {colour} {types} {low}-{price}", ("colour", "range")),
    ("{type} {audience} for a wedding under {price}", ("gender", "max")),
    ("cheap {colour} {type}", ("colour",)),
    ("a nice {type} for {price} or less", ("max",)),
    ("{colour} {type} {audience} please", ("colour", "gender")),
)
_AUDIENCE = {"Women": ("for her", "for women", "for a woman"), "Men": ("for him", "for men", "for a man")}


@dataclass(frozen=True)
class ConversationalQuery:
    text: str
    constraints: dict[str, str | float]  # type, colour, gender, price_min, price_max

    def honoured_by(self, product: Product, price: float | None) -> dict[str, bool]:
        """Which of the stated constraints the product meets."""
        out: dict[str, bool] = {}
        for key, wanted in self.constraints.items():
            if key == "type":
                out[key] = bool(product.categories) and product.categories[-1] == wanted
            elif key == "colour":
                out[key] = str(wanted).lower() in {c.lower() for c in product.colours}
            elif key == "gender":
                out[key] = product.attributes.get("gender") == wanted
            elif key == "price_max":
                out[key] = price is not None and price <= float(wanted)
            elif key == "price_min":
                out[key] = price is not None and price >= float(wanted)
        return out


def conversational_queries(products: list[Product], n: int = 200, seed: int = 3, min_matching: int = 10) -> list[ConversationalQuery]:
    """Conversational queries for a generated shop, each anchored on a product of it and met
    by at least `min_matching` products, with the constraints the sentence states."""
    rng = random.Random(seed)
    kinds = {k.category[-1]: k for k in KINDS if k.department != "home" or k.genders}
    by_type: dict[str, list[Product]] = {}
    for product in products:
        if product.categories and product.categories[-1] in kinds and product.price is not None:
            by_type.setdefault(product.categories[-1], []).append(product)
    queries: list[ConversationalQuery] = []
    seen: set[str] = set()
    attempts = 0
    while len(queries) < n and attempts < n * 50:
        attempts += 1
        anchor = rng.choice(products)
        if not anchor.categories or anchor.categories[-1] not in by_type:
            continue
        kind = kinds[anchor.categories[-1]]
        template, needs = rng.choice(_CONVERSATIONAL)
        gender = anchor.attributes.get("gender")
        if "gender" in needs and gender not in _AUDIENCE:
            continue
        price = float(anchor.price or 0)
        high = int(price) + 1 + rng.choice((0, 5, 10, 20))  # the anchor fits the bound
        low = max(0, int(price * rng.uniform(0.5, 0.9)) // 5 * 5)
        name = rng.choice(kind.names[1:]).lower()
        audience = rng.choice(_AUDIENCE[gender]) if gender in _AUDIENCE else ""
        text = template.format(
            colour=anchor.attributes.get("colour", "").lower(), type=name, price=high, low=low,
            types=name if name.endswith("s") else f"{name}s",
            audience=audience, audience_adj=("women's" if gender == "Women" else "men's"),
        )
        text = " ".join(text.split())
        if text in seen:
            continue
        seen.add(text)
        constraints: dict[str, str | float] = {"type": anchor.categories[-1]}
        if "colour" in needs:
            constraints["colour"] = anchor.attributes["colour"]
        if "gender" in needs:
            constraints["gender"] = str(gender)
        if "max" in needs or "range" in needs:
            constraints["price_max"] = float(high)
        if "range" in needs:
            constraints["price_min"] = float(low)
        query = ConversationalQuery(text, constraints)
        # A full first page of products meeting every constraint exists, so the share of the
        # top 10 honouring them all can reach 1.
        if sum(all(query.honoured_by(p, p.price).values()) for p in by_type[anchor.categories[-1]]) < min_matching:
            continue
        queries.append(query)
    return queries
