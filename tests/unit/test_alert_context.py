"""The chart of an alert draws the band usual at each minute (same time of day, previous days)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from telewatch.alerts.chart import render_chart
from telewatch.alerts.sample import sample_candidate
from telewatch.services.alert_context import CHART_HOURS, alert_context
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
