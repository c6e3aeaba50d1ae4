"""Calibration: a detector's raw score → a comparable z (Gaussian-equivalent tail quantile)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Self

import numpy as np
import pandas as pd
from scipy.special import ndtri_exp

from telewatch.core.errors import NotFoundError, ValidationError

#: The calibrated z never exceeds this; only an infinite raw score gets there (z is computed from the
#: log tail probability, so finite scores keep their order far beyond p = 1e-300, z ≈ 37).
MAX_Z = 1e6
#: The z of every score above constant training scores (nothing to scale a deviation by): about
#: p = 1e-300, where z used to stop for every score.
DEGENERATE_Z = 37.0
#: :class:`Calibrator`: excesses beyond this many robust tail scales (median excess / ln 2) are isolated
#: extremes — on an exponential tail that happens with probability e^-30 ≈ 1e-13 — and, when they are
#: few (at most TRIM_MAX_POINTS or TRIM_MAX_SHARE of the tail), are left out of the mean excess and the
#: range: a spike among the training scores does not set the scale it is measured in.
TRIM_SCALES = 30.0
TRIM_MAX_POINTS = 3
TRIM_MAX_SHARE = 0.01
#: :func:`screen_anomalies`: z (under the contamination-robust fit) from which a point is suspect.
SCREEN_Z = 5.0
#: :func:`screen_anomalies`: the quantile above which the contamination-robust tail is fitted.
SCREEN_TAIL = 0.8
#: :func:`screen_anomalies`: the suspects are only left out when they are at least this share of the
#: points a :class:`Calibrator` fits its tail to (a few isolated extremes hardly move the fit).
SCREEN_MIN_SHARE = 0.1
_MAX = float(np.finfo(np.float64).max)


class Calibrator:
    """Learns the distribution of a detector's own training scores and maps a raw score to
    ``z = Φ⁻¹(1 - p)``, ``p`` the estimated probability of a score at least that high.

    Below the ``tail`` quantile ``u`` the empirical survival function (on ``quantiles`` levels) is used; above it an
    exponential tail is fitted to the excesses over ``u`` (a peaks-over-threshold estimate), so a
    score beyond anything seen in training still gets a finite, growing z instead of saturating.
    The tail's scale is the mean excess (``scale="mean"``, the maximum-likelihood estimate, leaving out
    a few isolated extremes: :data:`TRIM_SCALES`) or, robust to a contaminated tail, the median excess
    / ln 2 (``scale="median"``; equal for an exponential tail), at least 1 % of the training scores'
    range (without those extremes). z comes from
    the log tail probability, so it keeps growing with the raw score (about ``sqrt(2 (s - u) / scale)``
    far out): a 10× spike scores clearly above a 3× one, with no shared ceiling.
    z is at least 0 (typical points are 0), NaN stays NaN. Scores of different detectors (and
    metrics) become comparable: z = 5 means "about 3 in 10 million" for every one of them.

    >>> rng = np.random.default_rng(0)
    >>> cal = Calibrator().train(np.abs(rng.normal(0, 1, 20_000)))
    >>> z = cal(np.array([0.1, 2.0, 4.0, np.nan]))
    >>> [round(float(v), 1) for v in z[:3]], bool(np.isnan(z[3]))
    ([0.0, 1.7, 3.6], True)
    """

    def __init__(
        self,
        tail: float = 0.98,
        quantiles: int = 512,
        min_excess: float = 1e-12,
        scale: Literal["mean", "median"] = "mean",
    ) -> None:
        if not 0.5 <= tail < 1.0:
            raise ValidationError(f"Calibrator: tail must be in [0.5, 1), got {tail}")
        if scale not in ("mean", "median"):
            raise ValidationError(f"Calibrator: scale must be 'mean' or 'median', got {scale!r}")
        self.tail = tail
        self.scale = scale
        self.quantiles = quantiles
        self.min_excess = min_excess

    def train(self, scores: Sequence[float] | np.ndarray | pd.Series, labels: object = None) -> Self:
        """Learn from training scores (NaNs ignored); ``labels`` are accepted and not needed."""
        s = np.asarray(scores, dtype="float64").ravel()
        s = s[np.isfinite(s)]
        if s.size == 0:
            s = np.zeros(1)
        return self.train_finite(s, np.sort(s))

    def train_finite(self, s: np.ndarray, ordered: np.ndarray) -> Self:
        """:meth:`train` on finite scores ``s`` (1-D, at least one) given ``ordered``, the same
        scores sorted: every quantile is read off that one sort (:func:`sorted_quantile`, equal to
        ``np.quantile``), instead of a partition for 512 levels and another for ``u``. A caller
        that sorted the scores already (the screen before it) passes its sort."""
        probs = np.linspace(0.0, 1.0, self.quantiles)
        self.levels_ = sorted_quantile(ordered, probs)
        self.n_ = s.size
        self.u_ = float(sorted_quantile(ordered, self.tail))
        self.beta_, self.p_u_ = tail_fit(
            s, self.u_, float(self.levels_[0]), float(self.levels_[-1]), self.scale, self.min_excess
        )
        # constant training scores (a flat stretch): no scale to measure a deviation in, so every
        # score above them is "beyond anything seen" alike — z stops at DEGENERATE_Z
        self.degenerate_ = self.beta_ <= self.min_excess
        return self

    def log_tail_probability(self, scores: Sequence[float] | np.ndarray | pd.Series) -> np.ndarray:
        """Natural log of the estimated ``P(score >= s)`` (NaN stays NaN); finite far beyond 1e-300."""
        s = np.asarray(scores, dtype="float64")
        return self._log_tail(s, np.isnan(s))

    def _log_tail(self, s: np.ndarray, nan: np.ndarray) -> np.ndarray:
        # written for the few points of a tick (tens of thousands of calls a tick): plain ufuncs and
        # masks, no nan_to_num / clip, one errstate; the values are those of the vectorised formula
        if not hasattr(self, "levels_"):
            raise NotFoundError("Calibrator: call train() before use")
        clean = s
        if nan.any() or np.isinf(s).any():  # as np.nan_to_num: NaN -> 0, ±inf -> ±max
            clean = np.where(nan, 0.0, s)
            clean = np.where(clean == np.inf, _MAX, np.where(clean == -np.inf, -_MAX, clean))
        # share of training quantiles at or above s (ties count as "at least as high"): at most 1
        p = 1.0 - np.searchsorted(self.levels_, clean, side="left") / self.levels_.size
        log_p = np.log(np.maximum(p, 1e-300))
        with np.errstate(over="ignore", invalid="ignore"):
            tail = np.log(self.p_u_) - (s - self.u_) / self.beta_
        log_p = np.where(
            s > self.u_, tail, log_p
        )  # above u the fitted tail, not the (saturating) empirical one
        return np.where(nan, np.nan, np.minimum(log_p, 0.0))

    def tail_probability(self, scores: Sequence[float] | np.ndarray | pd.Series) -> np.ndarray:
        """Estimated ``P(score >= s)`` under the training distribution, at least 1e-300 (NaN stays
        NaN)."""
        log_p = self.log_tail_probability(scores)
        with np.errstate(invalid="ignore"):
            return np.where(np.isnan(log_p), np.nan, np.clip(np.exp(log_p), 1e-300, 1.0))

    def __call__(self, scores: Sequence[float] | np.ndarray | pd.Series) -> np.ndarray:
        """Calibrated z (≥ 0) for each score; a Series in gives an array out, same order."""
        s = np.asarray(scores, dtype="float64")
        if s.ndim == 1 and np.isfinite(s).all():
            return self._z_finite(s)
        nan = np.isnan(s)
        log_p = self._log_tail(s, nan)  # NaN exactly where s is; never above 0
        # -ndtri_exp of log_p with NaN -> 0 and -inf -> -1e300; then z's NaN and -inf -> 0, +inf ->
        # MAX_Z, clipped to [0, DEGENERATE_Z or MAX_Z] (fmax drops NaN)
        arg = np.where(nan, 0.0, log_p)
        arg = np.where(arg == -np.inf, -1e300, arg)
        with np.errstate(invalid="ignore", over="ignore"):
            z = -ndtri_exp(arg)
        z = np.where(z == np.inf, MAX_Z, z)
        z = np.minimum(np.fmax(z, 0.0), DEGENERATE_Z if self.degenerate_ else MAX_Z)
        return np.where(nan, np.nan, z)

    def _z_finite(self, s: np.ndarray) -> np.ndarray:
        """``self(s)`` for finite scores (a tick's few points, nearly always), in fewer steps: the
        empirical log tail probability looked up in a table of its possible values, the fitted tail
        only where a score is above ``u``."""
        if not hasattr(self, "levels_"):
            raise NotFoundError("Calibrator: call train() before use")
        table = self.__dict__.get("_log_p_table")
        if table is None:
            size = self.levels_.size
            # log(clip(1 - i / size, 1e-300, 1)) for every count i of levels below a score
            table = np.log(np.maximum(1.0 - np.arange(size + 1) / size, 1e-300))
            self._log_p_table = table
        log_p = table[np.searchsorted(self.levels_, s, side="left")]
        over = s > self.u_
        if over.any():
            with np.errstate(over="ignore", invalid="ignore"):
                tail = np.log(self.p_u_) - (s[over] - self.u_) / self.beta_
            log_p[over] = np.where(tail == -np.inf, -1e300, np.minimum(tail, 0.0))
        z = -ndtri_exp(log_p)  # finite, or -inf where log_p = 0
        return np.minimum(np.fmax(z, 0.0), DEGENERATE_Z if self.degenerate_ else MAX_Z)

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state.pop("_log_p_table", None)  # derived, rebuilt on first use
        return state


def sorted_quantile(ordered: np.ndarray, q: float | np.ndarray, *, first: int = 0) -> np.ndarray:
    """``np.quantile(values, q)`` (method "linear") given ``ordered``, the values sorted (1-D, no
    NaN, at least one): numpy's own index, gamma and interpolation steps on the same operands, so
    the same numbers, without numpy's partition for each call (512 levels cost a partition with
    over a thousand pivots). A float ``q`` gives a 0-d array.

    With ``first``, ``ordered`` holds only the order statistics ``first`` to the last of
    ``first + ordered.size`` values (a partition at ``first``, the rest sorted): enough for the
    quantiles whose neighbours lie there (a :class:`ValueError` otherwise)."""
    n = first + ordered.size
    prev, nxt, gamma = quantile_steps(n, q)
    if first:
        at_prev = np.where(prev < 0, prev, prev - first)
        at_next = np.where(nxt < 0, nxt, nxt - first)
        if (at_prev < -1).any():
            raise ValueError("sorted_quantile: a quantile below the order statistics given")
        return interpolate(ordered[at_prev], ordered[at_next], gamma)
    return interpolate(ordered[prev], ordered[nxt], gamma)


def quantile_steps(n: int, q: float | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.quantile``'s (method "linear") positions for ``n`` values: the order statistics below
    and above each ``q`` (``-1``, the last, for both at or past it) and the weight ``gamma`` of the
    upper one, computed as numpy computes them."""
    virtual = (n - 1) * np.asarray(q, dtype="float64")
    prev = np.floor(virtual)
    nxt = prev + 1
    above = virtual >= n - 1  # at or past the last value: the maximum
    prev = np.where(above, -1, prev).astype(np.intp)
    nxt = np.where(above, -1, nxt).astype(np.intp)
    return prev, nxt, virtual - prev


def interpolate(a: np.ndarray | float, b: np.ndarray | float, gamma: np.ndarray) -> np.ndarray:
    """``np.quantile``'s interpolation between the order statistics ``a`` and ``b`` (numpy's
    ``_lerp``: from ``a`` below ``gamma`` 0.5, from ``b`` at or above it)."""
    diff = np.subtract(b, a)
    out = np.asarray(a + diff * gamma)
    np.subtract(b, diff * (1 - gamma), out=out, where=gamma >= 0.5)
    return out


def tail_fit(
    s: np.ndarray,
    u: float,
    bottom: float,
    top: float,
    scale: Literal["mean", "median"] = "mean",
    min_excess: float = 1e-12,
) -> tuple[float, float]:
    """A :class:`Calibrator`'s tail above ``u`` for finite training scores ``s`` (any order; their
    minimum ``bottom`` and maximum ``top``): its scale ``beta`` and ``p_u``, the share above ``u``.
    Only ``u`` and the extremes are needed, not the 512 levels: a path that calibrates through the
    tail alone (the combined channel of ``novelty_seasonal``) takes these without them."""
    above = s > u
    excess = s[above] - u
    if not excess.size:
        beta = 0.0
    else:
        robust = float(np.median(excess)) / np.log(2.0)
        far = excess > TRIM_SCALES * robust if robust > 0 else np.zeros(excess.size, dtype=bool)
        # a few isolated extremes (the spike being scored, when it is among the training scores)
        # do not set the scale they are measured in; many (a detector whose tail is a mixture, as
        # novelty's tie-breakers below 0.01 and its novel values above 1) are the tail itself:
        # trimming those called every novel value extreme (RedLab month: 75 -> 496 anomalies)
        if 0 < far.sum() <= max(TRIM_MAX_POINTS, TRIM_MAX_SHARE * excess.size):
            excess = excess[~far]
            top = u + float(excess.max())  # the range leaves them out too
        beta = robust if scale == "median" else float(excess.mean())
    spread = top - bottom
    beta = max(beta, spread * 0.01, abs(u) * 0.01, min_excess)
    p_u = max(float(above.mean()), 1.0 / (s.size + 1))
    return beta, p_u


class CalibratorStack:
    """Many trained :class:`Calibrator` s at once: a tick's new scores of thousands of series calibrated
    in a few array operations instead of one call per series, with the same z's bit for bit.

    Built once from the calibrators (their levels stacked in a matrix; reused while they stay the
    same objects, e.g. between two daily retrainings), then :meth:`z` maps a flat array of scores,
    each with the row of its calibrator, to what ``calibrators[row](scores_of_that_row)`` gives. A row
    holding a NaN or ±inf, or whose levels are not sorted, is handed to its own calibrator.

    >>> rng = np.random.default_rng(0)
    >>> cals = [Calibrator().train(np.abs(rng.normal(0, k + 1, 2_000))) for k in range(3)]
    >>> stack = CalibratorStack(cals)
    >>> scores = np.array([0.5, 9.0, 0.5, 9.0, 0.5, np.nan])
    >>> rows = np.array([0, 0, 1, 1, 2, 2])
    >>> got = stack.z(scores, rows)
    >>> want = np.concatenate([cals[r](scores[rows == r]) for r in range(3)])
    >>> bool(np.array_equal(got, want, equal_nan=True))
    True
    """

    def __init__(self, calibrators: Sequence[Calibrator] = ()) -> None:
        self._reset()
        self._add(list(calibrators))

    def _reset(self) -> None:
        self.calibrators: list[Calibrator] = []
        self._row: dict[int, int] = {}
        self.levels = np.empty((0, 0), dtype="float64")
        self.sizes = np.empty(0, dtype="int64")
        self.u = np.empty(0, dtype="float64")
        self.beta = np.empty(0, dtype="float64")
        self.log_p_u = np.empty(0, dtype="float64")
        self.cap = np.empty(0, dtype="float64")
        self.unsorted = np.empty(0, dtype=bool)
        self._tables: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.calibrators)

    def _add(self, calibrators: list[Calibrator]) -> None:
        """Append rows for ``calibrators`` (trained ones, not in the stack yet)."""
        for cal in calibrators:
            if not hasattr(cal, "levels_"):
                raise NotFoundError("Calibrator: call train() before use")
        if not calibrators:
            return
        first = len(self.calibrators)
        sizes = np.array([cal.levels_.size for cal in calibrators], dtype="int64")
        width = max(int(sizes.max()), self.levels.shape[1])
        levels = np.full((len(calibrators), width), np.inf)
        for i, cal in enumerate(calibrators):
            levels[i, : cal.levels_.size] = cal.levels_
        if width > self.levels.shape[1]:  # wider than the rows so far: pad those with +inf
            wider = np.full((self.levels.shape[0], width), np.inf)
            wider[:, : self.levels.shape[1]] = self.levels
            self.levels = wider
        self.levels = np.concatenate([self.levels, levels]) if first else levels
        self.sizes = np.concatenate([self.sizes, sizes])
        self.u = np.concatenate([self.u, [cal.u_ for cal in calibrators]])
        self.beta = np.concatenate([self.beta, [cal.beta_ for cal in calibrators]])
        # np.log of each p_u as the calibrator itself takes it (one scalar at a time)
        self.log_p_u = np.concatenate([self.log_p_u, [np.log(cal.p_u_) for cal in calibrators]])
        self.cap = np.concatenate(
            [self.cap, [DEGENERATE_Z if cal.degenerate_ else MAX_Z for cal in calibrators]]
        )
        # rows whose levels are not sorted (or hold NaN): a binary search there would not be
        # searchsorted's answer, so they are handed to their calibrator
        bad = np.isnan(levels).any(axis=1)
        if width > 1:
            with np.errstate(invalid="ignore"):  # inf - inf in the padding: NaN, not < 0
                bad |= (np.diff(levels, axis=1) < 0).any(axis=1)
        self.unsorted = np.concatenate([self.unsorted, bad])
        for size in np.unique(sizes).tolist():
            if size not in self._tables:
                # log(clip(1 - i / size, 1e-300, 1)) for every count i of levels below a score
                self._tables[size] = np.log(np.maximum(1.0 - np.arange(size + 1) / size, 1e-300))
        for i, cal in enumerate(calibrators):
            self._row[id(cal)] = first + i
        self.calibrators += calibrators

    def rows_of(self, calibrators: Sequence[Calibrator]) -> np.ndarray | None:
        """The row of each of ``calibrators`` in this stack (``None`` when one is not in it)."""
        out = np.empty(len(calibrators), dtype="int64")
        for i, cal in enumerate(calibrators):
            row = self._row.get(id(cal))
            if row is None or self.calibrators[row] is not cal:
                return None
            out[i] = row
        return out

    def rows_for(self, calibrators: Sequence[Calibrator]) -> np.ndarray:
        """The row of each of ``calibrators``, appending the ones not in the stack yet (a retrained
        model's new calibrator). When the stack holds more than twice as many rows as asked for
        (calibrators of models retrained since), it is rebuilt from ``calibrators`` alone."""
        out = np.empty(len(calibrators), dtype="int64")
        missing: list[Calibrator] = []
        for i, cal in enumerate(calibrators):
            row = self._row.get(id(cal))
            if row is None or self.calibrators[row] is not cal:
                out[i] = -1
                missing.append(cal)
            else:
                out[i] = row
        if not missing:
            return out
        if len(self.calibrators) + len(missing) > 2 * max(len(calibrators), 1):
            self._reset()
            self._add(list(dict.fromkeys(calibrators)))
            return np.array([self._row[id(cal)] for cal in calibrators], dtype="int64")
        self._add(list(dict.fromkeys(missing)))
        for i in np.flatnonzero(out < 0).tolist():
            out[i] = self._row[id(calibrators[i])]
        return out

    def z(self, scores: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Calibrated z of each score (1-D), ``rows[k]`` the row of the calibrator for ``scores[k]``:
        equal to calling that calibrator on the scores of its row (in their order)."""
        s = np.asarray(scores, dtype="float64")
        rows = np.asarray(rows, dtype="int64")
        if s.shape != rows.shape or s.ndim != 1:
            raise ValidationError("CalibratorStack.z: one row index per score, both 1-D")
        out = np.empty(s.size, dtype="float64")
        if not s.size:
            return out
        odd = ~np.isfinite(s)
        bad_rows = self.unsorted[rows]
        if odd.any():
            bad_rows = bad_rows | np.isin(rows, rows[odd])
        if bad_rows.any():  # rare: each such row on its own, as its calibrator computes it
            for row in np.unique(rows[bad_rows]).tolist():
                at = rows == row
                out[at] = self.calibrators[row](s[at])
            good = ~bad_rows
            out[good] = self._z_finite(s[good], rows[good])
            return out
        return self._z_finite(s, rows)

    def _z_finite(self, s: np.ndarray, rows: np.ndarray) -> np.ndarray:
        # Calibrator._z_finite, element by element: the same floating-point operations on the same
        # operands, so the same results
        if not s.size:
            return np.empty(0, dtype="float64")
        levels, sizes = self.levels, self.sizes[rows]
        # searchsorted(levels[row], s, side="left"): a binary search per score, all scores at once
        lo = np.zeros(s.size, dtype="int64")
        hi = sizes.copy()
        active = lo < hi
        while active.any():
            mid = (lo + hi) >> 1
            less = levels[rows, np.minimum(mid, levels.shape[1] - 1)] < s
            go_right = active & less
            go_left = active & ~less
            lo = np.where(go_right, mid + 1, lo)
            hi = np.where(go_left, mid, hi)
            active = lo < hi
        if len(self._tables) == 1:
            log_p = next(iter(self._tables.values()))[lo]
        else:
            log_p = np.empty(s.size, dtype="float64")
            for size, table in self._tables.items():
                at = sizes == size
                log_p[at] = table[lo[at]]
        u = self.u[rows]
        over = s > u
        if over.any():
            r = rows[over]
            with np.errstate(over="ignore", invalid="ignore"):
                tail = self.log_p_u[r] - (s[over] - u[over]) / self.beta[r]
            log_p[over] = np.where(tail == -np.inf, -1e300, np.minimum(tail, 0.0))
        z = -ndtri_exp(log_p)
        return np.minimum(np.fmax(z, 0.0), self.cap[rows])


def calibrate_many(
    calibrators: Sequence[Calibrator], scores: Sequence[np.ndarray], stack: CalibratorStack | None = None
) -> list[np.ndarray]:
    """``[cal(s) for cal, s in zip(calibrators, scores)]`` in one vectorised pass, on ``stack`` (kept
    by the caller from one call to the next: it gains the calibrators it does not hold yet) or a
    new :class:`CalibratorStack`."""
    if len(calibrators) != len(scores):
        raise ValidationError("calibrate_many: one calibrator per array of scores")
    if not calibrators:
        return []
    if stack is None:
        stack = CalibratorStack()
    rows = stack.rows_for(calibrators)
    parts = [np.asarray(s, dtype="float64").ravel() for s in scores]
    sizes = np.array([p.size for p in parts], dtype="int64")
    flat = np.concatenate(parts) if parts else np.empty(0)
    z = stack.z(flat, np.repeat(rows, sizes))
    return np.split(z, np.cumsum(sizes)[:-1])


def screen_anomalies(
    scores: Sequence[float] | np.ndarray | pd.Series,
    *,
    z: float = SCREEN_Z,
    pad: int = 5,
    min_share: float = SCREEN_MIN_SHARE,
) -> np.ndarray:
    """The points to leave out of a detector's refit and calibration because they look anomalous
    themselves: a mask aligned with ``scores`` (NaN is never suspect).

    A :class:`Calibrator` trained on scores that hold a long incident (an outage, a level shift) fits
    its tail to the incident — a few hundred anomalous points dominate the mean excess — and calibrates
    it away. This screen fits the tail robustly instead (above the :data:`SCREEN_TAIL` quantile, scale =
    median excess / ln 2, so up to about 10 % of the points may be anomalous: an outage a detector
    holds for hours is a few percent of a fortnight) and marks the points with z ≥
    ``z`` there, widened by ``pad`` points either side (a detector's lag). It marks nothing unless the
    suspects are at least ``min_share`` of the points above a default Calibrator's 98th percentile:
    on clean data, leaving out a few of the highest scores would shrink the fitted tail and raise the
    false-alarm rate (the scores' own extremes are part of their distribution).

    >>> rng = np.random.default_rng(1)
    >>> clean = np.abs(rng.normal(0, 1, 10_000))
    >>> int(screen_anomalies(clean).sum())
    0
    >>> dirty = clean.copy()
    >>> dirty[5_000:5_100] = 30.0  # a 100-point incident: half the tail sample
    >>> m = screen_anomalies(dirty)
    >>> bool(m[5_000:5_100].all()), int(m.sum())
    (True, 110)
    """
    s = np.asarray(scores, dtype="float64").ravel()
    mask = np.zeros(s.size, dtype=bool)
    finite = np.isfinite(s)
    if finite.sum() < 20:
        return mask
    robust = Calibrator(tail=SCREEN_TAIL, scale="median").train(s[finite])
    suspect = np.nan_to_num(robust(s), nan=0.0) >= z
    if suspect.sum() < min_share * (1.0 - 0.98) * finite.sum():
        return mask
    if pad > 0:
        suspect = np.convolve(suspect.astype("int64"), np.ones(2 * pad + 1, dtype="int64"), mode="same") > 0
    return suspect & finite
