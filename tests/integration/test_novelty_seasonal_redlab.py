"""``novelty_seasonal``'s profile channel on the real month (``../shared/datasets/redlab``): a metric
whose far excursions recur many times a day is calibrated on them, not paged on each one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from telewatch.detectors import create_detector

pytestmark = pytest.mark.shared

DAY = 1440


@pytest.fixture
def month(shared_datasets: Path) -> pd.DataFrame:
    df = pd.read_csv(
        shared_datasets / "redlab" / "key_features.tsv",
        sep="\t",
        header=None,
        names=["point", "web_response", "throughput", "apdex", "error"],
    )
    df["point"] = pd.to_datetime(df["point"], utc=True)
    df = df.set_index("point").sort_index()
    return df[~df.index.duplicated()].asfreq("1min")


def _alarms(series: pd.Series, start: int, **params: float) -> int:
    """Points of the two days after a 14-day training window (from day ``start``) at z >= 5, as
    the detection paths calibrate the detector (its own calibrator of the training scores)."""
    train = series.iloc[start * DAY : (start + 14) * DAY]
    test = series.iloc[(start + 14) * DAY : (start + 16) * DAY]
    det = create_detector("novelty_seasonal", channel="profile", **params).fit(train)
    cal = det.train_calibrator(det.score(train).to_numpy())
    return int((cal(det.score(test, context=train).to_numpy()) >= 5).sum())


def test_recurring_far_excursions_are_calibrated_on_not_left_out(month: pd.DataFrame) -> None:
    """web_response and error go 10 robust sigmas out 7-14 times a day (latency bursts, the nightly
    error burst). Leaving those runs out of the seasonal calibration (as for a rare outage) pages
    on the next ones; with the default (at most 2 runs a day are left out) far fewer points alarm."""
    default = without = 0
    for col in ("web_response", "error"):
        for start in (0, 7):
            default += _alarms(month[col], start)
            without += _alarms(month[col], start, screen_max_per_day=1e9)
    assert without >= 10
    assert 2 * default <= without, (default, without)


def test_without_the_tie_breaker_where_the_profile_channel_ranks(month: pd.DataFrame) -> None:
    """With the profile channel on, novelty runs without its tie-breaker (the channel ranks the
    points that are not novel); with ``baseline``, or under ``min_days`` of history, it keeps it."""
    s = month["throughput"].iloc[: 5 * DAY]
    on = create_detector("novelty_seasonal", channel="profile").fit(s)
    assert on.seasonal_ is not None
    assert on.novelty_.tie_breaker is False
    kept = create_detector("novelty_seasonal", channel="profile", novelty_tie=True).fit(s)
    assert kept.novelty_.tie_breaker is True
    young = create_detector("novelty_seasonal", channel="profile").fit(s.iloc[: 2 * DAY])
    assert young.seasonal_ is None
    assert young.novelty_.tie_breaker is True
    scores = on.score(s).to_numpy()
    assert np.isfinite(scores[~np.isnan(s.to_numpy())]).all()
