"""Every page in Russian (ru-RU browser in Europe/Moscow) and in English (en-US in UTC), in real headless
Chromium: ``<html lang>`` follows the browser, no page shows an untranslated English word in Russian, times
are on the browser's clock with UTC on hover, and the language switch, the time picker and auto-refresh
work and stay in the URL. Screenshots: test-artifacts/screenshots/i18n-<lang>-<page>.png."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import pytest

from support.auth import ADMIN_HEADERS
from telewatch.api.auth import SESSION_COOKIE
from telewatch.services.incidents import update_incidents
from telewatch.store import repo

from .conftest import E2E_SESSION, SCREENSHOTS, Served

pytestmark = pytest.mark.timeout(300)
NOW = pd.Timestamp.now(tz="UTC").floor("min")
LOCALES = {
    "ru": {"locale": "ru-RU", "timezone_id": "Europe/Moscow"},
    "en": {"locale": "en-US", "timezone_id": "UTC"},
}
# Latin words a Russian page may show: names of things, units and formats (not English prose)
ALLOWED = {
    "telewatch", "API", "CSV", "TSV", "UTC", "JSON", "YAML", "ClickHouse", "MSTL", "ISO", "GET", "POST",
    "gzip", "Ctrl", "KiB", "id", "EN", "RU", "MSK", "GMT", "KS", "MAD", "LSTM", "SVM", "RBF",
}  # fmt: skip
# the untranslated-text check: visible text nodes outside code, charts and elements marked translate="no"
UNTRANSLATED_JS = """(allowed) => {
  const bad = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest('script, style, code, pre, svg, [translate="no"], .hidden, .js-plotly-plot')) continue;
    if (!el.getClientRects().length && el.tagName !== 'OPTION') continue;
    for (const raw of n.textContent.split(/\\s+/)) {
      const word = raw.replace(/^[\\s(«"'\\[#]+|[\\s)»"'\\].,:;!?…—]+$/g, '');
      if (/^[A-Za-z][A-Za-z]+$/.test(word) && !allowed.includes(word)) { bad.push(`${word} in "${n.textContent.trim().slice(0, 80)}"`); break; }
    }
  }
  return bad;
}"""


def _plant(served: Served) -> dict[str, int]:
    """Two live minute metrics (one with a fresh anomaly), one silent for 40 minutes, one uploaded from
    2024 (stale), stored anomalies grouped into incidents, and a note on one."""
    rng = np.random.default_rng(5)
    ids: dict[str, int] = {}
    with served.store.transaction(series=True) as tx:
        live = pd.date_range(end=NOW, periods=2 * 1440, freq="1min")
        for k, name in enumerate(["web_latency", "throughput"]):
            ids[name] = repo.upsert_metric(tx, name=name, group="web", labels={"host": "app-1"})
            values = 100 + 10 * np.sin(np.arange(len(live)) / 90 + k) + rng.normal(0, 1, len(live))
            repo.write_points(tx, ids[name], pd.Series(values, index=live))
        quiet = live[live <= NOW - pd.Timedelta("40min")]
        ids["errors"] = repo.upsert_metric(tx, name="errors", group="web")
        repo.write_points(tx, ids["errors"], pd.Series(rng.normal(5, 1, len(quiet)), index=quiet))
        old = pd.date_range("2024-05-01", periods=3 * 1440, freq="1min", tz="UTC")
        ids["apdex"] = repo.upsert_metric(tx, name="apdex", group="archive")
        repo.write_points(tx, ids["apdex"], pd.Series(0.9 + rng.normal(0, 0.01, len(old)), index=old))
    cur = served.store.cursor()
    for k, (name, at) in enumerate(
        [
            ("web_latency", NOW - pd.Timedelta("20min")),
            ("throughput", NOW - pd.Timedelta("21min")),
            ("apdex", pd.Timestamp("2024-05-02 10:00", tz="UTC")),
        ]
    ):
        at_naive = at.tz_localize(None)
        cur.execute(
            "INSERT INTO anomalies (metric_id, detector, start_ts, end_ts, peak_ts, peak_score)"
            " VALUES (?, 'robust_bands', ?, ?, ?, ?)",
            [ids[name], at_naive, at_naive + pd.Timedelta("3min"), at_naive, 9.0 - k],
        )
    update_incidents(served.store, now=NOW)
    return ids


def _context(browser: Any, lang: str) -> Any:
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, **LOCALES[lang])
    ctx.add_cookies(
        [{"name": SESSION_COOKIE, "value": E2E_SESSION, "domain": "127.0.0.1", "path": "/", "httpOnly": True}]
    )
    return ctx


@pytest.fixture
def planted(served: Served) -> tuple[Served, dict[str, int]]:
    return served, _plant(served)


def _pages(ids: dict[str, int], incident: int) -> list[tuple[str, str, str]]:
    """(name, path, a selector that is there once the page has drawn its data)."""
    frm, to = (NOW - pd.Timedelta("1h")).strftime("%Y-%m-%dT%H:%MZ"), NOW.strftime("%Y-%m-%dT%H:%MZ")
    return [
        ("overview", "/", "#incidents-body table"),
        ("explorer", f"/explore/{ids['web_latency']}", "#main-chart.drawn"),
        ("scan", f"/scan?from={frm}&to={to}&group=web", ".ranked .item .small-chart.drawn"),
        ("upload", "/upload", "#upload-form"),
        ("incidents", "/incidents", "#incidents-table .incident-row"),
        ("incident", f"/incidents/{incident}", "#timeline li"),
        ("alerts", "/alerts", "#silence-list p, #silences-table"),
        ("tokens", "/settings/tokens", "#token-table"),
        ("login", "/login", "#login-form"),
    ]


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_every_page_in_the_browser_language(
    planted: tuple[Served, dict[str, int]], browser: Any, lang: str
) -> None:
    served, ids = planted
    incident = int(served.store.cursor().execute("SELECT max(id) FROM incidents").fetchone()[0])
    ctx = _context(browser, lang)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(30_000)
    try:
        for name, path, ready in _pages(ids, incident):
            page.goto(f"{served.url}{path}")
            page.wait_for_selector(ready)
            page.wait_for_timeout(300)  # charts and lists settle
            assert page.get_attribute("html", "lang") == lang, (name, path)
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"i18n-{lang}-{name}.png"), full_page=True)
            if lang == "ru":
                bad = page.evaluate(UNTRANSLATED_JS, sorted(ALLOWED))
                assert not bad, f"untranslated on {path}: {bad}"
        assert not errors, errors
    finally:
        ctx.close()


def test_times_on_the_browser_clock_with_utc_on_hover(
    planted: tuple[Served, dict[str, int]], browser: Any
) -> None:
    served, ids = planted
    ctx = _context(browser, "ru")
    page = ctx.new_page()
    try:
        page.goto(f"{served.url}/")
        cell = page.locator(f'tr.metric[data-metric-id="{ids["web_latency"]}"] time')
        moscow = (NOW + pd.Timedelta("3h")).strftime("%d.%m.%Y, %H:%M")
        assert cell.inner_text() == moscow  # Europe/Moscow is UTC+3, Russian date order
        assert cell.get_attribute("title") == NOW.strftime("%Y-%m-%d %H:%M:%S UTC")
        # the overview's states: a fresh anomaly, a metric silent for 40 minutes, an upload from 2024
        states = {
            m: page.locator(f'tr.metric[data-metric-id="{i}"] .state').get_attribute("data-state")
            for m, i in ids.items()
        }
        assert states == {
            "web_latency": "anomalous",
            "throughput": "anomalous",
            "errors": "no data",
            "apdex": "stale",
        }
        silent = page.locator(f'tr.metric[data-metric-id="{ids["errors"]}"] .state').inner_text()
        assert re.fullmatch(r"нет данных 4\d мин", silent), silent
        # the open incidents show their type and number of metrics
        row = page.locator("#incidents-body tr.incident-row").first
        assert row.locator(".incident-metrics").inner_text().strip() not in {"", "—"}
        assert row.locator(".incident-type").inner_text().strip() != ""
        # the time zone picker: UTC, kept in the URL
        page.select_option("#tz-select", "UTC")
        page.wait_for_url("**tz=UTC**")
        assert cell.inner_text() == NOW.strftime("%d.%m.%Y, %H:%M")
    finally:
        ctx.close()


def test_language_switch_and_accept_language(planted: tuple[Served, dict[str, int]], browser: Any) -> None:
    served, _ = planted
    ctx = _context(browser, "en")
    page = ctx.new_page()
    try:
        page.goto(f"{served.url}/incidents")
        assert page.get_attribute("html", "lang") == "en"
        assert page.inner_text("h2.page") == "Incidents"
        with page.expect_navigation():
            page.click('#lang-switch a[data-lang="ru"]')
        assert "lang=ru" in page.url
        assert page.get_attribute("html", "lang") == "ru"
        assert page.inner_text("h2.page") == "Инциденты"
        # remembered (a cookie): the next page is Russian without ?lang=
        page.goto(f"{served.url}/alerts")
        assert page.get_attribute("html", "lang") == "ru"
    finally:
        ctx.close()


def test_incidents_of_every_state_most_recent_activity_first(
    planted: tuple[Served, dict[str, int]], page: Any
) -> None:
    served, _ = planted
    page.goto(f"{served.url}/incidents")
    page.wait_for_selector("#incidents-table .incident-row")
    assert page.input_value("#state-filter") == ""  # every state by default
    ids = [
        int(x)
        for x in page.locator("#incidents-table .incident-row").evaluate_all(
            "rs => rs.map((r) => r.dataset.incidentId)"
        )
    ]
    listed = (
        served.store.cursor()
        .execute("SELECT id FROM incidents ORDER BY greatest(end_ts, updated_at) DESC, id DESC")
        .fetchall()
    )
    assert ids == [r[0] for r in listed]
    assert len(ids) >= 2


def test_time_picker_and_auto_refresh_stay_in_the_url(
    planted: tuple[Served, dict[str, int]], page: Any
) -> None:
    served, ids = planted
    # incidents: the last hour keeps the fresh incident and drops the 2024 one
    page.goto(f"{served.url}/incidents")
    page.wait_for_selector("#incidents-table .incident-row")
    everything = page.locator("#incidents-table .incident-row").count()
    page.select_option("#range-select", "1h")
    page.wait_for_function(
        f"() => document.querySelectorAll('#incidents-table .incident-row').length < {everything}"
    )
    assert "range=1h" in page.url
    page.select_option("#refresh-select", "30s")
    assert "refresh=30s" in page.url
    page.reload()
    assert page.input_value("#range-select") == "1h"
    assert page.input_value("#refresh-select") == "30s"
    # auto-refresh: the list is fetched again on its own (the clock is sped up)
    page.clock.install()
    page.goto(f"{served.url}/incidents?range=1h&refresh=30s")
    page.wait_for_selector("#incidents-table .incident-row")
    first = page.inner_text("#refreshed-at")
    page.clock.fast_forward(31_000)
    page.wait_for_function("(t) => document.getElementById('refreshed-at').textContent !== t", arg=first)
    # explorer: the last 6 hours of a live metric, in the URL
    page.goto(f"{served.url}/explore/{ids['web_latency']}?range=6h")
    page.wait_for_selector("#main-chart.drawn")
    lo, hi = page.evaluate("() => [window.__tw.view.from, window.__tw.view.to]")
    assert abs((hi - lo) - 6 * 3600e3) < 120e3
    # a custom window
    page.select_option("#range-select", "custom")
    page.fill("#range-from", (NOW - pd.Timedelta("3h")).strftime("%Y-%m-%dT%H:%M"))
    page.fill("#range-to", (NOW - pd.Timedelta("1h")).strftime("%Y-%m-%dT%H:%M"))
    page.click("#range-apply")
    page.wait_for_url(re.compile(r"from=.*to="))
    assert "range=" not in page.url
    # overview: the sparkline's span follows the picker
    page.goto(f"{served.url}/?range=7d")
    assert "168 h" in page.inner_text("#metrics-table thead")


def test_static_files_are_compressed_and_cached(planted: tuple[Served, dict[str, int]]) -> None:
    import httpx

    served, ids = planted
    with httpx.Client(base_url=served.url, headers={**ADMIN_HEADERS, "Accept-Encoding": "gzip"}) as http:
        for path in (
            "/static/plotly.min.js",
            "/static/ui/explore.js",
            "/static/ui/style.css",
            f"/api/series/{ids['web_latency']}",  # JSON
            "/",  # a page
        ):
            r = http.get(path)
            assert r.status_code == 200, path
            assert r.headers.get("content-encoding") == "gzip", path
        assert "max-age" in http.get("/static/ui/common.js").headers.get("cache-control", "")
        assert "max-age" in http.get("/static/plotly.min.js").headers.get("cache-control", "")


def test_chart_pages_paint_before_plotly(planted: tuple[Served, dict[str, int]], page: Any) -> None:
    served, ids = planted
    # no page waits for Plotly to paint: the explorer runs it after a preview, the others defer it
    page.goto(f"{served.url}/explore/{ids['web_latency']}")
    page.wait_for_selector("#main-chart.drawn")
    preview, drawn = page.evaluate("() => [window.__tw.previewAt, window.__tw.firstPaintAt]")
    assert preview is not None
    assert preview <= drawn
    assert page.locator("#main-chart .preview").count() == 0  # replaced by the interactive chart
    for path in (f"/explore/{ids['web_latency']}", "/scan", "/incidents/1"):
        html = page.request.get(f"{served.url}{path}").text()
        blocking = re.findall(r"<script src=\"/static/plotly\.min\.js\"(?![^>]*\bdefer\b)[^>]*>", html)
        assert not blocking, (path, blocking)
