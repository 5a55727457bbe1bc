"""The registry of ranking stages: settings.ranking.stages names them in pipeline order.

Each stage declares its kind (retriever or ranker) and whether it applies to category pages;
the engine relies on those declarations, never on stage names.
"""

from __future__ import annotations

from collections.abc import Callable

from search.errors import ConfigError
from search.pipeline import Stage
from search.stages.feedback import FeedbackStage
from search.stages.filter import FilterStage
from search.stages.fuse import FuseStage
from search.stages.learned import LearnedFusionStage
from search.stages.lexical import LexicalRetrieval
from search.stages.merchandise import MerchandiseStage, PinStage
from search.stages.personalize import PersonalizeStage
from search.stages.proximity import ProximityStage
from search.stages.semantic import SemanticRetrieval
from search.stages.sort import SortStage
from search.stages.stock import StockStage
from search.stages.understood import UnderstoodStage
from search.stages.words import WordsStage

STAGES: dict[str, Callable[[], Stage]] = {
    "lexical": LexicalRetrieval,
    "semantic": SemanticRetrieval,
    "filter": FilterStage,
    "fuse": FuseStage,
    "words": WordsStage,
    "proximity": ProximityStage,
    "learned": LearnedFusionStage,
    "understood": UnderstoodStage,
    "feedback": FeedbackStage,
    "personalize": PersonalizeStage,
    "stock": StockStage,
    "merchandise": MerchandiseStage,
    "sort": SortStage,
    "pins": PinStage,
}


def build_pipeline(names: list[str]) -> list[Stage]:
    """The stages named by the settings, in order; retrievers must come before every ranker
    (rankers work on the result set the retrievers' candidates are assembled into)."""
    unknown = [name for name in names if name not in STAGES]
    if unknown:
        raise ConfigError(f"unknown ranking stage(s) {unknown}; known: {sorted(STAGES)}")
    stages = [STAGES[name]() for name in names]
    kinds = [stage.kind for stage in stages]
    first_ranker = next((i for i, kind in enumerate(kinds) if kind == "ranker"), len(kinds))
    late = [stage.name for stage in stages[first_ranker:] if stage.kind == "retriever"]
    if late:
        raise ConfigError(f"retriever stage(s) {late} must come before every ranker in ranking.stages")
    return stages
