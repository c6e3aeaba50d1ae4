"""Feedback on incidents and anomalies (stored as labelled windows) and notes on incidents."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from telewatch.api.deps import StoreDep
from telewatch.api.schemas import ErrorPublic
from telewatch.services import catalog
from telewatch.services import feedback as service

router = APIRouter(prefix="/api", tags=["feedback"])
_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorPublic, "description": "Bad input"},
    404: {"model": ErrorPublic, "description": "No such metric or anomaly"},
    422: {"model": ErrorPublic, "description": "Malformed request"},
}


class FeedbackCreate(BaseModel):
    kind: Literal["confirmed", "false_alarm", "expected"] = Field(description="The verdict.")
    metric_ids: list[int] = Field(default_factory=list, description="Metrics the verdict is about.")
    start: str | None = Field(
        default=None, description="Window start (ISO 8601); from the anomaly if omitted."
    )
    end: str | None = Field(default=None, description="Window end (ISO 8601), inclusive.")
    incident_id: int | None = Field(
        default=None,
        ge=1,
        le=2_147_483_647,
        description="The incident the verdict is about (supplies window and anomalous metrics if omitted).",
    )
    anomaly_id: int | None = Field(default=None, description="A stored anomaly (supplies metric and window).")
    note: str | None = Field(default=None, max_length=2000)
    author: str | None = Field(default=None, max_length=200)


class FeedbackPublic(BaseModel):
    id: int
    kind: str
    start: datetime
    end: datetime
    metric_ids: list[int]
    incident_id: int | None
    anomaly_id: int | None
    note: str | None
    author: str | None
    created_at: datetime


class FeedbackPage(BaseModel):
    items: list[FeedbackPublic]
    total: int
    limit: int
    offset: int


class NoteCreate(BaseModel):
    incident_id: int = Field(ge=1, le=2_147_483_647)  # the store's INTEGER ids
    text: str = Field(min_length=1, max_length=5000)
    author: str | None = Field(default=None, max_length=200)


class NotePublic(BaseModel):
    id: int
    incident_id: int
    text: str
    author: str | None
    created_at: datetime


def _public(f: service.Feedback) -> FeedbackPublic:
    return FeedbackPublic(
        id=f.id,
        kind=f.kind,
        start=f.start.to_pydatetime(),
        end=f.end.to_pydatetime(),
        metric_ids=f.metric_ids,
        incident_id=f.incident_id,
        anomaly_id=f.anomaly_id,
        note=f.note,
        author=f.author,
        created_at=f.created_at.to_pydatetime(),
    )


@router.post("/feedback", response_model=FeedbackPublic, status_code=201, responses=_ERRORS)
def give_feedback(body: FeedbackCreate, store: StoreDep) -> FeedbackPublic:
    """Mark an incident or anomaly as confirmed, a false alarm, or expected.

    Stored as labelled windows (source ``feedback``, kind = the verdict) on each metric, which
    ``telewatch bench labels`` and threshold tuning read."""
    made = service.give_feedback(
        store,
        kind=body.kind,
        metric_ids=body.metric_ids,
        start=catalog.parse_time(body.start, what="start"),
        end=catalog.parse_time(body.end, what="end"),
        incident_id=body.incident_id,
        anomaly_id=body.anomaly_id,
        note=body.note,
        author=body.author,
    )
    return _public(made)


@router.get("/feedback", response_model=FeedbackPage, responses=_ERRORS)
def list_feedback(
    store: StoreDep,
    incident: Annotated[int | None, Query(description="Only feedback on this incident.")] = None,
    anomaly: Annotated[
        list[Annotated[int, Field(ge=1, le=2_147_483_647)]] | None,
        Query(max_length=1000, description="Only feedback on this anomaly (repeat for several)."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> FeedbackPage:
    """Feedback given, newest first."""
    items, total = service.list_feedback(
        store, incident_id=incident, anomaly_id=anomaly, limit=limit, offset=offset
    )
    return FeedbackPage(items=[_public(f) for f in items], total=total, limit=limit, offset=offset)


@router.post("/incident-notes", response_model=NotePublic, status_code=201, responses=_ERRORS)
def add_note(body: NoteCreate, store: StoreDep) -> NotePublic:
    """Attach a note to an incident."""
    n = service.add_incident_note(store, incident_id=body.incident_id, text=body.text, author=body.author)
    return NotePublic(
        id=n.id,
        incident_id=n.incident_id,
        text=n.text,
        author=n.author,
        created_at=n.created_at.to_pydatetime(),
    )


@router.get("/incident-notes", response_model=list[NotePublic], responses=_ERRORS)
def list_notes(
    store: StoreDep,
    incident: Annotated[int, Query(ge=1, le=2_147_483_647, description="The incident's id.")],
) -> list[NotePublic]:
    """Notes on an incident, oldest first."""
    return [
        NotePublic(
            id=n.id,
            incident_id=n.incident_id,
            text=n.text,
            author=n.author,
            created_at=n.created_at.to_pydatetime(),
        )
        for n in service.list_incident_notes(store, incident_id=incident)
    ]


class IncidentAlertPublic(BaseModel):
    id: int
    channel: str
    kind: str
    severity: str
    subject: str
    status: str = Field(description="pending, sending, sent, failed, digest, digested")
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None


@router.get("/incident-alerts", response_model=list[IncidentAlertPublic], responses=_ERRORS)
def incident_alerts(
    store: StoreDep,
    incident: Annotated[int, Query(ge=1, le=2_147_483_647, description="The incident's id.")],
) -> list[IncidentAlertPublic]:
    """Alerts sent about an incident and their delivery status (empty when alerting is not set up)."""
    rows = service.incident_notifications(store, incident_id=incident) or []
    return [
        IncidentAlertPublic(
            **{k: (v.to_pydatetime() if hasattr(v, "to_pydatetime") else v) for k, v in r.items()}  # type: ignore[arg-type]
        )
        for r in rows
    ]
