"""The demo month through a monitor, as `telewatch replay` runs it: what an on-call person would have
been sent. Every planted incident is told (firing), and little else is.

`telewatch bench demo` counts stored anomalies of a batch detection; this counts messages of the
monitor's own path (daily refit on 14 days, warm-up, ticks, incidents, alert rules), the one that
pages. Hourly ticks (``--every 1h``) keep it to about a minute on two cores; the example monitors
tick every 15 minutes (docs/evaluation.md gives that replay's figures)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from telewatch.demo import DEFAULT_END, generate_demo
from telewatch.services.demo_data import load_demo
from telewatch.services.replay import ReplayIncident, replay
from telewatch.store.db import Store

#: A message is about a planted incident when its incident overlaps the planted window widened by this.
SLACK = pd.Timedelta(minutes=15)


def _metric_names(incident: ReplayIncident) -> set[str]:
    """``apdex{host=app-1,...}`` → ``apdex``."""
    return {m.split("{", 1)[0] for m in incident.metrics}


@pytest.mark.slow
def test_the_demo_month_as_a_monitor_runs_it_tells_every_planted_incident_and_little_else(
    tmp_path: Path,
) -> None:
    data = generate_demo(end=DEFAULT_END)
    with Store(tmp_path / "demo.duckdb") as live:
        load_demo(live, data=data, with_nab=False)
        report = replay(
            live,
            start=pd.Timestamp(data.frame.index[0]).ceil("h"),
            end=pd.Timestamp(data.frame.index[-1]).floor("h"),
            every=timedelta(hours=1),
        )
    assert not report.errors, report.errors
    incidents = {i.id: i for i in report.incidents}
    told = [
        incidents[m.incident_id]
        for m in report.messages
        if m.kind in ("firing", "update") and m.incident_id in incidents
    ]
    missed = [
        (p.kind, str(p.start))
        for p in data.incidents
        if not any(
            i.start <= p.end + SLACK and i.end >= p.start - SLACK and _metric_names(i) & set(p.metrics)
            for i in told
        )
    ]
    assert len(data.incidents) == 11
    assert missed == [], missed
    outside = {
        i.id
        for i in told
        if not any(i.start <= p.end + SLACK and i.end >= p.start - SLACK for p in data.incidents)
    }
    weeks = (data.frame.index[-1] - data.frame.index[0]) / pd.Timedelta(days=7)
    # the target of the demo's catch (issue 19): at most one a week outside the planted incidents
    assert len(outside) <= weeks, [incidents[i].to_dict() for i in outside]
