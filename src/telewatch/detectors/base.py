"""The detector contract.

A detector learns a metric's normal behaviour with :meth:`Detector.fit` and scores how abnormal
each point is with :meth:`Detector.score`: same index as the input, higher is more anomalous,
NaN in gives NaN out. Scores are *causal*: the score at ``t`` uses only the fitted state and the
points at or before ``t``, so scoring a prefix gives the prefix of the scores (no look-ahead).
A detector never thresholds or alerts; that is the post-rules' job.

Hyper-parameters are stored under their own names by ``__init__``; fitted state ends in ``_``.

Two optional fast paths, plain arrays in and out, which a detector implements itself when its maths
allows (the services reach them through the detector, never through a table of classes):

* **matrix** — :meth:`Detector.fit_score_rows`: fit on each row of a matrix (metrics × time) and
  score the row, as ``fit(s).score(s)`` per series (``telewatch.services.batch.score_matrix``);
* **streaming** — :meth:`Detector.score_contexts`: score the new points of many series after their
  contexts (the values just before them), as ``score(new, context=past)`` per series, keeping a
  small per-series *carry* between calls (``telewatch.services.tick_state.score_group``: a monitor
  tick).

Both return ``None`` by default: no such path, callers score series one by one. The conformance
suite (``tests/conformance/test_detectors.py``) checks, for every registered detector, that the
three give the same scores (1e-9, same NaNs), gaps included.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import MutableMapping, Sequence
from typing import TYPE_CHECKING, ClassVar, Self

import numpy as np
import pandas as pd

from telewatch.core.errors import ValidationError
from telewatch.core.params import Params
from telewatch.core.series import validate_series

if TYPE_CHECKING:
    from telewatch.postrules.calibrate import Calibrator


class NotFittedError(ValidationError):
    """``score`` was called before ``fit``."""


class Detector(Params, ABC):
    """Base class: public methods validate, protected hooks compute."""

    type_name: ClassVar[str] = ""
    persisted_as = "telewatch detector"
    #: a score that remembers the whole past it is given (novelty: the values visited), whose
    #: calibrator learned from scores with the training window as that past: a monitor's tick then
    #: scores with the span the model was trained on as context, not the day before
    #: (``services.tick_state.context_need``)
    context_is_training: ClassVar[bool] = False

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

    def train_calibrator(self, scores: np.ndarray) -> Calibrator:
        """The calibrator (raw score → z) of this fitted detector, from its raw scores of the
        training points: a :class:`~telewatch.postrules.calibrate.Calibrator` trained on them, what
        every path uses (``telewatch.services.detection.calibrated_scores``). A detector whose raw
        scores are already calibrated (e.g. ``novelty_seasonal``'s surprisal, ``-ln p``) returns a
        calibrator that keeps them as they are instead of fitting a second tail on top.

        >>> class Static(Detector):
        ...     def _fit(self, series): pass
        ...     def _score(self, series): return series.abs()
        >>> cal = Static().train_calibrator(np.abs(np.random.default_rng(0).normal(size=1000)))
        >>> round(float(cal(np.array([10.0]))[0]), 1) > 5
        True
        """
        from telewatch.postrules.calibrate import Calibrator

        return Calibrator().train(scores)

    def fit_score_rows(self, values: np.ndarray) -> np.ndarray | None:
        """Matrix path: row ``i`` of the result is ``clone().fit(s_i).score(s_i)`` where ``s_i`` is row
        ``i`` of ``values`` (2-D float64, metrics × time, finite or NaN) as a series. Timestamps are
        not passed: a detector whose scores depend on them has no matrix path. ``None`` (the
        default): no matrix path, callers loop over the rows.

        >>> class Static(Detector):
        ...     def _fit(self, series): pass
        ...     def _score(self, series): return series.abs()
        >>> Static().fit_score_rows(np.zeros((2, 3))) is None
        True
        """
        return None

    def fit_score_matrix(self, values: np.ndarray, index: pd.DatetimeIndex) -> np.ndarray | None:
        """:meth:`fit_score_rows` given the columns' timestamps (``index``, sorted, unique), for a
        detector whose scores depend on them; by default :meth:`fit_score_rows` (what
        ``telewatch.services.batch.score_matrix`` calls)."""
        return self.fit_score_rows(values)

    @classmethod
    def score_contexts_at(
        cls,
        models: Sequence[Detector],
        contexts: Sequence[np.ndarray],
        new: np.ndarray,
        carries: Sequence[MutableMapping[str, np.ndarray]] | None = None,
        *,
        context_times: Sequence[np.ndarray],
        new_times: np.ndarray,
    ) -> np.ndarray | None:
        """:meth:`score_contexts` given the timestamps (ns since the epoch, UTC) of the contexts'
        points and of the new points (a 2-D array like ``new``), for a detector whose scores depend
        on them; by default :meth:`score_contexts` (what ``telewatch.services.tick_state`` calls)."""
        return cls.score_contexts(models, contexts, new, carries)

    @classmethod
    def score_contexts(
        cls,
        models: Sequence[Detector],
        contexts: Sequence[np.ndarray],
        new: np.ndarray,
        carries: Sequence[MutableMapping[str, np.ndarray]] | None = None,
    ) -> np.ndarray | None:
        """Streaming path: the scores of the new points of many series at once. Row ``i`` of ``new``
        (2-D, all rows the same length) scored by ``models[i]`` (fitted, all of this class, with
        the same hyper-parameters) after ``contexts[i]`` (the values just before them, at least
        :meth:`context_points` of them when the series has that many), as
        ``models[i].score(new_i, context=context_i)`` gives them. Timestamps are not passed: a
        detector whose scores depend on them has no streaming path.

        ``carries`` (optional, one mutable mapping per series) is what the detector keeps per series
        between calls, read and updated in place (e.g. robust_bands' sorted windows, so that a tick
        slides them over the new points instead of rebuilding them from the context). The caller
        passes the mapping it got back only when this call's context ends exactly where the previous
        call's new points ended, and an empty one otherwise; a detector ignores what it cannot use.

        ``None`` (the default): no streaming path; callers score each series with :meth:`score`.
        """
        return None

    @abstractmethod
    def _fit(self, series: pd.Series) -> None: ...

    @abstractmethod
    def _score(self, series: pd.Series) -> pd.Series: ...
