"""Exponential smoothing (Holt-Winters, statsmodels) on a resampled trailing window.

Holt-Winters with a daily season of 1440 one-minute steps fits slowly, so the model works on buckets
(at most ``max_season`` per day, 10 minutes for a one-minute metric) over the last ``window`` of
history, then interpolates the bucket forecasts back to the metric's step. The smoothing parameters
are optimised once in ``fit``; forecasting from a new origin re-runs the smoothing with them fixed.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from telewatch.core.errors import ValidationError
from telewatch.forecast.base import DAY, Forecaster, detect_periods
from telewatch.forecast.registry import register


@register("ets")
class ExponentialSmoothingForecaster(Forecaster):
    """Additive damped trend + additive daily season (statsmodels ``ExponentialSmoothing``).

    * ``window``: trailing history fitted on (a duration, default 14 days).
    * ``max_season``: most buckets per day; the bucket is a whole number of steps.
    * ``seasonal``: ``None`` detects a daily cycle, ``True``/``False`` force it.

    >>> import numpy as np, pandas as pd
    >>> idx = pd.date_range("2024-01-01", periods=5 * 1440, freq="1min", tz="UTC")
    >>> y = pd.Series(50 + 10 * np.sin(2 * np.pi * np.arange(5 * 1440) / 1440), index=idx)
    >>> f = ExponentialSmoothingForecaster().fit(y).predict("30min")
    >>> truth = 50 + 10 * np.sin(2 * np.pi * np.arange(5 * 1440, 5 * 1440 + 30) / 1440)
    >>> bool(np.abs(f["mean"].to_numpy() - truth).max() < 1.0)
    True
    """

    def __init__(
        self,
        window: str = "14D",
        max_season: int = 144,
        seasonal: bool | None = None,
        damped: bool = True,
        calibration_horizon: int = 60,
        calibration_origins: int = 24,
    ) -> None:
        self.window = window
        self.max_season = max_season
        self.seasonal = seasonal
        self.damped = damped
        self.calibration_horizon = calibration_horizon
        self.calibration_origins = calibration_origins

    def _window(self) -> pd.Timedelta:
        try:
            span = pd.Timedelta(self.window)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"ets: window {self.window!r} is not a duration") from exc
        if span <= pd.Timedelta(0):
            raise ValidationError(f"ets: window must be positive, got {self.window!r}")
        return span

    def _buckets(self, y: pd.Series) -> pd.Series:
        """Means of ``bucket_`` steps, aligned so that the last bucket ends at y's last point."""
        y = y[y.index > y.index[-1] - self._window()]
        b = self.bucket_steps_
        values = y.to_numpy(dtype="float64")
        n = values.size - values.size % b if values.size >= b else values.size
        values = values[values.size - n :]
        idx = pd.DatetimeIndex(y.index[y.index.size - n :])
        if b > 1 and n >= b:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN buckets
                means = np.nanmean(values.reshape(-1, b), axis=1)
            ends = idx[b - 1 :: b]
            out = pd.Series(means, index=ends)
        else:
            out = pd.Series(values, index=idx)
        return out.interpolate(limit_direction="both")

    def _model(self, x: pd.Series) -> object:
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        use_season = self.season_ is not None and x.size >= 2 * int(self.season_) + 2
        return ExponentialSmoothing(
            x.to_numpy(dtype="float64"),
            trend="add",
            damped_trend=self.damped,
            seasonal="add" if use_season else None,
            seasonal_periods=self.season_ if use_season else None,
            initialization_method="heuristic" if use_season else "estimated",
        )

    def _fit(self, y: pd.Series) -> None:
        step = self.step_
        season_on = self.seasonal
        if season_on is None:
            season_on = DAY in detect_periods(y, step)
        per_day = DAY / step
        self.bucket_steps_ = max(1, math.ceil(per_day / self.max_season)) if season_on else 1
        bucket = step * self.bucket_steps_
        self.season_ = round(DAY / bucket) if season_on and (DAY / bucket) >= 2 else None
        x = self._buckets(y)
        if x.size < 10:
            raise ValidationError(f"ets: need at least 10 buckets of {bucket} to fit, got {x.size}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = self._model(x).fit()  # type: ignore[attr-defined]
        p = res.params
        self.params_ = {
            "smoothing_level": float(p["smoothing_level"]),
            "smoothing_trend": float(p.get("smoothing_trend") or 0.0),
            "smoothing_seasonal": float(p.get("smoothing_seasonal") or 0.0),
            "damping_trend": float(p.get("damping_trend") or 0.98),
        }

    def _forecast(self, y: pd.Series, h: int) -> np.ndarray:
        x = self._buckets(y)
        b = self.bucket_steps_
        hb = math.ceil(h / b) + 1
        params = dict(self.params_)
        model = self._model(x)
        if getattr(model, "seasonal", None) is None:
            params.pop("smoothing_seasonal")
        if not self.damped:
            params.pop("damping_trend")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = model.fit(optimized=False, **params)  # type: ignore[attr-defined]
            fc = np.asarray(res.forecast(hb), dtype="float64")
            fitted_last = float(np.asarray(res.fittedvalues)[-1])
        if b == 1:
            return fc[:h]
        # Bucket j (1..hb) covers steps (j-1)*b+1 .. j*b after the origin: its centre is at (j-0.5)*b - 0.5.
        centres = (np.arange(1, hb + 1) - 0.5) * b - 0.5
        last_centre = -0.5 * b + 0.5  # the last observed bucket, ending at the origin
        last_value = float(x.iloc[-1]) if np.isfinite(x.iloc[-1]) else fitted_last
        k = np.arange(1, h + 1, dtype="float64")
        return np.asarray(np.interp(k, np.r_[last_centre, centres], np.r_[last_value, fc]), dtype="float64")
