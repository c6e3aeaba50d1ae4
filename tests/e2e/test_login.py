"""Signing in to the UI in a real Chromium: signed-out pages redirect to /login, a wrong token shows an
error, the right one opens the page asked for, and signing out ends the session."""

from __future__ import annotations

from typing import Any

from support.auth import ADMIN_TOKEN, READ_TOKEN
from telewatch.api.auth import SESSION_COOKIE
from telewatch.store import repo

from .conftest import Served


def test_sign_in_and_out_in_the_browser(served: Served, browser: Any) -> None:
    repo.upsert_metric(served.store.cursor(), name="web_latency")
    context = browser.new_context(viewport={"width": 1200, "height": 800})  # no session cookie
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{served.url}/explore")
        page.wait_for_selector("#login-form")
        assert page.url == f"{served.url}/login?next=%2Fexplore"
        # a wrong token: an error on the form, still signed out
        page.fill("#token", "not-the-token-0000")
        page.click("#login-btn")
        page.wait_for_selector("#login-error")
        assert "not valid" in page.inner_text("#login-error")
        assert not [c for c in context.cookies() if c["name"] == SESSION_COOKIE]
        served.shot(page, "login-1-wrong-token")
        # the right one: back to the page asked for, with an HttpOnly, SameSite=Strict cookie
        page.fill("#token", READ_TOKEN)
        page.click("#login-btn")
        page.wait_for_url(f"{served.url}/explore")
        cookie = next(c for c in context.cookies() if c["name"] == SESSION_COOKIE)
        assert cookie["httpOnly"]
        assert cookie["sameSite"] == "Strict"
        assert READ_TOKEN not in cookie["value"]
        assert page.evaluate("() => document.cookie") == ""  # not readable by scripts
        page.goto(f"{served.url}/")
        page.wait_for_selector("#metrics-table")
        assert "web_latency" in page.inner_text("#metrics-table")
        # the page's own API calls are authorised by the cookie
        status = page.evaluate("async () => (await fetch('/api/metrics')).status")
        assert status == 200
        # a read sign-in cannot write (the page's POST carries the same Origin: refused on scope)
        status = page.evaluate(
            "async () => (await fetch('/api/silences', {method: 'POST', headers: {'Content-Type':"
            " 'application/json'}, body: '{}'})).status"
        )
        assert status == 403
        served.shot(page, "login-2-overview")
        page.click("#sign-out")
        page.wait_for_selector("#signed-out")
        page.goto(f"{served.url}/")
        page.wait_for_selector("#login-form")
        # the sign-in link that `telewatch serve` prints signs in as admin in one step
        page.goto(f"{served.url}/login?token={ADMIN_TOKEN}")
        page.wait_for_selector("#metrics-table")
        status = page.evaluate(
            "async () => (await fetch('/api/silences', {method: 'POST', headers: {'Content-Type':"
            " 'application/json'}, body: '{}'})).status"
        )
        assert status == 422  # admin, same origin: past auth, the empty body is what is wrong
    finally:
        context.close()
    assert not errors, errors
