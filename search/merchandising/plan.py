"""What merchandising applies to one search, as the ranking stages read it (search core).

A `MerchPlan` is resolved per request by `search.merchandising.service.Merchandising.plan`
(the service layer: it owns the store) and handed to `SearchEngine.search`, which puts it on
the search context for the `merchandise` and `pins` stages. This module imports no store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from search.merchandising.experiments import Experiment, Variant
from search.merchandising.profiles import Popularity, Profile
from search.merchandising.rules import Hide, Pin, Rule
from search.models import Filters, SearchRequest


@dataclass
class MerchPlan:
    request: SearchRequest  # with the filters rules added
    rules: list[Rule] = field(default_factory=list)
    profile: Profile | None = None
    popularity: Popularity = field(default_factory=Popularity)
    experiment: Experiment | None = None
    variant: Variant | None = None
    personalize: bool = True
    # Per rule id, what it did: resolving (filters, profile) here, then the stages (reset at
    # each pipeline run, so a "did you mean" retry does not report the same pin twice).
    effects: dict[int, list[str]] = field(default_factory=dict)
    resolved: dict[int, list[str]] = field(default_factory=dict)

    def hidden_ids(self) -> tuple[str, ...]:
        """Products the plan's rules hide (sorted, so it can key a cache)."""
        return tuple(sorted({a.product_id for rule in self.rules for a in rule.actions if isinstance(a, Hide)}))

    def names_products(self) -> bool:
        """Whether a rule pins or hides a product: the pins and merchandise stages look for it
        among every candidate of the ranked pool (a pin may place one from outside the result
        set), so the pool keeps its candidates, not only the result set's members."""
        return any(isinstance(a, Pin | Hide) for rule in self.rules for a in rule.actions)

    def start_run(self) -> None:
        self.effects = {rule_id: list(done) for rule_id, done in self.resolved.items()}

    def settings(self, base: Any) -> Any:
        """The engine's settings under this plan (a profile may set personalization's impact)."""
        impact = self.profile.personalization if self.profile is not None else None
        if impact is None or impact == base.personalization.impact:
            return base
        cached = _SETTINGS_CACHE.get((id(base), impact))
        if cached is None:
            personalization = base.personalization.model_copy(update={"impact": impact})
            cached = base.model_copy(update={"personalization": personalization})
            _SETTINGS_CACHE[(id(base), impact)] = cached
        return cached

    def did(self, rule: Rule, what: str) -> None:
        self.effects.setdefault(rule.id, []).append(what)

    def explain(self) -> list[dict[str, Any]]:
        return [{"id": r.id, "name": r.name, "version": r.version, "did": self.effects.get(r.id, [])} for r in self.rules]


_SETTINGS_CACHE: dict[tuple[int, float], Any] = {}


def annotate(result: Any, plan: MerchPlan) -> None:
    """Put the plan's outcome on the search result: experiment, variant, fired rules, explain."""
    if plan.experiment is not None and plan.variant is not None:
        result.experiment, result.variant = plan.experiment.id, plan.variant.name
    result.rules = [str(r.id) for r in plan.rules]
    if result.debug is not None:
        result.debug["rules"] = plan.explain()
        if plan.profile is not None:
            result.debug["profile"] = {"name": plan.profile.name, "version": plan.profile.version,
                                       "weights": plan.profile.weights()}
        if plan.variant is not None:
            result.debug["experiment"] = {"id": result.experiment, "variant": result.variant}


def merge_filters(base: Filters, extra: Filters) -> Filters:
    """The shopper's filters narrowed by a rule's: list fields intersect when both are set."""
    data = base.model_dump()
    for name, value in extra.model_dump(exclude_defaults=True).items():
        current = data.get(name)
        if isinstance(value, list):
            # Both set: the values both allow; when they disagree, the rule's apply.
            data[name] = ([v for v in current if v in value] or value) if current else value
        elif name == "price_min":
            data[name] = value if current is None else max(current, value)
        elif name == "price_max":
            data[name] = value if current is None else min(current, value)
        else:
            data[name] = value
    return Filters.model_validate(data)


