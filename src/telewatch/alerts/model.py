"""Values the alerting pipeline passes around: candidates in, notifications and reports out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from telewatch.incidents.data_quality import DataQualityIssue

SEVERITIES = ("info", "warning", "critical")


def severity_rank(severity: str) -> int:
    """Order of severities: info < warning < critical.

    >>> severity_rank("critical") > severity_rank("warning") > severity_rank("info")
    True
    """
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        return -1


@dataclass(frozen=True)
class AlertCandidate:
    """One anomalous metric slice the detection pipeline wants people to hear about.

    ``key`` is the dedup key: stable while the problem lasts (e.g. ``"web:incident:42"`` or
    ``"web:latency{dc=eu}"``). The same key sent again is an update of the same alert, not a new one.
    """

    key: str
    monitor: str
    metric: str
    labels: dict[str, str]
    group: str | None
    value: float
    expected: float | None
    lower: float | None
    upper: float | None
    #: relative to the expected value, in %; for a share (``deviation_points``) in percentage points
    deviation_pct: float | None
    score: float
    severity: str
    started_at: pd.Timestamp
    last_seen: pd.Timestamp
    owner: str | None
    incident_id: int | None = None
    incident_type: str | None = None
    related: tuple[str, ...] = ()
    status: str = "firing"
    series: pd.Series | None = None
    band: pd.DataFrame | None = None
    #: the metric is a share (an error share, APDEX) and ``deviation_pct`` is its change in percentage
    #: points of the whole: 0.03 % -> 3.4 % is "3.3 points", not "11,000 %"
    deviation_points: bool = False
    #: the anomaly was already over when the detection saw it (the metric back inside its band
    #: before the end of the data): told once, at most at the rule's ``recovered_severity``, with
    #: no separate "resolved" message after it
    recovered: bool = False
    #: what the collection did around the anomaly (a gap in the readings, the same reading repeated,
    #: a counter reset: ``incidents.data_quality``), which the message names beside the values
    data_quality: tuple[DataQualityIssue, ...] = ()
    #: which way the anomaly went at its peak (``up``/``down``; None: unknown): a resolved message
    #: whose latest value lies past the other edge of the usual band (the rebound after an outage, an
    #: error share below its usual after a burst) says so, not that it is "still" outside
    moved: str | None = None


@dataclass(frozen=True)
class Matcher:
    """One silence matcher: ``name`` (a label, or metric/monitor/severity/group/incident_type),
    ``op`` one of ``=``, ``!=``, ``=~``, ``!~`` (regular expressions match the whole value)."""

    name: str
    op: str
    value: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "op": self.op, "value": self.value}


@dataclass(frozen=True)
class Silence:
    id: int
    matchers: tuple[Matcher, ...]
    starts_at: pd.Timestamp
    ends_at: pd.Timestamp
    created_by: str
    comment: str
    created_at: pd.Timestamp
    expired_at: pd.Timestamp | None = None

    def active(self, now: pd.Timestamp) -> bool:
        end = self.ends_at if self.expired_at is None else min(self.ends_at, self.expired_at)
        return bool(self.starts_at <= now < end)

    @property
    def state(self) -> str:
        return "expired" if self.expired_at is not None else "active"


@dataclass
class SkippedCandidate:
    key: str
    reason: str


@dataclass
class SubmitReport:
    """What :func:`telewatch.services.alerting.submit_alerts` did with each candidate."""

    notifications: list[int] = field(default_factory=list)  # outbox ids written
    firing: list[str] = field(default_factory=list)  # keys that produced a firing/update message
    resolved: list[str] = field(default_factory=list)
    deduplicated: list[str] = field(default_factory=list)  # still firing, already told
    silenced: list[str] = field(default_factory=list)
    digested: list[str] = field(default_factory=list)  # held for a digest (low severity, quiet hours)
    skipped: list[SkippedCandidate] = field(default_factory=list)


@dataclass
class DeliveryReport:
    """What :func:`telewatch.services.alerting.deliver_outbox` did."""

    sent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)  # an attempt failed; will be retried
    gave_up: list[int] = field(default_factory=list)
    rate_limited: list[int] = field(default_factory=list)
    digests: list[int] = field(default_factory=list)  # digest notifications created
    errors: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OutboundMessage:
    """A rendered notification as a channel sends it."""

    id: int
    idempotency_key: str
    channel: str
    kind: str
    severity: str
    subject: str
    body_html: str
    body_email: str
    body_text: str
    summary: str
    payload: dict[str, Any]
    chart_png: bytes | None
    created_at: pd.Timestamp
