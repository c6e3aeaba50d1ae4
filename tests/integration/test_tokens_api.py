"""Managing API tokens while the server runs: ``/api/tokens`` (admin only, GET included), the UI page
``/settings/tokens``, and what ``telewatch tokens`` says when a running server holds the store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from support import free_port, stop
from support.auth import ADMIN_HEADERS, ADMIN_TOKEN, READ_HEADERS, READ_TOKEN, auth_settings
from telewatch.api.app import create_app
from telewatch.api.auth import SESSION_COOKIE, needed_scope
from telewatch.services import tokens
from telewatch.store.db import Store

from .test_auth import _lines, _read_until, _serve


@pytest.fixture
def client(store: Store, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(auth_settings(db_path=tmp_path / "unused.duckdb"), store=store)
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as c:
        yield c


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_create_use_list_and_revoke_a_token_ends_its_requests_and_ui_sessions(client: TestClient) -> None:
    created = client.post("/api/tokens", json={"name": "grafana", "scope": "read"}, headers=ADMIN_HEADERS)
    assert created.status_code == 201, created.text
    body = created.json()
    token = body["token"]
    assert token.startswith("tw_")
    assert {k: body[k] for k in ("name", "scope", "source", "state")} == {
        "name": "grafana",
        "scope": "read",
        "source": "store",
        "state": "active",
    }
    assert body["expires_at"] is None
    assert body["revoked_at"] is None
    assert client.get("/api/metrics", headers=_bearer(token)).status_code == 200
    # listed, without any secret: neither the token nor its hash
    listed = client.get("/api/tokens", headers=ADMIN_HEADERS)
    assert listed.status_code == 200
    grafana = next(t for t in listed.json() if t["name"] == "grafana")
    assert grafana["state"] == "active"
    assert grafana["source"] == "store"
    assert grafana["last_used_at"] is not None  # the GET above was recorded
    for secret in (token, tokens.hash_token(token), ADMIN_TOKEN, READ_TOKEN, tokens.hash_token(ADMIN_TOKEN)):
        assert secret not in listed.text
    assert "token" not in grafana
    # a UI session opened with the token
    signed_in = client.get("/login", params={"token": token})
    assert signed_in.status_code == 303
    assert SESSION_COOKIE in signed_in.cookies
    client.cookies.set(SESSION_COOKIE, signed_in.cookies[SESSION_COOKIE])  # the jar holds the session
    assert client.get("/").status_code == 200
    revoked = client.post("/api/tokens/grafana/revoke", headers=ADMIN_HEADERS)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["state"] == "revoked"
    assert revoked.json()["revoked_at"] is not None
    refused = client.get("/api/metrics", headers=_bearer(token))
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]
    # the session is ended: pages send to the sign-in form, API calls get 401
    page = client.get("/")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/login")
    assert client.get("/api/metrics").status_code == 401
    client.cookies.clear()
    states = {t["name"]: t["state"] for t in client.get("/api/tokens", headers=ADMIN_HEADERS).json()}
    assert states["grafana"] == "revoked"


def test_an_admin_may_revoke_the_token_it_uses(client: TestClient) -> None:
    token = client.post("/api/tokens", json={"name": "ops", "scope": "admin"}, headers=ADMIN_HEADERS).json()[
        "token"
    ]
    assert client.post("/api/tokens/ops/revoke", headers=_bearer(token)).status_code == 200
    assert client.get("/api/tokens", headers=_bearer(token)).status_code == 401


def test_token_routes_are_admin_only_reads_included(client: TestClient, store: Store) -> None:
    _, store_read = tokens.create_token(store, name="dash", scope="read")
    for headers in (READ_HEADERS, _bearer(store_read)):
        assert client.get("/api/tokens", headers=headers).status_code == 403
        assert client.get("/settings/tokens", headers=headers).status_code == 403
        answer = client.post("/api/tokens", json={"name": "x", "scope": "read"}, headers=headers)
        assert answer.status_code == 403
        assert answer.json()["error"] == "Forbidden"
        assert client.post("/api/tokens/dash/revoke", headers=headers).status_code == 403
    assert client.get("/api/tokens").status_code == 401
    assert [t.name for t in tokens.list_tokens(store)] == ["dash"]  # nothing created by a read token
    assert needed_scope("GET", "/api/tokens/") == "admin"
    assert needed_scope("GET", "/api/tokensmith") == "read"  # the rule is that path, not a prefix of names
    # the UI: admins get the page and a nav link, read users neither
    page = client.get("/settings/tokens", headers=ADMIN_HEADERS)
    assert page.status_code == 200
    assert 'id="token-form"' in page.text
    assert 'id="nav-tokens"' in client.get("/", headers=ADMIN_HEADERS).text
    assert 'id="nav-tokens"' not in client.get("/", headers=READ_HEADERS).text


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"name": "a", "scope": "root"}, 422, "scope"),
        ({"name": "a", "scope": "read", "expires_in": "soon"}, 400, "token expiry"),
        ({"name": "a", "scope": "read", "expires_in": "0s"}, 400, "positive"),
        ({"name": "a", "scope": "read", "expires_in": "99999999999999999999d"}, 400, "over the limit"),
        ({"name": "", "scope": "read"}, 422, "name"),
        ({"name": "x" * 65, "scope": "read"}, 422, "name"),
        ({"name": "has space", "scope": "read"}, 400, "letters, digits"),
        ({"scope": "read"}, 422, "name"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(
    client: TestClient, body: dict[str, str], status: int, words: str
) -> None:
    answer = client.post("/api/tokens", json=body, headers=ADMIN_HEADERS)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["detail"]
    assert [
        t for t in client.get("/api/tokens", headers=ADMIN_HEADERS).json() if t["source"] == "store"
    ] == []


def test_duplicate_unknown_and_twice_revoked_names(client: TestClient) -> None:
    assert client.post("/api/tokens", json={"name": "ci"}, headers=ADMIN_HEADERS).status_code == 201
    again = client.post("/api/tokens", json={"name": "ci", "scope": "admin"}, headers=ADMIN_HEADERS)
    assert again.status_code == 409
    assert again.json() == {
        "detail": "a token named 'ci' already exists (names stay taken after revoke): choose another name",
        "error": "Conflict",
    }
    unknown = client.post("/api/tokens/nope/revoke", headers=ADMIN_HEADERS)
    assert unknown.status_code == 404
    assert "no token named 'nope'" in unknown.json()["detail"]
    assert client.post("/api/tokens/ci/revoke", headers=ADMIN_HEADERS).status_code == 200
    twice = client.post("/api/tokens/ci/revoke", headers=ADMIN_HEADERS)
    assert twice.status_code == 409
    assert "already revoked" in twice.json()["detail"]


def test_expiry(client: TestClient, store: Store) -> None:
    created = client.post(
        "/api/tokens", json={"name": "temp", "scope": "read", "expires_in": "12h"}, headers=ADMIN_HEADERS
    ).json()
    expires = datetime.fromisoformat(created["expires_at"])
    created_at = datetime.fromisoformat(created["created_at"])
    assert abs((expires - created_at) - timedelta(hours=12)) < timedelta(seconds=5)
    assert client.get("/api/metrics", headers=_bearer(created["token"])).status_code == 200
    store.cursor().execute(
        "UPDATE api_tokens SET expires_at = ? WHERE name = ?", [created_at - timedelta(seconds=1), "temp"]
    )
    assert client.get("/api/metrics", headers=_bearer(created["token"])).status_code == 401
    listed = {t["name"]: t for t in client.get("/api/tokens", headers=ADMIN_HEADERS).json()}
    assert listed["temp"]["state"] == "expired"


def test_config_tokens_are_listed_but_not_revocable(client: TestClient) -> None:
    listed = client.get("/api/tokens", headers=ADMIN_HEADERS).json()
    configured = [t for t in listed if t["source"] == "config"]
    assert [(t["name"], t["scope"], t["state"]) for t in configured] == [
        ("config#1", "admin", "active"),
        ("config#2", "read", "active"),
    ]
    refused = client.post("/api/tokens/config%231/revoke", headers=ADMIN_HEADERS)
    assert refused.status_code == 400
    assert "TELEWATCH_API_TOKENS" in refused.json()["detail"]
    assert "cannot be revoked" in refused.json()["detail"]
    assert client.get("/api/metrics", headers=ADMIN_HEADERS).status_code == 200


def test_the_api_and_the_service_the_cli_uses_agree(client: TestClient, store: Store) -> None:
    tokens.create_token(store, name="from-cli", scope="admin", expires_in=timedelta(days=1))
    client.post("/api/tokens", json={"name": "from-api", "expires_in": "30d"}, headers=ADMIN_HEADERS)
    tokens.revoke_token(store, name="from-api")
    api_rows = [t for t in client.get("/api/tokens", headers=ADMIN_HEADERS).json() if t["source"] == "store"]
    service_rows = tokens.list_tokens(store)
    assert [(t["name"], t["scope"], t["state"]) for t in api_rows] == [
        (t.name, t.scope, t.state) for t in service_rows
    ]
    assert [t["name"] for t in api_rows] == ["from-cli", "from-api"]
    assert tokens.parse_lifetime("30d") == timedelta(days=30)


def test_a_running_server_manages_tokens_and_the_cli_points_to_the_api(tmp_path: Path) -> None:
    db, port = tmp_path / "live.duckdb", free_port()
    proc = _serve(db, port, tmp_path)  # zero-config: it creates an admin token and prints a one-time link
    seen: list[str] = []
    try:
        out = _lines(proc)
        link = _read_until(out, r"(http://127\.0\.0\.1:\d+/login\?code=\S+)", seen).group(1)
        _read_until(out, r"Uvicorn running|Application startup complete", seen)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TELEWATCH_")}
        exe = Path(sys.executable).parent / "telewatch"
        cli = subprocess.run(
            [str(exe), "tokens", "create", "--name", "grafana", "--db", str(db)],
            capture_output=True,
            text=True,
            env={**env, "COLUMNS": "300"},
            timeout=60,
        )
        assert cli.returncode == 2, cli.stdout + cli.stderr
        message = " ".join(cli.stderr.split())
        assert "in use by another telewatch process" in message
        assert "The running server holds the store" in message
        assert "POST /api/tokens" in message
        assert "/settings/tokens" in message
        listed = subprocess.run(
            [str(exe), "tokens", "list", "--db", str(db)], capture_output=True, text=True, env=env, timeout=60
        )
        assert listed.returncode == 2
        assert "GET /api/tokens" in " ".join(listed.stderr.split())
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            assert http.get(link).status_code == 303  # signed in as admin (a session cookie), once
            same_origin = {"Origin": f"http://127.0.0.1:{port}"}  # as the Tokens page sends it
            created = http.post(
                "/api/tokens",
                content=json.dumps({"name": "grafana", "scope": "read", "expires_in": "30d"}),
                headers={**same_origin, "Content-Type": "application/json"},
            )
            assert created.status_code == 201, created.text
            token = created.json()["token"]
            assert http.get("/api/metrics", headers=_bearer(token)).status_code == 200
            assert http.get("/api/tokens", headers=_bearer(token)).status_code == 403
            names = [t["name"] for t in http.get("/api/tokens").json()]
            assert names[-1] == "grafana"
            assert names[0].startswith("admin-")
            assert http.post("/api/tokens/grafana/revoke", headers=same_origin).status_code == 200
            assert http.get("/api/metrics", headers=_bearer(token)).status_code == 401
    finally:
        stop(proc)
    assert token not in "".join(seen)  # the new token never reaches the server's log
    # once the server is gone, the CLI sees what the API did
    with Store(db) as s:
        assert {t.name: t.state for t in tokens.list_tokens(s)}["grafana"] == "revoked"
