"""Findings 3 and 7: clickjacking (no X-Frame-Options / frame-ancestors: a page on another port framed
``/incidents/N`` signed in, one click stored a verdict) and no Content-Security-Policy,
X-Content-Type-Options or Referrer-Policy. Now every answer carries the framing, sniffing and referrer
headers, every HTML page a CSP without inline script (a per-request nonce), and every page works under it
in a real Chromium with no CSP violation."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from support import free_port
from support.auth import ADMIN_HEADERS, READ_HEADERS

from .conftest import Served, csv_upload

pytestmark = pytest.mark.timeout(300)
PAGES = [
    "/",
    "/explore",
    "/scan",
    "/upload",
    "/incidents",
    "/incidents/1",
    "/alerts",
    "/settings/tokens",
    "/docs",
]


def _seed(client: TestClient) -> None:
    """Two metrics, stored anomalies and one incident (``/incidents/1``)."""
    upload = client.post(
        "/api/ingest",
        files={"file": ("m.csv", csv_upload(["cpu", "mem"]), "text/csv")},
        data={"unit": "ms"},
        headers=ADMIN_HEADERS,
    )
    assert upload.status_code == 200, upload.text
    run = client.post("/api/detect/run", json={"detector": {"name": "robust_z"}}, headers=ADMIN_HEADERS)
    assert run.status_code == 200, run.text
    assert client.post("/api/incidents/update", headers=ADMIN_HEADERS).json()["created"] == [1]


def _csp(value: str) -> dict[str, str]:
    return {d.split()[0]: d.partition(" ")[2] for d in (p.strip() for p in value.split(";")) if d}


@pytest.mark.parametrize("path", [*PAGES, "/login"])
def test_every_html_page_carries_the_security_headers(client: TestClient, path: str) -> None:
    _seed(client)
    first = client.get(path, headers=ADMIN_HEADERS)
    second = client.get(path, headers=ADMIN_HEADERS)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"].startswith("text/html")
    assert first.headers["x-frame-options"] == "DENY"
    assert first.headers["x-content-type-options"] == "nosniff"
    assert first.headers["referrer-policy"] == "same-origin"
    csp = _csp(first.headers["content-security-policy"])
    assert csp["frame-ancestors"] == "'none'"
    assert csp["object-src"] == "'none'"
    assert csp["base-uri"] == "'none'"
    script = csp["script-src"].split()
    assert "'unsafe-inline'" not in script
    assert "'unsafe-eval'" not in script
    nonces = [s for s in script if s.startswith("'nonce-")]
    assert len(nonces) == 1
    assert (
        nonces[0] != _csp(second.headers["content-security-policy"])["script-src"].split()[1]
    )  # per request
    # every inline script of the page carries the nonce, or is data (application/json is never executed)
    nonce = nonces[0][len("'nonce-") : -1]
    for tag in re.findall(r"<script\b[^>]*>", first.text):
        assert "src=" in tag or f'nonce="{nonce}"' in tag or 'type="application/json"' in tag, tag


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/api/metrics", READ_HEADERS),
        ("GET", "/api/metrics", {}),  # 401
        ("GET", "/explore", {}),  # 303 to the sign-in page
        ("POST", "/api/ingest", READ_HEADERS),  # 403
        ("GET", "/static/ui/common.js", {}),
        ("GET", "/api/nope", READ_HEADERS),  # 404
    ],
)
def test_every_answer_forbids_framing_and_sniffing(
    client: TestClient, method: str, path: str, headers: dict[str, str]
) -> None:
    answer = client.request(method, path, headers=headers, follow_redirects=False)
    assert answer.headers["x-frame-options"] == "DENY", answer.status_code
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "same-origin"


@contextmanager
def attacker_site(body: str) -> Iterator[str]:
    """A real page on another loopback port (same site as telewatch: the session cookie goes along)."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


def test_a_page_on_another_port_cannot_frame_an_incident(
    client: TestClient, served: Served, context: Any
) -> None:
    _seed(client)
    target = f"{served.url}/incidents/1"
    frame = f'<iframe id="victim" src="{target}" style="opacity:0.01" width="900" height="700"></iframe>'
    page = context.new_page()
    with attacker_site(frame) as attacker:
        page.goto(attacker)
        page.wait_for_timeout(2000)
        framed = [f for f in page.frames if f is not page.main_frame]
        assert len(framed) == 1
        shown = framed[0].evaluate("() => document.body ? document.body.innerText : ''")
        assert "Type" not in shown, "the incident page rendered inside another site's frame"
        assert framed[0].url != target
    assert client.get("/api/feedback", headers=READ_HEADERS).json()["items"] == []  # nothing clicked through


def test_every_page_runs_under_its_csp_without_a_violation(
    client: TestClient, served: Served, context: Any
) -> None:
    _seed(client)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"error: {exc}"))
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    for path in PAGES:
        page.goto(served.url + path)
        page.wait_for_load_state("networkidle")
        assert page.evaluate("() => document.readyState") == "complete"
        problems.extend(f"{path}: {p}" for p in page.evaluate("() => window.__cspViolations || []"))
    page.goto(f"{served.url}/explore/1")
    page.wait_for_selector("#main-chart .main-svg")  # the WebGL chart draws without 'unsafe-eval'
    page.goto(f"{served.url}/docs")
    page.wait_for_selector(".swagger-ui .opblock")  # Swagger UI's inline start script ran with the nonce
    page.goto(f"{served.url}/")
    page.select_option("#group-filter", index=0)  # the overview's group filter (its hashed handler) works
    page.wait_for_load_state("networkidle")
    assert not problems, problems


def test_docs_list_the_headers_the_server_sends(client: TestClient) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text(encoding="utf-8")
    section = doc.split("## Response headers", 1)[1].split("\n## ", 1)[0]
    documented = dict(re.findall(r"^\| `([A-Za-z-]+)` \| `([^`]+)` \|", section, re.M))
    answer = client.get("/login")
    assert documented == {k: answer.headers[k] for k in documented}
    assert set(documented) == {"X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy"}
    policy = section.split("```text", 1)[1].split("```", 1)[0]
    assert set(_csp(" ".join(policy.split()))) == set(_csp(answer.headers["content-security-policy"]))
