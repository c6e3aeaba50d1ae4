"""Threshold stage: calibrated scores → per-point anomaly flags."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np
import pandas as pd

from telewatch.core.errors import ValidationError


class Threshold:
    """Flags points whose score is at or above ``value``.

    ``value`` fixed (e.g. a calibrated z of 5), or learned by :meth:`train`: the ``quantile`` of the
    training scores when no labels are given; with labels (1 = anomalous), the training score that
    maximises point-wise F1 (ties: the highest threshold).

    >>> Threshold(value=3.0)(np.array([1.0, 3.0, np.nan, 7.0])).tolist()
    [False, True, False, True]
    >>> t = Threshold(quantile=0.9).train(np.arange(100.0))
    >>> round(t.value_, 1)
    89.1
    >>> Threshold().train(np.array([0.1, 0.2, 5.0, 6.0]), labels=np.array([0, 0, 1, 1])).value_
    5.0
    """

    def __init__(self, value: float | None = None, quantile: float = 0.999) -> None:
        if not 0.0 < quantile < 1.0:
            raise ValidationError(f"Threshold: quantile must be in (0, 1), got {quantile}")
        self.value = value
        self.quantile = quantile
        if value is not None:
            self.value_ = float(value)

    def train(
        self,
        scores: Sequence[float] | np.ndarray | pd.Series,
        labels: Sequence[int] | np.ndarray | None = None,
    ) -> Self:
        """Learn ``value_`` (unless ``value`` was given) from training scores and optional labels."""
        if self.value is not None:
            self.value_ = float(self.value)
            return self
        s = np.asarray(scores, dtype="float64").ravel()
        finite = np.isfinite(s)
        if not finite.any():
            raise ValidationError("Threshold: no finite training score")
        if labels is None:
            self.value_ = float(np.quantile(s[finite], self.quantile))
            return self
        y = np.asarray(labels).ravel().astype(bool)
        if y.shape != s.shape:
            raise ValidationError(f"Threshold: {y.size} labels for {s.size} scores")
        s, y = s[finite], y[finite]
        if not y.any():
            self.value_ = float(np.quantile(s, self.quantile))
            return self
        order = np.argsort(-s, kind="stable")
        tp = np.cumsum(y[order])
        k = np.arange(1, s.size + 1)
        f1 = 2 * tp / (k + y.sum())
        ends = np.r_[s[order][1:] != s[order][:-1], True]  # a threshold takes all tied scores
        best = int(np.flatnonzero(ends)[np.argmax(f1[ends])])
        self.value_ = float(s[order][best])
        return self

    def __call__(self, scores: Sequence[float] | np.ndarray | pd.Series) -> np.ndarray:
        """Boolean flags (NaN is never anomalous)."""
        if not hasattr(self, "value_"):
            raise ValidationError("Threshold: give a value or call train() first")
        s = np.asarray(scores, dtype="float64")
        with np.errstate(invalid="ignore"):
            return np.nan_to_num(s, nan=-np.inf) >= self.value_
