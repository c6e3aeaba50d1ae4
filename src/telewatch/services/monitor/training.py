"""A monitor's models: fitted and calibrated by the pipeline of ``telewatch detect`` (``services.detection.calibrated_scores``) on the training window, after the warm-up; stored and read back."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from telewatch.detectors.base import Detector
from telewatch.monitors.config import DetectorSpec, MonitorSpec
from telewatch.services import tick_state
from telewatch.services.detection import calibrated_scores
from telewatch.services.monitor.model import MonitorRunReport
from telewatch.store import monitors as monitors_repo
from telewatch.store import repo
from telewatch.store.db import Store


def _load_model(
    store: Store, spec: MonitorSpec, metric_id: int, det: DetectorSpec
) -> tuple[Detector, pd.Timestamp] | None:
    stored = monitors_repo.read_model(
        store.cursor(), monitor=spec.name, metric_id=metric_id, detector=det.type
    )
    if stored is None or stored.params != json.loads(json.dumps(det.params, sort_keys=True, default=str)):
        return None
    model = Detector.loads(stored.blob)
    if getattr(model, "calibrator_", None) is None:
        return None  # stored before ticks calibrated their scores: retrained
    return model, stored.trained_at


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
    if monitors_repo.has_points_before(cur, metric_id, series.index[0]):
        model.scored_from_ = None  # type: ignore[attr-defined]  # the series started earlier: no warm-up
    with store.transaction() as tx:
        monitors_repo.save_model(
            tx,
            monitor=spec.name,
            metric_id=metric_id,
            detector=det.type,
            params=json.dumps(det.params, sort_keys=True, default=str),
            trained_at=tick,
            train_start=series.index[0],
            train_end=series.index[-1],
            points=int(series.notna().sum()),
            blob=model.dumps(),
        )
    return model


def _load_models(store: Store, spec: MonitorSpec, memory: tick_state.MonitorMemory) -> None:
    """Read every stored model of the monitor (one query) into ``memory`` (once per process)."""
    wanted = {
        det.type: json.loads(json.dumps(det.params, sort_keys=True, default=str))
        for det in spec.all_detectors
    }
    for stored in monitors_repo.read_models(store.cursor(), spec.name):
        if stored.detector not in wanted or stored.params != wanted[stored.detector]:
            continue  # another configuration's model: retrained on first use
        key = (stored.metric_id, stored.detector)
        model = Detector.loads(stored.blob)
        if getattr(model, "calibrator_", None) is None:
            continue  # stored before ticks calibrated their scores: retrained on first use
        if key not in memory.models:
            memory.models[key] = tick_state.ModelState(model=model, trained_at=stored.trained_at)
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
