"""The API tokens page in a real Chromium: an admin creates a token (shown once, with a copy button),
uses it, revokes it; a read sign-in sees neither the page nor its nav link."""

from __future__ import annotations

from typing import Any

import httpx

from support.auth import READ_TOKEN
from telewatch.services import tokens

from .conftest import Served


def test_create_copy_and_revoke_a_token_in_the_browser(served: Served, page: Any, browser: Any) -> None:
    page.goto(f"{served.url}/")
    page.click("#nav-tokens")
    page.wait_for_selector("#token-table")
    assert "config#1" in page.inner_text("#token-table")  # configured tokens are listed, not revocable
    assert page.locator("#token-table button.danger").count() == 0
    page.fill("#token-name", "grafana")
    page.select_option("#token-scope", "read")
    page.fill("#token-expires", "30d")
    page.click("#token-create")
    page.wait_for_selector("#token-created:not(.hidden)")
    token = page.inner_text("#token-value").strip()
    assert token.startswith("tw_")
    page.click("#token-copy")
    page.wait_for_function("document.getElementById('token-copied').textContent !== ''")
    page.wait_for_selector('tr[data-token="grafana"]')
    row = page.inner_text('tr[data-token="grafana"]')
    assert "read" in row
    assert "active" in row
    assert token not in page.inner_text("#token-table")
    served.shot(page, "tokens-1-created")
    with httpx.Client(base_url=served.url, timeout=10) as http:
        as_new = {"Authorization": f"Bearer {token}"}
        assert http.get("/api/metrics", headers=as_new).status_code == 200
        # a bad name: the API's message on the page
        page.fill("#token-name", "has space")
        page.click("#token-create")
        page.wait_for_selector("#token-error .error-box")
        assert "letters, digits" in page.inner_text("#token-error")
        page.once("dialog", lambda dialog: dialog.accept())
        page.click('tr[data-token="grafana"] button.danger')
        page.wait_for_function(
            "document.querySelector('tr[data-token=\"grafana\"]')?.innerText.includes('revoked')"
        )
        served.shot(page, "tokens-2-revoked")
        assert http.get("/api/metrics", headers=as_new).status_code == 401
    assert {t.name: t.state for t in tokens.list_tokens(served.store)} == {"grafana": "revoked"}
    # a read sign-in: no nav link, and the page itself is refused
    context = browser.new_context()
    try:
        reader = context.new_page()
        reader.goto(f"{served.url}/login?token={READ_TOKEN}")
        reader.wait_for_selector("#main-nav")
        assert reader.locator("#nav-tokens").count() == 0
        assert reader.goto(f"{served.url}/settings/tokens").status == 403
    finally:
        context.close()
    assert not page.js_errors, page.js_errors
