"""Static robust z-score: distance from the training median in units of training MAD."""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence

import numpy as np
import pandas as pd

from telewatch.core.series import MAD_TO_SIGMA
from telewatch.detectors.base import Detector
from telewatch.detectors.registry import register


@register("robust_z")
class RobustZ(Detector):
    """``|x - median_train| / (1.4826 * MAD_train)``: no memory of recent points.

    Suits metrics without trend or seasonality whose normal range is stable (server counters
    normalised per machine, ratios). A level shift stays anomalous for as long as it lasts, unlike
    a rolling band that adapts to it. ``min_scale`` keeps a constant training series from dividing
    by zero: the scale is at least that share of the median's magnitude (or 1e-9).

    >>> import numpy as np, pandas as pd
    >>> idx = pd.date_range("2024-01-01", periods=100, freq="1min")
    >>> s = pd.Series(np.random.default_rng(0).normal(10, 1, 100), index=idx)
    >>> det = RobustZ().fit(s)
    >>> bool(det.score(pd.Series([10.0, 16.0], index=idx[:2])).iloc[1] > 5)
    True
    """

    def __init__(self, min_scale: float = 0.01) -> None:
        self.min_scale = min_scale

    def context_points(self) -> int:
        """``0``: each point is scored from the fitted median and MAD alone."""
        return 0

    def _fit(self, series: pd.Series) -> None:
        values = series.dropna().to_numpy()
        self.median_ = float(np.median(values)) if values.size else 0.0
        mad = float(np.median(np.abs(values - self.median_))) * MAD_TO_SIGMA if values.size else 0.0
        if mad == 0.0 and values.size:
            mad = float(np.std(values))
        self.scale_ = max(mad, abs(self.median_) * self.min_scale, 1e-9)

    def _score(self, series: pd.Series) -> pd.Series:
        return (series - self.median_).abs() / self.scale_

    def fit_score_rows(self, values: np.ndarray) -> np.ndarray:
        """Medians and MADs along the time axis, one vectorised expression (as ``_fit`` per row).

        >>> x = np.array([[10.0, 11.0, 9.0, 30.0], [np.nan, np.nan, np.nan, np.nan]])
        >>> RobustZ().fit_score_rows(x).round(2).tolist()
        [[0.34, 0.34, 1.01, 13.15], [nan, nan, nan, nan]]
        """
        arr = np.asarray(values, dtype="float64")
        count = np.sum(~np.isnan(arr), axis=1)
        has = count > 0
        safe = np.where(has[:, None], arr, 0.0)  # all-NaN rows: avoid nanmedian warnings
        median = np.where(has, np.nanmedian(safe, axis=1), 0.0)
        mad = np.where(has, np.nanmedian(np.abs(safe - median[:, None]), axis=1) * MAD_TO_SIGMA, 0.0)
        std = np.where(has, np.nanstd(safe, axis=1), 0.0)
        mad = np.where((mad == 0.0) & has, std, mad)
        scale = np.maximum(np.maximum(mad, np.abs(median) * self.min_scale), 1e-9)
        return np.abs(arr - median[:, None]) / scale[:, None]

    @classmethod
    def score_contexts(
        cls,
        models: Sequence[Detector],
        contexts: Sequence[np.ndarray],
        new: np.ndarray,
        carries: Sequence[MutableMapping[str, np.ndarray]] | None = None,
    ) -> np.ndarray:
        """Each row against its model's median and scale; contexts and carries are not needed."""
        x = np.asarray(new, dtype="float64")
        median = np.array([float(m.median_) for m in models])  # type: ignore[attr-defined]
        scale = np.array([float(m.scale_) for m in models])  # type: ignore[attr-defined]
        return np.abs(x - median[:, None]) / scale[:, None]
