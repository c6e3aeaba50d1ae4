"""A monitor's models: fitted and calibrated by the pipeline of ``telewatch detect`` (``services.detection.calibrated_scores``) on the training window, after the warm-up; stored and read back."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from telewatch.detectors.base import Detector
from telewatch.monitors.config import DetectorSpec, MonitorSpec
from telewatch.services import tick_state
from telewatch.services.detection import calibrated_scores
from telewatch.services.monitor.model import MonitorRunReport, _naive
from telewatch.store import repo
from telewatch.store.db import Store


def _load_model(
    store: Store, spec: MonitorSpec, metric_id: int, det: DetectorSpec
) -> tuple[Detector, pd.Timestamp] | None:
    row = (
        store.cursor()
        .execute(
            "SELECT model, trained_at, params FROM monitor_models WHERE monitor = ? AND metric_id = ? AND detector = ?",
            [spec.name, metric_id, det.type],
        )
        .fetchone()
    )
    if row is None or json.loads(row[2]) != json.loads(json.dumps(det.params, sort_keys=True, default=str)):
        return None
    model = Detector.loads(bytes(row[0]))
    if getattr(model, "calibrator_", None) is None:
        return None  # stored before ticks calibrated their scores: retrained
    return model, pd.Timestamp(row[1]).tz_localize("UTC")


def _train(
    store: Store,
    spec: MonitorSpec,
    metric_id: int,
    det: DetectorSpec,
    *,
    tick: pd.Timestamp,
    data_end: pd.Timestamp,
    report: MonitorRunReport | None = None,
) -> Detector | None:
    cur = store.cursor()
    start = data_end - pd.Timedelta(spec.train.window)
    series = repo.read_series(cur, metric_id, start=start, end=data_end)
    have = int(series.notna().sum())
    if have < spec.train.min_points:
        if report is not None:
            report.warming[metric_id] = f"{spec.train.min_points - have} more points"
        return None
    span = series.index[-1] - series.index[0]
    if span < pd.Timedelta(spec.train.warm_up):
        # warming up: no score (and so no alert) before the history covers the daily cycle
        if report is not None:
            left = pd.Timedelta(spec.train.warm_up) - span
            report.warming[metric_id] = f"{left.days * 24 + left.seconds // 3600} h more history"
        return None
    # the pipeline of `telewatch detect`: fit, screen a long incident out, refit, and a calibrator
    # trained on the model's own scores (kept with the model: the tick calibrates new scores with it)
    model, _z, _screened = calibrated_scores(det.type, det.params, series, np.ones(len(series), dtype=bool))
    older = cur.execute(
        "SELECT 1 FROM points WHERE metric_id = ? AND ts < ? LIMIT 1", [metric_id, _naive(series.index[0])]
    ).fetchone()
    if older is not None:
        model.scored_from_ = None  # type: ignore[attr-defined]  # the series started earlier: no warm-up
    with store.transaction() as tx:
        tx.execute(
            "INSERT INTO monitor_models (monitor, metric_id, detector, params, trained_at, train_start, train_end,"
            " points, model) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (monitor, metric_id, detector) DO UPDATE SET params = excluded.params,"
            " trained_at = excluded.trained_at, train_start = excluded.train_start, train_end = excluded.train_end,"
            " points = excluded.points, model = excluded.model",
            [
                spec.name,
                metric_id,
                det.type,
                json.dumps(det.params, sort_keys=True, default=str),
                _naive(tick),
                _naive(series.index[0]),
                _naive(series.index[-1]),
                int(series.notna().sum()),
                model.dumps(),
            ],
        )
    return model


def _load_models(store: Store, spec: MonitorSpec, memory: tick_state.MonitorMemory) -> None:
    """Read every stored model of the monitor (one query) into ``memory`` (once per process)."""
    wanted = {
        det.type: json.loads(json.dumps(det.params, sort_keys=True, default=str))
        for det in spec.all_detectors
    }
    rows = (
        store.cursor()
        .execute(
            "SELECT metric_id, detector, model, trained_at, params FROM monitor_models WHERE monitor = ?",
            [spec.name],
        )
        .fetchall()
    )
    for metric_id, detector, blob, trained_at, params in rows:
        if detector not in wanted or json.loads(params) != wanted[detector]:
            continue  # another configuration's model: retrained on first use
        key = (int(metric_id), str(detector))
        model = Detector.loads(bytes(blob))
        if getattr(model, "calibrator_", None) is None:
            continue  # stored before ticks calibrated their scores: retrained on first use
        if key not in memory.models:
            memory.models[key] = tick_state.ModelState(
                model=model, trained_at=pd.Timestamp(trained_at).tz_localize("UTC")
            )
    memory.loaded_models = True


def _unwarmed(model: Detector, ts: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``z`` with no score before the model's ``scored_from_`` (a series' first day, where a detector
    has no history yet: as ``telewatch detect``, see ``services.detection.warm_up``)."""
    start = getattr(model, "scored_from_", None)
    if start is None:
        return z
    out = np.array(z, dtype="float64", copy=True)
    out[np.asarray(ts, dtype="int64") < pd.Timestamp(start).value] = np.nan
    return out
