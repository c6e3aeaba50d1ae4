"""One-Class SVM on causal lag, rolling and time-of-day/day-of-week features."""

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


@register("ocsvm")
class OneClassSVMDetector(Detector):
    """scikit-learn's RBF One-Class SVM over :class:`~telewatch.detectors.features.FeatureBuilder` rows.

    Kernel SVM training grows with the square of the rows, so at most ``max_train`` training rows
    are used (an even subsample, deterministic). The score is ``-decision_function / rho``
    (``rho`` the model's offset): below 0 inside the learned support, up to 1 far outside it, where
    the kernel sum has vanished and the score saturates; so, as for Isolation Forest, it adds how
    far, in robust sigmas, the furthest feature lies beyond its usual extent (the
    ``EXTENT_QUANTILE`` of its training values, all rows). That term grows in proportion to the
    deviation; the log of the kernel sum, used before, grows with its square, and the heavy tail of
    the rolling z features then made ordinary points reach z 5-7 after calibration (about one a
    week). ``nu`` bounds the share of training rows left outside. Fewer than 8 training rows: the
    score is the mean absolute standardised feature.

    >>> import numpy as np, pandas as pd
    >>> idx = pd.date_range("2024-01-01", periods=600, freq="1min")
    >>> s = pd.Series(np.sin(np.arange(600) / 30.0), index=idx)
    >>> s.iloc[500] = 4.0
    >>> det = OneClassSVMDetector().fit(s.iloc[:400])
    >>> int(det.score(s.iloc[400:], context=s.iloc[:400]).to_numpy().argmax()) + 400 in (500, 501)
    True

    (the spike, or the drop back from it right after: both lie as far beyond anything in training)
    """

    test_params: ClassVar[dict[str, Any]] = {"max_train": 500}

    def __init__(
        self,
        nu: float = 0.01,
        gamma: float | str = "scale",
        max_train: int = 3000,
        lags: tuple[int, ...] = (1, 5),
        windows: tuple[int, ...] = (10, 60),
        seasonal: bool = True,
        smooth: int = 10,
    ) -> None:
        self.nu = nu
        self.gamma = gamma
        self.max_train = max_train
        self.lags = lags
        self.windows = windows
        self.seasonal = seasonal
        self.smooth = smooth

    def _fit(self, series: pd.Series) -> None:
        from sklearn.svm import OneClassSVM

        self.features_ = FeatureBuilder(self.lags, self.windows, self.seasonal, self.smooth).fit(series)
        x = self.features_.transform(series)[series.notna().to_numpy()]
        # the kernel sum vanishes far outside the support, where the decision function saturates:
        # the score adds how far (in robust sigmas) the furthest feature lies beyond its usual extent
        self.extent_ = np.quantile(np.abs(x), EXTENT_QUANTILE, axis=0) if x.shape[0] else np.zeros(x.shape[1])
        if x.shape[0] > self.max_train:
            x = x[np.linspace(0, x.shape[0] - 1, self.max_train).astype(int)]
        self.model_: OneClassSVM | None = None
        if x.shape[0] >= _MIN_FIT_ROWS:
            self.model_ = OneClassSVM(nu=self.nu, gamma=self.gamma).fit(x)

    def _score(self, series: pd.Series) -> pd.Series:
        x = self.features_.transform(series)
        if x.shape[0] == 0:
            return pd.Series(np.empty(0), index=series.index)
        if self.model_ is None:
            return pd.Series(np.abs(x).mean(axis=1), index=series.index)
        rho = -float(np.asarray(self.model_.intercept_).ravel()[0])
        kernel = -np.asarray(self.model_.decision_function(x), dtype="float64") / (abs(rho) or 1.0)
        beyond = np.clip(np.abs(x) - self.extent_, 0.0, None).max(axis=1)
        return pd.Series(kernel + beyond, index=series.index)
