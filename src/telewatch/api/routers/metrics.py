"""Metrics and their series."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import pandas as pd
from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from telewatch.api.deps import SettingsDep, StoreDep
from telewatch.api.schemas import ErrorPublic, MetricPublic, SeriesPublic
from telewatch.services import catalog
from telewatch.services.catalog import MetricInfo, parse_selector

router = APIRouter(prefix="/api", tags=["metrics"])
_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorPublic, "description": "Bad parameters"},
    404: {"model": ErrorPublic, "description": "No such metric"},
}


def metric_public(m: MetricInfo) -> MetricPublic:
    return MetricPublic(
        id=m.id,
        name=m.name,
        labels=m.labels,
        unit=m.unit,
        owner=m.owner,
        group=m.group,
        description=m.description,
        points=m.points,
        missing=m.missing,
        first=m.first_ts.to_pydatetime() if m.first_ts is not None else None,
        last=m.last_ts.to_pydatetime() if m.last_ts is not None else None,
    )


@router.get("/metrics", response_model=list[MetricPublic], responses=_ERRORS)
def list_metrics(
    store: StoreDep,
    group: Annotated[str | None, Query(description="Only metrics of this group.")] = None,
    selector: Annotated[str | None, Query(description="Label selector: key=value,key2=value2.")] = None,
) -> list[MetricPublic]:
    """All stored metrics with their point counts and time range."""
    return [
        metric_public(m) for m in catalog.list_metrics(store, group=group, selector=parse_selector(selector))
    ]


class MetricDeleted(BaseModel):
    metric: MetricPublic
    deleted: dict[str, int] = Field(
        description="Rows deleted per kind: points, scores, anomalies, incidents…"
    )


@router.delete("/metrics/{metric_id}", response_model=MetricDeleted, responses=_ERRORS)
def delete_metric(metric_id: Annotated[int, Path(ge=1, le=2**31 - 1)], store: StoreDep) -> MetricDeleted:
    """Delete a metric with its points, scores, anomalies and labelled windows (admin token). Incidents
    lose it as a member; one left with no member is deleted too."""
    done = catalog.delete_metric(store, metric_id)
    return MetricDeleted(metric=metric_public(done.metric), deleted=done.rows)


@router.get("/series/{metric}", response_model=SeriesPublic, responses=_ERRORS)
def get_series(
    metric: str,
    store: StoreDep,
    settings: SettingsDep,
    labels: Annotated[
        str | None, Query(description="Slice, when the name has several: key=value,...")
    ] = None,
    from_: Annotated[
        str | None, Query(alias="from", description="Start (ISO 8601; naive = UTC), inclusive.")
    ] = None,
    to: Annotated[str | None, Query(description="End (ISO 8601; naive = UTC), exclusive.")] = None,
    step: Annotated[str | None, Query(description="Resample to this step, e.g. 5min, 1h.")] = None,
    agg: Annotated[
        str, Query(pattern="^(avg|min|max|sum|count|first|last)$", description="Aggregate per step.")
    ] = "avg",
) -> SeriesPublic:
    """A metric's values (by id or name) in [from, to), optionally resampled in the store.

    Without a step, a month of 1-minute points comes raw; more than the server's point limit is
    resampled automatically (the response says the step used)."""
    view = catalog.read_series(
        store,
        metric,
        labels=parse_selector(labels),
        start=catalog.parse_time(from_, what="from"),
        end=catalog.parse_time(to, what="to"),
        step=catalog.parse_step(step),
        agg=agg,
        max_points=settings.max_points_per_response,
    )
    values = view.values.to_numpy(dtype="float64")
    t = pd.DatetimeIndex(view.values.index).as_unit("ms").asi8.tolist() if len(values) else []
    boxed = values.astype(object)  # NaN -> None (JSON null) in one vectorised pass
    boxed[np.isnan(values)] = None
    v = boxed.tolist()
    return SeriesPublic(
        metric=metric_public(view.metric),
        step_seconds=int(view.step.total_seconds()) if view.step is not None else None,
        agg=view.agg,
        t=t,
        v=v,
    )
