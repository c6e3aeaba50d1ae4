"""Robust seasonal forecaster: robust trend + daily/hour-of-week profile + damped local trend.

The fast built-in model, and the same baseline the seasonal detector uses: the seasonal profile is
learned with medians (so past incidents barely move it), the level and slope at the forecast origin
with medians of the recent deseasonalised values (so a spike does not tilt the forecast).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from telewatch.core.errors import ValidationError
from telewatch.core.series import MAD_TO_SIGMA
from telewatch.forecast.base import DAY, WEEK, Forecaster, detect_periods, phase_of, seasonal_steps
from telewatch.forecast.registry import register

_HOUR = pd.Timedelta(hours=1)


def _circular_smooth(profile: np.ndarray, width: int) -> np.ndarray:
    if width <= 1 or profile.size < 3:
        return profile
    width = min(width, profile.size)
    pad = width // 2
    ext = np.r_[profile[-pad:], profile, profile[: width - 1 - pad]] if pad else profile
    kernel = np.ones(width) / width
    return np.convolve(ext, kernel, mode="valid")[: profile.size]


def _fill_circular(profile: np.ndarray) -> np.ndarray:
    """Fill NaN cells by circular linear interpolation (all NaN -> zeros)."""
    ok = np.isfinite(profile)
    if ok.all():
        return profile
    if not ok.any():
        return np.zeros_like(profile)
    n = profile.size
    x = np.flatnonzero(ok)
    xp = np.r_[x - n, x, x + n]
    fp = np.r_[profile[ok], profile[ok], profile[ok]]
    return np.asarray(np.interp(np.arange(n), xp, fp), dtype="float64")


def _group_median(keys: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    ok = np.isfinite(values)
    med = pd.Series(values[ok]).groupby(keys[ok]).median()
    out = np.full(size, np.nan)
    out[med.index.to_numpy(dtype=np.int64)] = med.to_numpy()
    return out


def _resistant_line(d: np.ndarray, pos: np.ndarray, shrink: float = 2.0) -> tuple[float, bool, float]:
    """Tukey's resistant line through ``d`` at positions ``pos`` (0 = the origin).

    Returns ``(slope, is_line, level at the origin)``. The slope comes from the medians of the first
    and last thirds; it is shrunk towards zero by its standard error (a slope within ``shrink`` standard errors is
    none). When the middle third's median sits off that line by more than its noise the window holds
    a step (an incident starting or ending) or a bend, not a trend: ``is_line`` is False and the
    slope is the smaller of the two half slopes (zero when they disagree in sign).
    """
    m = max(1, d.size // 3)
    parts = [slice(0, m), slice(m, d.size - m), slice(d.size - m, d.size)]
    centres = [float(np.mean(pos[p])) if pos[p].size else 0.0 for p in parts]
    medians = [float(np.median(d[p])) if d[p].size else float(np.median(d)) for p in parts]
    if d.size < 6 or centres[2] - centres[0] <= 0:
        return 0.0, False, medians[2]
    slope = (medians[2] - medians[0]) / (centres[2] - centres[0])
    resid = d - (medians[0] + slope * (pos - centres[0]))
    sigma = float(np.median(np.abs(resid - np.median(resid)))) * MAD_TO_SIGMA
    # Neighbouring minutes move together: fewer independent points than it seems (AR(1) correction).
    r1 = 0.0
    centred = resid - resid.mean()
    denom = float(np.dot(centred, centred))
    if resid.size > 3 and denom > 0:
        r1 = float(np.clip(np.dot(centred[1:], centred[:-1]) / denom, 0.0, 0.9))
    se_median = 1.2533 * sigma / np.sqrt(m) * np.sqrt((1.0 + r1) / (1.0 - r1))
    bend = medians[1] - (medians[0] + slope * (centres[1] - centres[0]))
    is_line = abs(bend) <= 2.0 * se_median * np.sqrt(1.5)
    if not is_line:
        s1 = (medians[1] - medians[0]) / max(centres[1] - centres[0], 1e-9)
        s2 = (medians[2] - medians[1]) / max(centres[2] - centres[1], 1e-9)
        slope = float(np.sign(s2) * min(abs(s1), abs(s2))) if np.sign(s1) == np.sign(s2) else 0.0
    se = se_median * np.sqrt(2.0) / (centres[2] - centres[0])
    slope = float(np.sign(slope) * max(0.0, abs(slope) - shrink * se))
    return slope, is_line, medians[2] + slope * (0.0 - centres[2])


@register("robust_seasonal")
class RobustSeasonal(Forecaster):
    """Robust trend + daily profile + hour-of-week adjustment; a damped local trend carries it forward.

    * ``periods``: seasonal periods among ``"1D"`` and ``"7D"``; ``None`` detects them.
    * ``trend_window``: recent points (deseasonalised) whose medians give the level and the slope at
      the forecast origin; a slope within its own noise is shrunk to zero.
    * ``damping``: per-step damping of the slope (1.0 = straight line).
    * ``smooth``: width in steps of the circular moving average over the daily profile (``None``:
      a 96th of a day, 15 minutes at a 1-minute step).

    >>> import numpy as np, pandas as pd
    >>> idx = pd.date_range("2024-01-01", periods=4 * 1440, freq="1min", tz="UTC")
    >>> rng = np.random.default_rng(0)
    >>> y = pd.Series(10 * np.sin(2 * np.pi * np.arange(4 * 1440) / 1440) + rng.normal(0, 1, 4 * 1440), index=idx)
    >>> model = RobustSeasonal().fit(y)
    >>> model.periods_
    [Timedelta('1 days 00:00:00')]
    >>> f = model.predict("60min")
    >>> truth = 10 * np.sin(2 * np.pi * np.arange(4 * 1440, 4 * 1440 + 60) / 1440)
    >>> bool(np.abs(f["mean"].to_numpy() - truth).mean() < 1.0)
    True
    >>> bool((f["lower_95"] < f["mean"]).all() and (f["mean"] < f["upper_95"]).all())
    True
    """

    def __init__(
        self,
        periods: list[str] | None = None,
        trend_window: int = 60,
        damping: float = 0.995,
        smooth: int | None = None,
        calibration_horizon: int = 60,
        calibration_origins: int = 40,
    ) -> None:
        self.periods = periods
        self.trend_window = trend_window
        self.damping = damping
        self.smooth = smooth
        self.calibration_horizon = calibration_horizon
        self.calibration_origins = calibration_origins

    # -- fitting ------------------------------------------------------------------------------------
    def _periods(self, y: pd.Series) -> list[pd.Timedelta]:
        if self.periods is None:
            return detect_periods(y, self.step_)
        out = []
        for text in self.periods:
            try:
                period = pd.Timedelta(text)
            except (TypeError, ValueError) as exc:
                raise ValidationError(f"robust_seasonal: period {text!r} is not a duration") from exc
            if period not in (DAY, WEEK):
                raise ValidationError(f"robust_seasonal: periods must be 1D and/or 7D, got {text!r}")
            out.append(period)
        return sorted(set(out))

    def _fit(self, y: pd.Series) -> None:
        if not 0.0 < self.damping <= 1.0:
            raise ValidationError(f"robust_seasonal: damping must lie in (0, 1], got {self.damping}")
        if int(self.trend_window) < 3:
            raise ValidationError(
                f"robust_seasonal: trend_window must be at least 3, got {self.trend_window}"
            )
        step = self.step_
        periods = self._periods(y)
        self.periods_ = periods
        self.day_steps_ = seasonal_steps(step, DAY) if DAY in periods else None
        self.weekly_ = WEEK in periods and step <= _HOUR
        self.profile_ = np.zeros(self.day_steps_ or 1)
        self.week_bins_ = 168
        self.week_adj_ = np.zeros(self.week_bins_)
        values = y.to_numpy(dtype="float64")
        idx = pd.DatetimeIndex(y.index)
        if self.day_steps_ is None and not self.weekly_:
            self._finish(values, idx, np.zeros_like(values))
            return
        day = self.day_steps_ or 1
        window = day * (7 if self.weekly_ else 1)
        trend = self._rolling_median(values, window)
        seasonal = np.zeros_like(values)
        for _ in range(2):
            resid = values - trend
            self._learn_profiles(resid, idx)
            seasonal = self._seasonal(idx)
            trend = self._rolling_median(values - seasonal, day)
        self._finish(values, idx, seasonal, trend)

    @staticmethod
    def _rolling_median(values: np.ndarray, window: int) -> np.ndarray:
        window = max(3, min(window, values.size))
        med = pd.Series(values).rolling(window, center=True, min_periods=max(1, window // 4)).median()
        return np.asarray(med.interpolate(limit_direction="both").to_numpy(dtype="float64"))

    def _learn_profiles(self, resid: np.ndarray, idx: pd.DatetimeIndex) -> None:
        step = self.step_
        if self.day_steps_ is not None:
            phase = phase_of(idx, self.day_steps_, step)
            prof = _fill_circular(_group_median(phase, resid, self.day_steps_))
            width = self.smooth if self.smooth is not None else max(1, self.day_steps_ // 96)
            prof = _circular_smooth(prof, int(width))
            self.profile_ = prof - float(np.mean(prof))
            resid = resid - self.profile_[phase]
        if self.weekly_:
            bins = self._week_bin(idx)
            adj = _fill_circular(_group_median(bins, resid, self.week_bins_))
            adj = _circular_smooth(adj, 3)
            self.week_adj_ = adj - float(np.mean(adj))

    def _week_bin(self, idx: pd.DatetimeIndex) -> np.ndarray:
        i8 = pd.DatetimeIndex(idx).as_unit("ns").asi8
        return np.asarray((i8 // _HOUR.value) % self.week_bins_, dtype=np.int64)

    def _finish(
        self, values: np.ndarray, idx: pd.DatetimeIndex, seasonal: np.ndarray, trend: np.ndarray | None = None
    ) -> None:
        deseason = values - seasonal
        base = trend if trend is not None else self._rolling_median(deseason, int(self.trend_window))
        resid = deseason - base
        resid = resid[np.isfinite(resid)]
        scale = float(np.median(np.abs(resid - np.median(resid)))) * MAD_TO_SIGMA if resid.size else 0.0
        if scale == 0.0 and resid.size:
            scale = float(np.std(resid))
        self.resid_scale_ = scale
        last_day = deseason[-(self.day_steps_ or int(self.trend_window)) :]
        last_day = last_day[np.isfinite(last_day)]
        self.level_ = float(np.median(last_day)) if last_day.size else float(np.nanmedian(values))

    # -- components ---------------------------------------------------------------------------------
    def _seasonal(self, idx: pd.DatetimeIndex) -> np.ndarray:
        out = np.zeros(len(idx))
        day_steps: int | None = getattr(self, "day_steps_", None)
        if day_steps is not None:
            out += self.profile_[phase_of(idx, day_steps, self.step_)]
        if getattr(self, "weekly_", False):
            out += self.week_adj_[self._week_bin(idx)]
        return out

    def seasonal_component(self, index: pd.DatetimeIndex) -> np.ndarray:
        """The learned daily + weekly component at ``index`` (zero-mean)."""
        return self._seasonal(pd.DatetimeIndex(index))

    def normal_band(self, index: pd.DatetimeIndex, *, width: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
        """The learned normal band at ``index``: recent level + seasonal profile ± ``width`` robust
        standard deviations of the residual (the band a metric without a static limit is held to)."""
        centre = self.level_ + self._seasonal(pd.DatetimeIndex(index))
        half = width * max(self.resid_scale_, 1e-9)
        return centre - half, centre + half

    # -- forecasting --------------------------------------------------------------------------------
    def _level_slope(self, y: pd.Series) -> tuple[float, float]:
        w = int(self.trend_window)
        tail = y.iloc[-w:]
        d = tail.to_numpy(dtype="float64") - self._seasonal(pd.DatetimeIndex(tail.index))
        pos = np.arange(d.size, dtype="float64") - (d.size - 1)  # 0 at the origin
        ok = np.isfinite(d)
        if ok.sum() < 3:
            full = y.to_numpy(dtype="float64") - self._seasonal(pd.DatetimeIndex(y.index))
            full = full[np.isfinite(full)]
            return (float(full[-1]) if full.size else self.level_), 0.0
        d, pos = d[ok], pos[ok]
        # Two scales: the whole window (steady) and its last half (quick to see a ramp begin).
        long_fit = _resistant_line(d, pos)
        half = d.size // 2
        short_fit = _resistant_line(d[half:], pos[half:]) if d.size - half >= 6 else long_fit
        # The whole window decides when it is a straight line; when it bends (a ramp that just began,
        # or a step), the last half speaks if it is a straight line itself.
        if long_fit[1] or not short_fit[1]:
            return long_fit[2], long_fit[0]
        return short_fit[2], short_fit[0]

    def _forecast(self, y: pd.Series, h: int) -> np.ndarray:
        level, slope = self._level_slope(y)
        last = pd.Timestamp(y.index[-1]).as_unit("ns").value
        future = pd.DatetimeIndex(
            last + int(self.step_.value) * np.arange(1, h + 1, dtype=np.int64), tz="UTC"
        )
        phi = float(self.damping)
        k = np.arange(1, h + 1, dtype="float64")
        damped = k if phi >= 1.0 else phi * (1.0 - phi**k) / (1.0 - phi)
        return np.asarray(level + slope * damped + self._seasonal(future), dtype="float64")
