"""The registry of ranking stages: settings.ranking.stages names them in pipeline order.

Personalisation, stock and merchandising stages register here the same way.
"""

from __future__ import annotations

from collections.abc import Callable

from search.pipeline import Stage
from search.stages.filter import FilterStage
from search.stages.fuse import FuseStage
from search.stages.lexical import LexicalRetrieval
from search.stages.personalize import PersonalizeStage
from search.stages.proximity import ProximityStage
from search.stages.semantic import SemanticRetrieval
from search.stages.sort import SortStage
from search.stages.stock import StockStage
from search.stages.words import WordsStage

STAGES: dict[str, Callable[[], Stage]] = {
    "lexical": LexicalRetrieval,
    "semantic": SemanticRetrieval,
    "filter": FilterStage,
    "fuse": FuseStage,
    "words": WordsStage,
    "proximity": ProximityStage,
    "personalize": PersonalizeStage,
    "stock": StockStage,
    "sort": SortStage,
}
