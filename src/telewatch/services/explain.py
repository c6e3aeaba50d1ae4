"""Use-case: explain a time window — which stored metrics changed with it, how, and who moved first.

The metrics (a group, a label selector, explicit ids, or all) are read from the store in one query,
bucketed onto a regular grid (``step``), and handed as one matrix to the window scan
(:func:`telewatch.incidents.ranking.rank_window`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from telewatch.core.errors import NotFoundError, ValidationError
from telewatch.incidents.ranking import (
    Evidence,
    RankedMetric,
    ScanConfig,
    left_out_counts,
    rank_evidence,
    window_evidence,
)
from telewatch.services.catalog import format_step
from telewatch.services.catalog import step_duration as parse_step
from telewatch.store import overview as overview_store
from telewatch.store.db import Store

__all__ = [
    "ExplainResult",
    "ExplainedMetric",
    "ScannedRows",
    "explain_window",
    "format_step",
    "parse_step",
    "parse_window",
]

DAY = pd.Timedelta("1D")


@dataclass(frozen=True)
class ExplainedMetric:
    """A ranked metric of an explanation, with its catalogue identity."""

    metric_id: int
    metric: str
    group: str | None
    ranked: RankedMetric


@dataclass(frozen=True)
class ScannedRows:
    """Every scanned metric in the scan's row order, with the scan's evidence (one entry per row):
    for callers that need a property of all metrics (e.g. :func:`telewatch.incidents.ranking.directions`)
    without a formatted row each."""

    metric_ids: list[int]
    names: list[str]
    groups: list[str | None]
    evidence: Evidence


@dataclass
class ExplainResult:
    start: pd.Timestamp
    end: pd.Timestamp
    step: pd.Timedelta
    baseline_start: pd.Timestamp
    target: str | None
    metrics_scanned: int
    ranked: list[ExplainedMetric] = field(default_factory=list)
    seconds: float = 0.0
    scan_seconds: float = 0.0
    read_seconds: float = 0.0  # reading the metrics × time matrices (values, scores) from the store
    scanned: ScannedRows | None = None  # all scanned metrics and their evidence (set by explain_window)
    # scanned metrics left out of the ranking, by reason: ``no_data`` (no point in the window),
    # ``no_baseline`` (too few points before it to compare with)
    left_out: dict[str, int] = field(default_factory=dict)

    @property
    def metrics_left_out(self) -> int:
        return sum(self.left_out.values())

    def left_out_text(self) -> str:
        """``2 metrics left out (no data in the window)``, or "" when none was.

        >>> r = ExplainResult(pd.Timestamp(0), pd.Timestamp(1), pd.Timedelta("1min"), pd.Timestamp(0), None, 3)
        >>> r.left_out = {"no_data": 2, "no_baseline": 1}
        >>> r.left_out_text()
        '3 metrics left out (2 without data in the window, 1 with too little data before it)'
        """
        n = self.metrics_left_out
        if not n:
            return ""
        why = {"no_data": "without data in the window", "no_baseline": "with too little data before it"}
        parts = [f"{count} {why.get(k, k)}" for k, count in self.left_out.items() if count]
        return f"{n} metric{'s' if n != 1 else ''} left out ({', '.join(parts)})"


def _utc(ts: pd.Timestamp | str, what: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(ts)
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"{what}: not a time: {ts!r}") from exc
    if stamp is pd.NaT:
        raise ValidationError(f"{what}: not a time: {ts!r}")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def parse_window(text: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Parse ``FROM..TO`` (ISO times, UTC unless a zone is given) into a UTC pair.

    >>> parse_window("2026-11-01T10:00..2026-11-01T11:30")
    (Timestamp('2026-11-01 10:00:00+0000', tz='UTC'), Timestamp('2026-11-01 11:30:00+0000', tz='UTC'))
    """
    start, sep, end = text.partition("..")
    if not sep or not start.strip() or not end.strip():
        raise ValidationError(f"window {text!r} must be FROM..TO, e.g. 2026-11-01T10:00..2026-11-01T11:00")
    return _utc(start.strip(), "window start"), _utc(end.strip(), "window end")


def _select_metrics(
    store: Store,
    *,
    group: str | None,
    selector: Mapping[str, str] | None,
    metric_ids: Sequence[int] | None,
) -> tuple[list[int], list[str], list[dict[str, str]], list[str | None]]:
    """Ids, names, labels and groups of the chosen metrics (by id), as columns: at 10,000 metrics
    no tuple per metric (each would count towards the next garbage collection)."""
    return overview_store.select_metric_columns(
        store.cursor(), group=group, selector=selector, metric_ids=metric_ids
    )


def _find_metric(store: Store, ref: str | int) -> tuple[int, str, dict[str, str], str | None]:
    """One metric by id or name, as :func:`telewatch.store.repo.get_metric` finds it, from the
    ``metrics`` table alone (``get_metric`` also counts the metric's points: a scan of the store)."""
    con = store.cursor()
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        found = overview_store.metric_identity(con, int(ref))
        if found is not None:
            return found
        if isinstance(ref, int):
            raise NotFoundError(f"no metric with id {ref}")
    rows = overview_store.metric_identities_named(con, str(ref))
    if not rows:
        raise NotFoundError(f"no metric named {ref!r}")
    if len(rows) > 1:
        slices = "; ".join(_display(r[1], r[2]) for r in rows[:5])
        raise ValidationError(
            f"metric name {ref!r} has {len(rows)} slices ({slices}); name one by its labels or id"
        )
    return rows[0]


def _display(name: str, labels: dict[str, str]) -> str:
    return name if not labels else name + "{" + ",".join(f"{k}={v}" for k, v in labels.items()) + "}"


def infer_step(
    store: Store, metric_ids: Sequence[int], start: pd.Timestamp, end: pd.Timestamp
) -> pd.Timedelta:
    """The typical spacing of points of ``metric_ids`` around the window (1 min when unknown).

    Read over the window and the four window lengths before it, at least six hours: a short window
    over hourly data holds one point or none, which would leave the spacing unknown."""
    median = overview_store.median_point_spacing(
        store.cursor(), metric_ids[:50], start - max(4 * (end - start), pd.Timedelta("6h")), end
    )
    seconds = median if median is not None else 60.0
    return pd.Timedelta(seconds=max(1, round(seconds)))


def _layers(spans: Sequence[tuple[int, int]]) -> list[list[int]]:
    """Split block indices into layers whose blocks do not overlap (usually one layer)."""
    layers: list[list[int]] = []
    for i in sorted(range(len(spans)), key=lambda j: spans[j]):
        for layer in layers:
            if spans[layer[-1]][1] <= spans[i][0]:
                layer.append(i)
                break
        else:
            layers.append([i])
    return layers


def read_blocks(
    store: Store,
    metric_ids: Sequence[int],
    *,
    origin: pd.Timestamp,
    step: pd.Timedelta,
    blocks: Sequence[tuple[int, int]],
    table: str = "points",
) -> npt.NDArray[np.float64]:
    """Values of ``metric_ids`` (rows) on grid columns ``[a, b)`` of each block, blocks side by side.

    Column ``k`` of the grid is the bucket ``[origin + k·step, origin + (k+1)·step)``; a bucket holds
    the mean of its points (NULL/NaN skipped), NaN where it has none. ``table`` is ``points`` or
    ``scores`` (scores averaged over detectors). One query reads every metric and block (one per
    layer of overlapping blocks): DuckDB reads the blocks' time ranges only (its zone maps skip the
    rest of a time-ordered store) and returns each value with its cell of the result
    (``row × width + column``); numpy scatters them — no per-metric reads, no pandas.

    >>> import tempfile, pathlib
    >>> from telewatch.store import repo
    >>> with tempfile.TemporaryDirectory() as d, Store(pathlib.Path(d) / "x.duckdb") as st:
    ...     mid = repo.upsert_metric(st.cursor(), name="cpu")
    ...     t0 = pd.Timestamp("2026-01-01", tz="UTC")
    ...     _ = repo.write_points(st.cursor(), mid, pd.Series([1.0, 3.0, 5.0, 7.0],
    ...                           index=pd.date_range(t0, periods=4, freq="30s")))
    ...     read_blocks(st, [mid], origin=t0, step=pd.Timedelta("1min"), blocks=[(1, 2), (0, 3)]).tolist()
    [[6.0, 2.0, 6.0, nan]]
    """
    if table not in {"points", "scores"}:
        raise ValidationError(f"unknown table {table!r}")
    spans = [(int(a), int(b)) for a, b in blocks if b > a]
    shift = min([0, *(a for a, _ in spans)])  # columns before the origin: move the origin back
    origin = origin + shift * step
    spans = [(a - shift, b - shift) for a, b in spans]
    offsets = [0]
    for a, b in spans:
        offsets.append(offsets[-1] + b - a)
    n_rows, n_cols = len(metric_ids), offsets[-1]
    out = np.full((n_rows, n_cols), np.nan)
    if not n_rows or not n_cols:
        return out
    ids = np.asarray(metric_ids, dtype=np.int64)
    flat_out = out.reshape(-1)
    con = store.cursor()
    for layer in _layers(spans):
        # DuckDB returns each value with its row and grid step; numpy looks the step's column of
        # the compact matrix up (a table over the layer's span: cheaper than a CASE per value in
        # SQL) and scatters. Only the layer's time ranges are read (the store's zone maps skip
        # the rest of a time-ordered table).
        merged: list[list[int]] = []
        for i in sorted(layer, key=lambda j: spans[j]):
            a, b = spans[i]
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        first_k = merged[0][0]
        column_of = np.full(merged[-1][1] - first_k, -1, dtype=np.int64)  # grid step -> column
        for i in layer:
            a, b = spans[i]
            column_of[a - first_k : b - first_k] = np.arange(offsets[i], offsets[i] + b - a)
        rows, steps, values = overview_store.grid_cells(
            con, ids, table=table, origin=origin, step=step, spans=[(a, b) for a, b in merged]
        )
        k = steps - first_k
        col = column_of[np.clip(k, 0, column_of.size - 1)]
        inside = (k >= 0) & (k < column_of.size) & (col >= 0)
        cell = (rows * n_cols + col)[inside]
        vals = values[inside]
        if cell.size == 0:
            continue
        filled_before = np.count_nonzero(~np.isnan(flat_out))
        flat_out[cell] = vals
        if np.count_nonzero(~np.isnan(flat_out)) - filled_before != cell.size:
            # several values in a cell (a step longer than the data's, or several detectors'
            # scores): their mean, as avg() would give
            sums = np.bincount(cell, weights=vals, minlength=flat_out.size)
            counts = np.bincount(cell, minlength=flat_out.size)
            hit = counts > 0
            flat_out[hit] = sums[hit] / counts[hit]
    return out


def read_matrix(
    store: Store,
    metric_ids: Sequence[int],
    *,
    start: pd.Timestamp,
    end: pd.Timestamp,
    step: pd.Timedelta,
    table: str = "points",
    ranges: Sequence[tuple[int, int]] | None = None,
) -> npt.NDArray[np.float64]:
    """Values of ``metric_ids`` (rows) on the grid ``start, start + step, ... < end`` (NaN where absent).

    ``table`` is ``points`` or ``scores`` (scores averaged over detectors). ``ranges``: only these
    ``[from, to)`` grid columns are read (the rest stay NaN).
    """
    n_time = int((end - start) / step)
    out = np.full((len(metric_ids), max(n_time, 0)), np.nan)
    spans = [(max(0, a), min(n_time, b)) for a, b in (ranges or [(0, n_time)]) if min(n_time, b) > max(0, a)]
    if not metric_ids or not spans:
        return out
    merged: list[list[int]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    compact = read_blocks(
        store, metric_ids, origin=start, step=step, blocks=[(a, b) for a, b in merged], table=table
    )
    offset = 0
    for a, b in merged:
        out[:, a:b] = compact[:, offset : offset + b - a]
        offset += b - a
    return out


def explain_window(
    store: Store,
    *,
    start: pd.Timestamp | str,
    end: pd.Timestamp | str,
    group: str | None = None,
    selector: Mapping[str, str] | None = None,
    metric: str | int | None = None,
    metric_ids: Sequence[int] | None = None,
    step: pd.Timedelta | str | None = None,
    config: ScanConfig | None = None,
    use_scores: bool = True,
    limit: int | None = 20,
    keep: Callable[[Evidence, npt.NDArray[np.int64]], npt.ArrayLike] | None = None,
) -> ExplainResult:
    """Rank the metrics (``group``, ``selector``, ``metric_ids`` or all) by how they changed in
    ``[start, end)`` against the preceding period and the same hours of earlier days.

    ``metric`` names the anomalous metric (name or id): lead/lag is measured against it and it is
    scanned even outside the chosen group. ``keep``: given the scan's evidence and the metric ids of
    its rows, a boolean mask of metrics to return beyond the first ``limit`` (ranks stay their
    positions among all scanned metrics; see :func:`telewatch.incidents.ranking.rank_window`).

    Metrics without a point in the window, or with too few before it, are left out of the ranking
    (their count per reason: ``ExplainResult.left_out``). ``step``: a :class:`pandas.Timedelta` or
    a duration text (:func:`parse_step`).
    """
    started = time.perf_counter()
    t_start, t_end = _utc(start, "start"), _utc(end, "end")
    if t_end <= t_start:
        raise ValidationError(f"the window's end {t_end} is not after its start {t_start}")
    if limit is not None and limit < 1:
        raise ValidationError(f"limit must be at least 1, got {limit}")
    ids, metric_names, labels, groups = _select_metrics(
        store, group=group, selector=selector, metric_ids=metric_ids
    )
    target_id: int | None = None
    target_name: str | None = None
    if metric is not None:
        found = _find_metric(store, metric)
        target_id, target_name = found[0], _display(found[1], found[2])
        if target_id not in ids:
            ids.append(found[0])
            metric_names.append(found[1])
            labels.append(found[2])
            groups.append(found[3])
    if not ids:
        what = ", ".join(
            p
            for p in (
                f"group {group!r}" if group else "",
                f"selector {dict(selector)}" if selector else "",
                "the given ids" if metric_ids is not None else "",
            )
            if p
        )
        raise NotFoundError(f"no metrics match {what or 'the store (it is empty)'}")
    step_td = parse_step(step) if step is not None else infer_step(store, ids, t_start, t_end)
    cfg = config or ScanConfig()
    base_cfg_period = int(DAY / step_td) if DAY % step_td == pd.Timedelta(0) else None
    cfg = ScanConfig(
        baseline_factor=cfg.baseline_factor,
        seasonal_days=cfg.seasonal_days,
        period=base_cfg_period if cfg.period else None,
        max_lag=cfg.max_lag,
        min_baseline=cfg.min_baseline,
        min_preceding=cfg.min_preceding,
        shared_scale_floor=cfg.shared_scale_floor,
    )
    grid_start = t_start.floor(step_td)
    w_len = max(1, int(np.ceil((t_end - grid_start) / step_td)))
    max_steps = 400_000
    if w_len > max_steps // 8:
        raise ValidationError(
            f"the window spans {w_len} steps of {step_td}; use a larger step or a shorter window"
        )
    back = max(int(np.ceil(cfg.baseline_factor * w_len)), cfg.min_preceding)
    if cfg.period:
        back = max(back, cfg.period * cfg.seasonal_days)
    back = min(back, max_steps)
    t0 = grid_start - back * step_td
    # The scan reads only the window, the period before it and the same hours of earlier days: the
    # matrix holds just those columns side by side (same hours, most recent day first, then the
    # preceding period and the window), not the days in between — at 10,000 metrics and a 1-minute
    # step a 3-day grid would be 350 MB of mostly NaN. Positions are grid columns from t0.
    g0, g1 = back, back + w_len
    pre = max(int(np.ceil(cfg.baseline_factor * w_len)), cfg.min_preceding, 2 * cfg.max_lag) + 1
    same_hours = []
    if cfg.period and cfg.period > w_len:
        same_hours = [
            (g0 - d * cfg.period, g1 - d * cfg.period)
            for d in range(1, cfg.seasonal_days + 1)
            if g0 - d * cfg.period >= 0
        ]
    blocks = [*same_hours, (max(0, g0 - pre), g1)]
    seasonal = [slice(k * w_len, (k + 1) * w_len) for k in range(len(same_hours))]
    w0 = len(same_hours) * w_len + g0 - max(0, g0 - pre)
    w1 = w0 + w_len
    t_read = time.perf_counter()
    values = read_blocks(store, ids, origin=t0, step=step_td, blocks=blocks)
    if np.isnan(values[:, w0:w1]).all():
        raise ValidationError(f"no data in the window {t_start} .. {t_end} for the {len(ids)} chosen metrics")
    if np.isnan(values[:, :w0]).all():
        raise ValidationError(f"no data before the window starting {t_start}: nothing to compare it with")
    scores = None
    if use_scores:
        s = read_blocks(store, ids, origin=t0, step=step_td, blocks=blocks, table="scores")
        if not np.isnan(s).all():
            scores = s
    read_seconds = time.perf_counter() - t_read
    target_row = ids.index(target_id) if target_id is not None else None
    names = [_display(n, lab) for n, lab in zip(metric_names, labels, strict=True)]
    row_ids = np.asarray(ids, dtype=np.int64)
    t_scan = time.perf_counter()
    evidence = window_evidence(
        values, w0, w1, config=cfg, target=target_row, scores=scores, seasonal=seasonal
    )
    ranked = rank_evidence(
        evidence,
        names=names,
        step=step_td,
        target=target_row,
        limit=limit,
        keep=None if keep is None else (lambda ev: keep(ev, row_ids)),
    )
    scan_seconds = time.perf_counter() - t_scan
    return ExplainResult(
        start=t_start,
        end=t_end,
        step=step_td,
        baseline_start=t0,
        target=target_name,
        metrics_scanned=len(ids),
        ranked=[ExplainedMetric(ids[r.index], names[r.index], groups[r.index], r) for r in ranked],
        seconds=time.perf_counter() - started,
        scan_seconds=scan_seconds,
        read_seconds=read_seconds,
        scanned=ScannedRows(ids, names, groups, evidence),
        left_out=left_out_counts(evidence),
    )
