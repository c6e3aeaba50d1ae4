"""Forecasts: a metric's (or a group's) recent values, prediction and intervals in one response."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import numpy as np
import pandas as pd
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from telewatch.api.deps import StoreDep
from telewatch.api.schemas import ErrorPublic
from telewatch.core.errors import ValidationError
from telewatch.forecast import DEFAULT_MODEL, available_forecasters
from telewatch.forecast.breach import PredictedBreach
from telewatch.forecast.outlook import IncidentOutlook
from telewatch.services import forecasting
from telewatch.services.catalog import list_metrics, parse_selector, parse_time

router = APIRouter(prefix="/api/forecast", tags=["forecast"])
_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorPublic, "description": "Bad parameters (horizon, model, limits, too little data)"},
    404: {"model": ErrorPublic, "description": "No such metric or group"},
}


class IntervalPublic(BaseModel):
    lower: list[float | None]
    upper: list[float | None]


class BreachPublic(BaseModel):
    direction: str = Field(description="upper: rises above the limit; lower: falls below it.")
    limit: float
    limit_kind: str = Field(description="static, or band (the learned normal band).")
    eta: datetime = Field(description="First time the chance of being beyond the limit reaches the bar.")
    minutes_ahead: float
    probability: float = Field(description="Highest chance over the horizon of being beyond the limit.")
    expected_at_eta: float
    message: str


class ForecastPublic(BaseModel):
    metric_id: int
    metric: str = Field(description="Display name: name{labels}.")
    unit: str | None
    group: str | None
    model: str
    step_seconds: float
    made_at: datetime = Field(description="The forecast origin: the last value used.")
    history_t: list[int] = Field(description="Recent values' times, ms since the Unix epoch (UTC).")
    history_v: list[float | None]
    t: list[int] = Field(description="Forecast times, ms since the Unix epoch (UTC).")
    mean: list[float | None]
    intervals: dict[str, IntervalPublic] = Field(description="By level in percent, e.g. '80', '95'.")
    band: IntervalPublic | None = Field(default=None, description="Learned normal band, when asked.")
    limit_upper: float | None = None
    limit_lower: float | None = None
    breaches: list[BreachPublic]
    fit_seconds: float


class OutlookPublic(BaseModel):
    group: str
    at: datetime
    probability: float
    level: str
    statement: str
    basis: list[str]
    rate_per_hour: float
    probability_from_rate: float
    probability_from_forecast: float


class GroupForecastPublic(BaseModel):
    group: str
    outlook: OutlookPublic
    forecasts: list[ForecastPublic]
    skipped: dict[str, str]


def _breach_public(b: PredictedBreach) -> BreachPublic:
    return BreachPublic(
        direction=b.direction,
        limit=b.limit,
        limit_kind=b.limit_kind,
        eta=b.eta.to_pydatetime(),
        minutes_ahead=b.minutes_ahead,
        probability=b.probability,
        expected_at_eta=b.expected_at_eta,
        message=b.describe(),
    )


def _vals(values: pd.Series) -> list[float | None]:
    return [None if not np.isfinite(v) else float(v) for v in values.to_numpy(dtype="float64")]


def forecast_public(result: forecasting.MetricForecast) -> ForecastPublic:
    payload = forecasting.forecast_payload(result)
    band = None
    if result.band is not None:
        band = IntervalPublic(lower=_vals(result.band["lower"]), upper=_vals(result.band["upper"]))
    return ForecastPublic(
        metric_id=result.metric.id,
        metric=result.metric.display_name,
        unit=result.metric.unit,
        group=result.metric.group,
        model=result.model,
        step_seconds=result.step.total_seconds(),
        made_at=result.made_at.to_pydatetime(),
        history_t=payload["history_t"],
        history_v=payload["history_v"],
        t=payload["t"],
        mean=payload["mean"],
        intervals={k: IntervalPublic(**v) for k, v in payload["intervals"].items()},
        band=band,
        limit_upper=result.upper_limit,
        limit_lower=result.lower_limit,
        breaches=[_breach_public(b) for b in (result.check.breaches if result.check else [])],
        fit_seconds=result.fit_seconds,
    )


def _outlook_public(o: IncidentOutlook) -> OutlookPublic:
    return OutlookPublic(
        group=o.group,
        at=o.at.to_pydatetime(),
        probability=o.probability,
        level=o.level,
        statement=o.statement,
        basis=list(o.basis),
        rate_per_hour=o.rate_per_hour,
        probability_from_rate=o.probability_from_rate,
        probability_from_forecast=o.probability_from_forecast,
    )


def _model(name: str | None) -> str:
    model = name or DEFAULT_MODEL
    if model not in available_forecasters():
        known = ", ".join(available_forecasters())
        raise ValidationError(f"model: unknown forecast model {model!r}; known models: {known}")
    return model


HorizonQ = Annotated[str, Query(description="How far ahead, e.g. 60min, 2h (at most 7 days).")]
ModelQ = Annotated[str | None, Query(description="Forecast model; default robust_seasonal.")]
HistoryQ = Annotated[str, Query(description="How much recent history to return with it, e.g. 6h.")]
FitQ = Annotated[str, Query(alias="fit", description="History the model is fitted on, e.g. 28D.")]
AtQ = Annotated[
    str | None, Query(description="Forecast as of this time (ISO 8601; default: the last value).")
]


@router.get("/group/{group}", response_model=GroupForecastPublic, responses=_ERRORS)
def forecast_group(
    group: str,
    store: StoreDep,
    horizon: HorizonQ = "60min",
    model: ModelQ = None,
    history: HistoryQ = "6h",
    fit_window: FitQ = "28D",
    at: AtQ = None,
    band: Annotated[bool, Query(description="Check each metric against its learned normal band.")] = True,
) -> GroupForecastPublic:
    """Every metric of a group with its forecast, and the group's incident outlook for the next hour
    (the chance, stated plainly, and what it rests on)."""
    if not list_metrics(store, group=group):
        from telewatch.core.errors import NotFoundError

        raise NotFoundError(f"no metrics in group {group!r}")
    result = forecasting.forecast_group(
        store,
        group=group,
        horizon=horizon,
        model=_model(model),
        show=history,
        fit_window=fit_window,
        now=parse_time(at, what="at"),
        band=band,
    )
    return GroupForecastPublic(
        group=result.group,
        outlook=_outlook_public(result.outlook),
        forecasts=[forecast_public(f) for f in result.forecasts],
        skipped=result.skipped,
    )


@router.get("/{metric}", response_model=ForecastPublic, responses=_ERRORS)
def forecast_metric(
    metric: str,
    store: StoreDep,
    horizon: HorizonQ = "60min",
    model: ModelQ = None,
    history: HistoryQ = "6h",
    fit_window: FitQ = "28D",
    at: AtQ = None,
    labels: Annotated[
        str | None, Query(description="Slice, when the name has several: key=value,...")
    ] = None,
    limit_upper: Annotated[
        float | None, Query(description="Warn when the forecast rises above this.")
    ] = None,
    limit_lower: Annotated[
        float | None, Query(description="Warn when the forecast falls below this.")
    ] = None,
    band: Annotated[bool, Query(description="Also check against the learned normal band.")] = False,
) -> ForecastPublic:
    """A metric's recent values, its forecast (mean, 80 % and 95 % intervals) and predicted limit
    breaches, in one response a chart can draw."""
    result = forecasting.forecast_metric(
        store,
        metric=metric,
        labels=parse_selector(labels),
        horizon=horizon,
        model=_model(model),
        show=history,
        fit_window=fit_window,
        now=parse_time(at, what="at"),
        limit_upper=limit_upper,
        limit_lower=limit_lower,
        band=band,
    )
    return forecast_public(result)
