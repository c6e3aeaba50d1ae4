"""The forecaster contract.

A forecaster learns a metric's behaviour with :meth:`Forecaster.fit` and predicts the next
``horizon`` with :meth:`Forecaster.predict`: a frame indexed by the future timestamps at the
metric's step, with the point forecast ``mean`` and, per interval level, ``lower_<pct>`` and
``upper_<pct>`` (``lower_80``, ``upper_80``, ``lower_95``, ``upper_95`` by default).

Intervals are *calibrated on a holdout* (split conformal prediction, rolling origins): ``fit`` first
fits the model on all but the last part of the history, forecasts ``calibration_horizon`` steps from
``calibration_origins`` origins inside that last part, and keeps the signed errors by lead time. An
interval at level ``L`` is the point forecast plus the ``(1-L)/2`` and ``(1+L)/2`` quantiles of the
errors at that lead (pooled with neighbouring leads), so it covers about its nominal share whatever
the model's own idea of its uncertainty. The model is then refitted on the whole history.

A subclass implements two hooks on a *regular* series (one row per step, NaN where missing):
``_fit(y)`` learns parameters; ``_forecast(y, h)`` returns the ``h`` point forecasts after ``y``'s
last timestamp using the fitted parameters but conditioning on ``y`` (the history up to the origin).

Hyper-parameters are stored under their own names by ``__init__``; fitted state ends in ``_``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar, Self

import numpy as np
import pandas as pd

from telewatch.core.errors import ValidationError
from telewatch.core.params import Params
from telewatch.core.series import MAD_TO_SIGMA, infer_step, validate_series

DEFAULT_LEVELS: tuple[float, ...] = (0.8, 0.95)
DAY = pd.Timedelta(days=1)
WEEK = pd.Timedelta(days=7)


class NotFittedError(ValidationError):
    """``predict`` was called before ``fit``."""


def level_name(level: float) -> str:
    """The column suffix of an interval level: ``0.8 -> '80'``, ``0.975 -> '97.5'``.

    >>> level_name(0.8), level_name(0.95), level_name(0.975)
    ('80', '95', '97.5')
    """
    return f"{round(level * 100, 6):g}"


def parse_horizon(horizon: int | str | pd.Timedelta, step: pd.Timedelta) -> int:
    """A horizon as a number of steps: an int is steps, a duration is rounded up to whole steps.

    >>> parse_horizon("60min", pd.Timedelta("1min")), parse_horizon("1h", pd.Timedelta("5min"))
    (60, 12)
    >>> parse_horizon(7, pd.Timedelta("1min"))
    7
    """
    if isinstance(horizon, bool):
        raise ValidationError(f"horizon: expected steps or a duration, got {horizon!r}")
    if isinstance(horizon, int | np.integer):
        steps = int(horizon)
    else:
        try:
            span = pd.Timedelta(horizon)
        except (TypeError, ValueError) as exc:
            raise ValidationError(
                f"horizon: {horizon!r} is neither a number of steps nor a duration (e.g. 60min, 2h)"
            ) from exc
        if span is pd.NaT:
            raise ValidationError(f"horizon: {horizon!r} is not a duration")
        steps = math.ceil(span / step)
    if steps < 1:
        raise ValidationError(f"horizon: must be at least one step, got {horizon!r}")
    if steps > 100_000:
        raise ValidationError(f"horizon: {steps} steps is too far ahead (at most 100000)")
    return steps


def regularize(series: pd.Series, step: pd.Timedelta) -> pd.Series:
    """Put a validated series on a regular grid of ``step`` ending at its last timestamp.

    Points are moved to the nearest grid time (several in one cell are averaged); cells without a
    point are NaN. A series already regular is returned as is.

    >>> idx = pd.to_datetime(["2024-01-01 00:00", "2024-01-01 00:01", "2024-01-01 00:04"], utc=True)
    >>> regularize(pd.Series([1.0, 2.0, 3.0], index=idx), pd.Timedelta("1min")).tolist()
    [1.0, 2.0, nan, nan, 3.0]
    """
    if series.empty:
        return series
    idx = pd.DatetimeIndex(series.index).as_unit("ns")
    i8 = idx.asi8
    step_ns = int(step.value)
    diffs = np.diff(i8)
    if diffs.size == 0 or bool((diffs == step_ns).all()):
        out = series.copy()
        out.index = idx
        return out
    last = int(i8[-1])
    pos = np.rint((i8 - last) / step_ns).astype(np.int64)  # <= 0
    n = int(-pos.min()) + 1
    sums = np.zeros(n)
    counts = np.zeros(n)
    vals = series.to_numpy(dtype="float64")
    ok = ~np.isnan(vals)
    np.add.at(sums, pos[ok] + n - 1, vals[ok])
    np.add.at(counts, pos[ok] + n - 1, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    grid = pd.DatetimeIndex(last + step_ns * np.arange(-(n - 1), 1, dtype=np.int64), tz="UTC")
    return pd.Series(values, index=grid, name=series.name)


def seasonal_steps(step: pd.Timedelta, period: pd.Timedelta) -> int | None:
    """How many steps make one ``period`` (None when the step does not divide it or it is < 2).

    >>> seasonal_steps(pd.Timedelta("1min"), DAY), seasonal_steps(pd.Timedelta("7min"), DAY)
    (1440, None)
    """
    if step <= pd.Timedelta(0):
        return None
    ratio = period / step
    if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 2:
        return None
    return round(ratio)


def phase_of(index: pd.DatetimeIndex, period_steps: int, step: pd.Timedelta) -> np.ndarray:
    """Position of each timestamp within its period (0 .. period_steps-1), counted from the Unix epoch."""
    i8 = pd.DatetimeIndex(index).as_unit("ns").asi8
    return np.asarray((i8 // int(step.value)) % period_steps, dtype=np.int64)


def detect_periods(y: pd.Series, step: pd.Timedelta) -> list[pd.Timedelta]:
    """The seasonal periods (daily, weekly) a regular series shows, strongest evidence first.

    Daily needs two days of data and a day-over-day autocorrelation of hourly means of at least 0.3
    (after a linear trend is removed); weekly needs two weeks and day-of-week means that explain at
    least 25 % of the variance of daily means.

    >>> idx = pd.date_range("2024-01-01", periods=3 * 1440, freq="1min", tz="UTC")
    >>> y = pd.Series(np.sin(2 * np.pi * np.arange(3 * 1440) / 1440), index=idx)
    >>> detect_periods(y, pd.Timedelta("1min"))
    [Timedelta('1 days 00:00:00')]
    """
    out: list[pd.Timedelta] = []
    span = step * len(y)
    if span < 2 * DAY or step > pd.Timedelta(hours=12):
        return out
    hourly_step = max(step, pd.Timedelta(hours=1))
    hourly = y.resample(hourly_step).mean() if hourly_step > step else y
    x = hourly.interpolate(limit_direction="both").to_numpy(dtype="float64")
    per_day = round(DAY / hourly_step)
    if x.size >= 2 * per_day and np.isfinite(x).all() and np.ptp(x) > 0:
        t = np.arange(x.size, dtype="float64")
        x = x - np.polyval(np.polyfit(t, x, 1), t)
        a, b = x[per_day:], x[:-per_day]
        if a.std() > 0 and b.std() > 0 and float(np.corrcoef(a, b)[0, 1]) >= 0.3:
            out.append(DAY)
    if span >= 2 * WEEK and step <= DAY:
        daily = y.resample(DAY).mean().dropna()
        if len(daily) >= 14:
            d = daily.to_numpy(dtype="float64")
            t = np.arange(d.size, dtype="float64")
            d = d - np.polyval(np.polyfit(t, d, 1), t)
            total = float(np.var(d))
            if total > 0:
                dow = pd.Series(d, index=pd.DatetimeIndex(daily.index).day_of_week)
                explained = float(np.var(dow.groupby(level=0).transform("mean").to_numpy()))
                if explained / total >= 0.25:
                    out.append(WEEK)
    return out


class Forecaster(Params, ABC):
    """Base class: public methods validate, protected hooks compute."""

    type_name: ClassVar[str] = ""
    persisted_as = "telewatch forecaster"
    #: Longest history kept and fitted on (older points are dropped); subclasses may override.
    max_history: ClassVar[pd.Timedelta] = pd.Timedelta(days=35)

    # Subclasses set these in ``__init__`` (they are hyper-parameters).
    calibration_horizon: int
    calibration_origins: int

    def fit(self, series: pd.Series, *, step: pd.Timedelta | None = None) -> Self:
        """Learn from ``series`` (NaNs and gaps are allowed) and calibrate the intervals.

        ``step`` is the metric's step; default: the most common spacing of its timestamps.
        """
        name = f"{self.type_name}.fit"
        series = validate_series(series, name=name)
        if series.dropna().size < 3:
            raise ValidationError(f"{name}: need at least 3 values to forecast, got {series.dropna().size}")
        the_step = pd.Timedelta(step) if step is not None else infer_step(pd.DatetimeIndex(series.index))
        if the_step is None or the_step <= pd.Timedelta(0):
            raise ValidationError(f"{name}: cannot tell the series' step; pass step=")
        series = series[series.index > series.index[-1] - self.max_history]
        y = regularize(series, the_step)
        self.step_ = the_step
        self._calibrate(y)
        self._fit(y)
        self.history_ = y
        self.last_ts_ = pd.Timestamp(y.index[-1])
        self.fitted_ = True
        return self

    def predict(
        self,
        horizon: int | str | pd.Timedelta = "60min",
        *,
        levels: Sequence[float] = DEFAULT_LEVELS,
        history: pd.Series | None = None,
    ) -> pd.DataFrame:
        """Forecast the next ``horizon`` (steps, or a duration such as ``"60min"``).

        Returns a frame indexed by the future timestamps with ``mean`` and ``lower_<pct>`` /
        ``upper_<pct>`` for each level in ``levels`` (each strictly between 0 and 1). The forecast
        starts after the fitted history, or after ``history`` when given (the fitted parameters
        applied to newer data, without refitting: how a monitor forecasts between refits).
        """
        if not getattr(self, "fitted_", False):
            raise NotFittedError(f"{self.type_name}: call fit() before predict()")
        h = parse_horizon(horizon, self.step_)
        levels = self._check_levels(levels)
        if history is None:
            y = self.history_
        else:
            y = validate_series(history, name=f"{self.type_name}.predict history")
            if y.dropna().empty:
                raise ValidationError(f"{self.type_name}.predict: the history holds no values")
            y = regularize(y[y.index > y.index[-1] - self.max_history], self.step_)
        last = pd.Timestamp(y.index[-1])
        index = pd.DatetimeIndex(
            last.as_unit("ns").value + int(self.step_.value) * np.arange(1, h + 1, dtype=np.int64), tz="UTC"
        )
        mean = np.asarray(self._forecast(y, h), dtype="float64")
        if mean.shape != (h,):
            raise ValidationError(f"{self.type_name}: forecast has shape {mean.shape}, expected ({h},)")
        mean = self._fill_mean(mean, y)
        frame = pd.DataFrame({"mean": mean}, index=index)
        for level in levels:
            lo, hi = self.error_quantiles(level, h)
            frame[f"lower_{level_name(level)}"] = mean + lo
            frame[f"upper_{level_name(level)}"] = mean + hi
        frame.index.name = "timestamp"
        return frame

    # -- intervals ----------------------------------------------------------------------------------
    def error_quantiles(self, level: float, h: int) -> tuple[np.ndarray, np.ndarray]:
        """Offsets (lower, upper) to add to the point forecast for a ``level`` interval, by lead 1..h."""
        errors: np.ndarray = self.cal_errors_
        alpha = 1.0 - level
        H = errors.shape[1]
        lo = np.empty(min(h, H))
        hi = np.empty(min(h, H))
        for k in range(min(h, H)):
            pool = max(1, (k + 1) // 4)  # pool neighbouring leads: more errors, smoother widths
            e = errors[:, max(0, k - pool) : min(H, k + pool + 1)].ravel()
            e = e[np.isfinite(e)]
            if e.size < 4:
                lo[k], hi[k] = -np.inf, np.inf
                continue
            # Split-conformal finite-sample correction of the quantile levels.
            m = e.size
            q_hi = min(1.0, math.ceil((m + 1) * (1.0 - alpha / 2.0)) / m)
            q_lo = max(0.0, 1.0 - q_hi)
            lo[k], hi[k] = np.quantile(e, [q_lo, q_hi])
        # Uncertainty does not shrink with the lead time.
        hi = np.maximum.accumulate(np.maximum(hi, 0.0))
        lo = np.minimum.accumulate(np.minimum(lo, 0.0))
        if h > H:  # beyond the calibrated leads: grow like a random walk
            grow = np.sqrt(np.arange(H + 1, h + 1) / H)
            hi = np.r_[hi, hi[-1] * grow]
            lo = np.r_[lo, lo[-1] * grow]
        return lo, hi

    def _calibrate(self, y: pd.Series) -> None:
        """Signed k-step errors from rolling origins in the last part of ``y`` (split conformal)."""
        H = max(1, int(self.calibration_horizon))
        K = max(1, int(self.calibration_origins))
        n = len(y)
        stride = max(1, H // 2)
        span = min(n // 3, (K - 1) * stride + H)
        errors: list[np.ndarray] = []
        if span >= H and n - span >= 3:
            self._fit(y.iloc[: n - span])
            values = y.to_numpy(dtype="float64")
            for origin in range(n - span, n - H + 1, stride):
                f = np.asarray(self._forecast(y.iloc[:origin], H), dtype="float64")
                errors.append(values[origin : origin + H] - f)
        if len(errors) >= 4:
            self.cal_errors_ = np.vstack(errors)
            return
        # Too short to hold a calibration window: random-walk errors from one-step differences.
        d = np.diff(y.dropna().to_numpy(dtype="float64"))
        scale = float(np.median(np.abs(d - np.median(d)))) * MAD_TO_SIGMA if d.size else 0.0
        if scale == 0.0 and d.size:
            scale = float(np.std(d))
        rng = np.random.default_rng(0)
        steps = np.sqrt(np.arange(1, H + 1))
        self.cal_errors_ = rng.standard_normal((200, 1)) * scale * steps[None, :]

    # -- hooks --------------------------------------------------------------------------------------
    @abstractmethod
    def _fit(self, y: pd.Series) -> None: ...

    @abstractmethod
    def _forecast(self, y: pd.Series, h: int) -> np.ndarray: ...

    # -- helpers ------------------------------------------------------------------------------------
    def _fill_mean(self, mean: np.ndarray, y: pd.Series | None = None) -> np.ndarray:
        if np.isfinite(mean).all():
            return mean
        hist = (self.history_ if y is None else y).dropna()
        fallback = float(hist.iloc[-1]) if len(hist) else 0.0
        return np.where(np.isfinite(mean), mean, fallback)

    @staticmethod
    def _check_levels(levels: Sequence[float]) -> list[float]:
        out = []
        for level in levels:
            if isinstance(level, bool) or not isinstance(level, int | float) or not 0.0 < float(level) < 1.0:
                raise ValidationError(f"levels: each must lie strictly between 0 and 1, got {level!r}")
            out.append(float(level))
        return out
