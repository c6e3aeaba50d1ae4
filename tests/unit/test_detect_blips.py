"""Warm-up and lone blips (issue 19, item 7): what ``telewatch detect`` stores, on planted data."""

from __future__ import annotations

import numpy as np
import pandas as pd

from telewatch.postrules.alarms import AlarmFilter
from telewatch.postrules.threshold import Threshold
from telewatch.postrules.usual import ordinary_blip
from telewatch.services.detection import WARM_UP, anomaly_windows, warm_up

DAYS = 10
IDX = pd.date_range("2024-03-01", periods=DAYS * 1440, freq="1min", tz="UTC")


def _traffic() -> pd.Series:
    rng = np.random.default_rng(5)
    minute = np.arange(IDX.size) % 1440
    return pd.Series(1000 + 400 * np.sin(2 * np.pi * minute / 1440) + rng.normal(0, 20, IDX.size), index=IDX)


def _flagged(positions: list[int]) -> np.ndarray:
    z = np.zeros(IDX.size)
    z[positions] = 9.0
    return z


def test_a_lone_reading_just_past_the_usual_band_is_not_stored_a_far_one_and_a_longer_one_are() -> None:
    series = _traffic()
    near, far, long_start, last = 7 * 1440 + 360, 8 * 1440 + 360, 9 * 1440 + 360, IDX.size - 2
    series.iloc[near] += 60.0  # a new daily high by ~4 %: within a band width of the usual band
    series.iloc[far] *= 3.0  # a lone reading three times the usual
    series.iloc[long_start : long_start + 4] += 60.0  # the same small excess for four minutes
    series.iloc[last] += 60.0  # at the end of the data: may be the start of something
    z = _flagged([near, far, *range(long_start, long_start + 4), last])
    windows = anomaly_windows(series, z, cut=Threshold(value=5.0), alarm=AlarmFilter(merge_gap=5))
    starts = [w.start for w in windows]
    assert near not in starts
    assert far in starts
    assert long_start in starts
    assert last in starts
    kept = {w.start: w for w in windows}
    blip = kept[far]
    assert blip.lower is not None
    assert blip.upper is not None
    assert not ordinary_blip(1, blip.value, blip.lower, blip.upper)


def test_ordinary_blip_needs_a_usual_band_and_one_point() -> None:
    assert ordinary_blip(1, 105.0, 80.0, 100.0)
    assert ordinary_blip(1, 65.0, 80.0, 100.0)  # a dip just under the band too
    assert not ordinary_blip(1, 125.0, 80.0, 100.0)
    assert not ordinary_blip(2, 105.0, 80.0, 100.0)
    assert not ordinary_blip(1, 105.0, None, None)
    assert not ordinary_blip(1, float("nan"), 80.0, 100.0)


def test_warm_up_covers_three_days_of_a_month_and_a_tenth_of_a_short_series() -> None:
    assert pd.Timedelta(days=3) == WARM_UP
    month = pd.date_range("2024-03-01", periods=30 * 1440, freq="1min", tz="UTC")
    warm = warm_up(month)
    assert int(warm.sum()) == 3 * 1440
    assert month[~warm][0] == month[0] + pd.Timedelta(days=3)
    week = month[: 7 * 1440]
    assert int(warm_up(week).sum()) == int(np.ceil(7 * 1440 / 10))
