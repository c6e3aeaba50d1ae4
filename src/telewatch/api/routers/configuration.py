"""Read-only configuration views for the UI: monitors' status (from the store) and alert rules (from the
alerting configuration file). Editing stays in the YAML files, reviewed like code."""

from __future__ import annotations

import os
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from telewatch.api.deps import StoreDep
from telewatch.api.schemas import ErrorPublic
from telewatch.core.errors import ConfigError
from telewatch.services import status

router = APIRouter(prefix="/api", tags=["configuration"])


class MonitorStatusPublic(BaseModel):
    monitor: str
    status: str
    last_run_at: datetime | None
    last_attempt_at: datetime | None
    attempts: int
    error: str | None
    next_retry_at: datetime | None
    series: int
    runs: int
    last_points: int | None
    last_anomalies: int | None


@router.get("/monitor-status", response_model=list[MonitorStatusPublic])
def monitor_status(store: StoreDep) -> list[MonitorStatusPublic]:
    """Every monitor that has run here: status, last run, failure streak, series and run counts."""
    return [MonitorStatusPublic(**asdict(row)) for row in status.monitor_statuses(store)]


@router.get(
    "/alert-rules",
    response_model=list[dict[str, Any]],
    responses={400: {"model": ErrorPublic, "description": "No or invalid alerting configuration"}},
)
def alert_rules(request: Request) -> list[dict[str, Any]]:
    """The alert rules of the alerting configuration (``TELEWATCH_ALERTING_CONFIG``), as JSON."""
    from telewatch.services import alerting

    settings = request.app.state.settings
    path = getattr(settings, "alerting_config", None) or os.environ.get("TELEWATCH_ALERTING_CONFIG")
    if not path:
        raise ConfigError(
            "no alerting configuration: set TELEWATCH_ALERTING_CONFIG to the alerting YAML file"
        )
    config = alerting.load_alerting_config(Path(path))
    return [rule.model_dump(mode="json", by_alias=True) for rule in config.rules]
