"""Grouping: anomalies on several metrics that overlap in time become one incident.

Pure functions over plain values; the store side lives in :mod:`telewatch.services.incidents`.

Two anomalies belong to the same incident when their time spans overlap or lie within ``merge_gap``
of each other (transitively: a chain of overlaps is one incident) **and** their keys are compatible:
a key is the value of a chosen label (``host``, ``site``, ...) or ``None`` where unknown; an anomaly
with a key never joins an incident holding a different key, an anomaly without one joins any.
Anomalies of metrics that different monitors fetch are never one incident (``monitor``, strict:
None is the metrics no monitor fetches): two teams' anomalies at the same minute are two incidents,
each told to its own team.

>>> t = pd.Timestamp("2026-01-01", tz="UTC")
>>> m = pd.Timedelta("1min")
>>> anoms = [
...     AnomalyRecord(1, 10, t, t + 5 * m, t + 2 * m, 9.0),
...     AnomalyRecord(2, 11, t + 3 * m, t + 9 * m, t + 4 * m, 12.0),
...     AnomalyRecord(3, 12, t + 60 * m, t + 61 * m, t + 60 * m, 8.5),
... ]
>>> [(g.anomaly_ids, g.peak_score) for g in group_anomalies(anoms, merge_gap=5 * m)]
[((1, 2), 12.0), ((3,), 8.5)]
>>> other_team = AnomalyRecord(4, 20, t + 1 * m, t + 4 * m, t + 2 * m, 9.5, monitor="access")
>>> [g.anomaly_ids for g in group_anomalies([*anoms, other_team], merge_gap=5 * m)]
[(1, 2), (4,), (3,)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from telewatch.core.errors import ValidationError

__all__ = ["AnomalyRecord", "IncidentDraft", "group_anomalies"]


@dataclass(frozen=True)
class AnomalyRecord:
    """One stored anomaly: its metric, inclusive span, peak, (optional) grouping key and the monitor
    that fetches its metric (anomalies of different monitors are never one incident)."""

    id: int
    metric_id: int
    start: pd.Timestamp
    end: pd.Timestamp
    peak: pd.Timestamp
    peak_score: float
    key: str | None = None
    monitor: str | None = None


@dataclass
class IncidentDraft:
    """An incident before it is stored: the union of its anomalies."""

    start: pd.Timestamp
    end: pd.Timestamp
    peak: pd.Timestamp
    peak_score: float
    peak_metric_id: int
    key: str | None
    monitor: str | None = None
    anomaly_ids: tuple[int, ...] = ()
    metric_ids: tuple[int, ...] = ()
    _anoms: list[AnomalyRecord] = field(default_factory=list, repr=False)

    def add(self, a: AnomalyRecord) -> None:
        self._anoms.append(a)
        self.start = min(self.start, a.start)
        self.end = max(self.end, a.end)
        if a.peak_score > self.peak_score:
            self.peak, self.peak_score, self.peak_metric_id = a.peak, a.peak_score, a.metric_id
        if self.key is None:
            self.key = a.key
        self.anomaly_ids = tuple(sorted(x.id for x in self._anoms))
        self.metric_ids = tuple(sorted({x.metric_id for x in self._anoms}))


def _compatible(a: IncidentDraft | AnomalyRecord, b: IncidentDraft | AnomalyRecord) -> bool:
    """May be one incident: the same monitor, and keys that agree where both are known."""
    return a.monitor == b.monitor and (a.key is None or b.key is None or a.key == b.key)


def group_anomalies(
    anomalies: Sequence[AnomalyRecord], *, merge_gap: pd.Timedelta = pd.Timedelta("5min")
) -> list[IncidentDraft]:
    """Group anomalies into incidents, in order of start. Deterministic for the same input."""
    gap = pd.Timedelta(merge_gap)
    if gap < pd.Timedelta(0):
        raise ValidationError(f"merge_gap must not be negative, got {merge_gap}")
    for a in anomalies:
        if a.end < a.start:
            raise ValidationError(f"anomaly {a.id}: end {a.end} is before start {a.start}")
    ordered = sorted(anomalies, key=lambda a: (a.start, a.end, a.id))
    done: list[IncidentDraft] = []
    open_: list[IncidentDraft] = []
    for a in ordered:
        still_open: list[IncidentDraft] = []
        for draft in open_:
            (still_open if a.start <= draft.end + gap else done).append(draft)
        open_ = still_open
        home = next((d for d in open_ if _compatible(d, a)), None)
        if home is None:
            home = IncidentDraft(a.start, a.end, a.peak, a.peak_score, a.metric_id, a.key, a.monitor)
            open_.append(home)
        home.add(a)
        # an anomaly can bridge two open incidents with compatible keys: merge them
        for other in [d for d in open_ if d is not home]:
            if _compatible(other, home) and other.start <= home.end + gap and home.start <= other.end + gap:
                for b in other._anoms:
                    home.add(b)
                open_.remove(other)
    done.extend(open_)
    return sorted(done, key=lambda d: (d.start, d.anomaly_ids))
