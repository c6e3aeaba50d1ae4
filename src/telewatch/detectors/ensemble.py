"""Ensemble: several detectors, each calibrated on its own training scores, combined."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from telewatch.core.errors import ConfigError
from telewatch.detectors.bands import ExpectedBand
from telewatch.detectors.base import Detector
from telewatch.detectors.registry import create_detector, register
from telewatch.postrules.calibrate import Calibrator

#: What a user gets without choosing: value novelty (new territory, the strongest single signal on
#: NAB) plus a seasonal baseline (spikes and dips inside the usual range, with an expected band).
DEFAULT_MEMBERS: tuple[dict[str, Any], ...] = (
    {"type": "novelty", "params": {}, "weight": 1.0},
    {"type": "seasonal", "params": {}, "weight": 1.0},
)
COMBINE = ("max", "mean")


@register("ensemble")
class Ensemble(ExpectedBand, Detector):
    """Each member's raw score is calibrated to a z (:class:`~telewatch.postrules.calibrate.Calibrator`,
    trained on the member's scores of the training data), multiplied by its ``weight``, and the
    z's are combined by ``max`` (any member alarming is enough) or ``mean``. The result is itself a
    z: comparable across metrics. ``expected`` comes from the first member that has one.

    ``members``: ``[{"type": "seasonal", "params": {...}, "weight": 1.0}, ...]`` (default
    :data:`DEFAULT_MEMBERS`).

    >>> idx = pd.date_range("2024-01-01", periods=3 * 288, freq="5min")
    >>> x = 10 + np.sin(2 * np.pi * np.arange(idx.size) / 288)
    >>> s = pd.Series(x + np.random.default_rng(0).normal(0, 0.05, idx.size), index=idx)
    >>> det = Ensemble().fit(s.iloc[:2 * 288])
    >>> s.iloc[700] += 3.0
    >>> int(np.argmax(det.score(s)))
    700
    """

    def __init__(self, members: Sequence[Mapping[str, Any]] | None = None, combine: str = "max") -> None:
        self.members = members
        self.combine = combine

    def _specs(self) -> list[tuple[str, dict[str, Any], float]]:
        specs = []
        for k, m in enumerate(self.members if self.members is not None else DEFAULT_MEMBERS):
            if not isinstance(m, Mapping) or "type" not in m:
                raise ConfigError(f"ensemble: member {k} must be a mapping with a 'type', got {m!r}")
            if m["type"] == "ensemble":
                raise ConfigError("ensemble: a member cannot itself be an ensemble")
            weight = float(m.get("weight", 1.0))
            if not weight > 0:
                raise ConfigError(f"ensemble: member {k} ({m['type']}) needs a positive weight")
            specs.append((str(m["type"]), dict(m.get("params") or {}), weight))
        if not specs:
            raise ConfigError("ensemble: give at least one member")
        return specs

    def _fit(self, series: pd.Series) -> None:
        if self.combine not in COMBINE:
            raise ConfigError(f"ensemble: combine must be one of {COMBINE}, got {self.combine!r}")
        self.detectors_: list[Detector] = []
        self.calibrators_: list[Calibrator] = []
        self.weights_: list[float] = []
        for name, params, weight in self._specs():
            det = create_detector(name, **params).fit(series)
            cal = Calibrator().train(det.score(series).to_numpy())
            self.detectors_.append(det)
            self.calibrators_.append(cal)
            self.weights_.append(weight)

    def member_scores(self, series: pd.Series) -> pd.DataFrame:
        """Each member's calibrated, weighted z (one column per member, named ``k:type``)."""
        cols = {}
        for k, (det, cal, w) in enumerate(
            zip(self.detectors_, self.calibrators_, self.weights_, strict=True)
        ):
            cols[f"{k}:{det.type_name}"] = w * cal(det.score(series).to_numpy())
        return pd.DataFrame(cols, index=series.index)

    def _score(self, series: pd.Series) -> pd.Series:
        z = self.member_scores(series).to_numpy()
        if z.shape[0] == 0:
            return pd.Series(np.zeros(0), index=series.index)
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                out = np.nanmax(z, axis=1) if self.combine == "max" else np.nanmean(z, axis=1)
        return pd.Series(out, index=series.index)

    def _expected(self, series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        for det in self.detectors_:
            if isinstance(det, ExpectedBand):
                frame = det.expected(series)
                return frame["expected"].to_numpy(), frame["lower"].to_numpy(), frame["upper"].to_numpy()
        nan = np.full(len(series), np.nan)
        return nan, nan, nan
