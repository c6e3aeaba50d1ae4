"""Predicted breaches, early-warning candidates and the incident outlook."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from telewatch.alerts.model import AlertCandidate
from telewatch.core.errors import ValidationError
from telewatch.forecast import create_forecaster
from telewatch.forecast.breach import (
    breach_candidates,
    check_breaches,
    exceed_probability,
    learned_band,
    predict_breaches,
)
from telewatch.forecast.outlook import incident_outlook
from telewatch.forecast.seasonal import RobustSeasonal


def daily_series(days: int, *, seed: int = 0, ramp_from: int | None = None, rate: float = 0.0) -> pd.Series:
    """Peak 80 at 12:00 UTC, trough 20, noise sd 1.5; optionally a ramp of ``rate`` a minute."""
    rng = np.random.default_rng(seed)
    n = days * 1440
    idx = pd.date_range("2024-03-04", periods=n, freq="1min", tz="UTC")
    t = np.arange(n)
    y = 50 + 30 * np.sin(2 * np.pi * (t / 1440 - 0.25)) + rng.normal(0, 1.5, n)
    if ramp_from is not None:
        y = y + np.clip(t - ramp_from, 0, None) * rate
    return pd.Series(y, index=idx, name="load")


def test_a_slow_ramp_is_warned_before_it_crosses_its_limit() -> None:
    # A leak-like ramp from 04:00 on day 8 (night trough, 20) climbing 0.35/min: 90 is crossed around 07:00.
    start = 7 * 1440 + 4 * 60
    y = daily_series(9, ramp_from=start, rate=0.35)
    crossing = y.index[int(np.argmax((y.rolling(5).median() > 90).to_numpy() & (np.arange(len(y)) > start)))]
    model = create_forecaster("robust_seasonal").fit(y[: start - 60])
    warned = []
    for at in pd.date_range(crossing - pd.Timedelta("90min"), crossing, freq="5min", inclusive="left"):
        history = y[y.index <= at]
        frame = model.predict("60min", history=history)
        check = check_breaches(
            frame, metric="load", last_value=float(history.iloc[-1]), upper=90.0, origin=at
        )
        if check.breaches:
            warned.append((at, check.breaches[0]))
    assert warned, "no early warning before the ramp crossed 90"
    first_at, first = warned[0]
    assert crossing - first_at >= pd.Timedelta("15min")
    assert first.direction == "upper"
    assert first.limit == 90.0
    assert first.probability >= 0.5
    # The predicted time is in the future and not far from the real crossing.
    assert first.eta > first_at
    assert abs(first.eta - crossing) <= pd.Timedelta("45min")
    # The last check before the crossing still warns (the warning was not resolved in between).
    assert warned[-1][0] >= crossing - pd.Timedelta("10min")


def test_no_warning_on_a_seasonal_peak_within_the_limit_or_the_band() -> None:
    y = daily_series(9, seed=4)
    model = create_forecaster("robust_seasonal").fit(y[: 7 * 1440])
    checks = 0
    for at in pd.date_range(y.index[7 * 1440], y.index[-61], freq="20min"):
        history = y[y.index <= at]
        frame = model.predict("60min", history=history)
        lo, hi = learned_band(model, pd.DatetimeIndex(frame.index))  # type: ignore[arg-type]
        static = check_breaches(
            frame, metric="load", last_value=float(history.iloc[-1]), upper=90.0, lower=10.0
        )
        band = check_breaches(
            frame, metric="load", last_value=float(history.iloc[-1]), upper=hi, lower=lo, limit_kind="band"
        )
        assert not static.breaches, (at, static.breaches)
        assert not band.breaches, (at, band.breaches)
        checks += 1
    assert checks >= 100  # two whole days, morning climbs and afternoon peaks included


def test_learned_band_follows_the_season() -> None:
    y = daily_series(5)
    model = RobustSeasonal().fit(y)
    idx = pd.DatetimeIndex(
        [pd.Timestamp("2024-03-09 12:00", tz="UTC"), pd.Timestamp("2024-03-10 00:00", tz="UTC")]
    )
    lo, hi = learned_band(model, idx, width=4.0)
    assert lo.iloc[0] < 80 < hi.iloc[0]
    assert lo.iloc[1] < 20 < hi.iloc[1]
    assert hi.iloc[0] - lo.iloc[0] == pytest.approx(8 * 1.5, rel=0.25)
    with pytest.raises(ValidationError, match="width"):
        learned_band(model, idx, width=0)


def test_exceed_probability_reads_the_intervals() -> None:
    idx = pd.date_range("2024-01-01 00:01", periods=3, freq="1min", tz="UTC")
    f = pd.DataFrame(
        {
            "mean": [10.0, 10.0, 10.0],
            "lower_80": [8.0] * 3,
            "upper_80": [12.0] * 3,
            "lower_95": [7.0] * 3,
            "upper_95": [13.0] * 3,
        },
        index=idx,
    )
    p = exceed_probability(f, np.array([10.0, 12.0, 13.0]), direction="upper")
    np.testing.assert_allclose(p, [0.5, 0.1, 0.025], atol=1e-9)
    q = exceed_probability(f, np.array([10.0, 8.0, 20.0]), direction="lower")
    assert q[0] == pytest.approx(0.5)
    assert q[1] == pytest.approx(0.1)
    assert q[2] > 0.99
    with pytest.raises(ValidationError, match="give an upper limit"):
        predict_breaches(f)
    with pytest.raises(ValidationError, match="min_probability"):
        predict_breaches(f, upper=11.0, min_probability=1.0)
    with pytest.raises(ValidationError, match="interval columns"):
        exceed_probability(f[["mean"]], 1.0, direction="upper")


def test_breach_candidates_fire_and_resolve() -> None:
    idx = pd.date_range("2024-01-01 00:01", periods=30, freq="1min", tz="UTC")
    rising = pd.DataFrame({"mean": np.linspace(80, 95, 30)}, index=idx)
    rising["lower_80"], rising["upper_80"] = rising["mean"] - 2, rising["mean"] + 2
    now = pd.Timestamp("2024-01-01 00:00", tz="UTC")
    firing = check_breaches(rising, metric="memory_percent", last_value=79.0, upper=90.0, origin=now)
    calm = check_breaches(rising - 20, metric="memory_percent", last_value=59.0, upper=90.0, origin=now)
    [fire] = breach_candidates([firing], now=now)
    [resolve] = breach_candidates([calm], now=now)
    assert isinstance(fire, AlertCandidate)
    assert fire.status == "firing"
    assert fire.key == resolve.key == "forecast:memory_percent:upper"
    assert resolve.status == "resolved"
    assert fire.upper == 90.0
    assert fire.expected is not None
    assert fire.expected >= 90.0
    assert fire.incident_type == "predicted_breach"
    assert 0.5 <= fire.score <= 1.0
    assert "rise above 90" in fire.related[0]
    # Already beyond: not a prediction, and the warning is left alone.
    beyond = check_breaches(rising, metric="memory_percent", last_value=93.0, upper=90.0, origin=now)
    assert beyond.already_beyond == ("upper",)
    assert not beyond.breaches
    assert breach_candidates([beyond], now=now) == []


def test_incident_outlook_rises_with_recent_anomalies_and_predicted_breaches() -> None:
    at = pd.Timestamp("2024-01-08 12:00", tz="UTC")
    quiet = incident_outlook("web", at=at, anomaly_starts=[at - pd.Timedelta(days=4)])
    assert quiet.level == "low"
    assert quiet.probability < 0.05
    assert "1 incident(s) in the last 7 days" in quiet.basis[0]
    busy_starts = [at - pd.Timedelta(minutes=m) for m in (20, 25, 100, 200, 300)]
    busy = incident_outlook("web", at=at, anomaly_starts=busy_starts)
    assert busy.probability > quiet.probability
    assert busy.incidents_recent == 4  # 20 and 25 minutes ago are one incident
    idx = pd.date_range(at + pd.Timedelta("1min"), periods=60, freq="1min")
    frame = pd.DataFrame({"mean": np.linspace(85, 99, 60)}, index=idx)
    frame["lower_80"], frame["upper_80"] = frame["mean"] - 1, frame["mean"] + 1
    breaches = predict_breaches(frame, upper=90.0, origin=at, metric="memory_percent")
    warned = incident_outlook("web", at=at, anomaly_starts=[], breaches=breaches)
    assert warned.level == "high"
    assert warned.probability_from_forecast > 0.9
    assert any("memory_percent will rise above 90" in line for line in warned.basis)
    assert "in the next hour" in warned.statement
