"""Use-cases: forecast stored metrics, predict limit breaches, raise early warnings, group outlook."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from telewatch.core.errors import ValidationError
from telewatch.forecast import DEFAULT_LEVELS, DEFAULT_MODEL, create_forecaster
from telewatch.forecast.base import Forecaster
from telewatch.forecast.breach import BreachCheck, breach_candidates, check_breaches, learned_band
from telewatch.forecast.outlook import IncidentOutlook, incident_outlook
from telewatch.forecast.seasonal import RobustSeasonal
from telewatch.store import repo
from telewatch.store.db import Store
from telewatch.store.repo import MetricInfo

if TYPE_CHECKING:
    from telewatch.alerts.config import AlertingConfig, Rule
    from telewatch.alerts.model import AlertCandidate, SubmitReport


@dataclass(frozen=True)
class MetricForecast:
    """A metric's recent values and its forecast, with the breach check when limits were given."""

    metric: MetricInfo
    model: str
    step: pd.Timedelta
    made_at: pd.Timestamp  # the forecast origin: the last stored point used
    history: pd.Series  # the recent values shown with the forecast
    forecast: pd.DataFrame  # mean, lower_<pct>, upper_<pct>
    band: pd.DataFrame | None  # learned normal band over the forecast (lower, upper), when asked
    check: BreachCheck | None
    fit_seconds: float
    upper_limit: float | None = None
    lower_limit: float | None = None


@dataclass(frozen=True)
class GroupForecast:
    group: str
    forecasts: list[MetricForecast]
    outlook: IncidentOutlook
    skipped: dict[str, str] = field(default_factory=dict)  # metric -> why it has no forecast


@dataclass(frozen=True)
class LimitSpec:
    """The limits one metric is checked against: static numbers and/or its learned normal band."""

    metric: str | int
    labels: Mapping[str, str] | None = None
    upper: float | None = None
    lower: float | None = None
    band: bool = False


def parse_duration(text: str | pd.Timedelta | None, *, what: str, default: str) -> pd.Timedelta:
    """A positive duration such as ``60min``, ``6h``, ``14D``.

    >>> parse_duration("2h", what="history", default="6h")
    Timedelta('0 days 02:00:00')
    """
    value = default if text is None or text == "" else text
    try:
        span = pd.Timedelta(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{what}: {value!r} is not a duration (e.g. 60min, 6h, 14D)") from exc
    if span is pd.NaT or span <= pd.Timedelta(0):
        raise ValidationError(f"{what}: must be a positive duration, got {value!r}")
    return span


def forecast_metric(
    store: Store,
    *,
    metric: str | int,
    labels: Mapping[str, str] | None = None,
    horizon: str | pd.Timedelta = "60min",
    model: str = DEFAULT_MODEL,
    params: Mapping[str, Any] | None = None,
    fit_window: str | pd.Timedelta = "28D",
    show: str | pd.Timedelta = "6h",
    now: pd.Timestamp | None = None,
    levels: Sequence[float] = DEFAULT_LEVELS,
    limit_upper: float | None = None,
    limit_lower: float | None = None,
    band: bool = False,
    band_width: float = 4.0,
    min_probability: float = 0.5,
) -> MetricForecast:
    """Fit ``model`` on the metric's last ``fit_window`` (up to ``now``, default: its last point) and
    forecast ``horizon``; ``show`` is how much history comes back with it.

    Limits: ``limit_upper``/``limit_lower`` are static; ``band=True`` checks the sides without a static
    limit against the learned normal band (± ``band_width`` robust standard deviations).
    """
    horizon_td = parse_duration(horizon, what="horizon", default="60min")
    if horizon_td > pd.Timedelta(days=7):
        raise ValidationError(f"horizon: at most 7 days ahead, got {horizon}")
    window = parse_duration(fit_window, what="history", default="28D")
    shown = parse_duration(show, what="show", default="6h")
    cur = store.cursor()
    info = repo.get_metric(cur, metric, labels)
    end = None if now is None else pd.Timestamp(now) + pd.Timedelta(microseconds=1)
    if end is None and info.last_ts is None:
        raise ValidationError(f"metric {info.display_name!r} has no points to forecast from")
    last = info.last_ts if end is None else end
    assert last is not None
    series = repo.read_series(cur, info.id, start=last - window, end=end)
    series = series.dropna()
    if len(series) < 10:
        raise ValidationError(
            f"metric {info.display_name!r}: {len(series)} values in the last {window} before"
            f" {last.isoformat()}; a forecast needs at least 10"
        )
    series.name = info.name
    started = time.perf_counter()
    forecaster: Forecaster = create_forecaster(model, **dict(params or {})).fit(series)
    frame = forecaster.predict(horizon_td, levels=levels)
    fit_seconds = time.perf_counter() - started
    made_at = pd.Timestamp(series.index[-1])
    history = series[series.index > made_at - shown]
    band_frame = None
    upper: Any = limit_upper
    lower: Any = limit_lower
    kind = "static"
    if band:
        seasonal = forecaster if isinstance(forecaster, RobustSeasonal) else RobustSeasonal().fit(series)
        lo, hi = learned_band(seasonal, pd.DatetimeIndex(frame.index), width=band_width)
        band_frame = pd.DataFrame({"lower": lo, "upper": hi})
        if upper is None:
            upper, kind = hi, "band"
        if lower is None:
            lower, kind = lo, "band"
    check = None
    if upper is not None or lower is not None:
        check = check_breaches(
            frame,
            metric=info.display_name,
            last_value=float(series.iloc[-1]),
            upper=upper,
            lower=lower,
            min_probability=min_probability,
            origin=made_at,
            limit_kind=kind if limit_upper is None or limit_lower is None else "static",
        )
    return MetricForecast(
        metric=info,
        model=model,
        step=forecaster.step_,
        made_at=made_at,
        history=history,
        forecast=frame,
        band=band_frame,
        check=check,
        fit_seconds=fit_seconds,
        upper_limit=limit_upper,
        lower_limit=limit_lower,
    )


def group_anomaly_starts(store: Store, *, group: str, since: pd.Timestamp) -> list[pd.Timestamp]:
    """Start times of the stored anomalies of ``group``'s metrics since ``since``."""
    return repo.anomaly_starts_in_group(
        store.cursor(), group=group, since=pd.Timestamp(since).tz_convert("UTC")
    )


def forecast_group(
    store: Store,
    *,
    group: str,
    horizon: str | pd.Timedelta = "60min",
    model: str = DEFAULT_MODEL,
    params: Mapping[str, Any] | None = None,
    fit_window: str | pd.Timedelta = "28D",
    show: str | pd.Timedelta = "6h",
    now: pd.Timestamp | None = None,
    band: bool = True,
    band_width: float = 4.0,
    limits: Mapping[str, tuple[float | None, float | None]] | None = None,
    lookback: str | pd.Timedelta = "7D",
) -> GroupForecast:
    """Forecast every metric of ``group`` and state the group's incident outlook for the next hour.

    Each metric is checked against ``limits[name] = (lower, upper)`` when given, else (``band``) its
    learned normal band. Metrics too short to forecast are listed in ``skipped``.
    """
    metrics = repo.list_metrics(store.cursor(), group=group)
    if not metrics:
        raise ValidationError(f"group {group!r} has no metrics") from None
    forecasts: list[MetricForecast] = []
    skipped: dict[str, str] = {}
    for info in metrics:
        lower, upper = (limits or {}).get(info.name, (None, None))
        try:
            forecasts.append(
                forecast_metric(
                    store,
                    metric=info.id,
                    horizon=horizon,
                    model=model,
                    params=params,
                    fit_window=fit_window,
                    show=show,
                    now=now,
                    limit_upper=upper,
                    limit_lower=lower,
                    band=band,
                    band_width=band_width,
                )
            )
        except ValidationError as exc:
            skipped[info.display_name] = str(exc)
    if not forecasts and now is None:
        raise ValidationError(f"no metric of group {group!r} could be forecast: {skipped}")
    at = (
        pd.Timestamp(now)
        if now is not None
        else max((f.made_at for f in forecasts), default=pd.Timestamp.now(tz="UTC"))
    )
    at = at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")
    back = parse_duration(lookback, what="lookback", default="7D")
    starts = group_anomaly_starts(store, group=group, since=at - back)
    breaches = [b for f in forecasts if f.check is not None for b in f.check.breaches]
    outlook = incident_outlook(
        group, at=at, anomaly_starts=starts, breaches=breaches, lookback=back, horizon=pd.Timedelta(hours=1)
    )
    return GroupForecast(group=group, forecasts=forecasts, outlook=outlook, skipped=skipped)


def check_limits(
    store: Store,
    *,
    limits: Sequence[LimitSpec],
    horizon: str | pd.Timedelta = "60min",
    model: str = DEFAULT_MODEL,
    now: pd.Timestamp | None = None,
    min_probability: float = 0.5,
) -> tuple[list[MetricForecast], list[AlertCandidate]]:
    """Forecast each limited metric and turn the checks into early-warning alert candidates
    (``firing`` while a breach is predicted, ``resolved`` once it is not): see
    :func:`telewatch.forecast.breach.breach_candidates`."""
    results = [
        forecast_metric(
            store,
            metric=spec.metric,
            labels=spec.labels,
            horizon=horizon,
            model=model,
            now=now,
            limit_upper=spec.upper,
            limit_lower=spec.lower,
            band=spec.band,
            min_probability=min_probability,
        )
        for spec in limits
    ]
    checks = [r.check for r in results if r.check is not None]
    at = pd.Timestamp(now) if now is not None else pd.Timestamp.now(tz="UTC")
    candidates = breach_candidates(
        checks,
        now=at,
        metrics={r.metric.display_name: r.metric for r in results},
        history={r.metric.display_name: r.history for r in results},
        forecasts={r.metric.display_name: r.forecast for r in results},
    )
    return results, candidates


def raise_early_warnings(
    store: Store,
    *,
    limits: Sequence[LimitSpec],
    rules: AlertingConfig | Sequence[Rule],
    now: pd.Timestamp | None = None,
    horizon: str | pd.Timedelta = "60min",
    model: str = DEFAULT_MODEL,
    min_probability: float = 0.5,
) -> SubmitReport:
    """Check ``limits`` and submit the early-warning candidates through the alerting pipeline
    (``telewatch.services.alerting.submit_alerts``); returns what it returns."""
    from telewatch.services.alerting import submit_alerts

    at = pd.Timestamp(now) if now is not None else pd.Timestamp.now(tz="UTC")
    _, candidates = check_limits(
        store, limits=limits, horizon=horizon, model=model, now=now, min_probability=min_probability
    )
    return submit_alerts(store, candidates=candidates, rules=rules, now=at)


def forecast_payload(result: MetricForecast) -> dict[str, Any]:
    """A forecast as plain JSON-ready data the UI can draw: times in ms since the epoch (UTC)."""

    def ms(index: pd.Index) -> list[int]:
        return [int(v) for v in pd.DatetimeIndex(index).as_unit("ms").asi8]

    def vals(values: Any) -> list[float | None]:
        return [None if not np.isfinite(v) else float(v) for v in np.asarray(values, dtype="float64")]

    frame = result.forecast
    intervals = {}
    for col in frame.columns:
        if str(col).startswith("lower_"):
            pct = str(col)[len("lower_") :]
            intervals[pct] = {"lower": vals(frame[col]), "upper": vals(frame[f"upper_{pct}"])}
    return {
        "t": ms(frame.index),
        "mean": vals(frame["mean"]),
        "intervals": intervals,
        "history_t": ms(result.history.index),
        "history_v": vals(result.history.to_numpy()),
    }
