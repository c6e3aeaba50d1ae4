"""Use-case: load the demo system (and the shipped NAB samples) into the store."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from telewatch.demo import DemoData, generate_demo, nab_samples
from telewatch.store import repo
from telewatch.store.db import Store


@dataclass(frozen=True)
class DemoLoadReport:
    metrics: int
    points: int
    incidents: int
    first_ts: pd.Timestamp
    last_ts: pd.Timestamp
    nab_samples: int


def load_demo(
    store: Store,
    *,
    seed: int = 7,
    days: int = 30,
    end: pd.Timestamp | None = None,
    with_nab: bool = True,
    data: DemoData | None = None,
) -> DemoLoadReport:
    """Generate the demo month ending at ``end`` (default: now, floored to the minute) and store it,
    with the planted incidents as labelled windows (source ``demo``).

    The demo metrics are replaced, not appended to: a reload leaves one month, and what was
    computed from the old one (scores, anomalies) is dropped."""
    if data is None:
        if end is None:
            end = pd.Timestamp.now(tz="UTC").floor("min")
        data = generate_demo(seed=seed, days=days, end=end)
    points = 0
    samples = nab_samples() if with_nab else []
    with store.transaction(series=True) as tx:
        ids: dict[str, int] = {}
        for metric in data.metrics:
            ids[metric.name] = repo.upsert_metric(
                tx,
                name=metric.name,
                labels=metric.labels,
                unit=metric.unit,
                owner=metric.owner,
                group=metric.group,
                description=metric.description,
            )
            repo.clear_metric_data(tx, ids[metric.name])
            points += repo.write_points(tx, ids[metric.name], data.frame[metric.name])
        rows = [
            (ids[name], inc.start, inc.end, inc.kind, "demo", inc.description)
            for inc in data.incidents
            for name in inc.metrics
        ]
        repo.write_label_windows(tx, rows)
        for name, values, windows in samples:
            metric_id = repo.upsert_metric(
                tx, name=name, group="nab-samples", description="NAB v1.1 sample (MIT, Numenta)"
            )
            repo.clear_metric_data(tx, metric_id)
            points += repo.write_points(tx, metric_id, values)
            repo.write_label_windows(tx, [(metric_id, s, e, "anomaly", "nab", None) for s, e in windows])
    return DemoLoadReport(
        metrics=len(data.metrics) + len(samples),
        points=points,
        incidents=len(data.incidents),
        first_ts=data.frame.index[0],
        last_ts=data.frame.index[-1],
        nab_samples=len(samples),
    )
