"""Calibration: a detector's raw score → a comparable z (Gaussian-equivalent tail quantile)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np
import pandas as pd
from scipy.special import ndtri

from telewatch.core.errors import NotFoundError, ValidationError

#: The calibrated z never exceeds this (a tail probability of about 1e-300).
MAX_Z = 37.0


class Calibrator:
    """Learns the distribution of a detector's own training scores and maps a raw score to
    ``z = Φ⁻¹(1 - p)``, ``p`` the estimated probability of a score at least that high.

    Below the ``tail`` quantile ``u`` the empirical survival function (on ``quantiles`` levels) is used; above it an
    exponential tail is fitted to the excesses over ``u`` (a peaks-over-threshold estimate), so a
    score beyond anything seen in training still gets a finite, growing z instead of saturating.
    z is at least 0 (typical points are 0), NaN stays NaN. Scores of different detectors (and
    metrics) become comparable: z = 5 means "about 3 in 10 million" for every one of them.

    >>> rng = np.random.default_rng(0)
    >>> cal = Calibrator().train(np.abs(rng.normal(0, 1, 20_000)))
    >>> z = cal(np.array([0.1, 2.0, 4.0, np.nan]))
    >>> [round(float(v), 1) for v in z[:3]], bool(np.isnan(z[3]))
    ([0.0, 1.7, 3.6], True)
    """

    def __init__(self, tail: float = 0.98, quantiles: int = 512, min_excess: float = 1e-12) -> None:
        if not 0.5 <= tail < 1.0:
            raise ValidationError(f"Calibrator: tail must be in [0.5, 1), got {tail}")
        self.tail = tail
        self.quantiles = quantiles
        self.min_excess = min_excess

    def train(self, scores: Sequence[float] | np.ndarray | pd.Series, labels: object = None) -> Self:
        """Learn from training scores (NaNs ignored); ``labels`` are accepted and not needed."""
        s = np.asarray(scores, dtype="float64").ravel()
        s = s[np.isfinite(s)]
        if s.size == 0:
            s = np.zeros(1)
        probs = np.linspace(0.0, 1.0, self.quantiles)
        self.levels_ = np.quantile(s, probs)
        self.n_ = s.size
        self.u_ = float(np.quantile(s, self.tail))
        excess = s[s > self.u_] - self.u_
        spread = float(self.levels_[-1] - self.levels_[0])
        beta = float(excess.mean()) if excess.size else 0.0
        self.beta_ = max(beta, spread * 0.01, abs(self.u_) * 0.01, self.min_excess)
        self.p_u_ = max(float((s > self.u_).mean()), 1.0 / (s.size + 1))
        return self

    def tail_probability(self, scores: Sequence[float] | np.ndarray | pd.Series) -> np.ndarray:
        """Estimated ``P(score >= s)`` under the training distribution (NaN stays NaN)."""
        if not hasattr(self, "levels_"):
            raise NotFoundError("Calibrator: call train() before use")
        s = np.asarray(scores, dtype="float64")
        # share of training quantiles at or above s (ties count as "at least as high")
        p = 1.0 - np.searchsorted(self.levels_, np.nan_to_num(s), side="left") / self.levels_.size
        over = s > self.u_
        with np.errstate(over="ignore", invalid="ignore"):
            tail = self.p_u_ * np.exp(-(s - self.u_) / self.beta_)
        p = np.where(over, tail, p)  # above u the fitted tail, not the (saturating) empirical one
        p = np.clip(p, 1e-300, 1.0)
        return np.where(np.isnan(s), np.nan, p)

    def __call__(self, scores: Sequence[float] | np.ndarray | pd.Series) -> np.ndarray:
        """Calibrated z (≥ 0) for each score; a Series in gives an array out, same order."""
        p = self.tail_probability(scores)
        with np.errstate(invalid="ignore"):
            z = -ndtri(np.clip(p, 1e-300, 1.0))
        z = np.clip(z, 0.0, MAX_Z)
        return np.where(np.isnan(p), np.nan, z)
