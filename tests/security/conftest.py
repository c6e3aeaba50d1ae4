"""The standing attack suite: telewatch as an attacker meets it (see docs/security.md, 'The attack suite').

Each finding of the penetration test of issue 21 has a test here that failed on the code before its fix,
next to the attacks that already failed then (XSS payloads, CSRF, path traversal, malformed requests) so
that they keep failing. The servers are real: the app in process (``TestClient``), or uvicorn on a loopback
port driven by Debian's headless Chromium, as ``tests/e2e`` does.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from support import free_port, wait_until
from support.auth import ADMIN_HEADERS, ADMIN_TOKEN, READ_HEADERS, auth_settings
from telewatch.api.app import create_app
from telewatch.api.auth import SESSION_COOKIE
from telewatch.services.tokens import hash_token
from telewatch.store.db import Store

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
]
ADMIN_SESSION = "security-admin-session-0123456789abcdef"
START = pd.Timestamp("2026-11-01", tz="UTC")

# Script, markup and link payloads: each goes into every field a user controls. A payload that runs sets
# window.__pwned (or opens a dialog), which the browser tests watch for.
XSS_PAYLOADS = [
    "<script>window.__pwned=1</script>",
    '"><img src=x onerror="window.__pwned=1">',
    "'><svg onload=window.__pwned=1>",
    "<!--<script>",
    "</script><script>window.__pwned=1</script>",
    "javascript:window.__pwned=1",
    '<a href="https://evil.example/">click</a>',
    "{{7*7}}${7*7}<%= 7*7 %>",
    "\u2028\u2029<b>line</b>",
]


def csv_upload(columns: list[str], *, rows: int = 600, spike_at: int = 400) -> bytes:
    """A wide CSV with one timestamp column and the given value columns; a spike so detection finds one."""
    idx = pd.date_range(START, periods=rows, freq="1min")
    rng = np.random.default_rng(7)
    out = io.StringIO()
    out.write("timestamp," + ",".join(f'"{c.replace(chr(34), chr(34) * 2)}"' for c in columns) + "\n")
    for i, ts in enumerate(idx):
        values = [
            10 + rng.normal(0, 0.5) + (40 if i in range(spike_at, spike_at + 5) else 0) for _ in columns
        ]
        out.write(ts.strftime("%Y-%m-%dT%H:%M:%SZ") + "," + ",".join(f"{v:.3f}" for v in values) + "\n")
    return out.getvalue().encode()


@pytest.fixture
def app(store: Store, tmp_path: Path) -> FastAPI:
    return create_app(auth_settings(db_path=tmp_path / "unused.duckdb"), store=store)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """No credentials by default: each request says whose it is (``ADMIN_HEADERS``, ``READ_HEADERS``)."""
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def admin(client: TestClient) -> TestClient:
    client.headers.update(ADMIN_HEADERS)
    return client


@dataclass
class Served:
    url: str
    app: FastAPI
    store: Store


def serve_app(app: FastAPI, store: Store) -> Iterator[Served]:
    port = free_port()
    app.state.authenticator.sessions.create(hash_token(ADMIN_TOKEN), session_id=ADMIN_SESSION)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout=30, what="telewatch to serve")
        yield Served(f"http://127.0.0.1:{port}", app, store)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def served(app: FastAPI, store: Store) -> Iterator[Served]:
    yield from serve_app(app, store)


@dataclass
class Site:
    """One app, its store, a client and a uvicorn server, shared by a module's attacks that change nothing
    (each refused, or a read): a fresh app per case would cost more than the attack."""

    app: FastAPI
    store: Store
    client: TestClient
    served: Served


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("site")
    with Store(tmp / "site.duckdb") as store:
        app = create_app(auth_settings(db_path=tmp / "unused.duckdb"), store=store)
        with TestClient(app, raise_server_exceptions=False) as client:
            upload = client.post(
                "/api/ingest",
                files={"file": ("m.csv", csv_upload(["cpu"]), "text/csv")},
                headers=ADMIN_HEADERS,
            )
            assert upload.status_code == 200, upload.text
            for served in serve_app(app, store):
                yield Site(app, store, client, served)


@pytest.fixture(scope="session")
def browser(playwright_driver: Any) -> Iterator[Any]:

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install chromium (scripts/system-packages.txt)")
    b = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A browser context signed in as admin on every loopback port (cookies are not port-specific)."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    ctx.add_cookies(
        [
            {
                "name": SESSION_COOKIE,
                "value": ADMIN_SESSION,
                "domain": "127.0.0.1",
                "path": "/",
                "httpOnly": True,
                "sameSite": "Strict",
            }
        ]
    )
    try:
        yield ctx
    finally:
        ctx.close()


__all__ = ["ADMIN_HEADERS", "READ_HEADERS", "XSS_PAYLOADS", "Served", "Site", "csv_upload"]
