"""Novelty, joined by a seasonal channel once a series has a few days of history: the larger z."""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from telewatch.detectors.bands import ExpectedBand
from telewatch.detectors.base import Detector
from telewatch.detectors.novelty import Novelty
from telewatch.detectors.registry import register
from telewatch.detectors.seasonal import SeasonalBaseline, detect_periods
from telewatch.postrules.calibrate import Calibrator, screen_anomalies

DAY = pd.Timedelta(days=1)


def repeat_weights(values: np.ndarray, cooldown: int) -> np.ndarray:
    """``min(1, gap / cooldown)`` per point, ``gap`` the points since the latest earlier point at
    least as high (1 where there is none; NaN neither counts nor is weighed): how novelty weighs a
    repeated novelty, so a long excursion counts once and a higher point soon after in full.

    >>> repeat_weights(np.array([3.0, 1.0, 2.0, 3.0, np.nan, 4.0]), 4).tolist()
    [1.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    """
    from telewatch.detectors._streaming import previous_at_least

    return previous_at_least(np.ascontiguousarray(values, dtype="float64"), cooldown)


def screened_fit(det: Detector, series: pd.Series) -> tuple[Detector, Calibrator]:
    """``det`` fitted on ``series`` and a calibrator of its scores there, as the detection paths fit
    and calibrate a detector alone (``telewatch.services.detection.calibrated_scores``): the points
    :func:`~telewatch.postrules.calibrate.screen_anomalies` finds suspect (an incident in the
    training data) are left out of a second fit and of the calibration, so an outage in the
    history does not calibrate itself — and every later one like it — away."""
    fitted = det.clone().fit(series)
    raw = fitted.score(series).to_numpy()
    present = ~np.isnan(series.to_numpy(dtype="float64"))
    suspect = np.zeros(raw.size, dtype=bool)
    suspect[present] = screen_anomalies(raw[present])
    kept = present & ~suspect
    if suspect.any() and kept.any():
        fitted = det.clone().fit(series.where(kept))
        raw = fitted.score(series).to_numpy()
    else:
        kept = present
    return fitted, Calibrator().train(raw[kept])


@register("novelty_seasonal")
class NoveltySeasonal(ExpectedBand, Detector):
    """Value novelty (:class:`~telewatch.detectors.novelty.Novelty`) as the primary channel, and a
    seasonal baseline (:class:`~telewatch.detectors.seasonal.SeasonalBaseline`) beside it once the
    training data spans ``min_days`` days (with ``require_cycle``, only where it also shows a daily
    cycle: autocorrelation at one day of at least ``min_acf``).

    Novelty misses what stays inside the range already seen: a users drop at the daily peak down
    to a value seen every night, an error burst of 7 % after an outage of 54 %. The seasonal
    channel (residual from the daily/weekly profile and a held trend) sees those; alone it alarms
    too often where there is no cycle to learn. So:

    * **history shorter than** ``min_days``: the score *is* novelty's raw score (same numbers);
    * **otherwise** each channel is fitted and calibrated on its own, as a detection path does for
      a detector alone (:func:`screened_fit`), the seasonal channel's surprisal ``-ln p`` is
      weighed by :func:`repeat_weights` (``seasonal_cooldown`` points, as novelty weighs repeats),
      and written in novelty's raw units (the novelty score with the same tail probability under
      novelty's calibrator); the score is the larger of that and novelty's raw score. The paths
      calibrate it with novelty's calibrator (:meth:`train_calibrator`): the z is
      ``max(z_novelty, z_seasonal)``.

    :meth:`expected` is the seasonal baseline and band where that channel is on, else novelty's.
    The streaming path (:meth:`score_contexts`) is novelty's where no series of the group has the
    seasonal channel (its scores depend on the timestamps, which that path is not given).

    >>> idx = pd.date_range("2024-01-01", periods=6 * 288, freq="5min")
    >>> s = pd.Series(10 + np.random.default_rng(0).normal(0, 0.2, idx.size), index=idx)
    >>> short = NoveltySeasonal().fit(s.iloc[:288])  # one day: novelty alone
    >>> short.seasonal_ is None, bool(np.allclose(short.score(s), Novelty().fit(s.iloc[:288]).score(s)))
    (True, True)
    >>> NoveltySeasonal().fit(s.iloc[: 4 * 288]).seasonal_ is not None
    True
    """

    def __init__(
        self,
        bins: int = 100,
        cooldown: int = 1000,
        local_window: int = 60,
        min_days: float = 3.0,
        require_cycle: bool = False,
        min_acf: float = 0.3,
        seasonal: dict[str, Any] | None = None,
        seasonal_cooldown: int = 1000,
    ) -> None:
        self.bins = bins
        self.cooldown = cooldown
        self.local_window = local_window
        self.min_days = min_days
        self.require_cycle = require_cycle
        self.min_acf = min_acf
        self.seasonal = seasonal
        self.seasonal_cooldown = seasonal_cooldown

    def _fit(self, series: pd.Series) -> None:
        novelty = Novelty(bins=self.bins, cooldown=self.cooldown, local_window=self.local_window)
        self.novelty_: Detector = novelty.fit(series)
        self.seasonal_: Detector | None = None
        self.calibrators_: tuple[Calibrator, Calibrator] | None = None
        s = series.dropna()
        if len(s) < 16 or s.index[-1] - s.index[0] < self.min_days * DAY:
            return
        if self.require_cycle and DAY not in detect_periods(
            s, min_cycles=self.min_days, min_acf=self.min_acf
        ):
            return
        novelty_fit, cal_n = screened_fit(novelty, series)
        if cal_n.degenerate_:  # constant novelty scores: no tail to write the seasonal z in
            return
        seasonal_fit, cal_s = screened_fit(SeasonalBaseline(**dict(self.seasonal or {})), series)
        self.novelty_, self.seasonal_ = novelty_fit, seasonal_fit
        self.calibrators_ = (cal_n, cal_s)

    def _score(self, series: pd.Series) -> pd.Series:
        raw = self.novelty_.score(series).to_numpy()
        if self.seasonal_ is None:
            return pd.Series(raw, index=series.index)
        seasonal = self.seasonal_.score(series).to_numpy()
        return pd.Series(self._combine(raw, seasonal), index=series.index)

    def _combine(self, novelty_raw: np.ndarray, seasonal_raw: np.ndarray) -> np.ndarray:
        assert self.calibrators_ is not None
        cal_n, cal_s = self.calibrators_
        with np.errstate(invalid="ignore", over="ignore"):
            surprisal = -cal_s.log_tail_probability(seasonal_raw)
            if self.seasonal_cooldown > 0:
                surprisal = surprisal * repeat_weights(surprisal, int(self.seasonal_cooldown))
            # novelty's calibrator maps u + beta * (s - start) back to surprisal s above its tail's
            # start (log p = log p_u - (x - u) / beta): the same z, in novelty's raw units, so NAB's
            # per-file scaling of novelty's raw scores applies unchanged
            start = -np.log(cal_n.p_u_)
            as_novelty = np.where(surprisal > start, cal_n.u_ + cal_n.beta_ * (surprisal - start), -np.inf)
        return np.fmax(novelty_raw, as_novelty)

    def train_calibrator(self, scores: np.ndarray) -> Calibrator:
        """With the seasonal channel: novelty's calibrator, trained as for novelty alone
        (:func:`screened_fit`), which turns the score into ``max(z_novelty, z_seasonal)`` — a
        calibrator trained on the combined scores would fit their heavier tail and shrink both
        (the demo's users drop: seasonal z 5.4 came out 4.4). Without it: trained on ``scores``,
        as for ``novelty``."""
        if self.calibrators_ is None:
            return super().train_calibrator(scores)
        return self.calibrators_[0]

    def _expected(self, series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        member = self.seasonal_ if self.seasonal_ is not None else self.novelty_
        assert isinstance(member, ExpectedBand)
        return member._expected(series)

    @classmethod
    def score_contexts(
        cls,
        models: Sequence[Detector],
        contexts: Sequence[np.ndarray],
        new: np.ndarray,
        carries: Sequence[MutableMapping[str, np.ndarray]] | None = None,
    ) -> np.ndarray | None:
        """Novelty's streaming path (:meth:`Novelty.score_contexts`, with its carry) when no model
        has the seasonal channel: then the scores are novelty's. ``None`` otherwise (the seasonal
        profile needs the timestamps): the tick scores those series one by one."""
        if any(getattr(m, "seasonal_", None) is not None for m in models):
            return None
        return Novelty.score_contexts([m.novelty_ for m in models], contexts, new, carries)  # type: ignore[attr-defined]
