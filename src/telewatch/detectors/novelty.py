"""Value novelty: how far a value lands from every value seen before it."""

from __future__ import annotations

import bisect

import numpy as np
import pandas as pd

from telewatch.detectors.bands import ExpectedBand
from telewatch.detectors.base import Detector
from telewatch.detectors.registry import register

_MAD_TO_SIGMA = 1.4826


@register("novelty")
class Novelty(ExpectedBand, Detector):
    """Scores a value by its distance to the nearest value seen before it, in ``1 / bins`` of the
    training range; values in already-visited territory score (almost) nothing.

    Most incidents in telemetry take a metric somewhere it has never been (a new maximum, a new
    minimum, an empty band inside its range); recurring shapes, however large (the daily peak, a
    Monday-morning rush), are visited again and again and stop scoring. Each novel value is
    weighted by ``min(1, gap / cooldown)``, ``gap`` being the points since the latest novel value at
    least as far out: a burst of novelty (a metric drifting into new territory) alarms once, not
    on every point, while a larger jump soon after a small one still counts in full.
    A small tie-breaker (below ``0.01``) ranks non-novel points by their robust distance from the
    recent median, so a repeated spike still stands out from quiet points.

    :meth:`expected` gives the recent median (``local_window`` points) and, as the band, the range
    of every value seen before (what is not novel).

    Scoring is causal and starts from an empty memory on each call (``context`` fills it), so the
    score at ``t`` depends on the training range and the points up to ``t``.

    >>> idx = pd.date_range("2024-01-01", periods=400, freq="5min")
    >>> s = pd.Series(np.sin(np.arange(400) / 8.0), index=idx)
    >>> s.iloc[300] = 1.6
    >>> det = Novelty().fit(s.iloc[:200])
    >>> int(np.argmax(det.score(s.iloc[200:], context=s.iloc[:200])))  # position in s.iloc[200:]
    100
    """

    def __init__(self, bins: int = 100, cooldown: int = 1000, local_window: int = 60) -> None:
        self.bins = bins
        self.cooldown = cooldown
        self.local_window = local_window

    def _fit(self, series: pd.Series) -> None:
        values = series.dropna().to_numpy()
        if values.size == 0:
            self.low_, self.width_ = 0.0, 1.0
            return
        lo, hi = float(values.min()), float(values.max())
        span = hi - lo
        if span <= 0.0:
            span = abs(hi) if hi != 0.0 else 1.0
        self.low_ = lo
        self.width_ = span / self.bins

    def _score(self, series: pd.Series) -> pd.Series:
        x = series.to_numpy(dtype="float64")
        novelty = self._novelty(x)
        return pd.Series(novelty + 0.01 * self._local(series), index=series.index)

    def _novelty(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            q = np.floor((x - self.low_) / self.width_)
        out = np.zeros(x.size)
        seen: list[int] = []
        seen_set: set[int] = set()
        cooldown = max(self.cooldown, 1)
        # earlier novel values, magnitudes strictly decreasing: the top after popping the smaller
        # ones is the latest novelty at least as large as the current one
        stack: list[tuple[int, float]] = []
        for t in np.flatnonzero(np.isfinite(q)).tolist():
            b = int(q[t])
            if b in seen_set:
                continue
            if seen:
                i = bisect.bisect_left(seen, b)
                left = b - seen[i - 1] if i > 0 else 10**9
                right = seen[i] - b if i < len(seen) else 10**9
                dist = float(min(left, right))
                while stack and stack[-1][1] < dist:
                    stack.pop()
                gap = t - stack[-1][0] if stack else cooldown
                out[t] = dist * min(1.0, gap / cooldown)
                stack.append((t, dist))
            bisect.insort(seen, b)
            seen_set.add(b)
        return out

    def _local(self, series: pd.Series) -> np.ndarray:
        """Robust distance from the recent median, squashed into [0, 1)."""
        prev = series.shift(1)
        roll = prev.rolling(self.local_window, min_periods=2)
        median = roll.median()
        mad = (prev - median).abs().rolling(self.local_window, min_periods=2).median() * _MAD_TO_SIGMA
        scale = np.maximum(np.nan_to_num(mad.to_numpy(), nan=0.0), self.width_)
        z = np.nan_to_num(np.abs(series.to_numpy() - median.to_numpy()) / scale, nan=0.0)
        return z / (z + 5.0)

    def _expected(self, series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        prev = series.shift(1)
        centre = prev.rolling(self.local_window, min_periods=1).median().to_numpy()
        low = prev.expanding(1).min().to_numpy()
        high = prev.expanding(1).max().to_numpy()
        return centre, low, high
