"""Forecasters: the contract, interval coverage, period detection, and the registry."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

from telewatch.core.errors import ConfigError, ValidationError
from telewatch.forecast import NotFittedError, available_forecasters, create_forecaster
from telewatch.forecast.base import DAY, WEEK, detect_periods, parse_horizon, regularize

HAS_PROPHET = importlib.util.find_spec("prophet") is not None
FAST_MODELS = ["seasonal_naive", "robust_seasonal", "ets"]


def seasonal_series(days: int = 6, *, seed: int = 0, noise: float = 1.5, weekly: bool = False) -> pd.Series:
    rng = np.random.default_rng(seed)
    n = days * 1440
    idx = pd.date_range("2024-03-04", periods=n, freq="1min", tz="UTC")
    t = np.arange(n)
    y = 50 + 20 * np.sin(2 * np.pi * (t / 1440 - 0.25))
    if weekly:
        y = y * np.where(idx.day_of_week >= 5, 0.7, 1.0)
    eps = rng.normal(0, noise, n)
    ar = np.empty(n)
    ar[0] = eps[0]
    for i in range(1, n):  # AR(1) noise: neighbouring minutes move together, as real metrics do
        ar[i] = 0.6 * ar[i - 1] + eps[i]
    return pd.Series(y + ar, index=idx, name="synthetic")


@pytest.mark.parametrize("model", FAST_MODELS)
def test_contract_frame_shape_and_order(model: str) -> None:
    y = seasonal_series(4)
    f = create_forecaster(model).fit(y).predict("60min")
    assert list(f.columns) == ["mean", "lower_80", "upper_80", "lower_95", "upper_95"]
    assert len(f) == 60
    assert f.index[0] == y.index[-1] + pd.Timedelta("1min")
    assert (pd.DatetimeIndex(f.index).to_series().diff().dropna() == pd.Timedelta("1min")).all()
    assert str(f.index.tz) == "UTC"
    assert np.isfinite(f.to_numpy()).all()
    assert (f["lower_95"] <= f["lower_80"]).all()
    assert (f["lower_80"] <= f["mean"]).all()
    assert (f["mean"] <= f["upper_80"]).all()
    assert (f["upper_80"] <= f["upper_95"]).all()
    # A forecast for 12 steps is the first 12 of the 60-step one (same origin, same parameters).
    short = create_forecaster(model).fit(y).predict(12, levels=(0.5,))
    assert list(short.columns) == ["mean", "lower_50", "upper_50"]
    np.testing.assert_allclose(short["mean"].to_numpy(), f["mean"].to_numpy()[:12], rtol=1e-6)


@pytest.mark.parametrize("model", ["seasonal_naive", "robust_seasonal"])
def test_intervals_cover_their_nominal_share(model: str) -> None:
    """Rolling origins over three unseen days: the 80 % and 95 % intervals hold about that share."""
    y = seasonal_series(10, seed=3)
    train = y[: 7 * 1440]
    forecaster = create_forecaster(model).fit(train)
    inside = {"80": 0, "95": 0}
    total = 0
    for origin in range(7 * 1440, 10 * 1440 - 60, 97):
        frame = forecaster.predict(60, history=y.iloc[:origin])
        truth = y.iloc[origin : origin + 60].to_numpy()
        for lv in inside:
            inside[lv] += int(((truth >= frame[f"lower_{lv}"]) & (truth <= frame[f"upper_{lv}"])).sum())
        total += truth.size
    assert 0.70 <= inside["80"] / total <= 0.90, inside["80"] / total
    assert 0.88 <= inside["95"] / total <= 0.99, inside["95"] / total


def test_robust_seasonal_beats_seasonal_naive_on_a_seasonal_series() -> None:
    y = seasonal_series(10, seed=5)
    errors = {}
    for model in ("seasonal_naive", "robust_seasonal"):
        f = create_forecaster(model).fit(y[: 7 * 1440])
        err = []
        for origin in range(7 * 1440, 10 * 1440 - 60, 180):
            pred = f.predict(60, history=y.iloc[:origin])["mean"].to_numpy()
            err.append(np.abs(pred - y.iloc[origin : origin + 60].to_numpy()).mean())
        errors[model] = float(np.mean(err))
    assert errors["robust_seasonal"] < 0.9 * errors["seasonal_naive"], errors


def test_robust_seasonal_follows_a_trend_and_learns_a_weekly_cycle() -> None:
    y = seasonal_series(21, weekly=True, noise=0.5)
    model = create_forecaster("robust_seasonal").fit(y)
    assert model.periods_ == [DAY, WEEK]  # type: ignore[attr-defined]
    # Friday 12:00 vs Saturday 12:00 (weekend 30 % lower): the forecast knows.
    friday = y[(y.index.day_of_week == 4) & (y.index.hour == 12)].mean()
    saturday = y[(y.index.day_of_week == 5) & (y.index.hour == 12)].mean()
    seas = model.seasonal_component(  # type: ignore[attr-defined]
        pd.DatetimeIndex(
            [pd.Timestamp("2024-03-22 12:00", tz="UTC"), pd.Timestamp("2024-03-23 12:00", tz="UTC")]
        )
    )
    assert seas[0] - seas[1] == pytest.approx(friday - saturday, rel=0.15)
    # A straight ramp (no season) is carried forward.
    idx = pd.date_range("2024-01-01", periods=600, freq="1min", tz="UTC")
    ramp = pd.Series(np.arange(600) * 0.5 + np.random.default_rng(1).normal(0, 0.3, 600), index=idx)
    f = create_forecaster("robust_seasonal", damping=1.0).fit(ramp).predict(30)
    assert f["mean"].iloc[-1] == pytest.approx(0.5 * 629, abs=3.0)


def test_period_detection() -> None:
    assert detect_periods(seasonal_series(21, weekly=True), pd.Timedelta("1min")) == [DAY, WEEK]
    assert detect_periods(seasonal_series(3), pd.Timedelta("1min")) == [DAY]
    idx = pd.date_range("2024-01-01", periods=5 * 1440, freq="1min", tz="UTC")
    noise = pd.Series(np.random.default_rng(0).normal(size=idx.size), index=idx)
    assert detect_periods(noise, pd.Timedelta("1min")) == []
    # Without a season the seasonal naive repeats the last value.
    f = create_forecaster("seasonal_naive").fit(noise).predict(5)
    assert (f["mean"] == noise.iloc[-1]).all()


def test_irregular_and_gappy_input_is_put_on_the_grid() -> None:
    y = seasonal_series(3)
    gappy = y.drop(y.index[1000:1100])  # a collector outage
    gappy.iloc[5] = np.nan
    f = create_forecaster("robust_seasonal").fit(gappy).predict("30min")
    assert len(f) == 30
    assert np.isfinite(f.to_numpy()).all()
    idx = pd.to_datetime(["2024-01-01 00:00:00", "2024-01-01 00:01:02", "2024-01-01 00:01:58"], utc=True)
    grid = regularize(pd.Series([1.0, 2.0, 3.0], index=idx), pd.Timedelta("1min"))
    assert grid.tolist() == [1.0, 2.0, 3.0]
    assert grid.index[-1] == idx[-1]


def test_bad_input_gets_clear_errors() -> None:
    y = seasonal_series(3)
    with pytest.raises(NotFittedError, match="fit"):
        create_forecaster("robust_seasonal").predict(10)
    model = create_forecaster("robust_seasonal").fit(y)
    with pytest.raises(ValidationError, match="horizon"):
        model.predict("soon")
    with pytest.raises(ValidationError, match="horizon"):
        model.predict(0)
    with pytest.raises(ValidationError, match="levels"):
        model.predict(10, levels=(0.8, 1.5))
    with pytest.raises(ConfigError, match=r"unknown forecast model 'arima'.*robust_seasonal"):
        create_forecaster("arima")
    with pytest.raises(ConfigError, match="forecast model 'ets'"):
        create_forecaster("ets", nonsense=1)
    with pytest.raises(ValidationError, match="at least 3 values"):
        create_forecaster("seasonal_naive").fit(y.iloc[:2])
    with pytest.raises(ValidationError, match="period"):
        create_forecaster("robust_seasonal", periods=["3h"]).fit(y)
    assert parse_horizon("1h", pd.Timedelta("5min")) == 12


def test_registry_lists_the_models_and_clone_keeps_parameters() -> None:
    assert {"seasonal_naive", "robust_seasonal", "ets", "prophet"} <= set(available_forecasters())
    model = create_forecaster("robust_seasonal", trend_window=90)
    twin = model.clone()
    assert twin.get_params() == model.get_params()
    assert twin is not model
    assert "trend_window=90" in repr(twin)


def test_prophet_is_optional() -> None:
    y = seasonal_series(3)
    model = create_forecaster("prophet")
    if HAS_PROPHET:
        f = model.fit(y).predict("30min")
        assert len(f) == 30
        assert (f["lower_80"] <= f["upper_80"]).all()
    else:
        with pytest.raises(ConfigError, match=r"pip install 'telewatch\[prophet\]'"):
            model.fit(y)
