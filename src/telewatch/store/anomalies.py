"""Scores and anomalies: reads and writes of the ``scores`` and ``anomalies`` tables (the bulk
replacement of scores by time range is :func:`telewatch.store.repo.replace_scores`).

Every anomaly is written by :func:`record_anomalies`, whichever path found it (``telewatch detect``,
a monitor's streaming tick, its per-metric reference). All SQL uses bind parameters; timestamps go
in and come out as naive UTC (the store's), taken from aware or naive (read as UTC) values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from telewatch.store.db import hold_series_writes

#: The columns of a frame of anomaly windows (:func:`record_anomalies`), in the table's order.
ANOMALY_COLUMNS = (
    "metric_id",
    "detector",
    "start_ts",
    "end_ts",
    "peak_ts",
    "peak_score",
    "value",
    "expected",
    "lower",
    "upper",
)


def naive_utc(ts: pd.Timestamp | datetime | str) -> datetime:
    """A timestamp as the store keeps it: naive UTC (a naive input is read as UTC)."""
    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.to_pydatetime()


def _naive_index(stamps: Iterable[pd.Timestamp | datetime]) -> pd.DatetimeIndex:
    index = pd.DatetimeIndex([pd.Timestamp(s) for s in stamps])
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return index.as_unit("us")


# -- anomalies: writes --------------------------------------------------------------------------------
def anomaly_frame(
    rows: Sequence[
        tuple[
            int,
            str,
            pd.Timestamp,
            pd.Timestamp,
            pd.Timestamp,
            float,
            float | None,
            float | None,
            float | None,
            float | None,
        ]
    ],
) -> pd.DataFrame:
    """A frame for :func:`record_anomalies` from rows ``(metric_id, detector, start, end, peak,
    peak_score, value, expected, lower, upper)`` (timestamps aware or naive UTC; NaN or None = none)."""
    return pd.DataFrame(
        {
            "metric_id": np.array([r[0] for r in rows], dtype="int32"),
            "detector": [r[1] for r in rows],
            "start_ts": _naive_index(r[2] for r in rows),
            "end_ts": _naive_index(r[3] for r in rows),
            "peak_ts": _naive_index(r[4] for r in rows),
            "peak_score": np.array([r[5] for r in rows], dtype="float64"),
            "value": np.array([np.nan if r[6] is None else r[6] for r in rows], dtype="float64"),
            "expected": pd.array([r[7] for r in rows], dtype="Float64"),
            "lower": pd.array([r[8] for r in rows], dtype="Float64"),
            "upper": pd.array([r[9] for r in rows], dtype="Float64"),
        }
    )


def record_anomalies(con: duckdb.DuckDBPyConnection, windows: pd.DataFrame) -> None:
    """Store anomaly windows (a frame with :data:`ANOMALY_COLUMNS`; timestamps naive UTC, NaN = no
    value): one upsert keyed by ``(metric_id, detector, start_ts)`` — a window found again (a tick
    rerun, an anomaly that grew) overwrites its end, peak and values. A stored anomaly of the same
    series starting inside a new window (``start_ts < its start <= end_ts``) is the earlier part of
    a window that grew backwards: it is deleted. Two statements whatever the number of windows."""
    if windows.empty:
        return
    name = "_tw_anomaly_windows"
    con.register(name, windows)
    try:
        con.execute(
            f"DELETE FROM anomalies a USING {name} w WHERE a.metric_id = w.metric_id"
            " AND a.detector = w.detector AND a.start_ts > w.start_ts AND a.start_ts <= w.end_ts"
        )
        con.execute(
            "INSERT INTO anomalies (metric_id, detector, start_ts, end_ts, peak_ts, peak_score, value, expected,"
            " lower, upper) SELECT metric_id, detector, start_ts, end_ts, peak_ts, peak_score,"
            " CASE WHEN isnan(value) THEN NULL ELSE value END,"
            " CASE WHEN isnan(expected) THEN NULL ELSE expected END,"
            " CASE WHEN isnan(lower) THEN NULL ELSE lower END,"
            " CASE WHEN isnan(upper) THEN NULL ELSE upper END"
            f" FROM {name} ON CONFLICT (metric_id, detector, start_ts) DO UPDATE SET end_ts = excluded.end_ts,"
            " peak_ts = excluded.peak_ts, peak_score = excluded.peak_score, value = excluded.value,"
            " expected = excluded.expected, lower = excluded.lower, upper = excluded.upper"
        )
    finally:
        con.unregister(name)


def extend_anomaly(
    con: duckdb.DuckDBPyConnection,
    *,
    metric_id: int,
    detector: str,
    start: pd.Timestamp | datetime,
    end: pd.Timestamp | datetime,
) -> None:
    """Move the end of the anomaly of ``(metric_id, detector)`` that started at ``start`` to ``end``."""
    con.execute(
        "UPDATE anomalies SET end_ts = ? WHERE metric_id = ? AND detector = ? AND start_ts = ?",
        [naive_utc(end), metric_id, detector, naive_utc(start)],
    )


def delete_anomalies(con: duckdb.DuckDBPyConnection, *, metric_id: int, detector: str) -> None:
    """Delete every anomaly one detector found on one metric."""
    con.execute("DELETE FROM anomalies WHERE metric_id = ? AND detector = ?", [metric_id, detector])


# -- anomalies: reads ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class StoredAnomaly:
    """The stored end, peak score and values of one anomaly (None: not known)."""

    end: pd.Timestamp  # UTC
    peak_score: float
    value: float | None
    expected: float | None
    lower: float | None
    upper: float | None


def anomaly_at(
    con: duckdb.DuckDBPyConnection, *, metric_id: int, detector: str, start: pd.Timestamp | datetime
) -> StoredAnomaly | None:
    """The anomaly of ``(metric_id, detector)`` that started at ``start``, if stored."""
    row = con.execute(
        "SELECT end_ts, peak_score, value, expected, lower, upper FROM anomalies WHERE metric_id = ?"
        " AND detector = ? AND start_ts = ?",
        [metric_id, detector, naive_utc(start)],
    ).fetchone()
    if row is None:
        return None
    return StoredAnomaly(
        end=pd.Timestamp(row[0]).tz_localize("UTC"),
        peak_score=float(row[1]),
        value=row[2],
        expected=row[3],
        lower=row[4],
        upper=row[5],
    )


def anomalies_at_starts(con: duckdb.DuckDBPyConnection, keys: pd.DataFrame) -> list[tuple[Any, ...]]:
    """Rows ``(pos, end_ts, value, expected, lower, upper)`` of the stored anomalies named by ``keys``
    (a frame ``pos, metric_id, detector, start_ts``), one query for all."""
    return _joined(
        con,
        keys,
        "SELECT c.pos, a.end_ts, a.value, a.expected, a.lower, a.upper FROM _tw_anomaly_keys c"
        " JOIN anomalies a ON a.metric_id = c.metric_id AND a.detector = c.detector"
        " AND a.start_ts = c.start_ts",
    )


@dataclass(frozen=True)
class OpenAnomaly:
    """A series' newest stored anomaly before a tick's new points (naive UTC timestamps)."""

    start: datetime
    end: datetime
    peak: datetime
    peak_score: float
    value: float | None
    expected: float | None
    lower: float | None
    upper: float | None


def last_anomalies_before(con: duckdb.DuckDBPyConnection, candidates: pd.DataFrame) -> dict[int, OpenAnomaly]:
    """For each candidate (a frame ``pos, metric_id, detector, first_ts``), its series' newest anomaly
    ending before ``first_ts``, by ``pos`` (absent: none); one query."""
    rows = _joined(
        con,
        candidates,
        "SELECT pos, start_ts, end_ts, peak_ts, peak_score, value, expected, lower, upper FROM ("
        " SELECT c.pos, a.*, row_number() OVER (PARTITION BY c.pos ORDER BY a.end_ts DESC, a.start_ts DESC) AS k"
        " FROM _tw_anomaly_keys c JOIN anomalies a ON a.metric_id = c.metric_id AND a.detector = c.detector"
        " AND a.end_ts < c.first_ts) WHERE k = 1",
    )
    return {int(r[0]): OpenAnomaly(r[1], r[2], r[3], float(r[4]), *r[5:]) for r in rows}


def last_anomaly_before(
    con: duckdb.DuckDBPyConnection, *, metric_id: int, detector: str, before: pd.Timestamp | datetime
) -> tuple[datetime, datetime] | None:
    """``(start_ts, end_ts)`` of the newest anomaly of ``(metric_id, detector)`` ending before ``before``."""
    row = con.execute(
        "SELECT start_ts, end_ts FROM anomalies WHERE metric_id = ? AND detector = ? AND end_ts < ?"
        " ORDER BY end_ts DESC LIMIT 1",
        [metric_id, detector, naive_utc(before)],
    ).fetchone()
    return None if row is None else (row[0], row[1])


def anomalous_spans(
    con: duckdb.DuckDBPyConnection, *, metric_id: int, except_detector: str | None = None
) -> list[tuple[datetime, datetime]]:
    """``(start, end)`` of the stored anomalies of a metric (any detector but ``except_detector``) and
    of its labelled anomaly windows (kind ``anomaly``, or ``confirmed`` by feedback)."""
    rows = con.execute(
        "SELECT start_ts, end_ts FROM anomalies WHERE metric_id = ? AND detector IS DISTINCT FROM ?"
        " UNION ALL SELECT start_ts, end_ts FROM label_windows WHERE metric_id = ?"
        " AND kind IN ('anomaly', 'confirmed')",
        [metric_id, except_detector, metric_id],
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def read_anomalies(
    con: duckdb.DuckDBPyConnection, *, metric_id: int | None = None, detector: str | None = None
) -> pd.DataFrame:
    """Stored anomalies with their metric's name, newest first (timestamps UTC)."""
    sql = (
        "SELECT a.id, a.metric_id, m.name AS metric, a.detector, a.start_ts, a.end_ts, a.peak_ts,"
        " a.peak_score, a.value, a.expected, a.lower, a.upper FROM anomalies a JOIN metrics m ON m.id = a.metric_id WHERE true"
    )
    params: list[object] = []
    if metric_id is not None:
        sql += " AND a.metric_id = ?"
        params.append(metric_id)
    if detector is not None:
        sql += " AND a.detector = ?"
        params.append(detector)
    frame = con.execute(sql + " ORDER BY a.start_ts DESC", params).df()
    for col in ("start_ts", "end_ts", "peak_ts"):
        frame[col] = pd.to_datetime(frame[col]).dt.tz_localize("UTC")
    return frame


def anomaly_starts(con: duckdb.DuckDBPyConnection) -> list[pd.Timestamp]:
    """The start (UTC) of every stored anomaly."""
    return [
        pd.Timestamp(r[0]).tz_localize("UTC")
        for r in con.execute("SELECT start_ts FROM anomalies").fetchall()
    ]


# -- scores -------------------------------------------------------------------------------------------
def delete_scores(con: duckdb.DuckDBPyConnection, *, metric_id: int, detector: str) -> None:
    """Delete every score one detector gave one metric."""
    con.execute("DELETE FROM scores WHERE metric_id = ? AND detector = ?", [metric_id, detector])


def insert_scores(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> None:
    """Append rows ``metric_id, detector, ts, score`` (``ts`` naive UTC; NaN = no score) in one
    statement; the rows must be new (see :func:`telewatch.store.repo.replace_scores` otherwise).
    Call inside ``store.transaction(series=True)``."""
    hold_series_writes(con)
    name = "_tw_scores"
    con.register(name, frame)
    try:
        con.execute(
            "INSERT INTO scores SELECT metric_id, detector, ts,"
            f" CASE WHEN isnan(score) THEN NULL ELSE score END FROM {name}"
        )
    finally:
        con.unregister(name)


def scores_before(
    con: duckdb.DuckDBPyConnection,
    *,
    metric_id: int,
    detector: str,
    before: pd.Timestamp | datetime,
    limit: int,
) -> list[tuple[datetime, float | None]]:
    """The last ``limit`` scores ``(ts, score)`` of ``(metric_id, detector)`` before ``before``, newest first."""
    return [
        (r[0], r[1])
        for r in con.execute(
            "SELECT ts, score FROM scores WHERE metric_id = ? AND detector = ? AND ts < ? ORDER BY ts DESC LIMIT ?",
            [metric_id, detector, naive_utc(before), limit],
        ).fetchall()
    ]


def scores_between(
    con: duckdb.DuckDBPyConnection,
    *,
    metric_id: int,
    detector: str,
    start: pd.Timestamp | datetime,
    before: pd.Timestamp | datetime,
) -> list[tuple[datetime, float | None]]:
    """The scores ``(ts, score)`` of ``(metric_id, detector)`` with ``start <= ts < before``, newest first."""
    return [
        (r[0], r[1])
        for r in con.execute(
            "SELECT ts, score FROM scores WHERE metric_id = ? AND detector = ? AND ts >= ? AND ts < ?"
            " ORDER BY ts DESC",
            [metric_id, detector, naive_utc(start), naive_utc(before)],
        ).fetchall()
    ]


def last_scores_before(
    con: duckdb.DuckDBPyConnection, candidates: pd.DataFrame, *, lo: pd.Timestamp | datetime
) -> list[tuple[Any, ...]]:
    """Rows ``(pos, ts, score)``: for each candidate (a frame ``pos, metric_id, detector, first_ts,
    lo, n``) its last ``n`` scores before ``first_ts`` and at or after its ``lo``; ``lo`` (the
    smallest of them) lets the store's time order prune the scan. One query."""
    return _joined(
        con,
        candidates,
        "SELECT c.pos, s.ts, s.score FROM _tw_anomaly_keys c JOIN scores s ON s.metric_id = c.metric_id"
        " AND s.detector = c.detector AND s.ts < c.first_ts AND s.ts >= c.lo WHERE s.ts >= ?"
        " QUALIFY row_number() OVER (PARTITION BY c.pos ORDER BY s.ts DESC) <= c.n",
        [naive_utc(lo)],
    )


def _joined(
    con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, sql: str, params: list[Any] | None = None
) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` that joins the registered ``frame`` as ``_tw_anomaly_keys``."""
    con.register("_tw_anomaly_keys", frame)
    try:
        return list(con.execute(sql, params or []).fetchall())
    finally:
        con.unregister("_tw_anomaly_keys")
