"""Seasonal naive: tomorrow looks like today (or next week like this week). The reference model."""

from __future__ import annotations

import numpy as np
import pandas as pd

from telewatch.core.errors import ValidationError
from telewatch.forecast.base import Forecaster, detect_periods, seasonal_steps
from telewatch.forecast.registry import register


@register("seasonal_naive")
class SeasonalNaive(Forecaster):
    """Repeat the value one season earlier: ``y(t + k) = y(t + k - m)``.

    ``period`` is the season (e.g. ``"1D"``, ``"7D"``); ``None`` finds it (weekly when the series
    shows a weekly cycle, else daily when it shows a daily one, else the last value is repeated).
    A missing value one season back falls back to two seasons back, then to the last value.

    >>> import numpy as np, pandas as pd
    >>> idx = pd.date_range("2024-01-01", periods=3 * 1440, freq="1min", tz="UTC")
    >>> y = pd.Series(np.sin(2 * np.pi * np.arange(3 * 1440) / 1440), index=idx)
    >>> f = SeasonalNaive().fit(y).predict("30min")
    >>> list(f.columns)
    ['mean', 'lower_80', 'upper_80', 'lower_95', 'upper_95']
    >>> bool(np.allclose(f["mean"], y.iloc[-1440:-1410].to_numpy()))
    True
    """

    def __init__(
        self, period: str | None = None, calibration_horizon: int = 60, calibration_origins: int = 40
    ) -> None:
        self.period = period
        self.calibration_horizon = calibration_horizon
        self.calibration_origins = calibration_origins

    def _fit(self, y: pd.Series) -> None:
        step = self.step_
        if self.period is not None:
            try:
                period = pd.Timedelta(self.period)
            except (TypeError, ValueError) as exc:
                raise ValidationError(f"seasonal_naive: period {self.period!r} is not a duration") from exc
            m = seasonal_steps(step, period)
            if m is None:
                raise ValidationError(
                    f"seasonal_naive: period {self.period} is not a whole number of {step} steps"
                )
            self.season_steps_ = m
            return
        periods = detect_periods(y, step)
        candidates = [seasonal_steps(step, p) for p in sorted(periods, reverse=True)]
        self.season_steps_ = next((m for m in candidates if m is not None), 1)

    def _forecast(self, y: pd.Series, h: int) -> np.ndarray:
        values = y.to_numpy(dtype="float64")
        n = values.size
        m = self.season_steps_
        valid = values[np.isfinite(values)]
        last = float(valid[-1]) if valid.size else np.nan
        if m <= 1:
            return np.full(h, last)
        k = np.arange(1, h + 1)
        out = np.full(h, np.nan)
        # One season back, then two, ... (k may exceed m: go back as many seasons as needed).
        for seasons in range(1, 4):
            src = n - 1 + k - seasons * m * np.ceil(k / m).astype(np.int64)
            ok = (src >= 0) & np.isnan(out)
            take = np.where(ok, src, 0)
            cand = values[take]
            out = np.where(ok & np.isfinite(cand), cand, out)
        return np.where(np.isfinite(out), out, last)
