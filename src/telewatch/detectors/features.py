"""Causal features of a series for the ML detectors (Isolation Forest, One-Class SVM).

Every feature at ``t`` uses only values at or before ``t``: the value itself, its differences to
``lags`` earlier rows, its distance from the mean of the ``windows`` previous rows in units of their
standard deviation, how far the mean of the last ``smooth`` rows lies from the mean of the
``min(windows)`` rows before them, carried forward by the slope of the ``max(windows)`` rows
before those, in units of the noise (the standard deviation of the one-step differences over the
``max(windows)`` previous rows, over sqrt 2): a daily ramp neither moves nor inflates it, and the
time of day and day of week (as sine and cosine, so 23:59 sits next to
00:00) — each calendar feature only when the training series spans a whole day (week), since a
shorter one cannot teach it. Features are standardised with medians and robust scales
learned in :meth:`FeatureBuilder.fit`; missing features (no history yet, NaN values) become 0, the
standardised median.

>>> import numpy as np, pandas as pd
>>> idx = pd.date_range("2024-01-01", periods=2000, freq="1min")
>>> s = pd.Series(np.arange(2000.0), index=idx)
>>> fb = FeatureBuilder(lags=(1,), windows=(10,)).fit(s)
>>> fb.names_
['value', 'diff_1', 'z_10', 'shift_10', 'tod_sin', 'tod_cos']
>>> fb.transform(s).shape
(2000, 6)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from telewatch.core.errors import ConfigError
from telewatch.core.series import MAD_TO_SIGMA

FloatArray = npt.NDArray[np.float64]
_DAY_NS = 86_400 * 10**9
_WEEK_NS = 7 * _DAY_NS


def raw_features(
    series: pd.Series,
    *,
    lags: Sequence[int],
    windows: Sequence[int],
    daily: bool,
    weekly: bool,
    smooth: int = 0,
) -> tuple[FloatArray, list[str]]:
    """Unscaled causal features (rows × features) and their names."""
    x = series.astype("float64")
    cols: list[npt.NDArray[Any]] = [x.to_numpy(dtype="float64")]
    names = ["value"]
    for lag in lags:
        cols.append((x - x.shift(lag)).to_numpy(dtype="float64"))
        names.append(f"diff_{lag}")
    prev = x.shift(1)
    for w in windows:
        roll = prev.rolling(w, min_periods=2)
        mean, std = roll.mean(), roll.std()
        # a few quiet points make a tiny standard deviation and a huge z (a t statistic with w - 1
        # degrees of freedom, whose heavy tail made ordinary points look like 7-sigma ones): floor
        # it at the typical one so far (causal)
        std = std.clip(lower=std.expanding(min_periods=1).median())
        with np.errstate(all="ignore"):
            z = (x - mean) / std.where(std > 0)
        # the rolling mean/std themselves are left out: a spike would echo through them for a window
        cols.append(z.to_numpy(dtype="float64"))
        names.append(f"z_{w}")
    if smooth > 1 and windows:
        # a shift that lasts: one-point features see a 20-minute spike only at its edges (a 6-sigma
        # step is a 4.2-sigma one-step difference, which ordinary noise reaches in a fortnight); the
        # mean of the last `smooth` rows sees it on every row, with noise sigma * sqrt(1/smooth +
        # 1/min(windows)); the slope before the reference carries it over a daily ramp (without it,
        # a 30-sigma daily cycle hid the spike), and the one-step differences measure sigma
        # without the ramp in it
        ref = x.shift(smooth).rolling(min(windows), min_periods=2).mean()
        recent = x.rolling(smooth, min_periods=1).mean()
        step = (x - prev).shift(1)
        noise = step.rolling(max(windows), min_periods=2).std() / np.sqrt(2.0)
        noise = noise.clip(lower=0.5 * noise.expanding(min_periods=1).median())
        # the slope over the rows before the reference, carried to the recent rows' centre
        slope = step.shift(smooth).rolling(max(windows), min_periods=2).mean().fillna(0.0)
        ahead = (smooth + min(windows)) / 2.0
        with np.errstate(all="ignore"):
            shift = (recent - ref - slope * ahead) / noise.where(noise > 0)
        cols.append(shift.to_numpy(dtype="float64"))
        names.append(f"shift_{smooth}")
    ns = pd.DatetimeIndex(series.index).as_unit("ns").asi8
    if daily:
        day = 2 * np.pi * (ns % _DAY_NS) / _DAY_NS
        cols += [np.sin(day), np.cos(day)]
        names += ["tod_sin", "tod_cos"]
    if weekly:
        # 1970-01-01 was a Thursday: shift so that the week starts on Monday
        week = 2 * np.pi * ((ns + 3 * _DAY_NS) % _WEEK_NS) / _WEEK_NS
        cols += [np.sin(week), np.cos(week)]
        names += ["dow_sin", "dow_cos"]
    out = np.column_stack(cols).astype("float64")
    out[~np.isfinite(out)] = np.nan
    return out, names


class FeatureBuilder:
    """Builds standardised causal features; ``fit`` learns each feature's median and robust scale.
    ``smooth`` below 2 leaves the ``shift_`` feature out."""

    def __init__(
        self,
        lags: Sequence[int] = (1, 5),
        windows: Sequence[int] = (10, 60),
        seasonal: bool = True,
        smooth: int = 10,
    ) -> None:
        if any(int(v) < 1 for v in (*lags, *windows)):
            raise ConfigError(f"features: lags and windows must be >= 1, got {lags} and {windows}")
        if int(smooth) < 0:
            raise ConfigError(f"features: smooth must be >= 0, got {smooth}")
        self.lags = tuple(int(v) for v in lags)
        self.windows = tuple(int(v) for v in windows)
        self.seasonal = seasonal
        self.smooth = int(smooth)

    def _raw(self, series: pd.Series) -> tuple[FloatArray, list[str]]:
        return raw_features(
            series,
            lags=self.lags,
            windows=self.windows,
            daily=self.daily_,
            weekly=self.weekly_,
            smooth=self.smooth,
        )

    def fit(self, series: pd.Series) -> FeatureBuilder:
        # a calendar feature is only learnable when training covers a whole cycle of it
        span = series.index[-1] - series.index[0] if len(series) > 1 else pd.Timedelta(0)
        self.daily_ = self.seasonal and span >= pd.Timedelta(days=1)
        self.weekly_ = self.seasonal and span >= pd.Timedelta(days=7)
        raw, self.names_ = self._raw(series)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN features: handled below
            med = np.nanmedian(raw, axis=0) if len(raw) else np.zeros(raw.shape[1])
            med = np.nan_to_num(med)
            mad = MAD_TO_SIGMA * np.nan_to_num(np.nanmedian(np.abs(raw - med), axis=0))
            std = np.nan_to_num(np.nanstd(raw, axis=0))
        scale = np.where(mad > 0, mad, std)
        scale = np.where(scale > 0, scale, np.maximum(np.abs(med) * 0.01, 1.0))
        calendar = [i for i, n in enumerate(self.names_) if n[:4] in ("tod_", "dow_")]
        scale[calendar], med[calendar] = 1.0, 0.0  # already on [-1, 1]
        self.center_, self.scale_ = med, scale
        return self

    def transform(self, series: pd.Series) -> FloatArray:
        raw, _ = self._raw(series)
        z = (raw - self.center_) / self.scale_
        # clip so that one absurd value cannot blow up a kernel or a distance
        return np.asarray(np.clip(np.nan_to_num(z, nan=0.0), -1e6, 1e6))
