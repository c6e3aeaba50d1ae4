"""Use-cases: the state of this telewatch for health checks, the Prometheus exposition and the
monitors' status view (read-only; the SQL is in :mod:`telewatch.store.maintenance` and
:mod:`telewatch.store.repo`)."""

from __future__ import annotations

from telewatch.store import maintenance, repo
from telewatch.store.db import Store
from telewatch.store.maintenance import MonitorStatus, StoreStatistics

__all__ = ["MonitorStatus", "StoreStatistics", "metric_count", "monitor_statuses", "store_statistics"]


def metric_count(store: Store) -> int:
    """How many metrics the store holds."""
    return repo.count_metrics(store.cursor())


def store_statistics(store: Store) -> StoreStatistics:
    """Counts and latest values across the store (metrics, points, scores, anomalies, incidents,
    outbox, feedback), for the Prometheus exposition."""
    return maintenance.store_statistics(store.cursor())


def monitor_statuses(store: Store) -> list[MonitorStatus]:
    """Every monitor that has run here: status, last run, failure streak, series and run counts."""
    return maintenance.monitor_statuses(store.cursor())
