"""NAB's windowed-Gaussian baseline, reproduced exactly (a reference point for the NAB scorer)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.special import erfc

from telewatch.detectors.base import Detector
from telewatch.detectors.registry import register


@register("windowed_gaussian")
class WindowedGaussian(Detector):
    """Tail probability of each value under a Gaussian of a sliding window of past values.

    The window grows to ``window`` points, then slides by ``step`` points at a time; each point is
    scored against the window as it was *before* the point (two-sided tail probability: it
    scores ``1 - Q(|z|)``, as NAB's ``windowedGaussian`` detector, whose published NAB score this is
    checked against). Scores are in [0, 1]. ``fit`` learns nothing: the window is the memory.

    >>> import numpy as np, pandas as pd
    >>> idx = pd.date_range("2024-01-01", periods=500, freq="5min")
    >>> s = pd.Series(np.random.default_rng(1).normal(0, 1, 500), index=idx)
    >>> s.iloc[400] = 8.0
    >>> det = WindowedGaussian().fit(s)
    >>> scores = det.score(s)
    >>> bool(scores.iloc[400] > 0.999 and scores.iloc[100:].median() < 0.8)
    True
    """

    def __init__(self, window: int = 6400, step: int = 100) -> None:
        self.window = window
        self.step = step

    def _fit(self, series: pd.Series) -> None:
        self.min_std_ = 1e-6

    def _score(self, series: pd.Series) -> pd.Series:
        x = series.to_numpy(dtype="float64")
        valid = ~np.isnan(x)
        values = x[valid]
        n = values.size
        scores = np.zeros(n)
        if n > 1:
            mean, std = self._window_stats(values)
            z = np.abs(values[1:] - mean[1:]) / std[1:]
            scores[1:] = 1.0 - 0.5 * erfc(z / math.sqrt(2.0))
        out = np.full(x.size, np.nan)
        out[valid] = scores
        return pd.Series(out, index=series.index)

    def _window_stats(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std of the window as it stands before each point (index 0 unused)."""
        n, w, step = v.size, self.window, self.step
        mean, std = np.zeros(n), np.ones(n)
        shifted = v - v[0]  # cumulative sums of shifted values lose less precision
        c1 = np.concatenate([[0.0], np.cumsum(shifted)])
        c2 = np.concatenate([[0.0], np.cumsum(shifted * shifted)])
        # growing phase: before point i the window is v[0:i]
        grow = np.arange(1, min(n, w + 1))
        m = c1[grow] / grow
        mean[grow] = m + v[0]
        std[grow] = np.sqrt(np.maximum(c2[grow] / grow - m * m, 0.0))
        # sliding phase: before point i >= w the window is v[k-w:k], k = w + step*floor((i-w)/step)
        if n > w:
            i = np.arange(w, n)
            k = w + step * ((i - w) // step)
            for start in np.unique(k):
                block = v[start - w : start]
                sel = i[k == start]
                mean[sel] = block.mean()
                std[sel] = block.std()
        std[std == 0.0] = self.min_std_
        return mean, std
