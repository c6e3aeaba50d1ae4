"""Incidents and feedback repository: typed reads and writes of the tables ``incidents``,
``incident_metrics``, ``incident_anomalies``, ``incident_notes`` and ``feedback``, and of the
``label_windows`` rows that feedback writes (source ``feedback``; the generic label-window reads and
writes are :mod:`telewatch.store.repo`'s).

Also the reads of other families' tables that exist for incidents: the anomalies an incident is
grouped from (``anomalies`` joined with ``metrics``), the names of its metrics, and the notifications
sent about it (``alert_notifications`` through ``alert_state``). All SQL uses bind parameters;
callers own the transaction (``store.transaction()``) and pass its connection.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import duckdb
import pandas as pd

__all__ = [
    "AnomalySpan",
    "Feedback",
    "IncidentFields",
    "IncidentMemberRow",
    "IncidentMetric",
    "IncidentNote",
    "IncidentSpan",
    "IncidentSummary",
    "anomaly_values",
    "anomaly_window",
    "clear_incident_members",
    "delete_feedback_window",
    "delete_incident",
    "get_incident_summary",
    "incident_anomalous_metric_ids",
    "incident_anomaly_ids",
    "incident_exists",
    "incident_members",
    "incident_notifications",
    "incident_window",
    "insert_feedback",
    "insert_incident",
    "insert_incident_note",
    "list_feedback",
    "list_incident_notes",
    "list_incident_spans",
    "list_incident_summaries",
    "mark_incident_resolved",
    "metric_names",
    "plant_anomaly",
    "read_anomaly_spans",
    "read_incident",
    "set_incident_state",
    "update_incident",
    "write_incident_anomalies",
    "write_incident_members",
]


def _utc(value: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _naive(ts: pd.Timestamp) -> Any:
    """A UTC time as the naive ``datetime`` the store's TIMESTAMP columns hold."""
    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.to_pydatetime()


def _naive_ts(ts: pd.Timestamp) -> pd.Timestamp:
    """As :func:`_naive`, kept a :class:`pandas.Timestamp` (bound as is)."""
    stamp = pd.Timestamp(ts)
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp


# -- incidents ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class IncidentSummary:
    id: int
    start: pd.Timestamp
    end: pd.Timestamp
    peak: pd.Timestamp
    peak_score: float
    state: str
    type: str | None
    type_title: str | None
    slice_key: str | None
    title: str
    metrics: int
    created_at: pd.Timestamp
    updated_at: pd.Timestamp
    #: the monitor whose metrics the incident holds (None: metrics no monitor fetches)
    monitor: str | None = None


@dataclass(frozen=True)
class IncidentFields:
    """The columns of an incident that grouping and ranking set (times UTC)."""

    start: pd.Timestamp
    end: pd.Timestamp
    peak: pd.Timestamp
    peak_score: float
    peak_metric_id: int | None
    state: str
    type: str | None
    type_title: str | None
    slice_key: str | None
    title: str
    #: the monitor whose metrics the incident holds (None: metrics no monitor fetches)
    monitor: str | None = None


class IncidentSpan(NamedTuple):
    """A stored incident's window, slice, monitor and hand resolution (times UTC)."""

    id: int
    start: pd.Timestamp
    end: pd.Timestamp
    slice_key: str | None
    resolved_at: pd.Timestamp | None
    monitor: str | None = None


@dataclass(frozen=True)
class IncidentMemberRow:
    """One ranked metric stored with an incident (a row of ``incident_metrics``)."""

    metric_id: int
    rank: int
    score: float
    direction: str
    magnitude: float | None
    magnitude_kind: str | None
    lead_lag: int | None
    anomalous: bool
    reason: str


@dataclass(frozen=True)
class IncidentMetric(IncidentMemberRow):
    """A ranked metric of an incident as read back: the stored row with the metric's name."""

    metric: str


class AnomalySpan(NamedTuple):
    """A stored anomaly as incidents group it: span, peak and the value of the splitting label."""

    id: int
    metric_id: int
    start: pd.Timestamp
    end: pd.Timestamp
    peak: pd.Timestamp
    peak_score: float
    key: str | None
    #: the monitor that fetches the metric (the first by name when several do; None: none does)
    monitor: str | None = None


def read_anomaly_spans(
    con: duckdb.DuckDBPyConnection, *, since: pd.Timestamp | None, split_label: str | None
) -> list[AnomalySpan]:
    """Stored anomalies ending at or after ``since`` (all when None), by start; ``key`` is the value
    of label ``split_label`` of the anomaly's metric (None when not asked or absent), ``monitor`` the
    monitor that fetches the metric (``monitor_series``; the first by name when several do)."""
    sql = (
        "SELECT a.id, a.metric_id, a.start_ts, a.end_ts, a.peak_ts, a.peak_score, m.labels, ms.monitor"
        " FROM anomalies a JOIN metrics m ON m.id = a.metric_id"
        " LEFT JOIN (SELECT metric_id, min(monitor) AS monitor FROM monitor_series GROUP BY metric_id) ms"
        " ON ms.metric_id = a.metric_id"
    )
    params: list[object] = []
    if since is not None:
        sql += " WHERE a.end_ts >= ?"
        params.append(_naive(since))
    rows = con.execute(sql + " ORDER BY a.start_ts, a.id", params).fetchall()
    out = []
    for r in rows:
        key = json.loads(str(r[6])).get(split_label) if split_label else None
        out.append(
            AnomalySpan(int(r[0]), int(r[1]), _utc(r[2]), _utc(r[3]), _utc(r[4]), float(r[5]), key, r[7])
        )
    return out


def anomaly_values(
    con: duckdb.DuckDBPyConnection, anomaly_ids: Sequence[int]
) -> list[tuple[int, float, float]]:
    """``(metric_id, value, expected)`` of the anomalies storing both (finite, different), weakest
    peak score first."""
    rows = con.execute(
        "SELECT metric_id, value, expected FROM anomalies WHERE list_contains(?, id)"
        " AND value IS NOT NULL AND expected IS NOT NULL AND NOT isnan(value) AND NOT isnan(expected)"
        " AND value <> expected ORDER BY peak_score, id",
        [[int(i) for i in anomaly_ids]],
    ).fetchall()
    return [(int(m), float(v), float(e)) for m, v, e in rows]


def plant_anomaly(
    con: duckdb.DuckDBPyConnection,
    *,
    metric_id: int,
    detector: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
    peak: pd.Timestamp,
    peak_score: float,
) -> None:
    """Store an anomaly as a perfect detector would report it (no value or band): for benches and
    tests that group planted anomalies into incidents. Detection's anomaly writes are the anomalies
    repository's."""
    con.execute(
        "INSERT INTO anomalies (metric_id, detector, start_ts, end_ts, peak_ts, peak_score)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [metric_id, detector, _naive_ts(start), _naive_ts(end), _naive_ts(peak), peak_score],
    )


def metric_names(con: duckdb.DuckDBPyConnection, metric_ids: Sequence[int]) -> dict[int, str]:
    """Metric id -> name (without labels) of those of ``metric_ids`` that exist."""
    rows = con.execute(
        "SELECT id, name FROM metrics WHERE list_contains(?, id)", [list(metric_ids)]
    ).fetchall()
    return {int(i): str(n) for i, n in rows}


def list_incident_spans(con: duckdb.DuckDBPyConnection) -> list[IncidentSpan]:
    """Every stored incident's window, slice key, hand resolution and monitor, by id."""
    rows = con.execute(
        "SELECT id, start_ts, end_ts, slice_key, resolved_at, monitor FROM incidents ORDER BY id"
    ).fetchall()
    return [
        IncidentSpan(int(r[0]), _utc(r[1]), _utc(r[2]), r[3], None if r[4] is None else _utc(r[4]), r[5])
        for r in rows
    ]


def _fields_params(fields: IncidentFields) -> list[object]:
    return [
        _naive(fields.start),
        _naive(fields.end),
        _naive(fields.peak),
        fields.peak_score,
        fields.peak_metric_id,
        fields.state,
        fields.type,
        fields.type_title,
        fields.slice_key,
        fields.title,
        fields.monitor,
    ]


def insert_incident(con: duckdb.DuckDBPyConnection, fields: IncidentFields) -> int:
    """Store a new incident; returns its id."""
    row = con.execute(
        "INSERT INTO incidents (start_ts, end_ts, peak_ts, peak_score, peak_metric_id, state, type,"
        " type_title, slice_key, title, monitor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        _fields_params(fields),
    ).fetchone()
    assert row is not None  # RETURNING yields the row
    return int(row[0])


def read_incident(
    con: duckdb.DuckDBPyConnection, incident_id: int
) -> tuple[IncidentFields, pd.Timestamp | None] | None:
    """An incident's fields and when it was resolved by hand (None: not by hand); None if absent."""
    row = con.execute(
        "SELECT start_ts, end_ts, peak_ts, peak_score, peak_metric_id, state, type, type_title,"
        " slice_key, title, resolved_at, monitor FROM incidents WHERE id = ?",
        [incident_id],
    ).fetchone()
    if row is None:
        return None
    fields = IncidentFields(
        start=_utc(row[0]),
        end=_utc(row[1]),
        peak=_utc(row[2]),
        peak_score=float(row[3]),
        peak_metric_id=None if row[4] is None else int(row[4]),
        state=str(row[5]),
        type=row[6],
        type_title=row[7],
        slice_key=row[8],
        title=str(row[9]),
        monitor=row[11],
    )
    return fields, None if row[10] is None else _utc(row[10])


def update_incident(con: duckdb.DuckDBPyConnection, incident_id: int, fields: IncidentFields) -> None:
    """Overwrite an incident's fields (and its ``updated_at``)."""
    con.execute(
        "UPDATE incidents SET start_ts = ?, end_ts = ?, peak_ts = ?, peak_score = ?,"
        " peak_metric_id = ?, state = ?, type = ?, type_title = ?, slice_key = ?, title = ?, monitor = ?,"
        " updated_at = current_timestamp WHERE id = ?",
        [*_fields_params(fields), incident_id],
    )


def set_incident_state(con: duckdb.DuckDBPyConnection, incident_id: int, state: str) -> None:
    con.execute(
        "UPDATE incidents SET state = ?, updated_at = current_timestamp WHERE id = ?", [state, incident_id]
    )


def mark_incident_resolved(con: duckdb.DuckDBPyConnection, incident_id: int, at: pd.Timestamp) -> None:
    """Resolve an incident by hand at ``at``."""
    con.execute(
        "UPDATE incidents SET state = 'resolved', resolved_at = ?, updated_at = current_timestamp WHERE id = ?",
        [_naive(at), incident_id],
    )


def incident_exists(con: duckdb.DuckDBPyConnection, incident_id: int) -> bool:
    return con.execute("SELECT id FROM incidents WHERE id = ?", [incident_id]).fetchone() is not None


def clear_incident_members(con: duckdb.DuckDBPyConnection, incident_id: int) -> None:
    """Delete an incident's ranked metrics and its anomaly links (the incident stays)."""
    con.execute("DELETE FROM incident_metrics WHERE incident_id = ?", [incident_id])
    con.execute("DELETE FROM incident_anomalies WHERE incident_id = ?", [incident_id])


def delete_incident(con: duckdb.DuckDBPyConnection, incident_id: int) -> None:
    """Delete an incident with its ranked metrics and anomaly links (its notes and feedback stay)."""
    clear_incident_members(con, incident_id)
    con.execute("DELETE FROM incidents WHERE id = ?", [incident_id])


def write_incident_members(
    con: duckdb.DuckDBPyConnection, incident_id: int, rows: Sequence[IncidentMemberRow]
) -> None:
    """Store an incident's ranked metrics, in one statement (columns as lists, zipped by unnest)."""
    if not rows:
        return
    con.execute(
        "INSERT INTO incident_metrics (incident_id, metric_id, rank, score, direction, magnitude,"
        " magnitude_kind, lead_lag, anomalous, reason) SELECT ?, unnest(?::INTEGER[]),"
        " unnest(?::INTEGER[]), unnest(?::DOUBLE[]), unnest(?::VARCHAR[]), unnest(?::DOUBLE[]),"
        " unnest(?::VARCHAR[]), unnest(?::INTEGER[]), unnest(?::BOOLEAN[]), unnest(?::VARCHAR[])",
        [
            incident_id,
            [r.metric_id for r in rows],
            [r.rank for r in rows],
            [r.score for r in rows],
            [r.direction for r in rows],
            [r.magnitude for r in rows],
            [r.magnitude_kind for r in rows],
            [r.lead_lag for r in rows],
            [r.anomalous for r in rows],
            [r.reason for r in rows],
        ],
    )


def write_incident_anomalies(
    con: duckdb.DuckDBPyConnection, incident_id: int, anomaly_ids: Sequence[int]
) -> None:
    """Link anomalies to an incident."""
    if not anomaly_ids:
        return
    con.execute(
        "INSERT INTO incident_anomalies (incident_id, anomaly_id) SELECT ?, unnest(?::INTEGER[])",
        [incident_id, list(anomaly_ids)],
    )


def incident_anomaly_ids(con: duckdb.DuckDBPyConnection, incident_id: int) -> list[int]:
    """The ids of an incident's anomalies, ascending."""
    rows = con.execute(
        "SELECT anomaly_id FROM incident_anomalies WHERE incident_id = ? ORDER BY anomaly_id", [incident_id]
    ).fetchall()
    return [int(r[0]) for r in rows]


_SUMMARY_SQL = (
    "SELECT i.id, i.start_ts, i.end_ts, i.peak_ts, i.peak_score, i.state, i.type, i.type_title, i.slice_key,"
    " i.title, (SELECT count(*) FROM incident_metrics im WHERE im.incident_id = i.id),"
    " i.created_at, i.updated_at, i.monitor FROM incidents i"
)


def _summary(row: Any) -> IncidentSummary:
    return IncidentSummary(
        id=int(row[0]),
        start=_utc(row[1]),
        end=_utc(row[2]),
        peak=_utc(row[3]),
        peak_score=float(row[4]),
        state=str(row[5]),
        type=row[6],
        type_title=row[7],
        slice_key=row[8],
        title=str(row[9]),
        metrics=int(row[10]),
        created_at=_utc(row[11]),
        updated_at=_utc(row[12]),
        monitor=row[13],
    )


def list_incident_summaries(
    con: duckdb.DuckDBPyConnection,
    *,
    state: str | None = None,
    since: pd.Timestamp | None = None,
    until: pd.Timestamp | None = None,
    limit: int = 100,
    offset: int = 0,
    monitor: str | None = None,
) -> list[IncidentSummary]:
    """Incidents in ``state`` overlapping ``[since, until]`` (of ``monitor`` when given), most recent
    activity first (the later of their end and their last change)."""
    where: list[str] = []
    params: list[object] = []
    if monitor is not None:
        where.append("i.monitor = ?")
        params.append(monitor)
    if state is not None:
        where.append("i.state = ?")
        params.append(state)
    if since is not None:
        where.append("i.end_ts >= ?")
        params.append(_naive_ts(since))
    if until is not None:
        where.append("i.start_ts <= ?")
        params.append(_naive_ts(until))
    sql = _SUMMARY_SQL + (" WHERE " + " AND ".join(where) if where else "")
    rows = con.execute(
        sql + " ORDER BY greatest(i.end_ts, i.updated_at) DESC, i.id DESC LIMIT ? OFFSET ?",
        [*params, limit, offset],
    ).fetchall()
    return [_summary(r) for r in rows]


def get_incident_summary(con: duckdb.DuckDBPyConnection, incident_id: int) -> IncidentSummary | None:
    row = con.execute(_SUMMARY_SQL + " WHERE i.id = ?", [incident_id]).fetchone()
    return None if row is None else _summary(row)


def incident_members(con: duckdb.DuckDBPyConnection, incident_id: int) -> list[IncidentMetric]:
    """An incident's ranked metrics, by rank, each named ``name{k=v,...}``."""
    rows = con.execute(
        "SELECT im.metric_id, m.name, m.labels, im.rank, im.score, im.direction, im.magnitude, im.magnitude_kind,"
        " im.lead_lag, im.anomalous, im.reason FROM incident_metrics im JOIN metrics m ON m.id = im.metric_id"
        " WHERE im.incident_id = ? ORDER BY im.rank",
        [incident_id],
    ).fetchall()
    return [
        IncidentMetric(
            metric_id=int(r[0]),
            metric=str(r[1])
            + (
                "{" + ",".join(f"{k}={v}" for k, v in json.loads(str(r[2])).items()) + "}"
                if r[2] and r[2] != "{}"
                else ""
            ),
            rank=int(r[3]),
            score=float(r[4]),
            direction=str(r[5]),
            magnitude=None if r[6] is None else float(r[6]),
            magnitude_kind=r[7],
            lead_lag=None if r[8] is None else int(r[8]),
            anomalous=bool(r[9]),
            reason=str(r[10]),
        )
        for r in rows
    ]


def incident_window(
    con: duckdb.DuckDBPyConnection, incident_id: int
) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """An incident's (start, end), UTC; None when there is no such incident."""
    row = con.execute("SELECT start_ts, end_ts FROM incidents WHERE id = ?", [incident_id]).fetchone()
    return None if row is None else (_utc(row[0]), _utc(row[1]))


def incident_anomalous_metric_ids(con: duckdb.DuckDBPyConnection, incident_id: int) -> list[int]:
    """The metrics with an anomaly in the incident, ascending."""
    rows = con.execute(
        "SELECT DISTINCT a.metric_id FROM incident_anomalies ia JOIN anomalies a ON a.id = ia.anomaly_id"
        " WHERE ia.incident_id = ? ORDER BY 1",
        [incident_id],
    ).fetchall()
    return [int(r[0]) for r in rows]


def anomaly_window(
    con: duckdb.DuckDBPyConnection, anomaly_id: int
) -> tuple[int, pd.Timestamp, pd.Timestamp] | None:
    """A stored anomaly's (metric_id, start, end), UTC; None when there is no such anomaly."""
    row = con.execute(
        "SELECT metric_id, start_ts, end_ts FROM anomalies WHERE id = ?", [anomaly_id]
    ).fetchone()
    return None if row is None else (int(row[0]), _utc(row[1]), _utc(row[2]))


# -- feedback and notes ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Feedback:
    id: int
    kind: str
    start: pd.Timestamp
    end: pd.Timestamp
    metric_ids: list[int]
    incident_id: int | None
    anomaly_id: int | None
    note: str | None
    author: str | None
    created_at: pd.Timestamp


@dataclass(frozen=True)
class IncidentNote:
    id: int
    incident_id: int
    text: str
    author: str | None
    created_at: pd.Timestamp


def delete_feedback_window(
    con: duckdb.DuckDBPyConnection, *, metric_id: int, start: pd.Timestamp, end: pd.Timestamp, source: str
) -> None:
    """Delete the labelled window of ``source`` on exactly ``[start, end]`` of a metric (a verdict
    about to be replaced)."""
    con.execute(
        "DELETE FROM label_windows WHERE metric_id = ? AND start_ts = ? AND end_ts = ? AND source = ?",
        [metric_id, _naive_ts(start), _naive_ts(end), source],
    )


def insert_feedback(
    con: duckdb.DuckDBPyConnection,
    *,
    kind: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
    metric_ids: Sequence[int],
    incident_id: int | None,
    anomaly_id: int | None,
    note: str | None,
    author: str | None,
) -> Feedback:
    """Record who said what about which incident or anomaly."""
    ids = [int(m) for m in metric_ids]
    row = con.execute(
        "INSERT INTO feedback (incident_id, anomaly_id, kind, start_ts, end_ts, metric_ids, note, author)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id, created_at",
        [incident_id, anomaly_id, kind, _naive_ts(start), _naive_ts(end), json.dumps(ids), note, author],
    ).fetchone()
    assert row is not None  # RETURNING always yields the row
    return Feedback(
        id=int(row[0]),
        kind=kind,
        start=_utc(start),
        end=_utc(end),
        metric_ids=ids,
        incident_id=incident_id,
        anomaly_id=anomaly_id,
        note=note,
        author=author,
        created_at=_utc(row[1]),
    )


def list_feedback(
    con: duckdb.DuckDBPyConnection,
    *,
    incident_id: int | None = None,
    anomaly_id: int | Sequence[int] | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Feedback], int]:
    """Feedback given (about ``incident_id``, about ``anomaly_id`` or any of several), newest first,
    and how many there are in all."""
    where: list[str] = ["true"]
    params: list[object] = []
    if incident_id is not None:
        where.append("incident_id = ?")
        params.append(incident_id)
    if isinstance(anomaly_id, int):
        where.append("anomaly_id = ?")
        params.append(anomaly_id)
    elif anomaly_id is not None:
        where.append("list_contains(?, anomaly_id)")
        params.append([int(i) for i in anomaly_id])
    cond = " AND ".join(where)
    total_row = con.execute(f"SELECT count(*) FROM feedback WHERE {cond}", params).fetchone()
    rows = con.execute(
        "SELECT id, kind, start_ts, end_ts, metric_ids, incident_id, anomaly_id, note, author, created_at"
        f" FROM feedback WHERE {cond} ORDER BY id DESC LIMIT ? OFFSET ?",
        [*params, limit, offset],
    ).fetchall()
    items = [
        Feedback(
            id=int(r[0]),
            kind=str(r[1]),
            start=_utc(r[2]),
            end=_utc(r[3]),
            metric_ids=[int(x) for x in json.loads(str(r[4]))],
            incident_id=None if r[5] is None else int(r[5]),
            anomaly_id=None if r[6] is None else int(r[6]),
            note=r[7],
            author=r[8],
            created_at=_utc(r[9]),
        )
        for r in rows
    ]
    return items, int(total_row[0]) if total_row else 0


def insert_incident_note(
    con: duckdb.DuckDBPyConnection, *, incident_id: int, text: str, author: str | None
) -> IncidentNote:
    row = con.execute(
        "INSERT INTO incident_notes (incident_id, text, author) VALUES (?, ?, ?) RETURNING id, created_at",
        [incident_id, text, author],
    ).fetchone()
    assert row is not None  # RETURNING always yields the row
    return IncidentNote(
        id=int(row[0]), incident_id=incident_id, text=text, author=author, created_at=_utc(row[1])
    )


def list_incident_notes(con: duckdb.DuckDBPyConnection, incident_id: int) -> list[IncidentNote]:
    """An incident's notes, oldest first."""
    rows = con.execute(
        "SELECT id, incident_id, text, author, created_at FROM incident_notes WHERE incident_id = ?"
        " ORDER BY id",
        [incident_id],
    ).fetchall()
    return [
        IncidentNote(id=int(r[0]), incident_id=int(r[1]), text=str(r[2]), author=r[3], created_at=_utc(r[4]))
        for r in rows
    ]


_NOTIFICATION_COLUMNS = (
    "id",
    "channel",
    "kind",
    "severity",
    "subject",
    "status",
    "attempts",
    "created_at",
    "sent_at",
    "last_error",
)


def incident_notifications(
    con: duckdb.DuckDBPyConnection, incident_id: int
) -> list[dict[str, object]] | None:
    """Notifications about an incident (those carrying a dedup key whose alert state points at it),
    oldest first, times UTC; None when the alert tables do not exist."""
    tables = {
        str(r[0])
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_name IN ('alert_state', 'alert_notifications')"
        ).fetchall()
    }
    if tables != {"alert_state", "alert_notifications"}:
        return None
    rows = con.execute(
        "SELECT n.id, n.channel, n.kind, n.severity, n.subject, n.status, n.attempts, n.created_at, n.sent_at,"
        " n.last_error FROM alert_notifications n WHERE EXISTS (SELECT 1 FROM alert_state s"
        " WHERE s.incident_id = ? AND list_contains(json_extract_string(n.alert_keys, '$[*]'), s.key))"
        " ORDER BY n.id",
        [incident_id],
    ).fetchall()
    out = []
    for row in rows:
        rec = dict(zip(_NOTIFICATION_COLUMNS, row, strict=True))
        for key in ("created_at", "sent_at"):
            if rec[key] is not None:
                rec[key] = _utc(rec[key])
        out.append(rec)
    return out
