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
from telewatch.detectors.base import Detector
from telewatch.postrules.alarms import AlarmFilter
from telewatch.postrules.calibrate import screen_anomalies
from telewatch.postrules.threshold import Threshold
from telewatch.postrules.usual import held_through, ordinary_blip, still_outside, usual_at
from telewatch.store import anomalies as anomalies_repo
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
            _det, scores, _ = calibrated_scores(detector, params or {}, series, ~known)
            found = [
                AnomalyWindow(
                    metric_id=metric.id,
                    metric=metric.display_name,
                    start=series.index[w.start],
                    end=series.index[w.end - 1],
                    peak=pd.Timestamp(series.index[w.peak]),
                    peak_score=w.peak_score,
                    value=w.value,
                    expected=w.expected,
                    lower=w.lower,
                    upper=w.upper,
                )
                for w in anomaly_windows(series, scores.to_numpy(), cut=cut, alarm=alarm)
            ]
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

    The series' first stretch (:func:`warm_up`: three days, or a tenth of a shorter series) has no
    score: a detector scoring a series from its first point has no history there yet (novelty's memory is
    empty, rolling windows are short), so its scores there are artefacts — they would be flagged as
    anomalies at the start of every series and would inflate the calibrator's tail.
    """
    warm = warm_up(pd.DatetimeIndex(series.index))
    unfit = warm_up(pd.DatetimeIndex(series.index), FIT_WARM_UP)
    train = np.asarray(train, dtype=bool)
    if (train & ~unfit).any():
        train = train & ~unfit
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
    calibrator = det.train_calibrator(raw[train])
    det.calibrator_ = calibrator  # type: ignore[attr-defined]  # kept with the model for the ticks
    # the past its training scores remembered: a tick's context for a detector that remembers it
    det.trained_span_ = (  # type: ignore[attr-defined]
        pd.Timedelta(series.index[-1] - series.index[0]) if len(series) else pd.Timedelta(0)
    )
    # where scoring starts when the series starts here (a monitor's first tick scores its history)
    det.scored_from_ = (  # type: ignore[attr-defined]
        pd.Timestamp(series.index[int(warm.sum())]) if warm.sum() < len(series) else None
    )
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


#: :func:`warm_up`: the stretch at the start of a series that gets no calibrated score — as long as
#: a monitor's default ``train.warm_up`` (``monitors.config``), before which a monitor scores nothing:
#: the history covers the daily cycle two or three times before a value counts as new.
WARM_UP = pd.Timedelta(days=3)
#: the shorter stretch left out of fitting the detector and training its calibrator: the first day,
#: whose scores are artefacts (empty memory, short windows). Days 2–3 are ordinary data for the fit —
#: leaving them out too made the calibrator's tail a poorer fit (Isolation Forest's 6σ spike fell
#: from z 5.9 to 4.5 on one seed of tests/unit/test_detectors_ml.py) — they only get no stored score.
FIT_WARM_UP = pd.Timedelta(days=1)


def warm_up(index: pd.DatetimeIndex, length: pd.Timedelta = WARM_UP) -> np.ndarray:
    """The points of a series' first ``length`` (:data:`WARM_UP`, three days; or of the first tenth
    of a series shorter than ten times that), where a detector has no history yet.

    >>> idx = pd.date_range("2024-01-01", periods=40 * 1440, freq="1min")
    >>> int(warm_up(idx).sum()), int(warm_up(idx[:1440]).sum()), int(warm_up(idx, FIT_WARM_UP).sum())
    (4320, 144, 1440)
    """
    if len(index) == 0:
        return np.zeros(0, dtype=bool)
    span = index[-1] - index[0]
    return np.asarray(index < index[0] + min(length, span / 10), dtype=bool)


def known_anomalous(
    store: Store, *, metric_id: int, index: pd.DatetimeIndex, except_detector: str | None = None
) -> np.ndarray:
    """Which points of ``index`` lie inside a stored anomaly (any detector but ``except_detector``) or a
    labelled anomaly window of the metric (kind ``anomaly``, or ``confirmed`` by feedback): the points to
    keep out of a refit.

    :func:`detect_metrics` passes its own detector as ``except_detector``: the anomalies it is about to
    replace must not shape the fit that replaces them, or every rerun would find more (a ratchet) and a
    rerun after a crash would differ from a run that was never interrupted."""
    rows = anomalies_repo.anomalous_spans(
        store.cursor(), metric_id=metric_id, except_detector=except_detector
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


@dataclass(frozen=True)
class Window:
    """An anomaly over positions ``[start, end)`` of a series, with its peak and what is usual there."""

    start: int
    end: int
    peak: int
    peak_score: float
    value: float
    expected: float | None
    lower: float | None
    upper: float | None


def anomaly_windows(series: pd.Series, z: np.ndarray, *, cut: Threshold, alarm: AlarmFilter) -> list[Window]:
    """The anomalies of a series from its calibrated scores ``z``: the alarm filter's runs of points
    at or over the threshold, each with the value at its peak and the value and band usual at that
    hour (:func:`~telewatch.postrules.usual.usual_at`), **held open** while the metric stays beyond
    its band after the flagged points (:func:`~telewatch.postrules.usual.held_through`: an outage the
    detector flagged once lasts as long as the metric stays out), overlapping runs merged. A lone
    reading within one band width of the usual band (:func:`~telewatch.postrules.usual.ordinary_blip`:
    a new daily high by a few per cent) is left out, unless it lies within ``merge_gap`` points of the
    series' end (it may be the start of something). A monitor's tick finds the same windows in the
    points it has (``services.monitor``)."""
    ts = np.asarray(pd.DatetimeIndex(series.index).as_unit("ns").asi8, dtype="int64")
    values = series.to_numpy(dtype="float64")
    out: list[Window] = []
    for start, end in alarm(cut(np.asarray(z, dtype="float64"))):
        segment = np.asarray(z[start:end], dtype="float64")
        peak = start + int(np.nanargmax(segment))
        score = float(np.nanmax(segment))
        value = float(values[peak])
        expected, lower, upper = usual_at(ts, values, int(ts[peak]))
        reach = held_through(still_outside(values[end:], value, expected, lower, upper), alarm.merge_gap)
        if reach >= 0:
            end = end + reach + 1
        if out and start < out[-1].end:  # held into the next run: one anomaly
            prev = out[-1]
            if score > prev.peak_score:
                out[-1] = Window(prev.start, max(prev.end, end), peak, score, value, expected, lower, upper)
            else:
                out[-1] = Window(
                    prev.start,
                    max(prev.end, end),
                    prev.peak,
                    prev.peak_score,
                    prev.value,
                    prev.expected,
                    prev.lower,
                    prev.upper,
                )
            continue
        out.append(Window(start, end, peak, score, value, expected, lower, upper))
    return [
        w
        for w in out
        if len(values) - w.end <= alarm.merge_gap  # at the end of the data: may be a beginning
        or not ordinary_blip(w.end - w.start, w.value, w.lower, w.upper)
    ]


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
        anomalies_repo.delete_scores(tx, metric_id=metric_id, detector=detector)
        anomalies_repo.delete_anomalies(tx, metric_id=metric_id, detector=detector)
        crash_point("detect.after_delete")
        anomalies_repo.insert_scores(tx, frame)
        anomalies_repo.record_anomalies(
            tx,
            anomalies_repo.anomaly_frame(
                [
                    (
                        metric_id,
                        detector,
                        a.start,
                        a.end,
                        a.peak,
                        a.peak_score,
                        a.value,
                        a.expected,
                        a.lower,
                        a.upper,
                    )
                    for a in found
                ]
            ),
        )
        crash_point("detect.before_commit")


def read_anomalies(
    store: Store, *, metric_id: int | None = None, detector: str | None = None
) -> pd.DataFrame:
    """Stored anomalies, newest first."""
    return anomalies_repo.read_anomalies(store.cursor(), metric_id=metric_id, detector=detector)
