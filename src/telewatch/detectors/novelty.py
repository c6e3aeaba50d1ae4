"""Value novelty: how far a value lands from every value seen before it."""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence

import numpy as np
import pandas as pd

from telewatch.detectors.bands import ExpectedBand
from telewatch.detectors.base import Detector
from telewatch.detectors.registry import register


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
        # the compiled kernel that score_matrix runs on many metrics at once (same numbers)
        from telewatch.detectors import _kernels

        x = series.to_numpy(dtype="float64").reshape(1, -1)
        scores = _kernels.novelty_scores(
            x,
            np.array([self.low_]),
            np.array([self.width_]),
            cooldown=self.cooldown,
            window=self.local_window,
        )
        return pd.Series(scores[0], index=series.index)

    def _expected(self, series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from telewatch.detectors import _kernels

        prev = series.shift(1)
        centre = _kernels.rolling_median(prev.to_numpy()[None, :], window=self.local_window, min_periods=1)[0]
        low = prev.expanding(1).min().to_numpy()
        high = prev.expanding(1).max().to_numpy()
        return centre, low, high

    def fit_score_rows(self, values: np.ndarray) -> np.ndarray:
        """Fit (each row's range) and score in the compiled kernels ``_score`` runs, over the matrix."""
        from telewatch.detectors import _kernels

        arr = np.ascontiguousarray(values, dtype="float64")
        low, width = _kernels.novelty_fit(arr, bins=self.bins)
        return _kernels.novelty_scores(arr, low, width, cooldown=self.cooldown, window=self.local_window)

    @classmethod
    def score_contexts(
        cls,
        models: Sequence[Detector],
        contexts: Sequence[np.ndarray],
        new: np.ndarray,
        carries: Sequence[MutableMapping[str, np.ndarray]] | None = None,
    ) -> np.ndarray:
        """Scores of the new points of many series at once: row ``i`` of ``new`` (all rows the same
        length) scored by ``models[i]`` after ``contexts[i]`` (the values just before them), as
        ``models[i].score(new_i, context=context_i)`` gives them — one compiled pass over a matrix
        (contexts left-padded with NaN, which leaves the memory and the trailing medians of the new
        points unchanged). The models must share ``cooldown`` and ``local_window``. Nothing is
        carried between calls (the memory is rebuilt from the context, as ``score`` does).

        >>> idx = pd.date_range("2024-01-01", periods=300, freq="min")
        >>> s = pd.Series(np.sin(np.arange(300) / 9.0), index=idx)
        >>> det = Novelty().fit(s.iloc[:200])
        >>> one = det.score(s.iloc[290:], context=s.iloc[150:290]).to_numpy()
        >>> many = Novelty.score_contexts([det, det], [s.iloc[150:290].to_numpy(), s.iloc[280:290].to_numpy()],
        ...                               np.stack([s.iloc[290:].to_numpy()] * 2))
        >>> bool(np.allclose(many[0], one))
        True
        """
        from telewatch.detectors import _kernels

        new = np.asarray(new, dtype="float64")
        if new.ndim != 2 or new.shape[0] != len(models) or len(contexts) != len(models):
            raise ValueError("score_contexts: one model, one context and one row of new points per series")
        if len({(int(m.cooldown), int(m.local_window)) for m in models}) > 1:  # type: ignore[attr-defined]
            raise ValueError("score_contexts: the models must share cooldown and local_window")
        width = max((c.size for c in contexts), default=0)
        m = new.shape[1]
        x = np.full((len(models), width + m), np.nan)
        for i, ctx in enumerate(contexts):
            if ctx.size:
                x[i, width - ctx.size : width] = ctx
        x[:, width:] = new
        scores = _kernels.novelty_scores(
            x,
            np.array([float(mo.low_) for mo in models]),  # type: ignore[attr-defined]
            np.array([float(mo.width_) for mo in models]),  # type: ignore[attr-defined]
            cooldown=int(models[0].cooldown),  # type: ignore[attr-defined]
            window=int(models[0].local_window),  # type: ignore[attr-defined]
        )[:, width:]
        scores[np.isnan(new)] = np.nan
        return scores
