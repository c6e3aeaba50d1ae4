"""Level shifts: a robust two-window test of the recent mean against the longer past."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from telewatch.core.series import infer_step
from telewatch.detectors.bands import ExpectedBand, scale_floor
from telewatch.detectors.base import Detector
from telewatch.detectors.registry import register
from telewatch.detectors.seasonal import SeasonalProfiles, _as_periods, detect_periods, max_hold_points


@register("level_shift")
class LevelShift(ExpectedBand, Detector):
    """``min(|mean(last short) - m| / (sigma / sqrt(short)), |x - m| / sigma)``, ``m`` and ``sigma`` the
    median and robust sigma of the ``long`` points before the last ``short``.

    A change of level makes the recent window's mean leave the long window's distribution; the
    long window's robust sigma (MAD, floored at ``min_scale`` of the series' spread learned in
    ``fit``) is divided by ``sqrt(short)`` as for the standard error of a mean, so a sustained shift
    scores higher the longer it lasts, up to ``short`` points. The long window ends where the
    short one starts, so the shift itself never widens its reference. Seasonal profiles (``periods``,
    found automatically when ``None``; ``[]`` for none) are removed first, so the daily rise is not a
    shift. The expected value is the long-window median plus the season.

    **Outages held**: a point at least ``hold`` sigmas from the reference does not join the long
    window (:func:`~telewatch.detectors._kernels.held_median`), so during an outage or a step the
    reference and its sigma stay where they were and the whole incident keeps scoring, up to
    ``max_hold`` (a duration); a change that lasts longer is accepted as the new normal.

    >>> idx = pd.date_range("2024-01-01", periods=600, freq="1min")
    >>> x = np.random.default_rng(0).normal(0, 1, 600)
    >>> x[400:] += 3.0
    >>> s = pd.Series(x, index=idx)
    >>> scores = LevelShift().fit(s.iloc[:300]).score(s)
    >>> bool(scores.iloc[405:412].max() > 3 * scores.iloc[100:390].median())
    True
    """

    def __init__(
        self,
        short: int = 5,
        long: int = 120,
        periods: Sequence[str] | None = None,
        min_scale: float = 0.05,
        hold: float = 6.0,
        max_hold: str = "12h",
    ) -> None:
        self.short = short
        self.long = long
        self.periods = periods
        self.min_scale = min_scale
        self.hold = hold
        self.max_hold = max_hold

    def _fit(self, series: pd.Series) -> None:
        s = series.dropna()
        self.floor_ = scale_floor(s.to_numpy(), share=self.min_scale)
        given = _as_periods(self.periods)
        self.periods_ = given if given is not None else detect_periods(s)
        step = infer_step(pd.DatetimeIndex(s.index)) or pd.Timedelta("1min")
        self.max_hold_points_ = max_hold_points(self.max_hold, step)
        self.profiles_ = SeasonalProfiles(self.periods_, step)
        if self.periods_ and len(s):
            x = s.to_numpy(dtype="float64")
            win = max(3, min(int(max(self.periods_) / step), x.size)) | 1
            trend = pd.Series(x).rolling(win, center=True, min_periods=1).median().to_numpy()
            self.profiles_.fit(pd.DatetimeIndex(s.index), x - trend)

    def _seasonal(self, series: pd.Series) -> np.ndarray:
        if not self.periods_:
            return np.zeros(len(series))
        return self.profiles_.value(pd.DatetimeIndex(series.index))

    def _stats(self, series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from telewatch.detectors._kernels import held_median

        seasonal = self._seasonal(series)
        x = series.astype("float64") - seasonal
        recent = x.rolling(self.short, min_periods=1).mean().to_numpy()
        median_v, mad, _ = held_median(
            x.to_numpy(),
            window=self.long,
            lag=self.short,
            min_periods=3,
            scale=self.floor_,
            hold=self.hold,
            max_hold=self.max_hold_points_,
            with_mad=True,
        )
        # before the long window fills, compare with the expanding past of the points before
        early = x.shift(1).expanding(1).median().to_numpy()
        median_v = np.where(np.isnan(median_v), early, median_v)
        median_v = np.where(np.isnan(median_v), x.to_numpy(), median_v)
        sigma = np.maximum(np.nan_to_num(mad, nan=0.0), self.floor_)
        return recent + seasonal, median_v + seasonal, sigma

    def _score(self, series: pd.Series) -> pd.Series:
        recent, median, sigma = self._stats(series)
        shift = np.abs(recent - median) / (sigma / np.sqrt(self.short))
        # the point itself must be off too: once a spike has passed, its echo in the recent mean
        # does not keep scoring
        here = np.abs(series.to_numpy(dtype="float64") - median) / sigma
        score = np.minimum(shift, here)
        return pd.Series(score, index=series.index)

    def _expected(self, series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        _, median, sigma = self._stats(series)
        return median, median - 4.0 * sigma, median + 4.0 * sigma
