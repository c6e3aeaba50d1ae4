"""Anomalies found by detection, and labelled windows (ground truth)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Query

from telewatch.api.deps import StoreDep
from telewatch.api.schemas import AnomalyPublic, LabelWindowPublic
from telewatch.services import catalog
from telewatch.services.detection import read_anomalies

router = APIRouter(prefix="/api", tags=["anomalies"])


def _dt(ts: Any) -> datetime:
    return pd.Timestamp(ts).to_pydatetime()


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in rec.items()} for rec in frame.to_dict("records")]


_METRIC = Query(
    max_length=500,
    description="Only this metric: its id or its name (a name with several slices: give the id).",
)


def _metric_id(store: StoreDep, metric: str | None) -> int | None:
    """The id of ``metric`` (an id or a name); 404 when there is none, 400 when a name is ambiguous."""
    return None if metric is None else catalog.get_metric(store, metric.strip()).id


@router.get("/anomalies", response_model=list[AnomalyPublic])
def list_anomalies(
    store: StoreDep,
    metric: Annotated[str | None, _METRIC] = None,
    detector: Annotated[str | None, Query(description="Only this detector.")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> list[AnomalyPublic]:
    """Stored anomalies, newest first."""
    frame = read_anomalies(store, metric_id=_metric_id(store, metric), detector=detector)
    frame = frame.iloc[offset : offset + limit]
    return [
        AnomalyPublic(
            id=int(r["id"]),
            metric_id=int(r["metric_id"]),
            metric=str(r["metric"]),
            detector=str(r["detector"]),
            start=_dt(r["start_ts"]),
            end=_dt(r["end_ts"]),
            peak=_dt(r["peak_ts"]),
            peak_score=float(r["peak_score"]),
            value=None if pd.isna(r["value"]) else float(r["value"]),
        )
        for r in _records(frame)
    ]


@router.get("/labels", response_model=list[LabelWindowPublic])
def list_labels(store: StoreDep, metric: Annotated[str | None, _METRIC] = None) -> list[LabelWindowPublic]:
    """Labelled anomaly windows (planted demo incidents, imported labels, feedback)."""
    frame = catalog.read_label_windows(store, _metric_id(store, metric))
    return [
        LabelWindowPublic(
            id=int(r["id"]),
            metric_id=int(r["metric_id"]),
            start=_dt(r["start_ts"]),
            end=_dt(r["end_ts"]),
            kind=str(r["kind"]),
            source=str(r["source"]),
            note=None if pd.isna(r["note"]) else str(r["note"]),
        )
        for r in _records(frame)
    ]
