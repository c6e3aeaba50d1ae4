"""Post-rules: calibration, threshold, alarm filter, and the detection service that chains them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from telewatch.core.errors import NotFoundError, ValidationError
from telewatch.postrules.alarms import AlarmFilter
from telewatch.postrules.calibrate import MAX_Z, Calibrator
from telewatch.postrules.threshold import Threshold
from telewatch.services.detection import detect_metrics, known_anomalous, read_anomalies
from telewatch.store import repo
from telewatch.store.db import Store


def test_calibrator_makes_different_scales_comparable() -> None:
    rng = np.random.default_rng(0)
    small = np.abs(rng.normal(0, 1, 50_000))
    large = np.abs(rng.normal(0, 1000, 50_000))
    z_small = Calibrator().train(small)(np.array([1.0, 3.0, 6.0]))
    z_large = Calibrator().train(large)(np.array([1000.0, 3000.0, 6000.0]))
    np.testing.assert_allclose(z_small, z_large, atol=0.1)
    assert np.all(np.diff(z_small) > 0)  # monotone, and beyond the training max it keeps growing


def test_calibrator_tail_extrapolates_without_a_ceiling() -> None:
    cal = Calibrator().train(np.arange(1000.0))
    z = cal(np.array([-5.0, 900.0, 999.0, 2000.0, 1e9, 1e12, np.inf]))
    assert z[0] == 0.0
    assert 0.0 < z[1] < z[2] < z[3] < z[4] < z[5] < z[6] == MAX_Z  # only an infinite score reaches it
    assert z[4] > 37.0  # beyond p = 1e-300 finite scores keep their order
    p = cal.tail_probability(np.array([500.0, np.nan]))
    assert 0.45 < p[0] < 0.55
    assert np.isnan(p[1])


def _spiky_series() -> tuple[pd.Series, int, int]:
    """Two weeks at 1 min, a daily cycle around 100 with noise, a 3× spike and a 10× spike."""
    rng = np.random.default_rng(0)
    n = 14 * 1440
    idx = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC")
    base = 100 + 20 * np.sin(2 * np.pi * np.arange(n) / 1440)
    x = base + 3 * rng.normal(size=n)
    i3, i10 = 9_000, 15_000
    x[i3], x[i10] = 3 * base[i3], 10 * base[i10]
    return pd.Series(x, index=idx), i3, i10


def test_calibrated_scores_rank_a_10x_spike_clearly_above_a_3x_one() -> None:
    """Both spikes are among the training scores (as in ``detect``): the tail scale no longer comes
    from a range that holds the point being scored, so the extremes do not share one z (it was ≈14.17
    for every extreme point)."""
    from telewatch.services.detection import calibrated_scores

    series, i3, i10 = _spiky_series()
    raw = np.abs(series.to_numpy() - series.median()) / series.std()
    z = Calibrator().train(raw)(raw[[i3, i10]])
    assert z[1] > 1.5 * z[0] > 1.5 * 5.0
    for detector in ("novelty", "robust_z", "robust_bands", "seasonal", "level_shift"):
        _, scores, _ = calibrated_scores(detector, {}, series, np.ones(len(series), dtype=bool))
        z3, z10 = float(scores.iloc[i3]), float(scores.iloc[i10])
        assert z3 >= 5.0, detector
        assert z10 > 1.5 * z3, (detector, z3, z10)


def test_calibrator_leaves_isolated_extremes_out_of_the_mean_excess() -> None:
    rng = np.random.default_rng(3)
    clean = rng.exponential(1.0, 20_000)
    beta = Calibrator().train(clean).beta_
    spiked = clean.copy()
    spiked[[10, 20]] = [500.0, 5_000.0]
    assert Calibrator().train(spiked).beta_ == pytest.approx(beta, rel=0.01)  # the spikes are left out
    assert Calibrator().train(clean).beta_ == pytest.approx(1.0, rel=0.1)


def test_calibrator_constant_training_and_errors() -> None:
    cal = Calibrator().train(np.zeros(100))
    z = cal(np.array([0.0, 1e-3, 1.0]))
    assert z[0] == 0.0
    assert np.isfinite(z).all()
    assert z[2] >= z[1] > 0
    with pytest.raises(NotFoundError, match="train"):
        Calibrator()(np.zeros(3))
    with pytest.raises(ValidationError, match="tail"):
        Calibrator(tail=0.2)


def test_threshold_fixed_quantile_and_labelled() -> None:
    assert Threshold(value=2.0)(np.array([1.0, 2.0, np.nan])).tolist() == [False, True, False]
    t = Threshold(quantile=0.99).train(np.arange(1000.0))
    assert t.value_ == pytest.approx(989.01)
    scores = np.array([0.1, 0.3, 0.2, 4.0, 3.5, 0.4, 3.0])
    labels = np.array([0, 0, 0, 1, 1, 0, 0])
    assert Threshold().train(scores, labels).value_ == 3.5
    with pytest.raises(ValidationError, match="labels"):
        Threshold().train(scores, labels[:3])
    with pytest.raises(ValidationError, match="value"):
        Threshold()(scores)


def test_alarm_filter_min_duration_merge_and_cooldown() -> None:
    flags = np.array([1, 0, 0, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1], bool)
    assert AlarmFilter(min_points=2)(flags) == [(3, 5), (6, 9), (15, 17)]
    assert AlarmFilter(min_points=2, merge_gap=1)(flags) == [(3, 9), (15, 17)]
    assert AlarmFilter(min_points=2, cooldown=5)(flags) == [(3, 5), (15, 17)]
    assert AlarmFilter().flags(flags).tolist() == flags.tolist()
    with pytest.raises(ValueError, match="min_points"):
        AlarmFilter(min_points=0)


def _store_metric(store: Store, values: np.ndarray) -> int:
    idx = pd.date_range("2024-03-01", periods=values.size, freq="1min", tz="UTC")
    with store.transaction(series=True) as tx:
        metric_id = repo.upsert_metric(tx, name="m", labels={}, unit=None, owner=None, group=None)
        repo.write_points(tx, metric_id, pd.Series(values, index=idx))
    return metric_id


def test_detection_service_stores_calibrated_scores_band_and_skips_known_incidents(store: Store) -> None:
    rng = np.random.default_rng(3)
    n = 2 * 1440
    t = np.arange(n)
    values = 100 + 20 * np.sin(2 * np.pi * t / 1440) + rng.normal(0, 1, n)
    values[2000] += 60  # a spike
    metric_id = _store_metric(store, values)
    report = detect_metrics(store, detector="seasonal", metric_ids=[metric_id])
    assert report.threshold == 5.0
    peaks = [a.peak for a in report.anomalies]
    idx = pd.date_range("2024-03-01", periods=n, freq="1min", tz="UTC")
    assert idx[2000] in peaks
    stored = read_anomalies(store, metric_id=metric_id, detector="seasonal")
    row = stored[stored["peak_ts"] == idx[2000]].iloc[0]
    assert row["lower"] < row["expected"] < row["upper"] < row["value"]
    z = store.cursor().execute("SELECT max(score) FROM scores WHERE metric_id = ?", [metric_id]).fetchone()
    assert z is not None
    assert 5.0 <= z[0] <= 37.0
    # a refit leaves the stored incident out of the baseline
    mask = known_anomalous(store, metric_id=metric_id, index=idx)
    assert mask[2000]
    assert mask.sum() < 50
    # ... of another detector; a rerun of the same one replaces its own anomalies: same result, no ratchet
    again = detect_metrics(store, detector="seasonal", metric_ids=[metric_id])
    assert again.excluded_points == 0
    assert again.anomalies == report.anomalies
    other = detect_metrics(store, detector="robust_z", metric_ids=[metric_id])
    assert other.excluded_points == mask.sum()


def test_repeat_suppressor_keeps_first_and_larger_alarms() -> None:
    from telewatch.postrules.alarms import RepeatSuppressor

    z = np.zeros(3000)
    z[[100, 110, 2000]] = [6.0, 6.0, 6.0]
    z[120] = 9.0  # larger than anything before: counts in full
    out = RepeatSuppressor(cooldown=1000)(z)
    assert out[100] == 6.0
    assert out[110] == pytest.approx(6.0 * 10 / 1000)
    assert out[120] == 9.0
    assert out[2000] == 6.0  # long after: a new alarm
    with pytest.raises(ValueError, match="cooldown"):
        RepeatSuppressor(cooldown=0)


def test_nab_tail_calibration_is_causal_and_in_unit_range() -> None:
    from telewatch.bench.nab import detect_file, make_nab_file

    idx = pd.date_range("2024-01-01", periods=2000, freq="5min")
    x = np.sin(np.arange(2000) / 20.0) + np.random.default_rng(8).normal(0, 0.05, 2000)
    x[1500] = 4.0
    f = make_nab_file("c/f.csv", idx, x, [(idx[1490], idx[1520])])
    s = detect_file(f, "seasonal", {}, calibration="tail")
    assert s.shape == (2000,)
    assert ((s >= 0) & (s < 1)).all()
    assert int(np.argmax(s[300:])) + 300 == 1500


def test_an_outage_at_the_hour_of_last_weeks_outage_is_held_to_its_end() -> None:
    """The usual band leaves out the one day that reaches furthest past each edge (from five days of
    history on): throughput fell to 5 % at 10:00-10:30 four days ago, and falls again today from
    10:05 to 10:45. The band at 10:05 is that of the ordinary days (not down to the old outage's
    level, which pooled quantiles gave: 20 % of the values near 10:00 were the outage's), so today's
    outage is held open to its last point instead of ending with its first anomalous minute."""
    from telewatch.postrules.usual import MINUTE_NS, held_through, still_outside, usual_at

    rng = np.random.default_rng(3)
    minutes = np.arange(8 * 1440)
    ts = minutes * MINUTE_NS
    values = 1000 + 200 * np.sin(2 * np.pi * minutes / 1440) + rng.normal(0, 20, minutes.size)
    past = (minutes >= 3 * 1440 + 600) & (minutes < 3 * 1440 + 630)  # day 3, 10:00-10:30
    today = (minutes >= 7 * 1440 + 605) & (minutes < 7 * 1440 + 645)  # day 7, 10:05-10:45
    values[past | today] *= 0.05
    peak = 7 * 1440 + 605
    history = minutes < peak  # what the tick had before the outage's first minute
    expected, lower, upper = usual_at(ts[history], values[history], int(peak * MINUTE_NS))
    assert expected is not None
    assert lower is not None
    assert upper is not None
    assert lower > 800  # the ordinary days' band, not the old outage's level
    after = values[peak + 1 : 7 * 1440 + 700]
    reach = held_through(still_outside(after, float(values[peak]), expected, lower, upper), merge_gap=5)
    assert peak + 1 + reach == 7 * 1440 + 644  # held to 10:44, the outage's last minute
