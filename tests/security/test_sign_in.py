"""Findings 5 and 6 and the one-time sign-in link. A cross-site redirect to ``GET /login?token=…`` with
the attacker's read token replaced a victim's admin session (forced sign-in); ``/login?%74oken=…`` signed
in and the access log showed the token in clear; the first-start link was the admin token itself,
reusable forever. Now a GET sign-in started by another site or origin is refused, the access log masks
query keys after URL-decoding, and the first-start link carries a code that works once, for 15 minutes."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from support import free_port, wait_until
from support.auth import ADMIN_HEADERS, ADMIN_TOKEN, READ_TOKEN
from telewatch.api.auth import SESSION_COOKIE
from telewatch.core.secrets import install_redacting_record_factory, uninstall_redacting_record_factory
from telewatch.services import tokens
from telewatch.store.db import Store

from .conftest import ADMIN_SESSION, Served
from .test_headers import attacker_site

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # another port of the same host
        {"Referer": "https://evil.example/page"},
        {"Origin": "http://127.0.0.1:1"},
        {"Referer": "http://127.0.0.1:1/"},
        {"Origin": "null"},
    ],
)
@pytest.mark.parametrize("credential", ["token", "code"])
def test_a_get_sign_in_started_elsewhere_is_refused(
    client: TestClient, app: FastAPI, headers: dict[str, str], credential: str
) -> None:
    value = READ_TOKEN if credential == "token" else _code(app, READ_TOKEN)
    r = client.get(f"/login?{credential}={value}&next=/", headers=headers, follow_redirects=False)
    assert r.status_code == 403, r.status_code
    assert SESSION_COOKIE not in r.cookies
    assert "another site" in r.text


@pytest.mark.parametrize("headers", [{"Sec-Fetch-Site": "none"}, {"Sec-Fetch-Site": "same-origin"}, {}])
def test_a_link_opened_directly_signs_in(client: TestClient, headers: dict[str, str]) -> None:
    r = client.get(f"/login?token={READ_TOKEN}&next=/explore", headers=headers, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/explore"
    assert SESSION_COOKIE in r.cookies


def _code(app: FastAPI, token: str) -> str:
    codes: tokens.SignInCodes = app.state.authenticator.sign_in_codes
    return codes.issue(tokens.hash_token(token))


def test_a_sign_in_code_works_once(client: TestClient, app: FastAPI) -> None:
    code = _code(app, ADMIN_TOKEN)
    first = client.get(f"/login?code={code}", follow_redirects=False)
    assert first.status_code == 303
    session = first.cookies[SESSION_COOKIE]
    assert client.get("/settings/tokens", cookies={SESSION_COOKIE: session}).status_code == 200
    client.cookies.clear()
    again = client.get(f"/login?code={code}", follow_redirects=False)
    assert again.status_code == 401
    assert SESSION_COOKIE not in again.cookies
    assert "already used or has expired" in again.text
    for bad in ("", "x", ADMIN_TOKEN, code + "x", "%00", "../" * 20):
        assert client.get("/login", params={"code": bad}, follow_redirects=False).status_code == 401


def test_a_sign_in_code_expires_after_15_minutes(client: TestClient, app: FastAPI) -> None:
    now = [1000.0]
    app.state.authenticator.sign_in_codes = tokens.SignInCodes(clock=lambda: now[0])
    fresh, stale = _code(app, ADMIN_TOKEN), _code(app, ADMIN_TOKEN)
    now[0] += 14 * 60
    assert client.get(f"/login?code={fresh}", follow_redirects=False).status_code == 303
    now[0] += 61
    assert client.get(f"/login?code={stale}", follow_redirects=False).status_code == 401


def test_a_code_of_a_revoked_token_signs_nobody_in(client: TestClient, app: FastAPI, store: Store) -> None:
    _, token = tokens.create_token(store, name="short-lived", scope="admin")
    code = _code(app, token)
    tokens.revoke_token(store, name="short-lived")
    assert client.get(f"/login?code={code}", follow_redirects=False).status_code == 401


def test_the_first_start_link_carries_a_code_never_the_token(store: Store, tmp_path: Path) -> None:
    from support.auth import auth_settings
    from telewatch.cli.tokens import ensure_bootstrap_token

    settings = auth_settings(db_path=tmp_path / "unused.duckdb", api_tokens=None)
    codes = tokens.SignInCodes()
    link = ensure_bootstrap_token(
        settings=settings, store=store, url_host="127.0.0.1", port=8000, codes=codes
    )
    assert link is not None
    assert link.startswith("http://127.0.0.1:8000/login?code=")
    assert "token" not in link
    assert "tw_" not in link
    # unused: a restart prints a new link for the same token; used: no link
    again = ensure_bootstrap_token(
        settings=settings, store=store, url_host="127.0.0.1", port=8000, codes=codes
    )
    assert again is not None
    assert again != link
    token_hash = codes.redeem(again.rsplit("=", 1)[1])
    assert token_hash is not None
    assert tokens.TokenVerifier(config_tokens=[], store=store).verify_hash(token_hash) is not None  # now used
    assert (
        ensure_bootstrap_token(settings=settings, store=store, url_host="127.0.0.1", port=8000, codes=codes)
        is None
    )


def test_a_cross_site_redirect_does_not_replace_the_victims_session(served: Served, context: Any) -> None:
    target = f"{served.url}/login?token={READ_TOKEN}&next=/"
    page = context.new_page()
    with attacker_site(
        f'<a id="go" href="{target}">win a prize</a><script>location.href = "{target}";</script>'
    ) as evil:
        page.goto(evil)
        page.wait_for_url(f"{served.url}/**")
        page.wait_for_load_state("networkidle")
        assert "another site" in page.content()
    cookies = {c["name"]: c["value"] for c in context.cookies()}
    assert cookies[SESSION_COOKIE] == ADMIN_SESSION  # still the victim's own admin session
    page.goto(f"{served.url}/settings/tokens")
    assert page.url == f"{served.url}/settings/tokens"
    assert page.locator("#nav-tokens").count() == 1  # an admin page, signed in as admin


@pytest.fixture
def access_log() -> Iterator[list[str]]:
    """What ``telewatch serve`` installs (every record redacted when created), and uvicorn's access log."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger("uvicorn.access")
    handler, level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    install_redacting_record_factory()
    try:
        yield lines
    finally:
        uninstall_redacting_record_factory()
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.mark.parametrize(
    "query",
    [
        "token={t}",
        "%74oken={t}",
        "tok%65n={t}",
        "%74%6F%6B%65%6E={t}",
        "next=/&TOKEN={t}",
        "code={c}",
        "c%6Fde={c}",
    ],
)
def test_the_access_log_masks_an_encoded_token(app: FastAPI, access_log: list[str], query: str) -> None:
    import httpx

    code = _code(app, READ_TOKEN) if "{c}" in query else "no-code-issued"
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=True)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout=30, what="uvicorn")
        url = f"http://127.0.0.1:{port}/login?" + query.format(t=READ_TOKEN, c=code)
        r = httpx.get(url, follow_redirects=False, timeout=10)
        assert r.status_code in (200, 303), (
            r.status_code
        )  # TOKEN= (upper case) is not the parameter: the form
        wait_until(
            lambda: any("/login?" in line for line in access_log), timeout=10, what="the access log line"
        )
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    line = next(line for line in access_log if "/login?" in line)
    assert READ_TOKEN not in line, line
    assert code not in line, line
    assert "=***" in line


def test_bearer_tokens_are_not_accepted_from_the_query_string(client: TestClient) -> None:
    for query in (f"token={READ_TOKEN}", f"access_token={READ_TOKEN}", f"%74oken={READ_TOKEN}"):
        assert client.get(f"/api/metrics?{query}").status_code == 401
    assert client.get("/api/metrics", headers=ADMIN_HEADERS).status_code == 200


def test_the_sign_in_messages_in_russian(client: TestClient, app: FastAPI) -> None:
    """The forced-sign-in and spent-link messages come from the catalogues (web/i18n/ru.json)."""
    ru = {"Accept-Language": "ru-RU,ru;q=0.9"}
    code = _code(app, READ_TOKEN)
    forced = client.get(
        f"/login?code={code}", headers={**ru, "Sec-Fetch-Site": "cross-site"}, follow_redirects=False
    )
    assert forced.status_code == 403
    assert "открыта с другого сайта" in forced.text
    assert "another site" not in forced.text
    assert client.get(f"/login?code={code}", headers=ru, follow_redirects=False).status_code == 303
    client.cookies.clear()
    spent = client.get(f"/login?code={code}", headers=ru, follow_redirects=False)
    assert spent.status_code == 401
    assert "уже использована или истекла" in spent.text
    wrong = client.get("/login?token=nope", headers=ru, follow_redirects=False)
    assert "Этот токен недействителен" in wrong.text
    foreign = client.post(
        "/login", data={"token": READ_TOKEN}, headers={**ru, "Origin": "https://evil.example"}
    )
    assert "Входите со страницы самого telewatch" in foreign.text
    # the same pages in English without a language asked for
    assert (
        "another site"
        in client.get(f"/login?code={_code(app, READ_TOKEN)}", headers={"Sec-Fetch-Site": "cross-site"}).text
    )
