"""Alerting: silences (create, list, expire), notification history with delivery attempts, channels and
test sends. Secrets never leave the server: channels are described without tokens or passwords.

The alerting configuration comes from ``settings.alerting_config`` when the settings have it, else the
``TELEWATCH_ALERTING_CONFIG`` environment variable.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from telewatch.alerts.config import AlertingConfig
from telewatch.alerts.model import Silence
from telewatch.alerts.rules import matcher_from_dict
from telewatch.api.deps import StoreDep
from telewatch.core.errors import ConfigError, NotFoundError, ValidationError
from telewatch.services import alerting

router = APIRouter(prefix="/api", tags=["alerts"])


class MatcherIn(BaseModel):
    name: str = Field(
        min_length=1, description="A label, or metric, monitor, severity, group, incident_type."
    )
    op: str = Field(default="=", pattern=r"^(=|!=|=~|!~)$")
    value: str


class SilenceCreate(BaseModel):
    matchers: list[MatcherIn] = Field(min_length=1)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    duration_minutes: float | None = Field(
        default=None,
        gt=0,
        le=10 * 366 * 1440,
        description="Instead of ends_at (at most ten years); 60 when neither is given.",
    )
    created_by: str = "api"
    comment: str = ""


class SilencePublic(BaseModel):
    id: int
    matchers: list[MatcherIn]
    starts_at: datetime
    ends_at: datetime
    state: str
    active: bool
    created_by: str
    comment: str
    created_at: datetime
    expired_at: datetime | None = None


class AttemptPublic(BaseModel):
    attempt: int
    started_at: datetime
    finished_at: datetime | None
    ok: bool | None
    error: str | None
    remote_id: str | None


class NotificationPublic(BaseModel):
    id: int
    idempotency_key: str
    channel: str
    kind: str
    rule: str | None
    group_key: str
    alert_keys: list[str]
    severity: str
    language: str
    subject: str
    summary: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None
    last_error: str | None
    digest_id: int | None
    has_chart: bool


class NotificationDetail(NotificationPublic):
    body_text: str
    body_html: str
    payload: dict[str, Any]
    attempts_log: list[AttemptPublic]


class SampleSendIn(BaseModel):
    channel: str


class SampleSendOut(BaseModel):
    notification_id: int
    channel: str
    ok: bool
    error: str | None
    subject: str


def _config(request: Request) -> AlertingConfig:
    settings = request.app.state.settings
    path = getattr(settings, "alerting_config", None) or os.environ.get("TELEWATCH_ALERTING_CONFIG")
    if not path:
        raise ConfigError(
            "no alerting configuration: set TELEWATCH_ALERTING_CONFIG to the alerting YAML file"
        )
    return alerting.load_alerting_config(Path(path))


def _silence(s: Silence, now: pd.Timestamp) -> SilencePublic:
    return SilencePublic(
        id=s.id,
        matchers=[MatcherIn(**m.to_dict()) for m in s.matchers],
        starts_at=s.starts_at.to_pydatetime(),
        ends_at=s.ends_at.to_pydatetime(),
        state=s.state,
        active=s.active(now),
        created_by=s.created_by,
        comment=s.comment,
        created_at=s.created_at.to_pydatetime(),
        expired_at=s.expired_at.to_pydatetime() if s.expired_at is not None else None,
    )


@router.get("/silences", response_model=list[SilencePublic])
def list_silences(
    store: StoreDep, include_expired: Annotated[bool, Query(description="Include ended silences.")] = False
) -> list[SilencePublic]:
    """Silences, oldest first."""
    now = pd.Timestamp.now(tz="UTC")
    return [_silence(s, now) for s in alerting.list_silences(store, include_expired=include_expired, now=now)]


@router.post("/silences", response_model=SilencePublic, status_code=201)
def create_silence(store: StoreDep, body: SilenceCreate) -> SilencePublic:
    """Silence alerts matching every matcher, from ``starts_at`` (default now) until ``ends_at``
    or for ``duration_minutes`` (one of them; an hour when neither is given)."""
    now = pd.Timestamp.now(tz="UTC")
    for name, given in (("starts_at", body.starts_at), ("ends_at", body.ends_at)):
        if given is not None and not 1970 <= given.year <= 2200:  # times are kept in ns (1678-2261)
            raise ValidationError(f"{name}: {given.isoformat()} is out of the supported range (1970-2200)")
    start = pd.Timestamp(body.starts_at) if body.starts_at else now
    if body.ends_at is not None and body.duration_minutes is not None:
        raise ValidationError("give ends_at or duration_minutes, not both")
    if body.ends_at is not None:
        end = pd.Timestamp(body.ends_at)
    else:  # an hour when neither is given, as `telewatch silences add`
        end = start + pd.Timedelta(minutes=60 if body.duration_minutes is None else body.duration_minutes)
    matchers = [matcher_from_dict(m.model_dump()) for m in body.matchers]
    silence = alerting.add_silence(
        store,
        matchers=matchers,
        starts_at=start,
        ends_at=end,
        created_by=body.created_by,
        comment=body.comment,
        now=now,
    )
    return _silence(silence, now)


@router.delete("/silences/{silence_id}", response_model=SilencePublic)
def expire_silence(store: StoreDep, silence_id: int) -> SilencePublic:
    """Expire a silence now (it stays in the list with ``include_expired``)."""
    now = pd.Timestamp.now(tz="UTC")
    return _silence(alerting.expire_silence(store, silence_id=silence_id, now=now), now)


def _dt(value: Any) -> Any:
    return value.to_pydatetime() if isinstance(value, pd.Timestamp) else value


@router.get("/alerts/notifications", response_model=list[NotificationPublic])
def list_notifications(
    store: StoreDep,
    channel: Annotated[str | None, Query()] = None,
    status: Annotated[
        str | None, Query(description="pending, sending, sent, failed, digest, digested")
    ] = None,
    key: Annotated[str | None, Query(description="Only notifications carrying this alert key.")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> list[NotificationPublic]:
    """The stored history of notifications, newest first."""
    rows = alerting.notification_history(
        store, channel=channel, status=status, key=key, limit=limit, offset=offset
    )
    return [NotificationPublic(**{k: _dt(v) for k, v in r.items()}) for r in rows]


@router.get("/alerts/notifications/{notification_id}", response_model=NotificationDetail)
def get_notification(store: StoreDep, notification_id: int) -> NotificationDetail:
    """One notification: its text as sent and every delivery attempt."""
    row = alerting.notification_detail(store, notification_id=notification_id)
    row["attempts_log"] = [AttemptPublic(**{k: _dt(v) for k, v in a.items()}) for a in row["attempts_log"]]
    return NotificationDetail(**{k: _dt(v) for k, v in row.items()})


@router.get("/alerts/notifications/{notification_id}/chart.png", response_class=Response)
def notification_chart(store: StoreDep, notification_id: int) -> Response:
    """The chart PNG attached to a notification."""
    png = alerting.notification_chart(store, notification_id=notification_id)
    if png is None:
        raise NotFoundError(f"notification {notification_id} has no chart")
    return Response(content=png, media_type="image/png")


@router.get("/alerts/channels")
def list_channels(request: Request) -> list[dict[str, Any]]:
    """The configured channels, without secrets."""
    return alerting.describe_channels(_config(request))


@router.post("/alerts/test", response_model=SampleSendOut)
def send_sample_alert(request: Request, store: StoreDep, body: SampleSendIn) -> SampleSendOut:
    """Send a sample alert to one channel now; the answer says whether the channel accepted it."""
    config = _config(request)
    alerting.ensure_channel(config, body.channel)
    return SampleSendOut(**alerting.send_test(store, config=config, channel=body.channel))


def _duration(td: Any) -> str:
    from telewatch.alerts.render import format_duration

    return format_duration(pd.Timedelta(td))


@router.get("/alerts/rules")
def list_rules(request: Request) -> list[dict[str, Any]]:
    """The configured alert rules, in the order they are tried (rules hold no secrets)."""
    out = []
    for rule in _config(request).rules:
        data = rule.model_dump(mode="json", by_alias=True, exclude_defaults=False)
        data["min_duration"] = _duration(rule.min_duration)
        data["repeat_interval"] = _duration(rule.repeat_interval)
        if rule.digest is not None:
            data["digest"]["interval"] = _duration(rule.digest.interval)
        out.append(data)
    return out
