"""Injection through every parameter of the PostgreSQL and ClickHouse sources, against the real servers.

For each parameter a user can set (table, columns, time column, value/label columns, filter keys and
values, metric list, aggregation, query text, database, user, DSN, time range) and each payload, the
outcome must be: refused with a clear error (QueryRefusedError, ConfigError, SourceError from the
server refusing an unknown name, or ValueError for a time that is not a time) OR the payload treated as
data (bound, or quoted as one identifier). Always: the canary table is untouched, no table appeared, no
file was written, and nothing slept.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from support.clickhouse import ClickHouseServer
from support.postgres import PostgresServer
from telewatch.core.errors import ConfigError
from telewatch.sources.base import SqlSource
from telewatch.sources.clickhouse import ClickHouseSource
from telewatch.sources.postgres import PostgresSource
from telewatch.sources.sql_guard import QueryRefusedError, SourceError

T0 = pd.Timestamp("2026-03-01 00:00", tz="UTC")
T1 = T0 + pd.Timedelta(hours=1)
# where a write that got through would land: world-writable, outside pytest's dirs, unique per run
TRAP = Path("/tmp") / f"telewatch-injection-{uuid.uuid4().hex}"

# {t} is the canary table, {f} the trap file
PAYLOADS = [
    "'; DROP TABLE {t}; --",
    "x'; DELETE FROM {t}; --",
    "1 OR 1=1",
    "' OR '1'='1",
    "x; DROP TABLE {t}",
    "x\\; DROP TABLE {t}",
    "x /* */ ; DELETE FROM {t}",
    "x -- comment",
    "x # comment",
    "x UNION SELECT * FROM {t}",
    "x) UNION (SELECT a FROM {t}",
    'x"; DROP TABLE {t}; --',
    "x`; DROP TABLE {t}; --",
    'ts" FROM {t}; DROP TABLE {t}; --',
    "ts` FROM {t}; DROP TABLE {t}; --",
    "x INTO OUTFILE '{f}'",
    "x; ATTACH TABLE tw_attached (a UInt8) ENGINE = Memory",
    "x; COPY {t} TO PROGRAM 'touch {f}'",
    "x; COPY {t} TO '{f}'",
    "pg_sleep(5)",
    "x' || pg_sleep(5) || '",
    "sleep(3)",
    "system.numbers",
    "%(start)s",
    "x\x00; DROP TABLE {t}",
    "x\n; DROP TABLE {t}",
]

ACCEPTED = (QueryRefusedError, ConfigError, SourceError)
BOUND = {"filter value", "metrics"}  # values sent as bind parameters: always data, never SQL


# --------------------------------------------------------------------------------------------- setup


@pytest.fixture(scope="module")
def pg(pg_server: PostgresServer) -> PostgresServer:
    pg_server.execute(
        "DROP TABLE IF EXISTS tw_canary; CREATE TABLE tw_canary (a int); INSERT INTO tw_canary VALUES (42);"
        "DROP TABLE IF EXISTS tw_metrics;"
        "CREATE TABLE tw_metrics (ts timestamptz, metric text, host text, value float8);"
    )
    pg_server.execute(
        "INSERT INTO tw_metrics SELECT %s::timestamptz + i * interval '1 minute', 'cpu', 'h1', i"
        " FROM generate_series(0, 59) AS i",
        [T0.to_pydatetime()],
    )
    return pg_server


@pytest.fixture(scope="module")
def ch(ch_server: ClickHouseServer) -> ClickHouseServer:
    ch_server.query("CREATE DATABASE IF NOT EXISTS tw_inj")
    ch_server.query("DROP TABLE IF EXISTS tw_inj.canary")
    ch_server.query("CREATE TABLE tw_inj.canary (a UInt8) ENGINE = Memory")
    ch_server.query("INSERT INTO tw_inj.canary VALUES (42)")
    ch_server.query("DROP TABLE IF EXISTS tw_inj.metrics")
    ch_server.query(
        "CREATE TABLE tw_inj.metrics (ts DateTime, metric String, host String, value Float64) ENGINE = Memory"
    )
    ch_server.query(
        "INSERT INTO tw_inj.metrics SELECT toDateTime('2026-03-01 00:00:00') + number * 60, 'cpu', 'h1', number"
        " FROM system.numbers LIMIT 60"
    )
    return ch_server


_PG_STATE = (
    "SELECT (SELECT array_agg(a) FROM tw_canary),"
    " (SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')),"
    " (SELECT count(*) FROM pg_largeobject_metadata)"
)
_CH_STATE = (
    "SELECT (SELECT groupArray(a) FROM tw_inj.canary),"
    " (SELECT count() FROM system.tables WHERE database NOT IN ('system'))"
)
_connections: dict[str, Any] = {}


def pg_state(server: PostgresServer) -> tuple[Any, ...]:
    """The canary's rows, the number of tables and of large objects (one superuser connection, reused)."""
    import psycopg

    key = f"pg:{server.port}"
    if key not in _connections or _connections[key].closed:
        _connections[key] = psycopg.connect(server.dsn, autocommit=True)
    row = _connections[key].execute(_PG_STATE).fetchone()
    return tuple(row)


def ch_state(server: ClickHouseServer) -> str:
    """The canary's rows and the number of tables (one HTTP client, reused)."""
    import httpx

    key = f"ch:{server.http_port}"
    if key not in _connections:
        _connections[key] = httpx.Client(base_url=f"http://127.0.0.1:{server.http_port}", timeout=30)
    response = _connections[key].post("/", content=_CH_STATE.encode())
    response.raise_for_status()
    return str(response.text)


@pytest.fixture(scope="module", autouse=True)
def _close_connections() -> Iterator[None]:
    yield
    for con in _connections.values():
        con.close()
    _connections.clear()


def outcome(build: Callable[[], SqlSource], *, start: Any = T0, end: Any = T1) -> str:
    """Build the source and fetch; 'refused' or 'data'. Any other exception fails the test."""
    started = time.monotonic()
    error: Exception | None = None
    try:
        source = build()
        source.fetch(start=start, end=end)
    except ACCEPTED as exc:
        error = exc
    if error is not None:
        assert str(error), "an error must say what was wrong"
    result = "data" if error is None else "refused"
    assert time.monotonic() - started < 2.5, "a sleep got through"
    assert not TRAP.exists(), "a file was written"
    return result


def _payload(template: str, table: str) -> str:
    return template.format(t=table, f=TRAP)


# ----------------------------------------------------------------------------------------- PostgreSQL

PG_TABLE_PARAMS: dict[str, Callable[[str], dict[str, Any]]] = {
    "table": lambda p: {"table": p, "metric_column": "metric"},
    "timestamp_column": lambda p: {"table": "tw_metrics", "metric_column": "metric", "timestamp_column": p},
    "metric_column": lambda p: {"table": "tw_metrics", "metric_column": p},
    "value_column": lambda p: {"table": "tw_metrics", "metric_column": "metric", "value_column": p},
    "value_columns": lambda p: {"table": "tw_metrics", "value_columns": ["value", p]},
    "label_columns": lambda p: {"table": "tw_metrics", "metric_column": "metric", "label_columns": [p]},
    "filter key": lambda p: {"table": "tw_metrics", "metric_column": "metric", "filters": {p: "h1"}},
    "filter value": lambda p: {"table": "tw_metrics", "metric_column": "metric", "filters": {"host": p}},
    "metrics": lambda p: {"table": "tw_metrics", "metric_column": "metric", "metrics": ["cpu", p]},
    "agg": lambda p: {
        "table": "tw_metrics",
        "metric_column": "metric",
        "resample": pd.Timedelta("5min"),
        "agg": p,
    },
    "resampled column": lambda p: {
        "table": "tw_metrics",
        "value_columns": [p],
        "resample": pd.Timedelta("5min"),
    },
}


@pytest.mark.parametrize("param", sorted(PG_TABLE_PARAMS))
def test_postgres_every_table_parameter_resists_injection(pg: PostgresServer, param: str) -> None:
    before = pg_state(pg)
    seen = set()
    for template in PAYLOADS:
        payload = _payload(template, "tw_canary")
        kwargs = PG_TABLE_PARAMS[param](payload)
        result = outcome(
            partial(PostgresSource, host=pg.host, port=pg.port, user="postgres", timeout=2, **kwargs)
        )
        seen.add(result)
        if param in BOUND and "\x00" not in payload:  # PostgreSQL refuses NUL in text, rightly
            assert result == "data", (param, payload)
        assert pg_state(pg) == before, (param, payload)
    if param not in BOUND:
        assert "refused" in seen  # the parameter really reached the guard or the server


@pytest.mark.parametrize(
    "query",
    [
        "SELECT ts, value FROM tw_metrics; DROP TABLE tw_canary",
        "SELECT ts, value FROM tw_metrics WHERE 1=1 \\; DROP TABLE tw_canary",
        "SELECT ts, value FROM tw_metrics /* ; */ ; DELETE FROM tw_canary",
        "COPY tw_canary TO PROGRAM 'touch {f}'",
        "COPY (SELECT 1) TO '{f}'",
        "SELECT ts, value FROM tw_metrics) AS q UNION (SELECT now(), 1.0",
        "WITH d AS (DELETE FROM tw_canary RETURNING 1) SELECT now() AS ts, 1.0 AS value FROM d",
        "SELECT * INTO tw_stolen FROM tw_canary",
        "SELECT ts, value FROM tw_metrics FOR UPDATE",
        "SELECT now() AS ts, 1.0 AS value FROM pg_sleep(5)",
        "SELECT now() AS ts, 1.0 AS value FROM pg_catalog.pg_sleep(5)",
        'SELECT now() AS ts, 1.0 AS value FROM "pg_sleep"(5)',
        'SELECT now() AS ts, 1.0 AS value FROM U&"pg\\0073leep"(5)',
        "SELECT now() AS ts, length(pg_catalog.pg_read_file('/etc/hostname'))::float8 AS value",
        "SELECT now() AS ts, lo_export(lo_from_bytea(0, 'x'), '{f}')::float8 AS value",
        "SELECT now() AS ts, set_config('default_transaction_read_only', 'off', false)::float8 AS value",
        "SELECT now() AS ts, 1.0 AS value FROM dblink('dbname=postgres', 'DROP TABLE tw_canary') AS t(a int)",
        "SELECT now() AS ts, query_to_xml('DELETE FROM tw_canary', true, true, '') AS value",
        "SELECT now() AS ts, pg_notify('x', 'y') AS value",
        "SELECT now() AS ts, nextval('s') AS value",
        "DO $$ BEGIN DROP TABLE tw_canary; END $$",
        "EXPLAIN ANALYZE DELETE FROM tw_canary",
        "SELECT ts, value FROM tw_metrics; COMMIT; DROP TABLE tw_canary",
    ],
)
def test_postgres_query_text_injections_are_refused(pg: PostgresServer, query: str) -> None:
    before = pg_state(pg)
    sql = query.format(f=TRAP)
    with pytest.raises(QueryRefusedError) as info:
        PostgresSource(host=pg.host, port=pg.port, user="postgres", query=sql, timeout=2)
    assert str(info.value)
    assert pg_state(pg) == before
    assert not TRAP.exists()


def test_postgres_a_read_only_union_is_data_and_still_bounded_by_the_time_range(pg: PostgresServer) -> None:
    source = PostgresSource(
        host=pg.host,
        port=pg.port,
        user="postgres",
        query="SELECT ts, value FROM tw_metrics UNION ALL SELECT ts, value FROM tw_metrics",
    )
    out = source.fetch(start=T0, end=T0 + pd.Timedelta(minutes=5))
    assert [s.values.tolist() for s in out] == [[0.0, 1.0, 2.0, 3.0, 4.0]]


@pytest.mark.parametrize("param", ["database", "user", "host", "dsn"])
def test_postgres_connection_parameters_resist_injection(pg: PostgresServer, param: str) -> None:
    before = pg_state(pg)
    for template in [*PAYLOADS, "postgres options='-c default_transaction_read_only=off'"]:
        payload = _payload(template, "tw_canary")
        kwargs: dict[str, Any] = {
            "host": pg.host,
            "port": pg.port,
            "user": "postgres",
            "database": "postgres",
        }
        if param == "dsn":
            kwargs = {"dsn": f"host={pg.host} port={pg.port} user=postgres dbname={payload}"}
        else:
            kwargs[param] = payload
        build = partial(
            PostgresSource, **kwargs, table="tw_metrics", metric_column="metric", connect_timeout=2
        )
        result = outcome(build)
        if not (param == "dsn" and "options=" in payload):  # a valid DSN option: read-only still holds
            assert result == "refused", (param, payload)
        assert pg_state(pg) == before


def test_postgres_a_dsn_cannot_lift_read_only(pg: PostgresServer) -> None:
    dsn = (
        f"host={pg.host} port={pg.port} user=postgres dbname=postgres"
        " options='-c default_transaction_read_only=off'"
    )
    source = PostgresSource(dsn=dsn, table="tw_canary", value_columns=["a"])
    with pytest.raises(SourceError, match="read-only"):
        source._execute("DELETE FROM tw_canary", {})
    assert pg_state(pg)[0] == [42]


@pytest.mark.parametrize("bound", ["start", "end"])
def test_postgres_time_range_is_bound_never_spliced(pg: PostgresServer, bound: str) -> None:
    before = pg_state(pg)
    source = PostgresSource(
        host=pg.host, port=pg.port, user="postgres", table="tw_metrics", metric_column="metric"
    )
    for template in PAYLOADS:
        payload = "2026-03-01" + _payload(template, "tw_canary")
        with pytest.raises((ValueError, *ACCEPTED)):
            source.fetch(**{"start": T0, "end": T1, bound: payload})  # type: ignore[arg-type]
        assert pg_state(pg) == before


def test_postgres_identifiers_are_data_not_sql(pg: PostgresServer) -> None:
    pg.execute('DROP TABLE IF EXISTS "we""ird; DROP TABLE tw_canary; --"')
    pg.execute('CREATE TABLE "we""ird; DROP TABLE tw_canary; --" (ts timestamptz, "v`al\'ue" float8)')
    pg.execute(
        'INSERT INTO "we""ird; DROP TABLE tw_canary; --" VALUES (%s, 1.5)',
        [(T0 + pd.Timedelta(minutes=1)).to_pydatetime()],
    )
    try:
        source = PostgresSource(
            host=pg.host,
            port=pg.port,
            user="postgres",
            table='we"ird; DROP TABLE tw_canary; --',
            value_columns=["v`al'ue"],
        )
        out = source.fetch(start=T0, end=T1)
        assert [(s.name, s.values.tolist()) for s in out] == [("v`al'ue", [1.5])]
        assert pg_state(pg)[0] == [42]
    finally:
        pg.execute('DROP TABLE IF EXISTS "we""ird; DROP TABLE tw_canary; --"')


# ----------------------------------------------------------------------------------------- ClickHouse

CH_TABLE_PARAMS: dict[str, Callable[[str], dict[str, Any]]] = {
    "table": lambda p: {"table": p, "metric_column": "metric"},
    "timestamp_column": lambda p: {
        "table": "tw_inj.metrics",
        "metric_column": "metric",
        "timestamp_column": p,
    },
    "metric_column": lambda p: {"table": "tw_inj.metrics", "metric_column": p},
    "value_column": lambda p: {"table": "tw_inj.metrics", "metric_column": "metric", "value_column": p},
    "value_columns": lambda p: {"table": "tw_inj.metrics", "value_columns": ["value", p]},
    "label_columns": lambda p: {"table": "tw_inj.metrics", "metric_column": "metric", "label_columns": [p]},
    "filter key": lambda p: {"table": "tw_inj.metrics", "metric_column": "metric", "filters": {p: "h1"}},
    "filter value": lambda p: {"table": "tw_inj.metrics", "metric_column": "metric", "filters": {"host": p}},
    "metrics": lambda p: {"table": "tw_inj.metrics", "metric_column": "metric", "metrics": ["cpu", p]},
    "agg": lambda p: {
        "table": "tw_inj.metrics",
        "metric_column": "metric",
        "resample": pd.Timedelta("5min"),
        "agg": p,
    },
    "resampled column": lambda p: {
        "table": "tw_inj.metrics",
        "value_columns": [p],
        "resample": pd.Timedelta("5min"),
    },
}


@pytest.mark.parametrize("param", sorted(CH_TABLE_PARAMS))
def test_clickhouse_every_table_parameter_resists_injection(ch: ClickHouseServer, param: str) -> None:
    before = ch_state(ch)
    seen = set()
    for template in PAYLOADS:
        payload = _payload(template, "tw_inj.canary")
        kwargs = CH_TABLE_PARAMS[param](payload)
        result = outcome(partial(ClickHouseSource, host=ch.host, port=ch.tcp_port, timeout=2, **kwargs))
        seen.add(result)
        if param in BOUND:
            assert result == "data", (param, payload)
        assert ch_state(ch) == before, (param, payload)
    if param not in BOUND:
        assert "refused" in seen


@pytest.mark.parametrize(
    "query",
    [
        "SELECT ts, value FROM tw_inj.metrics; DROP TABLE tw_inj.canary",
        "SELECT ts, value FROM tw_inj.metrics # x\n; DROP TABLE tw_inj.canary",
        "SELECT ts, value FROM tw_inj.metrics INTO OUTFILE '{f}'",
        "SELECT ts, value FROM tw_inj.metrics SETTINGS readonly = 0",
        "ATTACH TABLE tw_inj.attached (a UInt8) ENGINE = Memory",
        "SELECT toDateTime(0) AS ts, sleep(3) AS value",
        "SELECT toDateTime(0) AS ts, `sleep`(3) AS value",
        "SELECT * FROM file('/etc/passwd', 'TSV', 'line String')",
        "SELECT * FROM `file`('/etc/passwd', 'TSV', 'line String')",
        "SELECT * FROM url('http://127.0.0.1:1/', 'TSV', 'line String')",
        "SELECT * FROM remote('127.0.0.1', system.one)",
        "SELECT * FROM system.users",
        "SELECT ts, value FROM tw_inj.metrics) UNION ALL (SELECT ts, value FROM tw_inj.metrics",
        "SYSTEM SHUTDOWN",
        "KILL QUERY WHERE 1",
        "OPTIMIZE TABLE tw_inj.canary",
        "SELECT * FROM executable('touch {f}', 'TSV', 'a String')",
    ],
)
def test_clickhouse_query_text_injections_are_refused(ch: ClickHouseServer, query: str) -> None:
    before = ch_state(ch)
    with pytest.raises(QueryRefusedError) as info:
        ClickHouseSource(host=ch.host, port=ch.tcp_port, query=query.format(f=TRAP), value_columns=["value"])
    assert str(info.value)
    assert ch_state(ch) == before
    assert not TRAP.exists()


@pytest.mark.parametrize("param", ["database", "user"])
def test_clickhouse_connection_parameters_resist_injection(ch: ClickHouseServer, param: str) -> None:
    before = ch_state(ch)
    for template in PAYLOADS:
        payload = _payload(template, "tw_inj.canary")
        kwargs: dict[str, Any] = {"host": ch.host, "port": ch.tcp_port, param: payload}
        result = outcome(
            partial(
                ClickHouseSource, **kwargs, table="tw_inj.metrics", metric_column="metric", connect_timeout=2
            )
        )
        assert result == "refused", (param, payload)
        assert ch_state(ch) == before


@pytest.mark.parametrize("bound", ["start", "end"])
def test_clickhouse_time_range_is_bound_never_spliced(ch: ClickHouseServer, bound: str) -> None:
    before = ch_state(ch)
    source = ClickHouseSource(host=ch.host, port=ch.tcp_port, table="tw_inj.metrics", metric_column="metric")
    for template in PAYLOADS:
        payload = "2026-03-01" + _payload(template, "tw_inj.canary")
        with pytest.raises((ValueError, *ACCEPTED)):
            source.fetch(**{"start": T0, "end": T1, bound: payload})  # type: ignore[arg-type]
        assert ch_state(ch) == before


def test_clickhouse_filter_values_are_bound_as_data(ch: ClickHouseServer) -> None:
    for value in ["h1' OR '1'='1", "h1\\' OR 1 --", "h1%(start)s", "h1`; DROP TABLE tw_inj.canary"]:
        source = ClickHouseSource(
            host=ch.host,
            port=ch.tcp_port,
            table="tw_inj.metrics",
            metric_column="metric",
            filters={"host": value},
        )
        assert source.fetch(start=T0, end=T1) == []  # no host has that name: nothing, not everything
    assert ch_state(ch).startswith("[42]\t")


def test_no_trap_file_after_all(tmp_path: Path) -> None:
    assert not TRAP.exists()
    assert os.access("/tmp", os.W_OK)
