"""Finding 4: link and style injection in charts. Metric names (legend) and units (axis title) went to
Plotly, which renders its HTML subset: ``<a href="https://…">`` in a unit became a working link, ``style``
was honoured. Now chart texts from data are passed as plain text, checked in a real Chromium."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from support.auth import ADMIN_HEADERS, READ_HEADERS

from .conftest import Served, csv_upload

pytestmark = pytest.mark.timeout(300)
NAME = '<a href="https://evil.example/name">legend</a>'
UNIT = '<a href="https://evil.example/unit" style="font-size:90px;fill:red">ms</a><b>x</b>'


def test_names_and_units_are_plain_text_in_charts(client: TestClient, served: Served, context: Any) -> None:
    r = client.post(
        "/api/ingest",
        files={"file": ("m.csv", csv_upload([NAME]), "text/csv")},
        data={"unit": UNIT},
        headers=ADMIN_HEADERS,
    )
    assert r.status_code == 200, r.text
    metric = client.get("/api/metrics", headers=READ_HEADERS).json()[0]
    assert metric["unit"] == UNIT
    page = context.new_page()
    page.goto(f"{served.url}/explore/{metric['id']}")
    page.wait_for_selector("#main-chart .main-svg")
    page.wait_for_selector("#main-chart .legendtext")
    links = page.evaluate("() => [...document.querySelectorAll('#main-chart svg a')].map((a) => a.outerHTML)")
    assert links == [], links
    legend = page.locator("#main-chart .legendtext").all_text_contents()
    assert NAME in legend  # shown as it is, tags and all
    title = page.locator("#main-chart .ytitle").text_content()
    assert title == UNIT
    styled = page.evaluate(
        '() => [...document.querySelectorAll(\'#main-chart svg [style*="font-size:90px"], #main-chart svg'
        ' [style*="font-size: 90px"], #main-chart svg tspan[style*="bold"]\')].length'
    )
    assert styled == 0

    page.goto(f"{served.url}/scan")  # the window scan's context chart names the metric too
    page.wait_for_load_state("networkidle")
    assert page.evaluate("() => document.querySelectorAll('svg a').length") == 0
