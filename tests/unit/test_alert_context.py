"""The chart of an alert draws the band usual at each minute (same time of day, previous days)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from telewatch.alerts.chart import drawn, render_chart
from telewatch.alerts.sample import sample_candidate
from telewatch.services.alert_context import (
    CHART_HOURS,
    CHART_POINTS,
    alert_context,
    firing_candidate,
    latest_against_usual,
)
from telewatch.store import repo
from telewatch.store.db import Store


def test_the_band_follows_the_daily_cycle_over_the_chart_window(tmp_path: Path) -> None:
    idx = pd.date_range("2026-03-01", periods=8 * 1440, freq="1min", tz="UTC")
    minute = (idx.hour * 60 + idx.minute).to_numpy()
    values = 1000 + 400 * np.sin(2 * np.pi * minute / 1440) + np.random.default_rng(1).normal(0, 10, idx.size)
    start = idx[-120]
    values[-120:-100] = 50.0  # the anomaly: a collapse
    with Store(tmp_path / "s.duckdb") as store:
        with store.transaction(series=True) as tx:
            mid = repo.upsert_metric(tx, name="throughput")
            repo.write_points(tx, mid, pd.Series(values, index=idx))
        ctx = alert_context(store.cursor(), mid, start, idx[-101])
    assert ctx.window.index[0] == start - pd.Timedelta(hours=CHART_HOURS)
    assert ctx.window.index[-1] == idx[-101]
    assert list(ctx.band.index) == list(ctx.window.index)
    cycle = 1000 + 400 * np.sin(2 * np.pi * minute[-480:-100] / 1440)
    assert np.nanmax(np.abs(ctx.band["expected"].to_numpy() - cycle)) < 60  # the cycle, not one flat line
    assert (ctx.band["lower"] <= ctx.band["expected"]).all()
    assert (ctx.band["expected"] <= ctx.band["upper"]).all()
    # the collapse is far below the band the previous days give at those minutes
    assert (ctx.window.iloc[-20:] < ctx.band["lower"].iloc[-20:]).all()
    candidate = replace(sample_candidate(now=idx[-101]), series=ctx.window, band=ctx.band)
    png = render_chart(candidate)
    assert png is not None
    (tmp_path / "chart.png").write_bytes(png)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_hourly_metric_is_charted_over_its_last_72_readings_not_6_points(tmp_path: Path) -> None:
    """A metric read every hour (an ad exchange's cost per click): 6 hours before its anomaly are 6
    points, too few to see what is usual, so its chart reaches back ``CHART_POINTS`` readings, and
    the message's chart link opens the same span. A 5-minute metric keeps its 6 hours (72 readings)."""
    from telewatch.alerts.links import Links
    from telewatch.alerts.render import AlertEvent, alert_fields

    idx = pd.date_range("2026-03-01 00:15", periods=10 * 24, freq="1h", tz="UTC")
    values = 0.07 + 0.01 * np.sin(2 * np.pi * idx.hour.to_numpy() / 24)
    values[-3] = 0.19
    start = idx[-3]
    with Store(tmp_path / "s.duckdb") as store:
        with store.transaction(series=True) as tx:
            mid = repo.upsert_metric(tx, name="cpc")
            repo.write_points(tx, mid, pd.Series(values, index=idx))
            five = pd.date_range("2026-03-01", periods=10 * 288, freq="5min", tz="UTC")
            mid5 = repo.upsert_metric(tx, name="cpu")
            repo.write_points(tx, mid5, pd.Series(np.ones(five.size), index=five))
        ctx = alert_context(store.cursor(), mid, start, start)
        ctx5 = alert_context(store.cursor(), mid5, five[-3], five[-3])
    assert int((ctx.window.index < start).sum()) == CHART_POINTS
    assert ctx.window.index[0] == start - pd.Timedelta(hours=CHART_POINTS)
    assert ctx5.window.index[0] == five[-3] - pd.Timedelta(hours=CHART_HOURS)
    candidate = replace(
        sample_candidate(now=start), started_at=start, last_seen=start, series=ctx.window, band=ctx.band
    )
    fields = alert_fields(
        AlertEvent(candidate=candidate, event="firing", severity="warning", owner=None),
        links=Links(),
        now=start + pd.Timedelta(minutes=45),
        language="en",
        chart_hours=CHART_HOURS,
    )
    # the picture: the last 72 readings, up to the anomaly; the link opens the same span
    first = start - pd.Timedelta(hours=CHART_POINTS - 1)
    assert drawn(ctx.window, CHART_HOURS).index[0] == first
    assert f"from={first.strftime('%Y-%m-%dT%H:%M:%SZ')}&" in fields["chart_url"]


def test_an_alert_already_over_charts_the_return_to_normal_and_the_latest_value_its_usual_band(
    tmp_path: Path,
) -> None:
    """A 20-minute collapse that ended 40 minutes before the data's end: its alert's chart runs on to the
    end of the data (the reader sees traffic back), and the latest reading is compared with the band
    usual at its own minute. One that may still go on is charted to the end of the data too."""
    idx = pd.date_range("2026-03-01", periods=8 * 1440, freq="1min", tz="UTC")
    minute = (idx.hour * 60 + idx.minute).to_numpy()
    values = 1000 + 400 * np.sin(2 * np.pi * minute / 1440) + np.random.default_rng(2).normal(0, 10, idx.size)
    values[-60:-40] = 50.0
    with Store(tmp_path / "s.duckdb") as store:
        with store.transaction(series=True) as tx:
            mid = repo.upsert_metric(tx, name="throughput")
            repo.write_points(tx, mid, pd.Series(values, index=idx))
        cur = store.cursor()
        common = {
            "key": "k", "monitor": "m", "metric_id": mid, "metric": "throughput", "labels": {}, "group": None,
            "owner": None, "start": idx[-60], "end": idx[-41], "value": 50.0, "expected": 1000.0,
            "lower": 900.0, "upper": 1100.0, "score": 9.0, "severity": "warning",
        }  # fmt: skip
        over = firing_candidate(cur, **common, recovered=True, data_end=idx[-1])  # type: ignore[arg-type]
        ongoing = firing_candidate(cur, **common)  # type: ignore[arg-type]
        # a tick 4 minutes after the last anomalous point: not over yet (within the merge gap), and
        # its chart shows those 4 minutes too
        recent = {**common, "start": idx[-64], "end": idx[-45]}
        edge = firing_candidate(cur, **recent, recovered=False, data_end=idx[-41])  # type: ignore[arg-type]
        latest = latest_against_usual(cur, mid, idx[-1] + pd.Timedelta(minutes=5))
    assert over is not None
    assert ongoing is not None
    assert over.recovered
    assert over.series is not None
    assert over.series.index[-1] == idx[-1]
    assert ongoing.series is not None
    assert ongoing.series.index[-1] == idx[-41]
    assert edge is not None
    assert not edge.recovered
    assert edge.series is not None
    assert edge.series.index[-1] == idx[-41]
    usual = 1000 + 400 * np.sin(2 * np.pi * minute[-1] / 1440)
    assert latest.value == values[-1]
    assert latest.expected is not None
    assert abs(latest.expected - usual) < 30
    assert latest.lower is not None
    assert latest.upper is not None
    assert latest.lower <= values[-1] <= latest.upper


def test_an_alert_names_the_gap_and_the_stale_readings_around_its_anomaly(tmp_path: Path) -> None:
    """The RedLab 04-19 case: 12 minutes without readings, then 14 identical ones far below the
    usual level. The firing alert carries both (what a "collection gap" incident was typed from),
    so its message can say them; an anomaly on clean data carries none."""
    idx = pd.date_range("2026-03-01", periods=8 * 1440, freq="1min", tz="UTC")
    minute = (idx.hour * 60 + idx.minute).to_numpy()
    values = 1000 + 400 * np.sin(2 * np.pi * minute / 1440) + np.random.default_rng(3).normal(0, 10, idx.size)
    series = pd.Series(values, index=idx)
    series.iloc[-60:-46] = 504.06668  # 14 identical readings ...
    series = series.drop(idx[-72:-60])  # ... after 12 minutes without any
    clean = pd.Series(values, index=idx)
    clean.iloc[-60:-46] = 50.0 + np.arange(14)  # a collapse on clean data
    with Store(tmp_path / "s.duckdb") as store:
        with store.transaction(series=True) as tx:
            stale = repo.upsert_metric(tx, name="throughput")
            repo.write_points(tx, stale, series)
            ok = repo.upsert_metric(tx, name="throughput_ok")
            repo.write_points(tx, ok, clean)
        cur = store.cursor()
        common = {
            "key": "k", "monitor": "m", "labels": {}, "group": None, "owner": None,
            "start": idx[-60], "end": idx[-47], "value": 504.1, "expected": 1000.0, "lower": 900.0,
            "upper": 1100.0, "score": 9.0, "severity": "warning",
        }  # fmt: skip
        got = firing_candidate(cur, **common, metric_id=stale, metric="throughput")  # type: ignore[arg-type]
        none = firing_candidate(cur, **common, metric_id=ok, metric="throughput_ok")  # type: ignore[arg-type]
    assert got is not None
    assert none is not None
    assert [(i.kind, i.points) for i in got.data_quality] == [("collection_gap", 12), ("stuck_value", 14)]
    assert got.data_quality[0].start == idx[-72]
    assert got.data_quality[1].value == 504.06668
    assert none.data_quality == ()
