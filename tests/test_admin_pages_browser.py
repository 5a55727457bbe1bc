"""The admin pages in a real browser: Debian's chromium driven through chromedriver.

A real uvicorn server serves a copy of the sample index with seeded searches; the page must
load without console errors and show the expected rows. Without chromium the tests skip,
unless VITRINE_REQUIRE_SERVICES=1 (CI, where .ci/run installs it) makes that a failure.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer.embedding import Embedder
from search.api.app import create_app
from search.models import SearchRequest
from search.service import SearchService
from search.settings import Settings
from tests.browser_support import chromium, console_errors, need_browser, serving

KEY = "browser-test-key"


@pytest.fixture(scope="module")
def server(index_dir: Path, embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, SearchService]]:
    need_browser()
    target = tmp_path_factory.mktemp("browser") / "index"
    shutil.copytree(index_dir, target, ignore=shutil.ignore_patterns("state"))
    settings = Settings(index_dir=target, server={"admin_key": KEY})
    service = SearchService.open(target, settings, embedder=embedder)
    # Seeded searches: two zero-result queries (one searched three times) and ordinary ones.
    for query in ["quorple zint"] * 3 + ["zorbflake", "gumboots", "settee", "dress", "dress", "linen shirt"]:
        service.search(SearchRequest(q=query, visitor_id="seed-visitor"))
    service.search_log.flush()
    from synonyms.generators import suggest

    assert {(tuple(s.terms), tuple(s.targets)) for s in suggest(service.synonym_inputs())} >= {(("gumboots",), ("boots",)), (("settee",), ("set",))}
    with serving(create_app(settings, service=service)) as base:
        yield base, service
    service.close()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with chromium(window="1280,1600") as driver:
        yield driver


def _log_in(driver, base: str, next_path: str = "/admin") -> None:
    """The login form: the key is typed and POSTed, never put in a URL."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{base}/admin/login?next={next_path}")
    driver.find_element(By.NAME, "key").send_keys(KEY)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    # The form posts, then redirects: wait for the page it leads to (a busy machine is slow).
    WebDriverWait(driver, 30).until(lambda d: "/admin/login" not in d.current_url)


def test_report_page_asks_for_the_key_then_shows_seeded_zero_result_queries(server, browser) -> None:
    from selenium.webdriver.common.by import By

    base, _engine = server
    browser.get(f"{base}/admin")
    assert "Admin key" in browser.page_source  # no key yet: the login form
    browser.get_log("browser")  # the 401 of that page is expected; start clean
    _log_in(browser, base)
    assert browser.current_url.endswith("/admin")
    assert KEY not in browser.current_url
    session = browser.get_cookie("vitrine_session")
    assert session["httpOnly"] and session["sameSite"] == "Strict" and KEY not in session["value"]
    assert browser.title.startswith("Search reports")
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.zero-row")
    by_query = {row.get_attribute("data-query"): row.text for row in rows}
    assert set(by_query) == {"quorple zint", "zorbflake", "gumboots", "settee"}
    assert by_query["quorple zint"].split()[2] == "3"  # searches column
    assert "still no results" in by_query["zorbflake"]
    # Both charts are drawn: a bar per zero-result query, a line per series.
    assert len(browser.find_elements(By.CSS_SELECTOR, "#zero-results svg rect.bar")) == 4
    assert len(browser.find_elements(By.CSS_SELECTOR, "#zero-over-time svg polyline")) == 2
    top = [r.text.split()[0] for r in browser.find_elements(By.CSS_SELECTOR, "tr.top-row")]
    assert top[0] == "quorple" and "dress" in top
    assert console_errors(browser) == []


def test_report_page_period_links_work(server, browser) -> None:
    from selenium.webdriver.common.by import By

    base, _engine = server
    _log_in(browser, base)
    browser.find_element(By.LINK_TEXT, "24 hours").click()
    assert "since=24h" in browser.current_url
    assert len(browser.find_elements(By.CSS_SELECTOR, "tr.zero-row")) == 4
    assert console_errors(browser) == []


def test_synonym_review_page_edits_approves_and_rejects(server, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from synonyms.synonym_store import Status

    base, service = server
    _log_in(browser, base, "/admin/synonyms")
    assert browser.title.startswith("Synonyms")
    rows = {r.find_element(By.CSS_SELECTOR, "input.terms").get_attribute("value"): r
            for r in browser.find_elements(By.CSS_SELECTOR, "tr.synonym-row")}
    assert {"gumboots", "settee"} <= set(rows)
    gum = rows["gumboots"]
    assert "similarity" in gum.find_element(By.CSS_SELECTOR, ".evidence").text
    assert "rescues 1 of 1 zero-result searches" in gum.find_element(By.CSS_SELECTOR, ".impact").text
    gum_id = int(gum.get_attribute("data-id"))
    # Edit before approving: one more word shoppers use.
    terms = gum.find_element(By.CSS_SELECTOR, "input.terms")
    terms.clear()
    terms.send_keys("gumboots, wellingtons")
    gum.find_element(By.CSS_SELECTOR, "button.approve").click()
    WebDriverWait(browser, 10).until(ec.staleness_of(gum))
    settee = rows["settee"]
    settee_id = int(settee.get_attribute("data-id"))
    settee.find_element(By.CSS_SELECTOR, "button.reject").click()
    WebDriverWait(browser, 10).until(ec.staleness_of(settee))
    approved = service.synonyms.get(gum_id)
    assert (approved.status, approved.terms, approved.targets) == (Status.approved, ["gumboots", "wellingtons"], ["boots"])
    assert service.synonyms.get(settee_id).status == Status.rejected
    assert service.search(SearchRequest(q="wellingtons"), record=False).total > 0
    browser.get(f"{base}/admin/synonyms?status=approved")
    assert [r.get_attribute("data-id") for r in browser.find_elements(By.CSS_SELECTOR, "tr.synonym-row")] == [str(gum_id)]
    assert console_errors(browser) == []


def test_merchandising_page_creates_previews_and_edits_rules_profiles_and_experiments(server, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    base, engine = server
    _log_in(browser, base, "/admin/merchandising")
    assert browser.title.startswith("Merchandising")
    ranked = [h.id for h in engine.search(SearchRequest(q="dress", limit=10), record=False).hits]
    target = ranked[6]
    rule = {"name": "dress: pin", "conditions": {"query": "dress"},
            "actions": [{"type": "pin", "product_id": target, "position": 1}]}
    box = browser.find_element(By.ID, "rule-json")
    browser.execute_script("arguments[0].value = arguments[1]", box, __import__("json").dumps(rule))
    # Preview before saving: the pinned product first in the preview column only.
    browser.find_element(By.ID, "preview-rule").click()
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "tr.preview-row"))
    first = browser.find_elements(By.CSS_SELECTOR, "tr.preview-row")[0].find_elements(By.TAG_NAME, "td")
    assert first[1].text.startswith(ranked[0]) and first[2].text.startswith(target)
    assert "pinned" in browser.find_element(By.ID, "preview-rules").text
    assert engine.merchandising.store.rules() == []  # nothing saved by a preview
    # A bad rule is refused with the reason.
    browser.execute_script("arguments[0].value = arguments[1]", box, '{"name": "x", "actions": []}')
    browser.find_element(By.ID, "save-rule").click()
    WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "rule-error").text)
    assert "actions" in browser.find_element(By.ID, "rule-error").text
    browser.get_log("browser")  # that 422 was the point; start clean
    browser.execute_script("arguments[0].value = arguments[1]", box, __import__("json").dumps(rule))
    browser.find_element(By.ID, "save-rule").click()
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "tr.rule-row"))
    assert engine.search(SearchRequest(q="dress", limit=3), record=False).hits[0].id == target
    # Edit the rule: move the pin to position 2.
    browser.find_element(By.CSS_SELECTOR, "tr.rule-row button[data-action=edit]").click()
    edited = {**rule, "actions": [{"type": "pin", "product_id": target, "position": 2}]}
    browser.execute_script("arguments[0].value = arguments[1]", browser.find_element(By.ID, "rule-json"),
                           __import__("json").dumps(edited))
    browser.find_element(By.ID, "save-rule").click()
    WebDriverWait(browser, 10).until(lambda d: "<td class=\"num\">2</td>" in d.page_source)
    assert engine.merchandising.store.rules()[0].version == 2
    # A profile, then an experiment using it, its report, and stop.
    browser.find_element(By.ID, "profile-name").clear()
    browser.find_element(By.ID, "profile-name").send_keys("popular")
    ctr = browser.find_element(By.CSS_SELECTOR, "#profile-form input[name=ctr]")
    ctr.clear()
    ctr.send_keys("0.4")
    browser.find_element(By.ID, "save-profile").click()
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "tr.profile-row[data-name=popular]"))
    assert engine.merchandising.store.profile("popular").ctr == 0.4
    browser.find_element(By.ID, "start-experiment").click()
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "tr.experiment-row"))
    running = engine.merchandising.store.running()
    assert running is not None and running.variants[1].profile == "popular"
    for i in range(6):
        engine.search(SearchRequest(q="dress", visitor_id=f"page-visitor-{i}"))
    browser.find_element(By.CSS_SELECTOR, "tr.experiment-row button[data-action=report]").click()
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "tr.report-row"))
    assert len(browser.find_elements(By.CSS_SELECTOR, "tr.report-row")) == 2
    assert "too few" in browser.find_element(By.CSS_SELECTOR, ".report-warning").text
    browser.find_element(By.CSS_SELECTOR, "tr.experiment-row button[data-action=stop]").click()
    # The list is re-drawn after the stop: read the row's text in the page itself, in one step
    # (an element handle taken mid-redraw may no longer belong to the document).
    WebDriverWait(browser, 10).until(
        lambda d: "stopped" in d.execute_script("const row = document.querySelector('tr.experiment-row'); return row ? row.textContent : '';")
    )
    assert engine.merchandising.store.running() is None
    assert console_errors(browser) == []
