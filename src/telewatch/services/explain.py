"""Use-case: explain a time window — which stored metrics changed with it, how, and who moved first.

The metrics (a group, a label selector, explicit ids, or all) are read from the store in one query,
bucketed onto a regular grid (``step``), and handed as one matrix to the window scan
(:func:`telewatch.incidents.ranking.rank_window`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from telewatch.core.errors import NotFoundError, ValidationError
from telewatch.incidents.ranking import RankedMetric, ScanConfig, rank_window
from telewatch.store import repo
from telewatch.store.db import Store

__all__ = ["ExplainResult", "ExplainedMetric", "explain_window", "parse_window"]

DAY = pd.Timedelta("1D")


@dataclass(frozen=True)
class ExplainedMetric:
    """A ranked metric of an explanation, with its catalogue identity."""

    metric_id: int
    metric: str
    group: str | None
    ranked: RankedMetric


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
) -> list[tuple[int, str, dict[str, str], str | None]]:
    where: list[str] = []
    params: list[object] = []
    if group is not None:
        where.append("grp = ?")
        params.append(group)
    for key, value in (selector or {}).items():
        where.append("json_extract_string(labels, ?) = ?")
        params.extend(["$." + json.dumps(key), value])
    if metric_ids is not None:
        where.append("list_contains(?, id)")
        params.append([int(i) for i in metric_ids])
    sql = "SELECT id, name, labels, grp FROM metrics"
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = store.cursor().execute(sql + " ORDER BY id", params).fetchall()
    return [(int(r[0]), str(r[1]), json.loads(str(r[2])), r[3]) for r in rows]


def _display(name: str, labels: dict[str, str]) -> str:
    return name if not labels else name + "{" + ",".join(f"{k}={v}" for k, v in labels.items()) + "}"


def infer_step(
    store: Store, metric_ids: Sequence[int], start: pd.Timestamp, end: pd.Timestamp
) -> pd.Timedelta:
    """The typical spacing of points of ``metric_ids`` around the window (1 min when unknown)."""
    row = (
        store.cursor()
        .execute(
            "SELECT median(d) FROM (SELECT epoch(ts) - epoch(lag(ts) OVER (PARTITION BY metric_id ORDER BY ts))"
            " AS d FROM points WHERE list_contains(?, metric_id) AND ts >= ? AND ts < ?) WHERE d > 0",
            [
                [int(i) for i in metric_ids[:50]],
                (start - 4 * (end - start)).tz_localize(None).to_pydatetime(),
                end.tz_localize(None).to_pydatetime(),
            ],
        )
        .fetchone()
    )
    seconds = float(row[0]) if row and row[0] is not None else 60.0
    return pd.Timedelta(seconds=max(1, round(seconds)))


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
    ``[from, to)`` grid columns are read (the rest stay NaN) — the scan needs the window, the
    preceding period and a few same-hours slices, not whole days.
    """
    if table not in {"points", "scores"}:
        raise ValidationError(f"unknown table {table!r}")
    seconds = int(step.total_seconds())
    column = "value" if table == "points" else "score"
    n_time = int((end - start) / step)
    out = np.full((len(metric_ids), n_time), np.nan)
    if not metric_ids or n_time <= 0:
        return out
    s_naive = start.tz_localize(None)
    spans = [(max(0, a), min(n_time, b)) for a, b in (ranges or [(0, n_time)]) if b > a]
    where_ts = " OR ".join(["(ts >= ? AND ts < ?)"] * len(spans)) or "false"
    span_params = [
        (s_naive + a * step).to_pydatetime() if i == 0 else (s_naive + b * step).to_pydatetime()
        for a, b in spans
        for i in (0, 1)
    ]
    frame = (
        store.cursor()
        .execute(
            f"SELECT metric_id, CAST(floor((epoch(ts) - epoch(?::TIMESTAMP)) / ?) AS BIGINT) AS k,"
            f" avg({column}) AS v FROM {table} WHERE list_contains(?, metric_id) AND ({where_ts})"
            " GROUP BY ALL",
            [s_naive.to_pydatetime(), seconds, [int(i) for i in metric_ids], *span_params],
        )
        .fetchnumpy()
    )
    if len(frame["k"]) == 0:
        return out
    row_of = {int(m): i for i, m in enumerate(metric_ids)}
    lookup = np.full(max(row_of) + 1, -1, dtype=np.int64)
    for m, i in row_of.items():
        lookup[m] = i
    rows = lookup[np.asarray(frame["metric_id"], dtype=np.int64)]
    cols = np.asarray(frame["k"], dtype=np.int64)
    vals = np.asarray(frame["v"], dtype=np.float64)
    ok = (rows >= 0) & (cols >= 0) & (cols < n_time)
    out[rows[ok], cols[ok]] = vals[ok]
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
) -> ExplainResult:
    """Rank the metrics (``group``, ``selector``, ``metric_ids`` or all) by how they changed in
    ``[start, end)`` against the preceding period and the same hours of earlier days.

    ``metric`` names the anomalous metric (name or id): lead/lag is measured against it and it is
    scanned even outside the chosen group.
    """
    started = time.perf_counter()
    t_start, t_end = _utc(start, "start"), _utc(end, "end")
    if t_end <= t_start:
        raise ValidationError(f"the window's end {t_end} is not after its start {t_start}")
    if limit is not None and limit < 1:
        raise ValidationError(f"limit must be at least 1, got {limit}")
    chosen = _select_metrics(store, group=group, selector=selector, metric_ids=metric_ids)
    target_id: int | None = None
    target_name: str | None = None
    if metric is not None:
        info = repo.get_metric(store.cursor(), metric)
        target_id, target_name = info.id, info.display_name
        if all(m[0] != target_id for m in chosen):
            chosen.append((info.id, info.name, info.labels, info.group))
    if not chosen:
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
    ids = [m[0] for m in chosen]
    step_td = pd.Timedelta(step) if step is not None else infer_step(store, ids, t_start, t_end)
    if step_td < pd.Timedelta(seconds=1):
        raise ValidationError(f"step must be at least one second, got {step_td}")
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
    t1 = grid_start + w_len * step_td
    w0, w1 = back, back + w_len
    pre = max(int(np.ceil(cfg.baseline_factor * w_len)), cfg.min_preceding, 2 * cfg.max_lag) + 1
    ranges = [(w0 - pre, w1)]
    if cfg.period:
        ranges += [(w0 - d * cfg.period, w1 - d * cfg.period) for d in range(1, cfg.seasonal_days + 1)]
    values = read_matrix(store, ids, start=t0, end=t1, step=step_td, ranges=ranges)
    if np.isnan(values[:, w0:w1]).all():
        raise ValidationError(f"no data in the window {t_start} .. {t_end} for the {len(ids)} chosen metrics")
    first_data = np.flatnonzero(~np.isnan(values).all(axis=0))
    if first_data.size and first_data[0] >= w0:
        raise ValidationError(f"no data before the window starting {t_start}: nothing to compare it with")
    scores = None
    if use_scores:
        s = read_matrix(store, ids, start=t0, end=t1, step=step_td, table="scores", ranges=ranges)
        if not np.isnan(s).all():
            scores = s
    target_row = ids.index(target_id) if target_id is not None else None
    names = [_display(m[1], m[2]) for m in chosen]
    t_scan = time.perf_counter()
    ranked = rank_window(
        values, w0, w1, names=names, step=step_td, config=cfg, target=target_row, scores=scores, limit=limit
    )
    scan_seconds = time.perf_counter() - t_scan
    return ExplainResult(
        start=t_start,
        end=t_end,
        step=step_td,
        baseline_start=t0,
        target=target_name,
        metrics_scanned=len(ids),
        ranked=[ExplainedMetric(chosen[r.index][0], names[r.index], chosen[r.index][3], r) for r in ranked],
        seconds=time.perf_counter() - started,
        scan_seconds=scan_seconds,
    )
