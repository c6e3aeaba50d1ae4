"""Statistical detectors: planted spikes and shifts fire, known seasonal peaks do not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from telewatch.core.errors import ConfigError, ValidationError
from telewatch.detectors import create_detector
from telewatch.detectors.bands import scale_floor
from telewatch.detectors.seasonal import detect_periods


def weekly_series(weeks: int = 3, step: str = "15min", seed: int = 0) -> pd.Series:
    """Daily cycle plus a Monday-morning peak every week, with noise."""
    idx = pd.date_range("2024-01-01", periods=weeks * 7 * 96, freq=step, tz="UTC")  # 2024-01-01 is a Monday
    hours = idx.hour + idx.minute / 60
    daily = 50 + 20 * np.sin(2 * np.pi * (hours - 6) / 24)
    monday_peak = np.where((idx.day_of_week == 0) & (hours >= 8) & (hours < 11), 40.0, 0.0)
    noise = np.random.default_rng(seed).normal(0, 1.0, idx.size)
    return pd.Series(daily + monday_peak + noise, index=idx, name="m")


def test_auto_periods_daily_weekly_and_nab_like_steps() -> None:
    assert detect_periods(weekly_series()) == [pd.Timedelta("1D"), pd.Timedelta("7D")]
    idx = pd.date_range("2024-01-01", periods=3000, freq="5min", tz="UTC")
    x = np.sin(2 * np.pi * np.arange(3000) / 288) + np.random.default_rng(1).normal(0, 0.1, 3000)
    assert detect_periods(pd.Series(x, index=idx)) == [pd.Timedelta("1D")]
    odd = np.sin(2 * np.pi * np.arange(1000) / 50)
    assert detect_periods(pd.Series(odd, index=idx[:1000])) == [pd.Timedelta("250min")]
    noise = np.random.default_rng(2).normal(0, 1, 1000)
    assert detect_periods(pd.Series(noise, index=idx[:1000])) == []


@pytest.mark.parametrize("name", ["seasonal", "forecast_interval"])
def test_monday_peak_is_not_an_anomaly_but_a_spike_is(name: str) -> None:
    s = weekly_series()
    det = create_detector(name).fit(s.iloc[: 14 * 96])
    test = s.iloc[14 * 96 :].copy()
    spike_at = 3 * 96 + 40  # Thursday 10:00
    test.iloc[spike_at] += 30.0
    scores = det.score(test, context=s.iloc[: 14 * 96])
    when = pd.DatetimeIndex(test.index)
    monday = (when.day_of_week == 0) & (when.hour >= 8) & (when.hour < 11)
    assert scores.iloc[spike_at] > 3 * scores[monday].max()
    assert int(np.argmax(scores.to_numpy())) == spike_at


def test_seasonal_expected_band_follows_the_monday_peak() -> None:
    s = weekly_series()
    det = create_detector("seasonal").fit(s.iloc[: 14 * 96])
    band = det.expected(s.iloc[14 * 96 :], context=s.iloc[: 14 * 96])  # type: ignore[attr-defined]
    assert list(band.columns) == ["expected", "lower", "upper"]
    monday_10 = band.index[(band.index.day_of_week == 0) & (band.index.hour == 10)][0]
    tuesday_10 = monday_10 + pd.Timedelta("1D")
    assert band.loc[monday_10, "expected"] - band.loc[tuesday_10, "expected"] > 25
    inside = (s.iloc[14 * 96 :] >= band["lower"]) & (s.iloc[14 * 96 :] <= band["upper"])
    assert inside.mean() > 0.97


def test_deviation_reads_as_percent_vs_yesterday_and_last_week() -> None:
    s = weekly_series(weeks=2)
    det = create_detector("deviation").fit(s)
    at = 13 * 96 + 50
    s.iloc[at] = s.iloc[at - 96] * 2  # double yesterday's value (and last week's, about)
    scores = det.score(s)
    assert 80 < scores.iloc[at] < 120
    assert scores.iloc[8 * 96 :].drop(s.index[at]).quantile(0.99) < 15
    band = det.expected(s)  # type: ignore[attr-defined]
    assert band["lower"].iloc[at] < band["expected"].iloc[at] < band["upper"].iloc[at]


def test_deviation_survives_missing_lags() -> None:
    s = weekly_series(weeks=2)
    s.iloc[12 * 96 : 13 * 96] = np.nan  # yesterday is missing: last week still answers
    det = create_detector("deviation").fit(s)
    scores = det.score(s)
    assert np.isfinite(scores.iloc[13 * 96 :]).all()
    assert scores.iloc[13 * 96 :].median() < 10


def test_level_shift_fires_on_a_shift_and_settles() -> None:
    idx = pd.date_range("2024-01-01", periods=1200, freq="1min", tz="UTC")
    x = np.random.default_rng(4).normal(100, 2, 1200)
    x[800:] += 15
    s = pd.Series(x, index=idx)
    scores = create_detector("level_shift").fit(s.iloc[:600]).score(s)
    assert scores.iloc[800:806].max() > 3 * scores.iloc[100:790].quantile(0.99)
    assert scores.iloc[1100:].median() < 3  # the new level became the reference


def test_forecast_interval_band_units_and_prophet_gate() -> None:
    s = weekly_series(weeks=1)
    det = create_detector("forecast_interval").fit(s.iloc[:400])
    scores = det.score(s)
    assert (scores.iloc[400:] < 1).mean() > 0.95  # inside the band is below 1
    try:
        import prophet  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="prophet extra"):
            create_detector("forecast_interval", engine="prophet").fit(s)
    with pytest.raises(ConfigError, match="engine"):
        create_detector("forecast_interval", engine="nope").fit(s)


def test_novelty_new_territory_scores_and_repeats_do_not() -> None:
    idx = pd.date_range("2024-01-01", periods=3000, freq="5min", tz="UTC")
    x = np.sin(np.arange(3000) * 2 * np.pi / 288) + np.random.default_rng(5).normal(0, 0.05, 3000)
    x[2000] = 3.0  # new maximum
    x[2600] = 3.0  # the same place again: known by now
    s = pd.Series(x, index=idx)
    det = create_detector("novelty").fit(s.iloc[:450])
    scores = det.score(s)
    assert int(np.argmax(scores.iloc[450:].to_numpy())) + 450 == 2000
    assert scores.iloc[2600] < 0.01 * scores.iloc[2000]
    band = det.expected(s)  # type: ignore[attr-defined]
    assert band["upper"].iloc[2001] == pytest.approx(3.0)


def test_robust_bands_flat_stretch_does_not_explode() -> None:
    idx = pd.date_range("2024-01-01", periods=600, freq="1min", tz="UTC")
    x = np.r_[np.random.default_rng(6).integers(0, 20, 300), np.full(300, 7)].astype(float)
    x[-1] = 8.0  # one unit after a long flat stretch
    s = pd.Series(x, index=idx)
    scores = create_detector("robust_bands").fit(s).score(s)
    assert scores.iloc[-1] <= 20  # was ~1e9 with a 1e-9 floor
    assert scale_floor(np.array([0.0, 0.0])) == 1e-9


def test_ensemble_combines_calibrated_members_and_validates() -> None:
    s = weekly_series(weeks=2)
    det = create_detector(
        "ensemble",
        members=[{"type": "seasonal"}, {"type": "level_shift", "params": {"long": 60}, "weight": 0.5}],
    ).fit(s.iloc[: 7 * 96])
    test = s.copy()
    test.iloc[10 * 96] -= 40
    members = det.member_scores(test)  # type: ignore[attr-defined]
    assert list(members.columns) == ["0:seasonal", "1:level_shift"]
    scores = det.score(test)
    np.testing.assert_allclose(scores.to_numpy(), members.max(axis=1).to_numpy())
    assert int(np.argmax(scores.to_numpy())) == 10 * 96
    assert det.expected(test)["expected"].notna().all()  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="weight"):
        create_detector("ensemble", members=[{"type": "seasonal", "weight": 0}]).fit(s)
    with pytest.raises(ConfigError, match="unknown detector"):
        create_detector("ensemble", members=[{"type": "nope"}]).fit(s)


def test_seasonal_rejects_bad_periods() -> None:
    with pytest.raises(ValidationError, match="period"):
        create_detector("seasonal", periods=["soon"]).fit(weekly_series(weeks=1))


@pytest.mark.shared
def test_detect_periods_on_a_binary_smd_column_does_not_crash(shared_datasets: Path) -> None:
    """Regression: SMD machine-1-2's column 29 is 0/1 and its ACF has only negative peaks."""
    from telewatch.bench.smd import load_machine

    train = load_machine(shared_datasets / "smd", "machine-1-2").train
    idx = pd.date_range("2024-01-01", periods=len(train), freq="1min", tz="UTC")
    assert detect_periods(pd.Series(train[:, 29], index=idx)) == []
