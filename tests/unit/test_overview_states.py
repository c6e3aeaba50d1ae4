"""The overview's states: what a metric's row says instead of a blanket "ok" (docs/ui.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from telewatch.services import overview
from telewatch.store import repo
from telewatch.store.db import Store

NOW = pd.Timestamp("2026-11-18 12:00", tz="UTC")


def _metric(store: Store, name: str, end: pd.Timestamp) -> int:
    idx = pd.date_range(end=end, periods=600, freq="1min")
    with store.transaction(series=True) as tx:
        mid = repo.upsert_metric(tx, name=name)
        repo.write_points(tx, mid, pd.Series(np.linspace(1, 2, len(idx)), index=idx))
    return mid


def test_states(store: Store) -> None:
    fresh = _metric(store, "fresh_unscored", NOW)
    scored = _metric(store, "fresh_scored", NOW)
    silent = _metric(store, "silent", NOW - pd.Timedelta("40min"))
    stale = _metric(store, "stale", NOW - pd.Timedelta("3D"))
    hot = _metric(store, "anomalous", NOW)
    at = (NOW - pd.Timedelta("10min")).tz_localize(None)
    cur = store.cursor()
    cur.execute(
        "INSERT INTO scores (metric_id, detector, ts, score) VALUES (?, 'robust_bands', ?, 0.5)", [scored, at]
    )
    cur.execute(
        "INSERT INTO anomalies (metric_id, detector, start_ts, end_ts, peak_ts, peak_score)"
        " VALUES (?, 'robust_bands', ?, ?, ?, 9.0)",
        [hot, at, at, at],
    )
    with store.transaction() as tx:
        empty = repo.upsert_metric(tx, name="empty")
    rows = {r.metric.id: r for r in overview.summarize_metrics(store, now=NOW)}
    assert {k: rows[k].state for k in (fresh, scored, silent, stale, hot, empty)} == {
        fresh: "not scored",
        scored: "ok",
        silent: "no data",
        stale: "stale",
        hot: "anomalous",
        empty: "no data",
    }
    assert rows[silent].silent_minutes == 40
    assert rows[fresh].silent_minutes is None
    assert rows[stale].silent_minutes == 3 * 24 * 60
