"""Isolation Forest on causal lag, rolling and time-of-day/day-of-week features."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from telewatch.detectors.base import Detector
from telewatch.detectors.features import FeatureBuilder
from telewatch.detectors.registry import register

_MIN_FIT_ROWS = 8


@register("isolation_forest")
class IsolationForestDetector(Detector):
    """scikit-learn's Isolation Forest over :class:`~telewatch.detectors.features.FeatureBuilder` rows.

    The score is ``-score_samples`` (higher = isolated sooner = more anomalous), so it is about 0.5
    for ordinary points and approaches 1 for points isolated at once. Each row's features use only
    the past, and each row is scored on its own, so scores are causal. Fewer than 8 training rows
    leave nothing to grow trees from: the score is then the mean absolute standardised feature.
    Deterministic for a given ``random_state``.

    >>> import numpy as np, pandas as pd
    >>> idx = pd.date_range("2024-01-01", periods=600, freq="1min")
    >>> s = pd.Series(np.sin(np.arange(600) / 30.0), index=idx)
    >>> s.iloc[500] = 4.0
    >>> det = IsolationForestDetector(n_estimators=50).fit(s.iloc[:400])
    >>> int(det.score(s.iloc[400:], context=s.iloc[:400]).to_numpy().argmax()) + 400
    500
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
    ) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.lags = lags
        self.windows = windows
        self.seasonal = seasonal
        self.random_state = random_state

    def _fit(self, series: pd.Series) -> None:
        from sklearn.ensemble import IsolationForest

        self.features_ = FeatureBuilder(self.lags, self.windows, self.seasonal).fit(series)
        x = self.features_.transform(series)[series.notna().to_numpy()]
        self.model_: IsolationForest | None = None
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
        raw = np.abs(x).mean(axis=1) if self.model_ is None else -self.model_.score_samples(x)
        return pd.Series(raw, index=series.index)
