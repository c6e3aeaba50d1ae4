"""Use-case: people's feedback on incidents and anomalies, and notes on incidents.

Feedback is stored as labelled windows (``label_windows``, source ``feedback``, kind = the
feedback: ``confirmed``, ``false_alarm`` or ``expected``), one per metric involved, so that
``telewatch bench labels --source feedback`` and threshold tuning can use it. A second verdict
on the same window replaces the first. The ``feedback`` table keeps who said what about which
incident or anomaly.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import pandas as pd

from telewatch.core.errors import NotFoundError, ValidationError
from telewatch.store import repo
from telewatch.store.db import Store

FEEDBACK_KINDS = ("confirmed", "false_alarm", "expected")
FEEDBACK_SOURCE = "feedback"


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


def _utc(ts: object) -> pd.Timestamp:
    stamp = pd.Timestamp(ts)  # type: ignore[arg-type]
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _naive(ts: pd.Timestamp) -> pd.Timestamp:
    return _utc(ts).tz_localize(None)


def give_feedback(
    store: Store,
    *,
    kind: str,
    metric_ids: Sequence[int] = (),
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    incident_id: int | None = None,
    anomaly_id: int | None = None,
    note: str | None = None,
    author: str | None = None,
) -> Feedback:
    """Record a verdict on a window of some metrics (or on a stored anomaly, which supplies them).

    >>> from telewatch.store.db import Store
    >>> import numpy as np
    >>> s = Store(":memory:")
    >>> mid = repo.upsert_metric(s.cursor(), name="cpu")
    >>> fb = give_feedback(s, kind="false_alarm", metric_ids=[mid],
    ...                    start=pd.Timestamp("2024-05-01T10:00Z"), end=pd.Timestamp("2024-05-01T10:30Z"))
    >>> repo.read_label_windows(s.cursor())[["kind", "source"]].values.tolist()
    [['false_alarm', 'feedback']]
    """
    if kind not in FEEDBACK_KINDS:
        raise ValidationError(f"kind: {kind!r} is not one of {', '.join(FEEDBACK_KINDS)}")
    cur = store.cursor()
    ids = [int(m) for m in metric_ids]
    if anomaly_id is not None:
        row = cur.execute(
            "SELECT metric_id, start_ts, end_ts FROM anomalies WHERE id = ?", [anomaly_id]
        ).fetchone()
        if row is None:
            raise NotFoundError(f"no anomaly with id {anomaly_id}")
        ids = ids or [int(row[0])]
        start = start if start is not None else _utc(row[1])
        end = end if end is not None else _utc(row[2])
    if incident_id is not None:
        # an incident supplies what is not given: its window and the metrics that were anomalous in it
        window = _incident_window(cur, incident_id)
        start = start if start is not None else window[0]
        end = end if end is not None else window[1]
        ids = ids or [
            int(r[0])
            for r in cur.execute(
                "SELECT DISTINCT a.metric_id FROM incident_anomalies ia JOIN anomalies a ON a.id = ia.anomaly_id"
                " WHERE ia.incident_id = ? ORDER BY 1",
                [incident_id],
            ).fetchall()
        ]
    if not ids:
        raise ValidationError("metric_ids: name at least one metric (or give an anomaly_id or incident_id)")
    if start is None or end is None:
        raise ValidationError("start and end are required (or give an anomaly_id or incident_id)")
    start, end = _utc(start), _utc(end)
    if end < start:
        raise ValidationError(f"end ({end.isoformat()}) is before start ({start.isoformat()})")
    for metric_id in ids:
        repo.get_metric(cur, metric_id)  # NotFoundError names the missing one
    with store.transaction() as tx:
        for metric_id in ids:
            # one verdict per window: a changed mind replaces the earlier one
            tx.execute(
                "DELETE FROM label_windows WHERE metric_id = ? AND start_ts = ? AND end_ts = ? AND source = ?",
                [metric_id, _naive(start), _naive(end), FEEDBACK_SOURCE],
            )
        repo.write_label_windows(tx, [(m, start, end, kind, FEEDBACK_SOURCE, note) for m in ids])
        row = tx.execute(
            "INSERT INTO feedback (incident_id, anomaly_id, kind, start_ts, end_ts, metric_ids, note, author)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id, created_at",
            [incident_id, anomaly_id, kind, _naive(start), _naive(end), json.dumps(ids), note, author],
        ).fetchone()
    assert row is not None  # RETURNING always yields the row
    return Feedback(
        id=int(row[0]),
        kind=kind,
        start=start,
        end=end,
        metric_ids=ids,
        incident_id=incident_id,
        anomaly_id=anomaly_id,
        note=note,
        author=author,
        created_at=_utc(row[1]),
    )


def list_feedback(
    store: Store,
    *,
    incident_id: int | None = None,
    anomaly_id: int | Sequence[int] | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Feedback], int]:
    """Feedback given, newest first, and how many there are in all; ``anomaly_id`` may name several
    anomalies (a page of them: the first item of each is its current verdict)."""
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
    cur = store.cursor()
    total_row = cur.execute(f"SELECT count(*) FROM feedback WHERE {cond}", params).fetchone()
    rows = cur.execute(
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


def _incident_window(cur: duckdb.DuckDBPyConnection, incident_id: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """An incident's (start, end), UTC; :class:`NotFoundError` naming the id when there is none."""
    row = cur.execute("SELECT start_ts, end_ts FROM incidents WHERE id = ?", [incident_id]).fetchone()
    if row is None:
        raise NotFoundError(f"no incident with id {incident_id}")
    return _utc(row[0]), _utc(row[1])


def add_incident_note(
    store: Store, *, incident_id: int, text: str, author: str | None = None
) -> IncidentNote:
    """Attach a free-text note to an incident (:class:`NotFoundError` if there is no such incident)."""
    if not text or not text.strip():
        raise ValidationError("text: a note cannot be empty")
    if incident_id < 1:
        raise ValidationError(f"incident_id: {incident_id} is not a valid id")
    with store.transaction() as tx:
        _incident_window(tx, incident_id)
        row = tx.execute(
            "INSERT INTO incident_notes (incident_id, text, author) VALUES (?, ?, ?) RETURNING id, created_at",
            [incident_id, text.strip(), author],
        ).fetchone()
    assert row is not None
    return IncidentNote(
        id=int(row[0]), incident_id=incident_id, text=text.strip(), author=author, created_at=_utc(row[1])
    )


def list_incident_notes(store: Store, *, incident_id: int) -> list[IncidentNote]:
    """The notes of an incident, oldest first (:class:`NotFoundError` if there is no such incident)."""
    cur = store.cursor()
    _incident_window(cur, incident_id)
    rows = cur.execute(
        "SELECT id, incident_id, text, author, created_at FROM incident_notes WHERE incident_id = ?"
        " ORDER BY id",
        [incident_id],
    ).fetchall()
    return [
        IncidentNote(id=int(r[0]), incident_id=int(r[1]), text=str(r[2]), author=r[3], created_at=_utc(r[4]))
        for r in rows
    ]


def incident_notifications(store: Store, *, incident_id: int) -> list[dict[str, object]] | None:
    """Notifications sent about an incident and their delivery (None when alerting is not installed).

    An incident's alerts are the notifications carrying a dedup key whose alert state points at it.
    """
    cur = store.cursor()
    tables = {
        str(r[0])
        for r in cur.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_name IN ('alert_state', 'alert_notifications')"
        ).fetchall()
    }
    if tables != {"alert_state", "alert_notifications"}:
        return None
    rows = cur.execute(
        "SELECT n.id, n.channel, n.kind, n.severity, n.subject, n.status, n.attempts, n.created_at, n.sent_at,"
        " n.last_error FROM alert_notifications n WHERE EXISTS (SELECT 1 FROM alert_state s"
        " WHERE s.incident_id = ? AND list_contains(json_extract_string(n.alert_keys, '$[*]'), s.key))"
        " ORDER BY n.id",
        [incident_id],
    ).fetchall()
    names = (
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
    out = []
    for row in rows:
        rec = dict(zip(names, row, strict=True))
        for key in ("created_at", "sent_at"):
            if rec[key] is not None:
                rec[key] = _utc(rec[key])
        out.append(rec)
    return out
