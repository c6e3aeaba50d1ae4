"""Use-case: score stored metrics with a detector and record scores and anomalies in the store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import Progress

from telewatch.detectors import create_detector
from telewatch.postrules.alarms import alarm_windows
from telewatch.store import repo
from telewatch.store.db import Store


@dataclass(frozen=True)
class AnomalyWindow:
    metric_id: int
    metric: str
    start: pd.Timestamp
    end: pd.Timestamp
    peak: pd.Timestamp
    peak_score: float
    value: float


@dataclass
class DetectionReport:
    detector: str
    threshold: float
    metrics: int = 0
    points: int = 0
    anomalies: list[AnomalyWindow] = field(default_factory=list)


def detect_metrics(
    store: Store,
    *,
    detector: str = "robust_bands",
    params: dict[str, Any] | None = None,
    metric_ids: Sequence[int] | None = None,
    threshold: float = 8.0,
    min_points: int = 2,
    merge_gap: int = 5,
    console: Console | None = None,
) -> DetectionReport:
    """Fit ``detector`` on each metric, score it, and replace that detector's scores and anomalies.

    An anomaly is a run of at least ``min_points`` scores at or above ``threshold``; runs closer
    than ``merge_gap`` points are one anomaly.
    """
    cur = store.cursor()
    metrics = repo.list_metrics(cur)
    if metric_ids is not None:
        wanted = set(metric_ids)
        metrics = [m for m in metrics if m.id in wanted]
    report = DetectionReport(detector=detector, threshold=threshold)
    with Progress(console=console or Console(stderr=True), transient=True) as progress:
        task = progress.add_task(f"detecting with {detector}", total=len(metrics))
        for metric in metrics:
            series = repo.read_series(cur, metric.id)
            progress.advance(task)
            if series.dropna().empty:
                continue
            det = create_detector(detector, **(params or {})).fit(series)
            scores = det.score(series)
            flags = (scores >= threshold).to_numpy()
            windows = alarm_windows(flags, min_points=min_points, merge_gap=merge_gap)
            found = []
            for start, end in windows:
                segment = scores.iloc[start:end]
                peak_pos = start + int(np.nanargmax(segment.to_numpy()))
                peak = pd.Timestamp(series.index[peak_pos])
                found.append(
                    AnomalyWindow(
                        metric_id=metric.id,
                        metric=metric.display_name,
                        start=series.index[start],
                        end=series.index[end - 1],
                        peak=peak,
                        peak_score=float(segment.max()),
                        value=float(series.iloc[peak_pos]),
                    )
                )
            _replace_results(store, metric.id, detector, scores, found)
            report.metrics += 1
            report.points += int(series.notna().sum())
            report.anomalies.extend(found)
    return report


def _replace_results(
    store: Store, metric_id: int, detector: str, scores: pd.Series, found: list[AnomalyWindow]
) -> None:
    index = pd.DatetimeIndex(scores.index).tz_convert("UTC").tz_localize(None)
    frame = pd.DataFrame(
        {
            "metric_id": np.full(len(scores), metric_id, dtype="int32"),
            "detector": detector,
            "ts": index.astype("datetime64[us]"),
            "score": scores.to_numpy(dtype="float64"),
        }
    )
    with store.transaction() as tx:
        tx.execute("DELETE FROM scores WHERE metric_id = ? AND detector = ?", [metric_id, detector])
        tx.execute("DELETE FROM anomalies WHERE metric_id = ? AND detector = ?", [metric_id, detector])
        tx.register("_tw_scores", frame)
        try:
            tx.execute(
                "INSERT INTO scores SELECT metric_id, detector, ts,"
                " CASE WHEN isnan(score) THEN NULL ELSE score END FROM _tw_scores"
            )
        finally:
            tx.unregister("_tw_scores")
        for a in found:
            tx.execute(
                "INSERT INTO anomalies (metric_id, detector, start_ts, end_ts, peak_ts, peak_score, value)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    metric_id,
                    detector,
                    a.start.tz_convert("UTC").tz_localize(None),
                    a.end.tz_convert("UTC").tz_localize(None),
                    a.peak.tz_convert("UTC").tz_localize(None),
                    a.peak_score,
                    a.value,
                ],
            )


def read_anomalies(
    store: Store, *, metric_id: int | None = None, detector: str | None = None
) -> pd.DataFrame:
    """Stored anomalies, newest first."""
    sql = (
        "SELECT a.id, a.metric_id, m.name AS metric, a.detector, a.start_ts, a.end_ts, a.peak_ts,"
        " a.peak_score, a.value FROM anomalies a JOIN metrics m ON m.id = a.metric_id WHERE true"
    )
    params: list[object] = []
    if metric_id is not None:
        sql += " AND a.metric_id = ?"
        params.append(metric_id)
    if detector is not None:
        sql += " AND a.detector = ?"
        params.append(detector)
    frame = store.cursor().execute(sql + " ORDER BY a.start_ts DESC", params).df()
    for col in ("start_ts", "end_ts", "peak_ts"):
        frame[col] = pd.to_datetime(frame[col]).dt.tz_localize("UTC")
    return frame
