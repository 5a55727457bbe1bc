"""Merchandising rules, ranking profiles and A/B tests on the real sample index, over HTTP.

Properties checked:
  1. Each action: pin (at its position, on every page, under filters, not re-scored), boost and
     bury by attribute value and numeric field, hide (not in hits, not in facets), filter,
     profile switch.
  2. Each condition: query equals/contains, category, segment (a rule scoped to mobile does not
     fire on desktop), date range (before `from` and after `until` it does not fire).
  3. Explain lists every fired rule and what it did; the search log records fired rules.
  4. Rules and profiles are versioned, every change audited with who; bad input is a 422 with
     a reason; all of it needs the admin key.
  5. Profiles: each signal in explain; relevance stays dominant unless the profile says so.
  6. Experiments: assignment stable and within ±2% of the split over 100k visitor ids; the
     response and the log carry experiment and variant; a variant can turn rules off.
  7. Welch interval and test, and the sample-ratio check, against hand-computed figures.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from indexer.embedding import Embedder
from search.api.app import create_app
from search.merchandising.experiments import ExperimentBody, assign, sample_ratio_p, welch
from search.models import SearchRequest
from search.service import SearchService
from search.settings import Settings

ADMIN = {"X-Admin-Key": "k", "X-Admin-User": "maria"}


@pytest.fixture
def live(mutable_index_dir: Path, embedder: Embedder) -> Iterator[tuple[SearchService, TestClient]]:
    settings = Settings(index_dir=mutable_index_dir, server={"admin_key": "k"})
    service = SearchService.open(mutable_index_dir, settings, embedder=embedder)
    with TestClient(create_app(settings, service=service)) as client:
        yield service, client
    service.close()


def _ids(client: TestClient, **params) -> list[str]:
    response = client.get("/search", params={"limit": 10, **params})
    assert response.status_code == 200, response.text
    return [h["id"] for h in response.json()["hits"]]


def _rule(client: TestClient, body: dict) -> dict:
    response = client.post("/rules", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()


# ---- actions ---------------------------------------------------------------------------------


def test_a_pinned_product_holds_its_position_on_every_page_and_under_filters(live) -> None:
    engine, client = live
    baseline = _ids(client, q="dress", limit=30)
    target = baseline[17]
    _rule(client, {"name": "dress: pin", "conditions": {"query": "dress"},
                   "actions": [{"type": "pin", "product_id": target, "position": 12}]})
    page1 = _ids(client, q="dress", limit=10)
    page2 = _ids(client, q="dress", limit=10, offset=10)
    assert target not in page1 and page2[1] == target
    assert _ids(client, q="dress", limit=5, offset=11)[0] == target
    # Positions 1..11 are the unpinned order, shifted by nothing (the pin came from below).
    assert page1 + page2[:1] == [i for i in baseline if i != target][:11]
    # Under a filter the pinned product keeps its slot when it passes the filter.
    brand = engine.get_product(target).brand
    filtered = _ids(client, q="dress", brand=brand, limit=30)
    if len(filtered) >= 12:
        assert filtered[11] == target
    # Not re-scored: its score is the one it had.
    hits = client.get("/search", params={"q": "dress", "limit": 30, "explain": True}).json()["hits"]
    pinned = next(h for h in hits if h["id"] == target)
    assert pinned["explain"]["merchandise"]["details"]["pinned_at"] == 12


def test_hidden_products_never_appear_not_even_in_facets(live) -> None:
    engine, client = live
    result = client.get("/search", params={"q": "dress", "limit": 100}).json()
    target = result["hits"][0]["id"]
    product = engine.get_product(target)
    brand_count = result["facets"]["brand"][product.brand]
    _rule(client, {"name": "hide", "conditions": {"query": "dress"}, "actions": [{"type": "hide", "product_id": target}]})
    after = client.get("/search", params={"q": "dress", "limit": 100}).json()
    assert target not in [h["id"] for h in after["hits"]] and after["total"] == result["total"] - 1
    assert after["facets"]["brand"].get(product.brand, 0) == brand_count - 1
    # Filtering on its own brand (the facet that ignores its own filter) does not count it either.
    filtered = client.get("/search", params={"q": "dress", "brand": product.brand, "limit": 100}).json()
    assert target not in [h["id"] for h in filtered["hits"]]
    assert filtered["facets"]["brand"].get(product.brand, 0) == brand_count - 1


def test_boost_by_brand_lifts_that_brand_and_bury_sinks_it(live) -> None:
    engine, client = live
    baseline = _ids(client, q="shirt", limit=20)
    brands = [engine.get_product(i).brand for i in baseline]
    brand = brands[-1]
    rule = _rule(client, {"name": "boost", "conditions": {"query": "shirt"},
                          "actions": [{"type": "boost", "field": "brand", "value": brand, "weight": 2}]})
    boosted = _ids(client, q="shirt", limit=20)
    assert engine.get_product(boosted[0]).brand == brand
    client.put(f"/rules/{rule['id']}", json={"name": "bury", "conditions": {"query": "shirt"},
               "actions": [{"type": "bury", "field": "brand", "value": brands[0], "weight": 5}]}, headers=ADMIN)
    buried = _ids(client, q="shirt", limit=20)
    assert engine.get_product(buried[0]).brand != brands[0]


def test_boost_by_a_numeric_field_orders_by_it(live) -> None:
    engine, client = live
    _rule(client, {"name": "cheap first", "conditions": {"query": "dress"},
                   "actions": [{"type": "bury", "field": "price", "weight": 10}]})
    prices = [engine.get_product(i).price or 0 for i in _ids(client, q="dress", limit=5)]
    all_prices = sorted(engine.get_product(i).price or 0 for i in _ids(client, q="dress", limit=100))
    assert max(prices) <= all_prices[len(all_prices) // 2]


def test_filter_action_and_profile_switch(live) -> None:
    engine, client = live
    assert client.put("/profiles/newest", json={"recency": 0.6}, headers=ADMIN).status_code == 200
    brand = engine.get_product(_ids(client, q="dress")[0]).brand
    _rule(client, {"name": "only brand", "conditions": {"query": "dress", "match": "equals"},
                   "actions": [{"type": "filter", "filters": {"brand": [brand]}}, {"type": "profile", "name": "newest"}]})
    result = client.get("/search", params={"q": "dress", "limit": 50, "explain": True}).json()
    assert {engine.get_product(h["id"]).brand for h in result["hits"]} == {brand}
    assert result["debug"]["profile"]["name"] == "newest"
    assert "signal_recency" in result["hits"][0]["explain"]["merchandise"]["details"]
    # `equals`: a longer query does not fire it.
    other = client.get("/search", params={"q": "red dress", "limit": 50}).json()
    assert len({engine.get_product(h["id"]).brand for h in other["hits"]}) > 1


# ---- conditions, explain and log ----------------------------------------------------------------


def test_segment_scoped_rule_fires_only_in_its_segment_and_dates_are_honoured(live) -> None:
    engine, client = live
    baseline = _ids(client, q="dress", limit=30)
    target = baseline[20]
    _rule(client, {"name": "mobile pin", "conditions": {"query": "dress", "segment": {"device": "mobile"}},
                   "actions": [{"type": "pin", "product_id": target, "position": 1}]})
    assert _ids(client, q="dress", device="mobile")[0] == target
    assert _ids(client, q="dress", device="desktop")[0] != target
    _rule(client, {"name": "future", "conditions": {"query": "dress", "from": "2999-01-01"},
                   "actions": [{"type": "pin", "product_id": baseline[25], "position": 1}]})
    _rule(client, {"name": "past", "conditions": {"query": "dress", "until": "2000-01-01T00:00:00Z"},
                   "actions": [{"type": "pin", "product_id": baseline[26], "position": 1}]})
    assert _ids(client, q="dress", device="desktop")[0] not in (baseline[25], baseline[26])
    _rule(client, {"name": "now", "conditions": {"query": "dress", "from": "2000-01-01", "until": "2999-01-01"},
                   "actions": [{"type": "pin", "product_id": baseline[27], "position": 1}]})
    assert _ids(client, q="dress", device="desktop")[0] == baseline[27]


def test_category_condition_fires_on_the_category_filter(live) -> None:
    engine, client = live
    result = client.get("/search", params={"q": "", "limit": 50}).json()
    category = sorted(result["facets"]["category"].items(), key=lambda kv: -kv[1])[0][0]
    listing = _ids(client, q="", category=category, limit=30)
    _rule(client, {"name": "cat", "conditions": {"category": category},
                   "actions": [{"type": "pin", "product_id": listing[-1], "position": 1}]})
    assert _ids(client, q="", category=category)[0] == listing[-1]
    assert _ids(client, q="")[0] != listing[-1] or listing[-1] == _ids(client, q="")[0]


def test_explain_and_the_search_log_list_fired_rules(live) -> None:
    engine, client = live
    target = _ids(client, q="dress", limit=10)[5]
    fired = _rule(client, {"name": "dress pin", "conditions": {"query": "dress"},
                           "actions": [{"type": "pin", "product_id": target, "position": 1}]})
    _rule(client, {"name": "shoes only", "conditions": {"query": "shoes"}, "actions": [{"type": "hide", "product_id": target}]})
    visitor = f"v-{uuid.uuid4().hex}"
    result = client.get("/search", params={"q": "red dress", "explain": True, "visitor_id": visitor}).json()
    assert result["debug"]["rules"] == [{"id": fired["id"], "name": "dress pin", "version": 1,
                                         "did": [f"pinned {target} at 1"]}]
    engine.search_log.flush()
    logged = [s for s in engine.search_log.between() if s.visitor_id == visitor]
    assert [s.rules for s in logged] == [f'["{fired["id"]}"]']


# ---- store, validation, audit --------------------------------------------------------------------


def test_rules_are_versioned_audited_and_validated(live) -> None:
    _, client = live
    rule = _rule(client, {"name": "shirts: pin P1", "conditions": {"query": "shirt"},
                          "actions": [{"type": "pin", "product_id": "P1", "position": 1}]})
    assert rule["version"] == 1 and rule["updated_by"] == "maria"
    updated = client.put(f"/rules/{rule['id']}", json={**{k: rule[k] for k in ("name", "conditions", "actions")},
                         "enabled": False}, headers={**ADMIN, "X-Admin-User": "li"}).json()
    assert (updated["version"], updated["enabled"], updated["updated_by"]) == (2, False, "li")
    detail = client.get(f"/rules/{rule['id']}", headers=ADMIN).json()
    assert [(a["actor"], a["action"]) for a in detail["audit"]] == [("maria", "created"), ("li", "updated")]
    assert client.delete(f"/rules/{rule['id']}", headers=ADMIN).status_code == 204
    assert client.get(f"/rules/{rule['id']}", headers=ADMIN).status_code == 404
    assert client.get("/rules", headers=ADMIN).json() == {"rules": []}
    bad = [
        {"name": "x", "actions": []},
        {"name": "x", "actions": [{"type": "explode"}]},
        {"name": "x", "actions": [{"type": "boost", "field": "colour", "weight": 1}]},
        {"name": "x", "conditions": {"from": "2026-02-01", "until": "2026-01-01"}, "actions": [{"type": "hide", "product_id": "a"}]},
        {"name": "x", "actions": [{"type": "pin", "product_id": "a", "position": 1}, {"type": "hide", "product_id": "a"}]},
        {"name": "x", "conditions": {"segment": {"visitor": "vip"}}, "actions": [{"type": "hide", "product_id": "a"}]},
    ]
    for body in bad:
        response = client.post("/rules", json=body, headers=ADMIN)
        assert response.status_code == 422, body
    assert client.get("/rules").status_code == 401
    assert client.put("/profiles/x", json={}).status_code == 401
    assert client.post("/experiments", json={}).status_code == 401


def test_profiles_keep_relevance_dominant_unless_told(live) -> None:
    _, client = live
    too_much = client.put("/profiles/greedy", json={"margin": 0.7, "ctr": 0.5}, headers=ADMIN)
    assert too_much.status_code == 422 and "relevance stays dominant" in too_much.text
    ok = client.put("/profiles/greedy", json={"margin": 0.7, "ctr": 0.5, "relevance_dominant": False}, headers=ADMIN)
    assert ok.status_code == 200 and ok.json()["version"] == 1
    again = client.put("/profiles/greedy", json={"margin": 0.2}, headers=ADMIN).json()
    assert again["version"] == 2
    assert client.get("/profiles/default", headers=ADMIN).json()["margin"] == 0.0
    assert client.get("/profiles/nope", headers=ADMIN).status_code == 404


def test_every_profile_signal_is_in_explain(live) -> None:
    _, client = live
    weights = {"ctr": 0.1, "conversion": 0.1, "margin": 0.1, "rating": 0.1, "reviews": 0.1, "recency": 0.1, "stock": 0.1}
    client.put("/profiles/all", json=weights, headers=ADMIN)
    _rule(client, {"name": "use all", "actions": [{"type": "profile", "name": "all"}]})
    hit = client.get("/search", params={"q": "dress", "explain": True}).json()["hits"][0]
    details = hit["explain"]["merchandise"]["details"]
    assert {f"signal_{name}" for name in weights} <= set(details)
    assert all(0.0 <= details[f"signal_{name}"] <= 1.0 for name in weights)


# ---- experiments ---------------------------------------------------------------------------------


def test_assignment_is_stable_and_within_two_percent_of_the_split() -> None:
    body = ExperimentBody(name="t", variants=[{"name": "a", "share": 30}, {"name": "b", "share": 70}])
    counts = Counter(assign(body, "exp1", f"visitor-{i}").name for i in range(100_000))
    assert abs(counts["a"] / 100_000 - 0.30) <= 0.02 and abs(counts["b"] / 100_000 - 0.70) <= 0.02
    assert all(assign(body, "exp1", f"visitor-{i}").name == assign(body, "exp1", f"visitor-{i}").name
               for i in range(1000))


def test_searches_in_an_experiment_carry_and_log_their_variant(live) -> None:
    engine, client = live
    target = _ids(client, q="dress", limit=10)[7]
    _rule(client, {"name": "pin", "conditions": {"query": "dress"},
                   "actions": [{"type": "pin", "product_id": target, "position": 1}]})
    bad = client.post("/experiments", json={"name": "x", "variants": [{"name": "a", "share": 50}, {"name": "b", "share": 40}]},
                      headers=ADMIN)
    assert bad.status_code == 422 and "add up to 90" in bad.text
    experiment = client.post("/experiments", json={"name": "rules", "variants": [
        {"name": "control", "share": 50}, {"name": "norules", "share": 50, "rules": False}]}, headers=ADMIN)
    assert experiment.status_code == 201
    exp = experiment.json()
    assert client.post("/experiments", json={"name": "second", "variants": [
        {"name": "a", "share": 50}, {"name": "b", "share": 50}]}, headers=ADMIN).status_code == 409
    seen = {}
    for i in range(20):
        result = client.get("/search", params={"q": "dress", "visitor_id": f"v{i}", "limit": 3}).json()
        assert result["experiment"] == exp["id"]
        seen[result["variant"]] = result["hits"][0]["id"]
    assert seen["control"] == target and seen["norules"] != target
    engine.search_log.flush()
    logged = [s for s in engine.search_log.between() if s.experiment == exp["id"]]
    assert len(logged) == 20 and {s.variant for s in logged} == {"control", "norules"}
    report = client.get(f"/reports/experiments/{exp['id']}", headers=ADMIN).json()
    assert sum(v["searches"] for v in report["variants"]) == 20
    assert any("too few" in w for w in report["warnings"])
    stopped = client.post(f"/experiments/{exp['id']}/stop", headers=ADMIN).json()
    assert stopped["status"] == "stopped"
    assert "experiment" not in client.get("/search", params={"q": "dress", "visitor_id": "v1"}).json()


def test_welch_interval_and_test_match_a_hand_computed_example() -> None:
    # control: mean 2, sample variance 2.5 (n=5); variant: mean 4, variance 2.5 (n=5).
    # se = sqrt(2.5/5 + 2.5/5) = 1; df = (1)^2 / (0.25/4 + 0.25/4) = 8;
    # t(0.975, 8) = 2.306004; CI = 2 ± 2.306004; t = 2, two-sided p = 0.080516.
    result = welch([0, 1, 2, 3, 4], [2, 3, 4, 5, 6])
    assert result is not None
    assert result.difference == pytest.approx(2.0)
    assert result.relative == pytest.approx(1.0)
    assert result.ci_low == pytest.approx(2 - 2.306004, abs=1e-5)
    assert result.ci_high == pytest.approx(2 + 2.306004, abs=1e-5)
    assert result.p_value == pytest.approx(0.080516, abs=1e-5)


def test_sample_ratio_mismatch_against_a_hand_computed_chi_square() -> None:
    # 5200 vs 4800 on a 50/50 split: chi2 = (200^2 + 200^2) / 5000 = 16 with 1 degree of freedom,
    # p = P(|Z| > 4) = erfc(4 / sqrt 2) = 6.334e-5.
    assert sample_ratio_p([5200, 4800], [50, 50]) == pytest.approx(math.erfc(4 / math.sqrt(2)), rel=1e-6)
    assert sample_ratio_p([5200, 4800], [50, 50]) == pytest.approx(6.334e-5, rel=1e-3)
    assert sample_ratio_p([5010, 4990], [50, 50]) > 0.5


# ---- popularity ----------------------------------------------------------------------------------


class _Ev:
    def __init__(self, type: str, product_id: str, search_id: str | None) -> None:
        self.type, self.product_id, self.search_id = type, product_id, search_id


def test_popularity_corrects_for_position_and_smooths_small_samples() -> None:
    from search.merchandising.profiles import learn_popularity

    # X shown first 10 times, clicked 5 times; Y shown fifth 10 times (examined 1/5 as often), clicked twice.
    impressions = [(f"x{i}", ["X", "a", "b", "c", "Y"], 0) for i in range(10)]
    events = [_Ev("click", "X", f"x{i}") for i in range(5)] + [_Ev("click", "Y", f"x{i}") for i in range(2)]
    raw = learn_popularity(impressions, events, prior_strength=0.0)
    # Examined: X 10 x 1 = 10, Y 10 x 1/5 = 2 -> X 5/10 = 0.5, Y 2/2 = 1.0: Y is the better product.
    assert raw.ctr("X") == pytest.approx(0.5) and raw.ctr("Y") == pytest.approx(1.0)
    # Smoothing: with a prior worth 20 examinations, Y's 2 examinations move it little from the mean.
    smoothed = learn_popularity(impressions, events, prior_strength=20.0)
    mean = 7 / (10 + 10 * (1 / 2 + 1 / 3 + 1 / 4) + 2)
    assert smoothed.mean_ctr == pytest.approx(mean)
    assert smoothed.ctr("Y") == pytest.approx((2 + mean * 20) / (2 + 20))
    assert smoothed.ctr("unseen") == pytest.approx(mean)
    # A click on a search that did not show the product is not counted against its impressions.
    stray = learn_popularity(impressions, [_Ev("click", "Y", "other")], prior_strength=0.0)
    assert stray.stats["Y"].clicks == 0


def test_a_popularity_profile_lifts_what_shoppers_click(live) -> None:
    engine, client = live
    first = client.get("/search", params={"q": "dress", "limit": 10, "visitor_id": "shopper"}).json()
    favourite = first["hits"][7]["id"]
    events = []
    for i in range(30):
        result = client.get("/search", params={"q": "dress", "limit": 10, "visitor_id": f"s{i}"}).json()
        events.append({"type": "click", "visitor_id": f"s{i}", "product_id": favourite,
                       "search_id": result["search_id"], "position": 7})
    assert client.post("/events", json={"events": events}).status_code == 202
    client.put("/profiles/popular", json={"ctr": 0.6}, headers=ADMIN)
    _rule(client, {"name": "popular for dresses", "conditions": {"query": "dress"},
                   "actions": [{"type": "profile", "name": "popular"}]})
    engine.merchandising.popularity(force=True)
    result = client.get("/search", params={"q": "dress", "limit": 10, "explain": True}).json()
    ids = [h["id"] for h in result["hits"]]
    assert ids.index(favourite) < 7
    details = result["hits"][ids.index(favourite)]["explain"]["merchandise"]["details"]
    assert details["signal_ctr"] == pytest.approx(1.0)


def test_a_variant_can_turn_personalization_off(live) -> None:
    service, client = live
    product = _ids(client, q="dress")[0]
    visitors = [f"pv{i}" for i in range(16)]
    events = [{"type": "add_to_cart", "visitor_id": v, "product_id": product} for v in visitors]
    assert client.post("/events", json={"events": events}).status_code == 202
    exp = client.post("/experiments", json={"name": "personalization", "variants": [
        {"name": "control", "share": 50}, {"name": "off", "share": 50, "personalize": False}]}, headers=ADMIN).json()
    seen = set()
    for visitor in visitors:
        result = service.search(SearchRequest(q="shirt", visitor_id=visitor), record=False)
        assert result.experiment == exp["id"]
        assert result.personalized == (result.variant == "control")
        seen.add(result.variant)
    assert seen == {"control", "off"}
