"""Forecast interval: a one-step-ahead forecaster's prediction band; score = distance in band units."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from telewatch.core.errors import ConfigError
from telewatch.core.series import MAD_TO_SIGMA, infer_step
from telewatch.detectors.bands import ExpectedBand, scale_floor
from telewatch.detectors.base import Detector
from telewatch.detectors.registry import register
from telewatch.detectors.seasonal import SeasonalProfiles, _as_periods, detect_periods

ENGINES = ("builtin", "prophet")


@register("forecast_interval")
class ForecastInterval(ExpectedBand, Detector):
    """``|x - forecast| / half_band``: 1 is on the band's edge, above 1 outside it.

    ``engine="builtin"``: robust Holt-Winters, updated one point at a time: level, damped trend and
    an additive seasonal profile (periods found automatically, see
    :func:`~telewatch.detectors.seasonal.detect_periods`), with each update's error clipped at
    ``clip`` scales (so a spike barely moves the forecast) and an exponentially weighted robust
    scale; the band is ``forecast ± band_sigma * scale``. ``engine="prophet"`` fits Prophet on the
    training data (needs the ``prophet`` extra: ``pip install 'telewatch[prophet]'``) and uses its
    prediction interval.

    >>> idx = pd.date_range("2024-01-01", periods=5 * 288, freq="5min")
    >>> x = 50 + 10 * np.sin(2 * np.pi * np.arange(idx.size) / 288)
    >>> s = pd.Series(x + np.random.default_rng(2).normal(0, 0.5, idx.size), index=idx)
    >>> det = ForecastInterval().fit(s.iloc[:3 * 288])
    >>> s.iloc[4 * 288] -= 8.0
    >>> scores = det.score(s)
    >>> int(np.argmax(scores)) == 4 * 288, bool(scores.iloc[3 * 288:].median() < 1.0)
    (True, True)
    """

    def __init__(
        self,
        engine: str = "builtin",
        periods: Sequence[str] | None = None,
        alpha: float = 0.1,
        beta: float = 0.01,
        gamma: float = 0.05,
        phi: float = 0.9,
        band_sigma: float = 3.0,
        clip: float = 3.0,
        scale_rate: float = 0.02,
        min_scale: float = 0.05,
    ) -> None:
        self.engine = engine
        self.periods = periods
        self.alpha = alpha
        self.beta = beta
        self.gamma = gamma
        self.phi = phi
        self.band_sigma = band_sigma
        self.clip = clip
        self.scale_rate = scale_rate
        self.min_scale = min_scale

    def _fit(self, series: pd.Series) -> None:
        if self.engine not in ENGINES:
            raise ConfigError(f"forecast_interval: engine must be one of {ENGINES}, got {self.engine!r}")
        s = series.dropna()
        x = s.to_numpy(dtype="float64")
        self.floor_ = scale_floor(x, share=self.min_scale)
        if self.engine == "prophet":
            self._fit_prophet(s)
            return
        given = _as_periods(self.periods)
        self.periods_ = given if given is not None else detect_periods(s)
        step = infer_step(pd.DatetimeIndex(s.index)) or pd.Timedelta("1min")
        self.profiles_ = SeasonalProfiles(self.periods_, step)
        if x.size and self.periods_:
            longest = int(max(self.periods_) / step)
            win = max(3, min(longest, x.size)) | 1
            trend = pd.Series(x).rolling(win, center=True, min_periods=1).median().to_numpy()
            self.profiles_.fit(pd.DatetimeIndex(s.index), x - trend)
        # the initial scale: robust spread of one-step changes of the deseasonalised series
        deseason = x - (self.profiles_.value(pd.DatetimeIndex(s.index)) if self.periods_ else 0.0)
        d = np.diff(deseason) if x.size > 1 else np.zeros(1)
        self.scale0_ = max(float(np.median(np.abs(d - np.median(d)))) * MAD_TO_SIGMA, self.floor_)

    def _fit_prophet(self, s: pd.Series) -> None:
        try:
            from prophet import Prophet
        except ImportError as exc:
            raise ConfigError(
                "forecast_interval: engine='prophet' needs the prophet extra (pip install 'telewatch[prophet]')"
            ) from exc
        frame = pd.DataFrame({"ds": pd.DatetimeIndex(s.index).tz_localize(None), "y": s.to_numpy()})
        model: Any = Prophet(interval_width=0.99, uncertainty_samples=200)
        model.fit(frame)
        self.prophet_ = model

    def _run(self, series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """One-step-ahead forecasts and band half-widths (causal)."""
        index = pd.DatetimeIndex(series.index)
        x = series.to_numpy(dtype="float64")
        n = x.size
        if self.engine == "prophet":
            out = self.prophet_.predict(pd.DataFrame({"ds": index.tz_localize(None)}))
            yhat = out["yhat"].to_numpy()
            half = np.maximum((out["yhat_upper"] - out["yhat_lower"]).to_numpy() / 2.0, self.floor_)
            return yhat, half
        forecast = np.full(n, np.nan)
        half = np.full(n, np.nan)
        if n == 0:
            return forecast, half
        seasonal_tables = [p.copy() for p in self.profiles_.profiles]
        slots = [self.profiles_.slots(index, k) for k in range(len(seasonal_tables))]
        level = np.nan
        trend = 0.0
        scale = self.scale0_
        a, b, g, phi = self.alpha, self.beta, self.gamma, self.phi
        k_clip, rate, z, floor = self.clip, self.scale_rate, self.band_sigma, self.floor_
        for t in range(n):
            seas = 0.0
            for tab, sl in zip(seasonal_tables, slots, strict=True):
                seas += tab[sl[t]]
            value = x[t]
            if np.isnan(level):
                if np.isnan(value):
                    continue
                level = value - seas
            f = level + phi * trend + seas
            forecast[t] = f
            half[t] = z * scale
            if np.isnan(value):
                level = level + phi * trend
                trend = phi * trend
                continue
            err = value - f
            lim = k_clip * scale
            c = lim if err > lim else (-lim if err < -lim else err)
            level = level + phi * trend + a * c
            trend = phi * trend + b * a * c
            for tab, sl in zip(seasonal_tables, slots, strict=True):
                tab[sl[t]] += g * (1.0 - a) * c / len(seasonal_tables)
            scale = max((1.0 - rate) * scale + rate * abs(c) * 1.25, floor)
        return forecast, half

    def _score(self, series: pd.Series) -> pd.Series:
        forecast, half = self._run(series)
        score = np.abs(series.to_numpy(dtype="float64") - forecast) / half
        return pd.Series(np.nan_to_num(score, nan=0.0), index=series.index)

    def _expected(self, series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        forecast, half = self._run(series)
        return forecast, forecast - half, forecast + half
