"""Finding 1: alerting credentials shown to read-only users. Canaries planted in every secret-bearing field
of the channels (a password in the Telegram ``api_base``, short secrets in a webhook's path and query) must
not come out of any GET with a read token — API, UI pages — nor out of ``telewatch alerts channels``."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from support.auth import ADMIN_TOKEN, READ_HEADERS, READ_TOKEN, auth_settings
from telewatch.api.app import create_app
from telewatch.cli.app import app as cli
from telewatch.store import repo
from telewatch.store.db import Store

# each a canary: it must never be seen by a read token
CANARIES = {
    "telegram bot token": "424242:CanaryBotToken_abcdefghij",
    "api_base user": "tguser7",
    "api_base password": "CanaryPw9",
    "webhook path": "shortsecret7",
    "webhook query": "abc1234",
    "webhook user": "hookusr",
    "webhook password": "hookpw55",
    "webhook header": "Canary-Header-Value-1",
    "smtp password": "CanarySmtp5",
}


def _config(tmp_path: Path) -> Path:
    data = {
        "links": {"base_url": "https://telewatch.example.com"},
        "channels": {
            "tg": {
                "type": "telegram",
                "bot_token": CANARIES["telegram bot token"],
                "chat_id": -100123,
                "api_base": f"http://{CANARIES['api_base user']}:{CANARIES['api_base password']}@127.0.0.1:9/",
            },
            "hook": {
                "type": "webhook",
                "url": f"http://{CANARIES['webhook user']}:{CANARIES['webhook password']}@127.0.0.1:9/"
                f"{CANARIES['webhook path']}?sig={CANARIES['webhook query']}",
                "headers": {"X-Api-Key": CANARIES["webhook header"]},
            },
            "mail": {
                "type": "email",
                "host": "127.0.0.1",
                "port": 9,
                "username": "alerts@example.test",
                "password": CANARIES["smtp password"],
                "from": "telewatch@example.test",
                "to": ["oncall@example.test"],
            },
        },
        "rules": [{"name": "all", "channels": ["tg", "hook", "mail"]}],
    }
    path = tmp_path / "alerting.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _leaks(text: str) -> list[str]:
    return [what for what, value in CANARIES.items() if value in text] + (
        ["admin token"] if ADMIN_TOKEN in text else []
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:PASSWORD@host/", "http://***@host/"),
        ("https://hooks.example/shortsecret7?sig=abc1234", "https://hooks.example/***?sig=***"),
        ("https://hooks.example/services/T0/B0/x", "https://hooks.example/***"),
        ("https://TOKEN@hooks.example:8443", "https://***@hooks.example:8443"),
        ("https://hooks.example/?a=1&b=&c", "https://hooks.example/?a=***&b=***&***"),
        ("https://hooks.example/#access_token=x", "https://hooks.example/#***"),
        ("http://[::1]:9/p?q=1", "http://[::1]:9/***?q=***"),
        ("http://host:notaport/x", "***"),
    ],
)
def test_mask_url_keeps_only_scheme_host_and_port(url: str, shown: str) -> None:
    from telewatch.core.secrets import mask_url

    assert mask_url(url) == shown


def test_no_get_with_a_read_token_shows_a_channel_credential(store: Store, tmp_path: Path) -> None:
    mid = repo.upsert_metric(store.cursor(), name="cpu", labels={"host": "a"})
    idx = pd.date_range("2026-11-01", periods=120, freq="1min", tz="UTC")
    repo.write_points(store.cursor(), mid, pd.Series(range(120), index=idx, dtype=float))
    settings = auth_settings(db_path=tmp_path / "unused.duckdb", alerting_config=_config(tmp_path))
    app = create_app(settings, store=store)
    checked = []
    with TestClient(app, headers=READ_HEADERS, raise_server_exceptions=False) as client:
        channels = client.get("/api/alerts/channels")
        assert channels.status_code == 200
        described = {c["name"]: c for c in channels.json()}
        assert described["tg"]["api_base"] == "http://***@127.0.0.1:9/"
        assert described["hook"]["url"] == "http://***@127.0.0.1:9/***?sig=***"
        assert described["hook"]["headers"] == ["X-Api-Key"]  # the header's name, never its value
        for route in iter_route_contexts(app.routes):
            if "GET" not in (route.methods or ()) or route.path.startswith("/static"):
                continue
            path = re.sub(r"\{[^}]+\}", "1", route.path)
            answer = client.get(path, follow_redirects=False)
            leaks = _leaks(answer.text + " ".join(f"{k}: {v}" for k, v in answer.headers.items()))
            assert not leaks, f"GET {path} ({answer.status_code}) shows {leaks} to a read token"
            checked.append(path)
    assert len(checked) >= 30, checked
    assert {"/alerts", "/api/alerts/channels", "/api/alert-rules", "/api/alerts/rules"} <= set(checked)


def test_the_cli_channel_list_shows_no_credential(tmp_path: Path) -> None:
    result = CliRunner(env={"COLUMNS": "250"}).invoke(
        cli, ["alerts", "channels", "--config", str(_config(tmp_path))]
    )
    assert result.exit_code == 0, result.output
    assert "127.0.0.1" in result.output
    assert not _leaks(result.output), result.output


def test_read_token_itself_is_never_echoed(store: Store, tmp_path: Path) -> None:
    app = create_app(auth_settings(db_path=tmp_path / "unused.duckdb"), store=store)
    with TestClient(app, headers=READ_HEADERS, raise_server_exceptions=False) as client:
        for path in ("/", "/alerts", "/api/metrics", "/api/tokens", "/settings/tokens", "/nope"):
            assert READ_TOKEN not in client.get(path).text
