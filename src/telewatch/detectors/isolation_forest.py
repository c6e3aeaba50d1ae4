"""Isolation Forest on causal lag, rolling and time-of-day/day-of-week features."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from telewatch.detectors.base import Detector
from telewatch.detectors.features import FeatureBuilder
from telewatch.detectors.registry import register

_MIN_FIT_ROWS = 8
#: The quantile of a feature's absolute standardised training values taken as its usual extent.
EXTENT_QUANTILE = 0.995


@register("isolation_forest")
class IsolationForestDetector(Detector):
    """scikit-learn's Isolation Forest over :class:`~telewatch.detectors.features.FeatureBuilder` rows.

    The score is the inverse of the normalised path length, ``c(psi) / E[h(x)]`` (= ``-1 / log2(a)``,
    ``a = -score_samples`` the usual anomaly score in (0, 1)): about 1 for ordinary points, growing
    without the usual squeeze towards 1 as a point is isolated sooner (about 15 for a point isolated
    at the first split). The order is the same as ``a``'s, but the calibrator's exponential tail sees
    the extremes spread out, so a 6-sigma spike reaches the default threshold (on ``a`` it calibrated
    to z ≈ 3.5, and no spike could ever reach 5). The trees cannot extrapolate either (every point
    past the training range ends in the same leaf), so the score adds how far, in robust sigmas, the
    furthest feature lies beyond its usual extent (the ``EXTENT_QUANTILE`` of its training values).
    Among the features, ``shift_<smooth>`` (the mean of the last ``smooth`` rows against the rows
    before, in noise sigmas) is what lets a spike that lasts (6 sigma for 20 minutes) stand out on
    every row of it, not only at its edges. Each row's features use only the past, and each row is scored on its own, so scores are causal. Fewer than 8 training rows
    leave nothing to grow trees from: the score is then the mean absolute standardised feature.
    Deterministic for a given ``random_state``.

    >>> import numpy as np, pandas as pd
    >>> idx = pd.date_range("2024-01-01", periods=600, freq="1min")
    >>> s = pd.Series(np.sin(np.arange(600) / 30.0), index=idx)
    >>> s.iloc[500] = 4.0
    >>> det = IsolationForestDetector(n_estimators=50).fit(s.iloc[:400])
    >>> int(det.score(s.iloc[400:], context=s.iloc[:400]).to_numpy().argmax()) + 400 in (500, 501)
    True

    (the spike, or the drop back from it right after: both lie as far beyond anything in training)
    """

    test_params: ClassVar[dict[str, Any]] = {"n_estimators": 25}

    def __init__(
        self,
        n_estimators: int = 100,
        max_samples: int = 256,
        lags: tuple[int, ...] = (1, 5),
        windows: tuple[int, ...] = (10, 60),
        seasonal: bool = True,
        random_state: int = 0,
        smooth: int = 10,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.lags = lags
        self.windows = windows
        self.seasonal = seasonal
        self.random_state = random_state
        self.smooth = smooth

    def _fit(self, series: pd.Series) -> None:
        from sklearn.ensemble import IsolationForest

        self.features_ = FeatureBuilder(self.lags, self.windows, self.seasonal, self.smooth).fit(series)
        x = self.features_.transform(series)[series.notna().to_numpy()]
        self.model_: IsolationForest | None = None
        # the trees cannot tell a point just past the training range from one far past it: the
        # score adds how far (in robust sigmas) the furthest feature lies beyond its usual extent
        self.extent_ = np.quantile(np.abs(x), EXTENT_QUANTILE, axis=0) if x.shape[0] else np.zeros(x.shape[1])
        if x.shape[0] >= _MIN_FIT_ROWS:
            self.model_ = IsolationForest(
                n_estimators=self.n_estimators,
                max_samples=min(self.max_samples, x.shape[0]),
                random_state=self.random_state,
            ).fit(x)

    def _score(self, series: pd.Series) -> pd.Series:
        x = self.features_.transform(series)
        if x.shape[0] == 0:
            return pd.Series(np.empty(0), index=series.index)
        if self.model_ is None:
            return pd.Series(np.abs(x).mean(axis=1), index=series.index)
        a = np.clip(-self.model_.score_samples(x), 1e-12, 1.0 - 1e-12)
        beyond = np.clip(np.abs(x) - self.extent_, 0.0, None).max(axis=1)
        return pd.Series(-1.0 / np.log2(a) + beyond, index=series.index)
