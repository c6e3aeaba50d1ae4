"""End to end: a monitor on a real PostgreSQL table, a planted anomaly, ``telewatch check`` alerts once
through a real webhook channel, and the next tick raises nothing new."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
from typer.testing import CliRunner

from support.postgres import PostgresServer
from support.webhook import WebhookReceiver
from telewatch.cli.app import app

T_END = pd.Timestamp("2026-03-02 00:00", tz="UTC")  # the first tick


def _rows(
    start: pd.Timestamp, minutes: int, *, spike_at: set[int] | None = None, seed: int = 0
) -> list[tuple]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(minutes):
        ts = start + pd.Timedelta(minutes=i)
        minute_of_day = ts.hour * 60 + ts.minute
        value = 120 + 30 * np.sin(2 * np.pi * minute_of_day / 1440) + rng.normal(0, 2)
        if spike_at and i in spike_at:
            value = 900.0
        rows.append((ts.to_pydatetime(), "latency_ms", "eu", float(value)))
    return rows


def _insert(server: PostgresServer, rows: list[tuple]) -> None:
    with psycopg.connect(server.dsn, autocommit=True) as con, con.cursor() as cur:
        cur.executemany("INSERT INTO web_e2e VALUES (%s, %s, %s, %s)", rows)


@pytest.fixture
def monitor_file(tmp_path: Path, pg_server: PostgresServer, webhook: WebhookReceiver) -> Path:
    pg_server.execute(
        "DROP TABLE IF EXISTS web_e2e; CREATE TABLE web_e2e (ts timestamptz, metric text, dc text, value float8)"
    )
    _insert(pg_server, _rows(T_END - pd.Timedelta(days=1), 1440, seed=1))
    path = tmp_path / "monitors.yaml"
    path.write_text(
        f"""
connections:
  main-pg:
    type: postgres
    host: 127.0.0.1
    port: {pg_server.port}
    user: postgres
    password: ${{TW_TEST_PG_PASSWORD:-}}
    database: postgres
alerting:
  channels:
    ops-hook:
      type: webhook
      url: {webhook.url}
      format: json
monitors:
  - name: web-latency
    owner: "@web-oncall"
    group: web
    source:
      connection: main-pg
      query: >
        SELECT ts, metric, dc, value FROM web_e2e
        WHERE ts >= %(start)s AND ts < %(end)s
      metric_column: metric
      label_columns: [dc]
      resample: 1m
    schedule: {{every: 15m}}
    history: 1d
    train: {{every: 1d, window: 1d, min_points: 60, warm_up: 0s}}
    detector: {{type: robust_bands}}
    alert: {{severity: critical}}
    channels: [ops-hook]
""".replace("  # type: ignore[attr-defined]", "")
    )
    return path


def _check(path: Path, db: Path, now: pd.Timestamp) -> str:
    result = CliRunner().invoke(
        app,
        ["check", "--config", str(path), "--db", str(db), "--now", now.isoformat()],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    print(result.output)
    return result.output


def _firing(bodies: list[dict]) -> list[dict]:
    return [a for b in bodies for a in b.get("alerts", []) if a.get("status") == "firing"]


def test_planted_anomaly_raises_exactly_one_alert(
    monitor_file: Path, pg_server: PostgresServer, webhook: WebhookReceiver, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "tw.duckdb"
    out = _check(monitor_file, db, T_END)
    assert "web-latency @ 2026-03-02 00:00 UTC: ok, 1440 new points in 1 series" in out
    assert webhook.bodies == []  # a clean day: nothing to say

    # 15 new minutes with a 4-minute spike in the middle
    _insert(pg_server, _rows(T_END, 15, spike_at={6, 7, 8, 9}, seed=2))
    _check(monitor_file, db, T_END + pd.Timedelta(minutes=15))
    firing = _firing(webhook.bodies)
    assert len(webhook.bodies) == 1
    assert len(firing) == 1
    alert = firing[0]
    assert alert["metric"] == "latency_ms"
    assert alert["labels"] == {"dc": "eu"}
    # the spike (minutes 6-9) is over when the 15-minute tick sees it: told once as over, a warning
    assert alert["severity"] == "warning"
    assert alert["recovered"] is True
    assert alert["monitor"] == "web-latency"

    # the same tick again, then the next tick with normal data: no new alert
    _check(monitor_file, db, T_END + pd.Timedelta(minutes=15))
    _insert(pg_server, _rows(T_END + pd.Timedelta(minutes=15), 15, seed=3))
    _check(monitor_file, db, T_END + pd.Timedelta(minutes=30))
    assert len(_firing(webhook.bodies)) == 1
    # and no separate resolution follows an alert that already said it was over
    assert len(webhook.bodies) == 1, webhook.bodies[1:]
