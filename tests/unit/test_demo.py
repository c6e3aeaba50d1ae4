"""The demo month: deterministic, realistic in shape, and its planted incidents really are there."""

from __future__ import annotations

import itertools
import time
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from telewatch.core.errors import ValidationError
from telewatch.demo import (
    DEFAULT_END,
    ISOLATED_NANS,
    LOCAL_UTC_OFFSET_HOURS,
    METRIC_NAMES,
    DemoData,
    DemoIncident,
    demo_labels_frame,
    generate_demo,
    nab_samples,
    write_demo_csv,
)

LOCAL = pd.Timedelta(hours=LOCAL_UTC_OFFSET_HOURS)
DAY = pd.Timedelta(days=1)

# Which way the incident's first (main) metric moves.
MAIN_DIRECTION = {
    "backend_outage": -1,  # throughput
    "latency_degradation": +1,  # response time
    "cpu_saturation": +1,
    "memory_leak": +1,
    "channel_overload": +1,
    "sessions_drop": -1,
    "temperature_rise": +1,
    "users_drop": -1,
    "error_burst": +1,
}


@pytest.fixture(scope="module")
def demo() -> DemoData:
    return generate_demo()


def _quiet(data: DemoData) -> pd.DataFrame:
    """The frame without the incident windows (and an hour either side)."""
    frame = data.frame
    mask = np.ones(len(frame), dtype=bool)
    for inc in data.incidents:
        mask &= ~(
            (frame.index >= inc.start - pd.Timedelta("1h")) & (frame.index <= inc.end + pd.Timedelta("1h"))
        )
    return frame.loc[mask]


def _robust_z(data: DemoData, inc: DemoIncident, metric: str) -> float:
    """(median in the window − median over the same hours a day earlier) / robust scale of the latter."""
    col = data.frame[metric]
    window = col.loc[inc.start : inc.end].to_numpy()
    ref = col.loc[inc.start - DAY : inc.end - DAY].to_numpy()
    ref_med = float(np.nanmedian(ref))
    mad = float(np.nanmedian(np.abs(ref - ref_med)))
    scale = max(1.4826 * mad, 1e-3 * abs(ref_med), 1e-9)
    return (float(np.nanmedian(window)) - ref_med) / scale


def _paired_z(data: DemoData, inc: DemoIncident, metric: str) -> float:
    """Day-over-day change in the window against the day-over-day change between two quiet days.

    Pairing minute with minute removes the daily cycle, so a slow ramp inside a window where the
    metric also climbs with the morning traffic is still measured against the noise alone. The two
    reference days are the nearest earlier ones of the same kind (weekday or weekend) whose same
    hours hold no incident, so the weekly cycle does not mask or fake a change.
    """
    weekend = (inc.start + LOCAL).day_of_week >= 5
    refs = []
    for k in range(1, 15):
        lo, hi = inc.start - k * DAY, inc.end - k * DAY
        if lo < data.frame.index[0] or ((lo + LOCAL).day_of_week >= 5) != weekend:
            continue
        if any(o.start <= hi and o.end >= lo for o in data.incidents):
            continue
        refs.append(k)
    assert len(refs) >= 2, inc
    col = data.frame[metric]
    span = pd.date_range(inc.start, inc.end, freq="1min")
    now, day1, day2 = (col.reindex(span - k * DAY).to_numpy() for k in (0, *refs[:2]))
    change, before = now - day1, day1 - day2
    med = float(np.nanmedian(before))
    scale = max(1.4826 * float(np.nanmedian(np.abs(before - med))), 1e-9)
    return (float(np.nanmedian(change)) - med) / scale


# -- determinism and shape --------------------------------------------------------------------------


def test_same_seed_same_data_other_seed_other_data(demo: DemoData) -> None:
    again = generate_demo(seed=7)
    pd.testing.assert_frame_equal(demo.frame, again.frame)
    assert demo.incidents == again.incidents
    assert demo.metrics == again.metrics
    other = generate_demo(seed=8)
    assert not demo.frame.iloc[:100].equals(other.frame.iloc[:100])
    assert [i.kind for i in other.incidents] == [i.kind for i in demo.incidents]
    assert [i.start for i in other.incidents] != [i.start for i in demo.incidents]


def test_frame_shape_dtypes_and_index(demo: DemoData) -> None:
    frame = demo.frame
    assert tuple(frame.columns) == METRIC_NAMES
    assert [m.name for m in demo.metrics] == list(METRIC_NAMES)
    assert all(dtype == np.float64 for dtype in frame.dtypes)
    index = frame.index
    assert isinstance(index, pd.DatetimeIndex)
    assert str(index.tz) == "UTC"
    assert index.name == "timestamp"
    assert index.is_monotonic_increasing
    assert index.is_unique
    assert index[0] == DEFAULT_END - pd.Timedelta(days=30)
    assert index[-1] == DEFAULT_END - pd.Timedelta("1min")
    assert 43_200 - 40 <= len(frame) < 43_200  # a month of minutes less the gaps
    assert (index.second == 0).all()


def test_metric_catalogue(demo: DemoData) -> None:
    groups = {m.name: m.group for m in demo.metrics}
    assert {groups[n] for n in ("web_response_ms", "throughput_rpm", "apdex", "error_rate")} == {"web"}
    assert {groups[n] for n in ("cpu_percent", "memory_percent", "temperature_c")} == {"host"}
    assert {groups[n] for n in ("active_sessions", "channel_load_percent")} == {"network"}
    assert groups["active_users"] == "business"
    for metric in demo.metrics:
        assert metric.unit
        assert metric.owner.startswith("@")
        assert metric.description
        assert metric.labels
        assert all(isinstance(v, str) for v in metric.labels.values())


def test_end_can_be_now_floored_and_naive_is_utc() -> None:
    now = pd.Timestamp.now(tz="UTC").floor("min")
    data = generate_demo(days=2, end=now)
    assert data.frame.index[-1] == now - pd.Timedelta("1min")
    naive = generate_demo(days=2, end=pd.Timestamp("2026-11-02 00:00"))
    assert naive.frame.index[-1] == DEFAULT_END - pd.Timedelta("1min")


def test_short_and_coarse_demos() -> None:
    short = generate_demo(days=3)
    assert short.incidents == []  # no history to plant them after
    week = generate_demo(days=7)  # a shorter warm-up (2 days), not none at all
    assert len(week.incidents) == 2
    assert week.incidents[0].start >= week.frame.index[0] + pd.Timedelta(days=2)
    coarse = generate_demo(days=30, step="5min")
    assert coarse.frame.index.to_series().diff().dropna().min() == pd.Timedelta("5min")
    assert len(coarse.incidents) >= 8
    assert coarse.frame.notna().all(axis=None) or coarse.frame.isna().sum().sum() == ISOLATED_NANS


def test_bad_arguments_raise_typed_errors() -> None:
    with pytest.raises(ValidationError):
        generate_demo(days=0)
    with pytest.raises(ValidationError):
        generate_demo(step="often")
    with pytest.raises(ValidationError):
        generate_demo(step="1s")


def test_generation_is_fast() -> None:
    generate_demo(seed=1)  # warm imports and caches
    t0 = time.perf_counter()
    generate_demo(seed=2)
    assert time.perf_counter() - t0 < 2.0


# -- missing data ------------------------------------------------------------------------------------


def test_only_the_planted_nans_and_gaps(demo: DemoData) -> None:
    frame = demo.frame
    nan = frame.isna().to_numpy()
    assert nan.sum() == ISOLATED_NANS
    rows = np.flatnonzero(nan.any(axis=1))
    assert len(rows) == ISOLATED_NANS  # one cell per row
    assert (np.diff(rows) > 1).all()  # isolated
    for inc in demo.incidents:
        assert frame.loc[inc.start : inc.end].notna().all(axis=None)
    # Gaps: a few absent minutes, in at most two runs.
    full = pd.date_range(frame.index[0], frame.index[-1], freq="1min")
    missing = full.difference(frame.index)
    assert 5 <= len(missing) <= 40
    runs = 1 + int((np.diff(missing.asi8) > pd.Timedelta("1min").value).sum())
    assert runs <= 2


# -- realism --------------------------------------------------------------------------------------


def test_value_ranges_look_real(demo: DemoData) -> None:
    q = _quiet(demo)
    assert q["apdex"].dropna().between(0.0, 1.0).all()
    assert 0.95 <= q["apdex"].median() <= 0.995
    assert (q["error_rate"] == 0).mean() > 0.05  # occasional zeros, mostly at night
    assert q["error_rate"].median() < 0.01
    for name in ("cpu_percent", "memory_percent", "channel_load_percent"):
        assert q[name].dropna().between(0.0, 100.0).all()
    assert q["channel_load_percent"].max() < 95.0  # only an overload comes near 100 %
    assert q["cpu_percent"].max() < 95.0
    assert 15.0 < q["temperature_c"].median() < 40.0
    thr = q["throughput_rpm"].dropna()
    assert (thr == thr.round()).all()  # counts per minute


def test_related_metrics_are_correlated(demo: DemoData) -> None:
    q = _quiet(demo).dropna()
    corr = q.corr()
    assert corr.loc["throughput_rpm", "cpu_percent"] > 0.9
    assert corr.loc["throughput_rpm", "active_users"] > 0.9
    assert corr.loc["throughput_rpm", "active_sessions"] > 0.8
    assert corr.loc["active_sessions", "channel_load_percent"] > 0.9
    assert corr.loc["cpu_percent", "temperature_c"] > 0.6


def test_daily_and_weekly_seasonality(demo: DemoData) -> None:
    q = _quiet(demo)
    local = q.index + LOCAL
    hour = local.hour
    weekend = local.day_of_week >= 5
    night = (hour >= 2) & (hour < 5)
    day = (hour >= 12) & (hour < 18)
    for name in ("throughput_rpm", "cpu_percent", "active_sessions", "channel_load_percent", "active_users"):
        col = q[name]
        assert col[night].mean() < 0.6 * col[day].mean(), name
        assert col[day & weekend].mean() < 0.85 * col[day & ~weekend].mean(), name
    assert q["web_response_ms"][night].median() < q["web_response_ms"][day].median()


def test_trend_grows_over_the_month(demo: DemoData) -> None:
    q = _quiet(demo)["throughput_rpm"]
    first, last = q.iloc[: 7 * 1440].mean(), q.iloc[-7 * 1440 :].mean()
    assert last > 1.05 * first


def test_memory_sawtooth_restarts_daily(demo: DemoData) -> None:
    mem = _quiet(demo)["memory_percent"]
    local = mem.index + LOCAL
    before = mem[(local.hour == 2) & (local.minute >= 50)].mean()
    after = mem[(local.hour == 3) & (local.minute <= 10)].mean()
    assert before - after > 20.0


# -- incidents -----------------------------------------------------------------------------------


def test_incidents_are_spread_after_the_warmup(demo: DemoData) -> None:
    incidents = demo.incidents
    assert 8 <= len(incidents) <= 12
    first = demo.frame.index[0]
    assert all(inc.start >= first + pd.Timedelta(days=5) for inc in incidents)
    assert all(inc.end < demo.frame.index[-1] for inc in incidents)
    starts = [inc.start for inc in incidents]
    assert starts == sorted(starts)
    for a, b in itertools.pairwise(incidents):
        assert b.start - a.end > pd.Timedelta(days=1)  # so "a day earlier" is clean
    durations = [inc.end - inc.start + pd.Timedelta("1min") for inc in incidents]
    assert min(durations) >= pd.Timedelta("5min")
    assert max(durations) <= pd.Timedelta("4h")
    assert max(durations) >= pd.Timedelta("90min")
    assert set(MAIN_DIRECTION) == {inc.kind for inc in incidents}
    for inc in incidents:
        assert len(inc.metrics) >= 2
        assert set(inc.metrics) <= set(METRIC_NAMES)
        assert str(inc.start.tz) == "UTC"
        assert inc.description


@pytest.mark.parametrize("position", range(11))
def test_incident_metrics_deviate_from_the_day_before(demo: DemoData, position: int) -> None:
    inc = demo.incidents[position]
    main = inc.metrics[0]
    z_main = _robust_z(demo, inc, main)
    assert np.sign(z_main) == MAIN_DIRECTION[inc.kind], (inc.kind, main, z_main)
    assert abs(z_main) > 3.0, (inc.kind, main, z_main)
    for metric in inc.metrics:
        z = _paired_z(demo, inc, metric)
        assert abs(z) > 3.0, (inc.kind, metric, z)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incidents_deviate_for_other_seeds(seed: int) -> None:
    data = generate_demo(seed=seed)
    for inc in data.incidents:
        for metric in inc.metrics:
            assert abs(_paired_z(data, inc, metric)) > 3.0, (seed, inc.kind, metric)
        assert abs(_robust_z(data, inc, inc.metrics[0])) > 3.0, (seed, inc.kind)


def test_daily_peak_is_not_labelled(demo: DemoData) -> None:
    """The busiest quiet hour of each day is normal traffic, and no label claims it."""
    labels = demo_labels_frame(demo)
    q = _quiet(demo)["throughput_rpm"]
    peak_hours = q.resample("1h").mean().groupby(lambda ts: ts.date()).idxmax()
    for ts in peak_hours:
        hit = labels[(labels["start"] <= ts + pd.Timedelta("1h")) & (labels["end"] >= ts)]
        assert hit.empty


# -- labels and CSV ----------------------------------------------------------------------------------


def test_labels_frame(demo: DemoData) -> None:
    labels = demo_labels_frame(demo)
    assert list(labels.columns) == ["metric", "start", "end", "kind"]
    assert len(labels) == sum(len(inc.metrics) for inc in demo.incidents)
    assert str(labels["start"].dt.tz) == "UTC"
    assert str(labels["end"].dt.tz) == "UTC"
    assert (labels["start"] <= labels["end"]).all()
    assert set(labels["metric"]) <= set(METRIC_NAMES)
    assert demo_labels_frame(DemoData(metrics=[], frame=demo.frame.iloc[:0], incidents=[])).empty


def test_csv_is_the_upload_format(demo: DemoData, tmp_path: Path) -> None:
    path = write_demo_csv(demo, tmp_path / "demo.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "timestamp," + ",".join(METRIC_NAMES)
    assert lines[1].startswith(demo.frame.index[0].strftime("%Y-%m-%dT%H:%M:%SZ") + ",")
    assert len(lines) == len(demo.frame) + 1
    assert sum(",," in line or line.endswith(",") for line in lines[1:]) == ISOLATED_NANS
    back = pd.read_csv(path, index_col="timestamp")
    back.index = pd.to_datetime(back.index, utc=True).as_unit("ns")
    back.index.name = "timestamp"
    pd.testing.assert_frame_equal(back, demo.frame, check_freq=False, check_index_type=False)


# -- NAB samples ---------------------------------------------------------------------------------------


def test_nab_samples_load_with_windows_inside() -> None:
    samples = nab_samples()
    assert len(samples) == 3
    names = [name for name, _, _ in samples]
    assert names == sorted(names)
    assert names == [
        "nab/ambient_temperature_system_failure",
        "nab/ec2_cpu_utilization_24ae8d",
        "nab/nyc_taxi",
    ]
    for name, values, windows in samples:
        assert name.startswith("nab/")
        assert values.name == name
        assert values.dtype == np.float64
        assert str(values.index.tz) == "UTC"
        assert values.index.is_monotonic_increasing
        assert values.index.is_unique
        assert len(values) > 1000
        assert values.notna().all()
        assert windows
        for start, end in windows:
            assert values.index[0] <= start <= end <= values.index[-1]
            assert len(values.loc[start:end]) > 0


def test_nab_files_are_small_and_attributed() -> None:
    root = resources.files("telewatch").joinpath("data", "nab")
    total = sum(p.stat().st_size for p in Path(str(root)).rglob("*") if p.is_file())
    assert total < 1_000_000
    text = root.joinpath("ATTRIBUTION.md").read_text("utf-8")
    assert "Copyright 2014-2024 Numenta Inc." in text
    assert "ea702d75cc2258d9d7dd35ca8e5e2539d71f3140" in text
    assert "Permission is hereby granted, free of charge" in text
