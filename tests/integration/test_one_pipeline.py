"""One detection pipeline behind every door: the same series gives the same anomalies through
``telewatch detect``, an upload, the explorer's "store" endpoint and a monitor's tick."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient

from support.auth import ADMIN_HEADERS, auth_settings
from telewatch.api.app import create_app
from telewatch.core.defaults import DEFAULT_DETECTOR
from telewatch.monitors.config import parse_monitors
from telewatch.services.detection import detect_metrics
from telewatch.services.monitor import run_monitor
from telewatch.services.replay import StoreReplaySource
from telewatch.sources.base import FetchedBatch, FetchedSeries
from telewatch.store import repo
from telewatch.store.db import Store

START = pd.Timestamp("2026-02-01", tz="UTC")
DAYS = 5


def _series() -> pd.Series:
    idx = pd.date_range(START, periods=DAYS * 1440, freq="1min")
    rng = np.random.default_rng(11)
    minute = (idx.hour * 60 + idx.minute).to_numpy()
    values = 500 + 200 * np.sin(2 * np.pi * minute / 1440) + rng.normal(0, 10, idx.size)
    values[idx == START + pd.Timedelta(days=3, hours=12)] *= 3  # a spike
    drop = (idx >= START + pd.Timedelta(days=4, hours=14)) & (
        idx < START + pd.Timedelta(days=4, hours=14, minutes=40)
    )
    values[drop] *= 0.1  # a 40-minute collapse
    return pd.Series(values.round(6), index=idx, name="throughput")


def _anomalies(store: Store) -> list[tuple[pd.Timestamp, pd.Timestamp, str]]:
    rows = (
        store.cursor()
        .execute("SELECT start_ts, end_ts, detector FROM anomalies ORDER BY start_ts")
        .fetchall()
    )
    return [(pd.Timestamp(a), pd.Timestamp(b), str(d)) for a, b, d in rows]


def _write(store: Store, series: pd.Series) -> int:
    with store.transaction(series=True) as tx:
        mid = repo.upsert_metric(tx, name=str(series.name))
        repo.write_points(tx, mid, series)
    return mid


def test_detect_upload_explorer_and_a_monitor_tick_find_the_same_anomalies(tmp_path: Path) -> None:
    series = _series()
    # 1. telewatch detect
    with Store(tmp_path / "detect.duckdb") as store:
        _write(store, series)
        detect_metrics(store)
        by_detect = _anomalies(store)
    # 2. an upload (scored by default)
    csv = "timestamp,throughput\n" + "".join(f"{t:%Y-%m-%dT%H:%M:%SZ},{v!r}\n" for t, v in series.items())
    with Store(tmp_path / "upload.duckdb") as store:
        with TestClient(create_app(auth_settings(), store=store)) as client:
            r = client.post(
                "/api/ingest", files={"file": ("t.csv", csv.encode(), "text/csv")}, headers=ADMIN_HEADERS
            )
            assert r.status_code == 200, r.text
            assert r.json()["detector"] == DEFAULT_DETECTOR
            assert r.json()["anomalies"] == len(by_detect)
        by_upload = _anomalies(store)
    # 3. the explorer's "store anomalies" (no detector named: the default)
    with Store(tmp_path / "explorer.duckdb") as store:
        mid = _write(store, series)
        with TestClient(create_app(auth_settings(), store=store)) as client:
            r = client.post("/api/detect/run", json={"metric_ids": [mid]}, headers=ADMIN_HEADERS)
            assert r.status_code == 200, r.text
        by_explorer = _anomalies(store)
    # 4. a monitor without a detector: its first tick scores the history it fetched
    spec = parse_monitors(
        {
            "monitors": [
                {
                    "name": "web",
                    "source": {"type": "store"},
                    "schedule": {"every": "15m"},
                    "history": "10d",
                    "train": {"every": "1d", "window": "10d"},
                }
            ]
        }
    ).monitors[0]
    source = StoreReplaySource(FetchedBatch.from_series([FetchedSeries("throughput", {}, series)]))
    with Store(tmp_path / "monitor.duckdb") as store:
        report = run_monitor(spec, store=store, now=series.index[-1] + pd.Timedelta(minutes=1), source=source)
        assert report.status == "ok", report.error
        by_monitor = _anomalies(store)

    assert by_detect == by_upload == by_explorer == by_monitor
    assert {d for _s, _e, d in by_detect} == {DEFAULT_DETECTOR}
    # and they are the planted ones: the spike, and the collapse held to its end
    starts = [s for s, _e, _d in by_detect]
    assert pd.Timestamp("2026-02-04 12:00") in starts
    collapse = [
        (s, e) for s, e, _d in by_detect if s.date() == pd.Timestamp("2026-02-05").date() and s.hour == 14
    ]
    assert collapse == [(pd.Timestamp("2026-02-05 14:00"), pd.Timestamp("2026-02-05 14:39"))]


def test_a_monitor_warms_up_before_it_scores_or_alerts(tmp_path: Path) -> None:
    """With a day of history (the default warm-up is 3 days) a series is stored, not scored: no anomaly
    even for a collapse, and the report says how much history it still needs."""
    series = _series().iloc[: 1440 + 300]
    series.iloc[-30:] *= 0.05
    spec = parse_monitors(
        {"monitors": [{"name": "web", "source": {"type": "store"}, "history": "10d", "channels": []}]}
    ).monitors[0]
    source = StoreReplaySource(FetchedBatch.from_series([FetchedSeries("throughput", {}, series)]))
    with Store(tmp_path / "m.duckdb") as store:
        report = run_monitor(spec, store=store, now=series.index[-1] + pd.Timedelta(minutes=1), source=source)
        assert report.status == "ok", report.error
        assert report.points == len(series)
        assert report.scored == 0
        assert report.anomalies == []
        (need,) = report.warming.values()
        assert need == "43 h more history"  # 3 days less the 29 h it has
        assert store.cursor().execute("SELECT count(*) FROM scores").fetchone() == (0,)


def test_detect_alerts_what_is_recent_and_not_a_backfill(tmp_path: Path) -> None:
    """`telewatch detect` hands its anomalies to the alert rules, only those of the last hour: a spike
    ten minutes ago is told, one two days ago (history) is not."""
    import json
    import os
    import subprocess
    import sys

    from support.webhook import WebhookReceiver

    now = pd.Timestamp.now(tz="UTC").floor("min")
    idx = pd.date_range(end=now - pd.Timedelta(minutes=1), periods=4 * 1440, freq="1min")
    rng = np.random.default_rng(5)
    values = 100 + rng.normal(0, 2, idx.size)
    values[idx == now - pd.Timedelta(days=2)] = 400.0
    values[idx == now - pd.Timedelta(minutes=10)] = 900.0
    db = tmp_path / "s.duckdb"
    with Store(db) as store:
        _write(store, pd.Series(values, index=idx, name="sessions"))
    with WebhookReceiver() as hook:
        alerting = tmp_path / "alerting.yaml"
        alerting.write_text(
            f'channels:\n  hook: {{type: webhook, url: "{hook.url}", format: json}}\n'
            "rules:\n  - {name: all, channels: [hook]}\n",
            encoding="utf-8",
        )
        exe = Path(sys.executable).parent / "telewatch"
        out = subprocess.run(
            [str(exe), "detect", "--db", str(db)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env={**os.environ, "TELEWATCH_ALERTING_CONFIG": str(alerting)},
        )
        assert out.returncode == 0, out.stderr
        assert "alerted 1 recent anomalies (1 messages sent)" in out.stdout, out.stdout
        assert len(hook.requests) == 1
        body = json.dumps(hook.requests[0][1])
        assert "sessions" in body
        assert (now - pd.Timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M") in body
