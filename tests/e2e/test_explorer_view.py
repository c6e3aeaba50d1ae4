"""The explorer in real headless Chromium over a small store: stored anomalies and labelled windows drawn
and listed, opening at a window given in the URL, the URL and the y-axis following zoom, the band at the
zoomed resolution, one series fetch per load, and a bad detector parameter named in the message."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd
import pytest

from support.auth import ADMIN_HEADERS
from telewatch.services import detection
from telewatch.store import repo

from .conftest import Served
from .test_ui import _drag_across

pytestmark = pytest.mark.timeout(300)
START = pd.Timestamp("2024-05-01", tz="UTC")
DAYS = 4
SPIKE_AT = START + pd.Timedelta(hours=12)  # day 1: a spike to about 1000
DIP_AT = START + pd.Timedelta(days=2, hours=10)  # day 3: a dip of 150, labelled


def ms(ts: pd.Timestamp) -> int:
    return int(ts.value // 1_000_000)


def build_store(served: Served) -> int:
    """4 days of 1-minute points (5,760: the whole range is resampled), a daily cycle around 100, a spike,
    a dip; stored anomalies from stored detection, and two labelled windows."""
    idx = pd.date_range(START, periods=DAYS * 1440, freq="1min", tz="UTC")
    rng = np.random.default_rng(7)
    values = 100 + 10 * np.sin(np.arange(len(idx)) * 2 * np.pi / 1440) + rng.normal(0, 1, len(idx))
    spike = int(idx.searchsorted(SPIKE_AT))
    values[spike : spike + 3] = 1000.0
    dip = int(idx.searchsorted(DIP_AT))
    values[dip : dip + 8] -= 150.0
    with served.store.transaction(series=True) as tx:
        mid = repo.upsert_metric(tx, name="active_users", group="web", unit="users")
        repo.write_points(tx, mid, pd.Series(values, index=idx))
        repo.write_label_windows(
            tx,
            [
                (
                    mid,
                    DIP_AT - pd.Timedelta(minutes=15),
                    DIP_AT + pd.Timedelta(minutes=30),
                    "anomaly",
                    "test",
                    "dip",
                ),
                (
                    mid,
                    SPIKE_AT - pd.Timedelta(minutes=5),
                    SPIKE_AT + pd.Timedelta(minutes=10),
                    "confirmed",
                    "feedback",
                    None,
                ),
            ],
        )
    report = detection.detect_metrics(served.store, metric_ids=[mid], detector="robust_bands", threshold=5)
    assert len(report.anomalies) >= 2, report.anomalies
    return mid


def wait_settled(page: Any) -> None:
    """The series drawn, the stored overlays, the ad-hoc detection and the forecast answered."""
    page.wait_for_selector("#main-chart.drawn")
    page.wait_for_selector("#stored-list[data-loaded]")
    page.wait_for_selector("#detect-table")
    page.wait_for_function("() => document.getElementById('main-chart').dataset.forecast")


def x_range(page: Any) -> list[int]:
    """The chart's x-range in ms (Plotly holds wall-clock text in the page's time zone; ``plotMs`` reads it)."""
    return page.evaluate("() => document.getElementById('main-chart').layout.xaxis.range.map(plotMs)")


def visible_extent(page: Any, metas: list[str]) -> list[float]:
    """min and max of the chart's traces named ``metas`` inside the x-range shown."""
    return page.evaluate(
        """(metas) => {
          const el = document.getElementById('main-chart');
          const [lo, hi] = el.layout.xaxis.range.map(plotMs);
          let min = Infinity, max = -Infinity;
          for (const t of el.data) {
            if (!metas.includes(t.meta)) continue;
            t.x.forEach((x, i) => { const v = t.y[i], at = plotMs(x);
              if (v != null && at >= lo && at <= hi) { min = Math.min(min, v); max = Math.max(max, v); } });
          }
          return [min, max];
        }""",
        metas,
    )


def test_stored_anomalies_and_labels_are_drawn_and_listed(served: Served, page: Any) -> None:
    mid = build_store(served)
    api = page.request.get(f"{served.url}/api/anomalies?metric={mid}", headers=ADMIN_HEADERS).json()
    labels = page.request.get(f"{served.url}/api/labels?metric={mid}", headers=ADMIN_HEADERS).json()
    assert len(api) >= 2
    assert len(labels) == 2
    page.goto(f"{served.url}/explore/{mid}")
    wait_settled(page)
    drawn = page.evaluate(
        """() => {
          const el = document.getElementById('main-chart');
          const stored = el.data.find((t) => t.meta === 'stored');
          const shapes = (name) => (el.layout.shapes || []).filter((s) => s.name === name);
          return { markers: stored ? stored.x.length : 0, text: stored ? stored.text : [],
                   storedShapes: shapes('stored').length, labelShapes: shapes('label').map((s) => [s.x0, s.x1]) };
        }"""
    )
    assert drawn["markers"] == len(api)
    assert drawn["storedShapes"] == len(api)
    assert all("robust_bands" in t and "peak score" in t for t in drawn["text"])
    assert len(drawn["labelShapes"]) == len(labels)
    assert page.locator("#stored-table tbody tr").count() == len(api)
    assert page.locator("#labels-table tbody tr").count() == len(labels)
    assert page.inner_text("#stored-count") == f"({len(api)})"
    # the spike's stored window is drawn where the API puts it
    peaks = {a["peak"][:16] for a in api}
    assert SPIKE_AT.strftime("%Y-%m-%dT%H:%M") in {p[:16] for p in peaks} or any(
        abs(pd.Timestamp(p).value - SPIKE_AT.value) <= 5 * 60e9 for p in peaks
    )
    served.shot(page, "explorer-stored-anomalies")
    # both overlays toggle
    page.uncheck("#show-labels")
    page.uncheck("#show-stored")
    hidden = page.evaluate(
        """() => { const el = document.getElementById('main-chart');
          return { shapes: (el.layout.shapes || []).filter((s) => s.name === 'stored' || s.name === 'label').length,
                   visible: el.data.find((t) => t.meta === 'stored').visible }; }"""
    )
    assert hidden == {"shapes": 0, "visible": False}
    page.check("#show-stored")
    # "show" on a listed anomaly zooms there (and the URL follows)
    page.locator("#stored-table tbody tr button.zoom-to").first.click()
    page.wait_for_function("() => location.search.includes('from=')")
    page.wait_for_function("() => document.getElementById('main-chart').dataset.view !== 'whole'")
    newest = api[0]
    lo, hi = x_range(page)
    assert lo <= ms(pd.Timestamp(newest["start"]))
    assert hi >= ms(pd.Timestamp(newest["end"]))
    assert hi - lo < 6 * 3600_000


def test_one_series_fetch_per_load(served: Served, page: Any) -> None:
    mid = build_store(served)
    series_requests: list[str] = []
    page.on("request", lambda r: series_requests.append(r.url) if "/api/series/" in r.url else None)
    page.goto(f"{served.url}/explore/{mid}")
    wait_settled(page)
    page.wait_for_timeout(1500)  # a relayout-triggered refetch would come within 120 ms + the fetch
    # the whole range is resampled: one fetch = avg, min and max of the same buckets
    aggs = sorted(parse_qs(urlparse(u).query)["agg"][0] for u in series_requests)
    assert aggs == ["avg", "max", "min"], series_requests
    # a zoom is one more fetch (raw minutes for a day: a single request)
    series_requests.clear()
    page.evaluate(
        "() => Plotly.relayout(document.getElementById('main-chart'),"
        " {'xaxis.range': ['2024-05-02 00:00', '2024-05-02 12:00']})"
    )
    page.wait_for_function("() => document.getElementById('main-chart').dataset.step === 'raw'")
    page.wait_for_timeout(1000)
    assert len(series_requests) == 1, series_requests


def test_opens_at_the_url_window_and_the_url_follows_zoom(served: Served, page: Any) -> None:
    mid = build_store(served)
    frm, to = START + pd.Timedelta(days=2, hours=9), START + pd.Timedelta(days=2, hours=11)
    # a browser east of UTC: the chart reads the browser's clock (Kolkata, +5:30); the URL stays UTC
    page.context.new_cdp_session(page).send("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Kolkata"})
    page.goto(f"{served.url}/explore/{mid}?from={frm:%Y-%m-%dT%H:%M}Z&to={to:%Y-%m-%dT%H:%M}Z")
    wait_settled(page)
    assert x_range(page) == [ms(frm), ms(to)]
    assert page.get_attribute("#main-chart", "data-step") == "raw"  # two hours: raw minutes
    assert "from=2024-05-03T09:00Z" in page.url
    assert "to=2024-05-03T11:00Z" in page.url
    # the band comes at the view's resolution: the detection re-runs for the visible range
    page.wait_for_selector("#zoom-note[data-state=done]")
    band_points = page.evaluate(
        """() => { const el = document.getElementById('main-chart');
          const [lo, hi] = el.layout.xaxis.range.map(plotMs);
          const b = el.data.find((t) => t.meta === 'band-hi');
          return b ? b.x.filter((x) => { const t = plotMs(x); return t >= lo && t <= hi; }).length : 0; }"""
    )
    assert band_points >= 100, band_points  # 120 minutes shown
    assert page.evaluate("() => new Date(0).getTimezoneOffset()") == -330
    # the dip's stored anomaly and label are drawn at their times, on the series' own clock
    drawn = page.evaluate(
        """() => { const el = document.getElementById('main-chart');
          const s = el.data.find((t) => t.meta === 'series'), st = el.data.find((t) => t.meta === 'stored');
          const label = el.layout.shapes.find((x) => x.name === 'label' && plotMs(x.x0) > plotMs(el.layout.xaxis.range[0]));
          let low = 0; s.y.forEach((v, i) => { if (v < s.y[low]) low = i; });
          return { seriesLow: plotMs(s.x[low]), storedPeaks: st.x.map(plotMs), label: [plotMs(label.x0), plotMs(label.x1)],
                   tick: el.querySelector('.xtick text').textContent }; }"""
    )
    assert any(abs(p - drawn["seriesLow"]) <= 8 * 60_000 for p in drawn["storedPeaks"]), drawn
    assert ms(DIP_AT) <= drawn["seriesLow"] < ms(DIP_AT) + 8 * 60_000, drawn
    assert drawn["label"] == [ms(DIP_AT - pd.Timedelta(minutes=15)), ms(DIP_AT + pd.Timedelta(minutes=30))]
    assert drawn["tick"].startswith("14:30"), drawn  # the axis reads Kolkata's clock (09:00 UTC)
    served.shot(page, "explorer-url-window")
    # a drag zooms in further: the URL names the new window
    _drag_across(page, "#main-chart", 0.25, 0.75)
    page.wait_for_function(f"() => !location.search.includes('from={frm:%Y-%m-%dT%H:%M}Z')")
    q = parse_qs(urlparse(page.url).query)
    lo, hi = x_range(page)
    assert abs(ms(pd.Timestamp(q["from"][0])) - lo) <= 1000
    assert abs(ms(pd.Timestamp(q["to"][0])) - hi) <= 1000
    assert ms(frm) < lo < hi < ms(to)
    # the shared link opens that window
    page.goto(page.url)
    wait_settled(page)
    lo2, hi2 = x_range(page)
    assert abs(lo2 - lo) <= 1000
    assert abs(hi2 - hi) <= 1000


def test_zoom_fits_the_y_axis_to_what_is_visible(served: Served, page: Any) -> None:
    mid = build_store(served)
    page.goto(f"{served.url}/explore/{mid}")
    wait_settled(page)
    whole = page.evaluate("() => document.getElementById('main-chart').layout.yaxis.range")
    assert whole[1] > 900  # the spike of day 1
    page.evaluate(
        "() => Plotly.relayout(document.getElementById('main-chart'),"
        " {'xaxis.range': ['2024-05-02 00:00', '2024-05-03 00:00']})"
    )
    page.wait_for_function("() => document.getElementById('main-chart').dataset.step === 'raw'")
    page.wait_for_selector("#zoom-note[data-state=done]")
    page.wait_for_timeout(300)
    y = page.evaluate("() => document.getElementById('main-chart').layout.yaxis.range")
    lo, hi = visible_extent(page, ["series"])
    assert 80 < lo < hi < 125, (lo, hi)
    assert y[0] <= lo, (y, lo)
    assert y[1] >= hi, (y, hi)
    assert y[1] < 200, y  # the spike outside the view no longer sets the scale
    assert "from=2024-05-02T00:00Z" in page.url
    assert "to=2024-05-03T00:00Z" in page.url
    served.shot(page, "explorer-zoom-y-fit")
    # back to the whole range: the spike's scale again, and the URL without a window
    page.click("#reset-zoom")
    page.wait_for_function("() => document.getElementById('main-chart').layout.yaxis.range[1] > 900")
    assert "from=" not in page.url


def test_a_bad_detector_parameter_is_named(served: Served, page: Any) -> None:
    mid = build_store(served)
    page.goto(f"{served.url}/explore/{mid}")
    wait_settled(page)
    field = page.locator('.det[data-detector="robust_bands"] input[data-param="window"]')
    field.fill("abc")
    page.click("#run-detect")
    err = page.wait_for_selector('#detect-table tr[data-detector="robust_bands"] .detector-error')
    text = err.inner_text()
    assert 'window = "abc"' in text, text
    assert "invalid" in (field.get_attribute("class") or "")
    served.shot(page, "explorer-bad-parameter")
