"""Use-case: people's feedback on incidents and anomalies, and notes on incidents.

Feedback is stored as labelled windows (``label_windows``, source ``feedback``, kind = the
feedback: ``confirmed``, ``false_alarm`` or ``expected``), one per metric involved, so that
``telewatch bench labels --source feedback`` and threshold tuning can use it. A second verdict
on the same window replaces the first. The ``feedback`` table keeps who said what about which
incident or anomaly.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pandas as pd

from telewatch.core.errors import NotFoundError, ValidationError
from telewatch.store import incidents as incident_store
from telewatch.store import repo
from telewatch.store.db import Store
from telewatch.store.incidents import Feedback, IncidentNote

__all__ = [
    "FEEDBACK_KINDS",
    "FEEDBACK_SOURCE",
    "Feedback",
    "IncidentNote",
    "add_incident_note",
    "give_feedback",
    "incident_notifications",
    "list_feedback",
    "list_incident_notes",
]

FEEDBACK_KINDS = ("confirmed", "false_alarm", "expected")
FEEDBACK_SOURCE = "feedback"


def _utc(ts: object) -> pd.Timestamp:
    stamp = pd.Timestamp(ts)  # type: ignore[arg-type]
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


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
        found = incident_store.anomaly_window(cur, anomaly_id)
        if found is None:
            raise NotFoundError(f"no anomaly with id {anomaly_id}")
        ids = ids or [found[0]]
        start = start if start is not None else found[1]
        end = end if end is not None else found[2]
    if incident_id is not None:
        # an incident supplies what is not given: its window and the metrics that were anomalous in it
        window = _incident_window(cur, incident_id)
        start = start if start is not None else window[0]
        end = end if end is not None else window[1]
        ids = ids or incident_store.incident_anomalous_metric_ids(cur, incident_id)
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
            incident_store.delete_feedback_window(
                tx, metric_id=metric_id, start=start, end=end, source=FEEDBACK_SOURCE
            )
        repo.write_label_windows(tx, [(m, start, end, kind, FEEDBACK_SOURCE, note) for m in ids])
        return incident_store.insert_feedback(
            tx,
            kind=kind,
            start=start,
            end=end,
            metric_ids=ids,
            incident_id=incident_id,
            anomaly_id=anomaly_id,
            note=note,
            author=author,
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
    return incident_store.list_feedback(
        store.cursor(), incident_id=incident_id, anomaly_id=anomaly_id, limit=limit, offset=offset
    )


def _incident_window(cur: duckdb.DuckDBPyConnection, incident_id: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """An incident's (start, end), UTC; :class:`NotFoundError` naming the id when there is none."""
    window = incident_store.incident_window(cur, incident_id)
    if window is None:
        raise NotFoundError(f"no incident with id {incident_id}")
    return window


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
        return incident_store.insert_incident_note(
            tx, incident_id=incident_id, text=text.strip(), author=author
        )


def list_incident_notes(store: Store, *, incident_id: int) -> list[IncidentNote]:
    """The notes of an incident, oldest first (:class:`NotFoundError` if there is no such incident)."""
    cur = store.cursor()
    _incident_window(cur, incident_id)
    return incident_store.list_incident_notes(cur, incident_id)


def incident_notifications(store: Store, *, incident_id: int) -> list[dict[str, object]] | None:
    """Notifications sent about an incident and their delivery (None when alerting is not installed).

    An incident's alerts are the notifications carrying a dedup key whose alert state points at it.
    """
    return incident_store.incident_notifications(store.cursor(), incident_id)
