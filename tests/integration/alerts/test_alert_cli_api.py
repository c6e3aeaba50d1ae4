"""The alerting CLI and REST API over a real store and real channels."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from support.auth import ADMIN_HEADERS, auth_settings
from telewatch.alerts.rules import sample_candidate
from telewatch.api.app import create_app
from telewatch.cli import app
from telewatch.services.alerting import submit_alerts
from telewatch.store.db import Store

runner = CliRunner(env={"COLUMNS": "240"})


def write_config(tmp_path: Path, cfg: Any, telegram: Any, webhook: Any) -> Path:
    data = {
        "links": {"base_url": "https://telewatch.example.com"},
        "channels": {"tg": cfg.telegram(telegram.api_base), "hook": cfg.webhook(webhook.url, format="json")},
        "rules": [{"name": "all", "channels": ["tg", "hook"]}],
    }
    path = tmp_path / "alerting.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_cli_test_send_to_each_channel(tmp_path: Path, cfg: Any, telegram: Any, webhook: Any) -> None:
    config = write_config(tmp_path, cfg, telegram, webhook)
    db = tmp_path / "tw.duckdb"
    for channel in ("tg", "hook"):
        result = runner.invoke(
            app, ["alerts", "test", "--channel", channel, "--config", str(config), "--db", str(db)]
        )
        assert result.exit_code == 0, result.output
        assert f"sent a test alert to {channel}" in result.output
    assert telegram.messages[0]["text"].startswith("🧪 <b>TEST</b>")
    assert len(telegram.photos) == 1
    assert webhook.bodies[0]["kind"] == "test"
    assert webhook.bodies[0]["subject"].startswith("[TEST]")
    history = runner.invoke(app, ["alerts", "history", "--db", str(db), "--attempts"])
    assert history.exit_code == 0
    assert history.output.count("sent") >= 2
    assert "attempt 1" in history.output


def test_cli_test_send_failure_is_clear_and_secret_free(
    tmp_path: Path, cfg: Any, telegram: Any, webhook: Any
) -> None:
    config = write_config(tmp_path, cfg, telegram, webhook)
    telegram.down = True
    result = runner.invoke(
        app,
        ["alerts", "test", "--channel", "tg", "--config", str(config), "--db", str(tmp_path / "a.duckdb")],
    )
    assert result.exit_code == 1
    assert "failed to send to tg" in result.output
    assert "HTTP 502" in result.output
    assert cfg.BOT_TOKEN not in result.output
    unknown = runner.invoke(
        app,
        ["alerts", "test", "--channel", "nope", "--config", str(config), "--db", str(tmp_path / "a.duckdb")],
    )
    assert unknown.exit_code == 2
    assert "no channel named 'nope' (configured: hook, tg)" in unknown.output


def test_cli_malformed_config_fails_at_load(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "channels:\n  tg:\n    type: telegram\n    bot_token: '123'\n    chat_id: 5\nrules: []\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["alerts", "channels", "--config", str(path)])
    assert result.exit_code == 2
    flat = " ".join(result.output.split())
    assert "channels.tg.bot_token (line 4)" in flat
    assert str(path) in flat


def test_cli_channels_never_show_secrets(tmp_path: Path, cfg: Any, telegram: Any, webhook: Any) -> None:
    result = runner.invoke(
        app, ["alerts", "channels", "--config", str(write_config(tmp_path, cfg, telegram, webhook))]
    )
    assert result.exit_code == 0
    assert "telegram" in result.output
    assert "webhook" in result.output
    assert cfg.BOT_TOKEN not in result.output
    assert cfg.BOT_TOKEN.split(":")[1] not in result.output


def test_cli_silences(tmp_path: Path) -> None:
    db = str(tmp_path / "tw.duckdb")
    added = runner.invoke(
        app,
        [
            "silences",
            "add",
            "-m",
            "metric=web_latency",
            "-m",
            "dc=~eu-.*",
            "--duration",
            "2h",
            "--comment",
            "deploy",
            "--by",
            "@ann",
            "--db",
            db,
        ],
    )
    assert added.exit_code == 0, added.output
    assert "silence 1: metric=web_latency, dc=~eu-.*" in added.output
    listed = runner.invoke(app, ["silences", "list", "--db", db])
    assert "metric=web_latency" in listed.output
    assert "@ann" in listed.output
    assert "active" in listed.output
    bad = runner.invoke(app, ["silences", "add", "-m", "oops", "--db", db])
    assert bad.exit_code == 2
    assert "not NAME=VALUE" in bad.output
    expired = runner.invoke(app, ["silences", "expire", "1", "--db", db])
    assert expired.exit_code == 0
    assert "silence 1 expired" in expired.output
    assert "metric=web_latency" not in runner.invoke(app, ["silences", "list", "--db", db]).output
    assert "expired" in runner.invoke(app, ["silences", "list", "--all", "--db", db]).output
    missing = runner.invoke(app, ["silences", "expire", "99", "--db", db])
    assert missing.exit_code == 2
    assert "no silence with id 99" in missing.output


@pytest.fixture
def client(
    store: Store, tmp_path: Path, cfg: Any, telegram: Any, webhook: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    monkeypatch.setenv("TELEWATCH_ALERTING_CONFIG", str(write_config(tmp_path, cfg, telegram, webhook)))
    with TestClient(
        create_app(auth_settings(db_path=tmp_path / "unused.duckdb"), store=store), headers=ADMIN_HEADERS
    ) as c:
        yield c


def test_api_silences_crud(client: TestClient) -> None:
    created = client.post(
        "/api/silences",
        json={
            "matchers": [
                {"name": "metric", "value": "web_latency"},
                {"name": "dc", "op": "=~", "value": "eu-.*"},
            ],
            "duration_minutes": 90,
            "created_by": "@ann",
            "comment": "deploy",
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["active"]
    assert body["matchers"][1] == {"name": "dc", "op": "=~", "value": "eu-.*"}
    assert [s["id"] for s in client.get("/api/silences").json()] == [body["id"]]
    expired = client.delete(f"/api/silences/{body['id']}")
    assert expired.status_code == 200
    assert expired.json()["state"] == "expired"
    assert client.get("/api/silences").json() == []
    assert len(client.get("/api/silences", params={"include_expired": True}).json()) == 1
    assert client.delete("/api/silences/999").status_code == 404
    bad = client.post(
        "/api/silences", json={"matchers": [{"name": "x", "op": "~~", "value": "y"}], "duration_minutes": 5}
    )
    assert bad.status_code == 422
    assert "op" in bad.json()["detail"]
    regex = client.post(
        "/api/silences", json={"matchers": [{"name": "x", "op": "=~", "value": "["}], "duration_minutes": 5}
    )
    assert regex.status_code == 400
    assert "bad regular expression" in regex.json()["detail"]
    # neither an end nor a duration: an hour, as `telewatch silences add`
    no_end = client.post("/api/silences", json={"matchers": [{"name": "x", "value": "y"}]})
    assert no_end.status_code == 201


def test_api_history_detail_chart_and_test_send(
    client: TestClient, store: Store, telegram: Any, cfg: Any
) -> None:
    import os

    from telewatch.services.alerting import load_alerting_config

    config = load_alerting_config(os.environ["TELEWATCH_ALERTING_CONFIG"])
    now = pd.Timestamp("2026-11-23 12:00", tz="UTC")
    submit_alerts(store, candidates=[sample_candidate(now=now)], rules=config, now=now)
    rows = client.get("/api/alerts/notifications").json()
    assert {r["channel"] for r in rows} == {"tg", "hook"}
    assert all(r["status"] == "pending" for r in rows)
    tg = next(r for r in rows if r["channel"] == "tg")
    detail = client.get(f"/api/alerts/notifications/{tg['id']}").json()
    assert "Deviation more than <b>130%</b>" in detail["body_html"]
    assert detail["attempts_log"] == []
    chart = client.get(f"/api/alerts/notifications/{tg['id']}/chart.png")
    assert chart.status_code == 200
    assert chart.content[:4] == b"\x89PNG"
    assert client.get("/api/alerts/notifications/9999").status_code == 404
    sent = client.post("/api/alerts/test", json={"channel": "tg"})
    assert sent.status_code == 200
    assert sent.json()["ok"] is True
    assert telegram.messages[-1]["text"].startswith("🧪 <b>TEST</b>")
    assert client.post("/api/alerts/test", json={"channel": "nope"}).status_code == 400
    channels = client.get("/api/alerts/channels")
    assert channels.status_code == 200
    assert {c["name"] for c in channels.json()} == {"tg", "hook"}
    assert cfg.BOT_TOKEN not in channels.text
    rules = client.get("/api/alerts/rules").json()
    assert [r["name"] for r in rules] == ["all"]
    assert rules[0]["channels"] == ["tg", "hook"]
    assert rules[0]["repeat_interval"] == "4 h"
    only_tests = client.get("/api/alerts/notifications", params={"status": "sent"}).json()
    assert [r["kind"] for r in only_tests] == ["test"]
