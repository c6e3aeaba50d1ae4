"""Novelty, joined by a seasonal channel once a series has a few days of history: the larger z."""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from telewatch.core.errors import ConfigError
from telewatch.detectors import _warm
from telewatch.detectors._daily_profile import DailyProfile
from telewatch.detectors.bands import ExpectedBand
from telewatch.detectors.base import Detector
from telewatch.detectors.novelty import Novelty
from telewatch.detectors.registry import register
from telewatch.detectors.seasonal import SeasonalBaseline, detect_periods
from telewatch.postrules.calibrate import SCREEN_TAIL, Calibrator

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
    history does not calibrate itself — and every later one like it — away. The scores are sorted
    once, for the screen's quantile and (when nothing is left out) the calibrator's. ``series`` is
    validated already (:meth:`NoveltySeasonal.fit`'s): ``det`` is fitted and scored through its own
    hooks (:func:`_fitted`, :func:`_scores`)."""
    fitted = _fitted(det, series)
    raw = _scores(fitted, series)
    present = ~np.isnan(series.to_numpy(dtype="float64"))
    f = raw[present]
    finite = _finite(f)
    ordered = np.sort(finite)
    suspect = np.zeros(raw.size, dtype=bool)
    suspect[present] = screen_tail(f, u=_screen_u(ordered))
    kept = present & ~suspect
    if suspect.any() and kept.any():
        fitted = _fitted(det, series.where(kept))
        raw = _scores(fitted, series)
        return fitted, Calibrator().train(raw[kept])
    return fitted, _train(finite, ordered)


def screened_once(
    det: Detector, series: pd.Series, *, beyond: float = np.inf, max_runs: float = np.inf
) -> tuple[Detector, Calibrator, np.ndarray]:
    """:func:`screened_fit` without the second fit, for a detector whose fit is robust to an
    incident in the training data already (the daily profile's medians and robust scale): fitted
    once; the suspect points are left out of the calibration only. Also returns the training
    scores (the matrix path reuses them). ``series`` is validated already, as for
    :func:`screened_fit`."""
    fitted = _fitted(det, series)
    present = ~np.isnan(series.to_numpy(dtype="float64"))
    # a channel that caps some of its scores (the profile's habits) is calibrated on them uncapped:
    # both from one pass (DailyProfile.score_pair)
    pair = getattr(fitted, "score_pair", None)
    if pair is None:
        raw = cal_raw = _scores(fitted, series)
    else:
        cal_raw, raw = (np.where(present, z, np.nan) for z in pair(series))
    return fitted, calibrate_screened(cal_raw, present, beyond=beyond, max_runs=max_runs), raw


def _fitted(det: Detector, series: pd.Series) -> Detector:
    """``det.clone().fit(series)`` for a series validated already (the caller's own fit did): the
    member's hook, without pandas' checks and copies a second time (on a month of minute data they
    cost about as much as the profile's fit)."""
    fitted = det.clone()
    fitted._fit(series)
    fitted.fitted_ = True
    return fitted


def _scores(det: Detector, series: pd.Series) -> np.ndarray:
    """``det.score(series).to_numpy()`` for a fitted member and a validated series: its hook's
    scores, NaN where the series is."""
    raw = np.array(det._score(series), dtype="float64")
    raw[np.isnan(series.to_numpy(dtype="float64"))] = np.nan
    return raw


def _finite(values: np.ndarray) -> np.ndarray:
    ok = np.isfinite(values)
    return values if ok.all() else values[ok]


def _screen_u(ordered: np.ndarray) -> float | None:
    """The screen's ``u`` (its :data:`~telewatch.postrules.calibrate.SCREEN_TAIL` quantile) from
    the finite scores sorted; ``None`` where the screen looks at nothing (fewer than 20)."""
    from telewatch.postrules import calibrate as c

    return float(c.sorted_quantile(ordered, c.SCREEN_TAIL)) if ordered.size >= 20 else None


def _train(finite: np.ndarray, ordered: np.ndarray) -> Calibrator:
    """``Calibrator().train(finite)`` given its sort ``ordered``."""
    if not finite.size:
        return Calibrator().train(finite)
    return Calibrator().train_finite(finite, ordered)


def quantiles(values: np.ndarray, q: np.ndarray | list[float]) -> np.ndarray:
    """``np.quantile(values, q)`` (finite 1-D values, at least one): numpy's positions and
    interpolation (:func:`~telewatch.postrules.calibrate.quantile_steps`, ``interpolate``) on the
    order statistics found by selection (:func:`~telewatch.detectors._daily_profile.order_pair`)
    rather than a partition."""
    from telewatch.detectors._daily_profile import order_pair
    from telewatch.postrules.calibrate import interpolate, quantile_steps

    qs = np.asarray(q, dtype="float64")
    prev, _, gamma = quantile_steps(values.size, qs)
    a, b = np.empty(qs.size), np.empty(qs.size)
    top = None
    for j, k in enumerate(prev.tolist()):
        if k < 0:  # at or past the last: the maximum, both sides
            top = float(values.max()) if top is None else top
            a[j] = b[j] = top
        else:
            a[j], b[j] = order_pair(values, k)
    return interpolate(a, b, gamma)


def _screen_log_p() -> float:
    """A log tail probability above which z is surely below SCREEN_Z (one z unit of margin in
    ``log p``: about 0.1 in z), so the screen computes z only below it."""
    from scipy.special import log_ndtr

    from telewatch.postrules import calibrate as c

    return float(log_ndtr(-c.SCREEN_Z)) + 1.0


def screen_tail(scores: np.ndarray, *, u: float | None = None) -> np.ndarray:
    """:func:`~telewatch.postrules.calibrate.screen_anomalies` (its defaults), the same mask, in
    fewer steps: a point is suspect only above the robust fit's ``u`` (its 80th percentile; below
    it z < 1, far under :data:`~telewatch.postrules.calibrate.SCREEN_Z`), so only ``u``, the tail's
    scale and ``p_u`` are computed (one partition, not 512 quantiles; none where the caller passes
    ``u``, the finite scores' quantile, from a sort it made) and z only where the fitted log tail
    probability is low enough for z to reach SCREEN_Z, by the calibrator's own formula.
    ``tests/unit/test_detectors_novelty_seasonal.py`` holds it to screen_anomalies' masks.

    >>> from telewatch.postrules.calibrate import screen_anomalies
    >>> rng = np.random.default_rng(1)
    >>> dirty = np.abs(rng.normal(0, 1, 10_000))
    >>> dirty[5_000:5_100] = 30.0
    >>> bool(np.array_equal(screen_tail(dirty), screen_anomalies(dirty)))
    True
    """
    from scipy.special import ndtri_exp

    from telewatch.postrules import calibrate as c

    s = np.asarray(scores, dtype="float64").ravel()
    mask = np.zeros(s.size, dtype=bool)
    finite = np.isfinite(s)
    n = int(finite.sum())
    if n < 20:
        return mask
    f = s[finite] if n < s.size else s
    if u is None:
        u = float(quantiles(f, [c.SCREEN_TAIL])[0])
    min_excess = 1e-12
    # the robust fit: a calibrator's tail with scale "median" (screen_anomalies' Calibrator)
    beta, p_u = c.tail_fit(f, u, float(f.min()), float(f.max()), "median", min_excess)
    with np.errstate(over="ignore", invalid="ignore"):
        over = np.flatnonzero(finite & (s > u))
        tail = np.log(p_u) - (s[over] - u) / beta
        low = tail < _screen_log_p()  # elsewhere log p is too high for z to reach SCREEN_Z
        over, tail = over[low], tail[low]
        log_p = np.where(tail == -np.inf, -1e300, np.minimum(tail, 0.0))
        z = -ndtri_exp(log_p)
    z = np.minimum(np.fmax(z, 0.0), c.DEGENERATE_Z if beta <= min_excess else c.MAX_Z)
    suspect = np.zeros(s.size, dtype=bool)
    suspect[over] = z >= c.SCREEN_Z
    if suspect.sum() < c.SCREEN_MIN_SHARE * (1.0 - 0.98) * n:
        return mask
    return widen(suspect, 5) & finite


def widen(mask: np.ndarray, pad: int) -> np.ndarray:
    """``mask`` widened by ``pad`` points either side: ``np.convolve(mask, np.ones(2 * pad + 1),
    mode="same") > 0``, by marking around the few points set rather than a convolution of every
    point."""
    out = np.zeros(mask.size, dtype=bool)
    at = np.flatnonzero(mask)
    if at.size:
        for shift in range(-pad, pad + 1):
            pos = at + shift
            out[pos[(pos >= 0) & (pos < mask.size)]] = True
    return out


def calibrate_screened(
    raw: np.ndarray, present: np.ndarray, *, beyond: float = np.inf, max_runs: float = np.inf
) -> Calibrator:
    """A calibrator of ``raw`` at the ``present`` points, those
    :func:`~telewatch.postrules.calibrate.screen_anomalies` finds suspect left out, and those
    ``beyond`` or higher (with 5 points either side: a channel whose raw score is in robust sigmas
    already knows an outlier when it sees one). The scores are sorted once: the screen's quantile
    and the calibrator's come from that sort (the points left out taken out of it)."""
    finite = _finite(raw[present])
    ordered = np.sort(finite)
    kept = screened_kept(raw, present, beyond=beyond, u=_screen_u(ordered), max_runs=max_runs)
    if kept is present:
        return _train(finite, ordered)
    return _train(_finite(raw[kept]), _without(ordered, _finite(raw[present & ~kept])))


def screened_kept(
    raw: np.ndarray,
    present: np.ndarray,
    *,
    beyond: float = np.inf,
    u: float | None = None,
    max_runs: float = np.inf,
) -> np.ndarray:
    """The points :func:`calibrate_screened` calibrates on: ``present`` less the suspects of
    :func:`screen_tail` (``u`` its quantile when the caller has it) and, widened by 5 points, those
    ``beyond`` or higher. Each rule leaves its points out only where they form at most ``max_runs``
    separate runs (the tail screen's counted as it marks them, widened): a metric that goes that far
    out that often (a latency with a burst every hour, a batch job's traffic several times a day)
    has a heavy tail, and its excursions are its normal, to be calibrated on, not left out as an
    incident would be. ``present`` itself (the same object) when that leaves out none or all.

    >>> raw = np.ones(100); raw[[10, 50, 90]] = 20.0
    >>> present = np.ones(100, dtype=bool)
    >>> int((~screened_kept(raw, present, beyond=10.0)).sum()), int((~screened_kept(raw, present, beyond=10.0, max_runs=2)).sum())
    (33, 0)
    >>> raw = np.abs(np.random.default_rng(0).normal(0, 1, 1000))  # the tail screen's suspects:
    >>> raw[100:110] = 30.0; raw[[300, 500, 700, 900]] = 30.0  # an incident and four bursts
    >>> present = np.ones(1000, dtype=bool)
    >>> [int((~screened_kept(raw, present, max_runs=m)).sum()) for m in (np.inf, 5, 2)]
    [64, 64, 0]
    """
    suspect = np.zeros(raw.size, dtype=bool)
    suspect[present] = screen_tail(raw[present], u=u)
    if suspect.any() and run_count(suspect) > max_runs:
        suspect[:] = False
    if np.isfinite(beyond):
        with np.errstate(invalid="ignore"):
            high = present & (raw >= beyond)
        if high.any() and run_count(high) <= max_runs:
            suspect |= widen(high, 5) & present
    kept = present & ~suspect
    return kept if suspect.any() and kept.any() else present


def run_count(mask: np.ndarray) -> int:
    """Separate runs of ``True`` in ``mask``.

    >>> run_count(np.array([0, 1, 1, 0, 1, 0, 0, 1], dtype=bool))
    3
    """
    m = np.asarray(mask, dtype=bool)
    return int(m[:1].sum() + np.count_nonzero(m[1:] & ~m[:-1]))


def allowed_runs(ts_ns: np.ndarray, present: np.ndarray, per_day: float) -> float:
    """``per_day`` × the days between the first and the last present point (``inf`` stays ``inf``)."""
    if not np.isfinite(per_day):
        return np.inf
    where = np.flatnonzero(present)
    if where.size < 2:
        return 0.0
    return float(per_day) * (int(ts_ns[where[-1]]) - int(ts_ns[where[0]])) / DAY.value


def _without(ordered: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """``ordered`` (sorted) less one occurrence of each value of ``removed`` (a sub-multiset of it):
    the sort of what is left, as ``np.sort`` gives it, without sorting again."""
    if not removed.size:
        return ordered
    gone = np.sort(removed)
    # the k-th of a run of equal values removed is the k-th of that run in ordered
    run = np.arange(gone.size) - np.searchsorted(gone, gone, side="left")
    keep = np.ones(ordered.size, dtype=bool)
    keep[np.searchsorted(ordered, gone, side="left") + run] = False
    return ordered[keep]


def _empirical_bound(below: int, size: int) -> float:
    """The largest surprisal ``-log p`` a calibrator's empirical part gives a score that at most
    ``below`` of its ``size`` levels are under (``_log_tail``'s formula, as a scalar)."""
    return -min(float(np.log(max(1.0 - below / size, 1e-300))), 0.0)


def _only_tail_matters(cal_s: Calibrator, start: float) -> bool:
    """Whether no seasonal score at or below ``cal_s.u_`` can get a surprisal above ``start``
    (novelty's tail start). At or below ``u_`` the surprisal is ``cal_s``'s empirical one, from
    ``searchsorted(levels_, s)``; numpy's binary search answers ``i`` only with ``i == 0`` or
    ``levels_[i - 1] < s`` (sorted levels or not: ``tests/unit/test_fast_calibrate.py``), so ``i``
    is at most one past the last level below ``u_``. Then :func:`combine` need only look at the
    scores above ``u_`` (a few percent)."""
    low = np.flatnonzero(cal_s.levels_ < cal_s.u_)
    below = int(low[-1]) + 1 if low.size else 0
    return _empirical_bound(below, cal_s.levels_.size) + 1e-9 < start  # margin: a scalar log here


def seasonal_tail(scores: np.ndarray, start: float) -> tuple[float, float, float] | None:
    """``(u_, beta_, p_u_)`` of ``Calibrator().train(scores)`` (finite scores) when only its tail
    matters for :func:`combine` with novelty's tail start ``start`` (see
    :func:`_only_tail_matters`), from a selection and a sort of the top few percent: ``u_``, the
    levels past the tail quantile (all at or above ``u_``: then at most the levels before them are
    below it) and the extremes. ``None`` when that cannot be shown so (the caller calibrates in
    full)."""
    from telewatch.detectors._daily_profile import order_pair
    from telewatch.postrules.calibrate import sorted_quantile, tail_fit

    cal = Calibrator()
    n = scores.size
    probs = np.linspace(0.0, 1.0, cal.quantiles)
    past = int(np.searchsorted(probs, cal.tail, side="right"))  # the first level past the tail
    if not n or past >= probs.size or not _empirical_bound(past, probs.size) + 1e-9 < start:
        return None
    first = int(np.floor(((n - 1) * np.array([cal.tail, probs[past]])).min()))
    # the order statistics from first on: that one (by selection), then those above it sorted
    at_first = order_pair(scores, first)[0] if first + 1 < n else float(scores.max())
    above = np.sort(scores[scores > at_first])
    top = np.concatenate([np.full(n - first - above.size, at_first), above])
    u = float(sorted_quantile(top, cal.tail, first=first))
    if not bool((sorted_quantile(top, probs[past:], first=first) >= u).all()):
        return None
    beta, p_u = tail_fit(scores, u, float(scores.min()), float(top[-1]), cal.scale, cal.min_excess)
    return u, beta, p_u


def combine(
    novelty_raw: np.ndarray, seasonal_raw: np.ndarray, cal_n: Calibrator, cal_s: Calibrator, cooldown: int
) -> np.ndarray:
    """The combined raw score: the seasonal channel's surprisal under ``cal_s``, weighed by
    :func:`repeat_weights`, written in novelty's raw units under ``cal_n``; the larger of that and
    ``novelty_raw``."""
    return combine_tail(novelty_raw, seasonal_raw, cal_n.u_, cal_n.beta_, cal_n.p_u_, cal_s, cooldown)


def combine_tail(
    novelty_raw: np.ndarray,
    seasonal_raw: np.ndarray,
    u_n: float,
    beta_n: float,
    p_u_n: float,
    cal_s: Calibrator,
    cooldown: int,
) -> np.ndarray:
    """:func:`combine` given only the tail of novelty's calibrator (``u_``, ``beta_``, ``p_u_``:
    all it reads of it). Where :func:`_only_tail_matters`, only the seasonal scores above
    ``cal_s.u_`` are looked up: a surprisal at or below novelty's tail start gives ``-inf`` (so the
    novelty score), and a point's repeat weight depends only on earlier points at least as high
    as it, which lie above ``u_`` too; elsewhere, every point as the formula is written."""
    # novelty's calibrator maps u + beta * (s - start) back to surprisal s above its tail's
    # start (log p = log p_u - (x - u) / beta): the same z, in novelty's raw units, so NAB's
    # per-file scaling of novelty's raw scores applies unchanged
    start = -np.log(p_u_n)
    if not _only_tail_matters(cal_s, float(start)):
        with np.errstate(invalid="ignore", over="ignore"):
            surprisal = -cal_s.log_tail_probability(seasonal_raw)
            if cooldown > 0:
                surprisal = surprisal * repeat_weights(surprisal, int(cooldown))
            as_novelty = np.where(surprisal > start, u_n + beta_n * (surprisal - start), -np.inf)
        return np.fmax(novelty_raw, as_novelty)
    return combine_above(
        novelty_raw, seasonal_raw, u_n, beta_n, p_u_n, cal_s.u_, cal_s.beta_, cal_s.p_u_, cooldown
    )


def combine_above(
    novelty_raw: np.ndarray,
    seasonal_raw: np.ndarray,
    u_n: float,
    beta_n: float,
    p_u_n: float,
    u_s: float,
    beta_s: float,
    p_u_s: float,
    cooldown: int,
) -> np.ndarray:
    """:func:`combine_tail` where only the seasonal calibrator's tail matters
    (:func:`_only_tail_matters`; ``u_s``, ``beta_s``, ``p_u_s`` that tail): the seasonal scores
    above ``u_s`` alone are looked up."""
    start = -np.log(p_u_n)
    s = np.asarray(seasonal_raw, dtype="float64")
    out = np.fmax(novelty_raw, -np.inf)
    with np.errstate(invalid="ignore", over="ignore"):
        over = np.flatnonzero(s > u_s)
        # the calibrator's log tail probability above u_: its fitted tail, as _log_tail has it
        surprisal = -np.minimum(np.log(p_u_s) - (s[over] - u_s) / beta_s, 0.0)
        if cooldown > 0 and over.size:
            dense = np.zeros(s.size)  # below u_: under every surprisal that can matter
            dense[over] = surprisal
            surprisal = surprisal * repeat_weights(dense, int(cooldown))[over]
        as_novelty = np.where(surprisal > start, u_n + beta_n * (surprisal - start), -np.inf)
    out[over] = np.fmax(out[over], as_novelty)
    return out


def tail_of(scores: np.ndarray, u: float | None = None) -> tuple[float, float, float, bool]:
    """``(u_, beta_, p_u_, degenerate_)`` of ``Calibrator().train(scores)`` without its 512 levels
    (:func:`combine_tail` reads no more); ``u`` when the caller has the scores' quantile already."""
    from telewatch.postrules.calibrate import tail_fit

    cal = Calibrator()
    s = _finite(np.asarray(scores, dtype="float64").ravel())
    if not s.size:
        s = np.zeros(1)
    if u is None:
        u = float(quantiles(s, [cal.tail])[0])
    beta, p_u = tail_fit(s, u, float(s.min()), float(s.max()), cal.scale, cal.min_excess)
    return u, beta, p_u, beta <= cal.min_excess


@register("novelty_seasonal")
class NoveltySeasonal(ExpectedBand, Detector):
    """The default detector (``core.defaults.DEFAULT_DETECTOR``): value novelty
    (:class:`~telewatch.detectors.novelty.Novelty`) as the primary channel, and a seasonal channel
    beside it once the training data spans ``min_days`` days (with ``require_cycle``, only where it
    also shows a daily cycle: autocorrelation at one day of at least ``min_acf``): by default
    (``channel="profile"``) the daily/weekly profile and held level of
    :mod:`~telewatch.detectors._daily_profile`, with ``channel="baseline"``
    :class:`~telewatch.detectors.seasonal.SeasonalBaseline` (slower: no matrix or streaming path).

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
    Streaming: :meth:`score_contexts_at` (given the timestamps, as the monitors' tick gives them)
    carries both channels for the ``profile`` channel; :meth:`score_contexts` (no timestamps) only
    serves groups where no series has the seasonal channel.

    >>> idx = pd.date_range("2024-01-01", periods=6 * 288, freq="5min")
    >>> s = pd.Series(10 + np.random.default_rng(0).normal(0, 0.2, idx.size), index=idx)
    >>> short = NoveltySeasonal().fit(s.iloc[:288])  # one day: novelty alone
    >>> short.seasonal_ is None, bool(np.allclose(short.score(s), Novelty().fit(s.iloc[:288]).score(s)))
    (True, True)
    >>> NoveltySeasonal().fit(s.iloc[: 4 * 288]).seasonal_ is not None
    True
    """

    context_is_training = True  # the memory of visited values (see Detector.context_is_training)

    #: models stored before these parameters existed were fitted without them: the tie-breaker
    #: kept, every far excursion left out (what ``get_params`` of such a model says)
    screen_max_per_day: float = np.inf
    novelty_tie: bool | None = True

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
        channel: str = "profile",
        screen_sigma: float = 10.0,
        screen_max_per_day: float = 2.0,
        novelty_tie: bool | None = None,
    ) -> None:
        self.bins = bins
        self.cooldown = cooldown
        self.local_window = local_window
        self.min_days = min_days
        self.require_cycle = require_cycle
        self.min_acf = min_acf
        self.seasonal = seasonal
        self.seasonal_cooldown = seasonal_cooldown
        self.channel = channel
        self.screen_sigma = screen_sigma
        self.screen_max_per_day = screen_max_per_day
        self.novelty_tie = novelty_tie

    def _fit(self, series: pd.Series) -> None:
        if self.channel not in ("profile", "baseline"):
            raise ConfigError(
                f"novelty_seasonal: channel must be 'profile' or 'baseline', got {self.channel!r}"
            )
        self.seasonal_: Detector | None = None
        self.calibrators_: tuple[Calibrator, Calibrator] | None = None
        s = series.dropna()
        if (
            len(s) < 16
            or s.index[-1] - s.index[0] < self.min_days * DAY
            or (
                self.require_cycle
                and DAY not in detect_periods(s, min_cycles=self.min_days, min_acf=self.min_acf)
            )
        ):
            self.novelty_: Detector = self._novelty(True).fit(series)  # novelty alone
            return
        # with the seasonal channel on, it ranks the points that are not novel: novelty's
        # tie-breaker (nearly all of its cost) is left out unless novelty_tie
        novelty_fit, cal_n = screened_fit(self._novelty(self._tie()), series)
        if cal_n.degenerate_:  # constant novelty scores: no tail to write the seasonal z in
            self.novelty_ = self._novelty(True).fit(series)
            return
        if self.channel == "profile":
            from telewatch.detectors._daily_profile import index_ns

            present = ~np.isnan(series.to_numpy(dtype="float64"))
            seasonal_fit, cal_s, _ = screened_once(
                DailyProfile(**dict(self.seasonal or {})),
                series,
                beyond=self.screen_sigma,
                max_runs=allowed_runs(index_ns(series.index), present, self.screen_max_per_day),
            )
        else:
            seasonal_fit, cal_s = screened_fit(SeasonalBaseline(**dict(self.seasonal or {})), series)
        self.novelty_, self.seasonal_ = novelty_fit, seasonal_fit
        self.calibrators_ = (cal_n, cal_s)

    def _tie(self) -> bool:
        """Whether novelty keeps its tie-breaker where the seasonal channel is on: ``novelty_tie``,
        or by default not with the ``profile`` channel (NAB's tuning half is the same either way,
        the demo catches as many with one incident fewer outside them, and the tie-breaker is
        nearly all of novelty's time) and yes with ``baseline`` (its tuning half drops from 70.9
        to 69.1 without it)."""
        if self.novelty_tie is None:
            return self.channel != "profile"
        return bool(self.novelty_tie)

    def _novelty(self, tie_breaker: bool) -> Novelty:
        return Novelty(
            bins=self.bins, cooldown=self.cooldown, local_window=self.local_window, tie_breaker=tie_breaker
        )

    def _score(self, series: pd.Series) -> pd.Series:
        raw = _scores(self.novelty_, series)  # series validated by score(): the members' hooks
        if self.seasonal_ is None:
            return pd.Series(raw, index=series.index)
        seasonal = _scores(self.seasonal_, series)
        return pd.Series(self._combine(raw, seasonal), index=series.index)

    def _combine(self, novelty_raw: np.ndarray, seasonal_raw: np.ndarray) -> np.ndarray:
        assert self.calibrators_ is not None
        return combine(novelty_raw, seasonal_raw, *self.calibrators_, self.seasonal_cooldown)

    def fit_score_matrix(self, values: np.ndarray, index: pd.DatetimeIndex) -> np.ndarray | None:
        """Matrix path (the ``profile`` channel; ``None`` for ``baseline``): row ``i`` is
        ``clone().fit(s_i).score(s_i)``. Novelty's fit and scores run in its compiled kernels over
        the matrix, the profile channel in :mod:`~telewatch.detectors._daily_profile`'s array code
        and compiled passes over the rows that get it (one slot layout for all); what is per
        series is the screening, the calibrators and the combination. The training scores are the
        scores (fitted and scored on the same series), so nothing is scored twice. Of the two
        calibrators only what the combination reads is computed: novelty's tail (:func:`tail_of`)
        and, where only its tail can matter (nearly always past a few hundred points), the
        seasonal one's (:func:`seasonal_tail`, then :func:`combine_above`); the numbers are those
        of the per-series path, bit for bit (``tests/unit/test_fast_novelty_seasonal.py``)."""
        if self.channel != "profile":
            return None
        from telewatch.detectors import _kernels
        from telewatch.detectors._daily_profile import channel_score_pair, fit_profile, index_ns, step_ns_of

        arr = np.ascontiguousarray(values, dtype="float64")
        low, width = _kernels.novelty_fit(arr, bins=self.bins)
        ts = index_ns(index)
        present = ~np.isnan(arr)
        limit = (self.min_days * DAY).value
        eligible: list[int] = []
        for i in range(arr.shape[0]):
            where = np.flatnonzero(present[i])
            if where.size < 16 or ts[where[-1]] - ts[where[0]] < limit:
                continue
            if self.require_cycle and DAY not in detect_periods(
                pd.Series(arr[i], index=index), min_cycles=self.min_days, min_acf=self.min_acf
            ):
                continue
            eligible.append(i)
        # novelty's raw scores: the rows that may get the seasonal channel as that fit scores them
        # (without the tie-breaker unless novelty_tie), the others as novelty alone (with it)
        raw = np.empty_like(arr)
        if eligible:
            raw[eligible] = _kernels.novelty_scores(
                arr[eligible],
                low[eligible],
                width[eligible],
                cooldown=self.cooldown,
                window=self.local_window,
                tie=self._tie(),
            )
        out = np.full_like(arr, np.nan)
        chosen: list[tuple[int, np.ndarray, tuple[float, float, float, bool]]] = []
        levels = np.array([SCREEN_TAIL, Calibrator().tail])
        for i in eligible:
            f = raw[i][present[i]]
            finite = _finite(f)
            # the screen's u and the calibrator's (np.quantile's numbers, by selection)
            q = quantiles(finite, levels) if finite.size >= 20 else None
            suspect = np.zeros(arr.shape[1], dtype=bool)
            suspect[present[i]] = screen_tail(f, u=None if q is None else float(q[0]))
            kept = present[i] & ~suspect
            row_raw = raw[i]
            if suspect.any() and kept.any():  # novelty refitted without the suspects (screened_fit)
                again = np.where(kept, arr[i], np.nan)[None, :]
                lo2, w2 = _kernels.novelty_fit(again, bins=self.bins)
                row_raw = _kernels.novelty_scores(
                    arr[i : i + 1],
                    lo2,
                    w2,
                    cooldown=self.cooldown,
                    window=self.local_window,
                    tie=self._tie(),
                )[0]
                tail_n = tail_of(row_raw[kept])
            else:  # Calibrator().train(f): its tail is all combine_tail reads
                tail_n = tail_of(finite, None if q is None else float(q[1]))
            if tail_n[3]:  # degenerate
                continue
            chosen.append((i, row_raw, tail_n))
        if chosen:
            rows = [i for i, _, _ in chosen]
            proto = DailyProfile(**dict(self.seasonal or {}))
            fit = fit_profile(
                ts,
                arr[rows],
                step_ns=step_ns_of(index),
                window=proto.window,
                hold=proto.hold,
                max_hold_ns=proto.max_hold_ns(),
                min_scale=proto.min_scale,
                pool_slots=proto.pool,
            )
            z, capped = channel_score_pair(fit, ts, arr[rows])  # calibrated on z: before the habits' cap
            for j, (i, row_raw, (u_n, beta_n, p_u_n, _)) in enumerate(chosen):
                z_row = np.where(present[i], z[j], np.nan)
                z_out = np.where(present[i], capped[j], np.nan)
                runs = allowed_runs(ts, present[i], self.screen_max_per_day)
                kept = screened_kept(z_row, present[i], beyond=self.screen_sigma, max_runs=runs)
                tail_s = seasonal_tail(_finite(z_row[kept]), float(-np.log(p_u_n)))
                if tail_s is None:  # the whole calibrator (calibrate_screened: the same points)
                    cal_s = calibrate_screened(z_row, present[i], beyond=self.screen_sigma, max_runs=runs)
                    out[i] = combine_tail(row_raw, z_out, u_n, beta_n, p_u_n, cal_s, self.seasonal_cooldown)
                else:
                    out[i] = combine_above(
                        row_raw, z_out, u_n, beta_n, p_u_n, *tail_s, self.seasonal_cooldown
                    )
        with_channel = {c[0] for c in chosen}
        alone = [i for i in range(arr.shape[0]) if i not in with_channel]
        if alone:  # novelty alone, as fit() leaves it where the seasonal channel is off
            out[alone] = _kernels.novelty_scores(
                arr[alone], low[alone], width[alone], cooldown=self.cooldown, window=self.local_window
            )
        out[~present] = np.nan
        return out

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
        """The streaming path given the timestamps: novelty's (:meth:`Novelty.score_contexts`, its
        carry under ``novelty``) for every row, and for the rows with the ``profile`` channel that
        channel on the new points, as ``score(new, context=past)`` gives them:

        * the level needs the residuals of the last ``reach`` points of the context (at most 12 h
          of them; looked up in the profile with their timestamps, no carry);
        * the repeat weights need, of the surprisals before, only those that no later one
          outranked (a decreasing stack) within ``seasonal_cooldown`` points: that stack is the
          carry (``seasonal``), advanced over the new points. A row whose carry is missing, covers
          fewer points than it needs or belongs to another fit is scored over its whole context
          (the per-series path) and its carry rebuilt.

        ``None`` where a model has the ``baseline`` channel (scored one by one)."""
        if all(getattr(m, "seasonal_", None) is None for m in models):
            return cls.score_contexts(models, contexts, new, carries)
        if any(
            getattr(m, "seasonal_", None) is not None and not isinstance(m.seasonal_, DailyProfile)  # type: ignore[attr-defined]
            for m in models
        ):
            return None
        from telewatch.detectors import _daily_profile as dp

        new = np.asarray(new, dtype="float64")
        kept = carries if carries is not None else [{} for _ in models]
        raw = Novelty.score_contexts([m.novelty_ for m in models], contexts, new, kept)  # type: ignore[attr-defined]
        new_times = np.asarray(new_times, dtype="int64")
        fast: list[int] = []  # rows whose carry holds: scored together
        surprisals: dict[int, np.ndarray] = {}
        for i, model in enumerate(models):
            seasonal = getattr(model, "seasonal_", None)
            if seasonal is None:
                continue
            assert isinstance(model, NoveltySeasonal)
            assert model.calibrators_ is not None
            fit = seasonal.fit_
            cal_s = model.calibrators_[1]
            cooldown = int(model.seasonal_cooldown)
            size = len(contexts[i])
            stack = kept[i].get("seasonal")
            key = np.array([fit.scale[0], cal_s.u_, cal_s.beta_, cal_s.p_u_, float(cooldown)])
            need = min(size, cooldown) if cooldown > 0 else 0
            if stack is not None and stack.size >= 6 and np.array_equal(stack[:5], key) and stack[5] >= need:
                fast.append(i)
                continue
            # the new points' repeat weights look back ``cooldown`` points at most, and a score's
            # level ``reach`` points: only that end of the context is scored (a 14-day context
            # of minute data: 2,000 of its 20,160 points)
            lo = max(0, size - max(cooldown, 1) - max(int(fit.reach), int(fit.window)))
            ctx = np.asarray(contexts[i], dtype="float64")[lo:]
            ts_all = np.concatenate([np.asarray(context_times[i], dtype="int64")[lo:], new_times[i]])
            z_all = dp.channel_scores(fit, ts_all, np.concatenate([ctx, new[i]])[None, :])[0]
            with np.errstate(invalid="ignore", over="ignore"):
                s_all = -cal_s.log_tail_probability(z_all)
            weights_all = repeat_weights(s_all, cooldown) if cooldown > 0 else np.ones(s_all.size)
            surprisals[i] = (s_all * weights_all)[size - lo :]
            kept[i]["seasonal"] = _stack_of(s_all, cooldown, key, covered=size + new.shape[1])
        if fast:
            z = _profile_scores(
                [models[i].seasonal_.fit_ for i in fast],  # type: ignore[attr-defined]
                [contexts[i] for i in fast],
                [context_times[i] for i in fast],
                new[fast],
                new_times[fast],
            )
            with np.errstate(invalid="ignore", over="ignore"):
                surprisal = -_log_tails([models[i].calibrators_[1] for i in fast], z)  # type: ignore[attr-defined]
            cooldowns = {int(models[i].seasonal_cooldown) for i in fast}  # type: ignore[attr-defined]
            if len(cooldowns) == 1 and min(cooldowns) > 0:  # one compiled pass over every row
                stacks = _advance_rows(
                    [kept[i]["seasonal"] for i in fast],
                    surprisal,
                    np.array([len(contexts[i]) for i in fast], dtype="int64"),
                    cooldowns.pop(),
                )
                weights = stacks.pop()
                for row, i in enumerate(fast):
                    kept[i]["seasonal"] = stacks[row]
                    surprisals[i] = surprisal[row] * weights[row]
            else:
                for row, i in enumerate(fast):
                    cooldown = int(models[i].seasonal_cooldown)  # type: ignore[attr-defined]
                    if cooldown > 0:
                        w_row, kept[i]["seasonal"] = _advance(
                            kept[i]["seasonal"], surprisal[row], len(contexts[i]), cooldown
                        )
                        surprisals[i] = surprisal[row] * w_row
                    else:
                        surprisals[i] = surprisal[row]
        if surprisals:
            rows = sorted(surprisals)
            cals = [models[i].calibrators_[0] for i in rows]  # type: ignore[attr-defined]
            sur = np.stack([surprisals[i] for i in rows])
            start = np.array([-np.log(c.p_u_) for c in cals])[:, None]
            u = np.array([c.u_ for c in cals])[:, None]
            beta = np.array([c.beta_ for c in cals])[:, None]
            with np.errstate(invalid="ignore", over="ignore"):
                as_novelty = np.where(sur > start, u + beta * (sur - start), -np.inf)
            raw[rows] = np.fmax(raw[rows], as_novelty)
        raw[np.isnan(new)] = np.nan
        return raw


@_warm.register
def warm_up() -> None:
    """Compile (or load from the cache) the profile channel's kernels: its matrix path on a few
    days of two hourly series (novelty without the tie-breaker, the screens, the profile's fit and
    level passes, the repeat weights; the per-series path runs the same ones) and the tick's pass
    over the repeat-weight stacks (:func:`_advance_rows`, and :func:`_stack_of` that builds them)."""
    idx = pd.date_range("2024-01-01", periods=5 * 24, freq="1h", tz="UTC")
    rng = np.random.default_rng(0)
    x = 10 + np.sin(2 * np.pi * np.arange(idx.size) / 24) + rng.normal(0, 0.1, (2, idx.size))
    NoveltySeasonal(channel="profile").fit_score_matrix(x, idx)
    stack = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 4.0, 0.0, 2.0])  # key, points covered, (age, value)
    _advance_rows([stack], np.ones((1, 2)), np.array([4], dtype="int64"), 3)
    _stack_of(np.ones(4), 3, stack[:5])


def _profile_scores(
    fits: Sequence[Any],
    contexts: Sequence[np.ndarray],
    context_times: Sequence[np.ndarray],
    new: np.ndarray,
    new_times: np.ndarray,
) -> np.ndarray:
    """The profile channel's scores of the new points of many series (``fits`` their
    :class:`~telewatch.detectors._daily_profile.ProfileFit` s) after their contexts: each row's
    last ``reach`` context points (NaN-padded on the left) and the new ones, as one matrix per
    group of fits alike (slot width, window, reach, hold)."""
    from telewatch.detectors import _daily_profile as dp

    out = np.empty(new.shape)
    groups: dict[tuple[int, int, int, float, int], list[int]] = {}
    for row, fit in enumerate(fits):
        weekly = 0 if fit.weekly is None else fit.weekly.shape[1]
        groups.setdefault((fit.slot_ns, fit.window, fit.reach, fit.hold, weekly), []).append(row)
    for (slot_ns, window, reach, hold, weekly), rows in groups.items():
        k = len(rows)
        xs = np.full((k, reach), np.nan)
        ts = np.zeros((k, reach), dtype="int64")
        for j, row in enumerate(rows):
            c = np.asarray(contexts[row], dtype="float64")[-reach:]
            if c.size:
                xs[j, reach - c.size :] = c
                ts[j, reach - c.size :] = np.asarray(context_times[row], dtype="int64")[-reach:]
        daily = np.stack([fits[row].profile[0] for row in rows])
        weeks = np.stack([fits[row].weekly[0] for row in rows]) if weekly else None
        scale = np.array([fits[row].scale[0] for row in rows])
        habit = _stacked_habits([fits[row] for row in rows], daily.shape[1])

        stacked = dp.ProfileFit(slot_ns, daily, scale, window, hold, reach, weeks, habit)
        r_ctx = xs - _profile_at(daily, weeks, ts, slot_ns)
        r_new = new[rows] - _profile_at(daily, weeks, new_times[rows], slot_ns)
        out[rows] = dp.habit_capped(stacked, new_times[rows], r_new, dp.level_after(stacked, r_ctx, r_new))
    return out


def _stacked_habits(fits: Sequence[Any], n_slots: int) -> np.ndarray | None:
    """The fits' habit envelopes as one array (rows × 2 × slots); a fit without them (too little
    history, or stored before they existed) never caps: an empty envelope (+inf, -inf)."""
    if all(f.habit is None for f in fits):  # a fit pickled before: the class default, None
        return None
    none = np.stack([np.full(n_slots, np.inf), np.full(n_slots, -np.inf)])
    return np.stack([none if f.habit is None else f.habit[0] for f in fits])


def _profile_at(daily: np.ndarray, weeks: np.ndarray | None, ts: np.ndarray, slot_ns: int) -> np.ndarray:
    """Each row's profile (daily, plus weekly) at its own timestamps ``ts`` (rows × points)."""
    from telewatch.detectors import _daily_profile as dp

    v = np.take_along_axis(daily, dp.slots_of(ts, slot_ns), axis=1)
    if weeks is not None:
        v = v + np.take_along_axis(weeks, dp.slots_of(ts, slot_ns, dp.WEEK_NS), axis=1)
    return v


def _log_tails(calibrators: Sequence[Calibrator], scores: np.ndarray) -> np.ndarray:
    """``calibrators[i].log_tail_probability(scores[i])`` for every row at once (the calibrator's
    formula, on its levels stacked)."""
    sizes = np.array([c.levels_.size for c in calibrators])
    width = int(sizes.max())
    levels = np.full((len(calibrators), width), np.inf)
    for i, c in enumerate(calibrators):
        levels[i, : c.levels_.size] = c.levels_
    nan = np.isnan(scores)
    clean = np.where(nan, 0.0, scores)
    below = (levels[:, None, :] < clean[:, :, None]).sum(axis=2)  # searchsorted(levels, s, "left")
    p = 1.0 - below / sizes[:, None]
    log_p = np.log(np.maximum(p, 1e-300))
    log_p_u = np.array([np.log(c.p_u_) for c in calibrators])[:, None]
    u = np.array([c.u_ for c in calibrators])[:, None]
    beta = np.array([c.beta_ for c in calibrators])[:, None]
    with np.errstate(over="ignore", invalid="ignore"):
        tail = log_p_u - (scores - u) / beta
    log_p = np.where(scores > u, tail, log_p)
    return np.where(nan, np.nan, np.minimum(log_p, 0.0))


_STACK: list[Any] = []


def _stack_of(
    surprisal: np.ndarray, cooldown: int, key: np.ndarray, *, covered: int | None = None
) -> np.ndarray:
    """The carry of the repeat weights after ``surprisal``: ``key`` (the fit it belongs to), the
    points it covers (``covered``, default ``surprisal.size``: a caller that scored only the end
    of its context says how many points there were), then (points back from the end, value) of
    the decreasing stack of the last ``cooldown`` points (NaN never on it). One compiled pass.

    >>> _stack_of(np.array([5.0, 3.0, np.nan, 4.0, 1.0]), 10, np.zeros(5))[5:].tolist()
    [5.0, 4.0, 5.0, 1.0, 4.0, 0.0, 1.0]
    """
    if not _STACK:
        import numba

        @numba.njit(cache=True, nogil=True)
        def kernel(x, start):  # type: ignore[no-untyped-def]
            n = x.size
            ages = np.empty(n - start)
            values = np.empty(n - start)
            top = 0
            for t in range(start, n):  # earlier points are cooldown or more back: weight 1 either way
                v = x[t]
                if not np.isfinite(v):
                    continue
                while top > 0 and values[top - 1] < v:
                    top -= 1
                values[top] = v
                ages[top] = n - 1 - t
                top += 1
            return ages[:top], values[:top]

        _STACK.append(kernel)
    x = np.ascontiguousarray(surprisal, dtype="float64")
    ages, values = _STACK[0](x, max(0, x.size - max(cooldown, 1)))
    out = np.empty(6 + 2 * ages.size)
    out[:5] = key
    out[5] = float(x.size if covered is None else covered)
    out[6::2] = ages
    out[7::2] = values
    return out


def _advance(
    stack: np.ndarray, surprisal: np.ndarray, size: int, cooldown: int
) -> tuple[np.ndarray, np.ndarray]:
    """The repeat weights of new ``surprisal`` after a context of ``size`` points whose stack is
    ``stack`` (see :func:`_stack_of`), and the stack after them. Positions: the context's last
    point is -1, the new points 0, 1, ...; a carried entry ``age`` points back sits at -1 - age."""
    key, seen = stack[:5], float(stack[5])
    ages, values = stack[6::2], stack[7::2]
    inside = ages < size  # older points are not in the context: score(new, context=past) never saw them
    pos = [-1.0 - a for a in ages[inside].tolist()]
    vals = values[inside].tolist()
    weights = np.ones(surprisal.size)
    for j, v in enumerate(surprisal.tolist()):
        if not np.isfinite(v):
            continue
        while vals and vals[-1] < v:
            vals.pop()
            pos.pop()
        if vals:
            weights[j] = min(1.0, (j - pos[-1]) / cooldown)
        vals.append(v)
        pos.append(float(j))
    m = surprisal.size
    new_ages = [m - 1 - p for p in pos]
    live = [k for k, a in enumerate(new_ages) if a + 1 < cooldown]  # farther: weight 1 either way
    out = np.empty(6 + 2 * len(live))
    out[:5] = key
    out[5] = seen + m
    out[6::2] = [new_ages[k] for k in live]
    out[7::2] = [vals[k] for k in live]
    return weights, out


_ADVANCE: list[Any] = []


def _advance_rows(
    stacks: Sequence[np.ndarray], surprisal: np.ndarray, sizes: np.ndarray, cooldown: int
) -> list[np.ndarray]:
    """:func:`_advance` for many rows in one compiled pass: the new stacks, then (last) the
    weights (rows × m)."""
    if not _ADVANCE:
        import numba

        @numba.njit(cache=True, nogil=True)
        def kernel(  # type: ignore[no-untyped-def]
            flat, offsets, surprisal, sizes, cooldown, weights, out, out_offsets
        ):
            k, m = surprisal.shape
            pos = np.empty(flat.size // 2 + m + 1)
            val = np.empty(flat.size // 2 + m + 1)
            o = 0
            for r in range(k):
                lo, hi = offsets[r], offsets[r + 1]
                top = 0
                for e in range(lo + 6, hi, 2):
                    if flat[e] < sizes[r]:
                        pos[top] = -1.0 - flat[e]
                        val[top] = flat[e + 1]
                        top += 1
                for j in range(m):
                    weights[r, j] = 1.0
                    v = surprisal[r, j]
                    if not np.isfinite(v):
                        continue
                    while top > 0 and val[top - 1] < v:
                        top -= 1
                    if top > 0:
                        weights[r, j] = min(1.0, (j - pos[top - 1]) / cooldown)
                    pos[top] = j
                    val[top] = v
                    top += 1
                out_offsets[r] = o
                for e in range(5):
                    out[o + e] = flat[lo + e]
                out[o + 5] = flat[lo + 5] + m
                o += 6
                for t in range(top):
                    age = m - 1 - pos[t]
                    if age + 1 < cooldown:
                        out[o] = age
                        out[o + 1] = val[t]
                        o += 2
            out_offsets[k] = o

        _ADVANCE.append(kernel)
    k, m = surprisal.shape
    offsets = np.zeros(k + 1, dtype="int64")
    np.cumsum([st.size for st in stacks], out=offsets[1:])
    flat = np.concatenate(stacks) if k else np.empty(0)
    weights = np.empty((k, m))
    out = np.empty(flat.size + k * 2 * m)
    out_offsets = np.zeros(k + 1, dtype="int64")
    _ADVANCE[0](
        flat,
        offsets,
        np.ascontiguousarray(surprisal, dtype="float64"),
        sizes,
        float(cooldown),
        weights,
        out,
        out_offsets,
    )
    return [out[out_offsets[r] : out_offsets[r + 1]].copy() for r in range(k)] + [weights]
