"""Use-case: the overview of every metric — a sparkline, the anomaly rate and a state — in a few queries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from telewatch.store import repo
from telewatch.store.db import Store
from telewatch.store.repo import MetricInfo


@dataclass(frozen=True)
class MetricSummary:
    metric: MetricInfo
    spark: list[float | None]  # the last ``hours`` hours in ``buckets`` averages
    anomalies: int  # stored anomaly windows, all detectors
    anomaly_rate: float  # share of the metric's points inside an anomaly window
    last_anomaly: pd.Timestamp | None
    state: str  # "anomalous" (an anomaly in the last hour of data), "ok", "no data"


def summarize_metrics(
    store: Store,
    *,
    group: str | None = None,
    selector: Mapping[str, str] | None = None,
    hours: int = 24,
    buckets: int = 48,
) -> list[MetricSummary]:
    """One summary per metric (filtered by group and labels); three aggregate queries in all."""
    cur = store.cursor()
    metrics = repo.list_metrics(cur, group=group, selector=selector)
    if not metrics:
        return []
    ids = [m.id for m in metrics]
    marks = ",".join("?" for _ in ids)
    counts = {
        int(r[0]): (int(r[1]), r[2])
        for r in cur.execute(
            "SELECT metric_id, count(*), max(end_ts) FROM anomalies"
            f" WHERE metric_id IN ({marks}) GROUP BY metric_id",
            ids,
        ).fetchall()
    }
    inside = {
        int(r[0]): int(r[1])
        for r in cur.execute(
            "SELECT p.metric_id, count(DISTINCT p.ts) FROM points p JOIN anomalies a"
            " ON a.metric_id = p.metric_id AND p.ts BETWEEN a.start_ts AND a.end_ts"
            f" WHERE p.metric_id IN ({marks}) GROUP BY p.metric_id",
            ids,
        ).fetchall()
    }
    width = pd.Timedelta(hours=hours) / buckets
    width_s = max(1, int(width.total_seconds()))
    spark: dict[int, dict[int, float]] = {}
    for m in metrics:
        spark[m.id] = {}
    rows = cur.execute(
        "SELECT p.metric_id, CAST(floor((epoch(p.ts) - epoch(l.last_ts - ?::INTERVAL)) / ?) AS BIGINT) AS b,"
        " avg(p.value) FROM points p JOIN (SELECT metric_id, max(ts) AS last_ts FROM points"
        f" WHERE metric_id IN ({marks}) GROUP BY metric_id) l ON l.metric_id = p.metric_id"
        " WHERE p.ts > l.last_ts - ?::INTERVAL GROUP BY ALL",
        [f"{hours} hours", width_s, *ids, f"{hours} hours"],
    ).fetchall()
    for metric_id, bucket, value in rows:
        if value is not None and 0 <= int(bucket) < buckets + 1:
            spark[int(metric_id)][min(int(bucket), buckets - 1)] = float(value)
    out = []
    for m in metrics:
        count, last_end = counts.get(m.id, (0, None))
        last = repo._utc(last_end) if last_end is not None else None
        total = m.points + m.missing
        if m.points == 0:
            state = "no data"
        elif last is not None and m.last_ts is not None and m.last_ts - last <= pd.Timedelta(hours=1):
            state = "anomalous"
        else:
            state = "ok"
        values = spark[m.id]
        line = [values.get(b) for b in range(buckets)]
        out.append(
            MetricSummary(
                metric=m,
                spark=[None if v is None or np.isnan(v) else round(v, 6) for v in line],
                anomalies=count,
                anomaly_rate=inside.get(m.id, 0) / total if total else 0.0,
                last_anomaly=last,
                state=state,
            )
        )
    return out
