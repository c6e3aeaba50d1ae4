"""Lifecycle decisions, pure functions: dedup/repeat/update/resolve, grouping, digests, backoff, limits."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import pandas as pd

from telewatch.alerts.config import RetryPolicy
from telewatch.alerts.model import AlertCandidate, severity_rank


@dataclass(frozen=True)
class AlertState:
    """What the store remembers about one dedup key."""

    key: str
    status: str
    severity: str
    notified: bool
    notified_severity: str | None
    last_notified_at: pd.Timestamp | None
    started_at: pd.Timestamp
    incident_id: int | None = None
    silenced_by: int | None = None


def next_event(
    candidate: AlertCandidate,
    *,
    severity: str,
    state: AlertState | None,
    repeat_interval: timedelta,
    now: pd.Timestamp,
) -> str | None:
    """What to tell people about ``candidate`` now: ``firing`` (new), ``update`` (more severe than what was
    said), ``repeat`` (still firing after ``repeat_interval``), ``resolved``, or None (already told).

    >>> from telewatch.alerts.sample import sample_candidate
    >>> c = sample_candidate(now=pd.Timestamp("2026-01-01 12:00", tz="UTC"))
    >>> next_event(c, severity="critical", state=None, repeat_interval=timedelta(hours=4), now=c.last_seen)
    'firing'
    """
    told = state is not None and state.status == "firing" and state.notified
    if candidate.status == "resolved":
        return "resolved" if told else None
    if not told:
        return "firing"
    assert state is not None
    if state.notified_severity is None or severity_rank(severity) > severity_rank(state.notified_severity):
        return "update"
    if state.last_notified_at is None or now - state.last_notified_at >= pd.Timedelta(repeat_interval):
        return "repeat"
    return None


def group_kind(events: Sequence[str]) -> str:
    """The kind of one message carrying several events.

    >>> group_kind(["resolved", "resolved"]), group_kind(["repeat", "firing"]), group_kind(["repeat", "update"])
    ('resolved', 'firing', 'update')
    """
    if all(e == "resolved" for e in events):
        return "resolved"
    for kind in ("firing", "update", "repeat"):
        if kind in events:
            return kind
    return "firing"


def group_key(candidate: AlertCandidate, *, by_incident: bool) -> str:
    """Alerts sharing a group key travel in one message: one incident's metrics, or one alert alone."""
    if by_incident and candidate.incident_id is not None:
        return f"{candidate.monitor}:incident:{candidate.incident_id}"
    return candidate.key


def idempotency_key(*, channel: str, group: str, kind: str, keys: Sequence[str], now: pd.Timestamp) -> str:
    """A key unique to one notification and stable across retries (it is stored, never recomputed).

    >>> idempotency_key(channel="ops", group="g", kind="firing", keys=["a"], now=pd.Timestamp(0, tz="UTC"))
    'ops:g:firing:19700101T000000Z:ca978112'
    """
    digest = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:8]
    stamp = now.tz_convert("UTC").strftime("%Y%m%dT%H%M%SZ")
    return f"{channel}:{group}:{kind}:{stamp}:{digest}"


def digest_due(now: pd.Timestamp, interval: timedelta) -> pd.Timestamp:
    """The end of the digest window containing ``now`` (windows aligned on the Unix epoch).

    >>> digest_due(pd.Timestamp("2026-01-01 10:20", tz="UTC"), timedelta(hours=1))
    Timestamp('2026-01-01 11:00:00+0000', tz='UTC')
    """
    step = pd.Timedelta(interval)
    return now.floor(step) + step


def backoff(attempts: int, policy: RetryPolicy, *, retry_after: float | None = None) -> pd.Timedelta:
    """Delay before the next attempt after ``attempts`` failed ones: doubling from ``initial`` up to ``max``;
    a channel's own ``retry_after`` wins when longer.

    >>> p = RetryPolicy(initial=10, max=60)
    >>> [backoff(n, p).total_seconds() for n in (1, 2, 3, 4, 5)]
    [10.0, 20.0, 40.0, 60.0, 60.0]
    """
    initial = policy.initial.total_seconds()
    delay = min(policy.max.total_seconds(), initial * 2 ** max(0, attempts - 1))
    if retry_after is not None:
        delay = max(delay, retry_after)
    return pd.Timedelta(seconds=delay)
