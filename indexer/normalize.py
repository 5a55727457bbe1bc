"""Text normalisation shared by everything that compares words: the indexer, the query side,
the search log and the synonym store. One definition, so an indexed word and a typed word
are always spelt the same way.

Lives in `indexer` because the indexer must never import the query side; `search` and
`synonyms` import it from here.
"""

from __future__ import annotations

import re
import unicodedata

# A word: letters and digits (any script), nothing else.
WORD = re.compile(r"[^\W_]+", re.UNICODE)

# Compounds shops and shoppers spell three ways ("t-shirt", "t shirt", "tshirt"). Left apart,
# "shirt" matches every T-shirt (the tokenizer splits "t-shirt" into "t" and "shirt"), so one
# spelling is indexed and searched for all of them. Applied to indexed text and to queries.
_COMPOUNDS = [(re.compile(r"\b(t)[\s\-]?(shirts?)\b", re.IGNORECASE), r"\1\2")]


def join_compounds(text: str) -> str:
    for pattern, joined in _COMPOUNDS:
        text = pattern.sub(joined, text)
    return text


# Numbers and units are written many ways ("1/2 in.", "½ inch", "0.5in"; "10 ft", "10'",
# "10-foot"; "3' x 5'", "3 x 5"). Each becomes one token the tokenizer keeps whole (letters and
# digits only): "0p5in", "10ft", "3x5". A decimal point becomes "p" (as in resistor codes) since
# the tokenizer splits on "."; dimensions drop their units ("3' x 5'" -> "3x5", as shoppers
# say it). Bare fractions become decimals too ("1/2" -> "0p5"), so "½" and "1/2" agree.
_VULGAR = {"½": "1/2", "¼": "1/4", "¾": "3/4", "⅓": "1/3", "⅔": "2/3", "⅛": "1/8", "⅜": "3/8", "⅝": "5/8", "⅞": "7/8"}
_UNITS: dict[str, tuple[str, ...]] = {
    "in": ("inches", "inch", "in", '"', "″", "''", "”"),
    "ft": ("feet", "foot", "ft", "'", "′", "’"),
    "yd": ("yards", "yard", "yd"),
    "mm": ("millimetres", "millimeters", "millimetre", "millimeter", "mm"),
    "cm": ("centimetres", "centimeters", "centimetre", "centimeter", "cm"),
    "m": ("metres", "meters", "metre", "meter", "m"),
    "sqft": ("square feet", "square foot", "sq ft", "sq. ft", "sqft"),
    "cuft": ("cubic feet", "cubic foot", "cu ft", "cu. ft", "cuft"),
    "floz": ("fluid ounces", "fluid ounce", "fl oz", "fl. oz", "floz"),
    "oz": ("ounces", "ounce", "oz"),
    "lb": ("lbs", "lb"),
    "kg": ("kilograms", "kilogram", "kilos", "kg"),
    "g": ("grams", "gram", "g"),
    "ml": ("millilitres", "milliliters", "millilitre", "milliliter", "ml"),
    "l": ("litres", "liters", "litre", "liter", "l"),
    "gal": ("gallons", "gallon", "gal"),
    "qt": ("quarts", "quart", "qt"),
    "v": ("volts", "volt", "v"),
    "w": ("watts", "watt", "w"),
    "amp": ("amperes", "ampere", "amps", "amp"),
    "mah": ("mah",),
    "gb": ("gb",),
    "tb": ("tb",),
}
_UNIT_OF = {spelling: unit for unit, spellings in _UNITS.items() for spelling in spellings}
_CANONICAL_UNITS = frozenset(_UNITS)
_UNIT_ALT = "|".join(re.escape(s).replace(r"\ ", r"\s*") for s in sorted(_UNIT_OF, key=len, reverse=True))
# A mixed number ("1 1/2", "1-1/2"), a fraction, a decimal (".5" too) or an integer.
_NUMBER = r"\d+[\s-]\d+/\d+|\d+/\d+|\d*\.\d+|\d+"
# "in" is also a word ("3 in 1", "10 in black"): as a unit only after a fraction or decimal, or
# when followed by ".", "x", a closing mark or the end.
_QUANTITY = re.compile(
    rf"(?:(?<![\w.])|(?<=[0-9a-z\"'][x×]))({_NUMBER})\s*-?\s*({_UNIT_ALT})(?=[^a-z0-9]|$|[x×]\s*\d)",
    re.IGNORECASE,
)
_DIMENSION = re.compile(
    r"(?<![\w.])(\d+(?:p\d+)?)([a-z]*)\.?\s*[x×]\s*(\d+(?:p\d+)?)([a-z]*)\.?(?:\s*[x×]\s*(\d+(?:p\d+)?)([a-z]*)\.?)?(?![\w])",
    re.IGNORECASE,
)
_FRACTION = re.compile(r"(?<![\w./])(\d+[\s-])?(\d+)/(2|4|8|16|32|64|3)(?![\w/])")


def _number(text: str) -> float | None:
    text = text.strip()
    whole = 0.0
    mixed = re.match(r"(\d+)[\s-](\d+/\d+)$", text)
    if mixed:
        whole, text = float(mixed.group(1)), mixed.group(2)
    if "/" in text:
        top, bottom = text.split("/", 1)
        if int(bottom) == 0:
            return None
        return whole + int(top) / int(bottom)
    return whole + float(text)


def _token(value: float) -> str:
    if value == int(value):
        return str(int(value))
    return f"{value:.3f}".rstrip("0").rstrip(".").replace(".", "p")


def _quantity(match: re.Match[str]) -> str:
    number, spelling = match.group(1), match.group(2)
    unit = _UNIT_OF.get(re.sub(r"\s+", " ", spelling.lower()))
    if unit is None:
        unit = _UNIT_OF.get(re.sub(r"\s+", "", spelling.lower()), "")
    if unit == "in" and spelling.lower() == "in" and not any(c in number for c in "./"):
        after = match.string[match.end() : match.end() + 2]
        if after and not re.match(r"\.|\s*[x×)\],;]|\s*$", after):
            return match.group(0)  # "3 in 1": the word, not inches
    value = _number(number)
    if value is None or not unit:
        return match.group(0)
    return f"{_token(value)}{unit}"


def _dimension(match: re.Match[str]) -> str:
    groups = match.groups()
    units = [u for u in groups[1::2] if u]
    if any(u.lower() not in _CANONICAL_UNITS for u in units):
        return match.group(0)  # "2xl" or a model number, not a dimension
    numbers = [n for n in groups[0::2] if n]
    # The dimension as shoppers say it, then each measure with its unit ("1/2 in. x 10 ft." is
    # found by "1/2 inch" as well as by "1/2 x 10").
    quantities = [n + u for n, u in zip(groups[0::2], groups[1::2], strict=True) if n and u]
    return " ".join(["x".join(numbers), *quantities])


def _fraction(match: re.Match[str]) -> str:
    whole, top, bottom = match.group(1), int(match.group(2)), int(match.group(3))
    if top >= bottom and not whole:
        return match.group(0)
    return _token(int(whole.strip(" -")) + top / bottom if whole else top / bottom)


def normalize_units(text: str) -> str:
    if not any(ch.isnumeric() for ch in text):
        return text
    for vulgar, plain in _VULGAR.items():
        text = re.sub(rf"(\d?){vulgar}", lambda m, p=plain: f"{m.group(1)} {p}" if m.group(1) else p, text)
    text = text.replace("\u2044", "/")  # the fraction slash NFKC makes of "½"
    text = _QUANTITY.sub(_quantity, text)
    text = _DIMENSION.sub(_dimension, text)
    return _FRACTION.sub(_fraction, text)


def canonical(text: str) -> str:
    """The spelling indexed and searched: units and numbers normalised, compounds joined."""
    return join_compounds(normalize_units(text))


def normalize(text: str) -> str:
    """NFKC, control characters dropped, whitespace collapsed, lower-cased, then spelt the way
    the index spells compounds, numbers and units ("t-shirt" -> "tshirt", "½ inch" -> "0p5in")."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    return canonical(" ".join(text.split()).lower())


def words(text: str) -> list[str]:
    """The words of a text, lower-cased (punctuation and underscores separate words)."""
    return WORD.findall(text.lower())
