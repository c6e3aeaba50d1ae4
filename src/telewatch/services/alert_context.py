"""The firing alert about one anomaly, for every path that alerts (a monitor's tick, ``telewatch
detect``, an upload): whether it is worth paging, its deviation, and what it shows beside its numbers —
the chart's last hours of the metric and the band usual at each of those minutes (the same time of
day on the previous days)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from telewatch.alerts.chart import CHART_POINTS
from telewatch.alerts.model import AlertCandidate
from telewatch.incidents.types import QUALITY_AFTER, QUALITY_BEFORE, metric_quality_issues
from telewatch.postrules.material import assess
from telewatch.postrules.usual import usual_band
from telewatch.store import repo

#: Hours of the metric an alert's chart shows before the anomaly, and at least ``CHART_POINTS``
#: readings (``alerts.chart``: an hourly metric's chart spans 3 days, not 6 points)
CHART_HOURS = 6
#: Days of history the usual band is read from (postrules.usual.usual_at's default).
BAND_DAYS = 7


@dataclass(frozen=True)
class AlertContext:
    """``window``: the points the chart draws; ``band``: the usual band over them (``expected``,
    ``lower``, ``upper``); ``history``: the metric's values over the band's days (to infer its kind)."""

    window: pd.Series
    band: pd.DataFrame
    history: pd.Series


def alert_context(cur: Any, metric_id: int, start: pd.Timestamp, end: pd.Timestamp) -> AlertContext:
    """The chart window (``CHART_HOURS`` before ``start``, or ``CHART_POINTS`` readings when those
    reach further back, to ``end``) and the usual band over it, read from the store through ``cur``."""
    first = start - pd.Timedelta(hours=CHART_HOURS)
    history = repo.read_series(
        cur, metric_id, start=first - pd.Timedelta(days=BAND_DAYS), end=end + pd.Timedelta(minutes=1)
    )
    before = pd.DatetimeIndex(history.dropna().index)
    before = before[before < start]
    if len(before) and int((before >= first).sum()) < CHART_POINTS:
        first = min(first, before[max(0, len(before) - CHART_POINTS)])
    window = history[history.index >= first]
    band = usual_band(history, pd.DatetimeIndex(window.index))
    return AlertContext(window=window, band=band, history=history)


@dataclass(frozen=True)
class Latest:
    """A metric's latest reading and the band usual at its time (None where not known)."""

    value: float | None
    expected: float | None
    lower: float | None
    upper: float | None


def latest_against_usual(cur: Any, metric_id: int, at: pd.Timestamp) -> Latest:
    """The metric's latest reading at or before ``at``, with the band usual at that minute
    (:func:`~telewatch.postrules.usual.usual_band` over the ``BAND_DAYS`` before): what a
    resolved message compares the value with — not the band of the anomaly's start, hours ago."""
    history = repo.read_series(
        cur, metric_id, start=at - pd.Timedelta(days=BAND_DAYS), end=at + pd.Timedelta(minutes=1)
    ).dropna()
    if history.empty:
        return Latest(None, None, None, None)
    band = usual_band(history, pd.DatetimeIndex(history.index[-1:])).iloc[-1]

    def known(x: float) -> float | None:
        return float(x) if np.isfinite(x) else None

    return Latest(
        float(history.iloc[-1]), known(band["expected"]), known(band["lower"]), known(band["upper"])
    )


#: An anomaly whose last anomalous point lies this close to the end of the data is still going on
#: (the next reading may well be anomalous too); one that ended earlier is over.
ONGOING_EDGE = pd.Timedelta(minutes=2)


def is_ongoing(end: pd.Timestamp, data_end: pd.Timestamp) -> bool:
    """Whether an anomaly that last fired at ``end`` may still be going on at ``data_end``.

    >>> t = pd.Timestamp("2024-04-28 07:15", tz="UTC")
    >>> is_ongoing(t - pd.Timedelta(minutes=1), t), is_ongoing(t - pd.Timedelta(minutes=16), t)
    (True, False)
    """
    return bool(end >= data_end - ONGOING_EDGE)


def firing_candidate(
    cur: Any,
    *,
    key: str,
    monitor: str,
    metric_id: int,
    metric: str,
    labels: Mapping[str, str],
    group: str | None,
    owner: str | None,
    start: pd.Timestamp,
    end: pd.Timestamp,
    value: float,
    expected: float | None,
    lower: float | None,
    upper: float | None,
    score: float,
    severity: str,
    min_change: Mapping[str, float] | None = None,
    incident: tuple[int, str | None, Sequence[str]] | None = None,
    recovered: bool = False,
    data_end: pd.Timestamp | None = None,
) -> AlertCandidate | None:
    """The firing alert for one anomaly, with its chart and usual band, its deviation (in percentage
    points for a share) — or None when the change is too small to matter (``min_change``, see
    :mod:`telewatch.postrules.material`): recorded, not paged. ``incident``: (id, type, the other
    anomalous metrics) of the incident the anomaly belongs to; ``recovered``: already over when
    found (see :func:`is_ongoing`). The chart runs on to ``data_end`` (the end of the data the
    detection saw) where it is given: the reader sees the latest readings — the return to normal
    of one already over, and those after the last anomalous point of one that may still go on."""
    context = alert_context(cur, metric_id, start, max(end, data_end) if data_end is not None else end)
    page, deviation, points = assess(
        metric,
        unit=repo.get_metric(cur, metric_id).unit,
        history=context.history.to_numpy(),
        value=value,
        lower=lower,
        upper=upper,
        expected=expected,
        overrides=min_change,
    )
    if not page:
        return None
    # over the stretch an incident is typed from (services.incidents._quality), so that the message
    # names the issues its incident type was read from
    h = context.history
    typed = h[(h.index >= start - QUALITY_BEFORE) & (h.index <= end + QUALITY_AFTER)]
    quality = metric_quality_issues(typed, start, end)
    return AlertCandidate(
        key=key,
        monitor=monitor,
        metric=metric,
        labels=dict(labels),
        group=group,
        value=value,
        expected=expected,
        lower=lower,
        upper=upper,
        deviation_pct=deviation,
        deviation_points=points,
        score=score,
        severity=severity,
        started_at=start,
        last_seen=end,
        owner=owner,
        incident_id=incident[0] if incident else None,
        incident_type=incident[1] if incident else None,
        related=tuple(incident[2]) if incident else (),
        status="firing",
        series=context.window,
        band=context.band,
        recovered=recovered,
        data_quality=tuple(quality),
    )
