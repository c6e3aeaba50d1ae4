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
    recent median, so a repeated spike still stands out from quiet points. It costs nearly all of
    the detector's time (two rolling medians) and never moves a NAB score (it stays below the
    corpus threshold); ``tie_breaker=False`` leaves it out, for a detector that ranks the
    non-novel points its own way (``novelty_seasonal``'s seasonal channel).

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

    context_is_training = True  # the memory of visited values (see Detector.context_is_training)

    #: models stored before the parameter existed have the tie-breaker
    tie_breaker: bool = True

    def __init__(
        self, bins: int = 100, cooldown: int = 1000, local_window: int = 60, tie_breaker: bool = True
    ) -> None:
        self.bins = bins
        self.cooldown = cooldown
        self.local_window = local_window
        self.tie_breaker = tie_breaker

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
            tie=bool(self.tie_breaker),
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
        return _kernels.novelty_scores(
            arr, low, width, cooldown=self.cooldown, window=self.local_window, tie=bool(self.tie_breaker)
        )

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
        ``models[i].score(new_i, context=context_i)`` gives them. The models must share
        ``cooldown`` and ``local_window``.

        ``carries[i]`` keeps, between calls, ``novelty``: the tie-breaker's two sliding windows and
        the bins the series visited with the position of each one's latest visit
        (``telewatch.detectors._novelty_streaming``). With it a tick of five new points slides two
        windows five times and looks five bins up, instead of rebuilding the memory and two
        rolling medians from a day of context; a row whose new points reach a bin the context has
        not visited (a novelty), whose carry is missing or whose fit changed is scored over its
        whole context and its carry rebuilt. Same scores either way.

        >>> idx = pd.date_range("2024-01-01", periods=300, freq="min")
        >>> s = pd.Series(np.sin(np.arange(300) / 9.0), index=idx)
        >>> det = Novelty().fit(s.iloc[:200])
        >>> one = det.score(s.iloc[290:], context=s.iloc[150:290]).to_numpy()
        >>> many = Novelty.score_contexts([det, det], [s.iloc[150:290].to_numpy(), s.iloc[280:290].to_numpy()],
        ...                               np.stack([s.iloc[290:].to_numpy()] * 2))
        >>> bool(np.allclose(many[0], one))
        True
        >>> carry: dict[str, np.ndarray] = {}
        >>> _ = Novelty.score_contexts([det], [s.iloc[140:285].to_numpy()], s.iloc[285:290].to_numpy()[None, :], [carry])
        >>> sorted(carry)
        ['novelty']
        >>> again = Novelty.score_contexts([det], [s.iloc[150:290].to_numpy()], s.iloc[290:].to_numpy()[None, :], [carry])
        >>> bool(np.array_equal(again[0], one))
        True
        """
        from telewatch.detectors import _novelty_streaming as ns

        new = np.asarray(new, dtype="float64")
        if new.ndim != 2 or new.shape[0] != len(models) or len(contexts) != len(models):
            raise ValueError("score_contexts: one model, one context and one row of new points per series")
        if len({(int(m.cooldown), int(m.local_window)) for m in models}) > 1:  # type: ignore[attr-defined]
            raise ValueError("score_contexts: the models must share cooldown and local_window")
        n, m = new.shape
        w = int(models[0].local_window)  # type: ignore[attr-defined]
        if w < 2:
            raise ValueError(f"novelty: local_window must be at least 2, got {w}")
        cooldown = max(int(models[0].cooldown), 1)  # type: ignore[attr-defined]
        kept = carries if carries is not None else [{} for _ in range(n)]
        low = np.array([float(mo.low_) for mo in models])  # type: ignore[attr-defined]
        width = np.array([float(mo.width_) for mo in models])  # type: ignore[attr-defined]
        ctx = [np.asarray(c, dtype="float64") for c in contexts]
        size = np.array([c.size for c in ctx], dtype="int64")
        last = np.array([c[-1] if c.size else np.nan for c in ctx])
        held = [k.get("novelty") for k in kept]
        offsets = np.zeros(n + 1, dtype="int64")
        np.cumsum([0 if h is None else h.size for h in held], out=offsets[1:])
        flat = np.concatenate([h for h in held if h is not None]) if offsets[-1] else np.empty(0)
        # zeros, not empty: the rows fast_rows leaves (redone below) are added up here too, and
        # uninitialised memory there could hold inf - inf (a RuntimeWarning, now and then)
        memory, tie = np.zeros((n, m)), np.zeros((n, m))  # tie: rows redone below multiply it by 0 too
        status = np.zeros(n, dtype="uint8")
        sizes = np.zeros(n, dtype="int64")
        ns.fast_rows(
            flat, offsets, np.ascontiguousarray(new), low, width, size, last, w, memory, tie, status, sizes
        )
        tie_weight = np.array([1.0 if getattr(mo, "tie_breaker", True) else 0.0 for mo in models])
        scores = memory + tie * tie_weight[:, None]
        done = ns.MEMORY_DONE | ns.TIE_DONE
        for i in np.flatnonzero(status == done).tolist():
            kept[i]["novelty"] = flat[offsets[i] : offsets[i] + sizes[i]].copy()
        redo = np.flatnonzero(status != done)
        if redo.size:
            rows = redo.tolist()
            x = np.concatenate([part for i in rows for part in (ctx[i], new[i])])
            x_offsets = np.zeros(len(rows) + 1, dtype="int64")
            np.cumsum(size[redo] + m, out=x_offsets[1:])
            c_offsets = np.zeros(len(rows) + 1, dtype="int64")
            np.cumsum([ns.carry_size(w, int(size[i]) + m) for i in rows], out=c_offsets[1:])
            carry = np.empty(int(c_offsets[-1]))
            c_sizes = np.zeros(len(rows), dtype="int64")
            again = np.empty((len(rows), m))
            ns.full_rows(
                x,
                x_offsets,
                size[redo],
                low[redo],
                width[redo],
                cooldown,
                w,
                again,
                carry,
                c_offsets,
                c_sizes,
                tie_weight[redo],
            )
            scores[redo] = again
            for j, i in enumerate(rows):
                kept[i]["novelty"] = carry[c_offsets[j] : c_offsets[j] + c_sizes[j]].copy()
        scores[np.isnan(new)] = np.nan
        return scores
