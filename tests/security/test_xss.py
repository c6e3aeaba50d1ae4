"""Attacks that already failed (kept so they keep failing): stored and reflected script, markup and link
payloads in every field a user controls — metric names, labels, units, groups, owners (uploads and
sources), incident titles, notes and authors, feedback notes, silence matchers and comments, query
parameters the pages echo — on every page, in a real Chromium. A payload that ran would set
``window.__pwned`` or open a dialog; none may, and none may leave an element with an event handler."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from support.auth import ADMIN_HEADERS, READ_HEADERS
from telewatch.store import repo
from telewatch.store.db import Store

from .conftest import XSS_PAYLOADS, Served, Site, csv_upload

pytestmark = pytest.mark.timeout(600)
PAGES = ["/", "/explore", "/scan", "/upload", "/incidents", "/alerts", "/settings/tokens"]
# query parameters the pages read: each gets a payload (reflected XSS)
REFLECTED = [
    "/?group={p}",
    "/?selector={p}",
    "/explore?metric={p}",
    "/explore?metric=cpu&labels={p}",
    "/scan?from={p}&to={p}&group={p}",
    "/incidents?state={p}",
    "/login?next={p}",
    "/login?signed_out=1&next=/{p}",
    "/login?token={p}",
    "/login?code={p}",
]
# hooks installed before any page script: a payload that runs is seen
CATCH = """
window.__pwned = 0;
for (const name of ["alert", "confirm", "prompt"]) window[name] = () => { window.__pwned = 1; };
"""
CHECK = """() => ({
  pwned: window.__pwned,
  handlers: [...document.querySelectorAll("*")].filter((el) =>
    [...el.attributes].some((a) => a.name.startsWith("on") && /pwned/.test(a.value))).map((el) => el.outerHTML.slice(0, 120)),
  links: [...document.querySelectorAll("a[href^='javascript:'], a[href*='evil.example']")].map((a) => a.outerHTML.slice(0, 120)),
  injected: document.querySelectorAll("img[src='x'], svg[onload], script:not([src]):not([type='application/json'])").length,
})"""


def seed_hostile(client: TestClient, store: Store) -> list[int]:
    """Every user-controlled field holds a payload; returns the incident ids."""
    for i, payload in enumerate(XSS_PAYLOADS):
        r = client.post(
            "/api/ingest",
            files={
                "file": (
                    f"{payload}.csv",
                    csv_upload([payload, f"plain{i}"], spike_at=300 + 10 * i),
                    "text/csv",
                )
            },
            data={"unit": payload, "group": payload, "owner": payload},
            headers=ADMIN_HEADERS,
        )
        assert r.status_code == 200, r.text
    idx = pd.date_range("2026-11-01", periods=600, freq="1min", tz="UTC")
    for i, payload in enumerate(XSS_PAYLOADS):  # labels come from sources (Prometheus, SQL columns)
        mid = repo.upsert_metric(
            store.cursor(), name=f"labelled{i}", labels={"host": payload, payload[:40]: "v"}
        )
        repo.write_points(store.cursor(), mid, pd.Series(range(600), index=idx, dtype=float))
    assert (
        client.post(
            "/api/detect/run", json={"detector": {"name": "robust_z"}}, headers=ADMIN_HEADERS
        ).status_code
        == 200
    )
    incidents = client.post("/api/incidents/update", headers=ADMIN_HEADERS).json()["created"]
    assert incidents
    for payload in XSS_PAYLOADS:
        note = {"incident_id": incidents[0], "text": payload, "author": payload}
        assert client.post("/api/incident-notes", json=note, headers=ADMIN_HEADERS).status_code in (200, 201)
        feedback = {"kind": "confirmed", "incident_id": incidents[0], "note": payload}
        assert client.post("/api/feedback", json=feedback, headers=ADMIN_HEADERS).status_code in (200, 201)
        silence = {
            "matchers": [{"name": "host", "value": payload}],
            "comment": payload,
            "created_by": payload,
        }
        assert client.post("/api/silences", json=silence, headers=ADMIN_HEADERS).status_code in (200, 201)
    return incidents


@pytest.fixture
def hostile(client: TestClient, store: Store, served: Served) -> tuple[Served, list[int]]:
    return served, seed_hostile(client, store)


def _visit(page: Any, url: str) -> dict[str, Any]:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    return page.evaluate(CHECK)


def test_stored_payloads_run_nowhere(
    hostile: tuple[Served, list[int]], context: Any, client: TestClient
) -> None:
    served, incidents = hostile
    metrics = client.get("/api/metrics", headers=READ_HEADERS).json()
    page = context.new_page()
    page.add_init_script(CATCH)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    urls = [
        *PAGES,
        *(f"/incidents/{i}" for i in incidents[:3]),
        *(f"/explore/{m['id']}" for m in metrics[::3]),
    ]
    for path in urls:
        seen = _visit(page, served.url + path)
        assert seen == {"pwned": 0, "handlers": [], "links": [], "injected": 0}, (path, seen)
    page.goto(f"{served.url}/alerts")  # the silences list and channels tab
    page.wait_for_load_state("networkidle")
    assert page.evaluate(CHECK)["pwned"] == 0
    assert not dialogs, dialogs
    assert not errors, errors


@pytest.mark.parametrize("template", REFLECTED)
@pytest.mark.parametrize("payload", XSS_PAYLOADS[:5])
def test_reflected_payloads_are_inert_in_the_html(site: Site, template: str, payload: str) -> None:
    url = template.format(p=quote(payload, safe=""))
    answer = site.client.get(url, headers=READ_HEADERS, follow_redirects=False)
    assert answer.status_code < 500, (url, answer.status_code)
    body = answer.text
    if not answer.headers.get("content-type", "").startswith("text/html"):
        # an error answer may quote the value: as JSON, never sniffed as HTML
        assert answer.headers["content-type"].startswith("application/json"), answer.headers
        assert answer.headers["x-content-type-options"] == "nosniff"
        return
    for raw in ("<script>window.__pwned", 'onerror="window.__pwned', "<svg onload", "</script><script>"):
        assert raw not in body, (url, raw)
    if answer.status_code in (301, 302, 303, 307):
        location = answer.headers["location"]
        assert location.startswith("/"), location
        assert not location.startswith("//"), location


def test_reflected_payloads_run_nowhere_in_chromium(site: Site, context: Any) -> None:
    served = site.served
    page = context.new_page()
    page.add_init_script(CATCH)
    for template in REFLECTED:
        for payload in (XSS_PAYLOADS[0], XSS_PAYLOADS[1], XSS_PAYLOADS[5]):
            seen = _visit(page, served.url + template.format(p=quote(payload, safe="")))
            assert seen["pwned"] == 0, (template, payload)
            assert seen["handlers"] == [], (template, payload, seen)
    assert page.url.startswith(served.url)  # no redirect off the site (next=javascript:…)
