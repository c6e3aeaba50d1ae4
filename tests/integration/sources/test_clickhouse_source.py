"""ClickHouse source against Debian's ClickHouse 18.16 on loopback (native protocol)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from support.clickhouse import ClickHouseServer
from telewatch.sources.base import QueryRefusedError, SourceError, SourceState
from telewatch.sources.clickhouse import ClickHouseSource

T0 = pd.Timestamp("2026-03-01 00:00", tz="UTC")


@pytest.fixture(scope="module")
def seeded(ch_server: ClickHouseServer) -> ClickHouseServer:
    ch_server.query("CREATE DATABASE IF NOT EXISTS web")
    ch_server.query("DROP TABLE IF EXISTS web.telemetry")
    ch_server.query(
        "CREATE TABLE web.telemetry (ts DateTime, host String, rps Float64, latency_ms Float64)"
        " ENGINE = MergeTree() ORDER BY (host, ts)"
    )
    ch_server.query("DROP TABLE IF EXISTS web.victim")
    ch_server.query("CREATE TABLE web.victim (a UInt8) ENGINE = Memory")
    ch_server.query("INSERT INTO web.victim VALUES (1)")
    base = int(T0.timestamp())
    rows = []
    for i in range(360):  # every 20 s for 2 hours, two hosts
        for host, off in (("a", 0.0), ("b", 500.0)):
            rows.append(f"({base + 20 * i}, '{host}', {off + i}, {off + 2 * i})")
    ch_server.query("INSERT INTO web.telemetry VALUES " + ",".join(rows))
    return ch_server


def _source(server: ClickHouseServer, **kw: object) -> ClickHouseSource:
    return ClickHouseSource(host=server.host, port=server.tcp_port, **kw)  # type: ignore[arg-type]


def test_seeded_rows_come_back_exactly(seeded: ClickHouseServer) -> None:
    src = _source(
        seeded,
        query="SELECT ts, host, rps, latency_ms FROM web.telemetry WHERE ts >= %(start)s AND ts < %(end)s",
        value_columns=["rps", "latency_ms"],
        label_columns=["host"],
    )
    got = {s.key: s.values for s in src.fetch(start=T0, end=T0 + pd.Timedelta(hours=2))}
    assert sorted(got) == ["latency_ms{host=a}", "latency_ms{host=b}", "rps{host=a}", "rps{host=b}"]
    assert got["rps{host=a}"].index.equals(pd.date_range(T0, periods=360, freq="20s"))
    np.testing.assert_array_equal(got["rps{host=b}"].to_numpy(), 500 + np.arange(360, dtype=float))
    np.testing.assert_array_equal(got["latency_ms{host=a}"].to_numpy(), 2 * np.arange(360, dtype=float))


def test_per_minute_aggregation_is_pushed_down(seeded: ClickHouseServer) -> None:
    src = _source(
        seeded,
        table="web.telemetry",
        value_columns=["rps"],
        label_columns=["host"],
        filters={"host": "a"},
        resample=pd.Timedelta("1min"),
        agg="avg",
    )
    sql, _ = src.build_sql()
    assert "toStartOfMinute" in sql
    assert "toStartOfInterval" not in sql
    assert "DateTime64" not in sql
    out = src.fetch(start=T0, end=T0 + pd.Timedelta(minutes=3))
    assert [(s.key, s.values.tolist()) for s in out] == [("rps{host=a}", [1.0, 4.0, 7.0])]  # avg(0,1,2), ...
    five = _source(
        seeded,
        table="web.telemetry",
        value_columns=["rps"],
        filters={"host": "a"},
        resample=pd.Timedelta("5min"),
        agg="max",
    )
    assert five.fetch(start=T0, end=T0 + pd.Timedelta(minutes=10))[0].values.tolist() == [14.0, 29.0]


def test_incremental_fetch_returns_only_new_points(seeded: ClickHouseServer) -> None:
    src = _source(
        seeded,
        table="web.telemetry",
        value_columns=["rps"],
        label_columns=["host"],
        resample=pd.Timedelta("1min"),
    )
    first, state = src.fetch_incremental(
        state=SourceState(), end=T0 + pd.Timedelta(minutes=30), lookback=pd.Timedelta(hours=1)
    )
    assert {s.key: len(s.values) for s in first} == {"rps{host=a}": 30, "rps{host=b}": 30}
    again, state = src.fetch_incremental(state=state, end=T0 + pd.Timedelta(minutes=30))
    assert again == []
    more, _ = src.fetch_incremental(state=state, end=T0 + pd.Timedelta(minutes=32))
    assert {s.key: s.values.tolist() for s in more} == {
        "rps{host=a}": [91.0, 94.0],
        "rps{host=b}": [591.0, 594.0],
    }


@pytest.mark.parametrize(
    "query",
    [
        "SELECT ts, rps FROM web.telemetry; DROP TABLE web.victim",
        "DROP TABLE web.victim",
        "INSERT INTO web.victim VALUES (2)",
        "SELECT ts, rps FROM web.telemetry INTO OUTFILE '/tmp/x.tsv'",
        "SELECT ts, rps FROM web.telemetry SETTINGS readonly = 0",
        "SELECT * FROM file('/etc/passwd', 'TSV', 'line String')",
        "ALTER TABLE web.victim DELETE WHERE 1",
    ],
)
def test_hostile_queries_are_refused(seeded: ClickHouseServer, query: str) -> None:
    with pytest.raises(QueryRefusedError):
        _source(seeded, query=query, value_columns=["rps"])


def test_server_side_readonly_refuses_writes_that_slip_past(seeded: ClickHouseServer) -> None:
    src = _source(seeded, table="web.victim", value_columns=["a"])
    for sql in (
        "INSERT INTO web.victim VALUES (9)",
        "DROP TABLE web.victim",
        "CREATE TABLE web.x (a UInt8) ENGINE = Memory",
    ):
        with pytest.raises(SourceError, match="readonly"):
            src._execute(sql, {})
    assert seeded.query("SELECT count() FROM web.victim").strip() == "1"


def test_dead_server_gives_a_clear_redacted_error_and_recovers(seeded: ClickHouseServer) -> None:
    src = ClickHouseSource(
        host="127.0.0.1",
        port=seeded.tcp_port,
        password="s3cret-pass",
        table="web.telemetry",
        value_columns=["rps"],
        connect_timeout=2,
    )
    seeded.stop()
    try:
        with pytest.raises(SourceError) as err:
            src.fetch(start=T0, end=T0 + pd.Timedelta(minutes=1))
        assert "cannot connect" in str(err.value)
        assert "s3cret-pass" not in str(err.value)
    finally:
        seeded.start()
    ok = _source(seeded, table="web.telemetry", value_columns=["rps"], filters={"host": "a"})
    assert ok.fetch(start=T0, end=T0 + pd.Timedelta(minutes=1))[0].values.tolist() == [0.0, 1.0, 2.0]


def test_a_percent_in_the_query_is_sql_not_a_placeholder(seeded: ClickHouseServer) -> None:
    src = _source(
        seeded,
        query=(
            "SELECT ts, host, rps FROM web.telemetry WHERE host LIKE 'a%' AND host NOT LIKE '%s'"
            " AND (toSecond(ts) % 40) = 0 AND ts >= %(start)s AND ts < %(end)s"
        ),
        value_columns=["rps"],
        label_columns=["host"],
    )
    got = {s.key: s.values for s in src.fetch(start=T0, end=T0 + pd.Timedelta(minutes=2))}
    assert list(got) == ["rps{host=a}"]
    # rows every 20 s; seconds 0 and 40 of each minute are kept (i = 0, 2, 3, 5)
    assert got["rps{host=a}"].tolist() == [0.0, 2.0, 3.0, 5.0]
