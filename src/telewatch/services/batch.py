"""Fit and score many metrics at once, as one matrix (metrics × time).

:func:`score_matrix` gives, for every row of ``values``, the same scores as
``create_detector(detector, **params).fit(s).score(s)`` on that row as a series, but computes them
over the whole matrix where the detector has a matrix path
(:meth:`~telewatch.detectors.base.Detector.fit_score_rows`, implemented by the detector itself:
``robust_z``'s vectorised medians, ``novelty``'s and ``robust_bands``' compiled kernels); any other
registered detector is scored by a per-metric loop over the registry (same results, no speed-up).

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
from telewatch.detectors import Detector, available_detectors, create_detector

__all__ = ["batch_detectors", "score_matrix"]


def batch_detectors() -> list[str]:
    """Detector types with a matrix path (others fall back to a per-metric loop)."""
    return sorted(
        name
        for name, cls in available_detectors().items()
        if cls.fit_score_rows is not Detector.fit_score_rows
        or cls.fit_score_matrix is not Detector.fit_score_matrix
    )


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
    dt_index = pd.DatetimeIndex(index)

    def run(start: int) -> None:
        block = arr[start : start + chunk_size]
        scores = proto.fit_score_matrix(block, dt_index)  # the detector's own matrix path, if it has one
        if scores is None:
            scores = _loop(block, dt_index, detector, kwargs)
        out[start : start + chunk_size] = scores

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
