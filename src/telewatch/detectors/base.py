"""The detector contract.

A detector learns a metric's normal behaviour with :meth:`Detector.fit` and scores how abnormal
each point is with :meth:`Detector.score`: same index as the input, higher is more anomalous,
NaN in gives NaN out. Scores are *causal*: the score at ``t`` uses only the fitted state and the
points at or before ``t``, so scoring a prefix gives the prefix of the scores (no look-ahead).
A detector never thresholds or alerts; that is the post-rules' job.

Hyper-parameters are stored under their own names by ``__init__``; fitted state ends in ``_``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Self

import numpy as np
import pandas as pd

from telewatch.core.errors import ValidationError
from telewatch.core.params import Params
from telewatch.core.series import validate_series


class NotFittedError(ValidationError):
    """``score`` was called before ``fit``."""


class Detector(Params, ABC):
    """Base class: public methods validate, protected hooks compute."""

    type_name: ClassVar[str] = ""
    persisted_as = "telewatch detector"

    def fit(self, series: pd.Series) -> Self:
        """Learn normal behaviour from ``series`` (NaNs are ignored)."""
        series = validate_series(series, name=f"{self.type_name}.fit")
        self._fit(series)
        self.fitted_ = True
        return self

    def score(self, series: pd.Series, *, context: pd.Series | None = None) -> pd.Series:
        """Score every point of ``series``; ``context`` is history just before it, if any."""
        if not getattr(self, "fitted_", False):
            raise NotFittedError(f"{self.type_name}: call fit() before score()")
        series = validate_series(series, name=f"{self.type_name}.score")
        if context is not None and len(context):
            context = validate_series(context, name=f"{self.type_name}.score context")
            context = context[context.index < series.index[0]] if len(series) else context
            full = pd.concat([context, series])
            scores = self._score(full).iloc[len(context) :]
        else:
            scores = self._score(series)
        scores = pd.Series(np.asarray(scores, dtype="float64"), index=series.index, name=series.name)
        scores[series.isna().to_numpy()] = np.nan
        return scores

    def context_points(self) -> int | None:
        """How many points just before a series :meth:`score` needs to score it as if it had the
        whole past: ``score(s, context=past[-k:])`` equals the tail of ``score(past + s)``.

        ``0`` for a detector that scores each point from its fitted state alone; a trailing-window
        detector returns its reach (e.g. ``2 * window`` when a rolling spread is taken over rolling
        medians). ``None``, the default, means unknown or unbounded (the score may depend on the
        whole past): the scheduler then keeps the day before the new points as context, as it
        always has. Streaming ticks (``telewatch.services.tick_state``) keep this many points per
        metric in memory between ticks instead of re-reading history.

        >>> class Static(Detector):
        ...     def _fit(self, series): pass
        ...     def _score(self, series): return series.abs()
        >>> Static().context_points() is None
        True
        """
        return None

    @abstractmethod
    def _fit(self, series: pd.Series) -> None: ...

    @abstractmethod
    def _score(self, series: pd.Series) -> pd.Series: ...
