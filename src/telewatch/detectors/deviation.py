"""Day-over-day / week-over-week deviation, in percent, as operators read it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from telewatch.core.errors import ValidationError
from telewatch.core.series import infer_step
from telewatch.detectors.bands import ExpectedBand
from telewatch.detectors.base import Detector
from telewatch.detectors.registry import register


def _lagged(index_ns: np.ndarray, values: np.ndarray, lag_ns: int, tol_ns: int) -> np.ndarray:
    """The value at ``t - lag`` (nearest point within ``tol``), NaN where there is none."""
    target = index_ns - lag_ns
    pos = np.searchsorted(index_ns, target)
    out = np.full(index_ns.size, np.nan)
    for cand in (pos - 1, pos):
        ok = (cand >= 0) & (cand < index_ns.size)
        c = np.where(ok, cand, 0)
        close = ok & (np.abs(index_ns[c] - target) <= tol_ns) & np.isnan(out)
        out[close] = values[c[close]]
    return out


@register("deviation")
class Deviation(ExpectedBand, Detector):
    """``100 * |x - expected| / max(|expected|, floor)`` where ``expected`` is whichever of the same
    time yesterday and last week (``lags``) is closer: the point must differ from both to score.

    Missing lags are skipped; where none exists (the first day, a gap) the expected value is the
    median of the ``fallback_points`` previous points, so the score stays defined. ``floor`` (learned
    in ``fit`` as ``min_base`` times the typical magnitude) keeps near-zero baselines from turning a
    tiny change into thousands of percent. :meth:`expected` gives the band ``expected ± band_pct %``.

    >>> idx = pd.date_range("2024-01-01", periods=3 * 1440, freq="1min")
    >>> daily = 100 + 50 * np.sin(2 * np.pi * np.arange(idx.size) / 1440)
    >>> s = pd.Series(daily, index=idx)
    >>> s.iloc[2 * 1440 + 600] *= 1.5
    >>> det = Deviation().fit(s)
    >>> round(float(det.score(s).iloc[2 * 1440 + 600]))  # percent above yesterday
    50
    """

    def __init__(
        self,
        lags: Sequence[str] = ("1D", "7D"),
        fallback_points: int = 60,
        band_pct: float = 30.0,
        min_base: float = 0.05,
    ) -> None:
        self.lags = lags
        self.fallback_points = fallback_points
        self.band_pct = band_pct
        self.min_base = min_base

    def _fit(self, series: pd.Series) -> None:
        try:
            self.lags_ns_ = [pd.Timedelta(lag).value for lag in self.lags]
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"deviation: lags must be durations like '1D' ({exc})") from None
        if any(v <= 0 for v in self.lags_ns_):
            raise ValidationError("deviation: lags must be positive")
        step = infer_step(pd.DatetimeIndex(series.dropna().index))
        self.tolerance_ns_ = (step.value // 2) if step is not None else pd.Timedelta("30s").value
        values = series.dropna().to_numpy()
        typical = float(np.median(np.abs(values))) if values.size else 0.0
        self.floor_ = max(self.min_base * typical, 1e-9)

    def _expected_values(self, series: pd.Series) -> np.ndarray:
        """Per point, the lagged value closest to it (an operator calls a point abnormal only when it
        differs from yesterday *and* from last week), else the recent median."""
        i8 = pd.DatetimeIndex(series.index).as_unit("ns").asi8
        x = series.to_numpy(dtype="float64")
        lagged = np.vstack([_lagged(i8, x, lag, self.tolerance_ns_) for lag in self.lags_ns_])
        dist = np.where(np.isnan(lagged), np.inf, np.abs(lagged - x))
        closest = lagged[np.argmin(dist, axis=0), np.arange(x.size)] if x.size else np.zeros(0)
        fallback = series.shift(1).rolling(self.fallback_points, min_periods=1).median().to_numpy()
        expected = np.where(np.isnan(closest), fallback, closest)
        return np.where(np.isnan(expected), x, expected)

    def _score(self, series: pd.Series) -> pd.Series:
        expected = self._expected_values(series)
        base = np.maximum(np.abs(expected), self.floor_)
        return pd.Series(100.0 * np.abs(series.to_numpy() - expected) / base, index=series.index)

    def _expected(self, series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        expected = self._expected_values(series)
        half = np.maximum(np.abs(expected), self.floor_) * self.band_pct / 100.0
        return expected, expected - half, expected + half
