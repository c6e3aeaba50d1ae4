"""API authentication: every route is gated, scopes are enforced, config and store tokens both work,
the UI signs in with a cookie, and `telewatch serve` starts with zero configuration."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import WebSocket
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from typer.testing import CliRunner

from support import free_port, stop
from support.auth import ADMIN_HEADERS, ADMIN_TOKEN, READ_HEADERS, READ_TOKEN, auth_settings
from telewatch.api.app import create_app
from telewatch.api.auth import SESSION_COOKIE, is_open_path, needed_scope
from telewatch.cli import app as cli_app
from telewatch.core.errors import ConfigError
from telewatch.services import tokens
from telewatch.settings import Settings
from telewatch.store import repo
from telewatch.store.db import Store

runner = CliRunner(env={"COLUMNS": "200"})
READ_METHODS = {"GET", "HEAD"}


@pytest.fixture
def client(store: Store, tmp_path: Path) -> Iterator[TestClient]:
    repo.upsert_metric(store.cursor(), name="cpu", labels={"host": "a"})
    app = create_app(auth_settings(db_path=tmp_path / "unused.duckdb"), store=store)
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as c:
        yield c


def _concrete(path: str) -> str:
    """A request path for a route template: every parameter gets a plausible value."""
    return re.sub(r"\{[^}]+\}", "1", path)


def _routes(client: TestClient) -> list[tuple[str, str]]:
    """(method, path) of every route of the app, found by iterating ``app.routes`` (included routers too)."""
    out = []
    for route in iter_route_contexts(client.app.routes):  # type: ignore[attr-defined]
        if not route.methods:  # a mount (static files): open, checked below
            continue
        out.extend((method, _concrete(route.path)) for method in sorted(route.methods))
    return out


def test_every_route_is_gated_by_token_and_scope(client: TestClient) -> None:
    routes = _routes(client)
    assert len(routes) >= 30, routes  # the whole app, not a hand-picked list
    gated = 0
    for method, path in routes:
        if method == "HEAD":
            continue
        if is_open_path(path):
            answer = client.request(method, path)  # (POST /login without a token: the form's own error)
            assert answer.status_code != 403, (method, path)
            assert "www-authenticate" not in answer.headers, (method, path)
            continue
        gated += 1
        anonymous = client.request(method, path)
        if method in READ_METHODS and not path.startswith(("/api/", "/metrics")):
            assert anonymous.status_code == 303, (method, path, anonymous.status_code)  # a UI page
            assert anonymous.headers["location"].startswith("/login"), (method, path)
        else:
            assert anonymous.status_code == 401, (method, path, anonymous.status_code)
            assert anonymous.headers["www-authenticate"].startswith("Bearer"), (method, path)
            assert set(anonymous.json()) == {"detail", "error"}, (method, path)
        read = client.request(method, path, headers=READ_HEADERS)
        if needed_scope(method, path) == "read":
            assert read.status_code not in (401, 403), (method, path, read.status_code, read.text[:200])
        else:
            assert read.status_code == 403, (method, path, read.status_code)
            assert read.json()["error"] == "Forbidden", (method, path)
        admin = client.request(method, path, headers=ADMIN_HEADERS)
        assert admin.status_code not in (401, 403), (method, path, admin.status_code, admin.text[:200])
        bad = client.request(method, path, headers={"Authorization": "Bearer not-a-token-at-all"})
        assert bad.status_code == 401, (method, path)
    assert gated >= 25


def test_open_paths_need_no_token(client: TestClient) -> None:
    health = client.get("/api/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert client.get("/docs").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/static/ui/style.css").status_code == 200
    assert client.get("/login").status_code == 200
    assert client.get("/api/metrics").status_code == 401
    assert client.get("/metrics").status_code == 401  # Prometheus exposition: scrape with a read token
    assert client.get("/metrics", headers=READ_HEADERS).status_code == 200


def test_openapi_declares_the_bearer_scheme(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token (scope read or admin); see docs/security.md.",
    }
    assert schema["paths"]["/api/health"]["get"]["security"] == []
    metrics = schema["paths"]["/api/metrics"]["get"]
    assert metrics["security"] == [{"bearerAuth": []}]
    assert {"401", "403"} <= set(metrics["responses"])


def test_malformed_authorization_headers_are_refused(client: TestClient) -> None:
    for value in ("Basic abc", "Bearer", "Bearer ", ADMIN_TOKEN, f"Token {ADMIN_TOKEN}"):
        r = client.get("/api/metrics", headers={"Authorization": value})
        assert r.status_code == 401, value
        assert r.json()["error"] == "Unauthorized"
        assert ADMIN_TOKEN not in r.text
    assert client.get("/api/metrics", headers={"Authorization": f"bearer {READ_TOKEN}"}).status_code == 200


def test_store_tokens_work_and_revoked_or_expired_ones_are_refused(client: TestClient, store: Store) -> None:
    _, read_token = tokens.create_token(store, name="grafana", scope="read")
    _, admin_token = tokens.create_token(store, name="ops", scope="admin")
    _, short_token = tokens.create_token(store, name="temp", scope="admin", expires_in=timedelta(hours=1))
    as_read = {"Authorization": f"Bearer {read_token}"}
    as_admin = {"Authorization": f"Bearer {admin_token}"}
    assert client.get("/api/metrics", headers=as_read).status_code == 200
    assert client.post("/api/silences", headers=as_read, json={}).status_code == 403
    assert client.post("/api/silences", headers=as_admin, json={}).status_code == 422  # past auth
    assert client.get("/api/metrics", headers={"Authorization": f"Bearer {short_token}"}).status_code == 200
    # only hashes are stored, and using a token records when
    rows = store.cursor().execute("SELECT name, token_sha256, last_used_at FROM api_tokens").fetchall()
    stored = " ".join(str(v) for row in rows for v in row)
    assert read_token not in stored
    assert admin_token not in stored
    assert {r[0] for r in rows if r[2] is not None} == {"grafana", "ops", "temp"}
    # revoked
    tokens.revoke_token(store, name="grafana")
    r = client.get("/api/metrics", headers=as_read)
    assert r.status_code == 401
    assert "revoked" in r.json()["detail"]
    with pytest.raises(Exception, match="already revoked"):
        tokens.revoke_token(store, name="grafana")
    # expired
    store.cursor().execute(
        "UPDATE api_tokens SET expires_at = now()::TIMESTAMP - INTERVAL 1 MINUTE WHERE name = 'temp'"
    )
    assert client.get("/api/metrics", headers={"Authorization": f"Bearer {short_token}"}).status_code == 401
    assert {t.name: t.state for t in tokens.list_tokens(store)} == {
        "grafana": "revoked",
        "ops": "active",
        "temp": "expired",
    }
    # config tokens keep working beside store tokens
    assert client.get("/api/metrics", headers=READ_HEADERS).status_code == 200
    assert client.get("/api/metrics", headers=as_admin).status_code == 200


def test_bad_token_names_scopes_and_durations_are_clear(store: Store) -> None:
    with pytest.raises(Exception, match="token scope 'root' must be one of: read, admin"):
        tokens.create_token(store, name="x", scope="root")
    with pytest.raises(Exception, match="token name 'a b' must be"):
        tokens.create_token(store, name="a b", scope="read")
    tokens.create_token(store, name="dup", scope="read")
    with pytest.raises(Exception, match="a token named 'dup' already exists"):
        tokens.create_token(store, name="dup", scope="admin")
    with pytest.raises(Exception, match="no token named 'nope'"):
        tokens.revoke_token(store, name="nope")


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ("admin:s3cret-admin-token,read", "entry 2 is not scope:token"),
        ("root:s3cret-admin-token", "entry 1 is not scope:token"),
        ("read:s3cret-read-token,,admin:s3cret-admin-token", "entry 2 is empty"),
        ("admin:s3cret", "entry 1: the token must be at least 8 characters"),
    ],
)
def test_malformed_token_config_names_the_entry_never_the_token(
    store: Store, tmp_path: Path, config: str, needle: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        create_app(Settings(db_path=tmp_path / "x.duckdb", api_tokens=config), store=store)
    message = str(caught.value)
    assert needle in message
    assert "TELEWATCH_API_TOKENS" in message
    assert "s3cret" not in message
    assert "s3cret" not in repr(Settings(api_tokens=config))


def test_ui_sign_in_with_a_cookie_then_sign_out(client: TestClient, store: Store) -> None:
    first = client.get("/explore", params={"metric": "cpu"})
    assert first.status_code == 303
    assert first.headers["location"] == "/login?next=%2Fexplore%3Fmetric%3Dcpu"
    wrong = client.post("/login", data={"token": "wrong-token-123", "next": "/explore"})
    assert wrong.status_code == 401
    assert "not valid" in wrong.text
    assert SESSION_COOKIE not in wrong.cookies
    ok = client.post("/login", data={"token": READ_TOKEN, "next": "/explore?metric=cpu"})
    assert ok.status_code == 303
    assert ok.headers["location"] == "/explore?metric=cpu"
    set_cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in set_cookie
    assert "SameSite=strict" in set_cookie
    assert "Path=/" in set_cookie
    session = ok.cookies[SESSION_COOKIE]
    assert READ_TOKEN not in session
    assert tokens.hash_token(READ_TOKEN) not in session
    # signed in: pages and the API calls the pages make
    assert client.get("/").status_code == 200
    assert 'action="/logout"' in client.get("/").text  # a POST form: another site cannot sign anyone out
    assert client.get("/api/metrics").status_code == 200
    # a read sign-in cannot write
    assert client.post("/api/silences", json={}, headers={"Origin": "http://testserver"}).status_code == 403
    client.post("/logout", headers={"Origin": "http://testserver"})
    assert client.get("/").status_code == 303
    assert client.get("/api/metrics").status_code == 401
    # another site cannot post a token into the form (login CSRF)
    forged = client.post("/login", data={"token": READ_TOKEN}, headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403
    assert SESSION_COOKIE not in forged.cookies
    # open redirects are not followed
    evil = client.post("/login", data={"token": READ_TOKEN, "next": "//evil.example/"})
    assert evil.headers["location"] == "/"


def test_cookie_writes_need_the_same_origin(client: TestClient) -> None:
    client.get("/login", params={"token": ADMIN_TOKEN})  # the link `telewatch serve` prints
    assert client.get("/api/metrics").status_code == 200
    no_origin = client.post("/api/silences", json={})
    assert no_origin.status_code == 403
    assert "cross-origin" in no_origin.json()["detail"]
    other = client.post("/api/silences", json={}, headers={"Origin": "https://evil.example"})
    assert other.status_code == 403
    referer = client.post("/api/silences", json={}, headers={"Referer": "https://evil.example/x"})
    assert referer.status_code == 403
    same = client.post("/api/silences", json={}, headers={"Origin": "http://testserver"})
    assert same.status_code == 422  # past auth and CSRF: the body is what is wrong
    same_referer = client.post("/api/silences", json={}, headers={"Referer": "http://testserver/alerts"})
    assert same_referer.status_code == 422
    # a bearer token needs no Origin (programs are not browsers)
    assert client.post("/api/silences", json={}, headers=ADMIN_HEADERS).status_code == 422


def test_revoking_a_token_ends_its_ui_sessions(client: TestClient, store: Store) -> None:
    _, token = tokens.create_token(store, name="laptop", scope="read")
    client.post("/login", data={"token": token})
    assert client.get("/api/metrics").status_code == 200
    tokens.revoke_token(store, name="laptop")
    assert client.get("/api/metrics").status_code == 401
    assert client.get("/").status_code == 303


def test_ui_sessions_survive_a_restart_and_end_on_sign_out_revoke_or_expiry(tmp_path: Path) -> None:
    db = tmp_path / "sessions.duckdb"
    settings = auth_settings(db_path=db)
    with Store(db) as s:
        _, laptop = tokens.create_token(s, name="laptop", scope="read")

    def sign_in(c: TestClient, token: str) -> str:
        c.cookies.clear()
        response = c.post("/login", data={"token": token})
        assert response.status_code == 303
        return str(response.cookies[SESSION_COOKIE])

    def get(c: TestClient, path: str, session: str) -> int:
        c.cookies.clear()
        return c.get(path, headers={"Cookie": f"{SESSION_COOKIE}={session}"}).status_code

    with Store(db) as s, TestClient(create_app(settings, store=s), follow_redirects=False) as c:
        store_session, config_session, expiring = (
            sign_in(c, laptop),
            sign_in(c, READ_TOKEN),
            sign_in(c, READ_TOKEN),
        )
        rows = s.cursor().execute("SELECT * FROM ui_sessions").fetchall()
        assert len(rows) == 3
        stored = {str(v) for row in rows for v in row}
        assert tokens.hash_token(store_session) in stored
        assert not {store_session, config_session, laptop, READ_TOKEN} & stored  # hashes only
    # a restart: a new process's app over the same store file keeps everyone signed in
    with Store(db) as s, TestClient(create_app(settings, store=s), follow_redirects=False) as c:
        assert get(c, "/api/metrics", store_session) == 200
        assert get(c, "/api/metrics", config_session) == 200
        assert get(c, "/", config_session) == 200
        assert get(c, "/api/metrics", "made-up-session-id") == 401
        c.cookies.clear()
        c.post(
            "/logout", headers={"Cookie": f"{SESSION_COOKIE}={config_session}", "Origin": "http://testserver"}
        )
        assert get(c, "/api/metrics", config_session) == 401
        assert c.post("/api/tokens/laptop/revoke", headers=ADMIN_HEADERS).status_code == 200
        assert get(c, "/api/metrics", store_session) == 401
        s.cursor().execute(
            "UPDATE ui_sessions SET expires_at = ? WHERE session_sha256 = ?",
            [datetime(2020, 1, 1), tokens.hash_token(expiring)],
        )
        left = s.cursor().execute("SELECT session_sha256 FROM ui_sessions").fetchall()
        assert left == [(tokens.hash_token(expiring),)]  # sign-out and revoke removed theirs
    with Store(db) as s, TestClient(create_app(settings, store=s), follow_redirects=False) as c:
        assert get(c, "/api/metrics", config_session) == 401  # signed out before the restart
        assert get(c, "/api/metrics", store_session) == 401  # its token was revoked
        assert get(c, "/api/metrics", expiring) == 401  # expired
        fresh = sign_in(c, READ_TOKEN)  # a new sign-in clears expired rows
        assert s.cursor().execute("SELECT session_sha256 FROM ui_sessions").fetchall() == [
            (tokens.hash_token(fresh),)
        ]


def test_cli_tokens_create_list_revoke(tmp_path: Path) -> None:
    db = tmp_path / "cli.duckdb"
    created = runner.invoke(
        cli_app, ["tokens", "create", "--name", "ci", "--scope", "admin", "--db", str(db)]
    )
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("tw_")
    assert len(token) > 40
    assert created.output.count(token) == 1  # printed once
    listed = runner.invoke(cli_app, ["tokens", "list", "--db", str(db)])
    assert listed.exit_code == 0
    assert "ci" in listed.output
    assert "active" in listed.output
    assert token not in listed.output
    assert tokens.hash_token(token) not in listed.output
    bad = runner.invoke(cli_app, ["tokens", "create", "--name", "x", "--scope", "root", "--db", str(db)])
    assert bad.exit_code == 2
    assert "must be one of: read, admin" in bad.output
    bad = runner.invoke(cli_app, ["tokens", "create", "--name", "x", "--expires-in", "soon", "--db", str(db)])
    assert bad.exit_code == 2
    assert "--expires-in" in bad.output
    bad = runner.invoke(
        cli_app, ["tokens", "create", "--name", "x", "--expires-in", "4000d", "--db", str(db)]
    )
    assert bad.exit_code == 2
    assert "over the limit of 3650 days" in bad.output
    with Store(db) as s:
        app = create_app(Settings(db_path=db), store=s)
        with TestClient(app) as c:
            assert c.get("/api/metrics", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    revoked = runner.invoke(cli_app, ["tokens", "revoke", "ci", "--db", str(db)])
    assert revoked.exit_code == 0
    assert "revoked token ci" in revoked.output
    assert "revoked" in runner.invoke(cli_app, ["tokens", "list", "--db", str(db)]).output
    with Store(db) as s, TestClient(create_app(Settings(db_path=db), store=s)) as c:
        assert c.get("/api/metrics", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    missing = runner.invoke(cli_app, ["tokens", "revoke", "ci2", "--db", str(db)])
    assert missing.exit_code == 2
    assert "no token named 'ci2'" in missing.output


def _lines(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    out: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return out


def _serve(db: Path, port: int, cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEWATCH_")}
    exe = Path(sys.executable).parent / "telewatch"
    return subprocess.Popen(
        [str(exe), "serve", "--db", str(db), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=cwd,
    )


def _read_until(out: queue.Queue[str], pattern: str, seen: list[str], timeout: float = 60) -> re.Match[str]:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = out.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match
    raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(seen)}")


def test_zero_config_serve_creates_an_admin_token_and_prints_a_one_time_sign_in_link(tmp_path: Path) -> None:
    db, port = tmp_path / "zero.duckdb", free_port()
    proc = _serve(db, port, tmp_path)
    seen: list[str] = []
    try:
        out = _lines(proc)
        url = _read_until(out, r"(http://127\.0\.0\.1:\d+/login\?code=(\S+))", seen).group(1)
        code = url.rsplit("=", 1)[1]
        _read_until(out, r"Uvicorn running|Application startup complete", seen)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            assert http.get("/api/metrics").status_code == 401
            assert http.get("/api/metrics", headers={"Authorization": f"Bearer {code}"}).status_code == 401
            signed_in = http.get(url)
            assert signed_in.status_code == 303
            assert SESSION_COOKIE in signed_in.cookies
            assert http.get("/").status_code == 200  # the cookie jar now holds the session
            assert http.get("/settings/tokens").status_code == 200  # as admin
        with httpx.Client(timeout=10) as other:
            again = other.get(url)  # the link works once
            assert again.status_code == 401
            assert SESSION_COOKIE not in again.cookies
        _read_until(out, r"GET /login\?code=", seen)  # the access log line of that sign-in
    finally:
        stop(proc)
    log = "".join(seen)
    assert log.count(code) == 1, log  # the printed link only: the access log shows code=***
    assert "/login?code=***" in log
    assert "tw_" not in log  # the admin token itself is never printed
    # a second start finds the token in the store, used: no new one, no link
    with Store(db) as s:
        assert [t.name.startswith("admin-") for t in tokens.list_tokens(s)] == [True]
    proc = _serve(db, port, tmp_path)
    seen = []
    try:
        _read_until(_lines(proc), r"Uvicorn running|Application startup complete", seen)
    finally:
        stop(proc)
    assert "login?" not in "".join(seen)


def test_a_websocket_route_added_later_is_gated_too(store: Store, tmp_path: Path) -> None:
    app = create_app(auth_settings(db_path=tmp_path / "unused.duckdb"), store=store)

    @app.websocket("/api/ws-echo")
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text(ws.state.principal.scope)
        await ws.close()

    with TestClient(app) as c:
        with pytest.raises(WebSocketDisconnect), c.websocket_connect("/api/ws-echo") as ws:
            ws.receive_text()
        with c.websocket_connect("/api/ws-echo", headers=READ_HEADERS) as ws:
            assert ws.receive_text() == "read"
