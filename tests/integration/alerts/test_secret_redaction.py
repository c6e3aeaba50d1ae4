"""Secrets planted in settings, the alerting configuration and source DSNs never come out: not in any API
response body, not in the logs, not in the error of a failing connection."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from support import free_port
from support.auth import ADMIN_HEADERS, ADMIN_TOKEN, READ_TOKEN, auth_settings
from telewatch.api.app import create_app
from telewatch.core.errors import TelewatchError
from telewatch.core.secrets import install_redacting_record_factory, uninstall_redacting_record_factory
from telewatch.sources.clickhouse import ClickHouseSource
from telewatch.sources.postgres import PostgresSource
from telewatch.store import repo
from telewatch.store.db import Store

from .conftest import BOT_TOKEN, SMTP_PASSWORD

WEBHOOK_SECRET = "Bearer planted-webhook-secret-77"
DB_PASSWORD = "planted-db-pass-42"
PLANTED = [BOT_TOKEN, BOT_TOKEN.split(":", 1)[1], SMTP_PASSWORD, "planted-webhook-secret-77", DB_PASSWORD]
PLANTED += [ADMIN_TOKEN, READ_TOKEN]


def _assert_clean(text: str, where: str) -> None:
    for secret in PLANTED:
        assert secret not in text, f"{where} leaks {secret[:6]}…"


@pytest.fixture
def redacted_logs() -> Iterator[None]:
    """What `telewatch serve` / the CLI install: every log record is redacted when it is created."""
    install_redacting_record_factory()
    try:
        yield
    finally:
        uninstall_redacting_record_factory()


@pytest.fixture
def client(
    store: Store,
    tmp_path: Path,
    cfg: Any,
    telegram: Any,
    webhook: Any,
    smtp_server: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[TestClient]:
    data = {
        "links": {"base_url": "https://telewatch.example.com"},
        "channels": {
            "tg": cfg.telegram(telegram.api_base),
            "hook": cfg.webhook(webhook.url, format="json", headers={"Authorization": WEBHOOK_SECRET}),
            "mail": cfg.email(smtp_server.port, str(smtp_server.cert)),
        },
        "rules": [{"name": "all", "channels": ["tg", "hook", "mail"]}],
    }
    config = tmp_path / "alerting.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    monkeypatch.setenv("TELEWATCH_ALERTING_CONFIG", str(config))
    mid = repo.upsert_metric(store.cursor(), name="cpu", labels={"host": "a"})
    idx = pd.date_range("2024-05-01", periods=120, freq="1min", tz="UTC")
    repo.write_points(store.cursor(), mid, pd.Series(range(120), index=idx, dtype=float))
    settings = auth_settings(db_path=tmp_path / "unused.duckdb", alerting_config=config)
    with TestClient(
        create_app(settings, store=store), headers=ADMIN_HEADERS, raise_server_exceptions=False
    ) as c:
        yield c


def test_no_api_response_carries_a_secret(
    client: TestClient, telegram: Any, redacted_logs: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # a real send through each channel first, so that history and notifications hold something
    for channel in ("tg", "hook", "mail"):
        sent = client.post("/api/alerts/test", json={"channel": channel})
        assert sent.status_code == 200, sent.text
        _assert_clean(sent.text, f"POST /api/alerts/test {channel}")
    channels = client.get("/api/alerts/channels")
    assert channels.status_code == 200
    assert {c["name"] for c in channels.json()} >= {"tg", "hook", "mail"}
    checked = 0
    for route in iter_route_contexts(client.app.routes):  # type: ignore[attr-defined]
        if "GET" not in (route.methods or ()) or route.path.startswith("/static"):
            continue
        path = re.sub(r"\{[^}]+\}", "1", route.path)
        answer = client.get(path)
        _assert_clean(answer.text, f"GET {path}")
        checked += 1
    assert checked >= 25
    # httpx logs every Bot API call with its URL (which holds the token): redacted at the source
    assert any("/bot***/" in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]
    _assert_clean("\n".join(r.getMessage() for r in caplog.records), "the logs")


def test_a_failing_channel_error_names_no_secret(
    client: TestClient, telegram: Any, redacted_logs: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    telegram.down = True
    failed = client.post("/api/alerts/test", json={"channel": "tg"})
    assert failed.status_code in (200, 400, 502), failed.text
    assert "telegram" in failed.text.lower()
    _assert_clean(failed.text, "a failed Telegram send")
    _assert_clean("\n".join(r.getMessage() for r in caplog.records), "the logs")


def test_failing_source_connections_name_no_password(
    redacted_logs: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    dead = free_port()  # nothing listens there
    start, end = pd.Timestamp("2024-05-01", tz="UTC"), pd.Timestamp("2024-05-02", tz="UTC")
    sources = [
        PostgresSource(
            dsn=f"postgresql://tw:{DB_PASSWORD}@127.0.0.1:{dead}/tw?connect_timeout=2",
            table="web",
            metric_column="metric",
        ),
        PostgresSource(
            host="127.0.0.1",
            port=dead,
            user="tw",
            password=DB_PASSWORD,
            database="tw",
            table="web",
            metric_column="metric",
            connect_timeout=2,
        ),
        ClickHouseSource(
            host="127.0.0.1",
            port=dead,
            password=DB_PASSWORD,
            table="web",
            metric_column="metric",
            connect_timeout=2,
        ),
    ]
    for source in sources:
        with pytest.raises(TelewatchError) as caught:
            source.fetch(start=start, end=end)
        message = str(caught.value)
        assert message, source
        _assert_clean(message, f"{source.describe()} error")
        _assert_clean(repr(source.describe()), "describe()")
        logging.getLogger("telewatch.test").exception("fetch failed: %s", caught.value)
    _assert_clean("\n".join(r.getMessage() for r in caplog.records), "the logs")
    _assert_clean(caplog.text, "the formatted logs")
