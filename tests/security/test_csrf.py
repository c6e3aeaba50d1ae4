"""Attacks that already failed (kept so they keep failing): cross-site request forgery. A write with the
UI's session cookie must come from telewatch's own pages: every variant of a foreign, missing or odd
``Origin``/``Referer`` is refused with 403 and stores nothing, so is a read token's write, a method
override, a CORS preflight from elsewhere; and a real attacker page on another port cannot make the
signed-in browser write."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from support.auth import ADMIN_HEADERS, ADMIN_TOKEN, READ_HEADERS
from telewatch.api.auth import SESSION_COOKIE
from telewatch.services.tokens import hash_token

from .conftest import Served, Site, csv_upload
from .test_headers import attacker_site

pytestmark = pytest.mark.timeout(300)
SESSION = "csrf-victim-admin-session-0123456789abcdef"
WRITES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/api/tokens", {"json": {"name": "csrf-made", "scope": "admin"}}),
    ("POST", "/api/silences", {"json": {"matchers": [{"name": "host", "value": "x"}], "comment": "csrf"}}),
    ("POST", "/api/feedback", {"json": {"kind": "false_alarm", "incident_id": 1}}),
    ("POST", "/api/incident-notes", {"json": {"incident_id": 1, "text": "csrf"}}),
    ("POST", "/api/incidents/1/resolve", {}),
    ("POST", "/api/ingest", {"files": {"file": ("c.csv", csv_upload(["csrf_metric"], rows=20), "text/csv")}}),
    ("DELETE", "/api/metrics/1", {}),
    ("POST", "/api/detect/run", {"json": {}}),
    ("POST", "/api/tokens/nobody/revoke", {}),
    (
        "POST",
        "/api/feedback",
        {"content": '{"kind": "false_alarm", "incident_id": 1}', "headers": {"Content-Type": "text/plain"}},
    ),
]
FOREIGN = [
    {},  # neither Origin nor Referer
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Origin": "http://testserver:1"},  # same host, another port
    {"Origin": "http://testserver.evil.example"},
    {"Origin": "http://evil.example@testserver"},  # userinfo: not an origin a browser sends
    {"Origin": "file://"},
    {"Origin": "testserver"},
    {"Referer": "https://evil.example/testserver/"},
    {"Referer": "http://testserver:1/"},
    {"Origin": "https://evil.example", "Referer": "http://testserver/"},  # Origin wins
]


@pytest.fixture
def victim(app: FastAPI, client: TestClient) -> TestClient:
    app.state.authenticator.sessions.create(hash_token(ADMIN_TOKEN), session_id=SESSION)
    client.cookies.set(SESSION_COOKIE, SESSION)
    r = client.post(
        "/api/ingest", files={"file": ("m.csv", csv_upload(["cpu"]), "text/csv")}, headers=ADMIN_HEADERS
    )
    assert r.status_code == 200
    return client


@pytest.fixture(scope="module")
def shared_victim(site: Site) -> Iterator[TestClient]:
    """A signed-in admin browser's cookie on the module's site (every write below is refused: shared)."""
    site.app.state.authenticator.sessions.create(hash_token(ADMIN_TOKEN), session_id=SESSION)
    site.client.cookies.set(SESSION_COOKIE, SESSION)
    try:
        yield site.client
    finally:
        site.client.cookies.clear()


def _state(client: TestClient) -> tuple[Any, ...]:
    return (
        [t["name"] for t in client.get("/api/tokens", headers=ADMIN_HEADERS).json()],
        client.get("/api/silences", headers=READ_HEADERS).json(),
        client.get("/api/feedback", headers=READ_HEADERS).json()["total"],
        [m["name"] for m in client.get("/api/metrics", headers=READ_HEADERS).json()],
    )


@pytest.mark.parametrize(
    "origin", FOREIGN, ids=lambda h: ",".join(f"{k}={v}" for k, v in h.items()) or "none"
)
@pytest.mark.parametrize(("method", "path", "kw"), WRITES, ids=[f"{m} {p}" for m, p, _ in WRITES])
def test_a_cookie_write_from_elsewhere_is_refused(
    shared_victim: TestClient, method: str, path: str, kw: dict[str, Any], origin: dict[str, str]
) -> None:
    before = _state(shared_victim)
    headers = {**kw.get("headers", {}), **origin}
    answer = shared_victim.request(
        method, path, **{k: v for k, v in kw.items() if k != "headers"}, headers=headers
    )
    assert answer.status_code == 403, (answer.status_code, answer.text[:200])
    assert "cross-origin" in answer.json()["detail"]
    assert _state(shared_victim) == before


@pytest.mark.parametrize(("method", "path", "kw"), WRITES[:3], ids=[f"{m} {p}" for m, p, _ in WRITES[:3]])
def test_the_same_write_from_telewatchs_own_page_passes(
    victim: TestClient, method: str, path: str, kw: dict[str, Any]
) -> None:
    answer = victim.request(method, path, **kw, headers={"Origin": "http://testserver"})
    assert answer.status_code != 403, answer.text


@pytest.mark.parametrize(("method", "path", "kw"), WRITES, ids=[f"{m} {p}" for m, p, _ in WRITES])
def test_a_read_token_cannot_write(site: Site, method: str, path: str, kw: dict[str, Any]) -> None:
    headers = {**kw.get("headers", {}), **READ_HEADERS}
    before = _state(site.client)
    answer = site.client.request(
        method, path, **{k: v for k, v in kw.items() if k != "headers"}, headers=headers
    )
    assert answer.status_code == 403
    assert _state(site.client) == before


@pytest.mark.parametrize("override", ["DELETE", "POST", "PUT"])
def test_method_override_headers_are_ignored(victim: TestClient, override: str) -> None:
    for header in ("X-HTTP-Method-Override", "X-Method-Override", "X-HTTP-Method"):
        answer = victim.get("/api/metrics/1", headers={header: override})
        assert answer.status_code in (404, 405), answer.status_code
    assert [m["name"] for m in victim.get("/api/metrics", headers=READ_HEADERS).json()] == ["cpu"]


def test_no_cors_is_granted_to_another_origin(victim: TestClient) -> None:
    preflight = victim.options(
        "/api/tokens",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    answer = victim.get("/api/metrics", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in answer.headers
    assert "access-control-allow-credentials" not in answer.headers


def test_an_attacker_page_cannot_make_the_browser_write(
    client: TestClient, served: Served, context: Any
) -> None:
    assert (
        client.post(
            "/api/ingest", files={"file": ("m.csv", csv_upload(["cpu"]), "text/csv")}, headers=ADMIN_HEADERS
        ).status_code
        == 200
    )
    before = _state(client)
    base = served.url
    evil = f"""
<form id="f" method="post" action="{base}/api/tokens" enctype="text/plain">
  <input name='{{"name": "csrf-form", "scope": "admin", "x": "' value='"}}'>
</form>
<script>
  fetch("{base}/api/silences", {{method: "POST", credentials: "include", mode: "no-cors",
    headers: {{"Content-Type": "text/plain"}},
    body: JSON.stringify({{matchers: [{{name: "host", value: "x"}}], comment: "csrf"}})}});
  fetch("{base}/api/metrics/1", {{method: "DELETE", credentials: "include", mode: "no-cors"}});
  navigator.sendBeacon("{base}/api/feedback", JSON.stringify({{kind: "false_alarm", incident_id: 1}}));
  setTimeout(() => document.getElementById("f").submit(), 500);
</script>"""
    page = context.new_page()
    with attacker_site(evil) as attacker:
        page.goto(attacker)
        page.wait_for_timeout(2500)
    assert _state(client) == before
