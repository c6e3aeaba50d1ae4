"""The tick's first step: the fetched points of every series stored in one transaction (metric ids looked up at once)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from telewatch.monitors.config import MonitorSpec
from telewatch.services.monitor.model import MonitorRunReport
from telewatch.sources.base import FetchedBatch, FetchedSeries, series_key
from telewatch.store import monitors as monitors_repo
from telewatch.store import repo
from telewatch.store.db import Store


def _store_points(spec: MonitorSpec, *, store: Store, batch: FetchedBatch, report: MonitorRunReport) -> None:
    """Store the fetched points of all series in one transaction: metric ids looked up in one query
    (new metrics created one by one, a rare event), the points and the monitor's series written
    with one bulk statement each."""
    valid = np.concatenate([[0], np.cumsum(~np.isnan(batch.values))])
    # an all-missing series stores nothing
    batch = batch.select(valid[batch.offsets[1:]] - valid[batch.offsets[:-1]] > 0)
    if not len(batch):
        return
    canonical: dict[tuple[tuple[str, str], ...], str] = {}
    labels = [{**spec.labels, **lab} for lab in batch.labels]
    names = pd.DataFrame(
        {
            "pos": np.arange(len(batch), dtype="int64"),
            "name": batch.names,
            "labels": [_canonical_labels(lab, canonical) for lab in labels],
        }
    )
    _store_batch(spec, store=store, batch=batch, labels=labels, names=names)
    report.points += int(batch.ts.size)
    report.series += len(batch)


def _canonical_labels(labels: dict[str, str], seen: dict[tuple[tuple[str, str], ...], str]) -> str:
    """``repo.canonical_labels``, computed once per distinct label set of a tick."""
    key = tuple(sorted(labels.items()))
    if key not in seen:
        seen[key] = repo.canonical_labels(labels)
    return seen[key]


def _store_batch(
    spec: MonitorSpec,
    *,
    store: Store,
    batch: FetchedBatch,
    labels: list[dict[str, str]],
    names: pd.DataFrame,
) -> None:
    with store.transaction(series=True) as tx:
        ids = monitors_repo.metric_ids_of(tx, names)
        if ids and (spec.owner is not None or spec.group is not None):
            monitors_repo.claim_metrics(tx, sorted(set(ids.values())), owner=spec.owner, group=spec.group)
        for pos, name in enumerate(batch.names):
            if pos not in ids:
                ids[pos] = repo.upsert_metric(
                    tx, name=name, labels=labels[pos], owner=spec.owner, group=spec.group
                )
        metric_ids = np.array([ids[p] for p in range(len(batch))], dtype="int32")
        points = pd.DataFrame(
            {
                "metric_id": np.repeat(metric_ids, batch.counts),
                "ts": batch.ts.view("datetime64[ns]").astype("datetime64[us]"),
                "value": batch.values,
            }
        ).drop_duplicates(["metric_id", "ts"], keep="last")  # two series of one metric: the last wins
        latest = pd.DataFrame(
            {
                "series_key": [series_key(n, lab) for n, lab in zip(batch.names, labels, strict=True)],
                "metric_id": metric_ids,
                "last_point": batch.ts[batch.offsets[1:] - 1].view("datetime64[ns]").astype("datetime64[us]"),
            }
        ).drop_duplicates("series_key", keep="last")
        repo.replace_points(tx, points)  # points fetched again (a re-fetch) overwrite the stored ones
        monitors_repo.record_series_batch(tx, monitor=spec.name, latest=latest)


def _store_points_per_series(
    spec: MonitorSpec, *, store: Store, fetched: list[FetchedSeries], report: MonitorRunReport
) -> None:
    with store.transaction(series=True) as tx:
        for item in fetched:
            values = item.values.dropna() if item.values.isna().all() else item.values
            if values.empty:
                continue
            labels = {**spec.labels, **item.labels}
            metric_id = repo.upsert_metric(
                tx, name=item.name, labels=labels, owner=spec.owner, group=spec.group
            )
            repo.write_points(tx, metric_id, values)
            key = series_key(item.name, labels)
            monitors_repo.record_series(
                tx, monitor=spec.name, series_key=key, metric_id=metric_id, last_point=values.index[-1]
            )
            report.points += len(values)
            report.series += 1
