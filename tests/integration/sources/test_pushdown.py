"""Pushdown against the real servers: aggregation runs in ClickHouse 18.16 / PostgreSQL 15, and only
buckets travel. Every pushed-down result is compared with pandas resampling of the same raw rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

from support.clickhouse import ClickHouseServer
from support.postgres import PostgresServer
from telewatch.core.errors import ConfigError
from telewatch.sources.base import FetchedSeries, SourceState, SqlSource, parse_aggregation
from telewatch.sources.clickhouse import ClickHouseSource
from telewatch.sources.postgres import PostgresSource
from telewatch.sources.sql_guard import check_read_only

T0 = pd.Timestamp("2026-03-02 00:00", tz="UTC")
HOURS = 3
STEPS = [pd.Timedelta("1min"), pd.Timedelta("5min"), pd.Timedelta("1h")]
AGGS = ["avg", "sum", "min", "max", "count", "first", "last", "median", "p90", "quantile(0.25)"]


def _raw_rows() -> pd.DataFrame:
    """Irregular raw rows (about one every 7 s, unique seconds) of 2 metrics × 2 hosts over 3 hours;
    ``rps{host=b}`` is silent for 20 minutes, so some buckets are empty."""
    rng = np.random.default_rng(7)
    parts = []
    for metric in ("rps", "latency"):
        for host in ("a", "b"):
            seconds = np.sort(rng.choice(HOURS * 3600, size=1500, replace=False))
            if (metric, host) == ("rps", "b"):
                seconds = seconds[(seconds < 3600) | (seconds >= 3600 + 1200)]
            values = np.round(rng.normal(100.0, 15.0, seconds.size), 3)
            parts.append(
                pd.DataFrame(
                    {"ts": int(T0.timestamp()) + seconds, "metric": metric, "host": host, "value": values}
                )
            )
    return pd.concat(parts, ignore_index=True)


RAW = _raw_rows()


def expected(agg: str, step: pd.Timedelta, start: pd.Timestamp, end: pd.Timestamp) -> dict[str, pd.Series]:
    """pandas resampling of the raw rows: buckets starting in ``[start, end)``, empty buckets dropped."""
    spec = parse_aggregation(agg)
    out: dict[str, pd.Series] = {}
    for (metric, host), part in RAW.groupby(["metric", "host"]):
        series = pd.Series(
            part["value"].to_numpy(), index=pd.to_datetime(part["ts"].to_numpy(), unit="s", utc=True)
        ).sort_index()
        buckets = series.resample(step, origin="epoch")
        counts = buckets.count()
        if spec.q is not None:
            agg_values = buckets.quantile(spec.q)
        else:
            agg_values = getattr(buckets, {"avg": "mean"}.get(spec.kind, spec.kind))()
        agg_values = agg_values[(counts > 0) & (agg_values.index >= start) & (agg_values.index < end)]
        out[f"{metric}{{host={host}}}"] = agg_values.astype("float64").rename(None)
    return {k: v for k, v in out.items() if not v.empty}


def assert_same(got: list[FetchedSeries], want: dict[str, pd.Series], what: str) -> None:
    by_key = {s.key: s.values for s in got}
    assert sorted(by_key) == sorted(want), what
    for key, series in want.items():
        assert by_key[key].index.equals(pd.DatetimeIndex(series.index).as_unit("ns")), f"{what} {key}"
        np.testing.assert_allclose(
            by_key[key].to_numpy(), series.to_numpy(), rtol=1e-9, err_msg=f"{what} {key}"
        )


@pytest.fixture(scope="module")
def ch_raw(ch_server: ClickHouseServer) -> ClickHouseServer:
    ch_server.query("CREATE DATABASE IF NOT EXISTS pushdown")
    ch_server.query("DROP TABLE IF EXISTS pushdown.raw")
    ch_server.query(
        "CREATE TABLE pushdown.raw (ts DateTime, metric String, host String, value Float64)"
        " ENGINE = MergeTree() ORDER BY (metric, host, ts)"
    )
    rows = ",".join(
        f"({ts}, '{metric}', '{host}', {value!r})"
        for ts, metric, host, value in zip(
            RAW["ts"].tolist(), RAW["metric"], RAW["host"], RAW["value"].tolist(), strict=True
        )
    )
    ch_server.query("INSERT INTO pushdown.raw VALUES " + rows)
    return ch_server


@pytest.fixture(scope="module")
def pg_raw(pg_server: PostgresServer) -> PostgresServer:
    import psycopg

    pg_server.execute(
        "DROP TABLE IF EXISTS pushdown_raw;"
        " CREATE TABLE pushdown_raw (ts timestamptz, metric text, host text, value float8)"
    )
    with (
        psycopg.connect(pg_server.dsn, autocommit=True) as con,
        con.cursor() as cur,
        cur.copy("COPY pushdown_raw (ts, metric, host, value) FROM STDIN") as copy,
    ):
        for ts, metric, host, value in zip(
            RAW["ts"].tolist(), RAW["metric"], RAW["host"], RAW["value"].tolist(), strict=True
        ):
            copy.write_row((pd.Timestamp(ts, unit="s", tz="UTC").to_pydatetime(), metric, host, value))
    return pg_server


@dataclass
class Backend:
    """One server holding the raw rows, and how to build a source over its table."""

    make: Callable[..., SqlSource]
    clickhouse: ClickHouseServer | None = None


@pytest.fixture(params=["clickhouse", "postgres"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "clickhouse":
        ch: ClickHouseServer = request.getfixturevalue("ch_raw")

        def make_ch(**kw: Any) -> SqlSource:
            kw.setdefault("table", "pushdown.raw")
            return ClickHouseSource(host=ch.host, port=ch.tcp_port, log_queries=True, **kw)

        return Backend(make_ch, clickhouse=ch)
    pg: PostgresServer = request.getfixturevalue("pg_raw")

    def make_pg(**kw: Any) -> SqlSource:
        kw.setdefault("table", "pushdown_raw")
        return PostgresSource(host=pg.host, port=pg.port, user="postgres", database="postgres", **kw)

    return Backend(make_pg)


LONG = {"metric_column": "metric", "label_columns": ["host"]}


@pytest.mark.parametrize("agg", AGGS)
def test_pushed_down_aggregation_equals_pandas_resampling(backend: Backend, agg: str) -> None:
    end = T0 + pd.Timedelta(hours=HOURS)
    for step in STEPS:
        src = backend.make(resample=step, agg=agg, **LONG)
        got = src.fetch(start=T0, end=end)
        want = expected(agg, step, T0, end)
        assert_same(got, want, f"{src.kind} agg={agg} step={step}")
        # only buckets travelled: one row per (series, bucket)
        assert src.last_rows == sum(len(v) for v in want.values())


def test_user_query_is_wrapped_with_the_aggregation_outside(backend: Backend) -> None:
    probe = backend.make(**LONG)
    table = probe.table
    query = f"SELECT ts, metric, host, value FROM {table} WHERE ts >= %(start)s AND ts < %(end)s"
    src = backend.make(table=None, query=query, resample=pd.Timedelta("5min"), agg="p95", **LONG)
    sql, params = src.build_sql()
    assert sql.index("FROM (SELECT") < sql.index("GROUP BY")  # the user's rows are the inner query
    assert check_read_only(sql, dialect=src.dialect) == sql  # still one read-only statement
    assert params == {"agg_q": 0.95}  # the level is bound, as the range and filters are
    start, end = T0 + pd.Timedelta(minutes=30), T0 + pd.Timedelta(minutes=150)
    assert_same(src.fetch(start=start, end=end), expected("p95", pd.Timedelta("5min"), start, end), "wrapped")


def test_only_buckets_travel_not_raw_rows(backend: Backend) -> None:
    start, end = T0, T0 + pd.Timedelta(hours=HOURS)
    raw_in_range = int(((RAW["ts"] >= start.timestamp()) & (RAW["ts"] < end.timestamp())).sum())
    raw = backend.make(**LONG)
    assert sum(len(s.values) for s in raw.fetch(start=start, end=end)) == raw_in_range
    assert raw.last_rows == raw_in_range
    pushed = backend.make(resample=pd.Timedelta("1min"), agg="avg", **LONG)
    got = pushed.fetch(start=start, end=end)
    buckets = sum(len(s.values) for s in got)
    assert pushed.last_rows == buckets
    assert buckets == sum(len(v) for v in expected("avg", pd.Timedelta("1min"), start, end).values())
    assert buckets * 5 < raw_in_range  # about 8.6 raw rows per bucket stayed in the server
    if backend.clickhouse is not None:
        # the server's own account: rows it read vs rows it sent back
        assert isinstance(raw, ClickHouseSource)
        assert isinstance(pushed, ClickHouseSource)
        server = backend.clickhouse
        server.query("SYSTEM FLUSH LOGS")
        for source, sent in ((pushed, buckets), (raw, raw_in_range)):
            line = server.query(
                "SELECT result_rows, read_rows FROM system.query_log"
                f" WHERE query_id = '{source.last_query_id}' AND type = 2"
            ).split()
            assert int(line[0]) == sent
            assert int(line[1]) >= raw_in_range


def test_unaligned_range_gives_whole_buckets(backend: Backend) -> None:
    src = backend.make(resample=pd.Timedelta("5min"), agg="sum", **LONG)
    got = src.fetch(start=T0 + pd.Timedelta(seconds=90), end=T0 + pd.Timedelta(minutes=12))
    # buckets starting in [00:01:30, 00:12): 00:05 and 00:10, each summed over its whole 5 minutes
    assert_same(
        got,
        expected("sum", pd.Timedelta("5min"), T0 + pd.Timedelta(minutes=5), T0 + pd.Timedelta(minutes=15)),
        "unaligned",
    )
    assert src.fetch(start=T0 + pd.Timedelta(seconds=90), end=T0 + pd.Timedelta(minutes=5)) == []


def test_incremental_fetch_reads_only_complete_buckets_since_the_watermark(backend: Backend) -> None:
    step = pd.Timedelta("5min")
    src = backend.make(resample=step, agg="last", **LONG)
    first, state = src.fetch_incremental(
        state=SourceState(), end=T0 + pd.Timedelta(minutes=62), lookback=pd.Timedelta(minutes=58)
    )
    # end 01:02 floors to 01:00 (the 01:00 bucket is still filling); start 01:00 - 58 min = 00:02
    # ceils to 00:05 (the 00:00 bucket would be partial)
    assert_same(
        first, expected("last", step, T0 + pd.Timedelta(minutes=5), T0 + pd.Timedelta(minutes=60)), "run 1"
    )
    again, state = src.fetch_incremental(state=state, end=T0 + pd.Timedelta(minutes=64))
    assert again == []
    assert src.last_rows == 0
    more, state = src.fetch_incremental(state=state, end=T0 + pd.Timedelta(minutes=90))
    assert_same(
        more, expected("last", step, T0 + pd.Timedelta(minutes=60), T0 + pd.Timedelta(minutes=90)), "run 2"
    )
    assert min(s.values.index.min() for s in more) == T0 + pd.Timedelta(minutes=60)


def test_bad_aggregation_or_step_is_a_clear_error(backend: Backend) -> None:
    with pytest.raises(ConfigError, match=r"agg must be one of .*'median2'"):
        backend.make(resample=pd.Timedelta("1min"), agg="median2", **LONG)
    with pytest.raises(ConfigError, match="quantile level must be between 0 and 1"):
        backend.make(resample=pd.Timedelta("1min"), agg="quantile(1.5)", **LONG)
    with pytest.raises(ConfigError, match="whole number of seconds"):
        backend.make(resample=pd.Timedelta("1500ms"), **LONG)


def test_monitor_config_accepts_the_new_aggregations() -> None:
    from pydantic import ValidationError as PydanticValidationError

    from telewatch.monitors.config import ClickHouseSourceSpec, PostgresSourceSpec

    pg = PostgresSourceSpec.model_validate(
        {"type": "postgres", "table": "t", "metric_column": "m", "resample": "5m", "agg": "p99.9"}
    ).build()
    assert isinstance(pg, PostgresSource)
    assert pg.aggregation == parse_aggregation("quantile(0.999)")
    assert "percentile_cont(%(agg_q)s::float8)" in pg.build_sql()[0]
    ch = ClickHouseSourceSpec.model_validate(
        {"type": "clickhouse", "table": "t", "value_columns": ["v"], "resample": "1h", "agg": "last"}
    ).build()
    assert isinstance(ch, ClickHouseSource)
    assert "argMax(`v`, `ts`)" in ch.build_sql()[0]
    with pytest.raises(PydanticValidationError, match="agg 'p200': a percentile must be between 0 and 100"):
        ClickHouseSourceSpec.model_validate(
            {"type": "clickhouse", "table": "t", "value_columns": ["v"], "resample": "1m", "agg": "p200"}
        )


def test_postgres_skips_nulls_as_pandas_skips_nan(pg_raw: PostgresServer) -> None:
    import psycopg

    stamps = [T0 + pd.Timedelta(seconds=s) for s in (0, 10, 20, 70, 80, 130)]
    values = [None, 2.0, None, 4.0, 5.0, None]  # a bucket ending and one wholly NULL
    with psycopg.connect(pg_raw.dsn, autocommit=True) as con:
        con.execute(
            "DROP TABLE IF EXISTS pushdown_nulls; CREATE TABLE pushdown_nulls (ts timestamptz, value int)"
        )
        with con.cursor() as cur:
            cur.executemany(
                "INSERT INTO pushdown_nulls VALUES (%s, %s)",
                [(t.to_pydatetime(), v) for t, v in zip(stamps, values, strict=True)],
            )
    raw = pd.Series(
        [np.nan if v is None else v for v in values], index=pd.DatetimeIndex(stamps), dtype="float64"
    )
    for agg in ("first", "last", "count", "median", "avg"):
        src = PostgresSource(
            host=pg_raw.host,
            port=pg_raw.port,
            user="postgres",
            database="postgres",
            table="pushdown_nulls",
            value_columns=["value"],
            resample=pd.Timedelta("1min"),
            agg=agg,
        )
        (got,) = src.fetch(start=T0, end=T0 + pd.Timedelta(minutes=3))
        spec = parse_aggregation(agg)
        buckets = raw.resample("1min")
        want = (
            buckets.quantile(spec.q)
            if spec.q is not None
            else getattr(buckets, {"avg": "mean"}.get(agg, agg))()
        )
        # a bucket holding only NULLs is a NaN point (count 0), as pandas gives for a bucket of NaN
        want = want.astype("float64")
        pd.testing.assert_series_equal(
            got.values, want.rename(None), check_freq=False, check_index_type=False
        )
