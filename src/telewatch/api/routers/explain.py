"""Explain a time window: which metrics changed with it, how, and who moved first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import pandas as pd
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from telewatch.api.deps import StoreDep
from telewatch.incidents.ranking import ScanConfig
from telewatch.services.catalog import parse_selector
from telewatch.services.explain import explain_window, parse_step

router = APIRouter(prefix="/api", tags=["explain"])


class ExplainedMetricPublic(BaseModel):
    rank: int
    metric_id: int
    metric: str
    group: str | None
    score: float
    direction: Literal["up", "down", "flat"]
    magnitude: float = Field(
        description="Relative level change (0.62 = +62 %), or a z shift (magnitude_kind z)."
    )
    magnitude_kind: Literal["relative", "z"]
    ks_d: float
    ks_p: float
    lead_lag: int | None = Field(
        description="Steps this metric moved before the target metric (negative: after)."
    )
    baseline: str
    reason: str


class ExplainPublic(BaseModel):
    start: datetime
    end: datetime
    step_seconds: float
    baseline_start: datetime
    target: str | None
    metrics_scanned: int
    metrics_left_out: dict[str, int] = Field(
        default_factory=dict,
        description="Scanned metrics left out of the ranking, by reason: no_data (no point in the window),"
        " no_baseline (too few points before it to compare with).",
    )
    seconds: float
    ranked: list[ExplainedMetricPublic]


@router.get("/explain", response_model=ExplainPublic)
def explain(
    store: StoreDep,
    start: Annotated[datetime, Query(alias="from", description="Window start (ISO time, UTC unless zoned).")],
    end: Annotated[datetime, Query(alias="to", description="Window end, exclusive.")],
    group: Annotated[str | None, Query(description="Only metrics of this group.")] = None,
    selector: Annotated[str | None, Query(description="Label selector key=value,key2=value2.")] = None,
    metric: Annotated[str | None, Query(description="The anomalous metric (name or id).")] = None,
    step: Annotated[str | None, Query(description="Grid step, e.g. 1min (default: the data's).")] = None,
    baseline_factor: Annotated[float, Query(gt=0, le=100)] = 4.0,
    seasonal_days: Annotated[int, Query(ge=0, le=28)] = 3,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 20,
) -> ExplainPublic:
    """Rank metrics by how strongly they changed in ``[from, to)`` against the preceding period and the
    same hours of earlier days."""
    from telewatch.core.errors import ValidationError

    step_td = parse_step(step) if step else None
    for name, value in (("from", start), ("to", end)):
        if not 1970 <= value.year <= 2200:
            raise ValidationError(f"{name}: {value.isoformat()} is out of the supported range (1970-2200)")
    try:
        result = explain_window(
            store,
            start=pd.Timestamp(start),
            end=pd.Timestamp(end),
            group=group,
            selector=parse_selector(selector),
            metric=metric,
            step=step_td,
            config=ScanConfig(
                baseline_factor=baseline_factor,
                seasonal_days=seasonal_days,
                period=1440 if seasonal_days else None,
            ),
            limit=limit,
        )
    except (OverflowError, pd.errors.OutOfBoundsDatetime, pd.errors.OutOfBoundsTimedelta) as exc:
        # the baseline reaches baseline_factor windows back: it too must stay within 1678-2261
        raise ValidationError(
            f"from/to: the window with its baseline ({baseline_factor:g} windows back) leaves the supported "
            f"time range: {exc}"
        ) from exc
    return ExplainPublic(
        start=result.start.to_pydatetime(),
        end=result.end.to_pydatetime(),
        step_seconds=result.step.total_seconds(),
        baseline_start=result.baseline_start.to_pydatetime(),
        target=result.target,
        metrics_scanned=result.metrics_scanned,
        metrics_left_out=result.left_out,
        seconds=result.seconds,
        ranked=[
            ExplainedMetricPublic(
                rank=e.ranked.rank,
                metric_id=e.metric_id,
                metric=e.metric,
                group=e.group,
                score=e.ranked.score,
                direction=e.ranked.direction,
                magnitude=e.ranked.magnitude,
                magnitude_kind=e.ranked.magnitude_kind,
                ks_d=e.ranked.ks_d,
                ks_p=e.ranked.ks_p,
                lead_lag=e.ranked.lead_lag,
                baseline=e.ranked.baseline,
                reason=e.ranked.reason,
            )
            for e in result.ranked
        ],
    )
