"""Predicted limit breaches: when will the forecast cross a limit, and how sure is it.

A limit is static (``upper``/``lower`` numbers, e.g. "memory above 90 %", "throughput below 200") or
learned: the metric's normal band (:func:`learned_band`). :func:`predict_breaches` reads a forecast
frame (``mean`` and interval columns) and returns the first future time at which the chance that the
value is beyond the limit reaches ``min_probability``. That chance comes from the calibrated intervals:
the forecast's quantiles (median = ``mean``, ``upper_80`` = 90th percentile, ``upper_95`` = 97.5th, ...)
are joined piecewise-linearly on the normal scale, so no distribution is assumed beyond what the
intervals say.

:func:`breach_candidates` turns the checks into early-warning alert candidates for the alerting
pipeline: ``firing`` while the forecast crosses, ``resolved`` once it no longer does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from scipy import stats

from telewatch.core.errors import ValidationError

if TYPE_CHECKING:
    from telewatch.alerts.model import AlertCandidate
    from telewatch.forecast.seasonal import RobustSeasonal
    from telewatch.store.repo import MetricInfo

Direction = Literal["upper", "lower"]
LimitValue = float | pd.Series | np.ndarray | None


@dataclass(frozen=True)
class PredictedBreach:
    """The forecast crosses ``limit`` in direction ``direction`` at ``eta``.

    ``probability`` is the highest chance, over the horizon, that the value lies beyond the limit at
    one step (a lower bound on the chance that it crosses at some point); ``eta`` is the first step
    where that chance reaches the check's ``min_probability``.
    """

    metric: str
    direction: Direction
    limit: float
    eta: pd.Timestamp
    minutes_ahead: float
    probability: float
    expected_at_eta: float
    worst: float
    made_at: pd.Timestamp
    limit_kind: str = "static"

    def describe(self) -> str:
        """One plain sentence, e.g. ``memory_percent will rise above 90 in about 25 min (p=0.71)``."""
        verb = "rise above" if self.direction == "upper" else "fall below"
        return (
            f"{self.metric} will {verb} {self.limit:.4g} in about {self.minutes_ahead:.0f} min"
            f" (at {self.eta:%H:%M} UTC, chance {self.probability:.0%}; forecast {self.expected_at_eta:.4g})"
        )


@dataclass
class BreachCheck:
    """One metric checked against its limits: the breaches found (empty = none predicted)."""

    metric: str
    made_at: pd.Timestamp
    last_value: float
    directions: tuple[Direction, ...]
    breaches: list[PredictedBreach] = field(default_factory=list)
    limit_kind: str = "static"
    already_beyond: tuple[Direction, ...] = ()


def _interval_knots(forecast: pd.DataFrame, direction: Direction) -> list[tuple[str, float]]:
    """Columns of one side of the intervals with the standard-normal quantile each one stands for."""
    prefix = "upper_" if direction == "upper" else "lower_"
    knots = []
    for col in forecast.columns:
        if not str(col).startswith(prefix):
            continue
        try:
            level = float(str(col)[len(prefix) :]) / 100.0
        except ValueError:
            continue
        if 0.0 < level < 1.0:
            knots.append((str(col), float(stats.norm.ppf(0.5 + level / 2.0))))
    if not knots:
        raise ValidationError(f"the forecast has no {prefix}<pct> interval columns to judge a breach by")
    return sorted(knots, key=lambda k: k[1])


def exceed_probability(forecast: pd.DataFrame, limit: LimitValue, *, direction: Direction) -> np.ndarray:
    """Chance at each forecast step that the value is above (``upper``) or below (``lower``) ``limit``.

    >>> f = pd.DataFrame({"mean": [10.0, 12.0], "lower_80": [8.0, 10.0], "upper_80": [12.0, 14.0],
    ...                   "lower_95": [7.0, 9.0], "upper_95": [13.0, 15.0]})
    >>> [round(float(p), 3) for p in exceed_probability(f, 12.0, direction="upper")]
    [0.1, 0.5]
    """
    if "mean" not in forecast.columns:
        raise ValidationError("the forecast has no 'mean' column")
    lim = _limit_array(limit, len(forecast))
    mean = forecast["mean"].to_numpy(dtype="float64")
    sign = 1.0 if direction == "upper" else -1.0
    # Distance beyond the mean, measured outwards on this side (positive = farther out than the mean).
    x = sign * (lim - mean)
    z_points = [0.0]
    v_points = [np.zeros_like(mean)]
    for name, knot_z in _interval_knots(forecast, direction):
        z_points.append(knot_z)
        v_points.append(np.maximum(sign * (forecast[name].to_numpy(dtype="float64") - mean), 0.0))
    v = np.vstack(v_points)  # (knots, steps): non-decreasing distances
    v = np.maximum.accumulate(v, axis=0)
    zk = np.asarray(z_points)
    z = np.empty_like(mean)
    for i in range(mean.size):
        col = v[:, i]
        if not np.isfinite(x[i]):
            z[i] = np.inf if x[i] > 0 else -np.inf
            continue
        if col[-1] <= 1e-12:  # no spread: certain
            z[i] = np.inf if x[i] > 0 else (-np.inf if x[i] < 0 else 0.0)
            continue
        # Piecewise linear z(distance); beyond the ends: the nearest non-flat segment's slope.
        first = int(np.argmax(col > 1e-12))
        if x[i] <= col[first]:
            z[i] = zk[first] * x[i] / col[first]
        elif x[i] >= col[-1]:
            j = len(col) - 1
            while j > 0 and col[j] - col[j - 1] <= 1e-12:
                j -= 1
            slope = (zk[j] - zk[j - 1]) / (col[j] - col[j - 1]) if j > 0 else zk[-1] / col[-1]
            z[i] = zk[-1] + (x[i] - col[-1]) * slope
        else:
            z[i] = float(np.interp(x[i], col, zk))
    return np.asarray(stats.norm.sf(z), dtype="float64")


def _limit_array(limit: LimitValue, n: int) -> np.ndarray:
    if limit is None:
        raise ValidationError("a limit is needed")
    if isinstance(limit, pd.Series):
        arr = limit.to_numpy(dtype="float64")
    elif isinstance(limit, np.ndarray):
        arr = limit.astype("float64")
    else:
        value = float(limit)
        if not math.isfinite(value):
            raise ValidationError(f"a limit must be a finite number, got {limit!r}")
        return np.full(n, value)
    if arr.shape != (n,):
        raise ValidationError(f"the limit has {arr.size} values but the forecast {n} steps")
    return arr


def predict_breaches(
    forecast: pd.DataFrame,
    *,
    upper: LimitValue = None,
    lower: LimitValue = None,
    min_probability: float = 0.5,
    origin: pd.Timestamp | None = None,
    metric: str = "",
    limit_kind: str = "static",
) -> list[PredictedBreach]:
    """Breaches of ``upper``/``lower`` (numbers, or arrays/series aligned with the forecast steps)
    that the forecast predicts with a chance of at least ``min_probability``.

    ``origin`` is the forecast's origin (the last observed time; default one step before the first
    forecast step), from which ``minutes_ahead`` is counted.

    >>> idx = pd.date_range("2024-01-01 00:01", periods=3, freq="1min", tz="UTC")
    >>> f = pd.DataFrame({"mean": [80.0, 85.0, 92.0], "lower_80": [78.0, 83.0, 90.0],
    ...                   "upper_80": [82.0, 87.0, 94.0]}, index=idx)
    >>> [b.minutes_ahead for b in predict_breaches(f, upper=90.0)]
    [3.0]
    >>> predict_breaches(f, upper=95.0)
    []
    """
    if upper is None and lower is None:
        raise ValidationError("predict_breaches: give an upper limit, a lower limit or both")
    if not 0.0 < min_probability < 1.0:
        raise ValidationError(f"min_probability must lie strictly between 0 and 1, got {min_probability}")
    if forecast.empty:
        return []
    index = pd.DatetimeIndex(forecast.index)
    if origin is None:
        step = index[1] - index[0] if len(index) > 1 else pd.Timedelta(minutes=1)
        origin = pd.Timestamp(index[0] - step)
    out: list[PredictedBreach] = []
    mean = forecast["mean"].to_numpy(dtype="float64")
    for direction, limit in (("upper", upper), ("lower", lower)):
        if limit is None:
            continue
        d: Direction = "upper" if direction == "upper" else "lower"
        lim = _limit_array(limit, len(forecast))
        p = exceed_probability(forecast, lim, direction=d)
        hits = np.flatnonzero(p >= min_probability)
        if hits.size == 0:
            continue
        i = int(hits[0])
        worst = float(np.nanmax(mean)) if d == "upper" else float(np.nanmin(mean))
        out.append(
            PredictedBreach(
                metric=metric,
                direction=d,
                limit=float(lim[i]),
                eta=pd.Timestamp(index[i]),
                minutes_ahead=float((index[i] - origin) / pd.Timedelta(minutes=1)),
                probability=float(np.nanmax(p)),
                expected_at_eta=float(mean[i]),
                worst=worst,
                made_at=pd.Timestamp(origin),
                limit_kind=limit_kind,
            )
        )
    return out


def learned_band(
    model: RobustSeasonal, index: pd.DatetimeIndex, *, width: float = 4.0
) -> tuple[pd.Series, pd.Series]:
    """The normal band of a fitted :class:`~telewatch.forecast.seasonal.RobustSeasonal` at ``index``:
    recent level + daily/weekly profile ± ``width`` robust standard deviations (lower, upper)."""
    if width <= 0:
        raise ValidationError(f"band width must be positive, got {width}")
    lo, hi = model.normal_band(index, width=width)
    return pd.Series(lo, index=index, name="band_lower"), pd.Series(hi, index=index, name="band_upper")


def check_breaches(
    forecast: pd.DataFrame,
    *,
    metric: str,
    last_value: float,
    upper: LimitValue = None,
    lower: LimitValue = None,
    min_probability: float = 0.5,
    origin: pd.Timestamp | None = None,
    limit_kind: str = "static",
) -> BreachCheck:
    """:func:`predict_breaches` for one metric, as a :class:`BreachCheck`. A limit the last value is
    already beyond is not *predicted* (that is the detector's and the alert rules' job): it is noted
    in ``already_beyond`` and raises no early warning."""
    directions: list[Direction] = []
    beyond: list[Direction] = []
    if upper is not None:
        directions.append("upper")
        first = float(_limit_array(upper, len(forecast))[0]) if len(forecast) else math.inf
        if math.isfinite(last_value) and last_value > first:
            beyond.append("upper")
            upper = None
    if lower is not None:
        directions.append("lower")
        first = float(_limit_array(lower, len(forecast))[0]) if len(forecast) else -math.inf
        if math.isfinite(last_value) and last_value < first:
            beyond.append("lower")
            lower = None
    breaches = (
        predict_breaches(
            forecast,
            upper=upper,
            lower=lower,
            min_probability=min_probability,
            origin=origin,
            metric=metric,
            limit_kind=limit_kind,
        )
        if upper is not None or lower is not None
        else []
    )
    made_at = origin if origin is not None else (breaches[0].made_at if breaches else pd.Timestamp.now("UTC"))
    return BreachCheck(
        metric=metric,
        made_at=pd.Timestamp(made_at),
        last_value=float(last_value),
        directions=tuple(directions),
        breaches=breaches,
        limit_kind=limit_kind,
        already_beyond=tuple(beyond),
    )


def _chart_data(
    history: pd.Series | None, forecast: pd.DataFrame | None
) -> tuple[pd.Series | None, pd.DataFrame | None]:
    """History extended with empty future points, and the forecast as the alert chart's band
    (``expected``/``lower``/``upper`` from the widest interval), so the chart shows what lies ahead."""
    if history is None or forecast is None or forecast.empty:
        return history, None
    lowers = sorted((c for c in forecast.columns if str(c).startswith("lower_")), key=lambda c: float(c[6:]))
    band = pd.DataFrame({"expected": forecast["mean"]}, index=forecast.index)
    if lowers:
        band["lower"] = forecast[lowers[-1]]
        band["upper"] = forecast["upper_" + lowers[-1][len("lower_") :]]
    future = pd.Series(np.nan, index=forecast.index, dtype="float64")
    series = pd.concat([history.astype("float64"), future[future.index > history.index[-1]]])
    series.name = history.name
    return series, band


def breach_key(metric: str, direction: Direction) -> str:
    """The alert dedup key of a predicted breach: stable while the forecast keeps crossing.

    >>> breach_key("memory_percent{host=app-1}", "upper")
    'forecast:memory_percent{host=app-1}:upper'
    """
    return f"forecast:{metric}:{direction}"


def breach_candidates(
    checks: Sequence[BreachCheck],
    *,
    now: pd.Timestamp,
    metrics: dict[str, MetricInfo] | None = None,
    monitor: str = "forecast",
    history: dict[str, pd.Series] | None = None,
    forecasts: dict[str, pd.DataFrame] | None = None,
) -> list[AlertCandidate]:
    """Early-warning alert candidates from breach checks, for ``submit_alerts``.

    Each predicted breach gives a ``firing`` candidate (severity ``warning``; ``critical`` when its
    chance is at least 0.9 and it is 15 minutes away or less); each checked direction without a
    predicted breach gives a ``resolved`` candidate with the same key, so a warning raised earlier is
    closed once the forecast no longer crosses. ``metrics`` maps a check's metric name to its catalog
    entry (labels, group, owner); ``history``/``forecasts`` add the chart data.
    """
    from telewatch.alerts.model import AlertCandidate

    now = pd.Timestamp(now)
    out: list[AlertCandidate] = []
    for check in checks:
        info = (metrics or {}).get(check.metric)
        name = info.name if info is not None else check.metric
        labels = dict(info.labels) if info is not None else {}
        group = info.group if info is not None else None
        owner = info.owner if info is not None else None
        series, band = _chart_data((history or {}).get(check.metric), (forecasts or {}).get(check.metric))
        by_dir = {b.direction: b for b in check.breaches}
        for direction in check.directions:
            breach = by_dir.get(direction)
            key = breach_key(check.metric, direction)
            if breach is None:
                if direction in check.already_beyond:
                    continue  # crossed already: the regular alert speaks now, keep the warning as is
                out.append(
                    AlertCandidate(
                        key=key,
                        monitor=monitor,
                        metric=name,
                        labels=labels,
                        group=group,
                        value=check.last_value,
                        expected=None,
                        lower=None,
                        upper=None,
                        deviation_pct=None,
                        score=0.0,
                        severity="info",
                        started_at=now,
                        last_seen=now,
                        owner=owner,
                        incident_type="predicted_breach",
                        status="resolved",
                    )
                )
                continue
            severity = "critical" if breach.probability >= 0.9 and breach.minutes_ahead <= 15 else "warning"
            base = abs(breach.limit) if breach.limit != 0 else 1.0
            out.append(
                AlertCandidate(
                    key=key,
                    monitor=monitor,
                    metric=name,
                    labels=labels,
                    group=group,
                    value=check.last_value,
                    expected=breach.expected_at_eta,
                    lower=breach.limit if direction == "lower" else None,
                    upper=breach.limit if direction == "upper" else None,
                    deviation_pct=100.0 * (breach.worst - breach.limit) / base,
                    score=breach.probability,
                    severity=severity,
                    started_at=now,
                    last_seen=now,
                    owner=owner,
                    incident_type="predicted_breach",
                    related=(breach.describe(),),
                    status="firing",
                    series=series,
                    band=band,
                )
            )
    return out
