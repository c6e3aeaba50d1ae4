"""Use-case: turn stored anomalies into incidents — grouped, ranked, typed, opened and resolved.

:func:`update_incidents` is idempotent: it regroups the anomalies and matches each group to the
stored incident it overlaps (same slice key), updating that one in place; a group matching several
stored incidents merges them into the oldest. Rerunning it over the same anomalies changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from telewatch.core.errors import NotFoundError, ValidationError
from telewatch.incidents.grouping import AnomalyRecord, IncidentDraft, group_anomalies
from telewatch.incidents.ranking import directions
from telewatch.incidents.types import (
    MetricChange,
    RuleSet,
    classify,
    involvement_cut,
    load_rules,
    metric_quality_changes,
    with_quality,
)
from telewatch.services.explain import ScannedRows, explain_window
from telewatch.store import repo
from telewatch.store.db import Store

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
class IncidentSummary:
    id: int
    start: pd.Timestamp
    end: pd.Timestamp
    peak: pd.Timestamp
    peak_score: float
    state: str
    type: str | None
    type_title: str | None
    slice_key: str | None
    title: str
    metrics: int
    created_at: pd.Timestamp
    updated_at: pd.Timestamp


@dataclass(frozen=True)
class IncidentMetric:
    metric_id: int
    metric: str
    rank: int
    score: float
    direction: str
    magnitude: float | None
    magnitude_kind: str | None
    lead_lag: int | None
    anomalous: bool
    reason: str


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


def _naive(ts: pd.Timestamp) -> Any:
    return pd.Timestamp(ts).tz_convert("UTC").tz_localize(None).to_pydatetime()


def _utc(value: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _read_anomalies(
    store: Store, *, since: pd.Timestamp | None, split_label: str | None
) -> list[AnomalyRecord]:
    sql = (
        "SELECT a.id, a.metric_id, a.start_ts, a.end_ts, a.peak_ts, a.peak_score, m.labels"
        " FROM anomalies a JOIN metrics m ON m.id = a.metric_id"
    )
    params: list[object] = []
    if since is not None:
        sql += " WHERE a.end_ts >= ?"
        params.append(_naive(since))
    rows = store.cursor().execute(sql + " ORDER BY a.start_ts, a.id", params).fetchall()
    out = []
    for r in rows:
        key = json.loads(str(r[6])).get(split_label) if split_label else None
        out.append(AnomalyRecord(int(r[0]), int(r[1]), _utc(r[2]), _utc(r[3]), _utc(r[4]), float(r[5]), key))
    return out


def _involved(
    scanned: ScannedRows | None, anomaly_directions: Mapping[int, str] | None = None
) -> list[MetricChange]:
    """Metrics that type the incident: those the scan says clearly moved in its window (score at
    least :func:`involvement_cut` of the top score), most suspicious first.

    Detection flags alone do not count: a noisy metric's false alarm inside a real incident would
    otherwise change its type. Read from the scan's evidence of all metrics: no ranked row is
    formatted for them (an incident can involve thousands). ``anomaly_directions``: metric id →
    ``up``/``down`` of its anomaly (value against expected at its peak); an involved anomalous
    metric moved that way, whatever its window's mean did (a dip inside a noisy window can leave the
    window's mean a little higher)."""
    if scanned is None or not scanned.evidence.score.size:
        return []
    score = scanned.evidence.score
    order = np.argsort(-score, kind="stable")  # the ranking's order
    rows = order[score[order] >= involvement_cut(float(score.max()))]
    moves = directions(scanned.evidence)[rows].tolist()
    known = anomaly_directions or {}
    return [
        MetricChange(
            scanned.names[i].split("{")[0],
            known.get(scanned.metric_ids[i], move),  # type: ignore[arg-type]
            scanned.groups[i],
        )
        for i, move in zip(rows.tolist(), moves, strict=True)
    ]


def _anomaly_directions(store: Store, anomaly_ids: Sequence[int]) -> dict[int, str]:
    """Per metric of the anomalies: ``up`` or ``down``, as its strongest anomaly's value stood
    against the expected value (metrics whose anomalies store neither are absent)."""
    if not anomaly_ids:
        return {}
    rows = (
        store.cursor()
        .execute(
            "SELECT metric_id, value, expected FROM anomalies WHERE list_contains(?, id)"
            " AND value IS NOT NULL AND expected IS NOT NULL AND NOT isnan(value) AND NOT isnan(expected)"
            " AND value <> expected ORDER BY peak_score, id",
            [[int(i) for i in anomaly_ids]],
        )
        .fetchall()
    )
    return {int(m): ("up" if float(v) > float(e) else "down") for m, v, e in rows}  # the strongest last


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
        found = dict(
            store.cursor()
            .execute("SELECT id, name FROM metrics WHERE list_contains(?, id)", [missing])
            .fetchall()
        )
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

    ``merge_gap``: anomalies closer than this are one incident. ``split_label``: a label (``host``,
    ``site``) whose different values keep incidents apart. ``quiet``: an incident with no anomaly for
    this long before ``now`` is resolved. Each incident's metrics are ranked by the window scan (the
    peak metric is the target) and the incident is typed by the rule set (``rules``, else the file
    ``rules_path``, else ``$TELEWATCH_INCIDENT_TYPES``, else the shipped rules).

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
    cur = store.cursor()
    existing = cur.execute(
        "SELECT id, start_ts, end_ts, slice_key, resolved_at, state, type, title, peak_score FROM incidents"
        " ORDER BY id"
    ).fetchall()
    report = IncidentUpdate()
    claimed: set[int] = set()
    for draft in drafts:
        matches = [
            row
            for row in existing
            if int(row[0]) not in claimed
            and (row[3] is None or draft.key is None or row[3] == draft.key)
            and _utc(row[1]) <= draft.end + gap
            and draft.start <= _utc(row[2]) + gap
        ]
        keep = matches[0] if matches else None
        if keep is not None and len(matches) == 1 and not rerank_unchanged:
            same = _unchanged_state(store, int(keep[0]), draft, now=now_ts, quiet=quiet_td)
            if same is not None:
                claimed.add(int(keep[0]))
                (report.updated if same[1] else report.unchanged).append(int(keep[0]))
                if same[0] == "open":
                    report.open += 1
                else:
                    report.resolved += 1
                continue
        ranked, typed = _rank_and_type(store, draft, rule_set, rank_limit)
        resolved_at = _utc(keep[4]) if keep is not None and keep[4] is not None else None
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
        fields = [
            _naive(draft.start),
            _naive(draft.end),
            _naive(draft.peak),
            draft.peak_score,
            draft.peak_metric_id,
            state,
            typed.name if typed else None,
            type_title,
            draft.key,
            title,
        ]
        with store.transaction() as tx:
            if keep is None:
                row = tx.execute(
                    "INSERT INTO incidents (start_ts, end_ts, peak_ts, peak_score, peak_metric_id, state, type,"
                    " type_title, slice_key, title) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    fields,
                ).fetchone()
                assert row is not None  # RETURNING yields the row
                incident_id = int(row[0])
                report.created.append(incident_id)
            else:
                incident_id = int(keep[0])
                before = tx.execute(
                    "SELECT start_ts, end_ts, peak_ts, peak_score, peak_metric_id, state, type, type_title,"
                    " slice_key, title FROM incidents WHERE id = ?",
                    [incident_id],
                ).fetchone()
                changed = before is None or [
                    pd.Timestamp(v) if i < 3 else v for i, v in enumerate(before)
                ] != [pd.Timestamp(v) if i < 3 else v for i, v in enumerate(fields)]
                if changed:
                    tx.execute(
                        "UPDATE incidents SET start_ts = ?, end_ts = ?, peak_ts = ?, peak_score = ?,"
                        " peak_metric_id = ?, state = ?, type = ?, type_title = ?, slice_key = ?, title = ?,"
                        " updated_at = current_timestamp WHERE id = ?",
                        [*fields, incident_id],
                    )
                    report.updated.append(incident_id)
                else:
                    report.unchanged.append(incident_id)
                for other in matches[1:]:
                    other_id = int(other[0])
                    for table in ("incident_metrics", "incident_anomalies"):
                        tx.execute(f"DELETE FROM {table} WHERE incident_id = ?", [other_id])
                    tx.execute("DELETE FROM incidents WHERE id = ?", [other_id])
                    report.merged.append(other_id)
                    claimed.add(other_id)
            claimed.add(incident_id)
            tx.execute("DELETE FROM incident_metrics WHERE incident_id = ?", [incident_id])
            tx.execute("DELETE FROM incident_anomalies WHERE incident_id = ?", [incident_id])
            anomalous = set(draft.metric_ids)
            if ranked:  # one statement for all rows (columns as lists, zipped by unnest)
                tx.execute(
                    "INSERT INTO incident_metrics (incident_id, metric_id, rank, score, direction, magnitude,"
                    " magnitude_kind, lead_lag, anomalous, reason) SELECT ?, unnest(?::INTEGER[]),"
                    " unnest(?::INTEGER[]), unnest(?::DOUBLE[]), unnest(?::VARCHAR[]), unnest(?::DOUBLE[]),"
                    " unnest(?::VARCHAR[]), unnest(?::INTEGER[]), unnest(?::BOOLEAN[]), unnest(?::VARCHAR[])",
                    [
                        incident_id,
                        [r.metric_id for r in ranked],
                        [r.ranked.rank for r in ranked],
                        [r.ranked.score for r in ranked],
                        [r.ranked.direction for r in ranked],
                        [r.ranked.magnitude for r in ranked],
                        [r.ranked.magnitude_kind for r in ranked],
                        [r.ranked.lead_lag for r in ranked],
                        [r.metric_id in anomalous for r in ranked],
                        [r.ranked.reason for r in ranked],
                    ],
                )
            if draft.anomaly_ids:
                tx.execute(
                    "INSERT INTO incident_anomalies (incident_id, anomaly_id) SELECT ?, unnest(?::INTEGER[])",
                    [incident_id, list(draft.anomaly_ids)],
                )
        if state == "open":
            report.open += 1
        else:
            report.resolved += 1
    return report


def _unchanged_state(
    store: Store, incident_id: int, draft: IncidentDraft, *, now: pd.Timestamp, quiet: pd.Timedelta
) -> tuple[str, bool] | None:
    """When incident ``incident_id`` is stored with ``draft``'s window, peak and anomalies: bring its
    state up to date and return (state, whether it changed); else None (it needs ranking again)."""
    cur = store.cursor()
    row = cur.execute(
        "SELECT start_ts, end_ts, peak_ts, peak_score, peak_metric_id, slice_key, resolved_at, state"
        " FROM incidents WHERE id = ?",
        [incident_id],
    ).fetchone()
    if row is None:
        return None
    stored = (_utc(row[0]), _utc(row[1]), _utc(row[2]), float(row[3]), int(row[4]), row[5])
    if stored != (
        draft.start,
        draft.end,
        draft.peak,
        float(draft.peak_score),
        draft.peak_metric_id,
        draft.key,
    ):
        return None
    ids = cur.execute(
        "SELECT anomaly_id FROM incident_anomalies WHERE incident_id = ? ORDER BY anomaly_id", [incident_id]
    ).fetchall()
    if [int(r[0]) for r in ids] != sorted(draft.anomaly_ids):
        return None
    resolved_at = _utc(row[6]) if row[6] is not None else None
    state = (
        "resolved"
        if now - draft.end >= quiet or (resolved_at is not None and resolved_at >= draft.end)
        else "open"
    )
    if state == row[7]:
        return state, False
    with store.transaction() as tx:
        tx.execute(
            "UPDATE incidents SET state = ?, updated_at = current_timestamp WHERE id = ?",
            [state, incident_id],
        )
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
    changes = _involved(result.scanned, _anomaly_directions(store, draft.anomaly_ids))
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
    for mid in [m for m in draft.metric_ids if m in names][:20]:  # a huge incident: its first 20
        series = repo.read_series(
            store.cursor(),
            mid,
            start=draft.start - pd.Timedelta(days=1),
            end=draft.end + pd.Timedelta(minutes=15),
        )
        out += metric_quality_changes(
            names[mid][0].split("{")[0], series, draft.start, draft.end, group=names[mid][1]
        )
    return out


_SUMMARY_SQL = (
    "SELECT i.id, i.start_ts, i.end_ts, i.peak_ts, i.peak_score, i.state, i.type, i.type_title, i.slice_key,"
    " i.title, (SELECT count(*) FROM incident_metrics im WHERE im.incident_id = i.id),"
    " i.created_at, i.updated_at FROM incidents i"
)


def _summary(row: Any) -> IncidentSummary:
    return IncidentSummary(
        id=int(row[0]),
        start=_utc(row[1]),
        end=_utc(row[2]),
        peak=_utc(row[3]),
        peak_score=float(row[4]),
        state=str(row[5]),
        type=row[6],
        type_title=row[7],
        slice_key=row[8],
        title=str(row[9]),
        metrics=int(row[10]),
        created_at=_utc(row[11]),
        updated_at=_utc(row[12]),
    )


def list_incidents(
    store: Store,
    *,
    state: str | None = None,
    limit: int = 100,
    offset: int = 0,
    since: pd.Timestamp | None = None,
    until: pd.Timestamp | None = None,
) -> list[IncidentSummary]:
    """Incidents, most recent activity first: the later of the end of their last anomaly and their last
    change here (so a month uploaded from another year, grouped today, is on top, not at the bottom).
    ``state`` = open or resolved filters; ``since``/``until`` keep the incidents overlapping that window."""
    if state is not None and state not in {"open", "resolved"}:
        raise ValidationError(f"state must be 'open' or 'resolved', got {state!r}")
    if limit < 1 or offset < 0:
        raise ValidationError("limit must be >= 1 and offset >= 0")
    where: list[str] = []
    params: list[object] = []
    if state is not None:
        where.append("i.state = ?")
        params.append(state)
    if since is not None:
        where.append("i.end_ts >= ?")
        params.append(_naive_utc(since))
    if until is not None:
        where.append("i.start_ts <= ?")
        params.append(_naive_utc(until))
    sql = _SUMMARY_SQL + (" WHERE " + " AND ".join(where) if where else "")
    rows = store.cursor().execute(
        sql + " ORDER BY greatest(i.end_ts, i.updated_at) DESC, i.id DESC LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return [_summary(r) for r in rows.fetchall()]


def _naive_utc(ts: pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(ts)
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def get_incident(store: Store, *, incident_id: int) -> IncidentDetail:
    cur = store.cursor()
    row = cur.execute(_SUMMARY_SQL + " WHERE i.id = ?", [incident_id]).fetchone()
    if row is None:
        raise NotFoundError(f"no incident with id {incident_id}")
    metrics = cur.execute(
        "SELECT im.metric_id, m.name, m.labels, im.rank, im.score, im.direction, im.magnitude, im.magnitude_kind,"
        " im.lead_lag, im.anomalous, im.reason FROM incident_metrics im JOIN metrics m ON m.id = im.metric_id"
        " WHERE im.incident_id = ? ORDER BY im.rank",
        [incident_id],
    ).fetchall()
    anomaly_ids = [
        int(r[0])
        for r in cur.execute(
            "SELECT anomaly_id FROM incident_anomalies WHERE incident_id = ? ORDER BY anomaly_id",
            [incident_id],
        ).fetchall()
    ]
    return IncidentDetail(
        incident=_summary(row),
        metrics=[
            IncidentMetric(
                metric_id=int(r[0]),
                metric=str(r[1])
                + (
                    "{" + ",".join(f"{k}={v}" for k, v in json.loads(str(r[2])).items()) + "}"
                    if r[2] and r[2] != "{}"
                    else ""
                ),
                rank=int(r[3]),
                score=float(r[4]),
                direction=str(r[5]),
                magnitude=None if r[6] is None else float(r[6]),
                magnitude_kind=r[7],
                lead_lag=None if r[8] is None else int(r[8]),
                anomalous=bool(r[9]),
                reason=str(r[10]),
            )
            for r in metrics
        ],
        anomaly_ids=anomaly_ids,
    )


def resolve_incident(store: Store, *, incident_id: int, at: pd.Timestamp | None = None) -> IncidentSummary:
    """Resolve an incident by hand; it reopens only if a later anomaly extends it past ``at``."""
    when = _utc(at) if at is not None else pd.Timestamp.now(tz="UTC")
    with store.transaction() as tx:
        row = tx.execute("SELECT id FROM incidents WHERE id = ?", [incident_id]).fetchone()
        if row is None:
            raise NotFoundError(f"no incident with id {incident_id}")
        tx.execute(
            "UPDATE incidents SET state = 'resolved', resolved_at = ?, updated_at = current_timestamp WHERE id = ?",
            [_naive(when), incident_id],
        )
    return get_incident(store, incident_id=incident_id).incident
