"""Pushdown: aggregation in ClickHouse / PostgreSQL vs fetching the raw rows and resampling in pandas.

Run: ``.venv/bin/python benchmarks/bench_pushdown.py [--series 50] [--hours 24] [--servers clickhouse postgres]``

Starts a private ClickHouse (Debian's 18.16) and PostgreSQL 15 on loopback (as the tests do), loads
``hours`` (default 24) of 1-second raw rows for ``series`` (default 50) series into each — 4.32 M rows
in long shape ``(ts, metric, value)`` — and times, per aggregation and step:

* ``pushdown``: :meth:`SqlSource.fetch` with ``resample``/``agg``: the server buckets and aggregates,
  only one row per (series, bucket) travels, and telewatch builds the series;
* ``raw + pandas``: the same source without ``resample`` fetches every raw row (driver and transfer
  only: the time to build telewatch series from them is not counted), then pandas
  ``groupby(metric).resample(step)`` aggregates them. The raw fetch is paid once per server and
  charged to every aggregation.

Columns: seconds, rows transferred (rows the server returned, counted in the cursor; ClickHouse's own
``system.query_log`` ``result_rows`` in brackets), the ratio (raw fetch + pandas) / pushdown (>1:
pushdown is faster), and the largest difference between the two results (they must agree). Seconds are
the best of ``--repeat``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.clickhouse import ClickHouseServer, make_clickhouse
from support.postgres import PostgresServer, make_postgres
from telewatch.sources.base import SqlSource, parse_aggregation
from telewatch.sources.clickhouse import ClickHouseSource
from telewatch.sources.postgres import PostgresSource

T0 = pd.Timestamp("2026-03-01 00:00", tz="UTC")
CASES = [("avg", "1min"), ("p95", "1min"), ("last", "1min"), ("max", "5min"), ("avg", "1h")]
console = Console(width=170)


@contextmanager
def clickhouse(series: int, seconds: int) -> Iterator[Callable[..., SqlSource]]:
    with tempfile.TemporaryDirectory(prefix="tw-bench-ch-") as tmp:
        server = make_clickhouse(Path(tmp))
        server.start()
        try:
            base = int(T0.timestamp())
            server.query("CREATE DATABASE IF NOT EXISTS bench")
            server.query(
                "CREATE TABLE bench.raw (ts DateTime, metric String, value Float64)"
                " ENGINE = MergeTree() ORDER BY (metric, ts)"
            )
            server.query(
                f"INSERT INTO bench.raw SELECT toDateTime({base} + number % {seconds}),"
                f" concat('m', toString(intDiv(number, {seconds}))),"
                " 100 + (cityHash64(number) % 100000) / 1000.0"
                f" FROM system.numbers LIMIT {series * seconds}"
            )
            server.query("OPTIMIZE TABLE bench.raw FINAL")

            def make(**kw: Any) -> SqlSource:
                return ClickHouseSource(
                    host=server.host,
                    port=server.tcp_port,
                    table="bench.raw",
                    metric_column="metric",
                    log_queries=True,
                    timeout=300,
                    **kw,
                )

            make.server = server  # type: ignore[attr-defined]
            yield make
        finally:
            server.stop()


@contextmanager
def postgres(series: int, seconds: int) -> Iterator[Callable[..., SqlSource]]:
    directory = Path(tempfile.mkdtemp(prefix="tw-bench-pg-"))
    server: PostgresServer = make_postgres(directory)
    server.start()
    try:
        server.execute(
            "CREATE TABLE raw (ts timestamptz, metric text, value float8);"
            f" INSERT INTO raw SELECT to_timestamp({int(T0.timestamp())} + g % {seconds}),"
            f" 'm' || (g / {seconds}), 100 + ((hashint4(g) & 2147483647) % 100000) / 1000.0"
            f" FROM generate_series(0, {series * seconds - 1}) AS g"
        )
        server.execute("VACUUM ANALYZE raw")

        def make(**kw: Any) -> SqlSource:
            return PostgresSource(
                host=server.host,
                port=server.port,
                user="postgres",
                database="postgres",
                table="raw",
                metric_column="metric",
                timeout=300,
                **kw,
            )

        yield make
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _pandas(frame: pd.DataFrame, agg: str, step: str) -> pd.Series:
    spec = parse_aggregation(agg)
    grouped = frame.groupby("metric")["value"].resample(step)
    if spec.q is not None:
        return grouped.quantile(spec.q).dropna()
    return getattr(grouped, {"avg": "mean"}.get(spec.kind, spec.kind))().dropna()


def _query_log_rows(make: Callable[..., SqlSource], source: SqlSource) -> str:
    server: ClickHouseServer | None = getattr(make, "server", None)
    if server is None or not isinstance(source, ClickHouseSource):
        return ""
    server.query("SYSTEM FLUSH LOGS")
    out = server.query(
        f"SELECT result_rows FROM system.query_log WHERE query_id = '{source.last_query_id}' AND type = 2"
    ).strip()
    return out


def bench_server(
    name: str, make: Callable[..., SqlSource], end: pd.Timestamp, repeat: int
) -> list[list[str]]:
    rows: list[list[str]] = []
    raw_src = make()
    sql, params = raw_src.build_sql()
    params.update(start=T0.to_pydatetime(), end=end.to_pydatetime())

    def fetch_raw() -> pd.DataFrame:
        columns, records = raw_src._execute(sql, params)
        frame = pd.DataFrame.from_records(records, columns=columns)
        frame.index = pd.DatetimeIndex(pd.to_datetime(frame["__ts"].astype("float64"), unit="s", utc=True))
        return frame

    t_raw, frame = _best(fetch_raw, repeat)
    n_raw = len(frame)
    log_raw = _query_log_rows(make, raw_src) if isinstance(raw_src, ClickHouseSource) else ""
    for agg, step in CASES:
        src = make(resample=pd.Timedelta(step), agg=agg)
        t_push, fetched = _best(partial(src.fetch, start=T0, end=end), repeat)
        log_push = _query_log_rows(make, src)
        t_pd, want = _best(partial(_pandas, frame, agg, step), repeat)
        got = pd.concat({s.name: s.values for s in fetched})
        diff = float(np.max(np.abs(got.to_numpy() - want.reindex(got.index).to_numpy())))
        t_ref = t_raw + t_pd
        rows.append(
            [
                name,
                f"{agg} {step}",
                f"{t_push:.3f}",
                f"{src.last_rows:,}" + (f" ({int(log_push):,})" if log_push else ""),
                f"{t_raw:.2f}",
                f"{t_pd:.2f}",
                f"{t_ref:.2f}",
                f"{n_raw:,}" + (f" ({int(log_raw):,})" if log_raw else ""),
                f"{t_ref / t_push:.1f}x",
                f"{diff:.1e}",
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--series", type=int, default=50)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--servers", nargs="+", default=["clickhouse", "postgres"], choices=["clickhouse", "postgres"]
    )
    args = parser.parse_args()
    seconds = args.hours * 3600
    end = T0 + pd.Timedelta(seconds=seconds)
    table = Table(
        title=f"pushdown vs raw + pandas: {args.series} series x {args.hours} h of 1-second rows"
        f" ({args.series * seconds:,} raw rows per server)"
    )
    for col in (
        "server",
        "agg step",
        "pushdown s",
        "rows sent",
        "raw fetch s",
        "pandas s",
        "raw + pandas s",
        "rows sent",
        "ratio",
        "max |diff|",
    ):
        table.add_column(col, justify="left" if col in ("server", "agg step") else "right")
    for name in args.servers:
        factory = clickhouse if name == "clickhouse" else postgres
        with console.status(f"{name}: starting and loading {args.series * seconds:,} rows"):
            ctx = factory(args.series, seconds)
            make = ctx.__enter__()
        try:
            with console.status(f"{name}: timing"):
                for row in bench_server(name, make, end, args.repeat):
                    table.add_row(*row)
        finally:
            ctx.__exit__(None, None, None)
    console.print(table)


if __name__ == "__main__":
    main()
