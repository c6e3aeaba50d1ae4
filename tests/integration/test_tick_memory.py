"""A monitor's tick scores novelty with the memory its calibrator learned from: the training window.

Novelty scores a value by how far it lands from every value seen before it. A monitor fits the
model (and its calibrator) on the training window, whose scores remember the whole window; the tick
used to score new points with only the day before them as that memory, so a value last seen two
days ago was "never seen" in the tick and paged, though the model had learned it (on NAB scored as
a monitor runs it, ``telewatch bench nab --calibration monitor``: 48.4 on the tuning half with a
day of memory, 56.9 with the training window).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from telewatch.detectors.novelty import Novelty
from telewatch.detectors.novelty_seasonal import NoveltySeasonal
from telewatch.monitors.config import MonitorSpec, parse_monitors
from telewatch.services import tick_state
from telewatch.services.detection import calibrated_scores
from telewatch.services.monitor import run_monitor
from telewatch.sources.base import ColumnarSource, FetchedBatch
from telewatch.store.db import Store

T0 = pd.Timestamp("2026-03-01 00:00", tz="UTC")
DAY = 1440


class _EveryOtherDay(ColumnarSource):
    """One metric, 1-minute points around 50; a half-hour peak at 12:00 every day, to 150 on even
    days and to 100 on odd days; a spike to 260 at 18:00 on day 4."""

    kind = "test"

    def fetch_batch(self, *, start: pd.Timestamp, end: pd.Timestamp) -> FetchedBatch:
        first = max(0, int(np.ceil((start - T0) / pd.Timedelta(minutes=1))))
        last = int(np.ceil((end - T0) / pd.Timedelta(minutes=1)))
        minutes = np.arange(first, max(first, last))
        values = 50 + 2 * (np.sin(minutes * 12.9898) % 1.0)
        day, minute = minutes // DAY, minutes % DAY
        peak = (minute >= 12 * 60) & (minute < 12 * 60 + 30)
        values = np.where(peak, np.where(day % 2 == 0, 150.0, 100.0) + values - 50, values)
        values = np.where((day == 4) & (minute >= 18 * 60) & (minute < 18 * 60 + 3), 260.0, values)
        stamps = T0.value + minutes.astype("int64") * pd.Timedelta(minutes=1).value
        return FetchedBatch(["load"], [{}], stamps, values, np.array([0, minutes.size]))


def _spec() -> MonitorSpec:
    return parse_monitors(
        {
            "monitors": [
                {
                    "name": "memory",
                    "source": {"type": "logs", "path": "unused", "count_by": ["event"]},
                    "schedule": {"every": "15m"},
                    "history": "4d",
                    "train": {"every": "7d", "window": "4d", "min_points": 60, "warm_up": "0s"},
                    "detectors": [{"type": "novelty"}],
                }
            ]
        }
    ).monitors[0]


def _tick_scores(tmp_path: Path, name: str) -> tuple[pd.Series, list[pd.Timestamp]]:
    """Tick every 15 minutes through day 4 from 11:00 to 19:00: the calibrated z's the ticks
    stored for day 4, and the anomalies' starts."""
    spec, source = _spec(), _EveryOtherDay()
    ticks = [T0 + pd.Timedelta(days=4, hours=11, minutes=15 * k) for k in range(33)]
    with Store(tmp_path / f"{name}.duckdb") as store:
        for now in ticks:
            report = run_monitor(spec, store=store, now=now, source=source)
            assert report.status == "ok", report.error
        cur = store.cursor()
        frame = cur.execute(
            "SELECT ts, score FROM scores WHERE ts >= ? ORDER BY ts", [ticks[0].tz_localize(None)]
        ).df()
        rows = cur.execute("SELECT start_ts FROM anomalies ORDER BY start_ts").fetchall()
    z = pd.Series(
        frame["score"].to_numpy(dtype=float), index=pd.DatetimeIndex(frame["ts"]).tz_localize("UTC")
    )
    return z, [pd.Timestamp(r[0]).tz_localize("UTC") for r in rows]


def test_a_value_last_seen_two_days_ago_is_not_news_to_a_tick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    peak = T0 + pd.Timedelta(days=4, hours=12)
    spike = T0 + pd.Timedelta(days=4, hours=18)
    at_peak = slice(peak, peak + pd.Timedelta(minutes=30))
    z, starts = _tick_scores(tmp_path, "training")
    assert z.index[0] <= peak
    assert z.index[-1] >= spike
    # day 4's peak to 150 was learned on days 0 and 2 (inside the 4-day training window): not news;
    # the spike to 260 was never seen: an anomaly
    assert z[at_peak].max() < 5.0, z[at_peak].max()  # the threshold; what it gets is the tie-breaker's
    assert z[spike:].max() >= 5.0
    assert [s for s in starts if spike <= s <= spike + pd.Timedelta(minutes=3)]
    # with the day before as its memory (the tick before 2026-12-07), the tick calls the peak new
    monkeypatch.setattr(Novelty, "context_is_training", False)
    day_z, _ = _tick_scores(tmp_path, "day")
    assert day_z[at_peak].max() >= 5.0, day_z[at_peak].max()


def test_the_tick_context_of_a_remembering_detector_is_its_training_span() -> None:
    idx = pd.date_range(T0, periods=5 * DAY, freq="1min")
    series = pd.Series(50 + np.sin(np.arange(idx.size) / 40.0), index=idx)
    train = np.ones(idx.size, dtype=bool)
    for detector in ("novelty", "novelty_seasonal"):
        model, _z, _s = calibrated_scores(detector, {}, series, train)
        need = tick_state.context_need(model)
        assert need == tick_state.Need(0, int((idx[-1] - idx[0]).value)), detector
        del model.trained_span_  # a model stored before the span was kept: the day before, as then
        assert tick_state.context_need(model) == tick_state.Need(0, int(tick_state.DAY.value))
    # a detector whose reach is unknown but that does not remember (seasonal): the day before
    seasonal, _z, _s = calibrated_scores("seasonal", {}, series, train)
    assert tick_state.context_need(seasonal) == tick_state.Need(0, int(tick_state.DAY.value))
    # a short training span still gets the day before
    short, _z, _s = calibrated_scores("novelty", {}, series.iloc[:600], train[:600])
    assert tick_state.context_need(short) == tick_state.Need(0, int(tick_state.DAY.value))
    assert Novelty.context_is_training
    assert NoveltySeasonal.context_is_training
