"""Incidents: co-occurring anomalies grouped into one, with ranked metrics and a type."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import pandas as pd
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from telewatch.api.deps import StoreDep
from telewatch.services.incidents import (
    IncidentSummary,
    get_incident,
    list_incidents,
    resolve_incident,
    update_incidents,
)

router = APIRouter(prefix="/api", tags=["incidents"])


class IncidentPublic(BaseModel):
    id: int
    start: datetime
    end: datetime
    peak: datetime
    peak_score: float
    state: Literal["open", "resolved"]
    type: str | None
    type_title: str | None
    slice_key: str | None
    title: str
    metrics: int
    created_at: datetime
    updated_at: datetime
    monitor: str | None = Field(
        None, description="The monitor whose metrics the incident holds (null: metrics no monitor fetches)."
    )


class IncidentMetricPublic(BaseModel):
    metric_id: int
    metric: str
    rank: int
    score: float
    direction: str
    magnitude: float | None
    magnitude_kind: str | None
    lead_lag: int | None
    anomalous: bool
    reason: str


class IncidentDetailPublic(IncidentPublic):
    ranked_metrics: list[IncidentMetricPublic]
    anomaly_ids: list[int]


class IncidentUpdatePublic(BaseModel):
    created: list[int]
    updated: list[int]
    merged: list[int]
    unchanged: list[int]
    open: int
    resolved: int


def _public(s: IncidentSummary) -> IncidentPublic:
    return IncidentPublic(
        id=s.id,
        start=s.start.to_pydatetime(),
        end=s.end.to_pydatetime(),
        peak=s.peak.to_pydatetime(),
        peak_score=s.peak_score,
        state=s.state,  # type: ignore[arg-type]
        type=s.type,
        type_title=s.type_title,
        slice_key=s.slice_key,
        title=s.title,
        metrics=s.metrics,
        created_at=s.created_at.to_pydatetime(),
        updated_at=s.updated_at.to_pydatetime(),
        monitor=s.monitor,
    )


@router.get("/incidents", response_model=list[IncidentPublic])
def incidents(
    store: StoreDep,
    state: Annotated[Literal["open", "resolved"] | None, Query(description="Only this state.")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    since: Annotated[
        datetime | None, Query(description="Only incidents active at or after this time.")
    ] = None,
    until: Annotated[
        datetime | None, Query(description="Only incidents active at or before this time.")
    ] = None,
    monitor: Annotated[
        str | None, Query(max_length=200, description="Only the incidents of this monitor's metrics.")
    ] = None,
) -> list[IncidentPublic]:
    """Incidents, most recent activity first (the end of the last anomaly, or the last change here)."""
    found = list_incidents(
        store,
        state=state,
        limit=limit,
        offset=offset,
        since=pd.Timestamp(since) if since else None,
        until=pd.Timestamp(until) if until else None,
        monitor=monitor,
    )
    return [_public(s) for s in found]


@router.get("/incidents/{incident_id}", response_model=IncidentDetailPublic)
def incident(store: StoreDep, incident_id: int) -> IncidentDetailPublic:
    """One incident with its ranked metrics and anomaly ids."""
    detail = get_incident(store, incident_id=incident_id)
    return IncidentDetailPublic(
        **_public(detail.incident).model_dump(),
        ranked_metrics=[IncidentMetricPublic(**m.__dict__) for m in detail.metrics],
        anomaly_ids=detail.anomaly_ids,
    )


@router.post("/incidents/{incident_id}/resolve", response_model=IncidentPublic)
def resolve(store: StoreDep, incident_id: int) -> IncidentPublic:
    """Resolve an incident by hand."""
    return _public(resolve_incident(store, incident_id=incident_id))


@router.post("/incidents/update", response_model=IncidentUpdatePublic)
def update(
    store: StoreDep,
    merge_gap: Annotated[str, Query(description="Anomalies closer than this are one incident.")] = "5min",
    quiet: Annotated[str, Query(description="Resolved after this long without anomalies.")] = "30min",
    split_label: Annotated[str | None, Query(description="Keep incidents apart by this label.")] = None,
) -> IncidentUpdatePublic:
    """Group the stored anomalies into incidents (idempotent)."""
    from telewatch.core.errors import ValidationError

    try:
        report = update_incidents(store, merge_gap=merge_gap, quiet=quiet, split_label=split_label)
    except ValueError as exc:
        if isinstance(exc, ValidationError):
            raise
        raise ValidationError(f"merge_gap/quiet: {exc}") from exc
    return IncidentUpdatePublic(**report.__dict__)
