"""Anomaly windows from a tick's calibrated scores: the same windows as ``services.detection.anomaly_windows`` (threshold, alarm filter, what is usual at that hour, held open while the metric stays out), and the resolution of the anomalies that ended."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from telewatch.monitors.config import DetectorSpec, MonitorSpec
from telewatch.postrules.alarms import alarm_windows
from telewatch.postrules.usual import habitual, held_through, ordinary_blip, still_outside, usual_at
from telewatch.services.monitor.model import (
    USUAL_REACH,
    FoundAnomaly,
    MonitorRunReport,
    _points_of,
    _us,
)
from telewatch.store import anomalies as anomalies_repo
from telewatch.store import monitors as monitors_repo
from telewatch.store.db import Store


@dataclass
class _Candidate:
    """A series' new scores of one detector, at least one over the threshold."""

    key: str
    mid: int
    det: DetectorSpec
    ts: np.ndarray  # ns since the epoch
    scores: np.ndarray


_PRIOR_REACH = pd.Timedelta(days=1)  # where the look-back for earlier scores is searched first


def _record_tick_anomalies(
    store: Store,
    spec: MonitorSpec,
    visit: list[tuple[str, tuple[int, np.ndarray, np.ndarray]]],
    *,
    scored: dict[tuple[int, str], np.ndarray],
    report: MonitorRunReport,
    firing_before: dict[str, dict[str, Any]],
    firing_now: dict[str, dict[str, Any]],
    by_series: dict[tuple[str, str], list[str]],
) -> None:
    """:func:`_anomalies` for every visited series of a streaming tick with a few set-based queries
    (instead of several per series), then the resolution of the firing anomalies that ended. The
    caller holds the transaction. Same windows, values and order as the per-series path."""
    cur = store.cursor()
    cands: list[_Candidate] = []
    for key, (mid, ts, _values) in visit:
        for det in spec.all_detectors:
            det_scores = scored.get((mid, det.type))
            if det_scores is not None and (det_scores >= det.threshold).any():  # NaN never crosses
                cands.append(_Candidate(key, mid, det, ts, det_scores))
    if cands:
        _record_windows(store, cands, report=report, firing_now=firing_now)
    checks: list[tuple[str, dict[str, Any], int, DetectorSpec, int]] = []
    for key, (mid, ts, _values) in visit:
        for det in spec.all_detectors:
            if (mid, det.type) not in scored:
                continue  # no model yet: its anomalies keep their state
            for akey in by_series.get((key, det.type), []):
                if akey not in firing_now:
                    checks.append((akey, firing_before[akey], mid, det, int(ts[-1])))
    if not checks:
        return
    frame = pd.DataFrame(
        {
            "pos": np.arange(len(checks)),
            "metric_id": np.array([c[2] for c in checks], dtype="int32"),
            "detector": [c[3].type for c in checks],
            "start_ts": pd.DatetimeIndex([pd.Timestamp(c[1]["start"]) for c in checks])
            .tz_convert("UTC")
            .tz_localize(None)
            .as_unit("us"),
            "until": pd.DatetimeIndex(
                np.array([c[4] for c in checks], dtype="int64").view("datetime64[ns]")
            ).as_unit("us"),
        }
    )
    stored = {
        int(pos): (_ns(end), value, expected, lower, upper)
        for pos, end, value, expected, lower, upper in anomalies_repo.anomalies_at_starts(cur, frame)
    }
    ends = {pos: row[0] for pos, row in stored.items()}
    after: dict[int, int] = {}
    held: dict[int, int] = {}  # anomalies whose metric is still outside its band: their new end
    if ends:
        # stored points after each anomaly's end, up to the series' newest (one read for all)
        points = _points_of(
            cur,
            sorted({checks[p][2] for p in ends}),
            lo=min(ends.values()),
            hi=max(checks[p][4] for p in ends),
            include_hi=True,
        )
        for pos, end_ns in ends.items():
            ts, vals = points.get(checks[pos][2], (np.empty(0, "int64"), np.empty(0)))
            first, last = (
                np.searchsorted(ts, end_ns, side="right"),
                np.searchsorted(ts, checks[pos][4], side="right"),
            )
            reach = held_through(still_outside(vals[first:last], *stored[pos][1:]), checks[pos][3].merge_gap)
            if reach >= 0:  # held open while the metric has not come back: its end follows
                held[pos] = int(ts[first + reach])
                first = first + reach + 1
            after[pos] = int(last - first)
    for pos, new_end in held.items():
        _akey, item, mid, det, _until = checks[pos]
        anomalies_repo.extend_anomaly(
            cur, metric_id=mid, detector=det.type, start=pd.Timestamp(item["start"]), end=_us([new_end])[0]
        )
    for pos, (akey, item, _mid, det, _until) in enumerate(checks):
        if pos in after and after[pos] <= det.merge_gap:
            firing_now[akey] = item
            continue
        report.resolved.append(akey)
        report.resolved_items.append({**item, "key": akey})


def _record_windows(
    store: Store, cands: list[_Candidate], *, report: MonitorRunReport, firing_now: dict[str, dict[str, Any]]
) -> None:
    cur = store.cursor()
    first = [int(c.ts[0]) for c in cands]
    lookback = [c.det.merge_gap + c.det.min_points + 1 for c in cands]
    frame = pd.DataFrame(
        {
            "pos": np.arange(len(cands)),
            "metric_id": np.array([c.mid for c in cands], dtype="int32"),
            "detector": [c.det.type for c in cands],
            "first_ts": _us(first),
            "lo": _us(first) - _PRIOR_REACH,
            "n": np.array(lookback, dtype="int64"),
        }
    )
    # the still-open anomaly of each candidate (the newest ending before its new points)
    opens = anomalies_repo.last_anomalies_before(cur, frame)
    # the last scores before the new ones: searched within a day first (the store's time order
    # prunes the scan), the rare candidate with fewer there asks for its whole past
    rows = anomalies_repo.last_scores_before(cur, frame, lo=frame["lo"].min())
    prior: dict[int, list[tuple[Any, Any]]] = {}
    for pos, ts, score in rows:
        prior.setdefault(int(pos), []).append((ts, score))
    for pos, cand in enumerate(cands):
        got = sorted(prior.get(pos, []), key=lambda r: r[0], reverse=True)
        if len(got) < lookback[pos]:
            got = anomalies_repo.scores_before(
                cur,
                metric_id=cand.mid,
                detector=cand.det.type,
                before=frame["first_ts"].iloc[pos],
                limit=lookback[pos],
            )
        if pos in opens and got:
            open_start, open_end = opens[pos].start, opens[pos].end
            # only an anomaly that still touches the look-back can continue into the new points
            if pd.Timestamp(open_start) < pd.Timestamp(got[-1][0]) <= pd.Timestamp(open_end):
                got = anomalies_repo.scores_between(
                    cur,
                    metric_id=cand.mid,
                    detector=cand.det.type,
                    start=open_start,
                    before=frame["first_ts"].iloc[pos],
                )
        prior[pos] = got[::-1]
    # windows over the prior and the new scores
    found: list[
        tuple[int, int, int, int, float, bool]
    ] = []  # cand, start, end, peak (ns), peak score, ongoing
    for pos, cand in enumerate(cands):
        old = prior[pos]
        old_ts = pd.DatetimeIndex([r[0] for r in old]).as_unit("ns").asi8 if old else np.empty(0, "int64")
        stamps = np.concatenate([np.asarray(old_ts, dtype="int64"), cand.ts])
        combined = np.concatenate(
            [np.array([np.nan if r[1] is None else float(r[1]) for r in old], dtype="float64"), cand.scores]
        )
        flags = np.where(np.isnan(combined), -np.inf, combined) >= cand.det.threshold
        last_index = combined.size - 1
        for start, end in alarm_windows(flags, min_points=cand.det.min_points, merge_gap=cand.det.merge_gap):
            if end - 1 < len(old):
                continue  # entirely before the new points: recorded by an earlier tick
            segment = combined[start:end]
            peak_pos = start + int(np.nanargmax(segment))
            found.append(
                (
                    pos,
                    int(stamps[start]),
                    int(stamps[end - 1]),
                    int(stamps[peak_pos]),
                    float(np.nanmax(segment)),
                    last_index - (end - 1) <= cand.det.merge_gap,
                )
            )
    if not found:
        return
    # the value at the peak, what is usual at that hour (expected value and band) and whether it is a
    # habit, from one read of the candidates' points; an anomaly whose metric stays beyond its band
    # after the flagged points is held open through them (its end follows, see postrules.usual.held_through)
    read = sorted({cands[f[0]].mid for f in found})
    read_lo, read_hi = (
        min(f[3] for f in found) - USUAL_REACH.value,
        max(int(cands[f[0]].ts[-1]) for f in found),
    )
    points = _points_of(cur, read, lo=read_lo, hi=read_hi, include_hi=True)
    # these metrics join an incident now: its data-quality read takes their day before from here
    monitors_repo.offer_points(store, read, points, lo=read_lo, hi=read_hi)
    values, expecteds, lowers, uppers, habits = [], [], [], [], []
    for k, (pos, start_ns, end_ns, peak_ns, score, ongoing) in enumerate(found):
        cand = cands[pos]
        ts, vals = points.get(cand.mid, (np.empty(0, "int64"), np.empty(0)))
        at = int(np.searchsorted(ts, peak_ns))
        values.append(float(vals[at]) if at < ts.size and ts[at] == peak_ns else np.nan)
        habits.append(habitual(ts, vals, peak_ns, values[-1]))
        expected, lower, upper = usual_at(ts, vals, peak_ns)
        expecteds.append(expected)
        lowers.append(lower)
        uppers.append(upper)
        lo_pos = int(np.searchsorted(ts, end_ns, side="right"))
        hi_pos = int(np.searchsorted(ts, int(cand.ts[-1]), side="right"))
        reach = held_through(
            still_outside(vals[lo_pos:hi_pos], values[-1], expected, lower, upper), cand.det.merge_gap
        )
        if reach >= 0:
            end_ns = int(ts[lo_pos + reach])
            ongoing = hi_pos - (lo_pos + reach + 1) <= cand.det.merge_gap
            found[k] = (pos, start_ns, end_ns, peak_ns, score, ongoing)
    # a run that starts while the series' previous anomaly is still held open (the metric stayed beyond
    # that anomaly's band up to it) continues that anomaly: same start, so the same alert, as a run held
    # into the next is one anomaly in services.detection (a long outage a detector flags again as it
    # deepens is one anomaly, not one per tick)
    for k, (pos, start_ns, end_ns, peak_ns, score, ongoing) in enumerate(found):
        op = opens.get(pos)
        if op is None:
            continue
        o_start, o_end = _ns(op.start), _ns(op.end)
        ts, vals = points.get(cands[pos].mid, (np.empty(0, "int64"), np.empty(0)))
        if not o_start < start_ns or ts.size == 0 or o_end < ts[0]:
            continue  # the same start (a window found again), or the points between not read
        lo, hi = (
            int(np.searchsorted(ts, o_end, side="right")),
            int(np.searchsorted(ts, start_ns, side="left")),
        )
        reach = held_through(
            still_outside(vals[lo:hi], op.value, op.expected, op.lower, op.upper), cands[pos].det.merge_gap
        )
        if (hi - lo) - (reach + 1) > cands[pos].det.merge_gap:
            continue  # the metric came back before this run: a new anomaly
        if op.peak_score >= score:  # the earlier peak stays the anomaly's peak
            peak_ns, score = _ns(op.peak), op.peak_score
            values[k] = np.nan if op.value is None else float(op.value)
            habits[k] = habitual(ts, vals, peak_ns, values[k])
            expecteds[k], lowers[k], uppers[k] = op.expected, op.lower, op.upper
        found[k] = (pos, o_start, end_ns, peak_ns, score, ongoing)
    # a run held into the next run of the same series is one anomaly (as services.detection)
    keep: list[int] = []
    for k, f in enumerate(found):
        if keep and found[keep[-1]][0] == f[0] and f[1] <= found[keep[-1]][2]:
            prev = found[keep[-1]]
            end_ns = max(prev[2], f[2])
            if f[4] > prev[4]:
                found[k] = (f[0], prev[1], end_ns, f[3], f[4], f[5] or prev[5])
                keep[-1] = k
            else:
                found[keep[-1]] = (prev[0], prev[1], end_ns, prev[3], prev[4], prev[5] or f[5])
            continue
        keep.append(k)
    # a lone reading within a band width of the usual band, over by now, is no anomaly (as detection's
    # anomaly_windows: postrules.usual.ordinary_blip); one at the edge of the data may be a beginning
    keep = [
        k
        for k in keep
        if found[k][5]
        or not ordinary_blip(
            _span_points(points, cands[found[k][0]].mid, found[k][1], found[k][2]),
            values[k],
            lowers[k],
            uppers[k],
        )
    ]
    found = [found[k] for k in keep]
    values, expecteds, lowers, uppers, habits = (
        [values[k] for k in keep],
        [expecteds[k] for k in keep],
        [lowers[k] for k in keep],
        [uppers[k] for k in keep],
        [habits[k] for k in keep],
    )
    windows = pd.DataFrame(
        {
            "pos": np.arange(len(found)),
            "metric_id": np.array([cands[f[0]].mid for f in found], dtype="int32"),
            "detector": [cands[f[0]].det.type for f in found],
            "start_ts": _us([f[1] for f in found]),
            "end_ts": _us([f[2] for f in found]),
            "peak_ts": _us([f[3] for f in found]),
            "peak_score": np.array([f[4] for f in found], dtype="float64"),
        }
    )
    windows["value"] = np.array(values, dtype="float64")
    windows["expected"] = pd.array(expecteds, dtype="Float64")
    windows["lower"] = pd.array(lowers, dtype="Float64")
    windows["upper"] = pd.array(uppers, dtype="Float64")
    # a window that grew backwards (merged with an earlier one) replaces it
    anomalies_repo.record_anomalies(cur, windows)
    infos = monitors_repo.metric_infos(cur, sorted({c.mid for c in cands}))
    for k, (pos, start_ns, end_ns, peak_ns, peak_score, ongoing) in enumerate(found):
        cand = cands[pos]
        info = infos[cand.mid]
        expected = expecteds[k]
        anomaly = FoundAnomaly(
            metric_id=cand.mid,
            metric=info.name,
            labels=dict(info.labels),
            detector=cand.det.type,
            start=pd.Timestamp(start_ns, unit="ns", tz="UTC"),
            end=pd.Timestamp(end_ns, unit="ns", tz="UTC"),
            peak=pd.Timestamp(peak_ns, unit="ns", tz="UTC"),
            peak_score=peak_score,
            value=values[k],
            expected=expected,
            ongoing=ongoing,
            lower=lowers[k],
            upper=uppers[k],
            habitual=habits[k],
            last_reading=pd.Timestamp(int(cand.ts[-1]), unit="ns", tz="UTC"),
        )
        report.anomalies.append(anomaly)
        firing_now[anomaly.key] = {
            "series": cand.key,
            "metric_id": anomaly.metric_id,
            "detector": anomaly.detector,
            "start": anomaly.start.isoformat(),
        }


def _ns(stamp: Any) -> int:
    """A stored (naive UTC) timestamp as ns since the epoch."""
    return int(pd.Timestamp(stamp).as_unit("ns").value)


def _span_points(
    points: dict[int, tuple[np.ndarray, np.ndarray]], mid: int, start_ns: int, end_ns: int
) -> int:
    """How many of the metric's points lie in ``[start_ns, end_ns]``."""
    ts = points.get(mid, (np.empty(0, "int64"), np.empty(0)))[0]
    return int(np.searchsorted(ts, end_ns, side="right") - np.searchsorted(ts, start_ns, side="left"))
