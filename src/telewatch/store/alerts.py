"""The alerting repository: the durable outbox and the state of alerts. SQL with bind parameters only.

Owns the tables ``alert_state`` (one row per alert key: firing/resolved, notified, silenced by),
``alert_notifications`` (the outbox: one row per message per channel, with its delivery status, lease and
checkpointed progress; sequence ``alert_notification_id_seq``), ``alert_delivery_attempts`` (one row per
try) and ``silences``. The decisions (rules, dedup, grouping, retries) are
:mod:`telewatch.services.alerting`'s; this module reads and writes rows and converts them to values.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from telewatch.alerts.lifecycle import AlertState
from telewatch.alerts.model import Matcher, OutboundMessage, Silence
from telewatch.core.errors import NotFoundError


def naive(ts: pd.Timestamp) -> Any:
    """A UTC timestamp as the store keeps it (naive UTC datetime)."""
    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.to_pydatetime()


def aware(value: Any) -> pd.Timestamp | None:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT:
        return None
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _first(rows: list[Any]) -> Any:
    """The first row of a fully fetched result (DuckDB wants every result consumed), or None."""
    return rows[0] if rows else None


def utcnow() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


# -- alert state --------------------------------------------------------------------------------
def load_states(con: duckdb.DuckDBPyConnection, keys: Sequence[str]) -> dict[str, AlertState]:
    if not keys:
        return {}
    rows = con.execute(
        "SELECT key, status, severity, notified, notified_severity, last_notified_at, started_at, incident_id,"
        " silenced_by FROM alert_state WHERE list_contains(?, key)",
        [list(keys)],
    ).fetchall()
    return {
        str(r[0]): AlertState(
            key=str(r[0]),
            status=str(r[1]),
            severity=str(r[2]),
            notified=bool(r[3]),
            notified_severity=r[4],
            last_notified_at=aware(r[5]),
            started_at=aware(r[6]) or utcnow(),
            incident_id=r[7],
            silenced_by=r[8],
        )
        for r in rows
    }


def incident_notified(con: duckdb.DuckDBPyConnection, incident_id: int, monitor: str) -> bool:
    row = _first(
        con.execute(
            "SELECT count(*) FROM alert_state WHERE incident_id = ? AND monitor = ? AND status = 'firing'"
            " AND notified",
            [incident_id, monitor],
        ).fetchall()
    )
    return bool(row and row[0])


def told_firing_keys(con: duckdb.DuckDBPyConnection, incident_id: int, monitor: str) -> set[str]:
    """The keys of the incident's alerts that people were told are firing and that have not resolved."""
    rows = con.execute(
        "SELECT key FROM alert_state WHERE incident_id = ? AND monitor = ? AND status = 'firing' AND notified",
        [incident_id, monitor],
    ).fetchall()
    return {str(r[0]) for r in rows}


def incident_has_other_alerts(
    con: duckdb.DuckDBPyConnection, incident_id: int, monitor: str, key: str
) -> bool:
    """Whether the incident holds another alert of the monitor than ``key`` (in any state)."""
    rows = con.execute(
        "SELECT count(*) FROM alert_state WHERE incident_id = ? AND monitor = ? AND key <> ?",
        [incident_id, monitor, key],
    ).fetchall()
    return bool(rows and rows[0][0])


_STATE_TYPES = {
    "key": "VARCHAR",
    "rule": "VARCHAR",
    "monitor": "VARCHAR",
    "metric": "VARCHAR",
    "labels": "VARCHAR",
    "incident_id": "BIGINT",
    "status": "VARCHAR",
    "severity": "VARCHAR",
    "started_at": "TIMESTAMP",
    "last_seen": "TIMESTAMP",
    "notified": "BOOLEAN",
    "notified_severity": "VARCHAR",
    "last_notified_at": "TIMESTAMP",
    "silenced_by": "BIGINT",
    "resolved_at": "TIMESTAMP",
    "updated_at": "TIMESTAMP",
}


def state_row(
    *,
    key: str,
    rule: str | None,
    monitor: str,
    metric: str,
    labels: dict[str, str],
    incident_id: int | None,
    status: str,
    severity: str,
    started_at: pd.Timestamp,
    last_seen: pd.Timestamp,
    notified: bool,
    notified_severity: str | None,
    last_notified_at: pd.Timestamp | None,
    silenced_by: int | None,
    now: pd.Timestamp,
) -> dict[str, Any]:
    """One ``alert_state`` row, ready for :func:`save_states`."""
    return {
        "key": key,
        "rule": rule,
        "monitor": monitor,
        "metric": metric,
        "labels": json.dumps(labels, sort_keys=True, ensure_ascii=False),
        "incident_id": incident_id,
        "status": status,
        "severity": severity,
        "started_at": naive(started_at),
        "last_seen": naive(last_seen),
        "notified": notified,
        "notified_severity": notified_severity,
        "last_notified_at": naive(last_notified_at) if last_notified_at is not None else None,
        "silenced_by": silenced_by,
        "resolved_at": naive(now) if status == "resolved" else None,
        "updated_at": naive(now),
    }


def _bulk(
    con: duckdb.DuckDBPyConnection, name: str, rows: Sequence[dict[str, Any]], types: dict[str, str]
) -> str:
    """Register ``rows`` as a view ``name``; returns the SELECT list casting each column to its type.

    One set-based statement instead of one per row: DuckDB spends milliseconds per statement.
    """
    frame = pd.DataFrame(list(rows), columns=list(types)).astype(object)
    frame = frame.where(frame.notna(), None)
    con.register(name, frame)
    return ", ".join(f"CAST({col} AS {kind}) AS {col}" for col, kind in types.items())


def save_states(con: duckdb.DuckDBPyConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or replace alert states (one row per key; the last row for a key wins)."""
    latest = list({r["key"]: r for r in rows}.values())
    if not latest:
        return
    select = _bulk(con, "_tw_alert_state", latest, _STATE_TYPES)
    columns = ", ".join(_STATE_TYPES)
    updates = ", ".join(f"{c} = excluded.{c}" for c in _STATE_TYPES if c != "key")
    try:
        con.execute(
            f"INSERT INTO alert_state ({columns}) SELECT {select} FROM _tw_alert_state"
            f" ON CONFLICT (key) DO UPDATE SET {updates}"
        )
    finally:
        con.unregister("_tw_alert_state")


def save_state(con: duckdb.DuckDBPyConnection, **fields: Any) -> None:
    save_states(con, [state_row(**fields)])


# -- notifications ------------------------------------------------------------------------------
_NOTIFICATION_TYPES = {
    "idempotency_key": "VARCHAR",
    "channel": "VARCHAR",
    "kind": "VARCHAR",
    "rule": "VARCHAR",
    "group_key": "VARCHAR",
    "alert_keys": "VARCHAR",
    "severity": "VARCHAR",
    "language": "VARCHAR",
    "subject": "VARCHAR",
    "body_html": "VARCHAR",
    "body_email": "VARCHAR",
    "body_text": "VARCHAR",
    "summary": "VARCHAR",
    "payload": "VARCHAR",
    "chart_png": "BLOB",
    "status": "VARCHAR",
    "created_at": "TIMESTAMP",
    "next_attempt_at": "TIMESTAMP",
}


def notification_row(
    *,
    idempotency_key: str,
    channel: str,
    kind: str,
    rule: str | None,
    group_key: str,
    alert_keys: Sequence[str],
    severity: str,
    language: str,
    subject: str,
    body_html: str,
    body_email: str,
    body_text: str,
    summary: str,
    payload: dict[str, Any],
    chart_png: bytes | None,
    status: str,
    created_at: pd.Timestamp,
    next_attempt_at: pd.Timestamp,
) -> dict[str, Any]:
    """One outbox row, ready for :func:`insert_notifications`."""
    return {
        "idempotency_key": idempotency_key,
        "channel": channel,
        "kind": kind,
        "rule": rule,
        "group_key": group_key,
        "alert_keys": json.dumps(list(alert_keys)),
        "severity": severity,
        "language": language,
        "subject": subject,
        "body_html": body_html,
        "body_email": body_email,
        "body_text": body_text,
        "summary": summary,
        "payload": json.dumps(payload, ensure_ascii=False, default=str),
        "chart_png": chart_png,
        "status": status,
        "created_at": naive(created_at),
        "next_attempt_at": naive(next_attempt_at),
    }


def insert_notifications(con: duckdb.DuckDBPyConnection, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert outbox rows; returns their new ids, increasing in the rows' order (delivery goes by id).
    A row whose idempotency key is already stored (a re-run) is skipped."""
    if not rows:
        return []
    keys = [r["idempotency_key"] for r in rows]
    found = con.execute(
        "SELECT idempotency_key FROM alert_notifications WHERE list_contains(?, idempotency_key)", [keys]
    ).fetchall()
    done = {str(r[0]) for r in found}
    fresh = list({r["idempotency_key"]: r for r in rows if r["idempotency_key"] not in done}.values())
    if not fresh:
        return []
    drawn = con.execute("SELECT nextval('alert_notification_id_seq') FROM range(?)", [len(fresh)]).fetchall()
    ids = sorted(int(r[0]) for r in drawn)
    types = {"id": "BIGINT", **_NOTIFICATION_TYPES}
    select = _bulk(con, "_tw_notifications", [{"id": i, **r} for i, r in zip(ids, fresh, strict=True)], types)
    try:
        con.execute(
            f"INSERT INTO alert_notifications ({', '.join(types)}) SELECT {select} FROM _tw_notifications"
        )
    finally:
        con.unregister("_tw_notifications")
    return ids


def insert_notification(con: duckdb.DuckDBPyConnection, **fields: Any) -> int | None:
    """Insert one notification; None when one with the same idempotency key exists (a re-run)."""
    ids = insert_notifications(con, [notification_row(**fields)])
    return ids[0] if ids else None


@dataclass(frozen=True)
class QueuedNotification:
    id: int
    channel: str
    status: str
    attempts: int
    created_at: pd.Timestamp
    next_attempt_at: pd.Timestamp
    lease_until: pd.Timestamp | None
    progress: dict[str, Any]


def queue(con: duckdb.DuckDBPyConnection, channel: str) -> list[QueuedNotification]:
    """The channel's undelivered notifications, oldest first."""
    rows = con.execute(
        "SELECT id, channel, status, attempts, created_at, next_attempt_at, lease_until, progress"
        " FROM alert_notifications WHERE channel = ? AND status IN ('pending', 'sending') ORDER BY id",
        [channel],
    ).fetchall()
    return [
        QueuedNotification(
            id=int(r[0]),
            channel=str(r[1]),
            status=str(r[2]),
            attempts=int(r[3]),
            created_at=aware(r[4]) or utcnow(),
            next_attempt_at=aware(r[5]) or utcnow(),
            lease_until=aware(r[6]),
            progress=json.loads(r[7] or "{}"),
        )
        for r in rows
    ]


def channels_with_work(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "SELECT DISTINCT channel FROM alert_notifications WHERE status IN ('pending', 'sending', 'digest')"
        " ORDER BY channel"
    ).fetchall()
    return [str(r[0]) for r in rows]


def load_message(con: duckdb.DuckDBPyConnection, notification_id: int) -> OutboundMessage:
    row = _first(
        con.execute(
            "SELECT id, idempotency_key, channel, kind, severity, subject, body_html, body_email, body_text, summary,"
            " payload, chart_png, created_at FROM alert_notifications WHERE id = ?",
            [notification_id],
        ).fetchall()
    )
    if row is None:
        raise NotFoundError(f"no notification with id {notification_id}")
    return OutboundMessage(
        id=int(row[0]),
        idempotency_key=str(row[1]),
        channel=str(row[2]),
        kind=str(row[3]),
        severity=str(row[4]),
        subject=str(row[5]),
        body_html=str(row[6]),
        body_email=str(row[7]),
        body_text=str(row[8]),
        summary=str(row[9]),
        payload=json.loads(row[10]),
        chart_png=bytes(row[11]) if row[11] is not None else None,
        created_at=aware(row[12]) or utcnow(),
    )


def sent_since(con: duckdb.DuckDBPyConnection, channel: str, since: pd.Timestamp) -> int:
    row = _first(
        con.execute(
            "SELECT count(*) FROM alert_notifications WHERE channel = ? AND status = 'sent' AND sent_at > ?",
            [channel, naive(since)],
        ).fetchall()
    )
    return int(row[0]) if row else 0


def oldest_sent_since(
    con: duckdb.DuckDBPyConnection, channel: str, since: pd.Timestamp
) -> pd.Timestamp | None:
    row = _first(
        con.execute(
            "SELECT min(sent_at) FROM alert_notifications WHERE channel = ? AND status = 'sent' AND sent_at > ?",
            [channel, naive(since)],
        ).fetchall()
    )
    return aware(row[0]) if row else None


def claim(
    con: duckdb.DuckDBPyConnection, notification_id: int, *, now: pd.Timestamp, lease: pd.Timedelta
) -> int | None:
    """Take a notification for sending (pending, or sending with an expired lease: its process died).
    Returns the attempt number, or None when someone else holds it. Records the attempt."""
    row = _first(
        con.execute(
            "UPDATE alert_notifications SET status = 'sending', attempts = attempts + 1, lease_until = ?"
            " WHERE id = ? AND (status = 'pending' OR (status = 'sending' AND lease_until <= ?))"
            " RETURNING attempts, channel",
            [naive(now + lease), notification_id, naive(now)],
        ).fetchall()
    )
    if row is None:
        return None
    attempt = int(row[0])
    con.execute(
        "INSERT INTO alert_delivery_attempts (notification_id, channel, attempt, started_at) VALUES (?, ?, ?, ?)",
        [notification_id, row[1], attempt, naive(now)],
    )
    return attempt


def save_progress(con: duckdb.DuckDBPyConnection, notification_id: int, progress: dict[str, Any]) -> None:
    con.execute(
        "UPDATE alert_notifications SET progress = ? WHERE id = ?", [json.dumps(progress), notification_id]
    )


def finish_attempt(
    con: duckdb.DuckDBPyConnection,
    notification_id: int,
    attempt: int,
    *,
    ok: bool,
    now: pd.Timestamp,
    error: str | None = None,
    remote_id: str | None = None,
    next_attempt_at: pd.Timestamp | None = None,
    give_up: bool = False,
) -> None:
    con.execute(
        "UPDATE alert_delivery_attempts SET finished_at = ?, ok = ?, error = ?, remote_id = ?"
        " WHERE notification_id = ? AND attempt = ?",
        [naive(now), ok, error, remote_id, notification_id, attempt],
    )
    if ok:
        con.execute(
            "UPDATE alert_notifications SET status = 'sent', sent_at = ?, lease_until = NULL, last_error = NULL"
            " WHERE id = ?",
            [naive(now), notification_id],
        )
    else:
        con.execute(
            "UPDATE alert_notifications SET status = ?, lease_until = NULL, last_error = ?,"
            " next_attempt_at = coalesce(?, next_attempt_at) WHERE id = ?",
            [
                "failed" if give_up else "pending",
                error,
                naive(next_attempt_at) if next_attempt_at is not None else None,
                notification_id,
            ],
        )


def mark_failed(con: duckdb.DuckDBPyConnection, notification_id: int, *, reason: str) -> None:
    con.execute(
        "UPDATE alert_notifications SET status = 'failed', lease_until = NULL,"
        " last_error = coalesce(last_error || '; ', '') || ? WHERE id = ?",
        [reason, notification_id],
    )


def due_digest_items(con: duckdb.DuckDBPyConnection, channel: str, now: pd.Timestamp) -> list[dict[str, Any]]:
    rows = con.execute(
        "SELECT id, severity, summary, payload, created_at, language FROM alert_notifications"
        " WHERE channel = ? AND status = 'digest' AND next_attempt_at <= ? ORDER BY id",
        [channel, naive(now)],
    ).fetchall()
    return [
        {
            "id": int(r[0]),
            "severity": str(r[1]),
            "summary": str(r[2]),
            "payload": json.loads(r[3]),
            "created_at": aware(r[4]),
            "language": str(r[5]),
        }
        for r in rows
    ]


def release_digest_item(con: duckdb.DuckDBPyConnection, notification_id: int, *, now: pd.Timestamp) -> None:
    """A digest of one is just the message itself: queue the held item for sending from ``now``."""
    con.execute(
        "UPDATE alert_notifications SET status = 'pending', next_attempt_at = ? WHERE id = ?",
        [naive(now), notification_id],
    )


def mark_digested(con: duckdb.DuckDBPyConnection, item_ids: Sequence[int], digest_id: int) -> None:
    con.execute(
        "UPDATE alert_notifications SET status = 'digested', digest_id = ? WHERE list_contains(?, id)",
        [digest_id, list(item_ids)],
    )


# -- history ------------------------------------------------------------------------------------
_HISTORY_COLUMNS = (
    "id, idempotency_key, channel, kind, rule, group_key, alert_keys, severity, language, subject, summary,"
    " status, attempts, created_at, next_attempt_at, sent_at, last_error, digest_id, chart_png IS NOT NULL"
)


def _history_row(r: Sequence[Any]) -> dict[str, Any]:
    return {
        "id": int(r[0]),
        "idempotency_key": r[1],
        "channel": r[2],
        "kind": r[3],
        "rule": r[4],
        "group_key": r[5],
        "alert_keys": json.loads(r[6]),
        "severity": r[7],
        "language": r[8],
        "subject": r[9],
        "summary": r[10],
        "status": r[11],
        "attempts": int(r[12]),
        "created_at": aware(r[13]),
        "next_attempt_at": aware(r[14]),
        "sent_at": aware(r[15]),
        "last_error": r[16],
        "digest_id": r[17],
        "has_chart": bool(r[18]),
    }


def history(
    con: duckdb.DuckDBPyConnection,
    *,
    channel: str | None = None,
    status: str | None = None,
    key: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Notifications, newest first."""
    where, params = ["true"], []
    if channel:
        where.append("channel = ?")
        params.append(channel)
    if status:
        where.append("status = ?")
        params.append(status)
    if key:
        where.append("position(? IN alert_keys) > 0")
        params.append(json.dumps(key))
    rows = con.execute(
        f"SELECT {_HISTORY_COLUMNS} FROM alert_notifications WHERE {' AND '.join(where)}"
        " ORDER BY id DESC LIMIT ? OFFSET ?",
        [*params, limit, offset],
    ).fetchall()
    return [_history_row(r) for r in rows]


def notification(con: duckdb.DuckDBPyConnection, notification_id: int) -> dict[str, Any]:
    row = _first(
        con.execute(
            f"SELECT {_HISTORY_COLUMNS}, body_text, body_html, payload FROM alert_notifications WHERE id = ?",
            [notification_id],
        ).fetchall()
    )
    if row is None:
        raise NotFoundError(f"no notification with id {notification_id}")
    out = _history_row(row)
    out["body_text"], out["body_html"], out["payload"] = row[19], row[20], json.loads(row[21])
    out["attempts_log"] = attempts(con, notification_id)
    return out


def attempts(con: duckdb.DuckDBPyConnection, notification_id: int) -> list[dict[str, Any]]:
    rows = con.execute(
        "SELECT attempt, started_at, finished_at, ok, error, remote_id FROM alert_delivery_attempts"
        " WHERE notification_id = ? ORDER BY attempt",
        [notification_id],
    ).fetchall()
    return [
        {
            "attempt": int(r[0]),
            "started_at": aware(r[1]),
            "finished_at": aware(r[2]),
            "ok": r[3],
            "error": r[4],
            "remote_id": r[5],
        }
        for r in rows
    ]


def chart_png(con: duckdb.DuckDBPyConnection, notification_id: int) -> bytes | None:
    row = _first(
        con.execute("SELECT chart_png FROM alert_notifications WHERE id = ?", [notification_id]).fetchall()
    )
    if row is None:
        raise NotFoundError(f"no notification with id {notification_id}")
    return bytes(row[0]) if row[0] is not None else None


# -- silences -----------------------------------------------------------------------------------
def _silence(r: Sequence[Any]) -> Silence:
    return Silence(
        id=int(r[0]),
        matchers=tuple(Matcher(**m) for m in json.loads(r[1])),
        starts_at=aware(r[2]) or utcnow(),
        ends_at=aware(r[3]) or utcnow(),
        created_by=str(r[4]),
        comment=str(r[5]),
        created_at=aware(r[6]) or utcnow(),
        expired_at=aware(r[7]),
    )


_SILENCE_COLUMNS = "id, matchers, starts_at, ends_at, created_by, comment, created_at, expired_at"


def insert_silence(
    con: duckdb.DuckDBPyConnection,
    *,
    matchers: Sequence[Matcher],
    starts_at: pd.Timestamp,
    ends_at: pd.Timestamp,
    created_by: str,
    comment: str,
    now: pd.Timestamp,
) -> Silence:
    row = _first(
        con.execute(
            "INSERT INTO silences (matchers, starts_at, ends_at, created_by, comment, created_at)"
            f" VALUES (?, ?, ?, ?, ?, ?) RETURNING {_SILENCE_COLUMNS}",
            [
                json.dumps([m.to_dict() for m in matchers], ensure_ascii=False),
                naive(starts_at),
                naive(ends_at),
                created_by,
                comment,
                naive(now),
            ],
        ).fetchall()
    )
    assert row is not None
    return _silence(row)


def list_silences(
    con: duckdb.DuckDBPyConnection, *, now: pd.Timestamp | None = None, include_expired: bool = False
) -> list[Silence]:
    rows = con.execute(f"SELECT {_SILENCE_COLUMNS} FROM silences ORDER BY id").fetchall()
    found = [_silence(r) for r in rows]
    if include_expired or now is None:
        return found
    return [s for s in found if s.expired_at is None and s.ends_at > now]


def get_silence(con: duckdb.DuckDBPyConnection, silence_id: int) -> Silence:
    row = _first(
        con.execute(f"SELECT {_SILENCE_COLUMNS} FROM silences WHERE id = ?", [silence_id]).fetchall()
    )
    if row is None:
        raise NotFoundError(f"no silence with id {silence_id}")
    return _silence(row)


def expire_silence(con: duckdb.DuckDBPyConnection, silence_id: int, *, now: pd.Timestamp) -> Silence:
    get_silence(con, silence_id)
    con.execute(
        "UPDATE silences SET expired_at = ? WHERE id = ? AND expired_at IS NULL", [naive(now), silence_id]
    )
    return get_silence(con, silence_id)
