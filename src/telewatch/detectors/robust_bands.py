"""Robust bands: distance from a trailing rolling median in units of rolling MAD."""

from __future__ import annotations

import numpy as np
import pandas as pd

from telewatch.core.series import MAD_TO_SIGMA
from telewatch.detectors.bands import scale_floor
from telewatch.detectors.base import Detector
from telewatch.detectors.registry import register


@register("robust_bands")
class RobustBands(Detector):
    """Robust z-score against the trailing window: ``|x - median| / (1.4826 * MAD)``.

    The median and MAD come from the ``window`` points *before* each point (the point itself is
    excluded, so a spike cannot widen its own band). ``min_scale`` (learned in ``fit`` as a small
    share of the series' overall spread, its magnitude and its resolution; see
    :func:`~telewatch.detectors.bands.scale_floor`) keeps flat stretches from dividing by zero.

    >>> import numpy as np, pandas as pd
    >>> idx = pd.date_range("2024-01-01", periods=300, freq="1min")
    >>> s = pd.Series(np.sin(np.arange(300) / 10.0), index=idx)
    >>> s.iloc[250] = 5.0
    >>> det = RobustBands(window=60).fit(s)
    >>> int(np.argmax(det.score(s)))
    250
    """

    def __init__(self, window: int = 288, min_periods: int = 10) -> None:
        self.window = window
        self.min_periods = min_periods

    def context_points(self) -> int:
        """``2 * window``: the band at a point is a rolling MAD of deviations from rolling medians,
        each over the ``window`` points before it."""
        return 2 * int(self.window)

    def _fit(self, series: pd.Series) -> None:
        # floor: a share of the overall spread, the magnitude and the values' resolution, so a
        # flat stretch (MAD 0) does not turn the next small wiggle into a score of millions
        self.min_scale_ = scale_floor(series.dropna().to_numpy(), share=0.05)

    def _score(self, series: pd.Series) -> pd.Series:
        prev = series.shift(1)
        roll = prev.rolling(self.window, min_periods=self.min_periods)
        median = roll.median()
        mad = (prev - median).abs().rolling(self.window, min_periods=self.min_periods).median()
        scale = np.maximum(mad.to_numpy() * MAD_TO_SIGMA, self.min_scale_)
        return pd.Series(np.abs(series.to_numpy() - median.to_numpy()) / scale, index=series.index)
