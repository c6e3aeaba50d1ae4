"""Robust bands: distance from a trailing rolling median in units of rolling MAD."""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence

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

    def fit_score_rows(self, values: np.ndarray) -> np.ndarray:
        """The two rolling medians of every row in the compiled kernel (pandas' numbers), the floor
        of each row as ``_fit`` learns it."""
        from telewatch.detectors import _kernels

        arr = np.ascontiguousarray(values, dtype="float64")
        w, mp = int(self.window), int(self.min_periods)
        floor = np.array([scale_floor(row[~np.isnan(row)], share=0.05) for row in arr])
        prev = np.full_like(arr, np.nan)
        prev[:, 1:] = arr[:, :-1]
        median = _kernels.rolling_median(prev, window=w, min_periods=mp)
        with np.errstate(invalid="ignore"):
            mad = _kernels.rolling_median(np.abs(prev - median), window=w, min_periods=mp)
            scale = np.maximum(mad * MAD_TO_SIGMA, floor[:, None])
            return np.abs(arr - median) / scale

    @classmethod
    def score_contexts(
        cls,
        models: Sequence[Detector],
        contexts: Sequence[np.ndarray],
        new: np.ndarray,
        carries: Sequence[MutableMapping[str, np.ndarray]] | None = None,
    ) -> np.ndarray:
        """Slides, per row, a sorted window of the values (median) and one of the deviations
        ``|x[t-1] - median_t|`` (MAD) over the new points: O(window) per point (a numba kernel).

        ``carries[i]`` keeps, between calls, ``deviations`` (the last ``window - 1``) and
        ``windows`` (the two sorted windows, NaN-padded, shape ``(2, window)``): a tick of five new
        points then slides two windows five times instead of computing rolling medians over the
        ``2 × window`` points of the context. Without them they are rebuilt from the context.

        >>> idx = pd.date_range("2024-01-01", periods=300, freq="min")
        >>> s = pd.Series(np.sin(np.arange(300) / 9.0), index=idx)
        >>> det = RobustBands(window=30).fit(s.iloc[:200])
        >>> one = det.score(s.iloc[290:], context=s.iloc[200:290]).to_numpy()
        >>> carry: dict[str, np.ndarray] = {}
        >>> first = RobustBands.score_contexts([det], [s.iloc[200:285].to_numpy()], s.iloc[285:290].to_numpy()[None, :], [carry])
        >>> sorted(carry)
        ['deviations', 'windows']
        >>> many = RobustBands.score_contexts([det], [s.iloc[230:290].to_numpy()], s.iloc[290:].to_numpy()[None, :], [carry])
        >>> bool(np.allclose(many[0], one, rtol=0, atol=1e-12))
        True
        """
        from telewatch.detectors import _streaming

        first: RobustBands = models[0]  # type: ignore[assignment]
        w, mp = int(first.window), int(first.min_periods)
        if any((int(m.window), int(m.min_periods)) != (w, mp) for m in models):  # type: ignore[attr-defined]
            raise ValueError("score_contexts: the models must share window and min_periods")
        x = np.asarray(new, dtype="float64")
        n, m = x.shape
        kept = carries if carries is not None else [{} for _ in range(n)]
        raw = np.empty((n, w + m))
        raw[:, :w] = _streaming.left_pad(contexts, w)
        raw[:, w:] = x
        dev = np.empty((n, w - 1 + m))
        windows = np.full((n, 2, w), np.nan)
        have = np.zeros(n, dtype=bool)
        missing = []
        for i, carry in enumerate(kept):
            deviations, sorted_windows = carry.get("deviations"), carry.get("windows")
            if deviations is not None and deviations.size == w - 1:
                dev[i, : w - 1] = deviations
                if sorted_windows is not None and sorted_windows.shape == (2, w):
                    windows[i] = sorted_windows
                    have[i] = True
            else:
                missing.append(i)
        if missing:
            dev[missing, : w - 1] = _streaming.deviations([contexts[i] for i in missing], w, mp)
        median = np.empty((n, m))
        mad = np.empty((n, m))
        _streaming.bands_kernel()(raw, dev, windows, have, m, w, max(mp, 1), median, mad)
        floor = np.array([float(mo.min_scale_) for mo in models])  # type: ignore[attr-defined]
        scale = np.maximum(mad * MAD_TO_SIGMA, floor[:, None])
        scores = np.abs(x - median) / scale
        scores[np.isnan(x)] = np.nan
        for i, carry in enumerate(kept):
            carry["deviations"] = dev[i, m:]
            carry["windows"] = windows[i]
        return scores
