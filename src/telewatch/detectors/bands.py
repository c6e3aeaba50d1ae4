"""Detectors that know their expected value: ``expected(series)`` → expected, lower, upper."""

from __future__ import annotations

import numpy as np
import pandas as pd

from telewatch.core.series import validate_series
from telewatch.detectors.base import NotFittedError


class ExpectedBand:
    """Mixin: a public ``expected`` that validates, and a protected ``_expected`` hook returning
    ``(expected, lower, upper)`` arrays aligned with the series (causal, like ``score``)."""

    type_name: str

    def expected(self, series: pd.Series, *, context: pd.Series | None = None) -> pd.DataFrame:
        """Expected value and band (columns expected, lower, upper), same index as ``series``."""
        if not getattr(self, "fitted_", False):
            raise NotFittedError(f"{self.type_name}: call fit() before expected()")
        series = validate_series(series, name=f"{self.type_name}.expected")
        full, skip = series, 0
        if context is not None and len(context):
            context = validate_series(context, name=f"{self.type_name}.expected context")
            context = context[context.index < series.index[0]] if len(series) else context
            full, skip = pd.concat([context, series]), len(context)
        cols = [np.asarray(a, dtype="float64")[skip:] for a in self._expected(full)]
        return pd.DataFrame(dict(zip(("expected", "lower", "upper"), cols, strict=True)), index=series.index)

    def _expected(self, series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError


def scale_floor(values: np.ndarray, *, share: float = 0.01) -> float:
    """A sensible smallest scale for dividing by a spread learned from ``values``.

    The largest of: ``share`` of the values' robust spread (MAD as sigma, or the standard deviation
    when the MAD is 0), ``share / 10`` of their typical magnitude, and their resolution (the
    smallest step between distinct values, as in integer counters); ``1e-9`` when all are 0. So a
    flat stretch does not turn the next one-unit wiggle into a score of millions.

    >>> scale_floor(np.array([3.0, 3.0, 3.0, 4.0, 3.0]))
    1.0
    >>> scale_floor(np.array([0.0, 0.0]))
    1e-09
    """
    v = np.asarray(values, dtype="float64")
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 1e-9
    median = float(np.median(v))
    spread = float(np.median(np.abs(v - median))) * 1.4826
    if spread == 0.0:
        spread = float(np.std(v))
    distinct = np.unique(v)
    resolution = float(np.diff(distinct).min()) if distinct.size > 1 else 0.0
    return max(share * spread, share / 10.0 * abs(median), resolution, 1e-9)
