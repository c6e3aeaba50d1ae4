"""The incident's data-quality read keeps the day before the incident's start between ticks
(``store.monitors.quality_points``): it gives what one read of the whole range gives, reads only the
new part once it holds a metric's day, reads a metric that joins the incident, and drops what a write
or a delete of points changed."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from telewatch.monitors.config import parse_monitors
from telewatch.services.incidents import list_incidents, update_incidents
from telewatch.services.monitor import run_monitor
from telewatch.sources.base import ColumnarSource, FetchedBatch
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


def test_an_offered_read_gives_the_day_before_until_a_write_drops_it(tmp_path: Path) -> None:
    with Store(tmp_path / "offer.duckdb") as store:
        mid = repo.upsert_metric(store.cursor(), name="m")
        _write(store, mid, pd.Series(np.arange(T0 + 30, dtype="float64"), index=IDX[: T0 + 30]))
        start = IDX[T0]
        lo, st, hi = _naive(start - pd.Timedelta(days=1)), _naive(start), _naive(IDX[T0 + 30])
        ns = np.asarray(IDX[: T0 + 30].as_unit("ns").asi8, dtype="int64")
        marked = np.arange(T0 + 30, dtype="float64") + 0.5  # not the stored values: shows which was used

        def offer(first: int) -> None:
            monitors_repo.offer_points(
                store, [mid], {mid: (ns[first:], marked[first:])}, lo=int(ns[first]), hi=int(ns[-1])
            )

        offer(T0 - 1440 - 60)  # reaches past the day before the start
        got = monitors_repo.quality_points(store, [mid], lo=lo, start=st, hi=hi)[mid][1]
        assert got.size == 1440 + 30
        np.testing.assert_array_equal(got[:1440], marked[T0 - 1440 : T0])  # the day before: offered
        np.testing.assert_array_equal(got[1440:], np.arange(T0, T0 + 30))  # the rest: read
        monitors_repo._DAY_BEFORE.held.clear()
        offer(T0 - 1440 + 1)  # short of the day before: not used
        assert _lists(monitors_repo.quality_points(store, [mid], lo=lo, start=st, hi=hi)) == _one_read(
            store, [mid], lo, hi
        )
        monitors_repo._DAY_BEFORE.held.clear()
        offer(T0 - 1440 - 60)
        _write(store, mid, pd.Series([7.0], index=[IDX[T0 - 100]]))  # a write in the offered range
        assert store not in monitors_repo._DAY_BEFORE.offered
        assert _lists(monitors_repo.quality_points(store, [mid], lo=lo, start=st, hi=hi)) == _one_read(
            store, [mid], lo, hi
        )


class _Collected(ColumnarSource):
    """Four metrics of 1-minute points from ``IDX[0]``: ``m0`` spikes at ``DAY + 20``; ``m1`` stops for
    20 minutes and comes back stuck at a high value, a few minutes later."""

    kind = "test"
    names: ClassVar[list[str]] = ["m0", "m1", "m2", "m3"]

    def fetch_batch(self, *, start: pd.Timestamp, end: pd.Timestamp) -> FetchedBatch:
        first = max(0, int(np.ceil((start - IDX[0]) / pd.Timedelta(minutes=1))))
        last = int(np.ceil((end - IDX[0]) / pd.Timedelta(minutes=1)))
        minutes = np.arange(first, max(first, last))
        ts, values, offsets = [], [], [0]
        for k in range(len(self.names)):
            x = 50 + 10 * np.sin(2 * np.pi * minutes / 1440 + k) + np.sin(minutes * 12.9898 + k) % 1.0
            keep = np.ones(minutes.size, dtype=bool)
            if k == 0:
                x = np.where((minutes >= DAY + 20) & (minutes < DAY + 26), x + 80, x)
            if k == 1:
                keep = (minutes < DAY + 4) | (minutes >= DAY + 24)
                x = np.where((minutes >= DAY + 24) & (minutes < DAY + 40), 140.0, x)
            ts.append(IDX[0].value + minutes[keep].astype("int64") * 60_000_000_000)
            values.append(x[keep])
            offsets.append(offsets[-1] + int(keep.sum()))
        return FetchedBatch(
            list(self.names),
            [{} for _ in self.names],
            np.concatenate(ts),
            np.concatenate(values),
            np.array(offsets),
        )


DAY = 1440


def _incidents(store: Store) -> list[tuple[object, ...]]:
    return [(i.id, i.start, i.end, i.type, i.title) for i in list_incidents(store)]


def test_ticks_store_the_incidents_that_reads_of_the_whole_range_give(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same ticks with the day before kept and offered, and with every data-quality read made
    in full (``enabled = False``): the same incidents, types and titles after every tick."""
    spec = parse_monitors(
        {
            "monitors": [
                {
                    "name": "quality",
                    "source": {"type": "logs", "path": "unused", "count_by": ["event"]},
                    "schedule": {"every": "5m"},
                    "history": "1d",
                    "train": {"every": "7d", "window": "1d", "min_points": 60, "warm_up": "0s"},
                }
            ]
        }
    ).monitors[0]
    source = _Collected()
    runs: dict[bool, list[list[tuple[object, ...]]]] = {}
    for enabled in (True, False):
        monkeypatch.setattr(monitors_repo._DAY_BEFORE, "enabled", enabled)
        runs[enabled] = []
        with Store(tmp_path / f"ticks-{enabled}.duckdb") as store:
            for k in range(1, 11):
                now = IDX[0] + pd.Timedelta(minutes=DAY + 5 * k)
                report = run_monitor(spec, store=store, now=now, source=source)
                assert report.status == "ok", report.error
                runs[enabled].append(_incidents(store))
            if enabled:
                assert monitors_repo._DAY_BEFORE.held[store]  # the kept path ran
    assert runs[True] == runs[False]
    assert "collection_gap" in {row[3] for rows in runs[True] for row in rows}, runs[True][-1]
