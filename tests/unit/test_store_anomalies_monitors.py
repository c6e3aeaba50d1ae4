"""The scores-and-anomalies and monitors-and-tick-state repositories (``store/anomalies.py``,
``store/monitors.py``) against a real in-memory store."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from telewatch.store import anomalies, monitors, repo
from telewatch.store.db import Store, StoreError


def _utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store(":memory:")
    yield s
    s.close()


def _window(
    mid: int, start: str, end: str, *, score: float = 6.0, value: float | None = 1.0
) -> tuple[int, str, pd.Timestamp, pd.Timestamp, pd.Timestamp, float, float | None, None, None, None]:
    return (mid, "novelty", _utc(start), _utc(end), _utc(start), score, value, None, None, None)


def test_record_anomalies_upserts_by_start_and_replaces_a_window_that_grew_backwards(store: Store) -> None:
    cur = store.cursor()
    mid = repo.upsert_metric(cur, name="cpu")
    other = repo.upsert_metric(cur, name="mem")
    anomalies.record_anomalies(
        cur,
        anomalies.anomaly_frame(
            [
                _window(mid, "2024-01-01 10:05", "2024-01-01 10:08"),
                _window(other, "2024-01-01 10:05", "2024-01-01 10:06"),
            ]
        ),
    )
    # the same series' anomaly found again from 10:00 swallows the one starting at 10:05 (not mem's)
    anomalies.record_anomalies(
        cur,
        anomalies.anomaly_frame(
            [_window(mid, "2024-01-01 10:00", "2024-01-01 10:09", score=9.0, value=None)]
        ),
    )
    # found again with the same start: its end and peak move, no second row
    anomalies.record_anomalies(
        cur, anomalies.anomaly_frame([_window(mid, "2024-01-01 10:00", "2024-01-01 10:12", score=9.5)])
    )
    frame = anomalies.read_anomalies(cur)
    assert sorted(zip(frame["metric"], frame["start_ts"], frame["end_ts"], strict=True)) == [
        ("cpu", _utc("2024-01-01 10:00"), _utc("2024-01-01 10:12")),
        ("mem", _utc("2024-01-01 10:05"), _utc("2024-01-01 10:06")),
    ]
    stored = anomalies.anomaly_at(cur, metric_id=mid, detector="novelty", start=_utc("2024-01-01 10:00"))
    assert stored is not None
    assert stored.end == _utc("2024-01-01 10:12")
    assert stored.peak_score == 9.5
    assert (stored.expected, stored.lower) == (None, None)
    assert (
        anomalies.anomaly_at(cur, metric_id=mid, detector="novelty", start=_utc("2024-01-01 10:05")) is None
    )


def test_a_missing_value_is_stored_as_null_not_nan(store: Store) -> None:
    cur = store.cursor()
    mid = repo.upsert_metric(cur, name="cpu")
    row = (mid, "novelty", _utc("2024-01-01"), _utc("2024-01-01 00:03"), _utc("2024-01-01"), 7.0)
    anomalies.record_anomalies(cur, anomalies.anomaly_frame([(*row, math.nan, math.nan, None, 3.0)]))
    stored = anomalies.anomaly_at(cur, metric_id=mid, detector="novelty", start=pd.Timestamp("2024-01-01"))
    assert stored is not None
    assert (stored.value, stored.expected, stored.lower, stored.upper) == (None, None, None, 3.0)


def test_scores_reads_newest_first_and_the_writes_need_the_series_lock(store: Store) -> None:
    cur = store.cursor()
    mid = repo.upsert_metric(cur, name="cpu")
    ts = pd.date_range("2024-01-01", periods=5, freq="1min")
    frame = pd.DataFrame(
        {
            "metric_id": np.full(5, mid, dtype="int32"),
            "detector": "novelty",
            "ts": ts.as_unit("us"),
            "score": [1.0, np.nan, 3.0, 4.0, 5.0],
        }
    )
    with pytest.raises(StoreError, match="series=True"), store.transaction() as tx:
        anomalies.insert_scores(tx, frame)
    with store.transaction(series=True) as tx:
        anomalies.insert_scores(tx, frame)
    got = anomalies.scores_before(cur, metric_id=mid, detector="novelty", before=ts[3], limit=2)
    assert got == [(ts[2].to_pydatetime(), 3.0), (ts[1].to_pydatetime(), None)]
    between = anomalies.scores_between(cur, metric_id=mid, detector="novelty", start=ts[1], before=ts[4])
    assert [r[0] for r in between] == [t.to_pydatetime() for t in ts[3:0:-1]]
    with store.transaction(series=True) as tx:
        anomalies.delete_scores(tx, metric_id=mid, detector="novelty")
    assert anomalies.scores_before(cur, metric_id=mid, detector="novelty", before=ts[-1], limit=9) == []


def test_monitor_state_lease_and_series_round_trip(store: Store) -> None:
    cur = store.cursor()
    assert monitors.read_monitor_state(cur, "m").status == "never"
    state = monitors.MonitorState(
        monitor="m", last_run_at=_utc("2024-01-01 10:00"), status="ok", cursor='{"a": 1}'
    )
    monitors.save_monitor_state(cur, state, fingerprint="f", updated_at=_utc("2024-01-01 10:01"))
    monitors.save_monitor_cursor(cur, monitor="m", cursor='{"b": 2}')
    back = monitors.read_monitor_state(cur, "m")
    assert (back.last_run_at, back.cursor, back.next_retry_at) == (_utc("2024-01-01 10:00"), '{"b": 2}', None)
    assert monitors.monitor_names(cur) == ["m"]

    monitors.take_lease(
        cur, monitor="m", holder="h1", acquired_at=_utc("2024-01-01"), expires_at=_utc("2024-01-01 00:05")
    )
    assert monitors.lease_of(cur, "m") == ("h1", _utc("2024-01-01 00:05"))
    monitors.drop_lease(cur, monitor="m", holder="someone else")
    assert monitors.lease_of(cur, "m") is not None
    monitors.drop_lease(cur, monitor="m", holder="h1")
    assert monitors.lease_of(cur, "m") is None

    mid = repo.upsert_metric(cur, name="cpu")
    monitors.record_series(
        cur, monitor="m", series_key="cpu", metric_id=mid, last_point=_utc("2024-01-01 10:00")
    )
    # a re-fetch of older points does not move the last point back
    monitors.record_series_batch(
        cur,
        monitor="m",
        latest=pd.DataFrame(
            {
                "series_key": ["cpu"],
                "metric_id": np.array([mid], dtype="int32"),
                "last_point": pd.DatetimeIndex(["2024-01-01 09:00"]).as_unit("us"),
            }
        ),
    )
    monitors.set_last_scored(cur, monitor="m", series_key="cpu", last_scored=_utc("2024-01-01 09:59"))
    assert monitors.list_series(cur, "m") == [
        ("cpu", mid, _utc("2024-01-01 10:00"), _utc("2024-01-01 09:59"))
    ]
    marks = monitors.series_watermarks(cur, "m")
    assert marks["last_scored"].tolist() == [pd.Timestamp("2024-01-01 09:59")]
