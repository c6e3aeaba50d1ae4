"""Prophet (when the ``prophet`` extra is installed): trend + daily/weekly Fourier seasonality.

Prophet is imported only when this model is fitted; without it, :func:`create_forecaster` still
builds the object and ``fit`` raises a :class:`~telewatch.core.errors.ConfigError` saying how to
install it. For speed the history is averaged into buckets (``resample``, default 10 minutes) and
Prophet's own interval sampling is switched off (``uncertainty_samples=0``): the intervals come from
telewatch's holdout calibration like every other model's.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from telewatch.core.errors import ConfigError, ValidationError
from telewatch.forecast.base import DAY, WEEK, Forecaster, detect_periods
from telewatch.forecast.registry import register


def _import_prophet() -> Any:
    try:
        from prophet import Prophet
    except ImportError as exc:
        raise ConfigError(
            "forecast model 'prophet' needs the prophet package: pip install 'telewatch[prophet]'"
            " (or pick another model: robust_seasonal, ets, seasonal_naive)"
        ) from exc
    for name in ("prophet", "cmdstanpy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return Prophet


@register("prophet")
class ProphetForecaster(Forecaster):
    """Prophet on a bucketed trailing window; seasonalities as detected (or forced by ``periods``)."""

    def __init__(
        self,
        resample: str = "10min",
        window: str = "28D",
        periods: list[str] | None = None,
        calibration_horizon: int = 60,
        calibration_origins: int = 24,
    ) -> None:
        self.resample = resample
        self.window = window
        self.periods = periods
        self.calibration_horizon = calibration_horizon
        self.calibration_origins = calibration_origins

    def _fit(self, y: pd.Series) -> None:
        prophet_cls = _import_prophet()
        try:
            bucket = max(pd.Timedelta(self.resample), self.step_)
            window = pd.Timedelta(self.window)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"prophet: resample/window must be durations ({exc})") from exc
        y = y[y.index > y.index[-1] - window]
        x = y.resample(bucket).mean().dropna() if bucket > self.step_ else y.dropna()
        if x.size < 10:
            raise ValidationError(f"prophet: need at least 10 points of {bucket} to fit, got {x.size}")
        periods = (
            detect_periods(y, self.step_) if self.periods is None else [pd.Timedelta(p) for p in self.periods]
        )
        model = prophet_cls(
            daily_seasonality=DAY in periods,
            weekly_seasonality=WEEK in periods,
            yearly_seasonality=False,
            uncertainty_samples=0,
        )
        frame = pd.DataFrame(
            {"ds": pd.DatetimeIndex(x.index).tz_convert("UTC").tz_localize(None), "y": x.to_numpy()}
        )
        model.fit(frame)
        self.model_ = model

    def _forecast(self, y: pd.Series, h: int) -> np.ndarray:
        last = pd.Timestamp(y.index[-1]).tz_convert("UTC").tz_localize(None)
        future = pd.DataFrame({"ds": last + self.step_ * np.arange(1, h + 1)})
        return np.asarray(self.model_.predict(future)["yhat"].to_numpy(), dtype="float64")
