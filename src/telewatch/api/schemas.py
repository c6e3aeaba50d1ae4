"""Public shapes of the REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class ErrorPublic(BaseModel):
    detail: str = Field(description="What was wrong, and where.")
    error: str = Field(description="The kind of error, e.g. NotFoundError, IngestError.")
    line: int | None = Field(default=None, description="For file errors: the 1-based line at fault.")
    column: str | None = Field(default=None, description="For file errors: the column at fault.")


#: Answers any operation may give (the error handlers of api/app.py and the upload limit), declared on
#: every operation so that clients, and the schema fuzzer, know them; 422 replaces FastAPI's default
#: (our validation errors carry one ``detail`` string, not a list).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorPublic, "description": "Bad input: what was wrong, and where."},
    404: {"model": ErrorPublic, "description": "No such metric, incident or other object."},
    413: {"model": ErrorPublic, "description": "The request body is over the upload limit."},
    422: {"model": ErrorPublic, "description": "A parameter or body field failed validation."},
}


class HealthPublic(BaseModel):
    status: str
    version: str
    schema_version: int
    metrics: int


class MetricPublic(BaseModel):
    id: int
    name: str
    labels: dict[str, str]
    unit: str | None
    owner: str | None
    group: str | None
    description: str | None
    points: int = Field(description="Stored values.")
    missing: int = Field(description="Stored missing values (empty cells).")
    first: datetime | None
    last: datetime | None


class SeriesPublic(BaseModel):
    metric: MetricPublic
    step_seconds: int | None = Field(description="Resampling step; null = raw points.")
    agg: str
    t: list[int] = Field(description="Timestamps, milliseconds since the Unix epoch (UTC).")
    v: list[float | None] = Field(description="Values; null = missing.")


class AnomalyPublic(BaseModel):
    id: int
    metric_id: int
    metric: str
    detector: str
    start: datetime
    end: datetime
    peak: datetime
    peak_score: float
    value: float | None


class LabelWindowPublic(BaseModel):
    id: int
    metric_id: int
    start: datetime
    end: datetime
    kind: str
    source: str
    note: str | None


class SeriesIngestPublic(BaseModel):
    metric_id: int
    name: str
    labels: dict[str, str]
    points: int
    missing: int
    first: datetime | None
    last: datetime | None
    gaps: int


class IngestPublic(BaseModel):
    source: str
    format: str
    shape: str
    rows: int
    timestamps: int
    points: int
    duplicates_resolved: int
    series: list[SeriesIngestPublic]
    warnings: list[str]
    detector: str | None = Field(
        default=None, description="The detector that scored the stored metrics (None: not scored)."
    )
    anomalies: int | None = Field(default=None, description="Anomalies found in the stored metrics.")
