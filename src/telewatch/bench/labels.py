"""Score a detector against the labelled windows in the store (``telewatch bench labels``).

Labels come from the demo's planted incidents (source ``demo``), NAB samples (``nab``), CSVs a user
imported (``user``) and, later, feedback given in the UI. For each labelled metric:

1. the detector is fitted on the leading ``train_share`` of the series and scores all of it causally;
2. the alarm threshold is the ``q`` quantile of the *train* scores (no labels used), and the metrics
   are computed on the rest (the test part): point-wise, point-adjusted (flatters) and composite F1;
3. separately, rolling-origin cross-validation picks a threshold on each expanding train fold *with*
   its labels and reports the next fold's composite F1 — what tuning on your own labels would give.

Results are pooled over metrics (counts summed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from telewatch.bench.cv import choose_threshold, cross_validate_threshold, rolling_origin_splits
from telewatch.bench.metrics import PRF, composite_f1, point_adjusted_f1, point_f1, pool
from telewatch.bench.report import plot_detection, write_json
from telewatch.core.defaults import default_detector
from telewatch.core.errors import ValidationError
from telewatch.detectors import create_detector
from telewatch.store import repo
from telewatch.store.db import Store

NOT_ANOMALOUS_KINDS = frozenset({"false_alarm", "expected"})


@dataclass(frozen=True)
class MetricLabelsResult:
    metric: str
    rows: int
    train_rows: int
    events_test: int
    threshold: float
    point: PRF
    point_adjusted: PRF
    composite: PRF
    cv_composite: PRF | None


@dataclass
class LabelsResult:
    detector: str
    params: dict[str, Any]
    threshold_rule: str
    metrics: list[MetricLabelsResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def pooled(self, kind: str) -> PRF:
        return pool(getattr(m, kind) for m in self.metrics)

    def pooled_cv(self) -> PRF | None:
        folds = [m.cv_composite for m in self.metrics if m.cv_composite is not None]
        return pool(folds) if folds else None

    def summary_line(self) -> str:
        if not self.metrics:
            return "LABELS metrics=0"
        cv = self.pooled_cv()
        return (
            f"LABELS metrics={len(self.metrics)} f1_comp={self.pooled('composite').f1:.3f}"
            f" f1_pa={self.pooled('point_adjusted').f1:.3f} f1_point={self.pooled('point').f1:.3f}"
            f" cv_f1_comp={cv.f1 if cv else 0.0:.3f}"
        )

    def table(self) -> Table:
        table = Table(title=f"{self.detector} against stored labels ({self.threshold_rule})")
        for col in (
            "metric",
            "rows",
            "test events",
            "threshold",
            "F1 composite",
            "F1 PA (flatters)",
            "F1 point",
            "CV F1 composite",
        ):
            table.add_column(col)
        for m in self.metrics:
            table.add_row(
                m.metric,
                f"{m.rows:,}",
                str(m.events_test),
                f"{m.threshold:.3g}",
                f"{m.composite.f1:.3f}",
                f"{m.point_adjusted.f1:.3f}",
                f"{m.point.f1:.3f}",
                f"{m.cv_composite.f1:.3f}" if m.cv_composite else "—",
            )
        return table


def labels_array(index: pd.DatetimeIndex, windows: pd.DataFrame) -> np.ndarray:
    """1 where a timestamp falls inside any labelled window (ends inclusive), else 0."""
    out = np.zeros(len(index), dtype=np.int8)
    stamps = index.as_unit("ns").asi8
    for start, end in zip(windows["start_ts"], windows["end_ts"], strict=True):
        lo = np.searchsorted(stamps, pd.Timestamp(start).value, side="left")
        hi = np.searchsorted(stamps, pd.Timestamp(end).value, side="right")
        out[lo:hi] = 1
    return out


def run_labels_benchmark(
    store: Store,
    *,
    detector: str | None = None,
    detector_params: dict[str, Any] | None = None,
    sources: Sequence[str] | None = None,
    train_share: float = 0.3,
    q: float = 0.995,
    folds: int = 4,
    json_path: Path | None = None,
    plots_dir: Path | None = None,
    console: Console | None = None,
) -> LabelsResult:
    """Evaluate ``detector`` (default: the service default, :func:`~telewatch.core.defaults.default_detector`,
    as every other detection path) on every stored metric that has labelled windows."""
    detector = detector or default_detector()
    if not 0.0 < train_share < 1.0:
        raise ValidationError("train_share must lie in (0, 1)")
    console = console or Console(stderr=True)
    cur = store.cursor()
    windows = repo.read_label_windows(cur)
    # Feedback saying "false alarm" or "expected" marks a window as normal, not as a positive.
    windows = windows[~windows["kind"].isin(list(NOT_ANOMALOUS_KINDS))]
    if sources:
        windows = windows[windows["source"].isin(list(sources))]
    if windows.empty:
        raise ValidationError(
            "no labelled windows in the store"
            + (f" from sources {list(sources)}" if sources else "")
            + "; load the demo (telewatch demo) or import labels (telewatch labels import FILE)"
        )
    names = {m.id: m.display_name for m in repo.list_metrics(cur)}
    result = LabelsResult(
        detector=detector,
        params=dict(detector_params or {}),
        threshold_rule=f"train {train_share:.0%}, threshold = {q} quantile of train scores",
    )
    metric_ids = sorted(windows["metric_id"].unique().tolist())
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("scoring labelled metrics", total=len(metric_ids))
        for metric_id in metric_ids:
            progress.advance(task)
            name = names.get(int(metric_id), str(metric_id))
            series = repo.read_series(cur, int(metric_id))
            labels = labels_array(pd.DatetimeIndex(series.index), windows[windows["metric_id"] == metric_id])
            n = len(series)
            n_train = int(n * train_share)
            if n_train < 10 or n - n_train < 10:
                result.skipped.append(f"{name}: only {n} points")
                continue
            det = create_detector(detector, **(detector_params or {})).fit(series.iloc[:n_train])
            scores = det.score(series).to_numpy(dtype="float64")
            finite = np.nan_to_num(scores, nan=-np.inf)
            threshold = choose_threshold(scores[:n_train], "quantile", q=q)
            pred, y = finite[n_train:] > threshold, labels[n_train:]
            cv = None
            horizon = (n - n_train) // folds
            if horizon >= 1 and labels.any():
                splits = rolling_origin_splits(n, n_splits=folds, min_train=n_train, horizon=horizon)
                cv = cross_validate_threshold(
                    np.where(np.isfinite(scores), scores, -1e300), labels, splits
                ).pooled
            result.metrics.append(
                MetricLabelsResult(
                    metric=name,
                    rows=n,
                    train_rows=n_train,
                    events_test=composite_f1(pred, y).events_total,
                    threshold=threshold,
                    point=point_f1(pred, y),
                    point_adjusted=point_adjusted_f1(pred, y),
                    composite=composite_f1(pred, y),
                    cv_composite=cv,
                )
            )
            if plots_dir is not None:
                test_windows = windows[windows["metric_id"] == metric_id]
                plot_detection(
                    plots_dir / f"{metric_id}-{name.replace('/', '_')}.png",
                    values=series,
                    scores=pd.Series(scores, index=series.index),
                    threshold=threshold,
                    windows=list(zip(test_windows["start_ts"], test_windows["end_ts"], strict=True)),
                    detections=list(series.index[n_train:][pred]),
                    title=f"{name} — {detector}",
                )
    console.print(result.table())
    if json_path is not None:
        write_json(json_path, result)
    return result
