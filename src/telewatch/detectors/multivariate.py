"""Multivariate detectors: one score per point for a *group* of metrics, and each metric's share of it.

A :class:`MultivariateDetector` learns a group's normal behaviour from a frame (rows = timestamps,
columns = metrics) with :meth:`~MultivariateDetector.fit`, scores each row with a causal
:meth:`~MultivariateDetector.score` (the score at ``t`` uses only the fitted state and rows at or
before ``t``; ``context=`` is history just before the frame) and says how much each metric contributed
to each row's score with :meth:`~MultivariateDetector.contributions` (same shape as the frame; each
row's contributions are non-negative and sum to the row's score, or to 0 where a score is negative).

Detectors here:

* ``mv_robust_z`` — per-metric robust z against train median/MAD, calibrated per metric against its
  own train scores, aggregated by ``max`` or ``mean`` (the baseline);
* ``mv_pca`` — PCA reconstruction error of the robustly standardised group (squared residual per
  metric, summed);
* ``mv_ensemble`` — the best SMD model: two per-metric views (static robust z, and deviation from a
  short trailing median), each calibrated against its own train scores, log-compressed, averaged,
  and aggregated as the mean of the ``top_k`` largest metrics (a few metrics breaking together count
  more than one noisy metric alone).
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, Literal, Self, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from telewatch.core.errors import ConfigError, ValidationError
from telewatch.core.params import Params
from telewatch.core.registry import Registry
from telewatch.core.series import MAD_TO_SIGMA, as_utc_index
from telewatch.detectors.base import NotFittedError

FloatArray = npt.NDArray[np.float64]


def validate_frame(frame: pd.DataFrame, *, name: str = "frame") -> pd.DataFrame:
    """Check and normalise a group of metrics: float64 columns, sorted unique UTC index.

    >>> idx = pd.date_range("2024-01-01", periods=2, freq="1min")
    >>> validate_frame(pd.DataFrame({"a": [1, 2], "b": [3.0, None]}, index=idx)).dtypes.tolist()
    [dtype('float64'), dtype('float64')]
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValidationError(f"{name}: expected a pandas DataFrame, got {type(frame).__name__}")
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise ValidationError(f"{name}: the index must be timestamps, got {type(frame.index).__name__}")
    if frame.shape[1] == 0:
        raise ValidationError(f"{name}: no metric columns")
    if frame.columns.has_duplicates:
        dup = frame.columns[frame.columns.duplicated()][0]
        raise ValidationError(f"{name}: duplicate metric column {dup!r}")
    try:
        values = pd.DataFrame(
            {c: pd.to_numeric(frame[c], errors="raise") for c in frame.columns}, index=frame.index
        ).astype("float64")
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{name}: values must be numeric ({exc})") from exc
    values.index = as_utc_index(frame.index)
    if values.index.hasnans:
        raise ValidationError(f"{name}: the index holds missing timestamps")
    if not values.index.is_monotonic_increasing:
        values = values.sort_index()
    if values.index.has_duplicates:
        dup_ts = values.index[values.index.duplicated()][0]
        raise ValidationError(f"{name}: duplicate timestamp {dup_ts.isoformat()}")
    return values


class MultivariateDetector(Params, ABC):
    """Base class of group detectors: public methods validate, protected hooks compute.

    Subclasses implement ``_fit(values)`` and ``_score_parts(values) -> (score, contributions)`` on
    float64 arrays (rows × metrics, NaN = missing); the hook must be causal row by row.
    """

    type_name: ClassVar[str] = ""
    persisted_as = "telewatch multivariate detector"
    #: small hyper-parameters that keep the conformance suite fast
    test_params: ClassVar[dict[str, Any]] = {}

    def fit(self, frame: pd.DataFrame) -> Self:
        """Learn the group's normal behaviour from ``frame`` (NaNs are ignored)."""
        frame = validate_frame(frame, name=f"{self.type_name}.fit")
        if len(frame) == 0:
            raise ValidationError(f"{self.type_name}.fit: the frame has no rows")
        self.columns_ = [str(c) for c in frame.columns]
        self._fit(frame.to_numpy(dtype="float64"))
        self.fitted_ = True
        return self

    def score(self, frame: pd.DataFrame, *, context: pd.DataFrame | None = None) -> pd.Series:
        """One score per row of ``frame``; higher is more anomalous; an all-NaN row scores NaN."""
        score, _ = self._parts(frame, context)
        return score

    def contributions(self, frame: pd.DataFrame, *, context: pd.DataFrame | None = None) -> pd.DataFrame:
        """Each metric's non-negative share of each row's score (rows sum to ``max(score, 0)``)."""
        _, contrib = self._parts(frame, context)
        return contrib

    def score_with_contributions(
        self, frame: pd.DataFrame, *, context: pd.DataFrame | None = None
    ) -> tuple[pd.Series, pd.DataFrame]:
        """:meth:`score` and :meth:`contributions` in one pass."""
        return self._parts(frame, context)

    def _parts(self, frame: pd.DataFrame, context: pd.DataFrame | None) -> tuple[pd.Series, pd.DataFrame]:
        if not getattr(self, "fitted_", False):
            raise NotFittedError(f"{self.type_name}: call fit() before score()")
        frame = self._align(validate_frame(frame, name=f"{self.type_name}.score"), "score")
        n_ctx = 0
        values = frame.to_numpy(dtype="float64")
        if context is not None and len(context):
            ctx = self._align(validate_frame(context, name=f"{self.type_name}.score context"), "context")
            if len(frame):
                ctx = ctx[ctx.index < frame.index[0]]
            n_ctx = len(ctx)
            values = np.vstack([ctx.to_numpy(dtype="float64"), values])
        if values.shape[0]:
            score, contrib = self._score_parts(values)
        else:
            score, contrib = np.empty(0), np.empty((0, len(self.columns_)))
        score, contrib = np.asarray(score[n_ctx:], dtype="float64"), np.asarray(contrib[n_ctx:])
        empty_row = np.isnan(frame.to_numpy(dtype="float64")).all(axis=1)
        score[empty_row] = np.nan
        contrib = contrib.copy()
        contrib[empty_row] = np.nan
        return (
            pd.Series(score, index=frame.index, name="score"),
            pd.DataFrame(contrib, index=frame.index, columns=frame.columns),
        )

    def _align(self, frame: pd.DataFrame, what: str) -> pd.DataFrame:
        cols = [str(c) for c in frame.columns]
        missing = [c for c in self.columns_ if c not in cols]
        if missing:
            raise ValidationError(f"{self.type_name}.{what}: metrics {missing} were fitted but are absent")
        frame = frame.copy()
        frame.columns = cols
        return frame[self.columns_]

    @abstractmethod
    def _fit(self, values: FloatArray) -> None: ...

    @abstractmethod
    def _score_parts(self, values: FloatArray) -> tuple[FloatArray, FloatArray]: ...


# -- registry --------------------------------------------------------------------------------------
_MV_REGISTRY: Registry[MultivariateDetector] = Registry("multivariate detector", kind="type")
M = TypeVar("M", bound=type[MultivariateDetector])


def register_multivariate(name: str) -> Callable[[M], M]:
    """Class decorator: make a multivariate detector available under ``name``."""
    return _MV_REGISTRY.register(name)  # type: ignore[return-value]


def available_multivariate_detectors() -> dict[str, type[MultivariateDetector]]:
    """Registered multivariate detector types, by name."""
    return _MV_REGISTRY.available()


def create_multivariate_detector(name: str, **params: Any) -> MultivariateDetector:
    """Build a multivariate detector from its registered name and hyper-parameters."""
    return _MV_REGISTRY.create(name, **params)


# -- shared maths ----------------------------------------------------------------------------------
def robust_center_scale(x: FloatArray, *, rel_floor: float = 0.01) -> tuple[FloatArray, FloatArray]:
    """Per-column median and robust scale (1.4826·MAD, else std, else a floor), NaN ignored."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns are handled below
        med = np.nan_to_num(np.nanmedian(x, axis=0)) if x.size else np.zeros(x.shape[1])
        mad = MAD_TO_SIGMA * np.nan_to_num(np.nanmedian(np.abs(x - med), axis=0))
        std = np.nan_to_num(np.nanstd(x, axis=0))
    scale = np.where(mad > 0, mad, std)
    return med, np.maximum(scale, np.maximum(np.abs(med) * rel_floor, 1e-9))


class ScoreCalibrator:
    """Per-column ``(s - median) / scale`` learned from train scores, so columns become comparable.

    ``scale = max(1.4826·MAD, (q99 - median) / 2.326)``, at least a tenth of the median column scale
    (columns constant in train borrow the others' scale instead of dividing by zero).
    """

    def fit(self, scores: FloatArray) -> ScoreCalibrator:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns are handled below
            med = np.nanmedian(scores, axis=0)
            mad = MAD_TO_SIGMA * np.nanmedian(np.abs(scores - med), axis=0)
            tail = (np.nanquantile(scores, 0.99, axis=0) - med) / 2.326
        scale = np.fmax(np.nan_to_num(mad), np.nan_to_num(tail))
        positive = scale[scale > 0]
        floor = float(np.median(positive)) if positive.size else 1.0
        self.median_ = np.nan_to_num(med)
        self.scale_ = np.maximum(scale, 0.1 * floor)
        return self

    def __call__(self, scores: FloatArray) -> FloatArray:
        return np.asarray((scores - self.median_) / self.scale_)


def _share(weights: FloatArray, score: FloatArray) -> FloatArray:
    """Split each row's ``score`` over columns in proportion to non-negative ``weights``."""
    w = np.nan_to_num(np.clip(weights, 0.0, None))
    total = w.sum(axis=1, keepdims=True)
    n = w.shape[1]
    even = np.full_like(w, 1.0 / max(n, 1))
    frac = np.divide(w, total, out=even, where=total > 0)
    return np.asarray(frac * np.clip(np.nan_to_num(score), 0.0, None)[:, None])


def trailing_median(values: FloatArray, window: int, gap: int = 0) -> FloatArray:
    """Median of the ``window`` rows before each row, leaving out the ``gap`` rows just before it,
    per column (NaN where none is known yet)."""
    frame = pd.DataFrame(values)
    median = frame.shift(1 + gap).rolling(window, min_periods=1).median()
    return np.asarray(median.to_numpy(), dtype="float64")


# -- detectors -------------------------------------------------------------------------------------
@register_multivariate("mv_robust_z")
class MultivariateRobustZ(MultivariateDetector):
    """Per-metric ``|x - median| / (1.4826·MAD)`` from train, calibrated per metric, then ``max``/``mean``.

    The baseline: no memory, no correlations. ``calibrate`` rescales each metric's z by its own
    train z distribution so that a naturally spiky metric does not dominate. Contributions: the
    score split in proportion to each metric's (positive) calibrated z.

    >>> idx = pd.date_range("2024-01-01", periods=200, freq="1min")
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame(rng.normal(size=(200, 3)), index=idx, columns=["cpu", "mem", "net"])
    >>> det = MultivariateRobustZ().fit(frame)
    >>> test = frame.copy(); test.iloc[150, 1] = 12.0
    >>> int(det.score(test).to_numpy().argmax()), det.contributions(test).iloc[150].idxmax()
    (150, 'mem')
    """

    def __init__(self, aggregate: Literal["max", "mean"] = "max", calibrate: bool = True) -> None:
        self.aggregate = aggregate
        self.calibrate = calibrate

    def _z(self, values: FloatArray) -> FloatArray:
        z = np.abs(values - self.center_) / self.scale_
        return self.calibrator_(z) if self.calibrate else z

    def _fit(self, values: FloatArray) -> None:
        if self.aggregate not in ("max", "mean"):
            raise ConfigError(f"mv_robust_z: aggregate must be 'max' or 'mean', got {self.aggregate!r}")
        self.center_, self.scale_ = robust_center_scale(values)
        self.calibrator_ = ScoreCalibrator().fit(np.abs(values - self.center_) / self.scale_)

    def _score_parts(self, values: FloatArray) -> tuple[FloatArray, FloatArray]:
        z = self._z(values)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns are handled below
            score = np.fmax.reduce(z, axis=1) if self.aggregate == "max" else np.nanmean(z, axis=1)
        # a negative calibrated max (every metric unusually close to its median) shares as "even"
        return np.asarray(score), _share(z, score)


@register_multivariate("mv_pca")
class MultivariatePCA(MultivariateDetector):
    """PCA model of the robustly standardised group: residual (SPE) plus Hotelling's T² terms.

    Metrics are centred and scaled by train median and robust scale; PCA keeps enough components to
    explain ``variance`` of the train variance (at most ``max_components``). The score adds

    * the squared prediction error (SPE, the reconstruction residual) over its train mean — it catches
      a *correlated break*: metrics that move together in train and part ways in test, each staying
      inside its own normal range — each metric contributing its residual²;
    * Hotelling's T² over the kept components, divided by their number — a large move *along* the
      normal correlations — shared out in proportion to each metric's reconstructed part².

    Missing values are imputed with the metric's median.

    >>> idx = pd.date_range("2024-01-01", periods=300, freq="1min")
    >>> base = np.sin(np.arange(300) / 20.0)
    >>> frame = pd.DataFrame({"in": base, "out": base + 0.01 * np.cos(np.arange(300))}, index=idx)
    >>> det = MultivariatePCA().fit(frame)
    >>> test = frame.copy(); test.iloc[200, 1] = -test.iloc[200, 0]   # in and out part ways
    >>> int(det.score(test).to_numpy().argmax())
    200
    """

    def __init__(self, variance: float = 0.9, max_components: int = 20) -> None:
        self.variance = variance
        self.max_components = max_components

    def _standardise(self, values: FloatArray) -> FloatArray:
        x = (values - self.center_) / self.scale_
        return np.asarray(np.where(np.isnan(x), 0.0, x))

    def _fit(self, values: FloatArray) -> None:
        if not 0.0 < self.variance <= 1.0:
            raise ConfigError(f"mv_pca: variance must lie in (0, 1], got {self.variance}")
        self.center_, self.scale_ = robust_center_scale(values)
        x = self._standardise(values)
        self.mean_ = x.mean(axis=0)
        x = x - self.mean_
        _, s, vt = np.linalg.svd(x, full_matrices=False)
        var = s**2 / max(x.shape[0] - 1, 1)
        total = var.sum()
        k = 0
        if total > 0:
            k = int(np.searchsorted(np.cumsum(var) / total, self.variance) + 1)
            k = min(k, self.max_components, vt.shape[0])
        self.components_ = vt[:k]
        self.eigenvalues_ = np.maximum(var[:k], 1e-12 * max(total, 1e-12))
        spe, _, _ = self._terms(values)
        mean_spe = float(spe.mean()) if spe.size else 0.0
        self.spe_scale_ = mean_spe if mean_spe > 1e-12 else 1.0

    def _terms(self, values: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        x = self._standardise(values) - self.mean_
        t = x @ self.components_.T
        recon = t @ self.components_
        resid2 = (x - recon) ** 2
        t2 = (t**2 / self.eigenvalues_).sum(axis=1)
        return resid2.sum(axis=1), resid2, np.column_stack([t2, recon**2]) if len(x) else np.empty((0, 1))

    def _score_parts(self, values: FloatArray) -> tuple[FloatArray, FloatArray]:
        _, resid2, t2_recon = self._terms(values)
        k = max(self.components_.shape[0], 1)
        t2 = t2_recon[:, 0] / k
        spe_part = resid2 / self.spe_scale_
        t2_part = _share(t2_recon[:, 1:], t2)
        contrib = spe_part + t2_part  # a missing value was imputed with its median: it still counts
        return contrib.sum(axis=1), contrib


@register_multivariate("mv_ensemble")
class MultivariateEnsemble(MultivariateDetector):
    """Calibrated per-metric evidence from two views, aggregated over the few most anomalous metrics.

    For each metric:

    * **static**: ``|x - median_train| / scale_train`` (catches a metric far from its normal range);
    * **short-term**: ``|x - median of the window rows before the previous gap rows|``, scaled by the
      train distribution of that deviation (catches a sudden jump even inside the normal range; the
      ``gap`` keeps a spike that lasts from becoming its own reference: with the median of the 10
      rows just before, a 20-minute 6-sigma spike in one of eight metrics spoke for 5 rows and was
      missed on one seed in ten at the bench's POT threshold, with ``gap=10`` it is caught on all);

    each is calibrated against its own train scores (median/MAD/q99, see :class:`ScoreCalibrator`),
    the two are averaged with weight ``static_weight`` and compressed with ``log1p`` (one metric at
    1000 σ must not outvote several at 10 σ). A row's score is the mean of its ``top_k`` largest metric
    scores (``top_k`` = ``top_share`` of the metrics, at least 1, when not given): a break in several
    metrics at once outranks noise in one. Contributions split the score in proportion to each
    metric's compressed score. Tuned on SMD with thresholds from train scores only (docs/detectors-ml.md).

    >>> idx = pd.date_range("2024-01-01", periods=400, freq="1min")
    >>> rng = np.random.default_rng(1)
    >>> frame = pd.DataFrame(rng.normal(size=(400, 5)), index=idx, columns=list("abcde"))
    >>> det = MultivariateEnsemble().fit(frame.iloc[:300])
    >>> test = frame.iloc[300:].copy(); test.iloc[50, [1, 3]] += 9.0
    >>> s = det.score(test, context=frame.iloc[:300])
    >>> int(s.to_numpy().argmax()), sorted(det.contributions(test).iloc[50].nlargest(2).index)
    (50, ['b', 'd'])
    """

    def __init__(
        self,
        window: int = 10,
        static_weight: float = 0.5,
        top_k: int | None = None,
        top_share: float = 0.2,
        gap: int = 10,
    ) -> None:
        self.window = window
        self.gap = gap
        self.static_weight = static_weight
        self.top_k = top_k
        self.top_share = top_share

    def _raw(self, values: FloatArray) -> tuple[FloatArray, FloatArray]:
        static = np.abs(values - self.center_) / self.scale_
        med = trailing_median(values, self.window, self.gap)
        dev = np.abs(values - med)
        return static, dev

    def _fit(self, values: FloatArray) -> None:
        if self.window < 1:
            raise ConfigError(f"mv_ensemble: window must be >= 1, got {self.window}")
        if self.gap < 0:
            raise ConfigError(f"mv_ensemble: gap must be >= 0, got {self.gap}")
        if not 0.0 <= self.static_weight <= 1.0:
            raise ConfigError(f"mv_ensemble: static_weight must lie in [0, 1], got {self.static_weight}")
        n_cols = values.shape[1]
        k = self.top_k if self.top_k is not None else round(self.top_share * n_cols)
        self.k_ = int(min(max(k, 1), n_cols))
        self.center_, self.scale_ = robust_center_scale(values)
        static, dev = self._raw(values)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns are handled below
            mad = MAD_TO_SIGMA * np.nan_to_num(np.nanmedian(dev, axis=0))
            std = np.nan_to_num(np.nanstd(dev, axis=0))
        self.dev_scale_ = np.maximum(np.where(mad > 0, mad, std), 1e-9)
        self.static_cal_ = ScoreCalibrator().fit(static)
        self.dev_cal_ = ScoreCalibrator().fit(dev / self.dev_scale_)

    def metric_scores(self, values: FloatArray) -> FloatArray:
        """Per-metric compressed, calibrated scores (rows × metrics), NaN where a value is missing."""
        static, dev = self._raw(values)
        a = self.static_cal_(static)
        b = self.dev_cal_(dev / self.dev_scale_)
        # no trailing history yet (first row): the static view speaks alone
        b = np.where(np.isnan(b) & ~np.isnan(a), a, b)
        w = self.static_weight
        return np.asarray(np.log1p(np.clip(w * a + (1.0 - w) * b, 0.0, None)))

    def _score_parts(self, values: FloatArray) -> tuple[FloatArray, FloatArray]:
        m = self.metric_scores(values)
        filled = np.where(np.isnan(m), -np.inf, m)
        k = self.k_
        top = -np.partition(-filled, k - 1, axis=1)[:, :k] if k < m.shape[1] else filled
        top = np.where(np.isinf(top), np.nan, top)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns are handled below
            score = np.nanmean(top, axis=1) if top.size else np.zeros(m.shape[0])
        score = np.nan_to_num(score, nan=0.0)
        return np.asarray(score), _share(m, score)
