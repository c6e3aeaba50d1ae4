"""A monitor's lease (no two runs of one monitor at once) and its stored state: last run, failure streak, cursor, retry backoff."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pandas as pd

from telewatch.monitors.config import MonitorSpec
from telewatch.services.monitor.model import _naive, _ts, _wall, log
from telewatch.store.db import Store

# -- lease ------------------------------------------------------------------------------------------
# Set once per process: a lease whose holder does not carry it was taken by another process.
_PROCESS = uuid.uuid4().hex[:12]


def acquire_lease(store: Store, *, monitor: str, holder: str, ttl: timedelta) -> bool:
    """Take the monitor's lease unless another run of this process holds an unexpired one (real clock).

    A lease held by *another process* is taken over at once, expired or not: DuckDB lets one process
    open a store file at a time, so while this process has the store open no other can be running a
    tick on it — that holder was killed (or stopped) in the middle of a tick, and a scheduler restarted
    after it does not wait for the lease to run out.
    """
    now = _wall()
    try:
        with store.transaction() as tx:
            row = tx.execute(
                "SELECT holder, expires_at FROM monitor_leases WHERE monitor = ?", [monitor]
            ).fetchone()
            if (
                row is not None
                and row[0] != holder
                and _of_this_process(str(row[0]))
                and pd.Timestamp(row[1]).tz_localize("UTC") > now
            ):
                return False
            if row is not None and row[0] != holder and not _of_this_process(str(row[0])):
                log.info("monitor %s: taking over the lease of %s (no longer running)", monitor, row[0])
            tx.execute(
                "INSERT INTO monitor_leases (monitor, holder, acquired_at, expires_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (monitor) DO UPDATE SET holder = excluded.holder,"
                " acquired_at = excluded.acquired_at, expires_at = excluded.expires_at",
                [monitor, holder, _naive(now), _naive(now + ttl)],
            )
    except Exception as exc:  # a concurrent writer won the row (DuckDB transaction conflict)
        if "conflict" in str(exc).lower():
            return False
        raise
    return True


def _of_this_process(holder: str) -> bool:
    return f":{_PROCESS}:" in holder


def release_lease(store: Store, *, monitor: str, holder: str) -> None:
    with store.transaction() as tx:
        tx.execute("DELETE FROM monitor_leases WHERE monitor = ? AND holder = ?", [monitor, holder])


def default_holder() -> str:
    """A lease holder for one run: host, PID, this process's token and a token of its own."""
    return f"{socket.gethostname()}:{os.getpid()}:{_PROCESS}:{uuid.uuid4().hex[:8]}"


# -- state ------------------------------------------------------------------------------------------
@dataclass
class MonitorState:
    monitor: str
    last_run_at: pd.Timestamp | None = None
    status: str = "never"
    error: str | None = None
    attempts: int = 0
    next_retry_at: pd.Timestamp | None = None
    last_attempt_at: pd.Timestamp | None = None
    cursor: str = "{}"


def read_state(store: Store, monitor: str) -> MonitorState:
    row = (
        store.cursor()
        .execute(
            "SELECT last_run_at, status, error, attempts, next_retry_at, last_attempt_at, cursor"
            " FROM monitor_state WHERE monitor = ?",
            [monitor],
        )
        .fetchone()
    )
    if row is None:
        return MonitorState(monitor=monitor)
    return MonitorState(
        monitor=monitor,
        last_run_at=_ts(row[0]),
        status=str(row[1]),
        error=row[2],
        attempts=int(row[3]),
        next_retry_at=_ts(row[4]),
        last_attempt_at=_ts(row[5]),
        cursor=str(row[6] or "{}"),
    )


def list_states(store: Store) -> list[MonitorState]:
    names = [
        r[0] for r in store.cursor().execute("SELECT monitor FROM monitor_state ORDER BY monitor").fetchall()
    ]
    return [read_state(store, n) for n in names]


def _save_state(tx: Any, state: MonitorState, fingerprint: str | None) -> None:
    tx.execute(
        "INSERT INTO monitor_state (monitor, fingerprint, last_run_at, last_attempt_at, status, error, attempts,"
        " next_retry_at, cursor, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (monitor) DO UPDATE SET fingerprint = excluded.fingerprint,"
        " last_run_at = excluded.last_run_at, last_attempt_at = excluded.last_attempt_at,"
        " status = excluded.status, error = excluded.error, attempts = excluded.attempts,"
        " next_retry_at = excluded.next_retry_at, cursor = excluded.cursor, updated_at = excluded.updated_at",
        [
            state.monitor,
            fingerprint,
            _naive(state.last_run_at) if state.last_run_at is not None else None,
            _naive(state.last_attempt_at) if state.last_attempt_at is not None else None,
            state.status,
            state.error,
            state.attempts,
            _naive(state.next_retry_at) if state.next_retry_at is not None else None,
            state.cursor,
            _naive(_wall()),
        ],
    )


def backoff(spec: MonitorSpec, attempts: int) -> timedelta:
    """Delay before retry number ``attempts`` (1-based): ``initial`` doubling up to ``max``.

    >>> from telewatch.monitors.config import parse_monitors
    >>> spec = parse_monitors({"monitors": [{"name": "m", "source": {"type": "logs", "path": "x",
    ...                        "count_by": ["event"]}}]}).monitors[0]
    >>> [backoff(spec, n).total_seconds() for n in (1, 2, 3, 10)]
    [30.0, 60.0, 120.0, 900.0]
    """
    delay = spec.retry.initial * (2 ** max(0, attempts - 1))
    return min(delay, spec.retry.max)
