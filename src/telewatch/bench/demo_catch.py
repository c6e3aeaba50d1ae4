"""The demo's catch: how many planted incidents detection finds, and how many incidents it adds.

The demo month (:func:`telewatch.demo.generate_demo`, fixed ``end`` so the figure is stable) is
loaded into an in-memory store exactly as ``telewatch demo`` loads it, detection runs with the
default detector and threshold (:func:`telewatch.services.detection.detect_metrics`), and anomalies
are grouped into incidents (:func:`telewatch.services.incidents.update_incidents`). Then:

* a planted incident is **caught** when a stored anomaly on one of its planted metrics overlaps its
  window widened by ``slack`` (±15 min) on each side;
* an **outside incident** is a stored incident that overlaps no planted window (widened likewise).

The target (issue 19): every planted incident caught, at most one outside incident a week.

Run: ``telewatch bench demo``; the last line reads
``DEMO planted=11 caught=K outside_incidents=N weeks=W``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from telewatch.demo import DEFAULT_END, DemoIncident, generate_demo
from telewatch.services.demo_data import load_demo
from telewatch.services.detection import detect_metrics, read_anomalies
from telewatch.services.incidents import IncidentSummary, list_incidents, update_incidents
from telewatch.store.db import Store

SLACK = pd.Timedelta(minutes=15)


@dataclass
class DemoCatchResult:
    detector: str
    days: int
    planted: list[DemoIncident] = field(default_factory=list)
    missed: list[DemoIncident] = field(default_factory=list)
    anomalies: int = 0
    incidents: int = 0
    outside: list[IncidentSummary] = field(default_factory=list)

    @property
    def caught(self) -> int:
        return len(self.planted) - len(self.missed)

    @property
    def weeks(self) -> float:
        return self.days / 7.0

    def detail_lines(self) -> list[str]:
        lines = [
            f"missed {inc.kind} {inc.start:%Y-%m-%d %H:%M}–{inc.end:%H:%M} ({', '.join(inc.metrics)})"
            for inc in self.missed
        ]
        lines += [f"outside {i.start:%Y-%m-%d %H:%M}–{i.end:%H:%M} {i.title}" for i in self.outside]
        return lines

    def summary_line(self) -> str:
        return (
            f"DEMO planted={len(self.planted)} caught={self.caught} outside_incidents={len(self.outside)}"
            f" weeks={self.weeks:.1f} anomalies={self.anomalies} incidents={self.incidents}"
            f" detector={self.detector}"
        )


def _overlaps(start: pd.Timestamp, end: pd.Timestamp, inc: DemoIncident) -> bool:
    return bool(start <= inc.end + SLACK and end >= inc.start - SLACK)


def evaluate_demo_catch(
    *,
    seed: int = 7,
    days: int = 30,
    end: pd.Timestamp | None = None,
    detector: str | None = None,
    params: dict[str, Any] | None = None,
    threshold: float | None = None,
) -> DemoCatchResult:
    """Load the demo into an in-memory store, detect, group, and count catches (see module doc)."""
    from rich.console import Console

    data = generate_demo(seed=seed, days=days, end=end if end is not None else DEFAULT_END)
    with Store(":memory:") as store:
        load_demo(store, data=data, with_nab=False)
        report = detect_metrics(
            store, detector=detector, params=params, threshold=threshold, console=Console(quiet=True)
        )
        update_incidents(store, now=data.frame.index[-1])
        incidents = list_incidents(store, limit=100_000)
        anomalies = read_anomalies(store)
    result = DemoCatchResult(
        detector=report.detector,
        days=days,
        planted=list(data.incidents),
        anomalies=len(anomalies),
        incidents=len(incidents),
    )
    for inc in data.incidents:
        on_metric = anomalies[anomalies["metric"].isin(list(inc.metrics))]
        hit = any(
            _overlaps(pd.Timestamp(s), pd.Timestamp(e), inc)
            for s, e in zip(on_metric["start_ts"], on_metric["end_ts"], strict=True)
        )
        if not hit:
            result.missed.append(inc)
    result.outside = sorted(
        (i for i in incidents if not any(_overlaps(i.start, i.end, inc) for inc in data.incidents)),
        key=lambda i: i.start,
    )
    return result
