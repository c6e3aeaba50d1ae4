"""PostgreSQL source against a real PostgreSQL 15 on loopback."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from support.postgres import PostgresServer
from telewatch.sources.base import QueryRefusedError, SourceError, SourceState
from telewatch.sources.postgres import PostgresSource

T0 = pd.Timestamp("2026-03-01 00:00", tz="UTC")


@pytest.fixture(scope="module")
def seeded(pg_server: PostgresServer) -> PostgresServer:
    pg_server.execute(
        "DROP TABLE IF EXISTS web_long; CREATE TABLE web_long (ts timestamptz, metric text, dc text, value float8);"
        "DROP TABLE IF EXISTS web_wide; CREATE TABLE web_wide (ts timestamp, rps float8, latency float8);"
        "DROP TABLE IF EXISTS victim; CREATE TABLE victim (a int); INSERT INTO victim VALUES (1);"
    )
    import psycopg

    with psycopg.connect(pg_server.dsn, autocommit=True) as con, con.cursor() as cur:
        rows = []
        for i in range(120):
            ts = (T0 + pd.Timedelta(minutes=i)).to_pydatetime()
            rows.append((ts, "rps", "eu", float(i)))
            rows.append((ts, "rps", "us", float(1000 + i)))
            rows.append((ts, "errors", "eu", float(i % 7)))
        cur.executemany("INSERT INTO web_long VALUES (%s, %s, %s, %s)", rows)
        wide = []
        for i in range(240):  # every 30 s
            ts = (T0 + pd.Timedelta(seconds=30 * i)).tz_localize(None).to_pydatetime()
            wide.append((ts, float(i), float(2 * i)))
        cur.executemany("INSERT INTO web_wide VALUES (%s, %s, %s)", wide)
    return pg_server


def _source(server: PostgresServer, **kw: object) -> PostgresSource:
    return PostgresSource(host=server.host, port=server.port, user="postgres", database="postgres", **kw)  # type: ignore[arg-type]


def test_seeded_long_rows_come_back_exactly(seeded: PostgresServer) -> None:
    src = _source(
        seeded,
        query="SELECT ts, metric, dc, value FROM web_long WHERE ts >= %(start)s AND ts < %(end)s",
        metric_column="metric",
        label_columns=["dc"],
    )
    got = {s.key: s.values for s in src.fetch(start=T0, end=T0 + pd.Timedelta(hours=2))}
    assert sorted(got) == ["errors{dc=eu}", "rps{dc=eu}", "rps{dc=us}"]
    expected_index = pd.date_range(T0, periods=120, freq="min")
    assert got["rps{dc=eu}"].index.equals(expected_index)
    np.testing.assert_array_equal(got["rps{dc=eu}"].to_numpy(), np.arange(120, dtype=float))
    np.testing.assert_array_equal(got["rps{dc=us}"].to_numpy(), 1000 + np.arange(120, dtype=float))
    np.testing.assert_array_equal(got["errors{dc=eu}"].to_numpy(), np.arange(120) % 7)
    # the range is half-open: start included, end excluded
    part = {
        s.key: s.values
        for s in src.fetch(start=T0 + pd.Timedelta(minutes=10), end=T0 + pd.Timedelta(minutes=20))
    }
    assert part["rps{dc=eu}"].tolist() == [float(i) for i in range(10, 20)]


def test_table_mapping_with_filters_and_metric_list(seeded: PostgresServer) -> None:
    src = _source(
        seeded,
        table="web_long",
        metric_column="metric",
        label_columns=["dc"],
        filters={"dc": "us"},
        metrics=["rps"],
    )
    out = src.fetch(start=T0, end=T0 + pd.Timedelta(minutes=5))
    assert [(s.key, s.values.tolist()) for s in out] == [
        ("rps{dc=us}", [1000.0, 1001.0, 1002.0, 1003.0, 1004.0])
    ]


def test_wide_table_resampled_per_minute_in_sql(seeded: PostgresServer) -> None:
    src = _source(
        seeded, table="web_wide", value_columns=["rps", "latency"], resample=pd.Timedelta("1min"), agg="avg"
    )
    sql, _ = src.build_sql()
    assert "date_trunc('minute'" in sql
    assert "GROUP BY" in sql
    got = {s.name: s.values for s in src.fetch(start=T0, end=T0 + pd.Timedelta(minutes=3))}
    assert got["rps"].tolist() == [0.5, 2.5, 4.5]  # avg of (0, 1), (2, 3), (4, 5)
    assert got["latency"].tolist() == [1.0, 5.0, 9.0]
    five = _source(seeded, table="web_wide", value_columns=["rps"], resample=pd.Timedelta("5min"), agg="max")
    assert five.fetch(start=T0, end=T0 + pd.Timedelta(minutes=10))[0].values.tolist() == [9.0, 19.0]


def test_incremental_fetch_returns_only_new_points(seeded: PostgresServer) -> None:
    src = _source(seeded, table="web_long", metric_column="metric", label_columns=["dc"], metrics=["rps"])
    first, state = src.fetch_incremental(
        state=SourceState(), end=T0 + pd.Timedelta(minutes=60), lookback=pd.Timedelta(hours=2)
    )
    assert {s.key: len(s.values) for s in first} == {"rps{dc=eu}": 60, "rps{dc=us}": 60}
    again, state2 = src.fetch_incremental(state=state, end=T0 + pd.Timedelta(minutes=60))
    assert again == []
    more, _ = src.fetch_incremental(state=state2, end=T0 + pd.Timedelta(minutes=65))
    assert {s.key: s.values.tolist() for s in more} == {
        "rps{dc=eu}": [60.0, 61.0, 62.0, 63.0, 64.0],
        "rps{dc=us}": [1060.0, 1061.0, 1062.0, 1063.0, 1064.0],
    }


@pytest.mark.parametrize(
    "query",
    [
        "SELECT ts, value FROM web_long; DROP TABLE victim",
        "DROP TABLE victim",
        "WITH gone AS (DELETE FROM victim RETURNING *) SELECT now() AS ts, 1.0 AS value FROM gone",
        "SELECT * INTO stolen FROM victim",
        "INSERT INTO victim VALUES (2)",
        "SELECT set_config('default_transaction_read_only', 'off', false)",
    ],
)
def test_hostile_queries_are_refused_before_sending(seeded: PostgresServer, query: str) -> None:
    with pytest.raises(QueryRefusedError):
        _source(seeded, query=query, value_columns=["value"])


def test_server_side_read_only_refuses_writes_that_slip_past(seeded: PostgresServer) -> None:
    src = _source(seeded, table="victim", value_columns=["a"])
    for sql in ("DELETE FROM victim", "CREATE TABLE sneaky (a int)", "INSERT INTO victim VALUES (3)"):
        with pytest.raises(SourceError, match="read-only transaction"):
            src._execute(sql, {})  # bypass the guard on purpose: the server must still refuse
    import psycopg

    with psycopg.connect(seeded.dsn) as con:
        assert con.execute("SELECT count(*) FROM victim").fetchone() == (1,)


def test_timeout_is_enforced(seeded: PostgresServer) -> None:
    src = _source(
        seeded,
        query=(  # counting 10^8 rows takes seconds: the server must cancel it at 0.3 s
            "SELECT %(start)s::timestamptz AS ts, count(*)::float8 AS value FROM generate_series(1, 100000000)"
        ),
        value_columns=["value"],
        timeout=0.3,
    )
    with pytest.raises(SourceError, match="timeout"):
        src.fetch(start=T0, end=T0 + pd.Timedelta(minutes=1))


def test_dead_server_gives_a_clear_redacted_error(seeded: PostgresServer) -> None:
    src = PostgresSource(
        host="127.0.0.1",
        port=seeded.port,
        user="nobody",
        password="hunter2-secret",
        database="postgres",
        table="web_long",
        metric_column="metric",
        connect_timeout=2,
    )
    seeded.stop()
    try:
        with pytest.raises(SourceError) as err:
            src.fetch(start=T0, end=T0 + pd.Timedelta(minutes=1))
        message = str(err.value)
        assert "cannot connect" in message
        assert f"127.0.0.1:{seeded.port}" in message
        assert "hunter2-secret" not in message
    finally:
        seeded.start()
    ok = _source(seeded, table="web_long", metric_column="metric", label_columns=["dc"], metrics=["rps"])
    assert len(ok.fetch(start=T0, end=T0 + pd.Timedelta(minutes=1))) == 2


def test_a_percent_in_the_query_is_sql_not_a_placeholder(seeded: PostgresServer) -> None:
    # LIKE patterns, a modulo and a '%s' inside a string literal are SQL, not the driver's placeholders;
    # '%%' (the drivers' own escape, documented before) still means one '%'
    src = _source(
        seeded,
        query=(
            "SELECT ts, metric, dc, value FROM web_long WHERE metric LIKE 'rp%' AND metric LIKE '%%s' AND dc NOT LIKE '%s'"
            " AND (extract(minute from ts)::int % 2) = 0 AND ts >= %(start)s AND ts < %(end)s"
        ),
        metric_column="metric",
        label_columns=["dc"],
    )
    got = {s.key: s.values for s in src.fetch(start=T0, end=T0 + pd.Timedelta(minutes=20))}
    assert list(got) == ["rps{dc=eu}"]
    assert got["rps{dc=eu}"].tolist() == [float(i) for i in range(0, 20, 2)]
