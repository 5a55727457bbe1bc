"""Merchandising in the ranking: the profile's signals, rules' boosts, buries, hides and pins.

Two stages, because pins must come after the final sort:
  - `merchandise` (before `sort`): hides products (a mask on the result set and on the facet
    base, so a hidden product is never shown, not even counted in a facet); adds the ranking
    profile's signals and the rules' boosts and buries as one contribution, with each signal
    and each rule's part in `explain`. Signals and boosts are relative to the best relevance
    among the candidates, and (like personalization) lift only products matching the query
    on its own terms; buries apply to every member.
  - `pins` (after `sort`): moves each pinned product to its position in the full ordered
    result, so it holds that position on every page and under any sort. A pinned product
    keeps its score (it is not re-scored); it is placed when it is among the candidates and
    passes the shopper's filters and is not hidden, otherwise the rule's explain says so.
Both do nothing without a plan (library use without merchandising).
"""

from __future__ import annotations

import time

import numpy as np

from search.merchandising.plan import MerchPlan
from search.merchandising.profiles import signals
from search.merchandising.rules import ATTRIBUTE_FIELDS, Boost, Hide, Pin
from search.pipeline import SearchContext, StageKind


def _plan(ctx: SearchContext) -> MerchPlan | None:
    return ctx.merchandising


def _field_values(ctx: SearchContext, field: str, ords: np.ndarray) -> np.ndarray:
    s = ctx.snapshot
    if field == "price":
        return s.price[ords].astype(float)
    if field == "created_at":
        return s.created[ords].astype(float)
    products = [s.products[o] for o in ords.tolist()]
    return np.array([float(getattr(p, field, None) or 0.0) if p is not None else 0.0 for p in products])


def _has_value(ctx: SearchContext, field: str, value: str, ords: np.ndarray) -> np.ndarray:
    s = ctx.snapshot
    if field in ATTRIBUTE_FIELDS:
        column = getattr(s, field)
        # Single- and multi-value columns both answer "which of these ordinals have one of these".
        wanted = [value]
        if hasattr(column, "mask_at"):
            return column.mask_at(wanted, ords)
    lowered = value.strip().lower()
    out = np.zeros(len(ords), dtype=bool)
    for i, ord_ in enumerate(ords.tolist()):
        p = s.products[ord_]
        if p is None:
            continue
        if field == "brand":
            out[i] = (p.brand or "").lower() == lowered
        elif field == "category":
            out[i] = any(c.lower() == lowered for c in p.categories)
        else:
            out[i] = str(p.attributes.get(field, "")).lower() == lowered
    return out


class MerchandiseStage:
    name = "merchandise"
    kind = StageKind.ranker
    browse = True

    def run(self, ctx: SearchContext) -> None:
        plan = _plan(ctx)
        c = ctx.candidates
        if plan is None:
            return
        plan.start_run()
        if len(c) == 0:
            return
        s = ctx.snapshot
        # Hide first: never shown, never counted.
        for rule in plan.rules:
            for action in rule.actions:
                if isinstance(action, Hide):
                    ord_ = s.id_to_ord.get(action.product_id)
                    hit = c.ords == ord_ if ord_ is not None else np.zeros(len(c), dtype=bool)
                    if hit.any():
                        c.member &= ~hit
                        if len(ctx.matched) == len(c):
                            ctx.matched &= ~hit
                        plan.did(rule, f"hid {action.product_id}")
                    else:
                        plan.did(rule, f"hide {action.product_id}: not among the results")
        fused = c.score()
        eligible = ctx.liftable()
        best = float(fused[eligible].max()) if eligible.any() else 0.0
        unit = best if best > 0 else 1.0  # browsing: no relevance to scale by
        contribution = np.zeros(len(c))
        details: dict[str, np.ndarray] = {}
        profile = plan.profile
        if profile is not None and not profile.is_neutral():
            products = [s.products[o] for o in c.ords.tolist()]
            values = signals(products, s.in_stock[c.ords], plan.popularity, profile, time.time())
            for name, value in values.items():
                part = profile.weights()[name] * value * unit * eligible
                contribution += part
                details[f"signal_{name}"] = value
                details[f"profile_{name}"] = part
        for rule in plan.rules:
            part = np.zeros(len(c))
            for action in rule.actions:
                if not isinstance(action, Boost):
                    continue
                if action.value is not None:
                    lift = _has_value(ctx, action.field, action.value, c.ords).astype(float)
                else:
                    raw = np.nan_to_num(_field_values(ctx, action.field, c.ords), nan=0.0)
                    low, high = (raw[c.member].min(), raw[c.member].max()) if c.member.any() else (0.0, 0.0)
                    lift = (raw - low) / (high - low) if high > low else np.zeros(len(c))
                sign = 1.0 if action.type == "boost" else -1.0
                mask = eligible if sign > 0 else c.member
                delta = sign * action.weight * unit * lift * mask
                part += delta
                plan.did(rule, f"{action.type} {action.field}{'=' + action.value if action.value else ''} "
                               f"x{action.weight:g}: {int((delta != 0).sum())} products")
            if part.any():
                details[f"rule_{rule.id}"] = part
                contribution += part
        ctx.notes["profile"] = {"name": profile.name, "version": profile.version} if profile else None
        c.add(self.name, contribution, **details)


class PinStage:
    name = "pins"
    kind = StageKind.ranker
    browse = True

    def run(self, ctx: SearchContext) -> None:
        plan = _plan(ctx)
        c = ctx.candidates
        if plan is None:
            return
        pins = sorted(
            ((action.position, action.product_id, rule) for rule in plan.rules for action in rule.actions
             if isinstance(action, Pin)),
            key=lambda p: p[0],
        )
        if not pins:
            return
        s = ctx.snapshot
        order = ctx.order.tolist()
        passes = np.ones(len(c), dtype=bool)
        for mask in ctx.filter_masks.values():
            passes &= mask
        hidden = set()
        for rule in plan.rules:
            hidden |= {a.product_id for a in rule.actions if isinstance(a, Hide)}
        pinned_at = np.zeros(len(c), dtype=np.int64)
        placed: list[tuple[int, int]] = []
        for position, product_id, rule in pins:
            ord_ = s.id_to_ord.get(product_id)
            where = np.flatnonzero(c.ords == ord_) if ord_ is not None else np.zeros(0, dtype=np.int64)
            if len(where) == 0 or product_id in hidden or not passes[where[0]] or not s.live[ord_]:
                plan.did(rule, f"pin {product_id} at {position}: not among the results (or filtered out)")
                continue
            i = int(where[0])
            c.member[i] = True
            if i in order:
                order.remove(i)
            placed.append((position, i))
            pinned_at[i] = position
            plan.did(rule, f"pinned {product_id} at {position}")
        # Insert in position order so earlier pins do not shift later ones.
        for position, i in sorted(placed):
            order.insert(min(position - 1, len(order)), i)
        ctx.order = np.asarray(order, dtype=np.int64)
        if placed:
            c.details.setdefault("merchandise", {})["pinned_at"] = pinned_at
            c.contributions.setdefault("merchandise", np.zeros(len(c)))
