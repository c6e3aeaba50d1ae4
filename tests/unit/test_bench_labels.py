from __future__ import annotations

import numpy as np
import pandas as pd
from rich.console import Console

from telewatch.bench.labels import run_labels_benchmark
from telewatch.core.defaults import DEFAULT_DETECTOR
from telewatch.store import repo
from telewatch.store.db import Store


def test_false_alarm_feedback_is_not_counted_as_an_anomaly(store: Store) -> None:
    cur = store.cursor()
    idx = pd.date_range("2024-05-01", periods=3000, freq="1min", tz="UTC")
    values = pd.Series(np.random.default_rng(3).normal(0, 1, 3000), index=idx)
    values.iloc[2000:2010] += 15.0  # a real anomaly in the test part
    mid = repo.upsert_metric(cur, name="m")
    repo.write_points(cur, mid, values)
    repo.write_label_windows(
        cur,
        [
            (mid, idx[2000], idx[2009], "anomaly", "user", None),
            (mid, idx[2500], idx[2600], "false_alarm", "feedback", None),
        ],
    )
    result = run_labels_benchmark(store, detector="robust_z", console=Console(quiet=True))
    (metric,) = result.metrics
    assert metric.events_test == 1  # only the anomaly window is a positive
    assert metric.composite.events_detected == 1


def test_the_labels_bench_uses_the_default_detector(store: Store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Without a detector named, ``bench labels`` scores the service default like every other path."""
    cur = store.cursor()
    idx = pd.date_range("2024-05-01", periods=2000, freq="1min", tz="UTC")
    values = pd.Series(np.random.default_rng(4).normal(0, 1, 2000), index=idx)
    values.iloc[1500:1510] += 15.0
    mid = repo.upsert_metric(cur, name="m")
    repo.write_points(cur, mid, values)
    repo.write_label_windows(cur, [(mid, idx[1500], idx[1509], "anomaly", "user", None)])
    assert run_labels_benchmark(store, console=Console(quiet=True)).detector == DEFAULT_DETECTOR
    monkeypatch.setenv("TELEWATCH_DEFAULT_DETECTOR", "robust_z")
    result = run_labels_benchmark(store, console=Console(quiet=True))
    assert result.detector == "robust_z"
    assert result.metrics[0].composite.events_detected == 1
