"""Reads across many metrics at once, for the overview and the window scan (explain, incidents).

Owns no table and writes nothing: it reads ``metrics``, ``points``, ``scores`` and ``anomalies``
(whose writes are :mod:`telewatch.store.repo`'s and the anomalies repository's) in aggregate — a
metrics × time grid, counts and steps per metric — in as few queries as the callers need. All SQL
uses bind parameters; a table name is only ever one of a fixed set.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pandas as pd

from telewatch.core.errors import ValidationError

__all__ = [
    "MetricIdentity",
    "anomaly_counts",
    "grid_cells",
    "median_point_spacing",
    "metric_identities_named",
    "metric_identity",
    "points_in_anomalies",
    "recent_step_seconds",
    "scored_metric_ids",
    "select_metric_columns",
    "spark_bucket_sums",
]

MetricIdentity = tuple[int, str, dict[str, str], str | None]
"""A metric's ``(id, name, labels, group)``."""

_GRID_TABLES = {"points": "value", "scores": "score"}  # table -> its value column


def _utc(value: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


# -- the window scan ----------------------------------------------------------------------------
def select_metric_columns(
    con: duckdb.DuckDBPyConnection,
    *,
    group: str | None,
    selector: Mapping[str, str] | None,
    metric_ids: Sequence[int] | None,
) -> tuple[list[int], list[str], list[dict[str, str]], list[str | None]]:
    """Ids, names, labels and groups of the metrics in ``group``, matching ``selector`` and among
    ``metric_ids`` (None: no such filter), by id, as columns: at 10,000 metrics no tuple per metric
    (each would count towards the next garbage collection)."""
    where: list[str] = []
    params: list[object] = []
    if group is not None:
        where.append("grp = ?")
        params.append(group)
    for key, value in (selector or {}).items():
        where.append("json_extract_string(labels, ?) = ?")
        params.extend(["$." + json.dumps(key), value])
    if metric_ids is not None:
        where.append("list_contains(?, id)")
        params.append([int(i) for i in metric_ids])
    sql = "SELECT id, name, labels, grp FROM metrics"
    if where:
        sql += " WHERE " + " AND ".join(where)
    cols = con.execute(sql + " ORDER BY id", params).fetchnumpy()
    # one JSON document for all the label sets: at 10,000 metrics one parse instead of 10,000
    groups = [None if g is None else str(g) for g in cols["grp"].tolist()]  # NULL (masked): None
    return (
        np.asarray(cols["id"], dtype=np.int64).tolist(),
        [str(n) for n in np.asarray(cols["name"]).tolist()],
        _parse_labels([str(t) for t in np.asarray(cols["labels"]).tolist()]),
        groups,
    )


def _parse_labels(texts: Sequence[str]) -> list[dict[str, str]]:
    """The label dicts of the ``labels`` JSON texts, parsed as one JSON array (each its own dict).

    >>> _parse_labels(['{}', '{"host": "a"}'])
    [{}, {'host': 'a'}]
    """
    if not texts:
        return []
    try:
        parsed: list[dict[str, str]] = json.loads("[" + ",".join(texts) + "]")
    except json.JSONDecodeError:
        parsed = []
    if len(parsed) != len(texts):  # a text that is not one JSON value: parse them one by one
        parsed = [json.loads(t) for t in texts]
    return parsed


def metric_identity(con: duckdb.DuckDBPyConnection, metric_id: int) -> MetricIdentity | None:
    """Metric ``metric_id``'s identity from the ``metrics`` table alone; None when there is none."""
    row = con.execute("SELECT id, name, labels, grp FROM metrics WHERE id = ?", [int(metric_id)]).fetchone()
    return None if row is None else (int(row[0]), str(row[1]), json.loads(str(row[2])), row[3])


def metric_identities_named(con: duckdb.DuckDBPyConnection, name: str) -> list[MetricIdentity]:
    """The identities of the metrics (slices) named ``name``, in the catalogue's order."""
    rows = con.execute(
        "SELECT id, name, labels, grp FROM metrics WHERE name = ? ORDER BY grp NULLS LAST, name, labels",
        [str(name)],
    ).fetchall()
    return [(int(r[0]), str(r[1]), json.loads(str(r[2])), r[3]) for r in rows]


def median_point_spacing(
    con: duckdb.DuckDBPyConnection, metric_ids: Sequence[int], start: pd.Timestamp, end: pd.Timestamp
) -> float | None:
    """The median spacing in seconds of consecutive points of each of ``metric_ids`` in
    ``[start, end)`` (UTC), over all of them; None when no two points are that close."""
    row = con.execute(
        "SELECT median(d) FROM (SELECT epoch(ts) - epoch(lag(ts) OVER (PARTITION BY metric_id ORDER BY ts))"
        " AS d FROM points WHERE metric_id IN (SELECT unnest(?::INTEGER[])) AND ts >= ? AND ts < ?)"
        " WHERE d > 0",
        [
            [int(i) for i in metric_ids],
            start.tz_localize(None).to_pydatetime(),
            end.tz_localize(None).to_pydatetime(),
        ],
    ).fetchone()
    return float(row[0]) if row and row[0] is not None else None


def grid_cells(
    con: duckdb.DuckDBPyConnection,
    metric_ids: npt.NDArray[np.int64],
    *,
    table: str,
    origin: pd.Timestamp,
    step: pd.Timedelta,
    spans: Sequence[tuple[int, int]],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Every stored value of ``metric_ids`` in ``table`` (``points`` or ``scores``) within the grid
    ``spans`` (steps ``[a, b)``; step ``k`` is the bucket ``[origin + k·step, origin + (k+1)·step)``),
    as columns ``(row, k, value)``: ``row`` the metric's position in ``metric_ids``, ``k`` its grid
    step. Missing values (NULL/NaN) are left out.

    DuckDB reads the spans' time ranges only (its zone maps skip the rest of a time-ordered table)
    and returns each value with its cell; the caller scatters them.
    """
    column = _GRID_TABLES.get(table)
    if column is None:
        raise ValidationError(f"unknown table {table!r}")
    n_rows = len(metric_ids)
    step_us = int(step / pd.Timedelta(microseconds=1))
    origin_naive = origin.tz_convert("UTC").tz_localize(None) if origin.tzinfo else origin
    origin_us = int(origin_naive.as_unit("ns").value) // 1000  # .value is nanoseconds in any unit
    where_ts = " OR ".join(["(ts >= ? AND ts < ?)"] * len(spans))
    ts_params = [(origin_naive + k * step).to_pydatetime() for a, b in spans for k in (a, b)]
    # Row of a metric: ``metric_id - first id`` when the ids are consecutive (a whole store, or a
    # group created at once: no join at all), else a hash join with a small (id, row) relation.
    first = int(metric_ids[0])
    if np.array_equal(metric_ids, np.arange(first, first + n_rows)):
        inner = (
            f"SELECT metric_id - ? AS r, (epoch_us(ts) - ?) // ? AS k, {column} AS v FROM {table}"
            f" WHERE metric_id >= ? AND metric_id < ? AND ({where_ts})"
        )
        inner_params: list[object] = [first, origin_us, step_us, first, first + n_rows]
    else:
        inner = (
            f"SELECT m.r, (epoch_us(t.ts) - ?) // ? AS k, t.{column} AS v FROM {table} t"
            " JOIN (SELECT unnest(?::BIGINT[]) AS id, unnest(?::BIGINT[]) AS r) m ON m.id = t.metric_id"
            f" WHERE ({where_ts.replace('ts ', 't.ts ')})"
        )
        inner_params = [origin_us, step_us, np.asarray(metric_ids).tolist(), list(range(n_rows))]
    sql = f"{inner} AND {column} IS NOT NULL AND NOT isnan({column})"
    frame = con.execute(sql, [*inner_params, *ts_params]).fetchnumpy()
    return (
        np.asarray(frame["r"], dtype=np.int64),
        np.asarray(frame["k"], dtype=np.int64),
        np.asarray(frame["v"], dtype=np.float64),
    )


# -- the overview ---------------------------------------------------------------------------------
def _marks(ids: Sequence[int]) -> str:
    return ",".join("?" for _ in ids)


def anomaly_counts(
    con: duckdb.DuckDBPyConnection, metric_ids: Sequence[int]
) -> dict[int, tuple[int, pd.Timestamp | None]]:
    """Per metric with stored anomalies (all detectors): how many, and the end of the last (UTC)."""
    rows = con.execute(
        "SELECT metric_id, count(*), max(end_ts) FROM anomalies"
        f" WHERE metric_id IN ({_marks(metric_ids)}) GROUP BY metric_id",
        list(metric_ids),
    ).fetchall()
    return {int(r[0]): (int(r[1]), None if r[2] is None else _utc(r[2])) for r in rows}


def points_in_anomalies(con: duckdb.DuckDBPyConnection, metric_ids: Sequence[int]) -> dict[int, int]:
    """Per metric: how many of its points lie inside one of its anomaly windows."""
    rows = con.execute(
        "SELECT p.metric_id, count(DISTINCT p.ts) FROM points p JOIN anomalies a"
        " ON a.metric_id = p.metric_id AND p.ts BETWEEN a.start_ts AND a.end_ts"
        f" WHERE p.metric_id IN ({_marks(metric_ids)}) GROUP BY p.metric_id",
        list(metric_ids),
    ).fetchall()
    return {int(r[0]): int(r[1]) for r in rows}


def scored_metric_ids(con: duckdb.DuckDBPyConnection, metric_ids: Sequence[int]) -> set[int]:
    """Those of ``metric_ids`` with stored scores."""
    rows = con.execute(
        f"SELECT DISTINCT metric_id FROM scores WHERE metric_id IN ({_marks(metric_ids)})", list(metric_ids)
    ).fetchall()
    return {int(r[0]) for r in rows}


def spark_bucket_sums(
    con: duckdb.DuckDBPyConnection, metric_ids: Sequence[int], *, hours: int, width_s: int
) -> list[tuple[int, int, float | None, int]]:
    """``(metric_id, bucket, sum, count)`` of each metric's values in the last ``hours`` of its own
    data, by buckets of ``width_s`` seconds numbered so that the window ``(last - hours, last]``
    maps onto ``0, 1, ...`` (ceil: the bucket holding the last point is the last)."""
    rows = con.execute(
        "SELECT p.metric_id, CAST(ceil((epoch(p.ts) - epoch(l.last_ts - ?::INTERVAL)) / ?) AS BIGINT) - 1 AS b,"
        " sum(p.value), count(p.value) FROM points p JOIN (SELECT metric_id, max(ts) AS last_ts FROM points"
        f" WHERE metric_id IN ({_marks(metric_ids)}) GROUP BY metric_id) l ON l.metric_id = p.metric_id"
        " WHERE p.ts > l.last_ts - ?::INTERVAL GROUP BY ALL",
        [f"{hours} hours", width_s, *metric_ids, f"{hours} hours"],
    ).fetchall()
    return [(int(m), int(b), None if t is None else float(t), int(n)) for m, b, t, n in rows]


def recent_step_seconds(
    con: duckdb.DuckDBPyConnection, metric_ids: Sequence[int], *, hours: int
) -> dict[int, float]:
    """Each metric's step in seconds: the median spacing of its points in the last ``hours`` of its data."""
    rows = con.execute(
        "SELECT metric_id, median(d) FROM (SELECT p.metric_id, epoch(p.ts) - epoch(lag(p.ts) OVER"
        " (PARTITION BY p.metric_id ORDER BY p.ts)) AS d FROM points p JOIN (SELECT metric_id, max(ts) AS last_ts"
        f" FROM points WHERE metric_id IN ({_marks(metric_ids)}) GROUP BY metric_id) l ON l.metric_id = p.metric_id"
        " WHERE p.ts > l.last_ts - ?::INTERVAL) WHERE d > 0 GROUP BY metric_id",
        [*metric_ids, f"{hours} hours"],
    ).fetchall()
    return {int(r[0]): float(r[1]) for r in rows if r[1] is not None}
