"""Use-case: ad-hoc detection in one call, and the views the metric explorer draws.

* :func:`detect_adhoc` runs several detectors (name + parameters) on one series — a stored metric,
  or values handed in — and returns each detector's scores and anomaly windows. Nothing is stored.
* :func:`expected_band` is the "normal" band around a series (trailing median ± k robust sigmas).
* :func:`decompose` splits a series into trend, daily, weekly and residual parts (robust MSTL/STL
  with the jump settings that make it fast, see DESIGN.md).
* :func:`downsample` keeps a chart's points under a budget without hiding spikes (max per bucket).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from telewatch.core.errors import ConfigError, NotFoundError, TelewatchError, ValidationError
from telewatch.core.registry import ParameterValueError
from telewatch.core.series import MAD_TO_SIGMA, infer_step
from telewatch.detectors import create_detector
from telewatch.detectors.bands import bound_band, infer_metric_kind
from telewatch.postrules.alarms import alarm_windows
from telewatch.store import repo
from telewatch.store.db import Store
from telewatch.store.repo import MetricInfo

MAX_ADHOC_POINTS = 500_000


@dataclass(frozen=True)
class DetectorSpec:
    name: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AdhocAnomaly:
    start: pd.Timestamp
    end: pd.Timestamp
    peak: pd.Timestamp
    peak_score: float
    value: float | None


@dataclass(frozen=True)
class DetectorResult:
    detector: str
    params: dict[str, Any]
    scores: pd.Series
    anomalies: list[AdhocAnomaly]
    seconds: float
    error: str | None = None
    band: pd.DataFrame | None = None  # expected, lower, upper: from detectors that know them


@dataclass(frozen=True)
class AdhocResult:
    metric: MetricInfo | None
    series: pd.Series
    threshold: float
    results: list[DetectorResult]


def series_from_values(t: Sequence[Any], v: Sequence[float | None], *, what: str = "data") -> pd.Series:
    """A UTC series from timestamps (ISO text, or epoch milliseconds) and values (None = missing).

    >>> s = series_from_values(["2024-05-01T00:00Z", "2024-05-01T00:01Z"], [1.0, None])
    >>> s.isna().tolist()
    [False, True]
    """
    if len(t) != len(v):
        raise ValidationError(f"{what}: t has {len(t)} timestamps but v has {len(v)} values")
    if len(t) == 0:
        raise ValidationError(f"{what}: no points given")
    if len(t) > MAX_ADHOC_POINTS:
        raise ValidationError(f"{what}: {len(t)} points exceed the limit of {MAX_ADHOC_POINTS}")
    try:
        if all(isinstance(x, int | float) and not isinstance(x, bool) for x in t):
            index = pd.DatetimeIndex(pd.to_datetime(np.asarray(t, dtype="float64"), unit="ms", utc=True))
        else:
            index = pd.DatetimeIndex(pd.to_datetime(list(t), utc=True, format="ISO8601"))
    except (ValueError, TypeError, OverflowError) as exc:
        raise ValidationError(
            f"{what}.t: not timestamps (ISO 8601 text or epoch milliseconds): {exc}"
        ) from exc
    values = np.array([np.nan if x is None else x for x in v], dtype="float64")
    series = pd.Series(values, index=index, name="value")
    if series.index.has_duplicates:
        dup = series.index[series.index.duplicated()][0]
        raise ValidationError(f"{what}.t: timestamp {dup.isoformat()} appears more than once")
    return series.sort_index()


def detect_adhoc(
    store: Store | None,
    *,
    detectors: Sequence[DetectorSpec],
    metric: str | int | None = None,
    labels: Mapping[str, str] | None = None,
    values: pd.Series | None = None,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    step: pd.Timedelta | None = None,
    threshold: float | None = None,
    min_points: int = 1,
    merge_gap: int = 5,
    train_share: float | None = None,
    calibrate: bool = False,
) -> AdhocResult:
    """Run each detector on one series and return its scores and anomaly windows.

    The series is a stored ``metric`` (by id or name) in [start, end), or ``values``. Each detector
    is fitted on the leading ``train_share`` of the series (all of it when None) and scores all of
    it causally. The ``threshold`` (default 8) applies to raw scores; with ``calibrate`` they become
    a calibrated z learned from the detector's own training scores, as stored detection does, so
    one threshold (default 5) fits every detector (use a ``train_share`` below 1 then: an anomaly
    inside the training part calibrates itself away). An anomaly is a run
    of at least ``min_points`` scores at or above ``threshold``; runs closer than ``merge_gap``
    points are one.

    >>> import numpy as np, pandas as pd
    >>> idx = pd.date_range("2024-05-01", periods=500, freq="1min", tz="UTC")
    >>> s = pd.Series(np.sin(np.arange(500) / 20.0), index=idx)
    >>> s.iloc[400:405] = 9.0
    >>> out = detect_adhoc(None, detectors=[DetectorSpec("robust_bands", {"window": 60})], values=s)
    >>> a = out.results[0].anomalies[0]
    >>> str(a.start.time()), out.results[0].error
    ('06:40:00', None)
    """
    if not detectors:
        raise ValidationError("detectors: name at least one detector to run")
    if len(detectors) > 10:
        raise ValidationError(f"detectors: {len(detectors)} given, at most 10 per call")
    if threshold is None:
        threshold = 5.0 if calibrate else 8.0
    if not np.isfinite(threshold):
        raise ValidationError("threshold must be a finite number")
    if min_points < 1 or merge_gap < 0:
        raise ValidationError("min_points must be >= 1 and merge_gap >= 0")
    if train_share is not None and not 0.0 < train_share <= 1.0:
        raise ValidationError("train_share must lie in (0, 1]")
    info: MetricInfo | None = None
    if values is None:
        if metric is None:
            raise ValidationError("give a stored metric (metric) or the values to score (data)")
        if store is None:
            raise ValidationError("a stored metric needs the store")
        cur = store.cursor()
        info = repo.get_metric(cur, metric, labels)
        # named after the metric: the band shown for it is bounded by its kind (see expected_band)
        values = repo.read_series(cur, info.id, start=start, end=end, step=step).rename(info.name)
    elif metric is not None:
        raise ValidationError("give either a stored metric or data, not both")
    if len(values) > MAX_ADHOC_POINTS:
        raise ValidationError(
            f"{len(values)} points exceed the limit of {MAX_ADHOC_POINTS}; use a step or a shorter window"
        )
    if values.dropna().empty:
        raise ValidationError("the series has no values in the chosen window")
    train = values if train_share is None else values.iloc[: max(2, int(len(values) * train_share))]
    # the band shown stays in the metric's physical range (no negative users, no APDEX above 1)
    kind = infer_metric_kind(
        info.name if info is not None else str(values.name or ""),
        info.unit if info is not None else None,
        values.to_numpy(dtype="float64"),
    )
    results = [
        _run_one(
            spec,
            values,
            train,
            threshold=threshold,
            min_points=min_points,
            merge_gap=merge_gap,
            calibrate=calibrate,
            kind=kind,
        )
        for spec in detectors
    ]
    return AdhocResult(metric=info, series=values, threshold=threshold, results=results)


def _run_one(
    spec: DetectorSpec,
    series: pd.Series,
    train: pd.Series,
    *,
    threshold: float,
    min_points: int,
    merge_gap: int,
    calibrate: bool,
    kind: str | None = None,
) -> DetectorResult:
    from telewatch.detectors.bands import ExpectedBand
    from telewatch.services.detection import calibrated_scores

    began = time.perf_counter()
    try:
        det = create_detector(spec.name, **spec.params)  # ConfigError: unknown name or parameter
    except ParameterValueError as exc:  # a bad value: this detector's error, the others still run
        empty = pd.Series(np.nan, index=series.index)
        return DetectorResult(spec.name, dict(spec.params), empty, [], 0.0, str(exc))
    band = None
    try:
        if calibrate:  # exactly as stored detection calibrates, on the training part
            det, scores, _ = calibrated_scores(
                spec.name, dict(spec.params), series, np.arange(len(series)) < len(train)
            )
        else:
            scores = det.fit(train).score(series)
        if isinstance(det, ExpectedBand):
            band = det.expected(series, kind=kind)
    except ConfigError:
        raise
    except (TelewatchError, ValueError, TypeError) as exc:
        # a bad parameter value shows as that detector's error, the others still run
        empty = pd.Series(np.nan, index=series.index)
        return DetectorResult(spec.name, dict(spec.params), empty, [], time.perf_counter() - began, str(exc))
    flags = (scores >= threshold).to_numpy()
    found = []
    raw = series.to_numpy(dtype="float64")
    for lo, hi in alarm_windows(flags, min_points=min_points, merge_gap=merge_gap):
        segment = scores.to_numpy()[lo:hi]
        peak = lo + int(np.nanargmax(segment))
        found.append(
            AdhocAnomaly(
                start=pd.Timestamp(series.index[lo]),
                end=pd.Timestamp(series.index[hi - 1]),
                peak=pd.Timestamp(series.index[peak]),
                peak_score=float(np.nanmax(segment)),
                value=None if np.isnan(raw[peak]) else float(raw[peak]),
            )
        )
    return DetectorResult(
        spec.name, dict(spec.params), scores, found, time.perf_counter() - began, None, band
    )


def expected_band(
    series: pd.Series, *, window: int = 288, k: float = 4.0, kind: str | None = None
) -> pd.DataFrame:
    """The band a point is expected in: trailing median ± ``k`` robust sigmas (the point excluded),
    kept in the range a metric of ``kind`` can take (:func:`~telewatch.detectors.bands.bound_band`;
    default: inferred from the series' name and values, :func:`~telewatch.detectors.bands.infer_metric_kind`).

    >>> idx = pd.date_range("2024-05-01", periods=100, freq="1min")
    >>> band = expected_band(pd.Series(np.arange(100.0), index=idx), window=10)
    >>> list(band.columns), float(band["lower"].min()) >= 0.0
    (['expected', 'lower', 'upper'], True)
    """
    if window < 2:
        raise ValidationError("window must be at least 2 points")
    prev = series.shift(1)
    minp = max(2, min(window, 10))
    median = prev.rolling(window, min_periods=minp).median()
    mad = (prev - median).abs().rolling(window, min_periods=minp).median() * MAD_TO_SIGMA
    band = pd.DataFrame({"expected": median, "lower": median - k * mad, "upper": median + k * mad})
    if kind is None:
        kind = infer_metric_kind(str(series.name or ""), None, series.to_numpy(dtype="float64"))
    return bound_band(band, kind)


def downsample(series: pd.Series, *, max_points: int, how: str = "mean") -> pd.Series:
    """At most ``max_points`` points: bucketed by time, ``mean`` or ``max`` per bucket (spikes stay)."""
    if len(series) <= max_points or len(series) < 2:
        return series
    span = series.index[-1] - series.index[0]
    bucket = pd.Timedelta(seconds=max(1, int(np.ceil(span.total_seconds() / max_points))))
    grouped = series.resample(bucket)
    out = grouped.max() if how == "max" else grouped.mean()
    return out.dropna()


@dataclass(frozen=True)
class Decomposition:
    step: pd.Timedelta
    observed: pd.Series
    trend: pd.Series
    daily: pd.Series | None
    weekly: pd.Series | None
    residual: pd.Series


def decompose(series: pd.Series, *, max_points: int = 3000) -> Decomposition:
    """Trend, daily and weekly seasonality, residual — robust MSTL on a resampled copy.

    The series is averaged into buckets so that it has at most ``max_points`` points (a month of
    minutes becomes 15-minute buckets); gaps are interpolated for the fit. Daily seasonality needs
    three days of data and weekly three weeks; shorter series get fewer components.

    >>> idx = pd.date_range("2024-05-01", periods=4 * 1440, freq="1min", tz="UTC")
    >>> s = pd.Series(np.sin(np.arange(len(idx)) * 2 * np.pi / 1440) + 10, index=idx)
    >>> d = decompose(s)
    >>> d.weekly is None and d.daily is not None and abs(float(d.trend.mean()) - 10) < 0.1
    True
    """
    from statsmodels.tsa.seasonal import MSTL, STL

    clean = series.dropna()
    if len(clean) < 10:
        raise ValidationError("decomposition needs at least 10 values")
    step = infer_step(pd.DatetimeIndex(clean.index)) or pd.Timedelta(minutes=1)
    span = clean.index[-1] - clean.index[0]
    if span / step > max_points:
        step = pd.Timedelta(seconds=int(np.ceil(span.total_seconds() / max_points)))
        # round up to a divisor-friendly step so that days hold whole buckets
        for nice in (60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 21600, 43200, 86400):
            if nice >= step.total_seconds():
                step = pd.Timedelta(seconds=nice)
                break
    observed = clean.resample(step).mean().interpolate(limit_direction="both")
    per_day = round(pd.Timedelta(days=1) / step)
    # a seasonal part needs three cycles: with two, each cycle-subseries has two points and the
    # seasonal smoother absorbs everything (residual zero, spikes in "daily")
    periods = [p for p in (per_day, per_day * 7) if p >= 2 and len(observed) >= 3 * p]
    daily = weekly = None
    if not periods:
        trend = observed.rolling(max(3, len(observed) // 10), center=True, min_periods=1).median()
        return Decomposition(step, observed, trend, None, None, observed - trend)

    def jumps(period: int) -> dict[str, int]:
        # LOESS evaluated every `jump` points and interpolated: ~30x faster, visually the same
        jump = max(1, period // 3)
        return {"seasonal_jump": jump, "trend_jump": jump, "low_pass_jump": jump}

    if len(periods) == 1:
        fit = STL(observed, period=periods[0], robust=True, **jumps(periods[0])).fit()
        daily = pd.Series(np.asarray(fit.seasonal), index=observed.index)
        trend = pd.Series(np.asarray(fit.trend), index=observed.index)
        resid = pd.Series(np.asarray(fit.resid), index=observed.index)
    else:
        res = MSTL(
            observed, periods=periods, iterate=1, stl_kwargs={"robust": True, **jumps(periods[0])}
        ).fit()
        seasonal = np.asarray(res.seasonal)
        daily = pd.Series(seasonal[:, 0], index=observed.index)
        weekly = pd.Series(seasonal[:, 1], index=observed.index)
        trend = pd.Series(np.asarray(res.trend), index=observed.index)
        resid = pd.Series(np.asarray(res.resid), index=observed.index)
    return Decomposition(step, observed, trend, daily, weekly, resid)


@dataclass(frozen=True)
class WindowRank:
    metric: MetricInfo
    score: float
    reason: str


def rank_window(
    store: Store,
    *,
    start: pd.Timestamp,
    end: pd.Timestamp,
    group: str | None = None,
    metric_ids: Sequence[int] | None = None,
    limit: int = 50,
) -> list[WindowRank]:
    """Rank metrics by how unusual [start, end) is against the equally long stretch before it.

    A simple, explainable measure used when the explain service is not installed: the largest
    robust z of the window's values against the baseline (median, MAD of the 6x longer history).
    """
    if end <= start:
        raise ValidationError(f"the window is empty: end ({end.isoformat()}) is not after start")
    cur = store.cursor()
    metrics = repo.list_metrics(cur, group=group)
    if metric_ids:
        wanted = set(metric_ids)
        unknown = sorted(wanted - repo.existing_metric_ids(cur, sorted(wanted)))
        if unknown:
            raise NotFoundError(f"no metric with id {', '.join(map(str, unknown[:10]))}")
        metrics = [m for m in metrics if m.id in wanted]
    width = end - start
    out = []
    for m in metrics:
        base = repo.read_series(cur, m.id, start=start - 6 * width, end=start).dropna()
        window = repo.read_series(cur, m.id, start=start, end=end).dropna()
        if len(window) == 0 or len(base) < 5:
            continue
        med = float(base.median())
        mad = float((base - med).abs().median()) * MAD_TO_SIGMA
        scale = max(mad, 1e-9, abs(med) * 1e-3)
        z = (window.to_numpy() - med) / scale
        at = int(np.argmax(np.abs(z)))
        peak = float(abs(z[at]))
        direction = "above" if z[at] > 0 else "below"
        reason = (
            f"peaks {peak:.1f} robust σ {direction} its baseline (median {med:.4g});"
            f" window mean {float(window.mean()):.4g}"
        )
        out.append(WindowRank(m, peak, reason))
    out.sort(key=lambda r: r.score, reverse=True)
    return out[:limit]
