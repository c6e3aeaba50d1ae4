"""Seasonal baseline: robust trend plus daily and weekly (or detected) profiles; residual scored."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from telewatch.core.errors import ValidationError
from telewatch.core.series import MAD_TO_SIGMA, infer_step
from telewatch.detectors.bands import ExpectedBand, scale_floor
from telewatch.detectors.base import Detector
from telewatch.detectors.registry import register

#: At most this many slots per period: finer profiles need more cycles to be robust.
MAX_SLOTS = 2016


def _regular_values(series: pd.Series, step: pd.Timedelta) -> np.ndarray:
    """The series on its regular grid (gaps as NaN), for autocorrelation."""
    i8 = pd.DatetimeIndex(series.index).as_unit("ns").asi8
    pos = (i8 - i8[0]) // step.value
    out = np.full(int(pos[-1]) + 1, np.nan)
    out[pos] = series.to_numpy(dtype="float64")
    return out


def _acf(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Autocorrelation of ``x`` (NaNs as zeros after centring) for lags 0..max_lag, by FFT."""
    valid = ~np.isnan(x)
    y = np.where(valid, x - np.nanmean(x), 0.0)
    n = y.size
    size = 1 << int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(y, size)
    ac = np.fft.irfft(f * np.conj(f), size)[: max_lag + 1]
    cnt_f = np.fft.rfft(valid.astype("float64"), size)
    counts = np.fft.irfft(cnt_f * np.conj(cnt_f), size)[: max_lag + 1]
    counts = np.maximum(np.round(counts), 1.0)
    ac = ac / counts
    return ac / ac[0] if ac[0] > 0 else np.zeros_like(ac)


def detect_periods(
    series: pd.Series, *, min_cycles: float = 2.0, min_acf: float = 0.3, max_points: int = 20_000
) -> list[pd.Timedelta]:
    """Seasonal periods of ``series``: daily and weekly when the data covers ``min_cycles`` of them and
    the autocorrelation at that lag reaches ``min_acf``; otherwise the strongest autocorrelation peak
    (the first within 10% of the highest, between 4 steps and half the data). Trend is removed first (difference from a rolling median).

    >>> idx = pd.date_range("2024-01-01", periods=4 * 288, freq="5min")
    >>> s = pd.Series(np.sin(2 * np.pi * np.arange(idx.size) / 288), index=idx)
    >>> detect_periods(s)
    [Timedelta('1 days 00:00:00')]
    """
    s = series.dropna()
    step = infer_step(pd.DatetimeIndex(s.index))
    if step is None or len(s) < 16:
        return []
    x = _regular_values(s, step)
    if x.size > max_points:  # coarsen: mean of blocks, so a month of minutes stays fast
        k = int(np.ceil(x.size / max_points))
        trimmed = x[: x.size // k * k].reshape(-1, k)
        valid = ~np.isnan(trimmed)
        if valid.all():
            x = trimmed.mean(axis=1)
        else:  # np.nanmean's numbers, without its warning on an all-NaN block (a gap of a block)
            counts = valid.sum(axis=1)
            sums = np.where(valid, trimmed, 0.0).sum(axis=1)
            x = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        step = step * k
    n = x.size
    trend = pd.Series(x).rolling(max(5, n // 8) | 1, center=True, min_periods=1).median().to_numpy()
    x = x - trend
    if np.nanstd(x) == 0 or not np.isfinite(np.nanstd(x)):
        return []
    max_lag = n // 2
    if max_lag < 4:
        return []
    ac = _acf(x, max_lag)
    found: list[pd.Timedelta] = []
    for period in (pd.Timedelta("1D"), pd.Timedelta("7D")):
        lag = round(period / step)
        if lag < 4 or lag * min_cycles > n or lag > max_lag:
            continue
        lo, hi = max(1, lag - max(1, lag // 200)), min(max_lag, lag + max(1, lag // 200))
        if float(ac[lo : hi + 1].max()) >= min_acf:
            found.append(period)
    if found:
        return found
    # no calendar season: the highest local ACF maximum after the first zero crossing
    upper = int(n / max(min_cycles, 1.0))
    below = np.flatnonzero(ac[: upper + 1] < 0)
    if below.size == 0:
        return []
    start = max(4, int(below[0]))
    seg = ac[start : upper + 1]
    if seg.size < 3:
        return []
    peaks = np.flatnonzero((seg[1:-1] > seg[:-2]) & (seg[1:-1] >= seg[2:])) + 1
    if peaks.size == 0:
        return []
    top = float(seg[peaks].max())
    if not np.isfinite(top) or top < min_acf:  # no clear season (NaN ACF, or only weak or negative peaks)
        return []
    best = int(peaks[np.flatnonzero(seg[peaks] >= 0.9 * top)[0]])  # the fundamental, not a multiple
    if seg[best] < min_acf:
        return []
    return [step * (start + best)]


def _as_periods(periods: Sequence[str | pd.Timedelta] | None) -> list[pd.Timedelta] | None:
    if periods is None:
        return None
    out = []
    for p in periods:
        try:
            td = pd.Timedelta(p)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"seasonal: period {p!r} is not a duration ({exc})") from None
        if td <= pd.Timedelta(0):
            raise ValidationError(f"seasonal: period {p!r} must be positive")
        out.append(td)
    return out


def max_hold_points(max_hold: str | pd.Timedelta, step: pd.Timedelta) -> int:
    """``max_hold`` (a duration) in points of ``step``, at least 1.

    >>> max_hold_points("12h", pd.Timedelta("1min")), max_hold_points("12h", pd.Timedelta("5min"))
    (720, 144)
    """
    try:
        duration = pd.Timedelta(max_hold)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"max_hold {max_hold!r} is not a duration ({exc})") from None
    return max(1, int(duration / step)) if step > pd.Timedelta(0) else 1


class SeasonalProfiles:
    """Additive per-slot medians for one or more periods (shortest first, each on the residual of the
    ones before): the daily and weekly shape of a metric."""

    def __init__(self, periods: Sequence[pd.Timedelta], step: pd.Timedelta) -> None:
        self.periods = list(periods)
        self.widths = [max(step, p / MAX_SLOTS) for p in self.periods]
        self.profiles: list[np.ndarray] = []

    def slots(self, index: pd.DatetimeIndex, k: int) -> np.ndarray:
        i8 = index.as_unit("ns").asi8
        n_slots = int(np.ceil(self.periods[k] / self.widths[k]))
        return ((i8 % self.periods[k].value) // self.widths[k].value).astype(np.int64) % n_slots

    def fit(self, index: pd.DatetimeIndex, detrended: np.ndarray) -> None:
        resid = detrended.copy()
        self.profiles = []
        for k, period in enumerate(self.periods):
            n_slots = int(np.ceil(period / self.widths[k]))
            slot = self.slots(index, k)
            frame = pd.DataFrame({"slot": slot, "v": resid})
            med = frame.dropna().groupby("slot")["v"].median()
            prof = np.zeros(n_slots)
            prof[med.index.to_numpy()] = med.to_numpy()
            prof = prof - np.median(prof[med.index.to_numpy()]) if len(med) else prof
            self.profiles.append(prof)
            resid = resid - prof[slot]

    def value(self, index: pd.DatetimeIndex) -> np.ndarray:
        total = np.zeros(len(index))
        for k, prof in enumerate(self.profiles):
            total += prof[self.slots(index, k)]
        return total


@register("seasonal")
class SeasonalBaseline(ExpectedBand, Detector):
    """Robust seasonal baseline: ``|x - (trend + profiles)| / scale``.

    ``fit`` finds the periods (``periods=None``: daily/weekly when the data shows them, else the
    strongest autocorrelation peak, see :func:`detect_periods`), removes a centred rolling-median
    trend, learns each period's per-slot median profile, and the robust scale (MAD) of what is left.
    ``score`` is causal: the trend at ``t`` is the median of the ``trend_points`` deseasonalised values
    *before* ``t``, so a Monday-morning peak that the weekly profile knows scores low, and a spike
    does not move its own baseline. :meth:`expected` gives the baseline and a band of
    ``band_sigma`` robust sigmas. **Outages held**: a point ``hold`` sigmas or more from the baseline
    does not join the trend's window (:func:`~telewatch.detectors._kernels.held_median`), so an outage
    or a step keeps scoring over its whole length, up to ``max_hold`` (a duration), after which the
    new level is accepted.

    >>> idx = pd.date_range("2024-01-01", periods=6 * 288, freq="5min")
    >>> daily = 10 + 5 * np.sin(2 * np.pi * np.arange(idx.size) / 288)
    >>> s = pd.Series(daily + np.random.default_rng(0).normal(0, 0.3, idx.size), index=idx)
    >>> det = SeasonalBaseline().fit(s.iloc[: 4 * 288])
    >>> s.iloc[5 * 288] += 4.0
    >>> int(np.argmax(det.score(s))) == 5 * 288, det.periods_
    (True, [Timedelta('1 days 00:00:00')])
    """

    def __init__(
        self,
        periods: Sequence[str] | None = None,
        trend_points: int = 144,
        band_sigma: float = 4.0,
        min_scale: float = 0.05,
        hold: float = 6.0,
        max_hold: str = "12h",
    ) -> None:
        self.periods = periods
        self.trend_points = trend_points
        self.band_sigma = band_sigma
        self.min_scale = min_scale
        self.hold = hold
        self.max_hold = max_hold

    def _fit(self, series: pd.Series) -> None:
        s = series.dropna()
        given = _as_periods(self.periods)
        self.periods_ = given if given is not None else detect_periods(s)
        step = infer_step(pd.DatetimeIndex(s.index)) or pd.Timedelta("1min")
        self.max_hold_points_ = max_hold_points(self.max_hold, step)
        self.profiles_ = SeasonalProfiles(self.periods_, step)
        x = s.to_numpy(dtype="float64")
        if x.size == 0:
            self.level_, self.scale_ = 0.0, 1e-9
            return
        win = max(3, min(self.trend_points, x.size)) | 1
        # the trend under the profiles must span the longest period, or it swallows the season
        longest = int(max(self.periods_) / step) if self.periods_ else 0
        season_win = max(3, min(max(win, longest), x.size)) | 1
        trend = pd.Series(x).rolling(season_win, center=True, min_periods=1).median().to_numpy()
        if self.periods_:
            self.profiles_.fit(pd.DatetimeIndex(s.index), x - trend)
        deseason = x - self.profiles_.value(pd.DatetimeIndex(s.index))
        trend = pd.Series(deseason).rolling(win, center=True, min_periods=1).median().to_numpy()
        resid = deseason - trend
        mad = float(np.median(np.abs(resid - np.median(resid)))) * MAD_TO_SIGMA
        self.scale_ = max(mad, scale_floor(x, share=self.min_scale))
        self.level_ = float(np.median(deseason[-win:]))

    def _baseline(self, series: pd.Series) -> np.ndarray:
        index = pd.DatetimeIndex(series.index)
        seasonal = self.profiles_.value(index) if self.periods_ else np.zeros(len(index))
        from telewatch.detectors._kernels import held_median

        deseason = series.to_numpy(dtype="float64") - seasonal
        trend, _, _ = held_median(
            deseason,
            window=self.trend_points,
            lag=1,
            min_periods=1,
            scale=self.scale_,
            hold=self.hold,
            max_hold=self.max_hold_points_,
            with_mad=False,
        )
        trend = np.where(np.isnan(trend), self.level_, trend)
        return trend + seasonal

    def _score(self, series: pd.Series) -> pd.Series:
        expected = self._baseline(series)
        return pd.Series(np.abs(series.to_numpy() - expected) / self.scale_, index=series.index)

    def _expected(self, series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        base = self._baseline(series)
        half = self.band_sigma * self.scale_
        return base, base - half, base + half
