"""A failing source is one line in the scheduler's log: the monitor, the source and the reason, no driver
traceback (clickhouse-driver logs every failed connection with ``exc_info``; server errors carry stack
traces and psycopg's messages several lines). Real servers: the session's PostgreSQL and ClickHouse."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from support import free_port
from support.clickhouse import ClickHouseServer
from support.postgres import PostgresServer
from telewatch.scheduler.jobs import check_monitors, load_config
from telewatch.scheduler.runner import Runner
from telewatch.services.retention import RetentionPolicy
from telewatch.store.db import Store

NOW = pd.Timestamp("2026-03-01 00:00", tz="UTC")


@pytest.fixture
def log_text() -> Iterator[io.StringIO]:
    """Everything logged, formatted as `telewatch run` does (tracebacks included, if any)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _config(tmp_path: Path, pg: PostgresServer, ch: ClickHouseServer) -> Path:
    closed = free_port()
    path = tmp_path / "monitors.yaml"
    path.write_text(
        f"""
monitors:
  - name: pg-closed
    source:
      type: postgres
      host: 127.0.0.1
      port: {closed}
      user: telewatch
      password: pg-secret-9
      database: metrics
      table: samples
      timestamp_column: ts
      value_columns: [a]
    schedule: {{every: 1m}}
  - name: pg-missing-table
    source:
      type: postgres
      host: 127.0.0.1
      port: {pg.port}
      user: {pg.user}
      database: {pg.database}
      table: no_such_table
      timestamp_column: ts
      value_columns: [b]
    schedule: {{every: 1m}}
  - name: ch-closed
    source:
      type: clickhouse
      host: 127.0.0.1
      port: {closed}
      table: samples
      timestamp_column: ts
      value_columns: [c]
    schedule: {{every: 1m}}
  - name: ch-missing-table
    source:
      type: clickhouse
      host: 127.0.0.1
      port: {ch.tcp_port}
      table: no_such_table
      timestamp_column: ts
      value_columns: [d]
    schedule: {{every: 1m}}
"""
    )
    return path


def _lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def _check_one_line_each(text: str, port: int, pg: PostgresServer, ch: ClickHouseServer) -> None:
    lines = _lines(text)
    assert "Traceback" not in text
    assert all(ln.startswith("20") for ln in lines), text  # every line is a record: no continuation lines
    failed = {ln.split("monitor ", 1)[1].split(" ", 1)[0]: ln for ln in lines if " failed (attempt " in ln}
    assert set(failed) == {"pg-closed", "pg-missing-table", "ch-closed", "ch-missing-table"}, text
    assert f"postgres 127.0.0.1:{port}/metrics: cannot connect" in failed["pg-closed"]
    assert "Connection refused" in failed["pg-closed"]
    assert "pg-secret-9" not in text
    assert f"postgres 127.0.0.1:{pg.port}/{pg.database}: the query failed" in failed["pg-missing-table"]
    assert 'relation "no_such_table" does not exist' in failed["pg-missing-table"]
    assert f"clickhouse 127.0.0.1:{port}/default: cannot connect" in failed["ch-closed"]
    assert "Connection refused" in failed["ch-closed"]
    assert f"clickhouse 127.0.0.1:{ch.tcp_port}/default: the query failed" in failed["ch-missing-table"]
    assert "no_such_table" in failed["ch-missing-table"]
    assert "Stack trace" not in text
    # the driver's own warning about the refused connection is kept, on one line
    assert any(
        "clickhouse_driver.connection: Failed to connect to 127.0.0.1" in ln and "Connection refused" in ln
        for ln in lines
    ), text


def test_the_scheduler_logs_one_line_per_failing_source(
    tmp_path: Path, pg_server: PostgresServer, ch_server: ClickHouseServer, log_text: io.StringIO
) -> None:
    path = _config(tmp_path, pg_server, ch_server)
    port = int(path.read_text().split("port: ", 1)[1].split()[0])
    with Store(tmp_path / "tw.duckdb") as store:
        reports = Runner(load_config(path), store=store, retention=RetentionPolicy()).run_pending(now=NOW)
    assert [r.status for r in reports] == ["error"] * 4
    _check_one_line_each(log_text.getvalue(), port, pg_server, ch_server)


def test_telewatch_check_logs_one_line_too(
    tmp_path: Path, pg_server: PostgresServer, ch_server: ClickHouseServer, log_text: io.StringIO
) -> None:
    path = _config(tmp_path, pg_server, ch_server)
    port = int(path.read_text().split("port: ", 1)[1].split()[0])
    with Store(tmp_path / "tw.duckdb") as store:
        reports = check_monitors(load_config(path), store=store, now=NOW)
    assert [r.status for r in reports] == ["error"] * 4
    _check_one_line_each(log_text.getvalue(), port, pg_server, ch_server)
