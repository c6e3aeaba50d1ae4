"""Fit and score many metrics at once, as one matrix (metrics × time).

:func:`score_matrix` gives, for every row of ``values``, the same scores as
``create_detector(detector, **params).fit(s).score(s)`` on that row as a series, but computes them
over the whole matrix where the maths allows:

* ``robust_z``: medians and MADs along the time axis, one vectorised expression;
* ``novelty`` (the default): fit and score in compiled kernels (numba, GIL released) over the
  block of rows, the novelty memory and the two rolling medians of the tie-breaker fused in one
  pass per metric (:mod:`telewatch.detectors._kernels`);
* any other registered detector: a per-metric loop over the registry (same results, no speed-up).

>>> import numpy as np, pandas as pd
>>> idx = pd.date_range("2024-01-01", periods=500, freq="1min", tz="UTC")
>>> rng = np.random.default_rng(0)
>>> values = rng.normal(10, 1, (3, 500))
>>> values[1, 400] = 30.0
>>> scores = score_matrix(values, idx, detector="robust_z")
>>> scores.shape, int(np.argmax(scores[1]))
((3, 500), 400)
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from telewatch.core.errors import ConfigError, ValidationError
from telewatch.core.series import MAD_TO_SIGMA
from telewatch.detectors import create_detector
from telewatch.detectors.novelty import Novelty
from telewatch.detectors.robust_z import RobustZ

__all__ = ["batch_detectors", "score_matrix"]


def batch_detectors() -> list[str]:
    """Detector types with a vectorised batch path (others fall back to a per-metric loop)."""
    return sorted(_BATCH)


def score_matrix(
    values: np.ndarray,
    index: pd.Index,
    *,
    detector: str = "novelty",
    params: Mapping[str, Any] | None = None,
    workers: int = 1,
    chunk_size: int = 32,
) -> np.ndarray:
    """Fit ``detector`` on each row of ``values`` (metrics × time) and score the row.

    Returns a float64 array of the same shape; NaN in gives NaN out, as in
    :meth:`telewatch.detectors.base.Detector.score`. ``index`` holds the timestamps of the columns
    (sorted, unique). Rows are scored ``chunk_size`` at a time (bounded memory), on ``workers``
    threads (the compiled kernels release the GIL, so 2 threads use 2 cores); the scores do not
    depend on either.
    """
    arr = _check(values, index)
    if workers < 1:
        raise ConfigError(f"score_matrix: workers must be at least 1, got {workers}")
    if chunk_size < 1:
        raise ConfigError(f"score_matrix: chunk_size must be at least 1, got {chunk_size}")
    kwargs = dict(params or {})
    # build once: unknown detectors and bad parameters fail here with a ConfigError
    proto = create_detector(detector, **kwargs)
    out = np.empty_like(arr)
    if arr.shape[0] == 0:
        return out
    fast = _BATCH.get(detector)
    dt_index = pd.DatetimeIndex(index)

    def run(start: int) -> None:
        block = arr[start : start + chunk_size]
        if fast is not None and type(proto) is _BATCH_CLASS[detector]:
            out[start : start + chunk_size] = fast(block, proto)
        else:
            out[start : start + chunk_size] = _loop(block, dt_index, detector, kwargs)

    starts = range(0, arr.shape[0], chunk_size)
    if workers == 1 or len(starts) == 1:
        for start in starts:
            run(start)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(run, starts))
    out[np.isnan(arr)] = np.nan
    return out


def _check(values: np.ndarray, index: pd.Index) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype="float64")
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"score_matrix: values must be numeric ({exc})") from exc
    if arr.ndim != 2:
        raise ValidationError(f"score_matrix: values must be 2-D (metrics × time), got {arr.ndim}-D")
    if not isinstance(index, pd.DatetimeIndex):
        raise ValidationError(f"score_matrix: index must be timestamps, got {type(index).__name__}")
    if len(index) != arr.shape[1]:
        raise ValidationError(
            f"score_matrix: index has {len(index)} timestamps but values have {arr.shape[1]} columns"
        )
    if not index.is_monotonic_increasing or index.has_duplicates:
        raise ValidationError("score_matrix: index must be sorted and unique")
    if np.isinf(arr).any():
        raise ValidationError("score_matrix: values hold infinities")
    return arr


def _loop(arr: np.ndarray, index: pd.DatetimeIndex, detector: str, params: dict[str, Any]) -> np.ndarray:
    out = np.empty_like(arr)
    for i, row in enumerate(arr):
        s = pd.Series(row, index=index)
        out[i] = create_detector(detector, **params).fit(s).score(s).to_numpy()
    return out


# -- robust_z ----------------------------------------------------------------------------------
def _robust_z(arr: np.ndarray, proto: Any) -> np.ndarray:
    det: RobustZ = proto
    count = np.sum(~np.isnan(arr), axis=1)
    has = count > 0
    safe = np.where(has[:, None], arr, 0.0)  # all-NaN rows: avoid nanmedian warnings
    median = np.where(has, np.nanmedian(safe, axis=1), 0.0)
    mad = np.where(has, np.nanmedian(np.abs(safe - median[:, None]), axis=1) * MAD_TO_SIGMA, 0.0)
    std = np.where(has, np.nanstd(safe, axis=1), 0.0)
    mad = np.where((mad == 0.0) & has, std, mad)
    scale = np.maximum(np.maximum(mad, np.abs(median) * det.min_scale), 1e-9)
    return np.abs(arr - median[:, None]) / scale[:, None]


# -- novelty -----------------------------------------------------------------------------------
def _novelty(arr: np.ndarray, proto: Any) -> np.ndarray:
    # fit (each row's range) and score in compiled kernels, the same ones Novelty.score runs
    from telewatch.detectors import _kernels

    det: Novelty = proto
    low, width = _kernels.novelty_fit(arr, bins=det.bins)
    return _kernels.novelty_scores(arr, low, width, cooldown=det.cooldown, window=det.local_window)


_BATCH = {"robust_z": _robust_z, "novelty": _novelty}
_BATCH_CLASS: dict[str, type] = {"robust_z": RobustZ, "novelty": Novelty}
