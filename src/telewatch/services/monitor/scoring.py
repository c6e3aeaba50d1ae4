"""The streaming tick: new points of every series scored with the calibrated models and the context kept in memory (``services.tick_state``), one bulk write of scores, the state saved with the watermarks."""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from telewatch.core.faults import crash_point
from telewatch.monitors.config import DetectorSpec, MonitorSpec
from telewatch.postrules.calibrate import Calibrator, CalibratorStack
from telewatch.services import tick_state
from telewatch.services.detection import calibrate
from telewatch.services.monitor.anomalies import _record_tick_anomalies
from telewatch.services.monitor.model import _NAT, OWED, MonitorRunReport, _owed, _wall
from telewatch.services.monitor.training import _load_models, _train, _unwarmed
from telewatch.store import monitors as monitors_repo
from telewatch.store import repo
from telewatch.store.db import Store


def _score(
    spec: MonitorSpec,
    *,
    store: Store,
    tick: pd.Timestamp,
    data_end: pd.Timestamp,
    report: MonitorRunReport,
    cursor: dict[str, Any],
) -> bool:
    """The streaming tick: one query for the new points of every series, models and context tails
    from memory (read from the store once after a restart), scoring grouped by detector type as a
    matrix, one bulk write of scores, anomalies only where a new score crossed the threshold, and
    one transaction for the watermarks and the persisted state (with the monitor's cursor: returns
    whether it stored it)."""
    memory = tick_state.attach(store, monitor=spec.name, fingerprint=spec.fingerprint())
    try:
        return _score_streaming(
            spec, store=store, tick=tick, data_end=data_end, report=report, cursor=cursor, memory=memory
        )
    except BaseException:
        tick_state.forget(store, spec.name)  # half-updated: the next tick rebuilds from the store
        raise


def _score_streaming(
    spec: MonitorSpec,
    *,
    store: Store,
    tick: pd.Timestamp,
    data_end: pd.Timestamp,
    report: MonitorRunReport,
    cursor: dict[str, Any],
    memory: tick_state.MonitorMemory,
) -> bool:
    cur = store.cursor()
    listed = monitors_repo.series_watermarks(cur, spec.name)
    # watermarks as ns since the epoch (None: never scored)
    marks = listed["last_scored"].to_numpy(dtype="datetime64[ns]").view("int64")
    rows: list[tuple[str, int, int | None]] = [
        (str(key), int(mid), None if mark == _NAT else int(mark))
        for key, mid, mark in zip(
            listed["series_key"].tolist(), listed["metric_id"].tolist(), marks.tolist(), strict=True
        )
    ]
    firing_before: dict[str, dict[str, Any]] = dict(cursor.get("firing") or {})
    firing_now: dict[str, dict[str, Any]] = {}
    by_series: dict[tuple[str, str], list[str]] = {}
    firing_of: dict[str, list[str]] = {}
    for akey, item in firing_before.items():
        by_series.setdefault((str(item.get("series")), str(item.get("detector"))), []).append(akey)
        firing_of.setdefault(str(item.get("series")), []).append(akey)
    first_start = int((data_end - pd.Timedelta(spec.history)).value) - 1000  # 1 µs before
    after: dict[int, int] = {}
    for _key, mid, last in rows:
        since = last if last is not None else first_start
        after[mid] = min(after.get(mid, since), since)
    new_points = tick_state.read_new_points(cur, after=after, end=data_end)
    series_new: dict[str, tuple[int, np.ndarray, np.ndarray]] = {}
    for key, mid, last in rows:
        got = new_points.get(mid)
        if got is not None and last is not None and got[0].size and got[0][0] <= last:
            keep_from = int(np.searchsorted(got[0], last, side="right"))  # a metric two series share
            got = (got[0][keep_from:], got[1][keep_from:])
        if got is None or got[0].size == 0:
            # nothing new: anomalies of this series keep their state
            firing_now.update({k: firing_before[k] for k in firing_of.get(key, [])})
            continue
        series_new[key] = (mid, got[0], got[1])
    if not series_new:
        tick_state.keep(store, monitor=spec.name, memory=memory)
        cursor["firing"] = firing_now
        cursor["resolved"] = {}
        return False

    # models: from memory, the store once, or (re)trained on the monitor's schedule
    if not memory.loaded_models:
        _load_models(store, spec, memory)
        memory.unsettled += len(memory.models)
    due = tick - pd.Timedelta(spec.train.every)  # a model trained at or before this is retrained
    detectors = spec.all_detectors
    per_metric: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for mid, ts, values in series_new.values():
        per_metric.setdefault(mid, (ts, values))
    metrics = list(per_metric)
    for mid in metrics:
        for det in detectors:
            held = memory.models.get((mid, det.type))
            if held is None or held.trained_at is None or held.trained_at <= due:
                model = _train(
                    store,
                    spec,
                    mid,
                    det,
                    tick=tick,
                    data_end=data_end + pd.Timedelta(microseconds=1),
                    report=report,
                )
                report.trained += model is not None
                memory.unsettled += 1
                memory.models[(mid, det.type)] = tick_state.ModelState(
                    model=model,
                    trained_at=tick if model is not None else None,
                    deviations=held.deviations if held is not None else None,
                    windows=held.windows if held is not None else None,
                )

    # context tails: from memory, or one query for the series this process has not seen yet
    first_new = {mid: int(ts[0]) for mid, ts, _v in series_new.values()}
    needs: dict[int, tick_state.Need] = {}
    nothing = tick_state.Need(0, 0)
    for mid in metrics:
        need = nothing
        for det in detectors:
            held = memory.models[(mid, det.type)]
            if held.model is not None:
                need = held.need if need is nothing else need.merge(held.need)
        needs[mid] = need
    missing = {
        mid: (first_new[mid], needs[mid])
        for mid in metrics
        if mid not in memory.tails or not memory.tails[mid].need.covers(needs[mid])
    }
    if missing:
        lower = _tail_starts(cur, spec.name, list(missing), needs)
        memory.tails.update(tick_state.read_tails(cur, wanted=missing, lower=lower))
        memory.unsettled += len(missing)
        for mid in missing:
            for det in detectors:
                memory.models[(mid, det.type)].deviations = None
                memory.models[(mid, det.type)].windows = None

    # score, grouped by detector type
    jobs: dict[str, list[tick_state.Job]] = {}
    for mid in metrics:
        mid_ts, mid_values = per_metric[mid]
        for det in detectors:
            held = memory.models[(mid, det.type)]
            if held.model is None:
                continue
            jobs.setdefault(det.type, []).append(
                tick_state.Job(
                    metric_id=mid,
                    state=held,
                    tail=memory.tails[mid],
                    need=held.need,
                    ts=mid_ts,
                    values=mid_values,
                )
            )
    scored: dict[tuple[int, str], np.ndarray] = {}
    for det_type, group in jobs.items():
        raw = tick_state.score_group(det_type, group)
        for job, z in zip(group, _calibrated(memory, det_type, group, raw), strict=True):
            scored[(job.metric_id, det_type)] = z
    _write_score_batch(store, jobs, scored)
    crash_point("tick.after_scores")

    # anomalies where a new score crossed the threshold; firing anomalies that ended. The series to
    # look at are found on the concatenated scores; all anomaly writes are one transaction.
    items = list(series_new.items())
    visit = _series_to_visit(items, detectors, scored, report)
    position = {key: i for i, (key, _v) in enumerate(items)}
    visit.update(position[key] for key in firing_of if key in position)
    with store.transaction():
        _record_tick_anomalies(
            store,
            spec,
            [items[pos] for pos in sorted(visit)],
            scored=scored,
            report=report,
            firing_before=firing_before,
            firing_now=firing_now,
            by_series=by_series,
        )
    crash_point("tick.after_anomalies")

    # the new state: tails in memory, watermarks and state rows in the store, one transaction
    for mid in metrics:
        ts, values = per_metric[mid]
        memory.tails[mid] = memory.tails[mid].extend(ts, values, needs[mid])
    generation = tick_state.new_generation()
    cursor["firing"] = firing_now
    cursor["resolved"] = {k: firing_before[k] for k in report.resolved if k in firing_before}
    if report.anomalies or report.resolved:
        cursor[OWED] = _owed(report)
    else:
        cursor.pop(OWED, None)
    _save_tick_state(
        store, spec, series_new, memory, metrics, tick=tick, generation=generation, cursor=cursor
    )
    crash_point("tick.after_state")
    memory.generation = generation
    tick_state.keep(store, monitor=spec.name, memory=memory)
    # a tick that brought much long-lived state into memory (a restart's first tick, a retraining):
    # freeze it out of the garbage collector's walks (see tick_state.settle_heap)
    memory.settle()
    return True


def _calibrated(
    memory: tick_state.MonitorMemory, det_type: str, group: list[tick_state.Job], raw: list[np.ndarray]
) -> list[np.ndarray]:
    """The raw scores of a detector group as calibrated z's, none before a model's ``scored_from_``:
    ``_unwarmed(model, ts, calibrate(model, raw))`` for every job, computed for the whole group at
    once on a :class:`~telewatch.postrules.calibrate.CalibratorStack` kept in ``memory`` (the same
    numbers: ``tests/unit/test_calibrator_stack.py``)."""
    if not group:
        return []
    calibrators: list[Calibrator] = []
    starts = np.empty(len(group), dtype="int64")
    for i, job in enumerate(group):
        cal, starts[i] = job.state.calibration()
        if cal is None:  # none (refused there) or not ours: one by one
            return [
                _unwarmed(j.state.model, j.ts, calibrate(j.state.model, r))  # type: ignore[arg-type]
                for j, r in zip(group, raw, strict=True)
            ]
        calibrators.append(cal)
    stack = memory.calibration.get(det_type)
    if stack is None:
        stack = memory.calibration[det_type] = CalibratorStack()
    rows = stack.rows_for(calibrators)
    sizes = np.array([r.size for r in raw], dtype="int64")
    z = stack.z(np.concatenate(raw), np.repeat(rows, sizes))
    if (starts > tick_state.NO_START).any():
        ts = np.concatenate([np.asarray(job.ts, dtype="int64") for job in group])
        z[ts < np.repeat(starts, sizes)] = np.nan
    bounds = np.concatenate([[0], np.cumsum(sizes)]).tolist()
    return [z[a:b] for a, b in pairwise(bounds)]


def _series_to_visit(
    items: list[tuple[str, tuple[int, np.ndarray, np.ndarray]]],
    detectors: Sequence[DetectorSpec],
    scored: dict[tuple[int, str], np.ndarray],
    report: MonitorRunReport,
) -> set[int]:
    """Positions in ``items`` of the series with a new score at or over a detector's threshold (NaN
    never crosses), found on the scores of all series at once; counts the scored points."""
    sizes = np.array([v[1].size for _k, v in items], dtype="int64")
    values = np.concatenate([v[2] for _k, v in items])
    valid_upto = np.concatenate([[0], np.cumsum(values == values)])  # not NaN
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    valid = valid_upto[bounds[1:]] - valid_upto[bounds[:-1]]
    out: set[int] = set()
    for det in detectors:
        got = [scored.get((v[0], det.type)) for _k, v in items]  # None: no model yet
        have = np.array([g is not None for g in got], dtype=bool)
        if not have.any():
            continue
        report.scored += int(valid[have].sum())
        crossed = np.concatenate(
            [[0], np.cumsum(np.concatenate([g for g in got if g is not None]) >= det.threshold)]
        )
        ends = np.concatenate([[0], np.cumsum(sizes[have])])
        hits = crossed[ends[1:]] - crossed[ends[:-1]] > 0
        out.update(np.flatnonzero(have)[hits].tolist())
    return out


def _tail_starts(
    cur: Any, monitor: str, metric_ids: list[int], needs: dict[int, tick_state.Need]
) -> dict[int, int]:
    """Where each metric's kept context tail started (ns), from ``tick_state``, when it kept enough."""
    out: dict[int, int] = {}
    for mid, start, points in monitors_repo.tail_starts(cur, monitor=monitor, metric_ids=metric_ids):
        need = needs[mid]
        if not need.span and points >= need.points:
            out[mid] = int(start.as_unit("ns").value)
    return out


def _write_score_batch(
    store: Store, jobs: dict[str, list[tick_state.Job]], scored: dict[tuple[int, str], np.ndarray]
) -> None:
    """All scores of the tick in one statement (a frame inserted by DuckDB, not row by row)."""
    parts = [(job, det_type) for det_type, group in jobs.items() for job in group]
    if not parts:
        return
    lengths = [job.ts.size for job, _d in parts]
    frame = pd.DataFrame(
        {
            "metric_id": np.repeat(np.array([job.metric_id for job, _d in parts], dtype="int32"), lengths),
            "detector": np.repeat(np.array([d for _j, d in parts], dtype=object), lengths),
            "ts": np.concatenate([job.ts for job, _d in parts])
            .astype("datetime64[ns]")
            .astype("datetime64[us]"),
            "score": np.concatenate([scored[(job.metric_id, d)] for job, d in parts]),
        }
    )
    with store.transaction(series=True) as tx:
        repo.replace_scores(tx, frame)  # scored before (a tick stopped before its watermark was saved)


def _save_tick_state(
    store: Store,
    spec: MonitorSpec,
    series_new: dict[str, tuple[int, np.ndarray, np.ndarray]],
    memory: tick_state.MonitorMemory,
    metrics: list[int],
    *,
    tick: pd.Timestamp,
    generation: str,
    cursor: dict[str, Any],
) -> None:
    """Watermarks (``monitor_series.last_scored``), the state rows, the generation and the monitor's
    cursor (what is firing, the alerts this tick owes): one transaction. Once the watermarks moved, a
    rerun of the tick finds nothing new, so what it found must be stored with them."""
    marks = pd.DataFrame(
        {
            "series_key": list(series_new),
            "last_scored": np.array([v[1][-1] for v in series_new.values()], dtype="int64")
            .astype("datetime64[ns]")
            .astype("datetime64[us]"),
        }
    )
    last = {mid: int(ts[-1]) for mid, ts, _v in series_new.values()}
    rows = [(mid, det.type) for mid in metrics for det in spec.all_detectors]
    tails = [memory.tails[mid] for mid, _d in rows]
    held = [memory.models[(mid, d)] for mid, d in rows]
    state = pd.DataFrame(
        {
            "metric_id": np.array([mid for mid, _d in rows], dtype="int32"),
            "detector": [d for _m, d in rows],
            "last_scored": np.array([last[mid] for mid, _d in rows], dtype="int64")
            .astype("datetime64[ns]")
            .astype("datetime64[us]"),
            "tail_start": np.array([t.first_ts(_NAT) for t in tails], dtype="int64")
            .view("datetime64[ns]")
            .astype("datetime64[us]"),
            "tail_points": np.array([t.hi - t.lo for t in tails], dtype="int32"),
            "trained_at": np.array(
                [h.trained_at.value if h.trained_at is not None else _NAT for h in held], dtype="int64"
            )
            .view("datetime64[ns]")
            .astype("datetime64[us]"),
        }
    )
    now = _wall()
    with store.transaction() as tx:
        monitors_repo.set_last_scored_batch(tx, monitor=spec.name, marks=marks)
        monitors_repo.save_tick_state(tx, monitor=spec.name, state=state, updated_at=now)
        monitors_repo.save_generation(
            tx, monitor=spec.name, generation=generation, tick_at=tick, updated_at=now
        )
        monitors_repo.save_monitor_cursor(tx, monitor=spec.name, cursor=json.dumps(cursor, sort_keys=True))
