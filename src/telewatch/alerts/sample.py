"""A sample alert candidate: for ``telewatch alerts test``, the trial render of message templates and
examples. Depends on :mod:`telewatch.alerts.model` only."""

from __future__ import annotations

import numpy as np
import pandas as pd

from telewatch.alerts.model import AlertCandidate


def sample_candidate(
    *,
    metric: str = "web_response_ms",
    labels: dict[str, str] | None = None,
    now: pd.Timestamp | None = None,
    key: str | None = None,
    incident_id: int | None = 42,
    owner: str | None = "@web-oncall",
    status: str = "firing",
    score: float = 9.5,
    severity: str = "critical",
    with_series: bool = True,
) -> AlertCandidate:
    """A realistic candidate (a latency spike with its expected band): for ``alerts test`` and examples."""
    now = (now or pd.Timestamp.now(tz="UTC")).floor("min")
    labels = {"dc": "eu-west", "service": "checkout"} if labels is None else labels
    index = pd.date_range(end=now, periods=360, freq="min", tz="UTC")
    phase = np.arange(len(index)) / 1440 * 2 * np.pi
    expected = 180 + 40 * np.sin(phase)
    rng = np.random.default_rng(7)
    values = expected + rng.normal(0, 6, len(index))
    started = now - pd.Timedelta(minutes=17)
    values[index >= started] *= 2.4
    series = pd.Series(values, index=index, name=metric) if with_series else None
    band = (
        pd.DataFrame({"expected": expected, "lower": expected - 25, "upper": expected + 25}, index=index)
        if with_series
        else None
    )
    value, exp = float(values[-1]), float(expected[-1])
    return AlertCandidate(
        key=key or f"sample:{metric}:{','.join(f'{k}={v}' for k, v in sorted(labels.items()))}",
        monitor="sample",
        metric=metric,
        labels=labels,
        group="web",
        value=value,
        expected=exp,
        lower=exp - 25,
        upper=exp + 25,
        deviation_pct=(value - exp) / exp * 100,
        score=score,
        severity=severity,
        started_at=started,
        last_seen=now,
        owner=owner,
        incident_id=incident_id,
        incident_type="latency degradation",
        related=("web_error_rate", "db_query_ms"),
        status=status,
        series=series,
        band=band,
    )
