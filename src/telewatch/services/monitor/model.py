"""What a monitor's tick passes around: the anomalies it found, its report, the alerting setup, and the per-metric point read its anomaly steps share (SQL in ``store.monitors``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from telewatch.services import tick_state
from telewatch.sources.base import series_key
from telewatch.store import monitors as monitors_repo

log = logging.getLogger("telewatch.monitoring")

#: How far back the value and band "usual at this hour" of an anomaly are read (postrules.usual).
USUAL_REACH = pd.Timedelta(days=7, minutes=15)


@dataclass(frozen=True)
class FoundAnomaly:
    """An anomaly this tick created or extended."""

    metric_id: int
    metric: str
    labels: dict[str, str]
    detector: str
    start: pd.Timestamp
    end: pd.Timestamp
    peak: pd.Timestamp
    peak_score: float
    value: float
    expected: float | None
    ongoing: bool
    lower: float | None = None
    upper: float | None = None
    #: the metric did this at this time of day on several recent days (postrules.usual.habitual):
    #: recorded, not paged
    habitual: bool = False
    #: the series' latest reading this tick saw: whether the anomaly is over is judged against it,
    #: not against the tick's clock (a series read every 5 minutes has no reading in the last 2)
    last_reading: pd.Timestamp | None = None

    @property
    def key(self) -> str:
        return f"{series_key(self.metric, self.labels)}:{self.detector}:{self.start.isoformat()}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for the alerts a tick owes (kept in the monitor's state until they are queued)."""
        return {
            "metric_id": self.metric_id,
            "metric": self.metric,
            "labels": dict(self.labels),
            "detector": self.detector,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "peak": self.peak.isoformat(),
            "peak_score": self.peak_score,
            "value": None if np.isnan(self.value) else self.value,
            "expected": self.expected,
            "ongoing": self.ongoing,
            "lower": self.lower,
            "upper": self.upper,
            "habitual": self.habitual,
            "last_reading": None if self.last_reading is None else self.last_reading.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FoundAnomaly:
        return cls(
            metric_id=int(data["metric_id"]),
            metric=str(data["metric"]),
            labels={str(k): str(v) for k, v in dict(data["labels"]).items()},
            detector=str(data["detector"]),
            start=pd.Timestamp(data["start"]),
            end=pd.Timestamp(data["end"]),
            peak=pd.Timestamp(data["peak"]),
            peak_score=float(data["peak_score"]),
            value=float("nan") if data["value"] is None else float(data["value"]),
            expected=None if data["expected"] is None else float(data["expected"]),
            ongoing=bool(data["ongoing"]),
            lower=None if data.get("lower") is None else float(data["lower"]),
            upper=None if data.get("upper") is None else float(data["upper"]),
            habitual=bool(data.get("habitual", False)),
            last_reading=None if data.get("last_reading") is None else pd.Timestamp(data["last_reading"]),
        )


@dataclass
class MonitorRunReport:
    monitor: str
    tick: pd.Timestamp
    status: str  # ok | error | busy | disabled
    attempt: int = 1
    points: int = 0
    series: int = 0
    scored: int = 0
    trained: int = 0
    anomalies: list[FoundAnomaly] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    resolved_items: list[dict[str, Any]] = field(default_factory=list)
    alerts_submitted: int = 0
    alerts_sent: int = 0
    error: str | None = None
    next_retry_at: pd.Timestamp | None = None
    warnings: list[str] = field(default_factory=list)
    #: series not scored yet, and how much more history each still needs (warm-up, min_points)
    warming: dict[int, str] = field(default_factory=dict)


@dataclass
class AlertingSetup:
    """What the alert step needs: rules and channels (from ``telewatch.alerts.config``), and whether to
    deliver the outbox right away (the runner does; a dry run does not)."""

    config: Any  # telewatch.alerts.config.AlertingConfig
    deliver: bool = True


def _wall() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


_NAT = np.iinfo("int64").min  # NaT as datetime64[ns]


def _us(ns: np.ndarray | list[int]) -> pd.DatetimeIndex:
    """Naive UTC timestamps (the store's) from ns since the epoch."""
    return pd.DatetimeIndex(np.asarray(ns, dtype="int64").view("datetime64[ns]")).as_unit("us")


def _points_of(
    cur: Any, metric_ids: list[int], *, lo: int, hi: int, include_hi: bool = False
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Stored points of a few metrics with ``lo <= ts < hi`` (``<= hi`` with ``include_hi``; ns since
    the epoch), per metric (:func:`telewatch.store.monitors.points_between`)."""
    frame = monitors_repo.points_between(
        cur,
        metric_ids,
        lo=_us([lo])[0].to_pydatetime(),
        hi=_us([hi])[0].to_pydatetime(),
        include_hi=include_hi,
    )
    return tick_state.split_by_metric(frame)


#: The monitor cursor's entry for the alerts a tick found but has not queued yet.
OWED = "owed"


def _owed(report: MonitorRunReport) -> dict[str, Any]:
    return {
        "anomalies": [a.to_dict() for a in report.anomalies],
        "resolved": list(report.resolved),
        "resolved_items": list(report.resolved_items),
    }
