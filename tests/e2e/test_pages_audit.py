"""What a browser audit found on the overview, incidents, incident, scan and alerts pages, checked in real
headless Chromium: an hourly metric's sparkline is one line, small charts keep their date line and a
one-minute window stays visible, /alerts makes no failed request when alerting is not configured, an
expired silence shows when it expired, verdicts survive a reload, the group result stays on screen, and a
read sign-in sees write buttons disabled."""

from __future__ import annotations

import re
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from support.auth import ADMIN_HEADERS, READ_TOKEN
from telewatch.store import repo

from .conftest import Served

pytestmark = pytest.mark.timeout(300)
END = pd.Timestamp("2024-05-03 00:00", tz="UTC")
MIN = pd.Timedelta(minutes=1)


def _plant(served: Served) -> dict[str, int]:
    """Three minute metrics over two days, one hourly metric, and three stored one-minute anomalies."""
    rng = np.random.default_rng(3)
    ids: dict[str, int] = {}
    with served.store.transaction(series=True) as tx:
        idx = pd.date_range(end=END, periods=2 * 1440, freq="1min")
        for k, name in enumerate(["web_latency", "throughput", "errors"]):
            values = 100 + 10 * np.sin(np.arange(len(idx)) / 90 + k) + rng.normal(0, 1, len(idx))
            ids[name] = repo.upsert_metric(tx, name=name, group="web")
            repo.write_points(tx, ids[name], pd.Series(values, index=idx))
        hourly = pd.date_range(end=END, periods=72, freq="1h")
        ids["ambient_hourly"] = repo.upsert_metric(tx, name="ambient_hourly", group="nab")
        repo.write_points(
            tx, ids["ambient_hourly"], pd.Series(70 + 3 * np.sin(np.arange(72) / 4), index=hourly)
        )
    cur = served.store.cursor()
    for k, (name, at) in enumerate(
        [
            ("web_latency", END - pd.Timedelta("10h")),
            ("throughput", END - pd.Timedelta("10h")),
            ("errors", END - pd.Timedelta("20h")),
        ]
    ):
        at_naive = at.tz_localize(None)
        cur.execute(
            "INSERT INTO anomalies (metric_id, detector, start_ts, end_ts, peak_ts, peak_score)"
            " VALUES (?, 'test', ?, ?, ?, ?)",
            [ids[name], at_naive, at_naive, at_naive, 9.0 - k],
        )
    return ids


def _ticks_inside(chart: Any) -> list[tuple[str, float, float]]:
    """(text, bottom of the tick label, bottom of the chart) for each x tick label of a Plotly chart."""
    return chart.evaluate(  # type: ignore[no-any-return]
        """el => [...el.querySelectorAll('.xtick text')].filter((t) => t.textContent.trim())
          .map((t) => [t.textContent, t.getBoundingClientRect().bottom, el.getBoundingClientRect().bottom])"""
    )


def _failed_requests(page: Any) -> list[str]:
    failed: list[str] = []
    page.on(
        "response",
        lambda r: failed.append(f"{r.status} {r.request.method} {r.url}") if r.status >= 400 else None,
    )
    return failed


def test_an_hourly_metric_sparkline_is_one_connected_line(served: Served, page: Any) -> None:
    ids = _plant(served)
    page.goto(f"{served.url}/")
    row = page.locator(f'tr.metric[data-metric-id="{ids["ambient_hourly"]}"]')
    assert row.locator("svg.spark polyline").count() == 1
    points = (row.locator("svg.spark polyline").get_attribute("points") or "").split()
    assert len(points) == 24  # one per hour of the last day
    box = row.locator("svg.spark polyline").bounding_box()
    assert box is not None
    assert box["width"] > 150  # drawn across the whole sparkline
    for name in ("web_latency", "throughput", "errors"):
        assert page.locator(f'tr.metric[data-metric-id="{ids[name]}"] svg.spark polyline').count() == 1
    served.shot(page, "audit-overview-sparklines")


def test_small_charts_keep_their_date_line_and_a_one_minute_window_shows(served: Served, page: Any) -> None:
    _plant(served)
    with httpx.Client(base_url=served.url, headers=ADMIN_HEADERS, timeout=30) as http:
        assert http.post("/api/incidents/update").status_code == 200
        incidents = http.get("/api/incidents", params={"limit": 50}).json()
    one_minute = next(i for i in incidents if i["start"] == i["end"])
    page.goto(f"{served.url}/incidents/{one_minute['id']}")
    page.wait_for_selector("#incident-metrics .small-chart.drawn")
    chart = page.locator("#incident-metrics .small-chart.drawn").first
    ticks = _ticks_inside(chart)
    assert len(ticks) >= 2
    # the date line ("May 02") under the first tick is inside the chart, not clipped below it
    assert any("May" in text for text, _, _ in ticks), ticks
    for text, bottom, chart_bottom in ticks:
        assert bottom <= chart_bottom + 0.5, (text, bottom, chart_bottom)
    shade = chart.locator(".shapelayer path").first.bounding_box()
    assert shade is not None
    assert shade["width"] >= 4, shade  # a one-minute window is still a visible band
    served.shot(page, "audit-incident-small-charts")

    # the window scan's result cards: the same two-line ticks and a visible one-minute window
    start = END - pd.Timedelta("10h")
    page.goto(f"{served.url}/scan?from={start:%Y-%m-%dT%H:%MZ}&to={start + MIN:%Y-%m-%dT%H:%MZ}")
    page.wait_for_selector(".ranked .item .small-chart.drawn")
    card = page.locator(".ranked .item .small-chart.drawn").first
    ticks = _ticks_inside(card)
    assert any("May" in text for text, _, _ in ticks), ticks
    for text, bottom, chart_bottom in ticks:
        assert bottom <= chart_bottom + 0.5, (text, bottom, chart_bottom)
    shade = card.locator(".shapelayer path").first.bounding_box()
    assert shade is not None
    assert shade["width"] >= 4, shade
    # the hourly metric has one point in that minute and hardly any in the stretch before it: left out
    # of the ranking, and the summary says so
    summary = page.inner_text("#scan-summary")
    assert "3 metric(s) ranked" in summary, summary
    assert "1 left out (1 without enough history before it)" in summary, summary
    served.shot(page, "audit-scan-small-charts")


def test_alerts_page_without_alerting_makes_no_failed_request(served: Served, page: Any) -> None:
    failed = _failed_requests(page)
    page.goto(f"{served.url}/alerts")
    page.wait_for_selector("#silence-list >> text=No silences.")
    page.click("[data-tab=history]")
    page.wait_for_selector("#history-list >> text=No notifications yet.")
    page.click("[data-tab=channels]")
    page.wait_for_selector('#channel-list [data-unconfigured="Channels"]')
    assert "TELEWATCH_ALERTING_CONFIG" in page.inner_text("#channel-list")
    page.click("[data-tab=rules]")
    page.wait_for_selector('#rule-list [data-unconfigured="Alert rules"]')
    with page.expect_response("**/api/monitor-status") as answer:
        page.click("[data-tab=monitors]")
    assert answer.value.status == 200
    page.wait_for_selector("#monitor-list >> text=No monitors.")
    served.shot(page, "audit-alerts-unconfigured")
    page.wait_for_timeout(300)
    assert failed == [], failed


def test_an_expired_silence_shows_when_it_was_expired(served: Served, page: Any) -> None:
    with httpx.Client(base_url=served.url, headers=ADMIN_HEADERS, timeout=30) as http:
        made = http.post(
            "/api/silences",
            json={
                "matchers": [{"name": "metric", "op": "=", "value": "web_latency"}],
                "duration_minutes": 120,
            },
        ).json()
        expired = http.delete(f"/api/silences/{made['id']}").json()
    assert expired["expired_at"] is not None
    page.goto(f"{served.url}/alerts")
    page.check("#silence-expired")
    cell = page.wait_for_selector(f'tr[data-silence-id="{made["id"]}"] td.silence-end[data-expired-at]')
    text = cell.inner_text()
    expired_at = pd.Timestamp(expired["expired_at"]).strftime("%Y-%m-%d %H:%M")
    planned = pd.Timestamp(made["ends_at"]).strftime("%Y-%m-%d %H:%M")
    assert expired_at in text, text
    assert "expired" in text
    assert planned not in text  # the planned end (two hours later) is only in the tooltip
    assert planned in (cell.get_attribute("title") or "")
    served.shot(page, "audit-alerts-expired-silence")


def test_a_verdict_survives_a_reload(served: Served, page: Any) -> None:
    _plant(served)
    page.goto(f"{served.url}/incidents")
    page.wait_for_selector("#anomalies-table .anomaly-row")
    first = page.locator("#anomalies-table .anomaly-row").first
    anomaly_id = first.get_attribute("data-anomaly-id")
    first.locator('button[data-feedback="false_alarm"]').click()
    page.wait_for_selector(
        f'tr[data-anomaly-id="{anomaly_id}"] .feedback-result:has-text("marked false alarm")'
    )
    page.reload()
    row = page.locator(f'tr[data-anomaly-id="{anomaly_id}"]')
    row.locator('.feedback-buttons[data-verdict="false_alarm"]').wait_for()
    assert "verdict: false alarm" in row.inner_text()
    assert row.locator('button[data-feedback="false_alarm"]').get_attribute("aria-pressed") == "true"
    assert row.locator('button[data-feedback="confirmed"]').get_attribute("aria-pressed") == "false"
    # the other anomalies have no verdict
    assert page.locator(".feedback-buttons[data-verdict]").count() == 1
    # the metric link opens the explorer on the anomaly's window (with a margin)
    href = row.locator("a").first.get_attribute("href") or ""
    assert re.fullmatch(
        r"/explore/\d+\?from=\d{4}-\d\d-\d\dT\d\d:\d\dZ&to=\d{4}-\d\d-\d\dT\d\d:\d\dZ", href
    ), href
    served.shot(page, "audit-incidents-verdict-after-reload")

    # the incident page: a verdict on the incident, after a reload
    with httpx.Client(base_url=served.url, headers=ADMIN_HEADERS, timeout=30) as http:
        assert http.post("/api/incidents/update").status_code == 200
        incident_id = http.get("/api/incidents").json()[0]["id"]
    page.goto(f"{served.url}/incidents/{incident_id}")
    page.click('button[data-feedback="confirmed"]')
    page.wait_for_selector("#verdict:has-text('current verdict: confirmed')")
    page.reload()
    page.wait_for_selector("#verdict:has-text('current verdict: confirmed')")
    pressed = page.locator('#incident .feedback-buttons button[aria-pressed="true"]')
    assert pressed.count() == 1
    assert pressed.get_attribute("data-feedback") == "confirmed"


def test_an_incident_page_names_its_monitor_and_two_monitors_keep_apart(served: Served, page: Any) -> None:
    """web_latency and throughput are anomalous at the same minute; fetched by two monitors they make
    two incidents, and each incident's page names its monitor (in both languages)."""
    from telewatch.store import monitors as monitors_repo

    ids = _plant(served)
    cur = served.store.cursor()
    for name, monitor in (("web_latency", "web-key-features"), ("throughput", "edge-traffic")):
        monitors_repo.record_series(
            cur, monitor=monitor, series_key=name, metric_id=ids[name], last_point=END
        )
    with httpx.Client(base_url=served.url, headers=ADMIN_HEADERS, timeout=30) as http:
        assert http.post("/api/incidents/update").status_code == 200
        listed = http.get("/api/incidents").json()
        by_monitor = {x["monitor"]: x for x in listed}
        assert set(by_monitor) == {"web-key-features", "edge-traffic", None}, listed
        web = http.get(f"/api/incidents/{by_monitor['web-key-features']['id']}").json()
        assert len(web["anomaly_ids"]) == 1, web
        edge = http.get("/api/incidents", params={"monitor": "edge-traffic"}).json()
        assert [x["id"] for x in edge] == [by_monitor["edge-traffic"]["id"]]
    page.goto(f"{served.url}/incidents")
    page.wait_for_selector("#incidents-table .incident-row")
    cells = page.locator("#incidents-table .incident-monitor").all_inner_texts()
    assert sorted(cells) == ["edge-traffic", "web-key-features", "—"], cells
    page.goto(f"{served.url}/incidents/{by_monitor['web-key-features']['id']}")
    page.wait_for_selector("#incident-monitor")
    assert page.inner_text("#incident-monitor") == "web-key-features"
    page.goto(f"{served.url}/incidents/{by_monitor[None]['id']}")
    page.wait_for_selector("#incident-title")
    assert page.locator("#incident-monitor").count() == 0  # an incident of metrics no monitor fetches


def test_the_group_result_stays_visible(served: Served, page: Any) -> None:
    _plant(served)
    page.goto(f"{served.url}/incidents")
    page.select_option("#state-filter", "")
    page.wait_for_selector("#incident-count:has-text('0 incident(s)')")
    page.click("#group-incidents")
    outcome = page.wait_for_selector("#group-outcome")
    page.wait_for_selector("#incidents-table .incident-row")
    page.wait_for_timeout(500)  # drawIncidents() has redrawn the list and its count by now
    assert outcome.is_visible()
    text = outcome.inner_text()
    created = len(page.locator("#incidents-table .incident-row").all())
    assert f"{created} new, 0 updated" in text, text
    assert page.inner_text("#incident-count") == f"{created} incident(s)"
    # an admin sign-in: the write buttons are enabled
    assert page.is_enabled("#group-incidents")
    assert page.locator(".needs-admin").count() == 0
    served.shot(page, "audit-incidents-group-result")


def test_a_read_sign_in_sees_no_enabled_write_buttons(served: Served, browser: Any) -> None:
    ids = _plant(served)
    with httpx.Client(base_url=served.url, headers=ADMIN_HEADERS, timeout=30) as http:
        assert http.post("/api/incidents/update").status_code == 200
        incident_id = http.get("/api/incidents").json()[0]["id"]
        http.post(
            "/api/silences",
            json={"matchers": [{"name": "metric", "op": "=", "value": "errors"}], "duration_minutes": 60},
        )
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    reader = context.new_page()
    errors: list[str] = []
    reader.on("pageerror", lambda exc: errors.append(str(exc)))
    failed = _failed_requests(reader)
    try:
        reader.goto(f"{served.url}/login?token={READ_TOKEN}")
        reader.wait_for_selector("#main-nav")
        writes = "[data-write], #upload-btn, #store-detect"
        pages = [
            ("/incidents", "#anomalies-table", {"#group-incidents", '[data-feedback="false_alarm"]'}),
            (f"/incidents/{incident_id}", "#incident-title", {"#add-note", '[data-feedback="confirmed"]'}),
            ("/alerts", ".silence-row", {"#silence-create", "[data-expire]"}),
            ("/upload", "#upload-form", {"#upload-btn"}),
            (f"/explore/{ids['web_latency']}", "#main-chart", {"#store-detect"}),
        ]
        for path, ready, expected in pages:
            reader.goto(f"{served.url}{path}")
            reader.wait_for_selector(ready)
            reader.wait_for_timeout(300)
            for selector in expected:  # the page's write buttons are there …
                assert reader.locator(selector).count() >= 1, (path, selector)
            found = reader.locator(writes)
            assert found.count() >= len(expected)
            for k in range(found.count()):  # … and every one of them is disabled, with the reason
                button = found.nth(k)
                assert button.is_disabled(), (path, button.evaluate("b => b.outerHTML"))
                assert "admin token" in (button.get_attribute("title") or ""), path
            served.shot(reader, f"audit-read-{path.strip('/').replace('/', '-')}")
            if path == "/upload":
                # no page up to here asked for a write (the explorer's own POST /api/detect on load is
                # refused for a read token: the explorer and the auth's scope rules, not these pages)
                assert failed == [], failed
        # a button that a page enables later (upload after a preview) is disabled again at once
        reader.goto(f"{served.url}/upload")
        reader.evaluate("() => { document.getElementById('upload-btn').disabled = false; }")
        reader.wait_for_function("() => document.getElementById('upload-btn').disabled")
    finally:
        context.close()
    assert not errors, errors
