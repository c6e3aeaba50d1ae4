"""Fan detection out over many metrics on Dask (``dask.distributed``).

:func:`score_many` splits the metrics into chunks and scores each chunk with
:func:`telewatch.services.batch.score_matrix` on a Dask worker. Without a scheduler address it
starts an embedded ``LocalCluster`` (threads in this process, so nothing needs pickling across
processes and no ``__main__`` guard is needed for it) and closes it afterwards; with an address
(``tcp://host:8786``, setting ``TELEWATCH_DASK_SCHEDULER``) it connects to that cluster, whose
workers must have telewatch installed.

Results are the same as the single-process path: each chunk runs the very same code.

Scripts that start a process-based cluster need the ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from telewatch.core.errors import ConfigError, ValidationError
from telewatch.services.batch import score_matrix

__all__ = ["score_many"]


def _score_chunk(
    values: np.ndarray, index: pd.DatetimeIndex, detector: str, params: dict[str, Any]
) -> np.ndarray:
    return score_matrix(values, index, detector=detector, params=params)


def _groups(
    series: Mapping[str, pd.Series] | pd.DataFrame,
) -> list[tuple[list[str], pd.DatetimeIndex, np.ndarray]]:
    """Metrics grouped by identical timestamps: (names, index, values as metrics × time). A frame's
    columns share its index: one group, taken as one matrix (no per-column work)."""
    if isinstance(series, pd.DataFrame):
        if series.columns.has_duplicates:
            raise ValidationError("score_many: duplicate metric names")
        if not isinstance(series.index, pd.DatetimeIndex):
            raise ValidationError("score_many: the frame's index must be timestamps")
        if series.empty and not len(series.columns):
            return []
        frame = series if series.index.is_monotonic_increasing else series.sort_index(kind="stable")
        try:
            values = np.ascontiguousarray(frame.to_numpy(dtype="float64").T)
        except (TypeError, ValueError) as exc:
            bad = next((str(c) for c in frame.columns if frame[c].dtype.kind not in "biuf"), "?")
            raise ValidationError(f"score_many: metric {bad!r}: values must be numeric ({exc})") from exc
        return [([str(c) for c in frame.columns], pd.DatetimeIndex(frame.index), values)]
    if isinstance(series, Mapping):
        items = {}
        for name, s in series.items():
            if not isinstance(s, pd.Series):
                raise ValidationError(f"score_many: metric {name!r} is a {type(s).__name__}, not a Series")
            items[str(name)] = s
    else:
        raise ValidationError(
            f"score_many: expected a dict of Series or a DataFrame, got {type(series).__name__}"
        )
    groups: dict[bytes, tuple[list[str], pd.DatetimeIndex, list[np.ndarray]]] = {}
    for name, s in items.items():
        if not isinstance(s.index, pd.DatetimeIndex):
            raise ValidationError(f"score_many: metric {name!r}: the index must be timestamps")
        s = s.sort_index()
        index = pd.DatetimeIndex(s.index)
        key = index.as_unit("ns").asi8.tobytes() + str(index.tz).encode()
        try:
            row = s.to_numpy(dtype="float64")
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"score_many: metric {name!r}: values must be numeric ({exc})") from exc
        groups.setdefault(key, ([], index, []))
        groups[key][0].append(name)
        groups[key][2].append(row)
    return [(names, index, np.vstack(rows)) for names, index, rows in groups.values()]


def score_many(
    series: Mapping[str, pd.Series] | pd.DataFrame,
    *,
    detector: str = "novelty",
    params: Mapping[str, Any] | None = None,
    scheduler: str | None = None,
    n_workers: int = 2,
    chunk_size: int = 64,
    timeout: float = 10.0,
) -> dict[str, pd.Series]:
    """Fit and score every metric on Dask; returns the scores by metric name.

    ``series`` is a dict of series or a frame with one column per metric; metrics that share
    their timestamps are scored together as one matrix, each on its own timestamps.
    ``scheduler`` is a Dask scheduler address; ``None`` starts an embedded ``LocalCluster`` of
    ``n_workers`` single-threaded workers for this call. ``chunk_size`` metrics go to each task; ``timeout`` seconds to reach the scheduler.
    """
    if n_workers < 1:
        raise ConfigError(f"score_many: n_workers must be at least 1, got {n_workers}")
    if chunk_size < 1:
        raise ConfigError(f"score_many: chunk_size must be at least 1, got {chunk_size}")
    groups = _groups(series)
    if not groups:
        return {}
    kwargs = dict(params or {})

    from dask.distributed import Client, LocalCluster

    cluster: LocalCluster | None = None
    if scheduler is None:
        cluster = LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=False, dashboard_address=":0"
        )
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}") from exc
    try:
        tasks = []
        for names, index, values in groups:
            index_f = client.scatter(index, broadcast=True)
            starts = list(range(0, len(names), chunk_size))
            # the chunks go to the cluster as data (scattered), not inside the task graph
            chunks_f = client.scatter([values[a : a + chunk_size] for a in starts])
            for start, chunk_f in zip(starts, chunks_f, strict=True):
                future = client.submit(_score_chunk, chunk_f, index_f, detector, kwargs, pure=False)
                tasks.append((names[start : start + chunk_size], index, future))
        chunks = client.gather([f for _, _, f in tasks])
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    out: dict[str, pd.Series] = {}
    for (names, index, _), scores in zip(tasks, chunks, strict=True):
        for name, row in zip(names, scores, strict=True):
            out[name] = pd.Series(row, index=index, name=name)
    keys = series.columns if isinstance(series, pd.DataFrame) else series.keys()
    order = [str(k) for k in keys]
    return {name: out[name] for name in order}
