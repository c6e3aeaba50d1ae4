"""Use-case: score stored metrics with a detector and record scores and anomalies in the store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import Progress

from telewatch.core.defaults import DEFAULT_DETECTOR, DEFAULT_THRESHOLD, default_detector  # noqa: F401  (re-exported)
from telewatch.core.faults import crash_point
from telewatch.detectors import create_detector
from telewatch.detectors.bands import ExpectedBand
from telewatch.detectors.base import Detector
from telewatch.postrules.alarms import AlarmFilter
from telewatch.postrules.calibrate import Calibrator, screen_anomalies
from telewatch.postrules.threshold import Threshold
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
    expected: float | None = None
    lower: float | None = None
    upper: float | None = None


@dataclass
class DetectionReport:
    detector: str
    threshold: float
    metrics: int = 0
    points: int = 0
    excluded_points: int = 0
    anomalies: list[AnomalyWindow] = field(default_factory=list)


def detect_metrics(
    store: Store,
    *,
    detector: str | None = None,
    params: dict[str, Any] | None = None,
    metric_ids: Sequence[int] | None = None,
    threshold: float | None = None,
    min_points: int = 1,
    merge_gap: int = 5,
    cooldown: int = 0,
    console: Console | None = None,
) -> DetectionReport:
    """Fit ``detector`` on each metric, score it, and replace that detector's scores and anomalies.

    Points inside anomalies already stored for the metric (by any other detector) or inside labelled
    anomaly windows are left out of the fit and of the calibration: past incidents do not poison
    the baseline. The detector's own previous anomalies are not (they are what this run replaces),
    so a rerun over the same data gives the same result. Raw scores are calibrated to a z
    (:func:`calibrated_scores`: a :class:`~telewatch.postrules.calibrate.Calibrator` trained on the
    metric's own non-anomalous scores, with a long incident in them screened out first), so
    ``threshold`` (default
    :data:`DEFAULT_THRESHOLD`) means the same for every metric and detector; the stored scores are
    these z's. An anomaly is a run of at least ``min_points`` flagged points (runs at most
    ``merge_gap`` points apart are one anomaly; none starts within ``cooldown`` points of the last).
    Detectors that know their expected value store it, with the band, at each anomaly's peak.
    """
    detector = detector or default_detector()
    cur = store.cursor()
    metrics = repo.list_metrics(cur)
    if metric_ids is not None:
        wanted = set(metric_ids)
        metrics = [m for m in metrics if m.id in wanted]
    cut = Threshold(value=DEFAULT_THRESHOLD if threshold is None else threshold)
    alarm = AlarmFilter(min_points=min_points, merge_gap=merge_gap, cooldown=cooldown)
    report = DetectionReport(detector=detector, threshold=float(cut.value_))
    crash_point("detect.begin")
    with Progress(console=console or Console(stderr=True), transient=True) as progress:
        task = progress.add_task(f"detecting with {detector}", total=len(metrics))
        for metric in metrics:
            series = repo.read_series(cur, metric.id)
            progress.advance(task)
            if series.dropna().empty:
                continue
            known = known_anomalous(
                store, metric_id=metric.id, index=pd.DatetimeIndex(series.index), except_detector=detector
            )
            det, scores, _ = calibrated_scores(detector, params or {}, series, ~known)
            band = det.expected(series) if isinstance(det, ExpectedBand) else None
            found = []
            for start, end in alarm(cut(scores.to_numpy())):
                segment = scores.iloc[start:end]
                peak_pos = start + int(np.nanargmax(segment.to_numpy()))
                found.append(
                    AnomalyWindow(
                        metric_id=metric.id,
                        metric=metric.display_name,
                        start=series.index[start],
                        end=series.index[end - 1],
                        peak=pd.Timestamp(series.index[peak_pos]),
                        peak_score=float(segment.max()),
                        value=float(series.iloc[peak_pos]),
                        **_band_at(band, peak_pos),
                    )
                )
            _replace_results(store, metric.id, detector, scores, found)
            crash_point("detect.after_commit")
            report.metrics += 1
            report.points += int(series.notna().sum())
            report.excluded_points += int(known.sum())
            report.anomalies.extend(found)
    return report


def calibrated_scores(
    detector: str, params: dict[str, Any], series: pd.Series, train: np.ndarray
) -> tuple[Detector, pd.Series, np.ndarray]:
    """Fit ``detector`` on the points of ``series`` where ``train`` is True, score all of ``series``
    and calibrate the scores to a z against the training points' own scores.

    An incident inside the training points (an outage, a level shift: hundreds of anomalous points)
    would otherwise dominate the calibrator's tail and calibrate itself away, and shape the fit.
    So the points :func:`~telewatch.postrules.calibrate.screen_anomalies` finds suspect (a robust tail
    fit, and only when they are a sizeable part of the tail) are left out, and the detector is refitted
    and the calibrator retrained once without them; on clean data nothing is left out and the result
    is that of a single pass. Returns the fitted detector, the z's (a Series like ``series``) and the
    mask of the points screened out.

    The series' first stretch (:func:`warm_up`: a day, or a tenth of a shorter series) has no score: a
    detector scoring a series from its first point has no history there yet (novelty's memory is
    empty, rolling windows are short), so its scores there are artefacts — they would be flagged as
    anomalies at the start of every series and would inflate the calibrator's tail.
    """
    warm = warm_up(pd.DatetimeIndex(series.index))
    train = np.asarray(train, dtype=bool)
    if (train & ~warm).any():
        train = train & ~warm
    if not series.where(train).notna().any():
        train = np.ones(len(series), dtype=bool)
    det = create_detector(detector, **params).fit(series.where(train))
    raw = det.score(series).to_numpy(dtype="float64")
    screened = np.zeros(len(series), dtype=bool)
    screened[train] = screen_anomalies(raw[train])
    if screened.any():
        kept = train & ~screened
        if series.where(kept).notna().any():
            det = det.clone().fit(series.where(kept))
            raw = det.score(series).to_numpy(dtype="float64")
            train = kept
        else:
            screened[:] = False
    calibrator = Calibrator().train(raw[train])
    det.calibrator_ = calibrator  # type: ignore[attr-defined]  # kept with the model for the ticks
    z = calibrator(raw)
    z[warm] = np.nan
    return det, pd.Series(z, index=series.index, name=series.name), screened


def calibrate(model: Detector, raw: np.ndarray) -> np.ndarray:
    """New raw scores of ``model`` as calibrated z's, with the calibrator :func:`calibrated_scores`
    trained when it fitted ``model`` (a model fitted without one is refused: its raw scores would be
    compared with a threshold meant for z's)."""
    calibrator = getattr(model, "calibrator_", None)
    if calibrator is None:
        raise ValueError(f"{type(model).__name__} was fitted without a calibrator (use calibrated_scores)")
    return np.asarray(calibrator(np.asarray(raw, dtype="float64")), dtype="float64")


#: :func:`warm_up`: the stretch at the start of a series that gets no calibrated score
WARM_UP = pd.Timedelta(days=1)


def warm_up(index: pd.DatetimeIndex) -> np.ndarray:
    """The points of a series' first day (or of the first tenth of a series shorter than ten days),
    where a detector has no history yet.

    >>> idx = pd.date_range("2024-01-01", periods=20 * 1440, freq="1min")
    >>> int(warm_up(idx).sum()), int(warm_up(idx[:1440]).sum())
    (1440, 144)
    """
    if len(index) == 0:
        return np.zeros(0, dtype=bool)
    span = index[-1] - index[0]
    return np.asarray(index < index[0] + min(WARM_UP, span / 10), dtype=bool)


def known_anomalous(
    store: Store, *, metric_id: int, index: pd.DatetimeIndex, except_detector: str | None = None
) -> np.ndarray:
    """Which points of ``index`` lie inside a stored anomaly (any detector but ``except_detector``) or a
    labelled anomaly window of the metric (kind ``anomaly``, or ``confirmed`` by feedback): the points to
    keep out of a refit.

    :func:`detect_metrics` passes its own detector as ``except_detector``: the anomalies it is about to
    replace must not shape the fit that replaces them, or every rerun would find more (a ratchet) and a
    rerun after a crash would differ from a run that was never interrupted."""
    rows = (
        store.cursor()
        .execute(
            "SELECT start_ts, end_ts FROM anomalies WHERE metric_id = ? AND detector IS DISTINCT FROM ?"
            " UNION ALL SELECT start_ts, end_ts FROM label_windows WHERE metric_id = ?"
            " AND kind IN ('anomaly', 'confirmed')",
            [metric_id, except_detector, metric_id],
        )
        .fetchall()
    )
    mask = np.zeros(len(index), dtype=bool)
    if not rows or not len(index):
        return mask
    i8 = index.tz_convert("UTC").tz_localize(None).as_unit("ns").asi8
    for start, end in rows:
        lo = np.searchsorted(i8, pd.Timestamp(start).as_unit("ns").value, side="left")
        hi = np.searchsorted(i8, pd.Timestamp(end).as_unit("ns").value, side="right")
        mask[lo:hi] = True
    return mask


def _band_at(band: pd.DataFrame | None, pos: int) -> dict[str, float | None]:
    if band is None:
        return {}
    row = band.iloc[pos]
    return {k: (float(row[k]) if np.isfinite(row[k]) else None) for k in ("expected", "lower", "upper")}


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
    with store.transaction(series=True) as tx:
        tx.execute("DELETE FROM scores WHERE metric_id = ? AND detector = ?", [metric_id, detector])
        tx.execute("DELETE FROM anomalies WHERE metric_id = ? AND detector = ?", [metric_id, detector])
        crash_point("detect.after_delete")
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
                "INSERT INTO anomalies (metric_id, detector, start_ts, end_ts, peak_ts, peak_score, value,"
                " expected, lower, upper) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    metric_id,
                    detector,
                    a.start.tz_convert("UTC").tz_localize(None),
                    a.end.tz_convert("UTC").tz_localize(None),
                    a.peak.tz_convert("UTC").tz_localize(None),
                    a.peak_score,
                    a.value,
                    a.expected,
                    a.lower,
                    a.upper,
                ],
            )
        crash_point("detect.before_commit")


def read_anomalies(
    store: Store, *, metric_id: int | None = None, detector: str | None = None
) -> pd.DataFrame:
    """Stored anomalies, newest first."""
    sql = (
        "SELECT a.id, a.metric_id, m.name AS metric, a.detector, a.start_ts, a.end_ts, a.peak_ts,"
        " a.peak_score, a.value, a.expected, a.lower, a.upper FROM anomalies a JOIN metrics m ON m.id = a.metric_id WHERE true"
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
