"""Incident types on the demo: the share of planted incidents whose incident gets the right type.

Two settings over the demo month (:func:`telewatch.demo.generate_demo`, its planted incidents and their
``kind``): ``planted`` — one anomaly per planted metric on the planted window, as a perfect detector
would report; ``detected`` — the anomalies of a real detector (detection's default detector and threshold),
so misses include incidents detection did not find or merged with neighbouring false alarms. Each
planted incident is matched to the stored incident that overlaps it most.

Run: ``telewatch bench demo-types`` (see :func:`evaluate_demo_types`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from telewatch.demo import generate_demo
from telewatch.services.demo_data import load_demo
from telewatch.services.incidents import IncidentSummary, list_incidents, update_incidents
from telewatch.store import incidents as incident_store
from telewatch.store import repo
from telewatch.store.db import Store


@dataclass
class DemoTypesResult:
    mode: str
    planted: int
    found: int
    right: int
    incidents: int
    rows: list[tuple[str, str | None]] = field(default_factory=list)  # (planted kind, given type)

    @property
    def share(self) -> float:
        return self.right / self.planted if self.planted else float("nan")

    def summary_line(self) -> str:
        return (
            f"DEMO-TYPES mode={self.mode} right={self.right}/{self.planted} share={self.share:.3f}"
            f" found={self.found} incidents={self.incidents}"
        )


def evaluate_demo_types(
    *,
    mode: Literal["planted", "detected"] = "detected",
    seed: int = 7,
    days: int = 30,
    detector: str | None = None,
    threshold: float | None = None,
) -> DemoTypesResult:
    """Load the demo into an in-memory store, make incidents, and score their types (see module doc)."""
    from rich.console import Console

    data = generate_demo(seed=seed, days=days)
    with Store(":memory:") as store:
        load_demo(store, data=data, with_nab=False)
        cur = store.cursor()
        if mode == "planted":
            for inc in data.incidents:
                for name in inc.metrics:
                    incident_store.plant_anomaly(
                        cur,
                        metric_id=repo.get_metric(cur, name).id,
                        detector="planted",
                        start=inc.start,
                        end=inc.end,
                        peak=inc.start,
                        peak_score=10.0,
                    )
        else:
            from telewatch.services.detection import detect_metrics

            kwargs: dict[str, Any] = {"threshold": threshold}
            if detector is not None:
                kwargs["detector"] = detector
            detect_metrics(store, console=Console(quiet=True), **kwargs)
        update_incidents(store, now=data.frame.index[-1])
        incidents = list_incidents(store, limit=100_000)
    result = DemoTypesResult(
        mode=mode, planted=len(data.incidents), found=0, right=0, incidents=len(incidents)
    )
    for planted in data.incidents:
        best: IncidentSummary | None = None
        best_overlap = pd.Timedelta(-1)
        for found in sorted(incidents, key=lambda i: i.start):  # ties: the earliest
            overlap = min(found.end, planted.end) - max(found.start, planted.start)
            if overlap >= pd.Timedelta(0) and overlap > best_overlap:
                best, best_overlap = found, overlap
        given = best.type if best is not None else None
        result.found += best is not None
        result.right += given == planted.kind
        result.rows.append((planted.kind, given))
    return result
