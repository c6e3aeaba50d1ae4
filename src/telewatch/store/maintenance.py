"""Maintenance of the store: retention, compaction, and the statistics of the Prometheus exposition.

Owns ``store_compaction`` (the day up to which each of ``points``/``scores`` is compacted). Retention
deletes aged rows from ``points``, ``scores``, ``anomalies``, ``incidents`` (and their
``incident_metrics``, ``incident_anomalies``, ``incident_notes``), ``alert_notifications``,
``alert_delivery_attempts``, ``alert_state``, ``silences`` and ``monitor_runs``; compaction rewrites
``points`` and ``scores``; the statistics read counts of every family (``metrics``, ``points``,
``scores``, ``anomalies``, ``incidents``, ``alert_notifications``, ``feedback``, ``monitor_state``,
``monitor_series``, ``monitor_runs``). The policies (what is old, which days, when) stay in
``services.retention`` and ``services.compaction``; this module holds their SQL. All values are bound
parameters; table names come from the fixed tuples below, never from callers' text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import duckdb
import pandas as pd

from telewatch.core.faults import crash_point
from telewatch.store import repo

Scope = Literal["monitored", "all"]

#: table -> the physical order a compacted day is written in
COMPACTION_ORDER = {"points": "metric_id, ts", "scores": "metric_id, detector, ts"}
_SERIES_TABLES = ("points", "scores")
_MONITORED = "metric_id IN (SELECT metric_id FROM monitor_series)"


# -- retention ----------------------------------------------------------------------------------
def monitor_cursors(con: duckdb.DuckDBPyConnection) -> list[str | None]:
    """The JSON cursor of every monitor (its firing set among other things), as stored."""
    return [r[0] for r in con.execute("SELECT cursor FROM monitor_state").fetchall()]


def _count_or_delete(
    con: duckdb.DuckDBPyConnection, table: str, where: str, params: list[object], *, dry_run: bool
) -> int:
    """Delete the rows of ``table`` matching ``where`` (or count them for a dry run); the rows."""
    sql = ("SELECT count(*) FROM " if dry_run else "DELETE FROM ") + f"{table} WHERE {where}"
    row = con.execute(sql, params).fetchone()
    return int(row[0]) if row else 0


def expire_series(
    con: duckdb.DuckDBPyConnection, table: str, cutoff: datetime, *, scope: Scope, dry_run: bool
) -> int:
    """Delete the rows of ``points`` or ``scores`` before ``cutoff`` (naive UTC); with ``scope``
    ``"monitored"`` only those of series a monitor collects. Returns the rows (counted for a dry run)."""
    if table not in _SERIES_TABLES:
        raise ValueError(f"retention: {table!r} is not a series table")
    where = "ts < ?" + (f" AND {_MONITORED}" if scope == "monitored" else "")
    if table == "points" and not dry_run:
        repo.points_written(None, None, cutoff)
    return _count_or_delete(con, table, where, [cutoff], dry_run=dry_run)


def expire_alert_history(
    con: duckdb.DuckDBPyConnection, cutoff: datetime, *, dry_run: bool
) -> dict[str, int]:
    """Delete the notifications in a final state created before ``cutoff`` with their delivery
    attempts, the alert states resolved before it and the silences that ended before it (unless a
    firing alert still points at one). Returns the rows per table."""
    final = "status IN ('sent', 'failed', 'digested') AND created_at < ?"
    return {
        "alert_delivery_attempts": _count_or_delete(
            con,
            "alert_delivery_attempts",
            f"notification_id IN (SELECT id FROM alert_notifications WHERE {final})",
            [cutoff],
            dry_run=dry_run,
        ),
        "alert_notifications": _count_or_delete(con, "alert_notifications", final, [cutoff], dry_run=dry_run),
        "alert_state": _count_or_delete(
            con,
            "alert_state",
            "status = 'resolved' AND coalesce(resolved_at, updated_at) < ?",
            [cutoff],
            dry_run=dry_run,
        ),
        "silences": _count_or_delete(
            con,
            "silences",
            "least(ends_at, coalesce(expired_at, ends_at)) < ? AND id NOT IN"
            " (SELECT silenced_by FROM alert_state WHERE status = 'firing' AND silenced_by IS NOT NULL)",
            [cutoff],
            dry_run=dry_run,
        ),
    }


def expire_runs(con: duckdb.DuckDBPyConnection, cutoff: datetime, *, dry_run: bool) -> int:
    """Delete the monitor runs ticked before ``cutoff``, keeping the newest run of each monitor."""
    return _count_or_delete(
        con,
        "monitor_runs",
        "tick_at < ? AND id NOT IN (SELECT max(id) FROM monitor_runs GROUP BY monitor)",
        [cutoff],
        dry_run=dry_run,
    )


def expire_anomalies_and_incidents(
    con: duckdb.DuckDBPyConnection, cutoff: datetime, firing: pd.DataFrame, *, scope: Scope, dry_run: bool
) -> dict[str, int]:
    """Delete the resolved incidents that ended before ``cutoff`` (with their members and notes) and
    the anomalies that ended before it, keeping what a firing alert, feedback or a kept incident holds
    and the anomalies in ``firing`` (columns ``metric_id, detector, start_ts``: a monitor's firing set).
    With ``scope`` ``"monitored"`` only records of series a monitor collects. Returns the rows per table.
    """
    incident_scope = (
        f" AND (peak_metric_id IS NULL OR peak_{_MONITORED}) AND NOT EXISTS (SELECT 1 FROM incident_anomalies ia"
        f" JOIN anomalies a ON a.id = ia.anomaly_id WHERE ia.incident_id = i.id AND NOT a.{_MONITORED})"
        if scope == "monitored"
        else ""
    )
    counts: dict[str, int] = {}
    con.register("_tw_ret_firing", firing)
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _tw_ret_incidents AS SELECT i.id FROM incidents i"
            " WHERE i.state = 'resolved' AND i.end_ts < ? AND coalesce(i.resolved_at, i.end_ts) < ?"
            " AND i.id NOT IN (SELECT incident_id FROM alert_state"
            "  WHERE status = 'firing' AND incident_id IS NOT NULL)"
            " AND i.id NOT IN (SELECT incident_id FROM feedback WHERE incident_id IS NOT NULL)"
            + incident_scope,
            [cutoff, cutoff],
        )
        anomaly_scope = f" AND a.{_MONITORED}" if scope == "monitored" else ""
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _tw_ret_anomalies AS SELECT a.id FROM anomalies a"
            " WHERE a.end_ts < ?" + anomaly_scope + " AND a.id NOT IN (SELECT ia.anomaly_id FROM"
            "  incident_anomalies ia WHERE ia.incident_id NOT IN (SELECT id FROM _tw_ret_incidents))"
            " AND a.id NOT IN (SELECT anomaly_id FROM feedback WHERE anomaly_id IS NOT NULL)"
            " AND NOT EXISTS (SELECT 1 FROM _tw_ret_firing f WHERE f.metric_id = a.metric_id"
            "  AND f.detector = a.detector AND f.start_ts = a.start_ts)",
            [cutoff],
        )
        in_incidents = "incident_id IN (SELECT id FROM _tw_ret_incidents)"
        for table in ("incident_metrics", "incident_anomalies", "incident_notes"):
            counts[table] = _count_or_delete(con, table, in_incidents, [], dry_run=dry_run)
        counts["incidents"] = _count_or_delete(
            con, "incidents", "id IN (SELECT id FROM _tw_ret_incidents)", [], dry_run=dry_run
        )
        # links of kept incidents never point at a deleted anomaly (those anomalies are protected)
        counts["anomalies"] = _count_or_delete(
            con, "anomalies", "id IN (SELECT id FROM _tw_ret_anomalies)", [], dry_run=dry_run
        )
        con.execute("DROP TABLE IF EXISTS _tw_ret_incidents")
        con.execute("DROP TABLE IF EXISTS _tw_ret_anomalies")
    finally:
        con.unregister("_tw_ret_firing")
    return counts


def checkpoint(con: duckdb.DuckDBPyConnection) -> None:
    """Write the store's WAL into its file, so that DuckDB reuses the blocks of deleted row groups."""
    con.execute("CHECKPOINT")


# -- compaction ---------------------------------------------------------------------------------
def _compaction_table(table: str) -> str:
    if table not in COMPACTION_ORDER:
        raise ValueError(f"compaction: no order known for table {table!r}")
    return table


def compacted_until(con: duckdb.DuckDBPyConnection, table: str) -> pd.Timestamp | None:
    """The day (UTC midnight) before which ``table`` is compacted, or ``None`` if never."""
    rows = con.execute("SELECT compacted_until FROM store_compaction WHERE tbl = ?", [table]).fetchall()
    return pd.Timestamp(rows[0][0]).tz_localize("UTC") if rows else None


def first_series_ts(con: duckdb.DuckDBPyConnection, table: str) -> pd.Timestamp | None:
    """The oldest ``ts`` of ``points`` or ``scores`` (UTC), or ``None`` when the table is empty."""
    first = con.execute(f"SELECT min(ts) FROM {_compaction_table(table)}").fetchall()[0][0]
    return None if first is None else pd.Timestamp(first).tz_localize("UTC")


def compact_day(con: duckdb.DuckDBPyConnection, table: str, start: datetime, end: datetime) -> int:
    """Rewrite the rows of ``table`` in [start, end) (naive UTC) in :data:`COMPACTION_ORDER` and record
    ``end`` as compacted; returns the rows rewritten. Call inside ``store.transaction(series=True)``:
    the append and the delete of the old rows are one change."""
    table = _compaction_table(table)
    window = [start, end]
    (count,) = con.execute(f"SELECT count(*) FROM {table} WHERE ts >= ? AND ts < ?", window).fetchall()[0]
    if count:
        # appended rows get row ids after every existing one: the old rows are those up to this id
        (last,) = con.execute(f"SELECT max(rowid) FROM {table}").fetchall()[0]
        con.execute(
            f"INSERT INTO {table} SELECT * FROM {table} WHERE ts >= ? AND ts < ?"
            f" ORDER BY {COMPACTION_ORDER[table]}",
            [start, end],
        )
        crash_point("compact.after_insert")
        con.execute(f"DELETE FROM {table} WHERE ts >= ? AND ts < ? AND rowid <= ?", [start, end, last])
    con.execute(
        "INSERT INTO store_compaction (tbl, compacted_until, updated_at) VALUES (?, ?, current_timestamp)"
        " ON CONFLICT (tbl) DO UPDATE SET compacted_until = excluded.compacted_until,"
        " updated_at = excluded.updated_at",
        [table, end],
    )
    return int(count)


# -- statistics ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class StoreStatistics:
    """What the Prometheus exposition reports of the store, read in a handful of aggregate queries.

    ``metrics`` maps a metric id to its name and canonical labels JSON; the per-metric lists are in
    (metric id, detector) order. ``incidents_by_state``/``notifications_by_status`` are ``None`` when
    the table has no such column (a store from before incident tracking or the outbox).
    """

    schema_version: int
    metrics: dict[int, tuple[str, str]]
    points: int
    last_point: list[tuple[int, float]]  # (metric id, epoch seconds of its newest point)
    latest_scores: list[tuple[int, str, float]]  # (metric id, detector, latest non-null score)
    anomalies: list[tuple[int, str, int]]  # (metric id, detector, stored anomaly windows)
    incidents_by_state: list[tuple[str, int]] | None
    notifications_by_status: list[tuple[str, int]] | None
    feedback_by_kind: list[tuple[str, int]]


def _table_columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]
    ).fetchall()
    return {str(r[0]) for r in rows}


def store_statistics(con: duckdb.DuckDBPyConnection) -> StoreStatistics:
    """Counts and latest values across the store for the Prometheus exposition."""
    version = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    metrics = {
        int(r[0]): (str(r[1]), str(r[2]))
        for r in con.execute("SELECT id, name, labels FROM metrics").fetchall()
    }
    points = con.execute("SELECT count(*), count(value) FROM points").fetchone()
    last_point = [
        (int(m), float(last))
        for m, last in con.execute(
            "SELECT metric_id, epoch(max(ts)) FROM points GROUP BY metric_id ORDER BY metric_id"
        ).fetchall()
    ]
    latest_scores = [
        (int(m), str(d), float(s))
        for m, d, s in con.execute(
            "SELECT metric_id, detector, arg_max(score, ts) FROM scores WHERE score IS NOT NULL"
            " GROUP BY metric_id, detector ORDER BY metric_id, detector"
        ).fetchall()
    ]
    anomalies = [
        (int(m), str(d), int(n))
        for m, d, n in con.execute(
            "SELECT metric_id, detector, count(*) FROM anomalies GROUP BY metric_id, detector"
            " ORDER BY metric_id, detector"
        ).fetchall()
    ]
    incident_cols = _table_columns(con, "incidents")
    state_col = next((c for c in ("status", "state") if c in incident_cols), None)
    incidents = (
        None
        if state_col is None
        else [
            (str(s), int(n))
            for s, n in con.execute(
                f"SELECT {state_col}, count(*) FROM incidents GROUP BY 1 ORDER BY 1"
            ).fetchall()
        ]
    )
    notifications = (
        [
            (str(s), int(n))
            for s, n in con.execute(
                "SELECT status, count(*) FROM alert_notifications GROUP BY 1 ORDER BY 1"
            ).fetchall()
        ]
        if "status" in _table_columns(con, "alert_notifications")
        else None
    )
    feedback = [
        (str(k), int(n))
        for k, n in con.execute("SELECT kind, count(*) FROM feedback GROUP BY 1 ORDER BY 1").fetchall()
    ]
    return StoreStatistics(
        schema_version=int(version[0]) if version else 0,
        metrics=metrics,
        points=int(points[0]) if points else 0,
        last_point=last_point,
        latest_scores=latest_scores,
        anomalies=anomalies,
        incidents_by_state=incidents,
        notifications_by_status=notifications,
        feedback_by_kind=feedback,
    )


@dataclass(frozen=True)
class MonitorStatus:
    """One monitor that has run here, as the configuration view shows it."""

    monitor: str
    status: str
    last_run_at: datetime | None
    last_attempt_at: datetime | None
    attempts: int
    error: str | None
    next_retry_at: datetime | None
    series: int
    runs: int
    last_points: int | None
    last_anomalies: int | None


def monitor_statuses(con: duckdb.DuckDBPyConnection) -> list[MonitorStatus]:
    """Every monitor's status, last run, failure streak, series and run counts (by name); none when
    the store has no monitor tables."""
    present = {
        str(r[0])
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_name IN ('monitor_state', 'monitor_series', 'monitor_runs')"
        ).fetchall()
    }
    if present != {"monitor_state", "monitor_series", "monitor_runs"}:
        return []
    rows = con.execute(
        "SELECT s.monitor, s.status, s.last_run_at, s.last_attempt_at, s.attempts, s.error, s.next_retry_at,"
        " (SELECT count(*) FROM monitor_series m WHERE m.monitor = s.monitor),"
        " (SELECT count(*) FROM monitor_runs r WHERE r.monitor = s.monitor),"
        " (SELECT arg_max(points, id) FROM monitor_runs r WHERE r.monitor = s.monitor),"
        " (SELECT arg_max(anomalies, id) FROM monitor_runs r WHERE r.monitor = s.monitor)"
        " FROM monitor_state s ORDER BY s.monitor"
    ).fetchall()
    return [MonitorStatus(*row) for row in rows]
