"""Use-case: the overview of every metric — a sparkline, the anomaly rate and a state — in a few queries."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from telewatch.store import overview as overview_store
from telewatch.store import repo
from telewatch.store.db import Store
from telewatch.store.repo import MetricInfo

SILENT_AFTER = pd.Timedelta(minutes=15)  # no point for this long (or 3 of the metric's steps): "no data"
STALE_AFTER = pd.Timedelta(days=1)  # no point for this long: "stale" (an upload, or a source gone)
GAP_STEPS = 3  # a sparkline bridges a gap of up to this many of the metric's steps; a longer one breaks it


@dataclass(frozen=True)
class MetricSummary:
    metric: MetricInfo
    # the last ``hours`` hours as averages over ``buckets`` buckets, or over fewer, wider ones for a metric
    # sparser than that (an hourly metric: one per hour); a gap of up to GAP_STEPS of the metric's own
    # steps is bridged (linear), a longer one stays None (the sparkline breaks there)
    spark: list[float | None]
    anomalies: int  # stored anomaly windows, all detectors
    anomaly_rate: float  # share of the metric's points inside an anomaly window
    last_anomaly: pd.Timestamp | None
    # "anomalous" (an anomaly in the last hour of data); "no data" (no points at all, or none for
    # ``silent_minutes``); "stale" (none for over a day); "not scored" (no detection has scored it yet);
    # "ok" (scored, fresh, no recent anomaly)
    state: str
    silent_minutes: int | None = None  # minutes since the last point, when that is unusually long


def summarize_metrics(
    store: Store,
    *,
    group: str | None = None,
    selector: Mapping[str, str] | None = None,
    hours: int = 24,
    buckets: int = 48,
    now: pd.Timestamp | None = None,
) -> list[MetricSummary]:
    """One summary per metric (filtered by group and labels); three aggregate queries in all, and a
    fourth for the steps of metrics sparser than a sparkline bucket."""
    cur = store.cursor()
    metrics = repo.list_metrics(cur, group=group, selector=selector)
    if not metrics:
        return []
    ids = [m.id for m in metrics]
    counts = overview_store.anomaly_counts(cur, ids)
    inside = overview_store.points_in_anomalies(cur, ids)
    scored = overview_store.scored_metric_ids(cur, ids) | set(counts)
    now = pd.Timestamp.now(tz="UTC") if now is None else now
    width_s = max(1, int((pd.Timedelta(hours=hours) / buckets).total_seconds()))
    # sums and counts per base bucket (ceil: the window (last - hours, last] maps onto 0..buckets-1),
    # merged below into buckets no finer than each metric's own step
    sums: dict[int, dict[int, tuple[float, int]]] = {m.id: {} for m in metrics}
    for metric_id, bucket, total, n in overview_store.spark_bucket_sums(
        cur, ids, hours=hours, width_s=width_s
    ):
        if total is not None and n:
            sums[metric_id][min(max(bucket, 0), buckets - 1)] = (total, n)
    # a step longer than a bucket leaves at most one point per bucket: only such sparse metrics need
    # their step looked up (a window over their points; a minute metric's buckets hold ~30 points each)
    sparse = [
        m_id for m_id, by_bucket in sums.items() if by_bucket and max(c for _, c in by_bucket.values()) <= 1
    ]
    steps = overview_store.recent_step_seconds(cur, sparse, hours=hours) if sparse else {}
    out = []
    for m in metrics:
        count, last = counts.get(m.id, (0, None))
        total = m.points + m.missing
        silent = now - m.last_ts if m.last_ts is not None else None
        quiet_after = max(SILENT_AFTER, pd.Timedelta(seconds=3 * steps.get(m.id, 0.0)))
        silent_minutes = (
            int(silent.total_seconds() // 60) if silent is not None and silent > quiet_after else None
        )
        if m.points == 0:
            state = "no data"
        elif last is not None and m.last_ts is not None and m.last_ts - last <= pd.Timedelta(hours=1):
            state = "anomalous"
        elif silent is not None and silent > STALE_AFTER:
            state = "stale"
        elif silent_minutes is not None:
            state = "no data"
        elif m.id not in scored:
            state = "not scored"
        else:
            state = "ok"
        line = _spark_line(sums[m.id], buckets=buckets, width_s=width_s, step_s=steps.get(m.id))
        out.append(
            MetricSummary(
                metric=m,
                spark=[None if v is None or np.isnan(v) else round(v, 6) for v in line],
                anomalies=count,
                anomaly_rate=inside.get(m.id, 0) / total if total else 0.0,
                last_anomaly=last,
                state=state,
                silent_minutes=silent_minutes,
            )
        )
    return out


def _spark_line(
    sums: Mapping[int, tuple[float, int]], *, buckets: int, width_s: int, step_s: float | None
) -> list[float | None]:
    """Averages over buckets no finer than the metric's step, short gaps bridged.

    ``sums`` maps a base bucket (``width_s`` seconds, ``buckets`` of them) to (sum, count). An hourly
    metric under 30-minute buckets gets 24 one-hour buckets instead of 48 half-filled ones:

    >>> hourly = {b: (float(b), 1) for b in range(1, 48, 2)}
    >>> line = _spark_line(hourly, buckets=48, width_s=1800, step_s=3600.0)
    >>> len(line), line[:3], None in line
    (24, [1.0, 3.0, 5.0], False)
    >>> del hourly[21]  # one missing hour: bridged; six missing hours: a break
    >>> for b in range(29, 41, 2):
    ...     del hourly[b]
    >>> line = _spark_line(hourly, buckets=48, width_s=1800, step_s=3600.0)
    >>> line[10], [i for i, v in enumerate(line) if v is None]
    (21.0, [14, 15, 16, 17, 18, 19])
    """
    k = max(1, math.ceil((step_s or 0) / width_s - 1e-9))  # base buckets per bucket
    n = math.ceil(buckets / k)
    # the last bucket ends at the last point: group base buckets from the end
    merged: dict[int, tuple[float, int]] = {}
    for b, (total, count) in sums.items():
        j = n - 1 - (buckets - 1 - b) // k
        if j >= 0:
            t, c = merged.get(j, (0.0, 0))
            merged[j] = (t + total, c + count)
    line: list[float | None] = [merged[j][0] / merged[j][1] if j in merged else None for j in range(n)]
    if step_s:
        longest = max(0, int(GAP_STEPS * step_s / (k * width_s) + 1e-9) - 1)  # missing buckets bridged
        known = [(j, v) for j, v in enumerate(line) if v is not None]
        for (a, va), (b, vb) in itertools.pairwise(known):
            if 1 < b - a <= longest + 1:
                for j in range(a + 1, b):
                    line[j] = va + (vb - va) * (j - a) / (b - a)
    return line
