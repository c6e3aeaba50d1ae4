"""Use-case: turn stored anomalies into incidents — grouped, ranked, typed, opened and resolved.

:func:`update_incidents` is idempotent: it regroups the anomalies and matches each group to the
stored incident it overlaps (same slice key), updating that one in place; a group matching several
stored incidents merges them into the oldest. Rerunning it over the same anomalies changes nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from telewatch.core.errors import NotFoundError, ValidationError
from telewatch.incidents.grouping import AnomalyRecord, IncidentDraft, group_anomalies
from telewatch.incidents.ranking import directions
from telewatch.incidents.types import (
    QUALITY_AFTER,
    QUALITY_BEFORE,
    MetricChange,
    RuleSet,
    classify,
    involvement_cut,
    load_rules,
    metric_quality_changes,
    with_quality,
)
from telewatch.services.explain import ScannedRows, explain_window
from telewatch.store import incidents as incident_store
from telewatch.store import monitors as monitors_repo
from telewatch.store.db import Store
from telewatch.store.incidents import IncidentFields, IncidentMemberRow, IncidentMetric, IncidentSummary

MIN_WINDOW = pd.Timedelta("10min")
"""The shortest window an incident's metrics are ranked over (from its start)."""

__all__ = [
    "IncidentDetail",
    "IncidentMetric",
    "IncidentSummary",
    "IncidentUpdate",
    "get_incident",
    "list_incidents",
    "resolve_incident",
    "update_incidents",
]


@dataclass(frozen=True)
class IncidentDetail:
    incident: IncidentSummary
    metrics: list[IncidentMetric]
    anomaly_ids: list[int]


@dataclass
class IncidentUpdate:
    created: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    merged: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    open: int = 0
    resolved: int = 0


def _utc(value: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _read_anomalies(
    store: Store, *, since: pd.Timestamp | None, split_label: str | None
) -> list[AnomalyRecord]:
    spans = incident_store.read_anomaly_spans(store.cursor(), since=since, split_label=split_label)
    return [AnomalyRecord(*span) for span in spans]


def _involved(
    scanned: ScannedRows | None,
    anomaly_directions: Mapping[int, str] | None = None,
    anomalous: Collection[int] = (),
) -> list[MetricChange]:
    """Metrics that type the incident: those the scan says clearly moved in its window (score at
    least :func:`involvement_cut` of the top score), most suspicious first.

    Detection flags alone do not count: a noisy metric's false alarm inside a real incident would
    otherwise change its type. Read from the scan's evidence of all metrics: no ranked row is
    formatted for them (an incident can involve thousands). ``anomaly_directions``: metric id →
    ``up``/``down`` of its anomaly (value against expected at its peak); an involved anomalous
    metric moved that way, whatever its window's mean did (a dip inside a noisy window can leave the
    window's mean a little higher). The ``anomalous`` metrics (ids) are involved whatever their scan
    score, flagged so that the type must explain one of them."""
    if scanned is None or not scanned.evidence.score.size:
        return []
    score = scanned.evidence.score
    order = np.argsort(-score, kind="stable")  # the ranking's order
    flagged = np.isin(np.asarray(scanned.metric_ids, dtype=np.int64)[order], np.fromiter(anomalous, np.int64))
    rows = order[(score[order] >= involvement_cut(float(score.max()))) | flagged]
    moves = directions(scanned.evidence)[rows].tolist()
    known = anomaly_directions or {}
    marked = set(anomalous)
    return [
        MetricChange(
            scanned.names[i].split("{")[0],
            known.get(scanned.metric_ids[i], move),  # type: ignore[arg-type]
            scanned.groups[i],
            anomalous=scanned.metric_ids[i] in marked,
        )
        for i, move in zip(rows.tolist(), moves, strict=True)
    ]


def _anomaly_directions(store: Store, anomaly_ids: Sequence[int]) -> dict[int, str]:
    """Per metric of the anomalies: ``up`` or ``down``, as its strongest anomaly's value stood
    against the expected value (metrics whose anomalies store neither are absent)."""
    if not anomaly_ids:
        return {}
    rows = incident_store.anomaly_values(store.cursor(), anomaly_ids)
    return {m: ("up" if v > e else "down") for m, v, e in rows}  # the strongest last


def _involved_rows(ranked: Sequence[Any], anomalous: set[int]) -> list[Any]:
    """The ranked rows an incident keeps: its anomalous metrics, and the others that clearly moved
    (not flat, score at least :func:`involvement_cut` of the top) — "Metrics involved"."""
    if not ranked:
        return []
    cut = involvement_cut(max(float(r.ranked.score) for r in ranked))
    return [
        r
        for r in ranked
        if r.metric_id in anomalous or (r.ranked.direction != "flat" and r.ranked.score >= cut)
    ]


def _title(store: Store, type_title: str | None, rows: Sequence[Any], anomalous_ids: Sequence[int]) -> str:
    """``<type title>: <metrics>``: the anomalous metrics first (in rank order; those the scan left
    out, by name), then the other metrics that moved, three names at most."""
    anomalous = set(anomalous_ids)
    ranked_ids = {r.metric_id for r in rows}
    names = [
        r.ranked.name.split("{")[0]
        for r in sorted(rows, key=lambda r: (r.metric_id not in anomalous, r.ranked.rank))
    ]
    missing = [int(i) for i in anomalous_ids if int(i) not in ranked_ids]
    if missing:
        found = incident_store.metric_names(store.cursor(), missing)
        # anomalous metrics the scan left out (no baseline yet) still name the incident, before movers
        n_anomalous = sum(1 for r in rows if r.metric_id in anomalous)
        names[n_anomalous:n_anomalous] = [str(found[i]) for i in missing if i in found]
    unique = list(dict.fromkeys(names))[:3]
    head = type_title or "Anomaly"
    return f"{head}: {', '.join(unique)}" if unique else head


def update_incidents(
    store: Store,
    *,
    now: pd.Timestamp | str | None = None,
    merge_gap: pd.Timedelta | str = "5min",
    quiet: pd.Timedelta | str = "30min",
    split_label: str | None = None,
    since: pd.Timestamp | str | None = None,
    rules: RuleSet | None = None,
    rules_path: Path | str | None = None,
    rank_limit: int = 10,
    rerank_unchanged: bool = True,
) -> IncidentUpdate:
    """Group the stored anomalies (ending at or after ``since``, default all) into incidents.

    ``merge_gap``: anomalies closer than this are one incident, when their metrics are fetched by
    the same monitor (or by none: uploads, ``telewatch detect``) — each team's anomalies make its own
    incidents, though the ranking still scans every metric for what moved with them.
    ``split_label``: a label (``host``, ``site``) whose different values keep incidents apart.
    ``quiet``: an incident with no anomaly for this long before ``now`` is resolved. Each incident's
    metrics are ranked by the window scan (the peak metric is the target) and the incident is typed
    by the rule set (``rules``, else the file ``rules_path``, else ``$TELEWATCH_INCIDENT_TYPES``,
    else the shipped rules).

    ``rerank_unchanged=False`` (the scheduler's ticks): an incident whose window, peak and anomalies
    are as stored keeps its ranking and type, and only its state is brought up to date — ranking
    scans every metric, and a tick would otherwise re-rank every incident of the last day.
    """
    now_ts = _utc(now) if now is not None else pd.Timestamp.now(tz="UTC")
    gap, quiet_td = pd.Timedelta(merge_gap), pd.Timedelta(quiet)
    if gap < pd.Timedelta(0) or quiet_td <= pd.Timedelta(0):
        raise ValidationError("merge_gap must be >= 0 and quiet > 0")
    rule_set = rules if rules is not None else load_rules(rules_path)
    anomalies = _read_anomalies(
        store, since=_utc(since) if since is not None else None, split_label=split_label
    )
    drafts = group_anomalies(anomalies, merge_gap=gap)
    existing = incident_store.list_incident_spans(store.cursor())
    report = IncidentUpdate()
    claimed: set[int] = set()
    for draft in drafts:
        matches = [
            row
            for row in existing
            if row.id not in claimed
            and (row.slice_key is None or draft.key is None or row.slice_key == draft.key)
            and row.start <= draft.end + gap
            and draft.start <= row.end + gap
            and _same_monitor(store, row, draft)
        ]
        keep = matches[0] if matches else None
        if keep is not None and len(matches) == 1 and not rerank_unchanged:
            same = _unchanged_state(store, keep.id, draft, now=now_ts, quiet=quiet_td)
            if same is not None:
                claimed.add(keep.id)
                (report.updated if same[1] else report.unchanged).append(keep.id)
                if same[0] == "open":
                    report.open += 1
                else:
                    report.resolved += 1
                continue
        ranked, typed = _rank_and_type(store, draft, rule_set, rank_limit)
        resolved_at = keep.resolved_at if keep is not None else None
        state = (
            "resolved"
            if now_ts - draft.end >= quiet_td or (resolved_at is not None and resolved_at >= draft.end)
            else "open"
        )
        # stored and shown: the anomalous metrics and those that clearly moved ("Metrics involved",
        # counted alike in the list); not the top ten whatever they did
        ranked = _involved_rows(ranked, set(draft.metric_ids))
        type_title = typed.title if typed is not None else None
        title = _title(store, type_title, ranked, sorted(set(draft.metric_ids)))
        fields = IncidentFields(
            start=draft.start,
            end=draft.end,
            peak=draft.peak,
            peak_score=draft.peak_score,
            peak_metric_id=draft.peak_metric_id,
            state=state,
            type=typed.name if typed else None,
            type_title=type_title,
            slice_key=draft.key,
            title=title,
            monitor=draft.monitor,
        )
        with store.transaction() as tx:
            if keep is None:
                incident_id = incident_store.insert_incident(tx, fields)
                report.created.append(incident_id)
            else:
                incident_id = keep.id
                before = incident_store.read_incident(tx, incident_id)
                if before is None or before[0] != fields:
                    incident_store.update_incident(tx, incident_id, fields)
                    report.updated.append(incident_id)
                else:
                    report.unchanged.append(incident_id)
                for other in matches[1:]:
                    incident_store.delete_incident(tx, other.id)
                    report.merged.append(other.id)
                    claimed.add(other.id)
            claimed.add(incident_id)
            incident_store.clear_incident_members(tx, incident_id)
            anomalous = set(draft.metric_ids)
            incident_store.write_incident_members(
                tx,
                incident_id,
                [
                    IncidentMemberRow(
                        metric_id=r.metric_id,
                        rank=r.ranked.rank,
                        score=r.ranked.score,
                        direction=r.ranked.direction,
                        magnitude=r.ranked.magnitude,
                        magnitude_kind=r.ranked.magnitude_kind,
                        lead_lag=r.ranked.lead_lag,
                        anomalous=r.metric_id in anomalous,
                        reason=r.ranked.reason,
                    )
                    for r in ranked
                ],
            )
            incident_store.write_incident_anomalies(tx, incident_id, draft.anomaly_ids)
        if state == "open":
            report.open += 1
        else:
            report.resolved += 1
    return report


def _same_monitor(store: Store, row: incident_store.IncidentSpan, draft: IncidentDraft) -> bool:
    """Whether stored incident ``row`` may be ``draft``'s: the same monitor's; or one stored before
    incidents kept their monitor (none) that holds some of the draft's anomalies."""
    if row.monitor == draft.monitor:
        return True
    if row.monitor is not None or draft.monitor is None:
        return False
    held = incident_store.incident_anomaly_ids(store.cursor(), row.id)
    return not set(held).isdisjoint(draft.anomaly_ids)


def _unchanged_state(
    store: Store, incident_id: int, draft: IncidentDraft, *, now: pd.Timestamp, quiet: pd.Timedelta
) -> tuple[str, bool] | None:
    """When incident ``incident_id`` is stored with ``draft``'s window, peak and anomalies: bring its
    state up to date and return (state, whether it changed); else None (it needs ranking again)."""
    cur = store.cursor()
    found = incident_store.read_incident(cur, incident_id)
    if found is None:
        return None
    row, resolved_at = found
    stored = (row.start, row.end, row.peak, row.peak_score, row.peak_metric_id, row.slice_key, row.monitor)
    if stored != (
        draft.start,
        draft.end,
        draft.peak,
        float(draft.peak_score),
        draft.peak_metric_id,
        draft.key,
        draft.monitor,
    ):
        return None
    if incident_store.incident_anomaly_ids(cur, incident_id) != sorted(draft.anomaly_ids):
        return None
    state = (
        "resolved"
        if now - draft.end >= quiet or (resolved_at is not None and resolved_at >= draft.end)
        else "open"
    )
    if state == row.state:
        return state, False
    with store.transaction() as tx:
        incident_store.set_incident_state(tx, incident_id, state)
    return state, True


def _rank_and_type(
    store: Store, draft: IncidentDraft, rules: RuleSet, rank_limit: int
) -> tuple[list[Any], Any]:
    step = pd.Timedelta("1min")
    # a one-point anomaly is usually the onset of a longer change: scan at least ``MIN_WINDOW``
    end = max(draft.end + step, draft.start + MIN_WINDOW)
    anomalous = set(draft.metric_ids)
    anomalous_ids = np.fromiter(anomalous, dtype=np.int64, count=len(anomalous))
    try:
        result = explain_window(
            store,
            start=draft.start,
            end=end,
            metric=draft.peak_metric_id,
            # only the rows stored with the incident are formatted: the first ``rank_limit`` and
            # the anomalous metrics, at their ranks among all (``_involved`` reads the evidence)
            limit=max(1, rank_limit),
            keep=lambda _ev, row_ids: np.isin(row_ids, anomalous_ids),
        )
    except (ValidationError, NotFoundError):
        return [], None  # no baseline (the very start of the data) or no data: untyped
    kept = [r for r in result.ranked if r.ranked.rank <= rank_limit or r.metric_id in anomalous]
    changes = _involved(result.scanned, _anomaly_directions(store, draft.anomaly_ids), anomalous)
    return kept, classify(rules, with_quality(changes, _quality(store, draft, result.scanned)))


def _quality(store: Store, draft: IncidentDraft, scanned: ScannedRows | None) -> list[MetricChange]:
    """Data-quality changes (collection gap, stuck value, counter reset) of the incident's anomalous
    metrics, from a day of each one's points before it (``incidents.types.metric_quality_changes``)."""
    names = (
        dict(zip(scanned.metric_ids, zip(scanned.names, scanned.groups, strict=True), strict=True))
        if scanned
        else {}
    )
    out: list[MetricChange] = []
    mids = [m for m in draft.metric_ids if m in names][:20]  # a huge incident: its first 20
    if not mids:
        return out
    # one query for all of them (one per metric cost a scan each: ~0.5 s a tick at 10,000 metrics: a
    # day is nearly every row group of a store written tick by tick), the day before the start kept
    # between ticks (store.monitors.quality_points); each metric's points as repo.read_series gives them
    points = monitors_repo.quality_points(
        store,
        mids,
        lo=_naive_utc(draft.start - QUALITY_BEFORE),
        start=_naive_utc(draft.start),
        hi=_naive_utc(draft.end + QUALITY_AFTER),
    )
    for mid in mids:
        ts, values = points[mid]
        index = pd.DatetimeIndex(ts).tz_localize("UTC") if ts.size else pd.DatetimeIndex([], tz="UTC")
        series = pd.Series(values, index=index, name="value")
        out += metric_quality_changes(
            names[mid][0].split("{")[0], series, draft.start, draft.end, group=names[mid][1]
        )
    return out


def _naive_utc(ts: pd.Timestamp) -> Any:
    """A naive UTC datetime (the store's), as ``repo.read_series`` passes its bounds."""
    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.to_pydatetime()


def list_incidents(
    store: Store,
    *,
    state: str | None = None,
    limit: int = 100,
    offset: int = 0,
    since: pd.Timestamp | None = None,
    until: pd.Timestamp | None = None,
    monitor: str | None = None,
) -> list[IncidentSummary]:
    """Incidents, most recent activity first: the later of the end of their last anomaly and their last
    change here (so a month uploaded from another year, grouped today, is on top, not at the bottom).
    ``state`` = open or resolved filters; ``since``/``until`` keep the incidents overlapping that window;
    ``monitor`` those of one monitor's metrics (a team's)."""
    if state is not None and state not in {"open", "resolved"}:
        raise ValidationError(f"state must be 'open' or 'resolved', got {state!r}")
    if limit < 1 or offset < 0:
        raise ValidationError("limit must be >= 1 and offset >= 0")
    return incident_store.list_incident_summaries(
        store.cursor(), state=state, since=since, until=until, limit=limit, offset=offset, monitor=monitor
    )


def get_incident(store: Store, *, incident_id: int) -> IncidentDetail:
    cur = store.cursor()
    summary = incident_store.get_incident_summary(cur, incident_id)
    if summary is None:
        raise NotFoundError(f"no incident with id {incident_id}")
    return IncidentDetail(
        incident=summary,
        metrics=incident_store.incident_members(cur, incident_id),
        anomaly_ids=incident_store.incident_anomaly_ids(cur, incident_id),
    )


def resolve_incident(store: Store, *, incident_id: int, at: pd.Timestamp | None = None) -> IncidentSummary:
    """Resolve an incident by hand; it reopens only if a later anomaly extends it past ``at``."""
    when = _utc(at) if at is not None else pd.Timestamp.now(tz="UTC")
    with store.transaction() as tx:
        if not incident_store.incident_exists(tx, incident_id):
            raise NotFoundError(f"no incident with id {incident_id}")
        incident_store.mark_incident_resolved(tx, incident_id, when)
    return get_incident(store, incident_id=incident_id).incident
