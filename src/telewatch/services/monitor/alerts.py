"""From a tick's anomalies to alert candidates: what pages (news, not habits, not blips, not too small to matter), with the incident, the usual band and a severity from score and deviation; the rule a monitor's ``channels`` make."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pandas as pd

from telewatch.monitors.config import MonitorSpec
from telewatch.services.alert_context import Latest, firing_candidate, is_ongoing, latest_against_usual
from telewatch.services.monitor.model import AlertingSetup, FoundAnomaly, MonitorRunReport
from telewatch.store import anomalies as anomalies_repo
from telewatch.store import monitors as monitors_repo
from telewatch.store import repo
from telewatch.store.db import Store


# -- alerting glue ------------------------------------------------------------------------------------
def _alertable(spec: MonitorSpec, report: MonitorRunReport, a: FoundAnomaly) -> bool:
    """Whether this tick may page about ``a``: only an anomaly that reaches into the data this tick
    brought (or the tick just before) is news. A monitor's first tick and a backfill record the
    anomalies of history without paging about them; a daily habit (the evening peak, the nightly
    batch) is recorded, not paged."""
    if a.habitual:
        return False
    data_end = report.tick - pd.Timedelta(spec.lag)
    recent = data_end - pd.Timedelta(spec.schedule.nominal_interval) - pd.Timedelta(minutes=1)
    return bool(a.ongoing or a.end >= recent)


def _over(spec: MonitorSpec, report: MonitorRunReport, a: FoundAnomaly) -> bool:
    """Over by the time the tick sees it: its last anomalous point is not at the edge of the series'
    data — its latest reading (``a.last_reading``; the tick's data end when unknown), so a series read
    every 5 minutes, whose latest reading is up to 5 minutes before the tick, is not "back to normal"
    while its latest reading is the anomaly's. (``a.ongoing`` is wider: within the detector's merge
    gap, so the next tick may extend it.)"""
    edge = a.last_reading if a.last_reading is not None else report.tick - pd.Timedelta(spec.lag)
    return not is_ongoing(a.end, edge)


def _blip(spec: MonitorSpec, a: FoundAnomaly, *, over: bool, related: Sequence[str]) -> bool:
    """A blip: ``over`` by the time the tick sees it (:func:`_over`), shorter than
    ``alert.min_blip``, with no other metric anomalous in its incident — nothing for a person to act
    on when the message arrives. Recorded and shown in the UI; not paged."""
    if related or not over:
        return False
    return bool(a.end - a.start + pd.Timedelta(minutes=1) < pd.Timedelta(spec.alert.min_blip))


def _incidents_of(
    cur: Any, items: Sequence[tuple[int, str, pd.Timestamp]]
) -> dict[tuple[int, str, pd.Timestamp], tuple[int, str | None, tuple[str, ...]]]:
    """(incident id, type, other anomalous metrics) of each (metric id, detector, start) anomaly."""
    out: dict[tuple[int, str, pd.Timestamp], tuple[int, str | None, tuple[str, ...]]] = {}
    for mid, det, start in items:
        incident = monitors_repo.incident_of_anomaly(cur, metric_id=mid, detector=det, start=start)
        if incident is None:
            continue
        related = monitors_repo.other_anomalous_metrics(
            cur, incident_id=incident[0], except_metric=mid, limit=5
        )
        out[(mid, det, start)] = (incident[0], incident[1], tuple(related))
    return out


def build_candidates(spec: MonitorSpec, report: MonitorRunReport, *, store: Store) -> list[Any]:
    """Alert candidates (``telewatch.alerts.model.AlertCandidate``) for the anomalies of this tick:
    firing for new or extended ones (only those reaching into this tick's data: see
    :func:`_alertable`), each with its incident so one incident is one message."""

    out: list[Any] = []
    cur = store.cursor()
    news = [a for a in report.anomalies if _alertable(spec, report, a)]
    incidents = _incidents_of(cur, [(a.metric_id, a.detector, a.start) for a in news])
    for a in news:
        incident = incidents.get((a.metric_id, a.detector, a.start))
        over = _over(spec, report, a)
        if _blip(spec, a, over=over, related=incident[2] if incident else ()):
            continue
        candidate = firing_candidate(
            cur,
            key=f"{spec.name}:{a.key}",
            monitor=spec.name,
            metric_id=a.metric_id,
            metric=a.metric,
            labels=a.labels,
            group=spec.group,
            owner=spec.owner,
            start=a.start,
            end=a.end,
            value=a.value,
            expected=a.expected,
            lower=a.lower,
            upper=a.upper,
            score=a.peak_score,
            severity=spec.alert.severity or "warning",
            min_change=spec.alert.min_change,
            incident=incident,
            recovered=over,
            data_end=report.tick - pd.Timedelta(spec.lag),
        )
        if candidate is not None:  # None: too small a change to matter (alert.min_change)
            out.append(candidate)
    return out


def _resolved_candidates(spec: MonitorSpec, report: MonitorRunReport, *, store: Store) -> list[Any]:
    """Resolved candidates for the anomalies that ended: the true duration (first to last anomalous
    point) and, as the value, the metric's latest reading with the band usual at its minute (the
    message says so when the detector let go while the value is still outside it)."""
    from telewatch.alerts.model import AlertCandidate

    out: list[Any] = []
    cur = store.cursor()
    rows = []
    for item in report.resolved_items:
        start = pd.Timestamp(item["start"])
        stored = anomalies_repo.anomaly_at(
            cur, metric_id=int(item["metric_id"]), detector=str(item["detector"]), start=start
        )
        if stored is not None:
            rows.append((item, start, stored))
    incidents = _incidents_of(cur, [(int(i["metric_id"]), str(i["detector"]), s) for i, s, _r in rows])
    for item, start, row in rows:
        info = repo.get_metric(cur, int(item["metric_id"]))
        # the latest reading against the band usual at its minute (the stored band is the peak's)
        now = latest_against_usual(cur, int(item["metric_id"]), report.tick)
        if now.value is None:
            now = Latest(
                float(row.value) if row.value is not None else float("nan"),
                float(row.expected) if row.expected is not None else None,
                float(row.lower) if row.lower is not None else None,
                float(row.upper) if row.upper is not None else None,
            )
        incident = incidents.get((int(item["metric_id"]), str(item["detector"]), start))
        out.append(
            AlertCandidate(
                key=f"{spec.name}:{item['key']}",
                monitor=spec.name,
                metric=info.name,
                labels=dict(info.labels),
                group=spec.group,
                value=now.value if now.value is not None else float("nan"),
                expected=now.expected,
                lower=now.lower,
                upper=now.upper,
                deviation_pct=None,
                score=row.peak_score,
                severity=spec.alert.severity or "warning",
                started_at=start,
                last_seen=row.end,
                owner=spec.owner,
                incident_id=incident[0] if incident else None,
                incident_type=incident[1] if incident else None,
                status="resolved",
                moved=_moved(row.value, row.expected),
            )
        )
    return out


def _moved(value: Any, expected: Any) -> str | None:
    """``up``/``down``: which way an anomaly went at its peak (None where its row stores no values).

    >>> _moved(504.1, 4806.0), _moved(0.9, 0.0004), _moved(None, 1.0), _moved(float("nan"), 1.0)
    ('down', 'up', None, None)
    """
    if value is None or expected is None:
        return None
    v, e = float(value), float(expected)
    if not (math.isfinite(v) and math.isfinite(e)) or v == e:
        return None
    return "up" if v > e else "down"


#: Severity from the calibrated score and the deviation from what is usual at that hour, for a
#: monitor without a fixed ``alert.severity``: critical for an extreme score or a large deviation —
#: relative to the usual value in %, or for a share (an error share, APDEX) in percentage points of
#: the whole (postrules.material.deviation: 0.03 % -> 3 % of errors is 3 points, a warning).
CRITICAL_SCORE = 8.0
CRITICAL_DEVIATION_PCT = 50.0
CRITICAL_WITH_SCORE_PCT = 20.0
#: ... and sustained (``alert.critical_after``), or on this many metrics of one incident at once
CRITICAL_METRICS = 2


def monitor_rules(specs: Sequence[MonitorSpec]) -> list[Any]:
    """One alert rule per monitor that names ``channels`` (matching only that monitor's alerts)."""
    from telewatch.alerts.config import Match, Rule, SeverityLevel

    rules = []
    for spec in specs:
        if not spec.channels:
            continue
        if spec.alert.severity is not None:
            levels = [SeverityLevel(level=spec.alert.severity)]
        else:
            # the first satisfied wins: a large score alone (a value just past the range seen, by a
            # few %) is not critical, a large deviation from the usual value is — once sustained, or
            # at once on several metrics of one incident
            after = spec.alert.critical_after
            sustained: list[dict[str, Any]] = (
                [{"min_metrics": CRITICAL_METRICS}, {"min_duration": after}] if after > timedelta(0) else [{}]
            )
            levels = [
                SeverityLevel(
                    level="critical", min_score=CRITICAL_SCORE, min_deviation_pct=CRITICAL_WITH_SCORE_PCT, **s
                )
                for s in sustained
            ]
            levels += [
                SeverityLevel(level="critical", min_deviation_pct=CRITICAL_DEVIATION_PCT, **s)
                for s in sustained
            ]
            levels.append(SeverityLevel(level="warning"))
        rules.append(
            Rule(
                name=f"monitor:{spec.name}",
                match=Match(monitors=[spec.name]),
                severity=levels,
                min_duration=spec.alert.min_duration,
                repeat_interval=spec.alert.repeat_interval,
                channels=list(spec.channels),
                owner=spec.owner if spec.owner and spec.owner.startswith("@") else None,
                send_resolved=spec.alert.send_resolved,
                recovered_severity=spec.alert.recovered_severity,
                digest=spec.alert.digest,
            )
        )
    return rules


def submit_and_deliver(
    store: Store, *, spec: MonitorSpec, report: MonitorRunReport, alerting: AlertingSetup, now: pd.Timestamp
) -> tuple[int, int]:
    """The alert step: hand this tick's candidates to ``telewatch.services.alerting`` and deliver the outbox.

    Returns (candidates submitted, notifications sent).
    """
    from telewatch.services import alerting as alerting_service

    candidates = build_candidates(spec, report, store=store) + _resolved_candidates(spec, report, store=store)
    config = alerting.config
    if candidates:
        alerting_service.submit_alerts(
            store,
            candidates=candidates,
            rules=[*config.rules, *monitor_rules([spec])],
            config=config,
            now=now,
        )
    sent = 0
    if alerting.deliver:
        delivery = alerting_service.deliver_outbox(store, channels=config, now=now)
        sent = len(delivery.sent)
    return len(candidates), sent
