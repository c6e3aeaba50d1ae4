"""Time-series cross-validation and threshold choice, without look-ahead.

* :func:`rolling_origin_splits` — rolling-origin folds: each test window lies strictly after its
  training window (optionally with a ``gap`` between), and the windows march forward in time.
* :func:`choose_threshold` — a threshold from *training* scores alone: a quantile, or POT (peaks over
  threshold: a generalized Pareto tail fitted above an initial quantile, as in SPOT, Siffer et al.
  KDD 2017).
* :func:`cross_validate_threshold` — the honest way to tune a threshold with the team's own labels:
  pick it on each training fold by composite F1, report the metric on the following test fold.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

from telewatch.bench.metrics import PRF, composite_f1, composite_f1_curve, pool
from telewatch.core.errors import ValidationError

Split = tuple[slice, slice]


def rolling_origin_splits(
    n: int, *, n_splits: int, min_train: int, horizon: int, gap: int = 0, expanding: bool = True
) -> list[Split]:
    """``n_splits`` (train, test) slice pairs over ``range(n)``; every test index > every train index.

    The test windows are the last ``n_splits * horizon`` rows, ``horizon`` rows each, in time order.
    Train ends ``gap`` rows before its test window; it starts at 0 (``expanding``) or holds the last
    ``min_train`` rows (sliding). Raises :class:`ValidationError` if the first fold would have fewer
    than ``min_train`` training rows.

    >>> for tr, te in rolling_origin_splits(10, n_splits=3, min_train=4, horizon=2):
    ...     print(tr, te)
    slice(0, 4, None) slice(4, 6, None)
    slice(0, 6, None) slice(6, 8, None)
    slice(0, 8, None) slice(8, 10, None)
    >>> rolling_origin_splits(10, n_splits=2, min_train=3, horizon=2, gap=1, expanding=False)
    [(slice(2, 5, None), slice(6, 8, None)), (slice(4, 7, None), slice(8, 10, None))]
    """
    for name, value, low in (
        ("n_splits", n_splits, 1),
        ("min_train", min_train, 1),
        ("horizon", horizon, 1),
        ("gap", gap, 0),
        ("n", n, 0),
    ):
        if int(value) != value or value < low:
            raise ValidationError(f"rolling_origin_splits: {name} must be an integer >= {low}, got {value!r}")
    first_test = n - n_splits * horizon
    if first_test - gap < min_train:
        raise ValidationError(
            f"rolling_origin_splits: {n} rows cannot hold {n_splits} test windows of {horizon} rows, "
            f"a gap of {gap} and {min_train} training rows"
        )
    splits: list[Split] = []
    for i in range(n_splits):
        test_start = first_test + i * horizon
        train_end = test_start - gap
        train_start = 0 if expanding else train_end - min_train
        splits.append((slice(train_start, train_end), slice(test_start, test_start + horizon)))
    return splits


def choose_threshold(
    scores_train: npt.ArrayLike,
    method: Literal["quantile", "pot"] = "quantile",
    q: float = 0.995,
    *,
    init_q: float = 0.98,
    risk: float = 1e-3,
    min_peaks: int = 10,
) -> float:
    """A threshold from training scores only (NaN ignored).

    ``quantile``: the ``q`` quantile. ``pot``: fit a generalized Pareto distribution
    (``scipy.stats.genpareto``, location 0) to the excesses over the ``init_q`` quantile ``t`` and
    return the level exceeded with probability ``risk``:
    ``t + sigma/xi * ((risk * n / n_peaks) ** -xi - 1)`` (``t - sigma * log(risk * n / n_peaks)`` when
    ``xi`` ≈ 0). If there are fewer than ``min_peaks`` excesses, the fit fails or gives a non-finite
    level, it falls back to the ``q`` quantile (with a warning).

    >>> x = np.random.default_rng(0).exponential(size=20_000)
    >>> round(choose_threshold(x, "quantile", q=0.999), 1)
    6.8
    >>> 6.0 < choose_threshold(x, "pot", risk=1e-3) < 8.0   # exact answer: ln(1000) = 6.9
    True
    """
    x = np.asarray(scores_train, dtype="float64").ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        raise ValidationError("choose_threshold: no finite training scores")
    if not 0.0 < q < 1.0 or not 0.0 < init_q < 1.0 or not 0.0 < risk < 1.0:
        raise ValidationError("choose_threshold: q, init_q and risk must lie in (0, 1)")
    fallback = float(np.quantile(x, q))
    if method == "quantile":
        return fallback
    if method != "pot":
        raise ValidationError(f"choose_threshold: unknown method {method!r} (quantile or pot)")
    t = float(np.quantile(x, init_q))
    excess = x[x > t] - t
    if excess.size < min_peaks or np.ptp(excess) == 0.0:
        warnings.warn(f"POT: only {excess.size} distinct peaks; using the {q} quantile", stacklevel=2)
        return fallback
    try:
        xi, _, sigma = stats.genpareto.fit(excess, floc=0.0)
    except Exception as exc:  # scipy raises several types on degenerate data
        warnings.warn(f"POT fit failed ({exc}); using the {q} quantile", stacklevel=2)
        return fallback
    ratio = risk * x.size / excess.size
    level = t - sigma * math.log(ratio) if abs(xi) < 1e-8 else t + sigma / xi * (ratio ** (-xi) - 1.0)
    if not math.isfinite(level) or sigma <= 0:
        warnings.warn("POT gave a non-finite level; using the quantile", stacklevel=2)
        return fallback
    return float(level)


@dataclass(frozen=True)
class CVFold:
    """One fold: rows ``[start, stop)`` of each part, the threshold picked on train, its train
    composite F1 and the test fold's composite F1 (``test``)."""

    train_rows: tuple[int, int]
    test_rows: tuple[int, int]
    threshold: float
    train_f1: float
    test: PRF


@dataclass(frozen=True)
class CVResult:
    """Per-fold results and the test folds pooled (counts summed)."""

    folds: list[CVFold]
    pooled: PRF

    @property
    def mean_test_f1(self) -> float:
        return float(np.mean([f.test.f1 for f in self.folds]))


def cross_validate_threshold(
    scores: npt.ArrayLike,
    labels: npt.ArrayLike,
    splits: Sequence[Split],
    candidates: npt.ArrayLike | None = None,
) -> CVResult:
    """For each split, pick the candidate threshold with the best composite F1 on the train part and
    report composite F1 of ``scores > threshold`` on the test part (alarm rule: strictly above).

    ``candidates`` defaults to 101 quantiles (0.90 … 1.0) of each fold's training scores. A train fold
    without labelled events cannot rank thresholds: it gets its 0.995 quantile.

    >>> rng = np.random.default_rng(1)
    >>> y = np.zeros(2000, dtype=int); y[[300, 301, 900, 1500, 1501, 1800]] = 1
    >>> s = rng.normal(size=2000) + 6 * y
    >>> cv = cross_validate_threshold(s, y, rolling_origin_splits(2000, n_splits=2, min_train=1000,
    ...                                                           horizon=500))
    >>> [f.test.events_detected for f in cv.folds], cv.pooled.recall
    ([0, 2], 1.0)
    """
    s = np.asarray(scores, dtype="float64").ravel()
    y = np.asarray(labels).ravel() != 0
    if s.shape != y.shape:
        raise ValidationError(f"scores and labels differ in length: {s.size} != {y.size}")
    folds: list[CVFold] = []
    for train, test in splits:
        s_tr, y_tr = s[train], y[train]
        if len(s_tr) == 0 or len(s[test]) == 0:
            raise ValidationError("cross_validate_threshold: empty train or test fold")
        if train.stop is not None and test.start is not None and test.start < train.stop:
            raise ValidationError("cross_validate_threshold: a test fold starts before its train fold ends")
        finite = s_tr[np.isfinite(s_tr)]
        if candidates is None:
            cands = (
                np.unique(np.quantile(finite, np.linspace(0.90, 1.0, 101))) if finite.size else np.zeros(1)
            )
        else:
            cands = np.asarray(candidates, dtype="float64").ravel()
        if y_tr.any():
            curve = composite_f1_curve(s_tr, y_tr, cands)
            best = int(np.argmax(curve))
            threshold, train_f1 = float(cands[best]), float(curve[best])
        else:
            threshold = float(np.quantile(finite, 0.995)) if finite.size else 0.0
            train_f1 = 0.0
        pred = np.nan_to_num(s[test], nan=-np.inf) > threshold
        folds.append(
            CVFold(
                train_rows=(int(train.start or 0), int(train.stop)),
                test_rows=(int(test.start), int(test.stop)),
                threshold=threshold,
                train_f1=train_f1,
                test=composite_f1(pred, y[test]),
            )
        )
    if not folds:
        raise ValidationError("cross_validate_threshold: no splits")
    return CVResult(folds=folds, pooled=pool(f.test for f in folds))
