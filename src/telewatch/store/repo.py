"""The metrics-and-points repository: typed reads and writes of ``metrics``, ``points``, ``ingests``
and ``label_windows`` (plus the per-metric reads and deletes of ``scores`` and ``anomalies`` that go
with a metric's data). All values are bound parameters."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import numpy as np
import pandas as pd

from telewatch.core.errors import NotFoundError, ValidationError
from telewatch.store.db import hold_series_writes


def canonical_labels(labels: Mapping[str, str] | None) -> str:
    """Labels as the canonical JSON text the store keys on (sorted keys, string values).

    >>> canonical_labels({"host": "a", "dc": "x"})
    '{"dc": "x", "host": "a"}'
    """
    return json.dumps({str(k): str(v) for k, v in sorted((labels or {}).items())}, ensure_ascii=False)


def parse_selector(text: str | None) -> dict[str, str]:
    """Parse a label selector ``key=value,key2=value2`` (empty -> {}).

    >>> parse_selector("host=app-1, region=eu")
    {'host': 'app-1', 'region': 'eu'}
    """
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValidationError(f"label selector part {part!r} is not key=value")
        out[key.strip()] = value.strip()
    return out


@dataclass(frozen=True)
class MetricInfo:
    id: int
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    unit: str | None = None
    owner: str | None = None
    group: str | None = None
    description: str | None = None
    points: int = 0
    missing: int = 0
    first_ts: pd.Timestamp | None = None
    last_ts: pd.Timestamp | None = None

    @property
    def display_name(self) -> str:
        if not self.labels:
            return self.name
        return self.name + "{" + ",".join(f"{k}={v}" for k, v in self.labels.items()) + "}"


def _utc(ts: object) -> pd.Timestamp | None:
    if ts is None or (isinstance(ts, float) and np.isnan(ts)):
        return None
    stamp = pd.Timestamp(ts)  # type: ignore[arg-type]
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _naive_utc(ts: pd.Timestamp | str | None) -> pd.Timestamp | None:
    if ts is None:
        return None
    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp


def upsert_metric(
    con: duckdb.DuckDBPyConnection,
    *,
    name: str,
    labels: Mapping[str, str] | None = None,
    unit: str | None = None,
    owner: str | None = None,
    group: str | None = None,
    description: str | None = None,
) -> int:
    """The id of metric (name, labels), created if new; given metadata overwrites, None keeps."""
    if not name or not name.strip():
        raise ValidationError("a metric needs a non-empty name")
    key = canonical_labels(labels)
    row = con.execute("SELECT id FROM metrics WHERE name = ? AND labels = ?", [name, key]).fetchone()
    if row is None:
        row = con.execute(
            "INSERT INTO metrics (name, labels, unit, owner, grp, description) VALUES (?, ?, ?, ?, ?, ?)"
            " RETURNING id",
            [name, key, unit, owner, group, description],
        ).fetchone()
        assert row is not None  # RETURNING always yields the row
        return int(row[0])
    metric_id = int(row[0])
    con.execute(
        "UPDATE metrics SET unit = coalesce(?, unit), owner = coalesce(?, owner), grp = coalesce(?, grp),"
        " description = coalesce(?, description) WHERE id = ?",
        [unit, owner, group, description, metric_id],
    )
    return metric_id


def record_ingest(
    con: duckdb.DuckDBPyConnection, *, source: str, sha256: str | None, metrics: int, points: int
) -> None:
    """Remember one upload: where it came from, its digest and how many metrics and points it stored."""
    con.execute(
        "INSERT INTO ingests (source, sha256, metrics, points) VALUES (?, ?, ?, ?)",
        [source, sha256, metrics, points],
    )


def write_points(con: duckdb.DuckDBPyConnection, metric_id: int, series: pd.Series) -> int:
    """Insert or overwrite points of one metric (NaN is stored as a missing value). Idempotent."""
    if series.empty:
        return 0
    index = pd.DatetimeIndex(series.index)
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    frame = pd.DataFrame(
        {
            "metric_id": np.full(len(series), metric_id, dtype="int32"),
            "ts": index.astype("datetime64[us]"),
            "value": series.to_numpy(dtype="float64"),
        }
    )
    if not index.is_unique:
        frame = frame.drop_duplicates("ts", keep="last")
    replace_points(con, frame)
    return len(frame)


#: Told of every write or delete of ``points`` in this process (the metrics, or None: any; the time
#: range, bounds included, None: unbounded), so that a cache of stored points drops what changed
#: (``store.monitors.quality_points``).
PointsListener = Callable[[np.ndarray | None, datetime | None, datetime | None], None]
_POINTS_LISTENERS: list[PointsListener] = []


def on_points_written(listener: PointsListener) -> None:
    """Call ``listener(metric_ids, lo, hi)`` after every write or delete of ``points``."""
    _POINTS_LISTENERS.append(listener)


def points_written(metric_ids: np.ndarray | None, lo: datetime | None, hi: datetime | None) -> None:
    """Tell the listeners (:func:`on_points_written`) that points of ``metric_ids`` (None: any
    metric) with ``lo <= ts <= hi`` (None: unbounded; naive UTC) were written or deleted."""
    for listener in _POINTS_LISTENERS:
        listener(metric_ids, lo, hi)


def replace_points(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> None:
    """Store rows ``metric_id, ts, value`` (``ts`` naive UTC, unique per metric; NaN = missing),
    overwriting the points already stored at the same ``(metric_id, ts)``.

    The ``points`` table has no index (migration 0010): the stored rows in the frame's time range
    that the frame replaces are deleted first — a scan the zone maps prune to the row groups of that
    range — then the frame is appended. Call inside a transaction.
    """
    _replace(con, frame, table="points", keys=("metric_id", "ts"), value="value")


def replace_scores(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> None:
    """As :func:`replace_points` for rows ``metric_id, detector, ts, score`` of the ``scores`` table."""
    _replace(con, frame, table="scores", keys=("metric_id", "detector", "ts"), value="score")


def _replace(
    con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, *, table: str, keys: tuple[str, ...], value: str
) -> None:
    if frame.empty:
        return
    hold_series_writes(con)
    name = f"_tw_replace_{table}"
    stamps = pd.DatetimeIndex(frame["ts"])
    bounds = [stamps.min().to_pydatetime(), stamps.max().to_pydatetime()]
    on = " AND ".join(f"t.{k} = n.{k}" for k in keys)
    if table == "points":
        points_written(frame["metric_id"].to_numpy(), bounds[0], bounds[1])
    con.register(name, frame)
    try:
        con.execute(f"DELETE FROM {table} t USING {name} n WHERE {on} AND t.ts >= ? AND t.ts <= ?", bounds)
        con.execute(
            f"INSERT INTO {table} SELECT {', '.join(keys)}, CASE WHEN isnan({value}) THEN NULL ELSE {value} END"
            f" FROM {name}"
        )
    finally:
        con.unregister(name)


_METRIC_COLUMNS = (
    "m.id, m.name, m.labels, m.unit, m.owner, m.grp, m.description,"
    " count(p.value) AS points, count(p.ts) - count(p.value) AS missing, min(p.ts), max(p.ts)"
)


def _metric_from_row(row: Sequence[object]) -> MetricInfo:
    return MetricInfo(
        id=int(row[0]),  # type: ignore[call-overload]
        name=str(row[1]),
        labels=json.loads(str(row[2])),
        unit=row[3],  # type: ignore[arg-type]
        owner=row[4],  # type: ignore[arg-type]
        group=row[5],  # type: ignore[arg-type]
        description=row[6],  # type: ignore[arg-type]
        points=int(row[7] or 0),  # type: ignore[call-overload]
        missing=int(row[8] or 0),  # type: ignore[call-overload]
        first_ts=_utc(row[9]),
        last_ts=_utc(row[10]),
    )


def list_metrics(
    con: duckdb.DuckDBPyConnection,
    *,
    group: str | None = None,
    selector: Mapping[str, str] | None = None,
    name: str | None = None,
) -> list[MetricInfo]:
    """Metrics with their point counts and time range, filtered by group, labels and name."""
    where, params = [], []
    if group is not None:
        where.append("m.grp = ?")
        params.append(group)
    if name is not None:
        where.append("m.name = ?")
        params.append(name)
    for key, value in (selector or {}).items():
        where.append("json_extract_string(m.labels, ?) = ?")
        params.extend(["$." + json.dumps(key), value])
    sql = f"SELECT {_METRIC_COLUMNS} FROM metrics m LEFT JOIN points p ON p.metric_id = m.id"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " GROUP BY ALL ORDER BY m.grp NULLS LAST, m.name, m.labels"
    return [_metric_from_row(r) for r in con.execute(sql, params).fetchall()]


def count_metrics(con: duckdb.DuckDBPyConnection) -> int:
    """How many metrics the store holds."""
    row = con.execute("SELECT count(*) FROM metrics").fetchone()
    return int(row[0]) if row else 0


def existing_metric_ids(con: duckdb.DuckDBPyConnection, ids: Sequence[int]) -> set[int]:
    """Those of ``ids`` that name a stored metric."""
    rows = con.execute("SELECT id FROM metrics WHERE list_contains(?, id)", [sorted(set(ids))]).fetchall()
    return {int(r[0]) for r in rows}


def get_metric(
    con: duckdb.DuckDBPyConnection, ref: str | int, labels: Mapping[str, str] | None = None
) -> MetricInfo:
    """Find one metric by id, or by name (plus labels when the name has several slices)."""
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        # aggregate the metric's points first, then attach its row: grouping the joined rows by every
        # metric column costs ~6x more per call (the explorer's data call makes this on every request)
        rows = con.execute(
            "SELECT m.id, m.name, m.labels, m.unit, m.owner, m.grp, m.description, s.points, s.missing,"
            " s.first_ts, s.last_ts FROM metrics m, (SELECT count(value) AS points,"
            " count(ts) - count(value) AS missing, min(ts) AS first_ts, max(ts) AS last_ts"
            " FROM points WHERE metric_id = ?) s WHERE m.id = ?",
            [int(ref), int(ref)],
        ).fetchall()
        if rows:
            return _metric_from_row(rows[0])
        if isinstance(ref, int):
            raise NotFoundError(f"no metric with id {ref}")
    candidates = list_metrics(con, name=str(ref), selector=labels)
    if not candidates:
        raise NotFoundError(f"no metric named {ref!r}" + (f" with labels {dict(labels)}" if labels else ""))
    if len(candidates) > 1:
        slices = "; ".join(c.display_name for c in candidates[:5])
        raise ValidationError(
            f"metric name {ref!r} has {len(candidates)} slices ({slices}); name one by its labels or id"
        )
    return candidates[0]


def read_series(
    con: duckdb.DuckDBPyConnection,
    metric_id: int,
    *,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    step: pd.Timedelta | None = None,
    agg: str = "avg",
) -> pd.Series:
    """Values of one metric in [start, end), optionally averaged (``agg``) into buckets of ``step``.

    Resampling runs in the database; empty buckets are absent (gaps stay gaps).
    """
    if agg not in {"avg", "min", "max", "sum", "count", "last", "first"}:
        raise ValidationError(f"unknown aggregation {agg!r}")
    params: list[object] = [metric_id]
    where = "metric_id = ?"
    s, e = _naive_utc(start), _naive_utc(end)
    if s is not None:
        where += " AND ts >= ?"
        params.append(s.to_pydatetime())
    if e is not None:
        where += " AND ts < ?"
        params.append(e.to_pydatetime())
    if step is None:
        sql = f"SELECT ts, value FROM points WHERE {where} ORDER BY ts"
    else:
        seconds = int(pd.Timedelta(step).total_seconds())
        if seconds <= 0:
            raise ValidationError("step must be at least one second")
        fn = {"last": "arg_max(value, ts)", "first": "arg_min(value, ts)"}.get(agg, f"{agg}(value)")
        sql = (
            f"SELECT time_bucket(INTERVAL '{seconds} seconds', ts) AS bucket, {fn} FROM points"
            f" WHERE {where} GROUP BY bucket ORDER BY bucket"
        )
    frame = con.execute(sql, params).df()
    index = (
        pd.DatetimeIndex(frame.iloc[:, 0]).tz_localize("UTC")
        if len(frame)
        else pd.DatetimeIndex([], tz="UTC")
    )
    return pd.Series(frame.iloc[:, 1].to_numpy(dtype="float64"), index=index, name="value")


def read_scores(con: duckdb.DuckDBPyConnection, metric_id: int, detector: str) -> pd.Series:
    """The stored scores of one metric by one detector, in time order (UTC index; NaN where missing)."""
    frame = con.execute(
        "SELECT ts, score FROM scores WHERE metric_id = ? AND detector = ? ORDER BY ts", [metric_id, detector]
    ).df()
    return pd.Series(
        frame["score"].to_numpy(dtype="float64"), index=pd.DatetimeIndex(frame["ts"]).tz_localize("UTC")
    )


def anomaly_starts_in_group(
    con: duckdb.DuckDBPyConnection, *, group: str, since: pd.Timestamp
) -> list[pd.Timestamp]:
    """Start times (UTC, in order) of the stored anomalies of ``group``'s metrics since ``since``."""
    naive = _naive_utc(since)
    assert naive is not None  # since is a timestamp
    rows = con.execute(
        "SELECT a.start_ts FROM anomalies a JOIN metrics m ON m.id = a.metric_id"
        " WHERE m.grp = ? AND a.start_ts >= ? ORDER BY a.start_ts",
        [group, naive.to_pydatetime()],
    ).fetchall()
    return [pd.Timestamp(r[0]).tz_localize("UTC") for r in rows]


def write_label_windows(
    con: duckdb.DuckDBPyConnection,
    rows: Sequence[tuple[int, pd.Timestamp, pd.Timestamp, str, str, str | None]],
) -> int:
    """Store labelled windows ``(metric_id, start, end, kind, source, note)``; repeats are ignored."""
    for metric_id, start, end, kind, source, note in rows:
        con.execute(
            "INSERT INTO label_windows (metric_id, start_ts, end_ts, kind, source, note) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            [metric_id, _naive_utc(start), _naive_utc(end), kind, source, note],
        )
    return len(rows)


def read_label_windows(con: duckdb.DuckDBPyConnection, metric_id: int | None = None) -> pd.DataFrame:
    sql = "SELECT id, metric_id, start_ts, end_ts, kind, source, note FROM label_windows"
    params: list[object] = []
    if metric_id is not None:
        sql += " WHERE metric_id = ?"
        params.append(metric_id)
    frame = con.execute(sql + " ORDER BY start_ts", params).df()
    for col in ("start_ts", "end_ts"):
        frame[col] = pd.to_datetime(frame[col]).dt.tz_localize("UTC")
    return frame


# the tables holding rows of one metric alone (incidents may span several metrics: handled apart)
_METRIC_TABLES = ("points", "scores", "label_windows", "monitor_series", "monitor_models", "tick_state")


def clear_metric_data(con: duckdb.DuckDBPyConnection, metric_id: int) -> None:
    """Delete a metric's points, scores, anomalies and labelled windows, keeping the metric itself
    (a reload that replaces its data)."""
    points_written(np.array([metric_id]), None, None)
    for table in ("points", "scores", "anomalies", "label_windows"):
        con.execute(f"DELETE FROM {table} WHERE metric_id = ?", [metric_id])


def delete_metric(con: duckdb.DuckDBPyConnection, metric_id: int) -> dict[str, int]:
    """Delete a metric and everything stored for it; returns the rows deleted per kind.

    Its points, scores, anomalies, labelled windows and monitor state go; incidents lose it (and its
    anomalies) as a member, and an incident left with no member is deleted with its notes. Feedback and
    notification history stay (they are records of what people did and what was sent). Run it in
    ``store.transaction(series=True)``.
    """

    def run(sql: str, params: list[object]) -> int:
        row = con.execute(sql, params).fetchone()
        return int(row[0]) if row else 0

    hold_series_writes(con)  # it deletes points and scores: in store.transaction(series=True)
    if con.execute("SELECT 1 FROM metrics WHERE id = ?", [metric_id]).fetchone() is None:
        raise NotFoundError(f"no metric with id {metric_id}")
    incidents = [
        int(r[0])
        for r in con.execute(
            "SELECT incident_id FROM incident_metrics WHERE metric_id = $m UNION SELECT incident_id"
            " FROM incident_anomalies WHERE anomaly_id IN (SELECT id FROM anomalies WHERE metric_id = $m)"
            " UNION SELECT id FROM incidents WHERE peak_metric_id = $m",
            {"m": metric_id},
        ).fetchall()
    ]
    counts = {
        "incident_links": run(
            "DELETE FROM incident_anomalies WHERE anomaly_id IN (SELECT id FROM anomalies WHERE metric_id = ?)",
            [metric_id],
        )
        + run("DELETE FROM incident_metrics WHERE metric_id = ?", [metric_id]),
        "anomalies": run("DELETE FROM anomalies WHERE metric_id = ?", [metric_id]),
    }
    points_written(np.array([metric_id]), None, None)
    for table in _METRIC_TABLES:
        counts[table] = run(f"DELETE FROM {table} WHERE metric_id = ?", [metric_id])
    emptied: list[int] = []
    if incidents:
        con.execute("UPDATE incidents SET peak_metric_id = NULL WHERE peak_metric_id = ?", [metric_id])
        emptied = [
            int(r[0])
            for r in con.execute(
                "SELECT id FROM incidents i WHERE list_contains(?, id)"
                " AND NOT EXISTS (SELECT 1 FROM incident_metrics WHERE incident_id = i.id)"
                " AND NOT EXISTS (SELECT 1 FROM incident_anomalies WHERE incident_id = i.id)",
                [incidents],
            ).fetchall()
        ]
    if emptied:
        con.execute("DELETE FROM incident_notes WHERE list_contains(?, incident_id)", [emptied])
        con.execute("DELETE FROM incidents WHERE list_contains(?, id)", [emptied])
    counts["incidents"] = len(emptied)
    run("DELETE FROM metrics WHERE id = ?", [metric_id])
    return counts
