"""One-Class SVM on causal lag, rolling and time-of-day/day-of-week features."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from telewatch.detectors.base import Detector
from telewatch.detectors.features import FeatureBuilder
from telewatch.detectors.registry import register

_MIN_FIT_ROWS = 8


@register("ocsvm")
class OneClassSVMDetector(Detector):
    """scikit-learn's RBF One-Class SVM over :class:`~telewatch.detectors.features.FeatureBuilder` rows.

    Kernel SVM training grows with the square of the rows, so at most ``max_train`` training rows
    are used (an even subsample, deterministic). The score is ``-decision_function``: negative
    inside the learned support, growing with the distance outside it. ``nu`` bounds the share of
    training rows left outside. Fewer than 8 training rows: the score is the mean absolute
    standardised feature.

    >>> import numpy as np, pandas as pd
    >>> idx = pd.date_range("2024-01-01", periods=600, freq="1min")
    >>> s = pd.Series(np.sin(np.arange(600) / 30.0), index=idx)
    >>> s.iloc[500] = 4.0
    >>> det = OneClassSVMDetector().fit(s.iloc[:400])
    >>> int(det.score(s.iloc[400:], context=s.iloc[:400]).to_numpy().argmax()) + 400
    500
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
    ) -> None:
        self.nu = nu
        self.gamma = gamma
        self.max_train = max_train
        self.lags = lags
        self.windows = windows
        self.seasonal = seasonal

    def _fit(self, series: pd.Series) -> None:
        from sklearn.svm import OneClassSVM

        self.features_ = FeatureBuilder(self.lags, self.windows, self.seasonal).fit(series)
        x = self.features_.transform(series)[series.notna().to_numpy()]
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
        return pd.Series(self._log_shortfall(x), index=series.index)

    def _log_shortfall(self, x: np.ndarray) -> np.ndarray:
        """``log rho - logsumexp_i(log alpha_i - gamma |x - sv_i|^2)`` per row (``-decision_function``
        where ``rho <= 0`` or a dual coefficient is not positive, which RBF One-Class SVMs never give)."""
        from scipy.special import logsumexp

        model = self.model_
        assert model is not None
        alpha = np.asarray(model.dual_coef_, dtype="float64").ravel()
        rho = -float(np.asarray(model.intercept_).ravel()[0])
        if rho <= 0 or (alpha <= 0).any():
            return np.asarray(-model.decision_function(x), dtype="float64")
        sv = np.asarray(model.support_vectors_, dtype="float64")
        gamma = float(model._gamma)
        out = np.empty(x.shape[0])
        for lo in range(0, x.shape[0], 4096):  # rows × support vectors, in blocks
            block = x[lo : lo + 4096]
            d2 = (block**2).sum(axis=1)[:, None] - 2.0 * block @ sv.T + (sv**2).sum(axis=1)[None, :]
            out[lo : lo + 4096] = np.log(rho) - logsumexp(
                np.log(alpha)[None, :] - gamma * np.maximum(d2, 0.0), axis=1
            )
        return out
