"""Streaming ticks (``telewatch.services.tick_state``): incremental ticks equal one full rescoring.

A real PostgreSQL holds four minute-level metrics with planted spikes, a level shift, NULL values, a
12-minute gap and a metric that starts late. The built-in scheduler runs a monitor on it every
5 minutes on a simulated clock; then the scores and anomalies it stored are compared with scoring
the whole span in one go with the same fitted models, with a run restarted half-way (a new store
object and a new Runner: nothing in memory), and with the per-metric reference tick.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from support.postgres import PostgresServer, make_postgres
from telewatch.detectors import _streaming
from telewatch.detectors.base import Detector
from telewatch.monitors.config import parse_monitors
from telewatch.postrules.alarms import alarm_windows
from telewatch.scheduler.jobs import LoadedConfig, load_config
from telewatch.scheduler.runner import Runner
from telewatch.services import tick_state
from telewatch.services.detection import calibrate
from telewatch.services.monitor import run_monitor
from telewatch.sources.base import ColumnarSource, FetchedBatch
from telewatch.store import repo
from telewatch.store.db import Store

T0 = pd.Timestamp("2026-03-01 00:00", tz="UTC")
FIRST = T0 + pd.Timedelta(hours=24)
TICKS = [FIRST + pd.Timedelta(minutes=5 * i) for i in range(15)]  # 14 ticks after the first: 70 minutes
END = TICKS[-1]
THRESHOLDS = {"robust_bands": 6.0, "robust_z": 6.0, "novelty": 3.0}


def make_rows() -> list[tuple[pd.Timestamp, str, float | None]]:
    rng = np.random.default_rng(7)
    minutes = np.arange(int((END - T0) / pd.Timedelta(minutes=1)))
    daily = np.sin(2 * np.pi * minutes / 1440)
    series = {
        "cpu": 50 + 10 * daily + rng.normal(0, 1.0, minutes.size),
        "rx": 1000 + 300 * daily + rng.normal(0, 20.0, minutes.size),
        "errors": rng.poisson(5, minutes.size).astype(float),
        "late": 20 + rng.normal(0, 0.5, minutes.size),
    }
    at = {m: 24 * 60 + m for m in range(0, 70)}  # minute offsets of the streamed span
    series["cpu"][at[17] : at[19]] += 40  # a spike inside a tick
    series["cpu"][at[33] : at[47]] += 25  # a level shift across several ticks
    series["rx"][at[29]] -= 900  # a dip at a tick's last point
    series["rx"][at[30]] -= 900  # ... continuing into the next tick
    series["errors"][at[52] : at[56]] = 60  # a burst
    series["late"][at[63] : at[65]] = 40
    rows: list[tuple[pd.Timestamp, str, float | None]] = []
    for name, values in series.items():
        for m in minutes.tolist():
            if name == "late" and m < 23 * 60 + 30:
                continue  # appears 30 minutes before the first tick: trained later
            if name == "rx" and at[36] <= m < at[48]:
                continue  # a 12-minute gap (no rows)
            ts = T0 + pd.Timedelta(minutes=m)
            missing = (name == "cpu" and m in (at[8], at[9], at[40])) or (name == "errors" and m == at[53])
            rows.append((ts, name, None if missing else float(values[m])))
    return rows


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    # not under pytest's tmp dir: user postgres must be able to reach it
    directory = Path(tempfile.mkdtemp(prefix="telewatch-tick-pg-"))
    server = make_postgres(directory)
    server.start()
    try:
        import psycopg

        with psycopg.connect(server.dsn, autocommit=True) as con, con.cursor() as cur:
            cur.execute(
                "CREATE TABLE samples (ts timestamptz NOT NULL, metric text NOT NULL, value double precision)"
            )
            with cur.copy("COPY samples (ts, metric, value) FROM STDIN") as copy:
                for row in make_rows():
                    copy.write_row(row)
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def config(pg: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> LoadedConfig:
    path = tmp_path_factory.mktemp("tick") / "monitors.yaml"
    path.write_text(
        f"""
monitors:
  - name: net
    source: {{type: postgres, dsn: "{pg.dsn}", table: samples, metric_column: metric, value_column: value}}
    schedule: {{every: 5m}}
    history: 1d
    train: {{every: 1d, window: 1d, min_points: 60, warm_up: 0s}}
    detectors:
      - {{type: robust_bands, params: {{window: 60}}, threshold: {THRESHOLDS["robust_bands"]}}}
      - {{type: robust_z, threshold: {THRESHOLDS["robust_z"]}}}
      - {{type: novelty, threshold: {THRESHOLDS["novelty"]}}}
"""
    )
    return load_config(path)


def run_ticks(config: LoadedConfig, store: Store, ticks: list[pd.Timestamp]) -> list[int]:
    runner = Runner(config, store=store, deliver=False)
    scored = []
    for now in ticks:
        reports = runner.run_pending(now)
        assert [(r.tick, r.status) for r in reports] == [(now, "ok")], [r.error for r in reports]
        scored.append(reports[0].scored)
    return scored


def scores_of(store: Store) -> pd.DataFrame:
    frame = (
        store.cursor()
        .execute(
            "SELECT m.name, s.detector, s.ts, s.score FROM scores s JOIN metrics m ON m.id = s.metric_id"
            " ORDER BY m.name, s.detector, s.ts"
        )
        .df()
    )
    return frame.set_index(["name", "detector", "ts"])["score"]


def anomalies_of(store: Store) -> list[tuple[object, ...]]:
    return (
        store.cursor()
        .execute(
            "SELECT m.name, a.detector, a.start_ts, a.end_ts, a.peak_ts, a.peak_score, a.value, a.expected"
            " FROM anomalies a JOIN metrics m ON m.id = a.metric_id ORDER BY ALL"
        )
        .fetchall()
    )


@pytest.fixture(scope="module")
def streamed(config: LoadedConfig, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with Store(tmp_path_factory.mktemp("streamed") / "tw.duckdb") as store:
        scored = run_ticks(config, store, TICKS)
        assert scored[0] > 3 * 1400  # the first tick scores the day of history
        assert all(0 <= s <= 3 * 4 * 5 for s in scored[1:])  # then only the newest 5 minutes
        assert sum(scored[1:]) > 3 * 3 * 5 * (len(TICKS) - 1)
        yield store


def test_incremental_ticks_equal_one_full_rescoring(streamed: Store) -> None:
    cur = streamed.cursor()
    stored = scores_of(streamed)
    compared = 0
    for name in ("cpu", "rx", "errors", "late"):
        info = repo.get_metric(cur, name)
        series = repo.read_series(cur, info.id)
        for detector in ("robust_bands", "robust_z"):
            blob, trained_at = cur.execute(
                "SELECT model, trained_at FROM monitor_models WHERE metric_id = ? AND detector = ?",
                [info.id, detector],
            ).fetchone()
            model = Detector.loads(bytes(blob))
            mine = stored.loc[(name, detector)]
            index = pd.DatetimeIndex(mine.index).tz_localize("UTC")
            # the same model scores the whole series in one go: the span the ticks scored must match
            # (calibrated with the model's own calibrator, as every tick does)
            full = pd.Series(calibrate(model, model.score(series).to_numpy()), index=series.index).reindex(
                index
            )
            assert len(mine) > 40
            np.testing.assert_allclose(mine.to_numpy(dtype=float), full.to_numpy(), rtol=0, atol=1e-9)
            assert np.array_equal(np.isnan(mine.to_numpy(dtype=float)), np.isnan(full.to_numpy()))
            # and the anomalies are the alarm windows of the one-go scores
            flags = (full.fillna(-np.inf) >= THRESHOLDS[detector]).to_numpy()
            windows = alarm_windows(flags, min_points=1, merge_gap=5)  # a monitor's defaults, as detect's
            expected = [(index[s].tz_localize(None), index[e - 1].tz_localize(None)) for s, e in windows]
            got = cur.execute(
                "SELECT start_ts, end_ts FROM anomalies WHERE metric_id = ? AND detector = ? ORDER BY start_ts",
                [info.id, detector],
            ).fetchall()
            assert [(pd.Timestamp(a), pd.Timestamp(b)) for a, b in got] == expected
            compared += len(expected)
        if name == "late":
            # trained once it had 60 points, on a later tick: earlier points were not scored
            assert pd.Timestamp(trained_at).tz_localize("UTC") > FIRST
    assert compared >= 4  # the planted anomalies were found


def test_restart_between_ticks_resumes_exactly(config: LoadedConfig, streamed: Store, tmp_path: Path) -> None:
    path = tmp_path / "restarted.duckdb"
    with Store(path) as store:
        run_ticks(config, store, TICKS[:8])
        rows = store.cursor().execute("SELECT count(*), min(tail_points) FROM tick_state").fetchone()
        assert rows[0] == 4 * 3  # the state a restart resumes from
        assert rows[1] > 0
    with Store(path) as store:  # a new process: nothing in memory, a new Runner
        assert tick_state._MEMORY.get(store) is None
        run_ticks(config, store, TICKS[8:])
        pd.testing.assert_series_equal(scores_of(store), scores_of(streamed), rtol=0, atol=1e-12)
        assert anomalies_of(store) == anomalies_of(streamed)


def test_contexts_read_and_scored_a_few_series_at_a_time_give_the_same_scores(
    config: LoadedConfig, streamed: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # long contexts (weeks of minutes after a restart) are read and scored in chunks of series, so
    # that a first tick does not hold every context at once: one series' day per chunk here
    monkeypatch.setattr(tick_state, "CHUNK_POINTS", 1500)
    assert len(tick_state._chunks([1, 2, 3, 4], [1440] * 4)) == 4
    with Store(tmp_path / "chunked.duckdb") as store:
        run_ticks(config, store, TICKS)
        pd.testing.assert_series_equal(scores_of(store), scores_of(streamed), rtol=0, atol=1e-12)
        assert anomalies_of(store) == anomalies_of(streamed)


def test_streaming_equals_the_per_metric_tick(config: LoadedConfig, streamed: Store, tmp_path: Path) -> None:
    spec = config.monitors.monitor("net")
    with Store(tmp_path / "reference.duckdb") as store:
        for now in TICKS:
            assert run_monitor(spec, store=store, now=now, streaming=False).status == "ok"
        pd.testing.assert_series_equal(scores_of(store), scores_of(streamed), rtol=0, atol=1e-9)
        assert anomalies_of(store) == anomalies_of(streamed)
        assert len(anomalies_of(store)) >= 6


def test_a_tick_without_new_points_writes_nothing(config: LoadedConfig, streamed: Store) -> None:
    spec = config.monitors.monitor("net")
    cur = streamed.cursor()

    def snapshot() -> tuple[object, ...]:
        return (
            cur.execute("SELECT count(*), sum(score) FROM scores").fetchone(),
            cur.execute("SELECT count(*), max(end_ts) FROM anomalies").fetchone(),
            cur.execute("SELECT max(updated_at), count(*) FROM tick_state").fetchone(),
            cur.execute("SELECT generation FROM tick_generations").fetchall(),
            cur.execute("SELECT series_key, last_scored FROM monitor_series ORDER BY 1").fetchall(),
        )

    before = snapshot()
    for now in (END, END + pd.Timedelta(minutes=5)):  # the same tick again; a tick past the data
        report = run_monitor(spec, store=streamed, now=now)
        assert (report.status, report.points, report.scored, report.anomalies) == ("ok", 0, 0, [])
    assert snapshot() == before


def test_trailing_medians_equal_pandas_rolling_medians() -> None:
    rng = np.random.default_rng(3)
    raw = rng.normal(size=(40, 70))
    raw[rng.random(raw.shape) < 0.2] = np.nan
    raw[5, :50] = np.nan  # a series that starts late
    raw[7, 10] = np.inf
    raw[9] = np.round(raw[9])  # ties
    for window, min_periods, count in ((20, 5, 50), (1, 1, 70), (64, 10, 7)):
        mine = _streaming.trailing_medians(raw, count=count, window=window, min_periods=min_periods)
        expected = pd.DataFrame(raw.T).rolling(window, min_periods=min_periods).median().to_numpy().T
        np.testing.assert_array_equal(mine, expected[:, window - 1 : window - 1 + count])


def test_trailing_medians_split_over_threads_equal_one_pass() -> None:
    # a first tick over thousands of metrics splits the rows over threads: same medians as one pass
    rng = np.random.default_rng(4)
    raw = rng.normal(size=(1300, 300 + 287)).round(1)
    raw[rng.random(raw.shape) < 0.1] = np.nan
    whole = np.empty((raw.shape[0], 287))
    _streaming.median_kernel()(raw, 287, 300, 10, whole)
    split = _streaming.trailing_medians(raw, count=287, window=300, min_periods=10)
    np.testing.assert_array_equal(split, whole)
    expected = pd.DataFrame(raw[:50].T).rolling(300, min_periods=10).median().to_numpy().T
    np.testing.assert_array_equal(split[:50], expected[:, 299 : 299 + 287])


def test_robust_bands_deviations_equal_pandas() -> None:
    # the |x[t-1] - median| that robust_bands' streaming state starts from after a restart
    rng = np.random.default_rng(5)
    for _ in range(60):
        window = int(rng.integers(2, 40))
        min_periods = int(rng.integers(1, window + 1))
        tails = []
        for _ in range(6):
            n = int(rng.integers(0, 3 * window))
            values = rng.normal(size=n).round(1)  # ties
            values[rng.random(n) < 0.2] = np.nan
            values[rng.random(n) < 0.05] = np.inf
            tails.append(values)
        padded = _streaming.left_pad(tails, 2 * window)
        prev = pd.DataFrame(padded.T).shift(1)
        expected = (prev - prev.rolling(window, min_periods=min_periods).median()).abs().to_numpy().T
        mine = _streaming.deviations(tails, window, min_periods)
        np.testing.assert_array_equal(mine, expected[:, -(window - 1) :])


def test_an_anomaly_resolves_over_one_point_ticks(
    pg: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # With one-minute ticks each tick brings one point: the spike on cpu (minutes 17–18 of the streamed
    # span) must resolve once more than merge_gap quiet points have come, over several ticks.
    path = tmp_path_factory.mktemp("tick1m") / "monitors.yaml"
    path.write_text(
        f"""
monitors:
  - name: cpu1m
    source: {{type: postgres, dsn: "{pg.dsn}", table: samples, metric_column: metric, value_column: value}}
    metrics: [cpu]
    schedule: {{every: 1m}}
    history: 1d
    train: {{every: 1d, window: 1d, min_points: 60, warm_up: 0s}}
    detectors:
      - {{type: robust_z, threshold: 5.0, min_points: 1, merge_gap: 3}}
"""
    )
    config = load_config(path)
    store = Store(tmp_path_factory.mktemp("tick1m-store") / "t.duckdb")
    try:
        runner = Runner(config, store=store, deliver=False)
        opened: dict[str, pd.Timestamp] = {}
        resolved: dict[str, pd.Timestamp] = {}
        for minute in range(12, 32):
            now = FIRST + pd.Timedelta(minutes=minute)
            (report,) = runner.run_pending(now)
            assert report.status == "ok", report.error
            for anomaly in report.anomalies:
                opened.setdefault(anomaly.key, now)
            for key in report.resolved:
                resolved.setdefault(key, now)
        assert opened, "the spike was not detected"
        assert set(resolved) == set(opened), (opened, resolved)
        for key, at in resolved.items():
            # resolved a few ticks after it opened: merge_gap (3) quiet points, plus the spike itself
            assert pd.Timedelta(minutes=3) < at - opened[key] <= pd.Timedelta(minutes=8)
    finally:
        store.close()


class _Silent(ColumnarSource):
    """One metric, 1-minute points with a daily cycle; spikes at ``spikes`` (minute offsets from T0),
    nothing at all in ``[silent_from, silent_to)``."""

    kind = "test"

    def __init__(self, spikes: list[int], silent_from: int, silent_to: int) -> None:
        self.spikes, self.silent = spikes, (silent_from, silent_to)

    def fetch_batch(self, *, start: pd.Timestamp, end: pd.Timestamp) -> FetchedBatch:
        first = max(0, int(np.ceil((start - T0) / pd.Timedelta(minutes=1))))
        last = int(np.ceil((end - T0) / pd.Timedelta(minutes=1)))
        minutes = np.arange(first, max(first, last))
        minutes = minutes[(minutes < self.silent[0]) | (minutes >= self.silent[1])]
        values = 50 + 10 * np.sin(2 * np.pi * minutes / 1440) + np.sin(minutes * 12.9898) % 1.0
        values = np.where(np.isin(minutes, self.spikes), values + 60, values)
        stamps = T0.value + minutes.astype("int64") * pd.Timedelta(minutes=1).value
        return FetchedBatch(["cpu"], [{}], stamps, values, np.array([0, minutes.size]))


def test_an_anomaly_across_two_silent_days_matches_the_per_metric_tick(tmp_path: Path) -> None:
    # The spike at the end of day 1 is followed by two days without data; when the metric comes back
    # spiking, the look-back for earlier scores (searched within a day first) must still reach the
    # scores before the silence and merge exactly as the per-metric reference does.
    spec = parse_monitors(
        {
            "monitors": [
                {
                    "name": "silent",
                    "source": {"type": "logs", "path": "unused", "count_by": ["event"]},
                    "schedule": {"every": "5m"},
                    "history": "1d",
                    "train": {"every": "7d", "window": "1d", "min_points": 60, "warm_up": "0s"},
                    "detectors": [{"type": "robust_z", "threshold": 3.0, "min_points": 1, "merge_gap": 3}],
                }
            ]
        }
    ).monitors[0]
    day = 1440
    source = _Silent(
        spikes=[day + 8, day + 9, 3 * day + 10, 3 * day + 11], silent_from=day + 10, silent_to=3 * day + 10
    )
    ticks = [T0 + pd.Timedelta(minutes=day + 5 * k) for k in range(1, 4)]
    ticks += [T0 + pd.Timedelta(minutes=3 * day + 5 * k) for k in range(2, 5)]
    results = {}
    for streaming in (True, False):
        with Store(tmp_path / f"{streaming}.duckdb") as store:
            keys = []
            for now in ticks:
                report = run_monitor(spec, store=store, now=now, source=source, streaming=streaming)
                assert report.status == "ok", report.error
                keys.append(([a.key for a in report.anomalies], list(report.resolved)))
            results[streaming] = (keys, anomalies_of(store))
    assert results[True] == results[False]
    rows = results[True][1]
    assert len(rows) == 1, rows  # one anomaly: the second spike continues the first across the silence
    assert pd.Timestamp(rows[0][2]) == (T0 + pd.Timedelta(minutes=day + 8)).tz_localize(None)
    assert pd.Timestamp(rows[0][3]) == (T0 + pd.Timedelta(minutes=3 * day + 11)).tz_localize(None)


def test_context_tails_reach_past_a_day_only_when_a_series_needs_it(tmp_path: Path) -> None:
    # hourly points need more than the day the first read covers; minute points do not
    with Store(tmp_path / "tails.duckdb") as store:
        cur = store.cursor()
        hourly = repo.upsert_metric(cur, name="hourly")
        minutely = repo.upsert_metric(cur, name="minutely")
        end = pd.Timestamp("2026-03-10", tz="UTC")
        repo.write_points(
            cur, hourly, pd.Series(np.arange(240.0), index=pd.date_range(end=end, periods=240, freq="1h"))
        )
        repo.write_points(
            cur,
            minutely,
            pd.Series(np.arange(3000.0), index=pd.date_range(end=end, periods=3000, freq="1min")),
        )
        before = int((end + pd.Timedelta(minutes=1)).value)
        need = tick_state.Need(100, 0)
        tails = tick_state.read_tails(cur, wanted={hourly: (before, need), minutely: (before, need)})
        assert tails[hourly].values.tolist() == list(np.arange(140.0, 240.0))
        assert tails[minutely].values.tolist() == list(np.arange(2900.0, 3000.0))
        day = tick_state.read_tails(
            cur, wanted={minutely: (before, tick_state.Need(0, int(tick_state.DAY.value)))}
        )
        assert day[minutely].values.size == 1440  # the day before the new point, no more
        known = tick_state.read_tails(
            cur, wanted={hourly: (before, need)}, lower={hourly: int((end - pd.Timedelta(hours=9)).value)}
        )
        assert known[hourly].values.tolist() == list(np.arange(230.0, 240.0))  # a known start bounds the read
