"""Logout CSRF (issue 21's leftover): ``GET /logout`` signed the user out whatever site linked to it, so any
page (an ``<img>``, a redirect, a form on another port of the same host, which gets the SameSite cookie)
could end a victim's session. Now signing out is ``POST /logout`` from telewatch's own page; a GET only
shows a confirmation form, and a foreign or missing ``Origin``/``Referer`` (or a ``Sec-Fetch-Site`` other
than ``same-origin``) is refused with 403 and leaves the session as it was."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from support.auth import ADMIN_TOKEN
from telewatch.api.auth import SESSION_COOKIE
from telewatch.services.tokens import hash_token

from .conftest import Served
from .test_csrf import FOREIGN
from .test_headers import attacker_site

pytestmark = pytest.mark.timeout(300)
SESSION = "logout-victim-admin-session-0123456789abcdef"
FETCH_FOREIGN = [
    {"Sec-Fetch-Site": "cross-site", "Origin": "http://testserver"},
    {"Sec-Fetch-Site": "same-site", "Origin": "http://testserver"},  # another port of this host
]


@pytest.fixture
def victim(app: FastAPI, client: TestClient) -> TestClient:
    app.state.authenticator.sessions.create(hash_token(ADMIN_TOKEN), session_id=SESSION)
    client.cookies.set(SESSION_COOKIE, SESSION)
    assert client.get("/api/metrics").status_code == 200
    return client


def _signed_in(client: TestClient) -> bool:
    return client.get("/api/metrics").status_code == 200


@pytest.mark.parametrize("headers", FOREIGN + FETCH_FOREIGN)
def test_a_foreign_post_does_not_sign_out(victim: TestClient, headers: dict[str, str]) -> None:
    r = victim.post("/logout", headers=headers, follow_redirects=False)
    assert r.status_code == 403, (headers, r.status_code)
    assert SESSION_COOKIE not in r.headers.get("set-cookie", "")
    assert "another site" in r.text
    assert _signed_in(victim)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Sec-Fetch-Site": "none"},
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Referer": "https://evil.example/page"},
        {"Origin": "http://testserver"},
    ],
)
def test_a_get_never_signs_out(victim: TestClient, headers: dict[str, str]) -> None:
    r = victim.get("/logout", headers=headers, follow_redirects=False)
    assert r.status_code in (200, 403)
    assert 'action="/logout"' in r.text
    assert 'method="post"' in r.text
    assert SESSION_COOKIE not in r.headers.get("set-cookie", "")
    assert _signed_in(victim)
    if headers.get("Sec-Fetch-Site") in ("cross-site", "same-site") or "Referer" in headers:
        assert r.status_code == 403


@pytest.mark.parametrize(
    "headers", [{"Origin": "http://testserver"}, {"Referer": "http://testserver/explore"}]
)
def test_a_same_origin_post_signs_out(victim: TestClient, headers: dict[str, str]) -> None:
    r = victim.post("/logout", headers={**headers, "Sec-Fetch-Site": "same-origin"}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?signed_out=1"
    assert f'{SESSION_COOKIE}=""' in r.headers["set-cookie"]
    victim.cookies.set(SESSION_COOKIE, SESSION)  # the old id, kept by an attacker: no longer valid
    assert not _signed_in(victim)


def test_the_russian_refusal(victim: TestClient) -> None:
    r = victim.post("/logout", headers={"Origin": "https://evil.example", "Accept-Language": "ru-RU"})
    assert r.status_code == 403
    assert "Вы не вышли" in r.text
    assert _signed_in(victim)


ATTACKS = {
    "img": '<img src="{url}/logout">',
    "navigation": '<script>location.href = "{url}/logout";</script>',
    "form": '<form id="f" method="post" action="{url}/logout"></form><script>f.submit()</script>',
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_page_on_another_port_cannot_sign_the_browser_out(
    served: Served, context: Any, attack: str
) -> None:
    page = context.new_page()
    page.set_default_timeout(30_000)
    with attacker_site(ATTACKS[attack].format(url=served.url)) as attacker:
        page.goto(attacker)
        page.wait_for_timeout(1500)
    assert any(c["name"] == SESSION_COOKIE for c in context.cookies())
    page.goto(f"{served.url}/")
    page.wait_for_selector("#metrics-table, .empty, #incidents-body", state="attached")
    assert "/login" not in page.url, f"{attack}: the attacker's page signed the browser out"
    # the header's control is a same-origin POST form: it does sign out
    page.click("#sign-out")
    page.wait_for_selector("#signed-out")
    page.goto(f"{served.url}/")
    page.wait_for_selector("#login-form")
