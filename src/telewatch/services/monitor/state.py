"""A monitor's lease (no two runs of one monitor at once) and its stored state: last run, failure streak, cursor, retry backoff."""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta
from typing import Any

from telewatch.monitors.config import MonitorSpec
from telewatch.services.monitor.model import _wall, log
from telewatch.store import monitors as monitors_repo
from telewatch.store.db import Store
from telewatch.store.monitors import MonitorState

__all__ = [
    "MonitorState",
    "acquire_lease",
    "backoff",
    "default_holder",
    "list_states",
    "read_state",
    "release_lease",
]

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
            held = monitors_repo.lease_of(tx, monitor)
            if held is not None and held[0] != holder and _of_this_process(held[0]) and held[1] > now:
                return False
            if held is not None and held[0] != holder and not _of_this_process(held[0]):
                log.info("monitor %s: taking over the lease of %s (no longer running)", monitor, held[0])
            monitors_repo.take_lease(
                tx, monitor=monitor, holder=holder, acquired_at=now, expires_at=now + ttl
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
        monitors_repo.drop_lease(tx, monitor=monitor, holder=holder)


def default_holder() -> str:
    """A lease holder for one run: host, PID, this process's token and a token of its own."""
    return f"{socket.gethostname()}:{os.getpid()}:{_PROCESS}:{uuid.uuid4().hex[:8]}"


# -- state ------------------------------------------------------------------------------------------
def read_state(store: Store, monitor: str) -> MonitorState:
    return monitors_repo.read_monitor_state(store.cursor(), monitor)


def list_states(store: Store) -> list[MonitorState]:
    names = monitors_repo.monitor_names(store.cursor())
    return [read_state(store, n) for n in names]


def _save_state(tx: Any, state: MonitorState, fingerprint: str | None) -> None:
    monitors_repo.save_monitor_state(tx, state, fingerprint=fingerprint, updated_at=_wall())


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
