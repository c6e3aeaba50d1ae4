"""Long incidents (an outage, a level shift) detected end to end by stored detection over a real store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from telewatch.services.detection import detect_metrics
from telewatch.store import repo
from telewatch.store.db import Store

DAY = 1440


def _store(store: Store, values: np.ndarray) -> tuple[int, pd.DatetimeIndex]:
    idx = pd.date_range("2024-03-01", periods=values.size, freq="1min", tz="UTC")
    with store.transaction(series=True) as tx:
        metric_id = repo.upsert_metric(tx, name="throughput", labels={}, unit=None, owner=None, group=None)
        repo.write_points(tx, metric_id, pd.Series(values, index=idx))
    return metric_id, idx


def _flagged(store: Store, metric_id: int, detector: str, idx: pd.DatetimeIndex) -> np.ndarray:
    rows = (
        store.cursor()
        .execute(
            "SELECT start_ts, end_ts FROM anomalies WHERE metric_id = ? AND detector = ?",
            [metric_id, detector],
        )
        .fetchall()
    )
    out = np.zeros(idx.size, dtype=bool)
    naive = idx.tz_localize(None)
    for start, end in rows:
        out[(naive >= pd.Timestamp(start)) & (naive <= pd.Timestamp(end))] = True
    return out


def _throughput(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(14 * DAY)
    return 1000 + 300 * np.sin(2 * np.pi * t / DAY) + rng.normal(0, 10, t.size)


@pytest.mark.parametrize(("detector", "share"), [("robust_bands", 0.9), ("level_shift", 0.4)])
def test_two_hour_outage_is_detected_over_its_length(store: Store, detector: str, share: float) -> None:
    values = _throughput(0)
    start = 10 * DAY + 600
    values[start : start + 120] = 0.0
    metric_id, idx = _store(store, values)
    report = detect_metrics(store, detector=detector, metric_ids=[metric_id], console=Console(quiet=True))
    flagged = _flagged(store, metric_id, detector, idx)
    assert flagged[start : start + 120].mean() >= share
    # nothing on the clean part (the outage, and the hour it takes to recover, aside)
    clean = np.ones(idx.size, dtype=bool)
    clean[start - 5 : start + 180] = False
    assert not flagged[clean].any()
    assert report.anomalies
    assert all(a.peak_score >= 5.0 for a in report.anomalies)


def test_level_shift_step_is_detected(store: Store) -> None:
    rng = np.random.default_rng(1)
    values = 100 + rng.normal(0, 1, 14 * DAY)
    at = int(values.size * 0.7)
    values[at:] += 10.0  # a 10 sigma step
    metric_id, idx = _store(store, values)
    detect_metrics(store, detector="level_shift", metric_ids=[metric_id], console=Console(quiet=True))
    flagged = _flagged(store, metric_id, "level_shift", idx)
    assert flagged[at : at + 60].mean() >= 0.5
    assert not flagged[: at - 5].any()


def test_clean_series_gains_no_false_alarms(store: Store) -> None:
    metric_id, _idx = _store(store, _throughput(2))
    for detector in ("seasonal", "level_shift", "robust_bands"):
        report = detect_metrics(store, detector=detector, metric_ids=[metric_id], console=Console(quiet=True))
        assert report.anomalies == [], detector


@pytest.mark.parametrize("detector", ["novelty", "level_shift", "robust_bands"])
def test_the_first_day_of_a_series_has_no_score_and_no_anomaly(store: Store, detector: str) -> None:
    """Scored from its first point, a detector has no history there: novelty's memory is empty (every
    value is new), rolling windows are short. Those artefacts were stored as anomalies at the start of
    every series (11 of the demo's 76); the first day (a tenth of a shorter series) now has no score."""
    metric_id, idx = _store(store, _throughput(3))
    report = detect_metrics(store, detector=detector, metric_ids=[metric_id], console=Console(quiet=True))
    first_day = idx[0] + pd.Timedelta(days=1)
    assert all(a.start >= first_day for a in report.anomalies), report.anomalies
    scores = (
        store.cursor()
        .execute(
            "SELECT count(score), count(*) FROM scores WHERE metric_id = ? AND detector = ? AND ts < ?",
            [metric_id, detector, first_day.tz_localize(None)],
        )
        .fetchone()
    )
    assert scores == (0, DAY)  # stored, as missing


def test_a_confirmed_verdict_is_kept_out_of_the_baseline(store: Store) -> None:
    """A window confirmed by feedback is an anomaly: like a labelled one, it must not shape the fit and
    the calibration. Three points at 10x the level otherwise widen the calibrated tail so much that a
    smaller incident two days later is missed."""
    rng = np.random.default_rng(7)
    values = 100 + 10 * np.sin(np.arange(4 * DAY) * 2 * np.pi / DAY) + rng.normal(0, 1, 4 * DAY)
    spike, dip = DAY + 720, 2 * DAY + 600
    values[spike : spike + 3] = 1000.0
    values[dip : dip + 8] -= 150.0
    metric_id, idx = _store(store, values)
    with store.transaction() as tx:
        repo.write_label_windows(
            tx, [(metric_id, idx[spike - 5], idx[spike + 10], "confirmed", "feedback", None)]
        )
    detect_metrics(store, detector="level_shift", metric_ids=[metric_id], console=Console(quiet=True))
    flagged = _flagged(store, metric_id, "level_shift", idx)
    assert flagged[dip : dip + 8].any()
    assert flagged[spike : spike + 3].any()


def _held(store: Store, detector: str, values: np.ndarray) -> np.ndarray:
    metric_id, idx = _store(store, values)
    detect_metrics(store, detector=detector, metric_ids=[metric_id], console=Console(quiet=True))
    return _flagged(store, metric_id, detector, idx)


@pytest.mark.parametrize("detector", ["level_shift", "seasonal"])
@pytest.mark.parametrize("hours", [2, 6])
def test_an_outage_is_held_to_its_end(store: Store, detector: str, hours: int) -> None:
    """Throughput drops to 0 for 2 or 6 hours: the detector's level and scale stop adapting while the
    series is anomalous, so the outage is flagged to its last minute (level_shift let go after 64
    minutes, seasonal flagged none of a 2-hour one), and not long after it."""
    values = _throughput(10 + hours)
    start, length = 9 * DAY + 500, hours * 60
    values[start : start + length] = 0.0
    flagged = _held(store, detector, values)
    assert flagged[start + 5 : start + length].mean() >= 0.95, flagged[start : start + length].mean()
    assert flagged[start + length - 30 : start + length].all()  # held to the end
    clean = np.ones(values.size, dtype=bool)
    clean[start - 5 : start + length + 60] = False
    assert not flagged[clean].any()


@pytest.mark.parametrize("detector", ["level_shift", "seasonal"])
def test_a_step_up_is_held_until_it_goes_back(store: Store, detector: str) -> None:
    values = _throughput(20)
    start, length = 9 * DAY + 200, 4 * 60
    values[start : start + length] += 400.0  # +40 % for four hours (sigma 10)
    flagged = _held(store, detector, values)
    assert flagged[start + 5 : start + length].mean() >= 0.95
    clean = np.ones(values.size, dtype=bool)
    clean[start - 5 : start + length + 60] = False
    assert not flagged[clean].any()


@pytest.mark.parametrize("detector", ["level_shift", "seasonal"])
def test_a_slow_leak_is_flagged_once_out_of_band_and_held_until_the_restart(
    store: Store, detector: str
) -> None:
    """Memory creeping up 0.5 sigma a minute for three hours, then a restart: the reference does not
    creep after it once it is out of band, so the leak's last two hours are flagged throughout."""
    values = _throughput(30)
    start, length = 9 * DAY + 900, 3 * 60
    values[start : start + length] += 5.0 * np.arange(length)
    flagged = _held(store, detector, values)
    assert flagged[start + 60 : start + length].all()
    clean = np.ones(values.size, dtype=bool)
    clean[start : start + length + 60] = False
    assert not flagged[clean].any()
