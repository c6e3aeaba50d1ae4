"""Browser tests: telewatch served on a free loopback port (uvicorn in a thread, a temp store), driven by
Playwright in Debian's headless chromium. Screenshots go to ``test-artifacts/screenshots/`` (git-ignored)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from support import free_port, wait_until
from support.auth import ADMIN_TOKEN, auth_settings
from telewatch.api.app import create_app
from telewatch.api.auth import SESSION_COOKIE
from telewatch.services.tokens import hash_token
from telewatch.store.db import Store

REPO = Path(__file__).resolve().parents[2]
E2E_SESSION = "e2e-admin-session-0123456789abcdef"
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
DATA = Path(__file__).parent / "data"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Served:
    url: str
    store: Store

    def shot(self, page: object, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
        return path


def serve(store: Store, tmp: Path) -> Iterator[Served]:
    port = free_port()
    settings = auth_settings(db_path=tmp / "unused.duckdb", host="127.0.0.1", port=port)
    app = create_app(settings, store=store)
    # the browser fixture `page` carries this session cookie: pages open signed in as admin
    app.state.authenticator.sessions.create(hash_token(ADMIN_TOKEN), session_id=E2E_SESSION)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout=30, what="telewatch to serve")
        yield Served(f"http://127.0.0.1:{port}", store)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """telewatch serving an empty temp store."""
    with Store(tmp_path / "e2e.duckdb") as store:
        yield from serve(store, tmp_path)


@pytest.fixture(scope="session")
def browser(playwright_driver: Any) -> Iterator[object]:

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install chromium (scripts/system-packages.txt)")
    b = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    # the pages' CSP refuses eval, which Playwright's wait_for_function(string) runs in the page: these
    # tests bypass it; tests/security/test_headers.py checks every page runs under it with no violation
    new_context = b.new_context
    b.new_context = lambda **kw: new_context(**{"bypass_csp": True, **kw})  # type: ignore[method-assign]
    try:
        yield b
    finally:
        b.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    if report.when == "call":  # type: ignore[attr-defined]
        item.stash[_FAILED] = report.failed  # type: ignore[attr-defined]
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def page(browser: object, request: pytest.FixtureRequest) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})  # type: ignore[attr-defined]
    # signed in: cookies are not port-specific, so this one reaches every `serve()`d app on 127.0.0.1
    context.add_cookies(
        [
            {
                "name": SESSION_COOKIE,
                "value": E2E_SESSION,
                "domain": "127.0.0.1",
                "path": "/",
                "httpOnly": True,
                "sameSite": "Strict",
            }
        ]
    )
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.set_default_timeout(30_000)
    pg.js_errors = errors
    try:
        yield pg
        if request.node.stash.get(_FAILED, False):  # what the page showed when the test failed
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            pg.screenshot(path=str(SCREENSHOTS / f"FAILED-{request.node.name}.png"), full_page=True)
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
