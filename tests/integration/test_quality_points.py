"""The incident's data-quality read keeps the day before the incident's start between ticks
(``store.monitors.quality_points``): it gives what one read of the whole range gives, reads only the
new part once it holds a metric's day, reads a metric that joins the incident, and drops what a write
or a delete of points changed."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from telewatch.services.incidents import list_incidents, update_incidents
from telewatch.store import maintenance, repo
from telewatch.store import monitors as monitors_repo
from telewatch.store.db import Store

IDX = pd.date_range("2024-05-01", periods=3 * 1440, freq="1min", tz="UTC")
T0 = 2 * 1440 + 600  # the incident's start (position in IDX)


def _naive(ts: pd.Timestamp) -> datetime:
    return ts.tz_localize(None).to_pydatetime()


def _one_read(store: Store, ids: list[int], lo: datetime, hi: datetime) -> dict[int, tuple[list, list]]:
    """What one read of ``[lo, hi)`` gives (the uncached path), as comparable lists."""
    frame = monitors_repo.points_of(store.cursor(), ids, lo=lo, hi=hi)
    out: dict[int, tuple[list, list]] = {m: ([], []) for m in ids}
    for mid, ts, value in zip(frame["metric_id"], frame["ts"], frame["value"], strict=True):
        out[int(mid)][0].append(pd.Timestamp(ts))
        out[int(mid)][1].append(None if np.isnan(value) else float(value))
    return out


def _lists(got: dict[int, tuple[np.ndarray, np.ndarray]]) -> dict[int, tuple[list, list]]:
    return {
        mid: ([pd.Timestamp(t) for t in ts], [None if np.isnan(v) else float(v) for v in values])
        for mid, (ts, values) in got.items()
    }


def _write(store: Store, mid: int, series: pd.Series) -> None:
    with store.transaction(series=True) as tx:
        repo.write_points(tx, mid, series)


def test_same_points_as_one_read_while_the_cache_fills_grows_and_is_invalidated(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    with Store(tmp_path / "q.duckdb") as store:
        cur = store.cursor()
        ids = [repo.upsert_metric(cur, name=f"m{i}") for i in range(4)]
        upto = T0 + 30  # the store holds points up to here, like a tick's
        for k, mid in enumerate(ids):
            values = pd.Series(rng.normal(size=upto), index=IDX[:upto])
            values.iloc[T0 - 200 : T0 - 170] = np.nan  # missing values are kept as NaN
            if k == 3:
                values = values.drop(values.index[T0 - 90 : T0 - 60])  # a gap
            _write(store, mid, values)
        start = IDX[T0]
        lo, st = _naive(start - pd.Timedelta(days=1)), _naive(start)

        def check(metrics: list[int], end: int) -> None:
            hi = _naive(IDX[end] + pd.Timedelta(minutes=15))
            got = monitors_repo.quality_points(store, metrics, lo=lo, start=st, hi=hi)
            assert list(got) == metrics
            assert _lists(got) == _one_read(store, metrics, lo, hi)

        check(ids[:2], T0 + 5)  # filled
        held = monitors_repo._DAY_BEFORE.held[store]
        assert sorted(k[0] for k in held) == sorted(ids[:2])
        _write(store, ids[0], pd.Series([1.0, 2.0], index=IDX[upto : upto + 2]))  # a tick's new points
        assert len(held) == 2  # newer than the start: the day before still holds
        check(ids[:2], T0 + 40)  # the new points come from the read of [start, hi)
        check(ids[:3], T0 + 40)  # a metric that joins is read in full
        check([ids[3], ids[0]], T0 + 40)
        # a late point inside the day before (an upload, a series catching up) drops that metric's day
        _write(store, ids[1], pd.Series([99.0], index=[IDX[T0 - 500]]))
        assert sorted(k[0] for k in held) == sorted([ids[0], ids[2], ids[3]])
        check(ids, T0 + 40)
        assert (
            _lists(monitors_repo.quality_points(store, [ids[1]], lo=lo, start=st, hi=st))[ids[1]][1].count(
                99.0
            )
            == 1
        )
        # a metric's data deleted
        with store.transaction(series=True) as tx:
            repo.clear_metric_data(tx, ids[2])
        assert ids[2] not in {k[0] for k in held}
        check(ids, T0 + 40)
        # retention: every metric's points before the cutoff
        with store.transaction(series=True) as tx:
            maintenance.expire_series(tx, "points", _naive(IDX[T0 - 700]), scope="all", dry_run=False)
        assert not held
        check(ids, T0 + 40)
        # another incident (another start) is kept apart; another store holds nothing of this one's
        other = _naive(IDX[T0 + 10])
        got = monitors_repo.quality_points(
            store,
            ids[:1],
            lo=_naive(IDX[T0 + 10] - pd.Timedelta(days=1)),
            start=other,
            hi=_naive(IDX[T0 + 40]),
        )
        assert _lists(got) == _one_read(
            store, ids[:1], _naive(IDX[T0 + 10] - pd.Timedelta(days=1)), _naive(IDX[T0 + 40])
        )
        with Store(tmp_path / "other.duckdb") as second:
            mid = repo.upsert_metric(second.cursor(), name="m0")
            assert mid == ids[0]
            got = monitors_repo.quality_points(second, [mid], lo=lo, start=st, hi=_naive(IDX[T0 + 40]))
            assert got[mid][0].size == 0


def _rise(seed: int) -> pd.Series:
    rng = np.random.default_rng(seed)
    day = np.sin(2 * np.pi * np.arange(IDX.size) / 1440)
    values = np.round(120 + 30 * day + 8 * rng.normal(size=IDX.size), 1)
    values[T0 : T0 + 14] = 260.0 + np.arange(14)  # a real rise
    return pd.Series(values, index=IDX)


def _anomaly(store: Store, mid: int, start: int, end: int, value: float) -> None:
    store.cursor().execute(
        "INSERT INTO anomalies (metric_id, detector, start_ts, end_ts, peak_ts, peak_score, value, expected,"
        " lower, upper) VALUES (?, 'novelty', ?, ?, ?, 9.0, ?, 120.0, 100.0, 140.0)",
        [mid, _naive(IDX[start]), _naive(IDX[end]), _naive(IDX[start]), value],
    )


def test_a_metric_that_joins_an_open_incident_gets_its_data_quality_read(tmp_path: Path) -> None:
    """An incident typed from one metric's rise; a second metric, whose collection broke (a gap, then
    the same reading), joins it a tick later: its day before the start is read and it types the
    incident, as a process with nothing kept finds too."""
    queue = _rise(3)
    queue.iloc[T0 + 5 : T0 + 19] = 900.0  # the same reading, 14 times
    queue = queue.drop(queue.index[T0 - 25 : T0 + 5])  # after 30 minutes without points
    with Store(tmp_path / "grow.duckdb") as store:
        cur = store.cursor()
        web = repo.upsert_metric(cur, name="web_response_ms", unit="ms", group="web")
        q = repo.upsert_metric(cur, name="queue_depth", group="web")
        _write(store, web, _rise(1))
        _write(store, q, queue)
        _anomaly(store, web, T0, T0 + 13, 260.0)
        update_incidents(store, now=IDX[T0 + 20], rerank_unchanged=False)
        (first,) = list_incidents(store)
        assert first.type == "latency_degradation"
        held = monitors_repo._DAY_BEFORE.held[store]
        assert {k[0] for k in held} == {web}
        _anomaly(store, q, T0 + 5, T0 + 18, 900.0)
        update_incidents(store, now=IDX[T0 + 25], rerank_unchanged=False)
        (grown,) = list_incidents(store)
        assert grown.id == first.id
        assert {k[0] for k in held} == {web, q}
        assert grown.type == "collection_gap"
        cold = grown.type
        held.clear()  # a process with nothing kept types it the same way
        update_incidents(store, now=IDX[T0 + 25], rerank_unchanged=True)
        (again,) = list_incidents(store)
        assert again.type == cold
