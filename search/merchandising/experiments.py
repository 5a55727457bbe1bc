"""A/B tests: deterministic assignment of visitors to variants, and the report's statistics.

Assignment: the first 8 bytes of SHA-256(experiment id + ":" + visitor id), as a number in
[0, 1), fall into one variant's share of the cumulative split. The same visitor always sees the
same variant of an experiment, in every process, without storing anything; different
experiments split visitors independently.

Report: outcomes are attributed to searches (search/analytics/reports.attribute), then summed
per visitor, and rates compare visitors, not searches: one visitor's 40 searches are not 40
independent observations. The uplift of each variant against control is the difference of
per-visitor means with a Welch 95% confidence interval and Welch's t-test (scipy); the relative
uplift divides by the control mean. Warnings: too few visitors to tell, and sample-ratio
mismatch (a chi-square test of visitors per variant against the configured split, p < 0.001:
the assignment or the logging is broken, the figures are not to be trusted).
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import stats

MIN_VISITORS_PER_VARIANT = 100
SRM_P_VALUE = 0.001
METRICS = ("converted", "revenue", "clicked", "carted")


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=50)
    share: float = Field(gt=0, le=100, description="Percent of the experiment's visitors")
    profile: str | None = Field(default=None, max_length=100, description="Ranking profile (default: the default)")
    rules: bool = True  # merchandising rules on or off
    personalize: bool = True


class ExperimentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    variants: list[Variant] = Field(min_length=2, max_length=10)
    # Which variant the others are compared with (default: the first).
    control: str | None = None

    @model_validator(mode="after")
    def _valid_split(self) -> ExperimentBody:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("variant names must differ")
        total = sum(v.share for v in self.variants)
        if abs(total - 100) > 1e-6:
            raise ValueError(f"variant shares add up to {total:g}, not 100")
        if self.control is None:
            self.control = names[0]
        elif self.control not in names:
            raise ValueError(f"control {self.control!r} is not one of the variants ({', '.join(names)})")
        return self


class Experiment(ExperimentBody):
    id: str
    status: str  # running | stopped
    started_at: float
    stopped_at: float | None = None
    created_by: str

    def variant(self, name: str) -> Variant:
        return next(v for v in self.variants if v.name == name)


def bucket(experiment_id: str, visitor_id: str) -> float:
    digest = hashlib.sha256(f"{experiment_id}:{visitor_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign(experiment: ExperimentBody, experiment_id: str, visitor_id: str) -> Variant:
    point = bucket(experiment_id, visitor_id) * 100.0
    edge = 0.0
    for variant in experiment.variants:
        edge += variant.share
        if point < edge:
            return variant
    return experiment.variants[-1]  # rounding at the very top


# ---- statistics ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    difference: float  # variant mean - control mean
    relative: float | None  # difference / control mean
    ci_low: float
    ci_high: float
    p_value: float


def welch(control: Sequence[float], variant: Sequence[float], confidence: float = 0.95) -> Comparison | None:
    """Difference of means with Welch's confidence interval and t-test (unequal variances)."""
    a, b = np.asarray(control, float), np.asarray(variant, float)
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    difference = float(b.mean() - a.mean())
    se = math.sqrt(va + vb)
    if se == 0:
        return Comparison(difference, difference / a.mean() if a.mean() else None, difference, difference,
                          1.0 if difference == 0 else 0.0)
    # Welch–Satterthwaite degrees of freedom.
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    p_value = float(stats.ttest_ind(b, a, equal_var=False).pvalue)
    relative = difference / float(a.mean()) if a.mean() else None
    return Comparison(difference, relative, difference - half, difference + half, p_value)


def sample_ratio_p(visitors: Sequence[int], shares: Sequence[float]) -> float | None:
    total = sum(visitors)
    if total == 0:
        return None
    expected = [total * s / sum(shares) for s in shares]
    return float(stats.chisquare(visitors, expected).pvalue)


def report(experiment: Experiment, searches: Sequence[Any], outcomes: dict[str, Any]) -> dict[str, Any]:
    """Per variant: searches, visitors, rates, revenue; uplift against control per visitor."""
    per_variant: dict[str, dict[str, dict[str, float]]] = {v.name: {} for v in experiment.variants}
    counts: dict[str, dict[str, float]] = {v.name: defaultdict(float) for v in experiment.variants}
    for s in searches:
        if s.experiment != experiment.id or s.variant not in per_variant or not s.visitor_id:
            continue
        visitor = per_variant[s.variant].setdefault(
            s.visitor_id, {"searches": 0, "clicked": 0, "carted": 0, "converted": 0, "revenue": 0.0}
        )
        visitor["searches"] += 1
        c = counts[s.variant]
        c["searches"] += 1
        o = outcomes.get(s.search_id)
        if o is None:
            continue
        c["with_click"] += bool(o.clicks or o.carts or o.purchases)
        c["with_cart"] += bool(o.carts)
        c["with_purchase"] += bool(o.purchases)
        c["revenue"] += o.revenue
        visitor["clicked"] = max(visitor["clicked"], float(bool(o.clicks or o.carts or o.purchases)))
        visitor["carted"] = max(visitor["carted"], float(bool(o.carts)))
        visitor["converted"] = max(visitor["converted"], float(bool(o.purchases)))
        visitor["revenue"] += o.revenue
    control = experiment.control or experiment.variants[0].name
    rows = []
    warnings = []
    for v in experiment.variants:
        c, visitors = counts[v.name], per_variant[v.name]
        n, nv = int(c["searches"]), len(visitors)
        row: dict[str, Any] = {
            "variant": v.name, "share": v.share, "control": v.name == control,
            "searches": n, "visitors": nv,
            "ctr": round(c["with_click"] / n, 4) if n else None,
            "add_to_cart_rate": round(c["with_cart"] / n, 4) if n else None,
            "conversion_rate": round(c["with_purchase"] / n, 4) if n else None,
            "visitor_conversion_rate": round(sum(x["converted"] for x in visitors.values()) / nv, 4) if nv else None,
            "revenue": round(c["revenue"], 2),
            "revenue_per_search": round(c["revenue"] / n, 4) if n else None,
            "revenue_per_visitor": round(c["revenue"] / nv, 4) if nv else None,
        }
        if v.name != control:
            base = per_variant[control]
            row["uplift"] = {}
            for metric in METRICS:
                comparison = welch([x[metric] for x in base.values()], [x[metric] for x in visitors.values()])
                row["uplift"][metric] = None if comparison is None else {
                    "difference": round(comparison.difference, 6),
                    "relative": None if comparison.relative is None else round(comparison.relative, 4),
                    "ci95": [round(comparison.ci_low, 6), round(comparison.ci_high, 6)],
                    "p_value": round(comparison.p_value, 6),
                    "significant": comparison.p_value < 0.05,
                }
        if nv < MIN_VISITORS_PER_VARIANT:
            warnings.append(f"variant {v.name!r} has {nv} visitors: fewer than {MIN_VISITORS_PER_VARIANT}, "
                            "too few to tell a difference; keep the test running")
        rows.append(row)
    srm = sample_ratio_p([r["visitors"] for r in rows], [v.share for v in experiment.variants])
    if srm is not None and srm < SRM_P_VALUE:
        warnings.append(f"sample-ratio mismatch: visitors per variant {[r['visitors'] for r in rows]} do not match "
                        f"the split {[v.share for v in experiment.variants]} (chi-square p={srm:.2g}); "
                        "check assignment and logging before trusting these figures")
    return {"experiment": experiment.model_dump(mode="json"), "variants": rows,
            "sample_ratio_p": None if srm is None else round(srm, 6), "warnings": warnings}
