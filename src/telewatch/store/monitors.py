"""Monitors and tick state: reads and writes of ``monitor_state``, ``monitor_leases``, ``monitor_runs``,
``monitor_series``, ``monitor_models`` (the model blobs), ``tick_state`` and ``tick_generations``; and the
reads of points and metrics that only a monitor's tick makes (several metrics at once, by time range,
for the streaming tick's bulk path) — the general ones are :mod:`telewatch.store.repo`'s.

A replay collects what its scratch store's ticks found: :func:`replay_incidents` and the functions
after it read that store's incidents and notifications.

All SQL uses bind parameters; timestamps go in and come out as naive UTC (the store's).
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from telewatch.store import repo
from telewatch.store.anomalies import naive_utc


def _utc(value: Any) -> pd.Timestamp | None:
    return None if value is None else pd.Timestamp(value).tz_localize("UTC")


def _naive_or_none(ts: pd.Timestamp | datetime | None) -> datetime | None:
    return None if ts is None else naive_utc(ts)


# -- leases -------------------------------------------------------------------------------------------
def lease_of(con: duckdb.DuckDBPyConnection, monitor: str) -> tuple[str, pd.Timestamp] | None:
    """``(holder, expires_at UTC)`` of the monitor's lease, if one is stored."""
    row = con.execute("SELECT holder, expires_at FROM monitor_leases WHERE monitor = ?", [monitor]).fetchone()
    return None if row is None else (str(row[0]), pd.Timestamp(row[1]).tz_localize("UTC"))


def take_lease(
    con: duckdb.DuckDBPyConnection,
    *,
    monitor: str,
    holder: str,
    acquired_at: pd.Timestamp,
    expires_at: pd.Timestamp,
) -> None:
    """Store ``holder`` as the monitor's lease holder until ``expires_at`` (replacing any holder)."""
    con.execute(
        "INSERT INTO monitor_leases (monitor, holder, acquired_at, expires_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (monitor) DO UPDATE SET holder = excluded.holder,"
        " acquired_at = excluded.acquired_at, expires_at = excluded.expires_at",
        [monitor, holder, naive_utc(acquired_at), naive_utc(expires_at)],
    )


def drop_lease(con: duckdb.DuckDBPyConnection, *, monitor: str, holder: str) -> None:
    """Delete the monitor's lease if ``holder`` holds it."""
    con.execute("DELETE FROM monitor_leases WHERE monitor = ? AND holder = ?", [monitor, holder])


# -- state --------------------------------------------------------------------------------------------
@dataclass
class MonitorState:
    """A monitor's row of ``monitor_state``: last run, failure streak, retry time, cursor."""

    monitor: str
    last_run_at: pd.Timestamp | None = None
    status: str = "never"
    error: str | None = None
    attempts: int = 0
    next_retry_at: pd.Timestamp | None = None
    last_attempt_at: pd.Timestamp | None = None
    cursor: str = "{}"


def read_monitor_state(con: duckdb.DuckDBPyConnection, monitor: str) -> MonitorState:
    """The monitor's stored state (a fresh one, status ``never``, when none is stored)."""
    row = con.execute(
        "SELECT last_run_at, status, error, attempts, next_retry_at, last_attempt_at, cursor"
        " FROM monitor_state WHERE monitor = ?",
        [monitor],
    ).fetchone()
    if row is None:
        return MonitorState(monitor=monitor)
    return MonitorState(
        monitor=monitor,
        last_run_at=_utc(row[0]),
        status=str(row[1]),
        error=row[2],
        attempts=int(row[3]),
        next_retry_at=_utc(row[4]),
        last_attempt_at=_utc(row[5]),
        cursor=str(row[6] or "{}"),
    )


def monitor_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The monitors with a stored state, by name."""
    return [str(r[0]) for r in con.execute("SELECT monitor FROM monitor_state ORDER BY monitor").fetchall()]


def save_monitor_state(
    con: duckdb.DuckDBPyConnection, state: MonitorState, *, fingerprint: str | None, updated_at: pd.Timestamp
) -> None:
    """Insert or overwrite the monitor's state row."""
    con.execute(
        "INSERT INTO monitor_state (monitor, fingerprint, last_run_at, last_attempt_at, status, error, attempts,"
        " next_retry_at, cursor, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (monitor) DO UPDATE SET fingerprint = excluded.fingerprint,"
        " last_run_at = excluded.last_run_at, last_attempt_at = excluded.last_attempt_at,"
        " status = excluded.status, error = excluded.error, attempts = excluded.attempts,"
        " next_retry_at = excluded.next_retry_at, cursor = excluded.cursor, updated_at = excluded.updated_at",
        [
            state.monitor,
            fingerprint,
            _naive_or_none(state.last_run_at),
            _naive_or_none(state.last_attempt_at),
            state.status,
            state.error,
            state.attempts,
            _naive_or_none(state.next_retry_at),
            state.cursor,
            naive_utc(updated_at),
        ],
    )


def save_monitor_cursor(con: duckdb.DuckDBPyConnection, *, monitor: str, cursor: str) -> None:
    """Overwrite the cursor (JSON text) of the monitor's stored state."""
    con.execute("UPDATE monitor_state SET cursor = ? WHERE monitor = ?", [cursor, monitor])


def record_run(
    con: duckdb.DuckDBPyConnection,
    *,
    monitor: str,
    tick_at: pd.Timestamp,
    started_at: pd.Timestamp,
    finished_at: pd.Timestamp,
    status: str,
    attempt: int,
    points: int,
    scored: int,
    anomalies: int,
    alerts: int,
    error: str | None,
) -> None:
    """Append one row to the monitor's run history."""
    con.execute(
        "INSERT INTO monitor_runs (monitor, tick_at, started_at, finished_at, status, attempt, points, scored,"
        " anomalies, alerts, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            monitor,
            naive_utc(tick_at),
            naive_utc(started_at),
            naive_utc(finished_at),
            status,
            attempt,
            points,
            scored,
            anomalies,
            alerts,
            error,
        ],
    )


# -- the monitor's series -----------------------------------------------------------------------------
_SERIES_UPSERT = (
    " ON CONFLICT (monitor, series_key) DO UPDATE SET metric_id = excluded.metric_id,"
    " last_point = greatest(coalesce(monitor_series.last_point, excluded.last_point), excluded.last_point)"
)


def record_series(
    con: duckdb.DuckDBPyConnection, *, monitor: str, series_key: str, metric_id: int, last_point: pd.Timestamp
) -> None:
    """Remember that the monitor fetches ``series_key`` into ``metric_id``, up to ``last_point`` (the
    stored last point only moves forward)."""
    con.execute(
        "INSERT INTO monitor_series (monitor, series_key, metric_id, last_point) VALUES (?, ?, ?, ?)"
        + _SERIES_UPSERT,
        [monitor, series_key, metric_id, naive_utc(last_point)],
    )


def record_series_batch(con: duckdb.DuckDBPyConnection, *, monitor: str, latest: pd.DataFrame) -> None:
    """:func:`record_series` for the rows of ``latest`` (``series_key, metric_id, last_point``, one row
    per key, ``last_point`` naive UTC), in one statement."""
    name = "_tw_mon_latest"
    con.register(name, latest)
    try:
        con.execute(
            "INSERT INTO monitor_series (monitor, series_key, metric_id, last_point)"
            f" SELECT ?, series_key, metric_id, last_point FROM {name}" + _SERIES_UPSERT,
            [monitor],
        )
    finally:
        con.unregister(name)


def list_series(
    con: duckdb.DuckDBPyConnection, monitor: str
) -> list[tuple[str, int, pd.Timestamp | None, pd.Timestamp | None]]:
    """``(series_key, metric_id, last_point, last_scored)`` (UTC; None: never) of the monitor's series, by key."""
    rows = con.execute(
        "SELECT series_key, metric_id, last_point, last_scored FROM monitor_series WHERE monitor = ? ORDER BY series_key",
        [monitor],
    ).fetchall()
    return [(str(r[0]), int(r[1]), _utc(r[2]), _utc(r[3])) for r in rows]


def series_watermarks(con: duckdb.DuckDBPyConnection, monitor: str) -> pd.DataFrame:
    """The monitor's series as a frame ``series_key, metric_id, last_scored`` (naive UTC; NaT: never
    scored), by key: one query, no per-row conversion (the streaming tick's read)."""
    return con.execute(
        "SELECT series_key, metric_id, last_scored FROM monitor_series WHERE monitor = ? ORDER BY series_key",
        [monitor],
    ).df()


def set_last_scored(
    con: duckdb.DuckDBPyConnection, *, monitor: str, series_key: str, last_scored: pd.Timestamp
) -> None:
    """Move one series' watermark (its last point scored)."""
    con.execute(
        "UPDATE monitor_series SET last_scored = ? WHERE monitor = ? AND series_key = ?",
        [naive_utc(last_scored), monitor, series_key],
    )


def set_last_scored_batch(con: duckdb.DuckDBPyConnection, *, monitor: str, marks: pd.DataFrame) -> None:
    """:func:`set_last_scored` for the rows of ``marks`` (``series_key, last_scored`` naive UTC), in one statement."""
    name = "_tw_tick_marks"
    con.register(name, marks)
    try:
        con.execute(
            f"UPDATE monitor_series SET last_scored = m.last_scored FROM {name} m"
            " WHERE monitor_series.monitor = ? AND monitor_series.series_key = m.series_key",
            [monitor],
        )
    finally:
        con.unregister(name)


# -- tick state ---------------------------------------------------------------------------------------
def save_tick_state(
    con: duckdb.DuckDBPyConnection, *, monitor: str, state: pd.DataFrame, updated_at: pd.Timestamp
) -> None:
    """Insert or overwrite the monitor's ``tick_state`` rows from ``state`` (``metric_id, detector,
    last_scored, tail_start, tail_points, trained_at``; timestamps naive UTC), in one statement."""
    name = "_tw_tick_state"
    con.register(name, state)
    try:
        con.execute(
            "INSERT INTO tick_state (monitor, metric_id, detector, last_scored, tail_start, tail_points,"
            " trained_at, updated_at) SELECT ?, metric_id, detector, last_scored, tail_start, tail_points,"
            f" trained_at, ? FROM {name} ON CONFLICT (monitor, metric_id, detector) DO UPDATE SET"
            " last_scored = excluded.last_scored, tail_start = excluded.tail_start,"
            " tail_points = excluded.tail_points, trained_at = excluded.trained_at,"
            " updated_at = excluded.updated_at",
            [monitor, naive_utc(updated_at)],
        )
    finally:
        con.unregister(name)


def tail_starts(
    con: duckdb.DuckDBPyConnection, *, monitor: str, metric_ids: Sequence[int]
) -> list[tuple[int, pd.Timestamp, int]]:
    """``(metric_id, tail_start, tail_points)`` (naive UTC) of the kept context tails of ``metric_ids``
    (the earliest start and the fewest points over the monitor's detectors)."""
    rows = con.execute(
        "SELECT metric_id, min(tail_start), min(tail_points) FROM tick_state WHERE monitor = ?"
        " AND metric_id IN (SELECT unnest(?::INTEGER[])) AND tail_start IS NOT NULL GROUP BY metric_id",
        [monitor, list(metric_ids)],
    ).fetchall()
    return [(int(r[0]), pd.Timestamp(r[1]), int(r[2])) for r in rows]


def stored_generation(con: duckdb.DuckDBPyConnection, monitor: str) -> str | None:
    """The generation of the monitor's last stored tick state (None: never stored)."""
    row = con.execute("SELECT generation FROM tick_generations WHERE monitor = ?", [monitor]).fetchone()
    return None if row is None else str(row[0])


def save_generation(
    con: duckdb.DuckDBPyConnection,
    *,
    monitor: str,
    generation: str,
    tick_at: pd.Timestamp,
    updated_at: pd.Timestamp,
) -> None:
    """Store ``generation`` as the monitor's latest tick state (of the tick at ``tick_at``)."""
    con.execute(
        "INSERT INTO tick_generations (monitor, generation, tick_at, updated_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (monitor) DO UPDATE SET generation = excluded.generation,"
        " tick_at = excluded.tick_at, updated_at = excluded.updated_at",
        [monitor, generation, naive_utc(tick_at), naive_utc(updated_at)],
    )


# -- models -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StoredModel:
    """A monitor's stored model of one metric and detector: the blob, when it was trained (UTC) and
    the detector parameters it was trained with."""

    metric_id: int
    detector: str
    blob: bytes
    trained_at: pd.Timestamp
    params: dict[str, Any]


def _model(row: Sequence[Any]) -> StoredModel:
    return StoredModel(
        metric_id=int(row[0]),
        detector=str(row[1]),
        blob=bytes(row[2]),
        trained_at=pd.Timestamp(row[3]).tz_localize("UTC"),
        params=json.loads(row[4]),
    )


def read_model(
    con: duckdb.DuckDBPyConnection, *, monitor: str, metric_id: int, detector: str
) -> StoredModel | None:
    """The monitor's stored model of ``(metric_id, detector)``, if any."""
    row = con.execute(
        "SELECT metric_id, detector, model, trained_at, params FROM monitor_models WHERE monitor = ?"
        " AND metric_id = ? AND detector = ?",
        [monitor, metric_id, detector],
    ).fetchone()
    return None if row is None else _model(row)


def read_models(con: duckdb.DuckDBPyConnection, monitor: str) -> list[StoredModel]:
    """Every stored model of the monitor, in one query."""
    rows = con.execute(
        "SELECT metric_id, detector, model, trained_at, params FROM monitor_models WHERE monitor = ?",
        [monitor],
    ).fetchall()
    return [_model(r) for r in rows]


def save_model(
    con: duckdb.DuckDBPyConnection,
    *,
    monitor: str,
    metric_id: int,
    detector: str,
    params: str,
    trained_at: pd.Timestamp,
    train_start: pd.Timestamp,
    train_end: pd.Timestamp,
    points: int,
    blob: bytes,
) -> None:
    """Insert or overwrite the monitor's model of ``(metric_id, detector)`` (``params``: JSON text)."""
    con.execute(
        "INSERT INTO monitor_models (monitor, metric_id, detector, params, trained_at, train_start, train_end,"
        " points, model) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (monitor, metric_id, detector) DO UPDATE SET params = excluded.params,"
        " trained_at = excluded.trained_at, train_start = excluded.train_start, train_end = excluded.train_end,"
        " points = excluded.points, model = excluded.model",
        [
            monitor,
            metric_id,
            detector,
            params,
            naive_utc(trained_at),
            naive_utc(train_start),
            naive_utc(train_end),
            points,
            blob,
        ],
    )


# -- the tick's reads of metrics and points -----------------------------------------------------------
def metric_ids_of(con: duckdb.DuckDBPyConnection, names: pd.DataFrame) -> dict[int, int]:
    """The ids of the stored metrics named by ``names`` (a frame ``pos, name, labels`` with canonical
    labels), by ``pos`` (absent: no such metric); one query."""
    name = "_tw_mon_names"
    con.register(name, names)
    try:
        found = con.execute(
            f"SELECT n.pos, m.id FROM {name} n JOIN metrics m ON m.name = n.name AND m.labels = n.labels"
        ).fetchall()
    finally:
        con.unregister(name)
    return {int(pos): int(mid) for pos, mid in found}


def claim_metrics(
    con: duckdb.DuckDBPyConnection, metric_ids: Sequence[int], *, owner: str | None, group: str | None
) -> None:
    """Set the owner and group of metrics (None keeps theirs), in one statement."""
    con.execute(
        "UPDATE metrics SET owner = coalesce(?, owner), grp = coalesce(?, grp)"
        " WHERE id IN (SELECT unnest(?::INTEGER[]))",
        [owner, group, list(metric_ids)],
    )


def metric_infos(con: duckdb.DuckDBPyConnection, metric_ids: Sequence[int]) -> dict[int, repo.MetricInfo]:
    """Name and labels of metrics, in one query (an id not in the store raises NotFoundError)."""
    rows = con.execute(
        "SELECT id, name, labels FROM metrics WHERE id IN (SELECT unnest(?::INTEGER[]))", [list(metric_ids)]
    ).fetchall()
    out = {
        int(r[0]): repo.MetricInfo(id=int(r[0]), name=str(r[1]), labels=json.loads(r[2] or "{}"))
        for r in rows
    }
    for mid in metric_ids:
        if mid not in out:
            out[mid] = repo.get_metric(con, mid)  # raises NotFoundError naming the id
    return out


def points_between(
    con: duckdb.DuckDBPyConnection, metric_ids: Sequence[int], *, lo: datetime, hi: datetime, include_hi: bool
) -> pd.DataFrame:
    """Points ``metric_id, ts, value`` of a few metrics with ``lo <= ts < hi`` (``<= hi`` with
    ``include_hi``; naive UTC), by metric and time. The ids go in as a literal list so that the scan
    is pruned by metric and by time alike, whichever way the store's row groups are ordered."""
    marks = ",".join("?" * len(metric_ids))
    return con.execute(
        f"SELECT metric_id, ts, value FROM points WHERE metric_id IN ({marks}) AND ts >= ?"
        f" AND ts {'<=' if include_hi else '<'} ? ORDER BY metric_id, ts",
        [*metric_ids, lo, hi],
    ).df()


def points_of(
    con: duckdb.DuckDBPyConnection, metric_ids: Sequence[int], *, lo: datetime, hi: datetime
) -> pd.DataFrame:
    """Points ``metric_id, ts, value`` of a few metrics with ``lo <= ts < hi`` (naive UTC), by metric
    and time, as :func:`points_between` gives them; for a range most row groups fall in (a day of a
    store written tick by tick), where the ids are matched by a hash semi-join (about half the CPU of
    the literal list's chain of comparisons over every row), within their min-max range (which the
    scan prunes row groups by)."""
    ids = [int(m) for m in metric_ids]
    if not ids:
        return pd.DataFrame({"metric_id": [], "ts": [], "value": []})
    return con.execute(
        "SELECT metric_id, ts, value FROM points WHERE metric_id BETWEEN ? AND ?"
        " AND metric_id IN (SELECT unnest(?::INTEGER[])) AND ts >= ? AND ts < ? ORDER BY metric_id, ts",
        [min(ids), max(ids), ids, lo, hi],
    ).df()


_Key = tuple[int, datetime, datetime]
#: ``(lo, hi, metric ids, points)`` of a read (ns, both bounds included; per metric ``(ts ns, value)``)
_Offer = tuple[int, int, frozenset[int], dict[int, tuple[np.ndarray, np.ndarray]]]


class _DayBefore:
    """Points of metrics before a fixed time (an incident's start) kept between reads, per store:
    ``(metric_id, lo, start)`` → ``(ts, value)`` arrays of the points with ``lo <= ts < start``.

    Dropped when this process writes or deletes points of the metric in that range
    (:func:`telewatch.store.repo.on_points_written`: every writer of ``points`` goes through
    ``store.repo`` or ``store.maintenance``, and no other process can open the store). The oldest
    entries go first past :attr:`LIMIT` (a day of 1-minute points is ~23 KB)."""

    LIMIT = 512
    #: False: nothing is kept or taken from an offer (every read is one read of its whole range)
    enabled = True

    def __init__(self) -> None:
        #: per store, ``(metric_id, lo, start)`` → ``(ts, value)``
        self.held: weakref.WeakKeyDictionary[Any, dict[_Key, tuple[np.ndarray, np.ndarray]]]
        self.held = weakref.WeakKeyDictionary()
        #: per store, the points another read of this process just made (:func:`offer_points`)
        self.offered: weakref.WeakKeyDictionary[Any, _Offer] = weakref.WeakKeyDictionary()

    def written(self, metric_ids: np.ndarray | None, lo: datetime | None, hi: datetime | None) -> None:
        lo, hi = _naive_or_none(lo), _naive_or_none(hi)
        lo_ns = None if lo is None else pd.Timestamp(lo).value
        hi_ns = None if hi is None else pd.Timestamp(hi).value
        for store, (r_lo, r_hi, _ids, _points) in list(self.offered.items()):
            if (lo_ns is None or lo_ns <= r_hi) and (hi_ns is None or hi_ns >= r_lo):
                del self.offered[store]
        for entries in list(self.held.values()):
            hit = [
                key
                for key in entries
                if (lo is None or lo < key[2]) and (hi is None or hi >= key[1])  # [lo, hi] meets [key1, key2)
            ]
            if hit and metric_ids is not None:
                touched = set(np.unique(np.asarray(metric_ids, dtype="int64")).tolist())
                hit = [key for key in hit if key[0] in touched]
            for key in hit:
                del entries[key]


_DAY_BEFORE = _DayBefore()
repo.on_points_written(_DAY_BEFORE.written)


def quality_points(
    store: Any, metric_ids: Sequence[int], *, lo: datetime, start: datetime, hi: datetime
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per metric, ``(ts, value)`` (``datetime64[us]`` naive UTC, float64 with NaN for a missing
    value) of its points with ``lo <= ts < hi``: what :func:`points_of` gives over that range. The
    points before ``start`` are kept in this process between calls with the same ``lo`` and
    ``start`` (``store``'s, until a write changes them), so a later call reads only ``[start, hi)``
    — an incident's data-quality read, a tick after another: the day before its start is a scan of
    every row group of a store written tick by tick, the rest a few recent ones."""
    ids = list(dict.fromkeys(int(m) for m in metric_ids))
    if not _DAY_BEFORE.enabled:
        return {
            mid: _split(points_of(store.cursor(), ids, lo=lo, hi=hi)).get(mid, (_NO_TS, _NO_VALUES))
            for mid in ids
        }
    entries = _DAY_BEFORE.held.setdefault(store, {})
    offered = _DAY_BEFORE.offered.get(store)
    if offered is not None:
        # a read this tick made already holds the day before (the metrics with new anomalies)
        r_lo, r_hi, r_ids, r_points = offered
        lo_ns, start_ns = pd.Timestamp(lo).value, pd.Timestamp(start).value
        if r_lo <= lo_ns and start_ns <= r_hi:
            for mid in ids:
                if (mid, lo, start) in entries or mid not in r_ids:
                    continue
                ts, values = r_points.get(mid, (_NO_NS, _NO_VALUES))
                a, b = np.searchsorted(ts, [lo_ns, start_ns], "left").tolist()
                entries[(mid, lo, start)] = (
                    ts[a:b].view("datetime64[ns]").astype("datetime64[us]"),
                    values[a:b].copy(),
                )
    missing = [m for m in ids if (m, lo, start) not in entries]
    kept = [m for m in ids if (m, lo, start) in entries]
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    if missing:
        for mid, (ts, values) in _split(points_of(store.cursor(), missing, lo=lo, hi=hi)).items():
            cut = int(np.searchsorted(ts, np.datetime64(start, "us"), "left"))
            entries[(mid, lo, start)] = (ts[:cut].copy(), values[:cut].copy())
            out[mid] = (ts, values)
        for mid in missing:  # no point before hi: nothing before start either
            entries.setdefault((mid, lo, start), (_NO_TS, _NO_VALUES))
    if kept:
        recent = _split(points_of(store.cursor(), kept, lo=start, hi=hi))
        for mid in kept:
            old_ts, old_values = entries.pop((mid, lo, start))
            entries[(mid, lo, start)] = (old_ts, old_values)  # the most recently used last
            new_ts, new_values = recent.get(mid, (_NO_TS, _NO_VALUES))
            out[mid] = (np.concatenate([old_ts, new_ts]), np.concatenate([old_values, new_values]))
    while len(entries) > _DAY_BEFORE.LIMIT:
        del entries[next(iter(entries))]
    return {mid: out.get(mid, (_NO_TS, _NO_VALUES)) for mid in ids}


_NO_TS = np.empty(0, dtype="datetime64[us]")
_NO_NS = np.empty(0, dtype="int64")


def offer_points(
    store: Any,
    metric_ids: Sequence[int],
    points: dict[int, tuple[np.ndarray, np.ndarray]],
    *,
    lo: int,
    hi: int,
) -> None:
    """Hand :func:`quality_points` the points of ``metric_ids`` with ``lo <= ts <= hi`` (ns) that a
    caller just read from ``store`` (per metric ``(ts ns, value)``, a metric without points absent):
    the day before an incident's start is sliced from them instead of read again (the tick's
    anomalies read a week before their peaks for the metrics that just joined an incident). Only
    the latest offer is kept; a write of points in its range drops it."""
    if _DAY_BEFORE.enabled:
        _DAY_BEFORE.offered[store] = (int(lo), int(hi), frozenset(int(m) for m in metric_ids), points)


_NO_VALUES = np.empty(0, dtype="float64")


def _split(frame: pd.DataFrame) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """A frame ``metric_id, ts, value`` by metric and time → per metric ``(ts, value)`` arrays."""
    if frame.empty:
        return {}
    ids = frame["metric_id"].to_numpy(dtype="int64")
    ts = frame["ts"].to_numpy(dtype="datetime64[us]")
    values = frame["value"].to_numpy(dtype="float64", na_value=np.nan)
    cuts = np.flatnonzero(np.diff(ids)) + 1
    starts, ends = np.concatenate([[0], cuts]), np.concatenate([cuts, [ids.size]])
    return {int(ids[a]): (ts[a:b], values[a:b]) for a, b in zip(starts.tolist(), ends.tolist(), strict=True)}


def points_after(con: duckdb.DuckDBPyConnection, after: pd.DataFrame, *, end: datetime) -> pd.DataFrame:
    """Points ``metric_id, ts, value`` of every metric of ``after`` (a frame ``metric_id, after``, naive
    UTC) with ``after < ts <= end``, by metric and time: one query."""
    name = "_tw_tick_after"
    con.register(name, after)
    try:
        return con.execute(
            f"SELECT p.metric_id, p.ts, p.value FROM points p JOIN {name} a ON p.metric_id = a.metric_id"
            " WHERE p.ts > a.after AND p.ts > ? AND p.ts <= ? ORDER BY p.metric_id, p.ts",
            [pd.Timestamp(after["after"].min()).to_pydatetime(), end],
        ).df()
    finally:
        con.unregister(name)


def points_before(con: duckdb.DuckDBPyConnection, need: pd.DataFrame) -> pd.DataFrame:
    """The context tails: points ``metric_id, ts, value`` (by metric and time) of every metric of
    ``need`` (a frame ``metric_id, before, since, use_since, k, lower``, naive UTC) before its
    ``before`` and at or after its ``lower``: its last ``k`` points, and with ``use_since`` every
    point since ``since`` too. One query."""
    name = "_tw_tick_need"
    con.register(name, need)
    try:
        return con.execute(
            "SELECT metric_id, ts, value FROM ("
            " SELECT p.metric_id, p.ts, p.value, n.k, n.use_since, n.since,"
            "  row_number() OVER (PARTITION BY p.metric_id ORDER BY p.ts DESC) AS rn"
            f" FROM points p JOIN {name} n ON p.metric_id = n.metric_id"
            " WHERE p.ts < n.before AND p.ts >= n.lower AND p.ts >= ?"
            ") WHERE rn <= k OR (use_since AND ts >= since) ORDER BY metric_id, ts",
            [pd.Timestamp(need["lower"].min()).to_pydatetime()],
        ).df()
    finally:
        con.unregister(name)


def has_points_before(con: duckdb.DuckDBPyConnection, metric_id: int, ts: pd.Timestamp) -> bool:
    """Whether the metric has a stored point (missing or not) before ``ts``."""
    row = con.execute(
        "SELECT 1 FROM points WHERE metric_id = ? AND ts < ? LIMIT 1", [metric_id, naive_utc(ts)]
    ).fetchone()
    return row is not None


# -- incidents of the tick's anomalies (for its alerts) ----------------------------------------------
def incident_of_anomaly(
    con: duckdb.DuckDBPyConnection, *, metric_id: int, detector: str, start: pd.Timestamp
) -> tuple[int, str | None] | None:
    """``(incident id, type title or type)`` of the newest incident holding the anomaly of
    ``(metric_id, detector)`` that started at ``start``."""
    row = con.execute(
        "SELECT i.id, coalesce(i.type_title, i.type) FROM anomalies a"
        " JOIN incident_anomalies ia ON ia.anomaly_id = a.id JOIN incidents i ON i.id = ia.incident_id"
        " WHERE a.metric_id = ? AND a.detector = ? AND a.start_ts = ? ORDER BY i.id DESC LIMIT 1",
        [metric_id, detector, naive_utc(start)],
    ).fetchone()
    return None if row is None else (int(row[0]), row[1])


def other_anomalous_metrics(
    con: duckdb.DuckDBPyConnection, *, incident_id: int, except_metric: int, limit: int = 5
) -> list[str]:
    """Names of the incident's anomalous metrics but ``except_metric``, by rank (at most ``limit``)."""
    rows = con.execute(
        "SELECT m.name FROM incident_metrics im JOIN metrics m ON m.id = im.metric_id"
        " WHERE im.incident_id = ? AND im.anomalous AND im.metric_id <> ? ORDER BY im.rank LIMIT ?",
        [incident_id, except_metric, limit],
    ).fetchall()
    return [str(r[0]) for r in rows]


# -- a replay's findings (read from its scratch store) -----------------------------------------------
def replay_incidents(
    con: duckdb.DuckDBPyConnection,
) -> list[tuple[int, pd.Timestamp, pd.Timestamp, str | None, str, pd.Timestamp, str | None]]:
    """``(id, start, end, type, title, peak, monitor)`` (UTC) of every incident, by start."""
    rows = con.execute(
        "SELECT id, start_ts, end_ts, type, title, peak_ts, monitor FROM incidents ORDER BY start_ts"
    ).fetchall()
    return [
        (
            int(r[0]),
            pd.Timestamp(r[1]).tz_localize("UTC"),
            pd.Timestamp(r[2]).tz_localize("UTC"),
            r[3],
            str(r[4] or ""),
            pd.Timestamp(r[5]).tz_localize("UTC"),
            r[6],
        )
        for r in rows
    ]


def anomalous_members(con: duckdb.DuckDBPyConnection) -> list[tuple[int, str, dict[str, str]]]:
    """``(incident id, metric name, labels)`` of every incident's anomalous metrics, by incident and rank."""
    rows = con.execute(
        "SELECT im.incident_id, m.name, m.labels FROM incident_metrics im JOIN metrics m ON m.id = im.metric_id"
        " WHERE im.anomalous ORDER BY im.incident_id, im.rank"
    ).fetchall()
    return [(int(r[0]), str(r[1]), json.loads(r[2] or "{}")) for r in rows]


def alert_incidents(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """The incident of every alert key that has one."""
    rows = con.execute("SELECT key, incident_id FROM alert_state WHERE incident_id IS NOT NULL").fetchall()
    return {str(k): int(i) for k, i in rows}


@dataclass(frozen=True)
class SentNotification:
    """A notification as the outbox recorded it."""

    id: int
    created_at: pd.Timestamp  # UTC
    channel: str
    kind: str
    severity: str
    subject: str
    text: str
    alert_keys: list[str]
    chart_png: bytes | None


def notifications(con: duckdb.DuckDBPyConnection) -> list[SentNotification]:
    """Every notification a channel would get, in the order it would get them, each at the time it
    is due (``next_attempt_at``: its creation, or the end of the digest window that held it); items
    still held for a digest, or sent inside one, are not listed on their own (a store whose outbox
    nothing delivered: ``telewatch replay``'s)."""
    rows = con.execute(
        "SELECT id, coalesce(next_attempt_at, created_at) AS due, channel, kind, severity, subject,"
        " body_text, alert_keys, chart_png FROM alert_notifications"
        " WHERE status NOT IN ('digest', 'digested') ORDER BY due, id"
    ).fetchall()
    return [
        SentNotification(
            id=int(r[0]),
            created_at=pd.Timestamp(r[1]).tz_localize("UTC"),
            channel=str(r[2]),
            kind=str(r[3]),
            severity=str(r[4]),
            subject=str(r[5]),
            text=str(r[6]),
            alert_keys=[str(k) for k in json.loads(r[7] or "[]")],
            chart_png=bytes(r[8]) if r[8] is not None else None,
        )
        for r in rows
    ]
