"""The per-metric tick: the plain reference the streaming tick is checked against (``run_monitor(..., streaming=False)``): several store queries per series, the model and a day of context re-read every tick."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from telewatch.detectors.base import Detector
from telewatch.monitors.config import DetectorSpec, MonitorSpec
from telewatch.postrules.alarms import alarm_windows
from telewatch.postrules.usual import habitual, held_through, ordinary_blip, still_outside, usual_at
from telewatch.services import tick_state
from telewatch.services.detection import calibrate
from telewatch.services.monitor.model import USUAL_REACH, FoundAnomaly, MonitorRunReport
from telewatch.services.monitor.training import _load_model, _train, _unwarmed
from telewatch.store import anomalies as anomalies_repo
from telewatch.store import monitors as monitors_repo
from telewatch.store import repo
from telewatch.store.db import Store


def _score_per_metric(
    spec: MonitorSpec,
    *,
    store: Store,
    tick: pd.Timestamp,
    data_end: pd.Timestamp,
    report: MonitorRunReport,
    cursor: dict[str, Any],
) -> bool:
    """The per-metric tick (the reference the streaming tick is measured against): several store
    queries per series, the model read and a day of context re-read every tick."""
    cur = store.cursor()
    rows = monitors_repo.list_series(cur, spec.name)
    firing_before: dict[str, dict[str, Any]] = dict(cursor.get("firing") or {})
    firing_now: dict[str, dict[str, Any]] = {}
    for key, metric_id, _last_point, scored_until in rows:
        info = repo.get_metric(cur, int(metric_id))
        start = (
            scored_until + pd.Timedelta(microseconds=1)
            if scored_until is not None
            else data_end - pd.Timedelta(spec.history)
        )
        new = repo.read_series(cur, int(metric_id), start=start, end=data_end + pd.Timedelta(microseconds=1))
        if new.empty:
            # nothing new: anomalies of this series keep their state
            firing_now.update({k: v for k, v in firing_before.items() if v.get("series") == key})
            continue
        for det in spec.all_detectors:
            loaded = _load_model(store, spec, int(metric_id), det)
            model: Detector | None
            if loaded is None or tick - loaded[1] >= pd.Timedelta(spec.train.every):
                model = _train(
                    store,
                    spec,
                    int(metric_id),
                    det,
                    tick=tick,
                    data_end=data_end + pd.Timedelta(microseconds=1),
                    report=report,
                )
                report.trained += model is not None
            else:
                model = loaded[0]
            if model is None:
                continue
            context = repo.read_series(
                cur, int(metric_id), start=new.index[0] - pd.Timedelta(days=1), end=new.index[0]
            )
            raw = model.score(new, context=context if len(context) else None)
            z = calibrate(model, raw.to_numpy(dtype="float64"))
            scores = pd.Series(_unwarmed(model, tick_state.utc_ns(raw.index), z), index=raw.index)
            _write_scores(store, int(metric_id), det.type, scores)
            with store.transaction():
                found = _anomalies(
                    store, spec, metric_id=int(metric_id), info=info, det=det, new=new, scores=scores
                )
            for anomaly in found:
                report.anomalies.append(anomaly)
                firing_now[anomaly.key] = {
                    "series": key,
                    "metric_id": anomaly.metric_id,
                    "detector": anomaly.detector,
                    "start": anomaly.start.isoformat(),
                }
            report.scored += int(new.notna().sum())
            # anomalies that were firing and were not extended by these new points have ended, once
            # more than merge_gap normal points followed them (fewer could still merge with the next)
            for akey, item in firing_before.items():
                if item.get("series") != key or item.get("detector") != det.type or akey in firing_now:
                    continue
                stored = anomalies_repo.anomaly_at(
                    cur, metric_id=int(metric_id), detector=det.type, start=pd.Timestamp(item["start"])
                )
                after = 0
                if stored is not None:
                    since = repo.read_series(
                        cur,
                        int(metric_id),
                        start=stored.end + pd.Timedelta(microseconds=1),
                        end=new.index[-1] + pd.Timedelta(microseconds=1),
                    )
                    last_out = held_through(
                        still_outside(
                            since.to_numpy(dtype="float64"),
                            stored.value,
                            stored.expected,
                            stored.lower,
                            stored.upper,
                        ),
                        det.merge_gap,
                    )
                    if last_out >= 0:  # held open while the metric has not come back
                        with store.transaction() as tx:
                            anomalies_repo.extend_anomaly(
                                tx,
                                metric_id=int(metric_id),
                                detector=det.type,
                                start=pd.Timestamp(item["start"]),
                                end=since.index[last_out],
                            )
                        since = since.iloc[last_out + 1 :]
                    after = len(since)
                if stored is not None and after <= det.merge_gap:
                    firing_now[akey] = item
                    continue
                report.resolved.append(akey)
                report.resolved_items.append({**item, "key": akey})
        with store.transaction() as tx:
            monitors_repo.set_last_scored(tx, monitor=spec.name, series_key=key, last_scored=new.index[-1])
    cursor["firing"] = firing_now
    cursor["resolved"] = {k: firing_before[k] for k in report.resolved if k in firing_before}
    return False  # the caller stores the cursor (this reference path is not crash-atomic)


def _write_scores(store: Store, metric_id: int, detector: str, scores: pd.Series) -> None:
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
        repo.replace_scores(tx, frame)


def _anomalies(
    store: Store,
    spec: MonitorSpec,
    *,
    metric_id: int,
    info: repo.MetricInfo,
    det: DetectorSpec,
    new: pd.Series,
    scores: pd.Series,
) -> list[FoundAnomaly]:
    """Anomaly windows over the stored scores just before the new ones and the new ones; a window that
    continues one from the previous tick keeps its start (so its key and its alert stay the same).

    Writes the windows with the calling thread's cursor: the caller holds the transaction (a tick
    records all its anomalies and resolutions in one)."""
    cur = store.cursor()
    lookback_points = det.merge_gap + det.min_points + 1
    prior = anomalies_repo.scores_before(
        cur, metric_id=metric_id, detector=det.type, before=new.index[0], limit=lookback_points
    )
    # extend back to the start of a still-open anomaly, if any
    open_row = anomalies_repo.last_anomaly_before(
        cur, metric_id=metric_id, detector=det.type, before=new.index[0]
    )
    if open_row is not None and prior:
        oldest_prior = pd.Timestamp(prior[-1][0])
        # only an anomaly that still touches the look-back can continue into the new points
        if pd.Timestamp(open_row[0]) < oldest_prior <= pd.Timestamp(open_row[1]):
            prior = anomalies_repo.scores_between(
                cur, metric_id=metric_id, detector=det.type, start=open_row[0], before=new.index[0]
            )
    prior_series = pd.Series(
        [float("nan") if r[1] is None else float(r[1]) for r in reversed(prior)],
        index=pd.DatetimeIndex([pd.Timestamp(r[0]) for r in reversed(prior)]).tz_localize("UTC")
        if prior
        else pd.DatetimeIndex([], tz="UTC"),
        dtype="float64",
    )
    combined = pd.concat([prior_series, scores]) if len(prior_series) else scores
    flags = (combined.fillna(-np.inf) >= det.threshold).to_numpy()
    windows = alarm_windows(flags, min_points=det.min_points, merge_gap=det.merge_gap)
    n_prior = len(prior_series)
    values = repo.read_series(
        cur, metric_id, start=combined.index[0], end=combined.index[-1] + pd.Timedelta(microseconds=1)
    )
    last_index = len(combined) - 1
    found: list[FoundAnomaly] = []
    for start, end in windows:
        if end - 1 < n_prior:
            continue  # entirely before the new points: recorded by an earlier tick
        segment = combined.iloc[start:end]
        peak_pos = start + int(np.nanargmax(segment.to_numpy()))
        peak = pd.Timestamp(combined.index[peak_pos])
        start_ts, end_ts = pd.Timestamp(combined.index[start]), pd.Timestamp(combined.index[end - 1])
        value = float(values.get(peak, np.nan))
        history = repo.read_series(
            cur, metric_id, start=peak - USUAL_REACH, end=peak + pd.Timedelta(microseconds=1)
        )
        hist_ts, hist_values = (
            np.asarray(pd.DatetimeIndex(history.index).as_unit("ns").asi8),
            history.to_numpy(dtype="float64"),
        )
        expected, lower, upper = usual_at(hist_ts, hist_values, peak.value)
        habit = habitual(hist_ts, hist_values, peak.value, value)
        ongoing = last_index - (end - 1) <= det.merge_gap
        after = values[values.index > end_ts]
        reach = held_through(
            still_outside(after.to_numpy(dtype="float64"), value, expected, lower, upper), det.merge_gap
        )
        if reach >= 0:  # held open while the metric stays beyond its band (as the streaming tick)
            end_ts = pd.Timestamp(after.index[reach])
            ongoing = len(after) - (reach + 1) <= det.merge_gap
        anomaly = FoundAnomaly(
            metric_id=metric_id,
            metric=info.name,
            labels=dict(info.labels),
            detector=det.type,
            start=start_ts,
            end=end_ts,
            peak=peak,
            peak_score=float(segment.max()),
            value=value,
            expected=expected,
            ongoing=ongoing,
            lower=lower,
            upper=upper,
            habitual=habit,
            last_reading=pd.Timestamp(combined.index[-1]),
        )
        if found and anomaly.start <= found[-1].end:  # held into the next run: one anomaly
            prev = found[-1]
            top = anomaly if anomaly.peak_score > prev.peak_score else prev
            found[-1] = replace(
                top, start=prev.start, end=max(prev.end, anomaly.end), ongoing=prev.ongoing or anomaly.ongoing
            )
            continue
        found.append(anomaly)
    # a lone reading just past the usual band, over by now, is no anomaly (as the streaming tick)
    stamps = pd.DatetimeIndex(values.index)
    found = [
        a
        for a in found
        if a.ongoing
        or not ordinary_blip(int(((stamps >= a.start) & (stamps <= a.end)).sum()), a.value, a.lower, a.upper)
    ]
    # a window that grew backwards (merged with an earlier one) replaces it
    if found:
        anomalies_repo.record_anomalies(
            cur,
            anomalies_repo.anomaly_frame(
                [
                    (
                        metric_id,
                        det.type,
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
    return found
