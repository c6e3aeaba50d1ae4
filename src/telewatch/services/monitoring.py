"""Use-case: one tick of a monitor — fetch new points, store them, score them, record anomalies, alert.

:func:`run_monitor` is the job every scheduler calls (the built-in runner, ``telewatch check``, an
Airflow task). For a given ``now`` it is idempotent: the source's cursor and the last point scored
per series live in the store, anomalies are upserted by their start, and alert candidates carry a
stable key, so running the same tick twice stores, scores and alerts nothing new. It reads no clock
except for the lease's expiry (real time, so a run that hung frees its monitor): tests drive it with a
simulated ``now``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from telewatch.core.errors import TelewatchError
from telewatch.core.faults import crash_point
from telewatch.core.secrets import redact
from telewatch.detectors.base import Detector
from telewatch.monitors.config import DetectorSpec, MonitorSpec
from telewatch.postrules.alarms import alarm_windows
from telewatch.postrules.usual import habitual, held_through, still_outside, usual_at
from telewatch.services import tick_state
from telewatch.services.detection import calibrate, calibrated_scores
from telewatch.sources.base import FetchedBatch, FetchedSeries, Source, SourceState, series_key, utc
from telewatch.store import repo
from telewatch.store.db import Store

log = logging.getLogger("telewatch.monitoring")

#: How far back the value and band "usual at this hour" of an anomaly are read (postrules.usual).
USUAL_REACH = pd.Timedelta(days=7, minutes=15)


@dataclass(frozen=True)
class FoundAnomaly:
    """An anomaly this tick created or extended."""

    metric_id: int
    metric: str
    labels: dict[str, str]
    detector: str
    start: pd.Timestamp
    end: pd.Timestamp
    peak: pd.Timestamp
    peak_score: float
    value: float
    expected: float | None
    ongoing: bool
    lower: float | None = None
    upper: float | None = None
    #: the metric did this at this time of day on several recent days (postrules.usual.habitual):
    #: recorded, not paged
    habitual: bool = False

    @property
    def key(self) -> str:
        return f"{series_key(self.metric, self.labels)}:{self.detector}:{self.start.isoformat()}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for the alerts a tick owes (kept in the monitor's state until they are queued)."""
        return {
            "metric_id": self.metric_id,
            "metric": self.metric,
            "labels": dict(self.labels),
            "detector": self.detector,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "peak": self.peak.isoformat(),
            "peak_score": self.peak_score,
            "value": None if np.isnan(self.value) else self.value,
            "expected": self.expected,
            "ongoing": self.ongoing,
            "lower": self.lower,
            "upper": self.upper,
            "habitual": self.habitual,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FoundAnomaly:
        return cls(
            metric_id=int(data["metric_id"]),
            metric=str(data["metric"]),
            labels={str(k): str(v) for k, v in dict(data["labels"]).items()},
            detector=str(data["detector"]),
            start=pd.Timestamp(data["start"]),
            end=pd.Timestamp(data["end"]),
            peak=pd.Timestamp(data["peak"]),
            peak_score=float(data["peak_score"]),
            value=float("nan") if data["value"] is None else float(data["value"]),
            expected=None if data["expected"] is None else float(data["expected"]),
            ongoing=bool(data["ongoing"]),
            lower=None if data.get("lower") is None else float(data["lower"]),
            upper=None if data.get("upper") is None else float(data["upper"]),
            habitual=bool(data.get("habitual", False)),
        )


@dataclass
class MonitorRunReport:
    monitor: str
    tick: pd.Timestamp
    status: str  # ok | error | busy | disabled
    attempt: int = 1
    points: int = 0
    series: int = 0
    scored: int = 0
    trained: int = 0
    anomalies: list[FoundAnomaly] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    resolved_items: list[dict[str, Any]] = field(default_factory=list)
    alerts_submitted: int = 0
    alerts_sent: int = 0
    error: str | None = None
    next_retry_at: pd.Timestamp | None = None
    warnings: list[str] = field(default_factory=list)
    #: series not scored yet, and how much more history each still needs (warm-up, min_points)
    warming: dict[int, str] = field(default_factory=dict)


@dataclass
class AlertingSetup:
    """What the alert step needs: rules and channels (from ``telewatch.alerts.config``), and whether to
    deliver the outbox right away (the runner does; a dry run does not)."""

    config: Any  # telewatch.alerts.config.AlertingConfig
    deliver: bool = True


def _naive(ts: pd.Timestamp) -> Any:
    return utc(ts).tz_localize(None).to_pydatetime()


def _wall() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


# -- lease ------------------------------------------------------------------------------------------
# Set once per process: a lease whose holder does not carry it was taken by another process.
_PROCESS = uuid.uuid4().hex[:12]


def acquire_lease(store: Store, *, monitor: str, holder: str, ttl: timedelta) -> bool:
    """Take the monitor's lease unless another run of this process holds an unexpired one (real clock).

    A lease held by *another process* is taken over at once, expired or not: DuckDB lets one process
    open a store file at a time, so while this process has the store open no other can be running a
    tick on it — that holder was killed (or stopped) in the middle of a tick, and a scheduler restarted
    after it does not wait for the lease to run out.
    """
    now = _wall()
    try:
        with store.transaction() as tx:
            row = tx.execute(
                "SELECT holder, expires_at FROM monitor_leases WHERE monitor = ?", [monitor]
            ).fetchone()
            if (
                row is not None
                and row[0] != holder
                and _of_this_process(str(row[0]))
                and pd.Timestamp(row[1]).tz_localize("UTC") > now
            ):
                return False
            if row is not None and row[0] != holder and not _of_this_process(str(row[0])):
                log.info("monitor %s: taking over the lease of %s (no longer running)", monitor, row[0])
            tx.execute(
                "INSERT INTO monitor_leases (monitor, holder, acquired_at, expires_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (monitor) DO UPDATE SET holder = excluded.holder,"
                " acquired_at = excluded.acquired_at, expires_at = excluded.expires_at",
                [monitor, holder, _naive(now), _naive(now + ttl)],
            )
    except Exception as exc:  # a concurrent writer won the row (DuckDB transaction conflict)
        if "conflict" in str(exc).lower():
            return False
        raise
    return True


def _of_this_process(holder: str) -> bool:
    return f":{_PROCESS}:" in holder


def release_lease(store: Store, *, monitor: str, holder: str) -> None:
    with store.transaction() as tx:
        tx.execute("DELETE FROM monitor_leases WHERE monitor = ? AND holder = ?", [monitor, holder])


def default_holder() -> str:
    """A lease holder for one run: host, PID, this process's token and a token of its own."""
    return f"{socket.gethostname()}:{os.getpid()}:{_PROCESS}:{uuid.uuid4().hex[:8]}"


# -- state ------------------------------------------------------------------------------------------
@dataclass
class MonitorState:
    monitor: str
    last_run_at: pd.Timestamp | None = None
    status: str = "never"
    error: str | None = None
    attempts: int = 0
    next_retry_at: pd.Timestamp | None = None
    last_attempt_at: pd.Timestamp | None = None
    cursor: str = "{}"


def _ts(value: Any) -> pd.Timestamp | None:
    return None if value is None else pd.Timestamp(value).tz_localize("UTC")


def read_state(store: Store, monitor: str) -> MonitorState:
    row = (
        store.cursor()
        .execute(
            "SELECT last_run_at, status, error, attempts, next_retry_at, last_attempt_at, cursor"
            " FROM monitor_state WHERE monitor = ?",
            [monitor],
        )
        .fetchone()
    )
    if row is None:
        return MonitorState(monitor=monitor)
    return MonitorState(
        monitor=monitor,
        last_run_at=_ts(row[0]),
        status=str(row[1]),
        error=row[2],
        attempts=int(row[3]),
        next_retry_at=_ts(row[4]),
        last_attempt_at=_ts(row[5]),
        cursor=str(row[6] or "{}"),
    )


def list_states(store: Store) -> list[MonitorState]:
    names = [
        r[0] for r in store.cursor().execute("SELECT monitor FROM monitor_state ORDER BY monitor").fetchall()
    ]
    return [read_state(store, n) for n in names]


def _save_state(tx: Any, state: MonitorState, fingerprint: str | None) -> None:
    tx.execute(
        "INSERT INTO monitor_state (monitor, fingerprint, last_run_at, last_attempt_at, status, error, attempts,"
        " next_retry_at, cursor, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (monitor) DO UPDATE SET fingerprint = excluded.fingerprint,"
        " last_run_at = excluded.last_run_at, last_attempt_at = excluded.last_attempt_at,"
        " status = excluded.status, error = excluded.error, attempts = excluded.attempts,"
        " next_retry_at = excluded.next_retry_at, cursor = excluded.cursor, updated_at = excluded.updated_at",
        [
            state.monitor,
            fingerprint,
            _naive(state.last_run_at) if state.last_run_at is not None else None,
            _naive(state.last_attempt_at) if state.last_attempt_at is not None else None,
            state.status,
            state.error,
            state.attempts,
            _naive(state.next_retry_at) if state.next_retry_at is not None else None,
            state.cursor,
            _naive(_wall()),
        ],
    )


def backoff(spec: MonitorSpec, attempts: int) -> timedelta:
    """Delay before retry number ``attempts`` (1-based): ``initial`` doubling up to ``max``.

    >>> from telewatch.monitors.config import parse_monitors
    >>> spec = parse_monitors({"monitors": [{"name": "m", "source": {"type": "logs", "path": "x",
    ...                        "count_by": ["event"]}}]}).monitors[0]
    >>> [backoff(spec, n).total_seconds() for n in (1, 2, 3, 10)]
    [30.0, 60.0, 120.0, 900.0]
    """
    delay = spec.retry.initial * (2 ** max(0, attempts - 1))
    return min(delay, spec.retry.max)


# -- the tick -----------------------------------------------------------------------------------------
def run_monitor(
    spec: MonitorSpec,
    *,
    store: Store,
    now: pd.Timestamp | str,
    source: Source | None = None,
    alerting: AlertingSetup | None = None,
    holder: str | None = None,
    alert_step: Callable[..., tuple[int, int]] | None = None,
    attempted_at: pd.Timestamp | None = None,
    streaming: bool = True,
) -> MonitorRunReport:
    """Run one tick of ``spec`` as of ``now``: fetch, store, score, record anomalies, alert.

    Never raises for a failing source or detector: the report says ``status="error"`` and the store
    records the failure streak and when to retry (:func:`backoff`). A tick of a monitor whose lease
    another run holds returns ``status="busy"`` without doing anything. ``attempted_at`` is the
    scheduler's clock when it runs an older tick (catch-up); the retry backoff counts from it.
    ``streaming`` (default) scores with the per-metric state kept between ticks
    (:mod:`telewatch.services.tick_state`); ``False`` runs the per-metric reference path.
    """
    tick = utc(now)
    attempted = utc(attempted_at) if attempted_at is not None else tick
    holder = holder or default_holder()
    if not spec.enabled:
        return MonitorRunReport(monitor=spec.name, tick=tick, status="disabled")
    if not acquire_lease(store, monitor=spec.name, holder=holder, ttl=spec.timeout):
        return MonitorRunReport(monitor=spec.name, tick=tick, status="busy")
    crash_point("tick.begin")
    state = read_state(store, spec.name)
    report = MonitorRunReport(monitor=spec.name, tick=tick, status="ok", attempt=state.attempts + 1)
    cursor: dict[str, Any] = json.loads(state.cursor or "{}")
    _take_owed(report, cursor.get(OWED))
    started = _wall()
    own_source = source is None
    src: Source | None = source
    try:
        src = src or spec.build_source()
        _tick(
            spec,
            store=store,
            tick=tick,
            source=src,
            state=state,
            cursor=cursor,
            report=report,
            streaming=streaming,
        )
        crash_point("tick.before_alerts")
        step = alert_step or submit_and_deliver
        if alerting is not None:
            report.alerts_submitted, report.alerts_sent = step(
                store, spec=spec, report=report, alerting=alerting, now=tick
            )
        crash_point("tick.after_alerts")
        state = read_state(store, spec.name)
        if cursor.pop(OWED, None) is not None:  # queued (or no alerting): owed no more
            state.cursor = json.dumps(cursor, sort_keys=True)  # the cursor _tick stored, less that
        state.last_run_at = max(tick, state.last_run_at) if state.last_run_at is not None else tick
        state.status, state.error, state.attempts, state.next_retry_at = "ok", None, 0, None
        state.last_attempt_at = attempted
        with store.transaction() as tx:
            _save_state(tx, state, spec.fingerprint())
    except Exception as exc:
        secrets = src.secrets() if src is not None else []
        message = redact(
            str(exc) if isinstance(exc, TelewatchError) else f"{type(exc).__name__}: {exc}", secrets
        )
        state = read_state(store, spec.name)
        state.status, state.error = "error", message
        state.attempts += 1
        state.last_attempt_at = attempted
        state.next_retry_at = max(attempted, tick) + backoff(spec, state.attempts)
        with store.transaction() as tx:
            _save_state(tx, state, spec.fingerprint())
        report.status, report.error, report.next_retry_at = "error", message, state.next_retry_at
        log.warning("monitor %s failed (attempt %d): %s", spec.name, state.attempts, message)
    finally:
        if own_source and src is not None:
            src.close()
        try:
            _record_run(store, report, started)
        finally:
            release_lease(store, monitor=spec.name, holder=holder)
    return report


#: The monitor cursor's entry for the alerts a tick found but has not queued yet.
OWED = "owed"


def _owed(report: MonitorRunReport) -> dict[str, Any]:
    return {
        "anomalies": [a.to_dict() for a in report.anomalies],
        "resolved": list(report.resolved),
        "resolved_items": list(report.resolved_items),
    }


def _take_owed(report: MonitorRunReport, owed: Mapping[str, Any] | None) -> None:
    """Start ``report`` with the alerts a run killed after storing its findings (and before queueing
    them) still owes; this run's own findings for the same anomaly replace them (see :func:`_tick`)."""
    if not owed:
        return
    report.anomalies.extend(FoundAnomaly.from_dict(a) for a in owed.get("anomalies", []))
    report.resolved.extend(str(k) for k in owed.get("resolved", []))
    report.resolved_items.extend(dict(i) for i in owed.get("resolved_items", []))
    log.info(
        "monitor %s: %d anomalies and %d resolutions of an interrupted run are alerted now",
        report.monitor,
        len(report.anomalies),
        len(report.resolved),
    )


def _latest_only(report: MonitorRunReport) -> None:
    """One entry per anomaly and per resolution: the latest (taken-over ones come first)."""
    latest = {a.key: a for a in report.anomalies}
    report.anomalies[:] = list(latest.values())
    items = {str(i["key"]): i for i in report.resolved_items}
    report.resolved[:] = list(dict.fromkeys(report.resolved))
    report.resolved_items[:] = [items[k] for k in report.resolved if k in items]


def _record_run(store: Store, report: MonitorRunReport, started: pd.Timestamp) -> None:
    with store.transaction() as tx:
        tx.execute(
            "INSERT INTO monitor_runs (monitor, tick_at, started_at, finished_at, status, attempt, points, scored,"
            " anomalies, alerts, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                report.monitor,
                _naive(report.tick),
                _naive(started),
                _naive(_wall()),
                report.status,
                report.attempt,
                report.points,
                report.scored,
                len(report.anomalies),
                report.alerts_submitted,
                report.error,
            ],
        )


def _tick(
    spec: MonitorSpec,
    *,
    store: Store,
    tick: pd.Timestamp,
    source: Source,
    state: MonitorState,
    cursor: dict[str, Any],
    report: MonitorRunReport,
    streaming: bool = True,
) -> None:
    """Fetch, store, score, record; ``cursor`` (the monitor's, parsed from ``state``) is updated in
    place and stored."""
    data_end = tick - pd.Timedelta(spec.lag)
    history = pd.Timedelta(spec.history)
    source_state = SourceState.from_dict(cursor.get("source"))
    batch, new_state = source.fetch_incremental_batch(state=source_state, end=data_end, lookback=history)
    if spec.metrics:
        wanted = set(spec.metrics)
        batch = batch.select(np.array([name in wanted for name in batch.names], dtype=bool))
    if streaming:
        _store_points(spec, store=store, batch=batch, report=report)
    else:
        _store_points_per_series(spec, store=store, fetched=batch.series(), report=report)
    crash_point("tick.after_points")
    cursor["source"] = new_state.to_dict()
    with store.transaction() as tx:
        state.cursor = json.dumps(cursor, sort_keys=True)
        _save_state(tx, state, spec.fingerprint())
    crash_point("tick.after_cursor")
    score = _score if streaming else _score_per_metric
    saved = score(spec, store=store, tick=tick, data_end=data_end, report=report, cursor=cursor)
    _latest_only(report)
    if report.anomalies or report.resolved:
        _update_incidents(store, now=tick, since=data_end - pd.Timedelta(days=1), report=report)
        crash_point("tick.after_incidents")
    if not saved:  # the streaming path stored the cursor with the watermarks
        with store.transaction() as tx:
            state.cursor = json.dumps(cursor, sort_keys=True)
            _save_state(tx, state, spec.fingerprint())


def _store_points(spec: MonitorSpec, *, store: Store, batch: FetchedBatch, report: MonitorRunReport) -> None:
    """Store the fetched points of all series in one transaction: metric ids looked up in one query
    (new metrics created one by one, a rare event), the points and the monitor's series written
    with one bulk statement each."""
    valid = np.concatenate([[0], np.cumsum(~np.isnan(batch.values))])
    # an all-missing series stores nothing
    batch = batch.select(valid[batch.offsets[1:]] - valid[batch.offsets[:-1]] > 0)
    if not len(batch):
        return
    canonical: dict[tuple[tuple[str, str], ...], str] = {}
    labels = [{**spec.labels, **lab} for lab in batch.labels]
    names = pd.DataFrame(
        {
            "pos": np.arange(len(batch), dtype="int64"),
            "name": batch.names,
            "labels": [_canonical_labels(lab, canonical) for lab in labels],
        }
    )
    _store_batch(spec, store=store, batch=batch, labels=labels, names=names)
    report.points += int(batch.ts.size)
    report.series += len(batch)


def _canonical_labels(labels: dict[str, str], seen: dict[tuple[tuple[str, str], ...], str]) -> str:
    """``repo.canonical_labels``, computed once per distinct label set of a tick."""
    key = tuple(sorted(labels.items()))
    if key not in seen:
        seen[key] = repo.canonical_labels(labels)
    return seen[key]


def _store_batch(
    spec: MonitorSpec,
    *,
    store: Store,
    batch: FetchedBatch,
    labels: list[dict[str, str]],
    names: pd.DataFrame,
) -> None:
    with store.transaction(series=True) as tx:
        tx.register("_tw_mon_names", names)
        try:
            found = tx.execute(
                "SELECT n.pos, m.id FROM _tw_mon_names n JOIN metrics m ON m.name = n.name AND m.labels = n.labels"
            ).fetchall()
        finally:
            tx.unregister("_tw_mon_names")
        ids: dict[int, int] = {int(pos): int(mid) for pos, mid in found}
        if ids and (spec.owner is not None or spec.group is not None):
            tx.execute(
                "UPDATE metrics SET owner = coalesce(?, owner), grp = coalesce(?, grp)"
                " WHERE id IN (SELECT unnest(?::INTEGER[]))",
                [spec.owner, spec.group, sorted(set(ids.values()))],
            )
        for pos, name in enumerate(batch.names):
            if pos not in ids:
                ids[pos] = repo.upsert_metric(
                    tx, name=name, labels=labels[pos], owner=spec.owner, group=spec.group
                )
        metric_ids = np.array([ids[p] for p in range(len(batch))], dtype="int32")
        points = pd.DataFrame(
            {
                "metric_id": np.repeat(metric_ids, batch.counts),
                "ts": batch.ts.view("datetime64[ns]").astype("datetime64[us]"),
                "value": batch.values,
            }
        ).drop_duplicates(["metric_id", "ts"], keep="last")  # two series of one metric: the last wins
        latest = pd.DataFrame(
            {
                "series_key": [series_key(n, lab) for n, lab in zip(batch.names, labels, strict=True)],
                "metric_id": metric_ids,
                "last_point": batch.ts[batch.offsets[1:] - 1].view("datetime64[ns]").astype("datetime64[us]"),
            }
        ).drop_duplicates("series_key", keep="last")
        repo.replace_points(tx, points)  # points fetched again (a re-fetch) overwrite the stored ones
        tx.register("_tw_mon_latest", latest)
        try:
            tx.execute(
                "INSERT INTO monitor_series (monitor, series_key, metric_id, last_point)"
                " SELECT ?, series_key, metric_id, last_point FROM _tw_mon_latest"
                " ON CONFLICT (monitor, series_key) DO UPDATE SET metric_id = excluded.metric_id,"
                " last_point = greatest(coalesce(monitor_series.last_point, excluded.last_point), excluded.last_point)",
                [spec.name],
            )
        finally:
            tx.unregister("_tw_mon_latest")


def _store_points_per_series(
    spec: MonitorSpec, *, store: Store, fetched: list[FetchedSeries], report: MonitorRunReport
) -> None:
    with store.transaction(series=True) as tx:
        for item in fetched:
            values = item.values.dropna() if item.values.isna().all() else item.values
            if values.empty:
                continue
            labels = {**spec.labels, **item.labels}
            metric_id = repo.upsert_metric(
                tx, name=item.name, labels=labels, owner=spec.owner, group=spec.group
            )
            repo.write_points(tx, metric_id, values)
            key = series_key(item.name, labels)
            tx.execute(
                "INSERT INTO monitor_series (monitor, series_key, metric_id, last_point) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (monitor, series_key) DO UPDATE SET metric_id = excluded.metric_id,"
                " last_point = greatest(coalesce(monitor_series.last_point, excluded.last_point), excluded.last_point)",
                [spec.name, key, metric_id, _naive(values.index[-1])],
            )
            report.points += len(values)
            report.series += 1


def _load_model(
    store: Store, spec: MonitorSpec, metric_id: int, det: DetectorSpec
) -> tuple[Detector, pd.Timestamp] | None:
    row = (
        store.cursor()
        .execute(
            "SELECT model, trained_at, params FROM monitor_models WHERE monitor = ? AND metric_id = ? AND detector = ?",
            [spec.name, metric_id, det.type],
        )
        .fetchone()
    )
    if row is None or json.loads(row[2]) != json.loads(json.dumps(det.params, sort_keys=True, default=str)):
        return None
    model = Detector.loads(bytes(row[0]))
    if getattr(model, "calibrator_", None) is None:
        return None  # stored before ticks calibrated their scores: retrained
    return model, pd.Timestamp(row[1]).tz_localize("UTC")


def _train(
    store: Store,
    spec: MonitorSpec,
    metric_id: int,
    det: DetectorSpec,
    *,
    tick: pd.Timestamp,
    data_end: pd.Timestamp,
    report: MonitorRunReport | None = None,
) -> Detector | None:
    cur = store.cursor()
    start = data_end - pd.Timedelta(spec.train.window)
    series = repo.read_series(cur, metric_id, start=start, end=data_end)
    have = int(series.notna().sum())
    if have < spec.train.min_points:
        if report is not None:
            report.warming[metric_id] = f"{spec.train.min_points - have} more points"
        return None
    span = series.index[-1] - series.index[0]
    if span < pd.Timedelta(spec.train.warm_up):
        # warming up: no score (and so no alert) before the history covers the daily cycle
        if report is not None:
            left = pd.Timedelta(spec.train.warm_up) - span
            report.warming[metric_id] = f"{left.days * 24 + left.seconds // 3600} h more history"
        return None
    # the pipeline of `telewatch detect`: fit, screen a long incident out, refit, and a calibrator
    # trained on the model's own scores (kept with the model: the tick calibrates new scores with it)
    model, _z, _screened = calibrated_scores(det.type, det.params, series, np.ones(len(series), dtype=bool))
    older = cur.execute(
        "SELECT 1 FROM points WHERE metric_id = ? AND ts < ? LIMIT 1", [metric_id, _naive(series.index[0])]
    ).fetchone()
    if older is not None:
        model.scored_from_ = None  # type: ignore[attr-defined]  # the series started earlier: no warm-up
    with store.transaction() as tx:
        tx.execute(
            "INSERT INTO monitor_models (monitor, metric_id, detector, params, trained_at, train_start, train_end,"
            " points, model) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (monitor, metric_id, detector) DO UPDATE SET params = excluded.params,"
            " trained_at = excluded.trained_at, train_start = excluded.train_start, train_end = excluded.train_end,"
            " points = excluded.points, model = excluded.model",
            [
                spec.name,
                metric_id,
                det.type,
                json.dumps(det.params, sort_keys=True, default=str),
                _naive(tick),
                _naive(series.index[0]),
                _naive(series.index[-1]),
                int(series.notna().sum()),
                model.dumps(),
            ],
        )
    return model


def _load_models(store: Store, spec: MonitorSpec, memory: tick_state.MonitorMemory) -> None:
    """Read every stored model of the monitor (one query) into ``memory`` (once per process)."""
    wanted = {
        det.type: json.loads(json.dumps(det.params, sort_keys=True, default=str))
        for det in spec.all_detectors
    }
    rows = (
        store.cursor()
        .execute(
            "SELECT metric_id, detector, model, trained_at, params FROM monitor_models WHERE monitor = ?",
            [spec.name],
        )
        .fetchall()
    )
    for metric_id, detector, blob, trained_at, params in rows:
        if detector not in wanted or json.loads(params) != wanted[detector]:
            continue  # another configuration's model: retrained on first use
        key = (int(metric_id), str(detector))
        model = Detector.loads(bytes(blob))
        if getattr(model, "calibrator_", None) is None:
            continue  # stored before ticks calibrated their scores: retrained on first use
        if key not in memory.models:
            memory.models[key] = tick_state.ModelState(
                model=model, trained_at=pd.Timestamp(trained_at).tz_localize("UTC")
            )
    memory.loaded_models = True


def _score(
    spec: MonitorSpec,
    *,
    store: Store,
    tick: pd.Timestamp,
    data_end: pd.Timestamp,
    report: MonitorRunReport,
    cursor: dict[str, Any],
) -> bool:
    """The streaming tick: one query for the new points of every series, models and context tails
    from memory (read from the store once after a restart), scoring grouped by detector type as a
    matrix, one bulk write of scores, anomalies only where a new score crossed the threshold, and
    one transaction for the watermarks and the persisted state (with the monitor's cursor: returns
    whether it stored it)."""
    memory = tick_state.attach(store, monitor=spec.name, fingerprint=spec.fingerprint())
    try:
        return _score_streaming(
            spec, store=store, tick=tick, data_end=data_end, report=report, cursor=cursor, memory=memory
        )
    except BaseException:
        tick_state.forget(store, spec.name)  # half-updated: the next tick rebuilds from the store
        raise


def _score_streaming(
    spec: MonitorSpec,
    *,
    store: Store,
    tick: pd.Timestamp,
    data_end: pd.Timestamp,
    report: MonitorRunReport,
    cursor: dict[str, Any],
    memory: tick_state.MonitorMemory,
) -> bool:
    cur = store.cursor()
    listed = cur.execute(
        "SELECT series_key, metric_id, last_scored FROM monitor_series WHERE monitor = ? ORDER BY series_key",
        [spec.name],
    ).df()
    # watermarks as ns since the epoch (None: never scored)
    marks = listed["last_scored"].to_numpy(dtype="datetime64[ns]").view("int64")
    rows: list[tuple[str, int, int | None]] = [
        (str(key), int(mid), None if mark == _NAT else int(mark))
        for key, mid, mark in zip(
            listed["series_key"].tolist(), listed["metric_id"].tolist(), marks.tolist(), strict=True
        )
    ]
    firing_before: dict[str, dict[str, Any]] = dict(cursor.get("firing") or {})
    firing_now: dict[str, dict[str, Any]] = {}
    by_series: dict[tuple[str, str], list[str]] = {}
    firing_of: dict[str, list[str]] = {}
    for akey, item in firing_before.items():
        by_series.setdefault((str(item.get("series")), str(item.get("detector"))), []).append(akey)
        firing_of.setdefault(str(item.get("series")), []).append(akey)
    first_start = int((data_end - pd.Timedelta(spec.history)).value) - 1000  # 1 µs before
    after: dict[int, int] = {}
    for _key, mid, last in rows:
        since = last if last is not None else first_start
        after[mid] = min(after.get(mid, since), since)
    new_points = tick_state.read_new_points(cur, after=after, end=data_end)
    series_new: dict[str, tuple[int, np.ndarray, np.ndarray]] = {}
    for key, mid, last in rows:
        got = new_points.get(mid)
        if got is not None and last is not None and got[0].size and got[0][0] <= last:
            keep_from = int(np.searchsorted(got[0], last, side="right"))  # a metric two series share
            got = (got[0][keep_from:], got[1][keep_from:])
        if got is None or got[0].size == 0:
            # nothing new: anomalies of this series keep their state
            firing_now.update({k: firing_before[k] for k in firing_of.get(key, [])})
            continue
        series_new[key] = (mid, got[0], got[1])
    if not series_new:
        tick_state.keep(store, monitor=spec.name, memory=memory)
        cursor["firing"] = firing_now
        cursor["resolved"] = {}
        return False

    # models: from memory, the store once, or (re)trained on the monitor's schedule
    if not memory.loaded_models:
        _load_models(store, spec, memory)
    due = tick - pd.Timedelta(spec.train.every)  # a model trained at or before this is retrained
    detectors = spec.all_detectors
    per_metric: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for mid, ts, values in series_new.values():
        per_metric.setdefault(mid, (ts, values))
    metrics = list(per_metric)
    for mid in metrics:
        for det in detectors:
            held = memory.models.get((mid, det.type))
            if held is None or held.trained_at is None or held.trained_at <= due:
                model = _train(
                    store,
                    spec,
                    mid,
                    det,
                    tick=tick,
                    data_end=data_end + pd.Timedelta(microseconds=1),
                    report=report,
                )
                report.trained += model is not None
                memory.models[(mid, det.type)] = tick_state.ModelState(
                    model=model,
                    trained_at=tick if model is not None else None,
                    deviations=held.deviations if held is not None else None,
                    windows=held.windows if held is not None else None,
                )

    # context tails: from memory, or one query for the series this process has not seen yet
    first_new = {mid: int(ts[0]) for mid, ts, _v in series_new.values()}
    needs: dict[int, tick_state.Need] = {}
    nothing = tick_state.Need(0, False)
    for mid in metrics:
        need = nothing
        for det in detectors:
            held = memory.models[(mid, det.type)]
            if held.model is not None:
                need = held.need if need is nothing else need.merge(held.need)
        needs[mid] = need
    missing = {
        mid: (first_new[mid], needs[mid])
        for mid in metrics
        if mid not in memory.tails or not memory.tails[mid].need.covers(needs[mid])
    }
    if missing:
        lower = _tail_starts(cur, spec.name, list(missing), needs)
        memory.tails.update(tick_state.read_tails(cur, wanted=missing, lower=lower))
        for mid in missing:
            for det in detectors:
                memory.models[(mid, det.type)].deviations = None
                memory.models[(mid, det.type)].windows = None

    # score, grouped by detector type
    jobs: dict[str, list[tick_state.Job]] = {}
    for mid in metrics:
        mid_ts, mid_values = per_metric[mid]
        for det in detectors:
            held = memory.models[(mid, det.type)]
            if held.model is None:
                continue
            jobs.setdefault(det.type, []).append(
                tick_state.Job(
                    metric_id=mid,
                    state=held,
                    tail=memory.tails[mid],
                    need=held.need,
                    ts=mid_ts,
                    values=mid_values,
                )
            )
    scored: dict[tuple[int, str], np.ndarray] = {}
    for det_type, group in jobs.items():
        for job, scores in zip(group, tick_state.score_group(det_type, group), strict=True):
            assert job.state.model is not None
            z = calibrate(job.state.model, scores)
            scored[(job.metric_id, det_type)] = _unwarmed(job.state.model, job.ts, z)
    _write_score_batch(store, jobs, scored)
    crash_point("tick.after_scores")

    # anomalies where a new score crossed the threshold; firing anomalies that ended. The series to
    # look at are found on the concatenated scores; all anomaly writes are one transaction.
    items = list(series_new.items())
    visit = _series_to_visit(items, detectors, scored, report)
    position = {key: i for i, (key, _v) in enumerate(items)}
    visit.update(position[key] for key in firing_of if key in position)
    with store.transaction():
        _record_tick_anomalies(
            store,
            spec,
            [items[pos] for pos in sorted(visit)],
            scored=scored,
            report=report,
            firing_before=firing_before,
            firing_now=firing_now,
            by_series=by_series,
        )
    crash_point("tick.after_anomalies")

    # the new state: tails in memory, watermarks and state rows in the store, one transaction
    for mid in metrics:
        ts, values = per_metric[mid]
        memory.tails[mid] = memory.tails[mid].extend(ts, values, needs[mid])
    generation = tick_state.new_generation()
    cursor["firing"] = firing_now
    cursor["resolved"] = {k: firing_before[k] for k in report.resolved if k in firing_before}
    if report.anomalies or report.resolved:
        cursor[OWED] = _owed(report)
    else:
        cursor.pop(OWED, None)
    _save_tick_state(
        store, spec, series_new, memory, metrics, tick=tick, generation=generation, cursor=cursor
    )
    crash_point("tick.after_state")
    memory.generation = generation
    tick_state.keep(store, monitor=spec.name, memory=memory)
    return True


def _series_to_visit(
    items: list[tuple[str, tuple[int, np.ndarray, np.ndarray]]],
    detectors: Sequence[DetectorSpec],
    scored: dict[tuple[int, str], np.ndarray],
    report: MonitorRunReport,
) -> set[int]:
    """Positions in ``items`` of the series with a new score at or over a detector's threshold (NaN
    never crosses), found on the scores of all series at once; counts the scored points."""
    sizes = np.array([v[1].size for _k, v in items], dtype="int64")
    values = np.concatenate([v[2] for _k, v in items])
    valid_upto = np.concatenate([[0], np.cumsum(values == values)])  # not NaN
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    valid = valid_upto[bounds[1:]] - valid_upto[bounds[:-1]]
    out: set[int] = set()
    for det in detectors:
        got = [scored.get((v[0], det.type)) for _k, v in items]  # None: no model yet
        have = np.array([g is not None for g in got], dtype=bool)
        if not have.any():
            continue
        report.scored += int(valid[have].sum())
        crossed = np.concatenate(
            [[0], np.cumsum(np.concatenate([g for g in got if g is not None]) >= det.threshold)]
        )
        ends = np.concatenate([[0], np.cumsum(sizes[have])])
        hits = crossed[ends[1:]] - crossed[ends[:-1]] > 0
        out.update(np.flatnonzero(have)[hits].tolist())
    return out


@dataclass
class _Candidate:
    """A series' new scores of one detector, at least one over the threshold."""

    key: str
    mid: int
    det: DetectorSpec
    ts: np.ndarray  # ns since the epoch
    scores: np.ndarray


_PRIOR_REACH = pd.Timedelta(days=1)  # where the look-back for earlier scores is searched first


def _record_tick_anomalies(
    store: Store,
    spec: MonitorSpec,
    visit: list[tuple[str, tuple[int, np.ndarray, np.ndarray]]],
    *,
    scored: dict[tuple[int, str], np.ndarray],
    report: MonitorRunReport,
    firing_before: dict[str, dict[str, Any]],
    firing_now: dict[str, dict[str, Any]],
    by_series: dict[tuple[str, str], list[str]],
) -> None:
    """:func:`_anomalies` for every visited series of a streaming tick with a few set-based queries
    (instead of several per series), then the resolution of the firing anomalies that ended. The
    caller holds the transaction. Same windows, values and order as the per-series path."""
    cur = store.cursor()
    cands: list[_Candidate] = []
    for key, (mid, ts, _values) in visit:
        for det in spec.all_detectors:
            det_scores = scored.get((mid, det.type))
            if det_scores is not None and (det_scores >= det.threshold).any():  # NaN never crosses
                cands.append(_Candidate(key, mid, det, ts, det_scores))
    if cands:
        _record_windows(cur, cands, report=report, firing_now=firing_now)
    checks: list[tuple[str, dict[str, Any], int, DetectorSpec, int]] = []
    for key, (mid, ts, _values) in visit:
        for det in spec.all_detectors:
            if (mid, det.type) not in scored:
                continue  # no model yet: its anomalies keep their state
            for akey in by_series.get((key, det.type), []):
                if akey not in firing_now:
                    checks.append((akey, firing_before[akey], mid, det, int(ts[-1])))
    if not checks:
        return
    frame = pd.DataFrame(
        {
            "pos": np.arange(len(checks)),
            "metric_id": np.array([c[2] for c in checks], dtype="int32"),
            "detector": [c[3].type for c in checks],
            "start_ts": pd.DatetimeIndex([pd.Timestamp(c[1]["start"]) for c in checks])
            .tz_convert("UTC")
            .tz_localize(None)
            .as_unit("us"),
            "until": pd.DatetimeIndex(
                np.array([c[4] for c in checks], dtype="int64").view("datetime64[ns]")
            ).as_unit("us"),
        }
    )
    stored = {
        int(pos): (pd.Timestamp(end).as_unit("ns").value, value, expected, lower, upper)
        for pos, end, value, expected, lower, upper in _joined(
            cur,
            frame,
            "SELECT c.pos, a.end_ts, a.value, a.expected, a.lower, a.upper FROM _tw_tick_frame c"
            " JOIN anomalies a ON a.metric_id = c.metric_id AND a.detector = c.detector"
            " AND a.start_ts = c.start_ts",
        )
    }
    ends = {pos: row[0] for pos, row in stored.items()}
    after: dict[int, int] = {}
    held: dict[int, int] = {}  # anomalies whose metric is still outside its band: their new end
    if ends:
        # stored points after each anomaly's end, up to the series' newest (one read for all)
        points = _points_of(
            cur,
            sorted({checks[p][2] for p in ends}),
            lo=min(ends.values()),
            hi=max(checks[p][4] for p in ends),
            include_hi=True,
        )
        for pos, end_ns in ends.items():
            ts, vals = points.get(checks[pos][2], (np.empty(0, "int64"), np.empty(0)))
            first, last = (
                np.searchsorted(ts, end_ns, side="right"),
                np.searchsorted(ts, checks[pos][4], side="right"),
            )
            reach = held_through(still_outside(vals[first:last], *stored[pos][1:]), checks[pos][3].merge_gap)
            if reach >= 0:  # held open while the metric has not come back: its end follows
                held[pos] = int(ts[first + reach])
                first = first + reach + 1
            after[pos] = int(last - first)
    for pos, new_end in held.items():
        _akey, item, mid, det, _until = checks[pos]
        cur.execute(
            "UPDATE anomalies SET end_ts = ? WHERE metric_id = ? AND detector = ? AND start_ts = ?",
            [_us([new_end])[0].to_pydatetime(), mid, det.type, _naive(pd.Timestamp(item["start"]))],
        )
    for pos, (akey, item, _mid, det, _until) in enumerate(checks):
        if pos in after and after[pos] <= det.merge_gap:
            firing_now[akey] = item
            continue
        report.resolved.append(akey)
        report.resolved_items.append({**item, "key": akey})


def _points_of(
    cur: Any, metric_ids: list[int], *, lo: int, hi: int, include_hi: bool = False
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Stored points of a few metrics with ``lo <= ts < hi`` (``<= hi`` with ``include_hi``; ns since
    the epoch), per metric. The ids go in as a literal list so that the scan is pruned by metric and
    by time alike, whichever way the store's row groups are ordered."""
    marks = ",".join("?" * len(metric_ids))
    frame = cur.execute(
        f"SELECT metric_id, ts, value FROM points WHERE metric_id IN ({marks}) AND ts >= ?"
        f" AND ts {'<=' if include_hi else '<'} ? ORDER BY metric_id, ts",
        [*metric_ids, _us([lo])[0].to_pydatetime(), _us([hi])[0].to_pydatetime()],
    ).df()
    return tick_state.split_by_metric(frame)


def _joined(
    cur: Any, frame: pd.DataFrame, sql: str, params: list[Any] | None = None
) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` that joins the registered ``frame`` as ``_tw_tick_frame``."""
    cur.register("_tw_tick_frame", frame)
    try:
        return list(cur.execute(sql, params or []).fetchall())
    finally:
        cur.unregister("_tw_tick_frame")


def _us(ns: np.ndarray | list[int]) -> pd.DatetimeIndex:
    """Naive UTC timestamps (the store's) from ns since the epoch."""
    return pd.DatetimeIndex(np.asarray(ns, dtype="int64").view("datetime64[ns]")).as_unit("us")


def _record_windows(
    cur: Any, cands: list[_Candidate], *, report: MonitorRunReport, firing_now: dict[str, dict[str, Any]]
) -> None:
    first = [int(c.ts[0]) for c in cands]
    lookback = [c.det.merge_gap + c.det.min_points + 1 for c in cands]
    frame = pd.DataFrame(
        {
            "pos": np.arange(len(cands)),
            "metric_id": np.array([c.mid for c in cands], dtype="int32"),
            "detector": [c.det.type for c in cands],
            "first_ts": _us(first),
            "lo": _us(first) - _PRIOR_REACH,
            "n": np.array(lookback, dtype="int64"),
        }
    )
    # the still-open anomaly of each candidate (the newest ending before its new points)
    opens = {
        int(pos): (start, end)
        for pos, start, end in _joined(
            cur,
            frame,
            "SELECT c.pos, arg_max(a.start_ts, a.end_ts), max(a.end_ts) FROM _tw_tick_frame c JOIN anomalies a"
            " ON a.metric_id = c.metric_id AND a.detector = c.detector AND a.end_ts < c.first_ts GROUP BY c.pos",
        )
    }
    # the last scores before the new ones: searched within a day first (the store's time order
    # prunes the scan), the rare candidate with fewer there asks for its whole past
    rows = _joined(
        cur,
        frame,
        "SELECT c.pos, s.ts, s.score FROM _tw_tick_frame c JOIN scores s ON s.metric_id = c.metric_id"
        " AND s.detector = c.detector AND s.ts < c.first_ts AND s.ts >= c.lo WHERE s.ts >= ?"
        " QUALIFY row_number() OVER (PARTITION BY c.pos ORDER BY s.ts DESC) <= c.n",
        [frame["lo"].min().to_pydatetime()],
    )
    prior: dict[int, list[tuple[Any, Any]]] = {}
    for pos, ts, score in rows:
        prior.setdefault(int(pos), []).append((ts, score))
    for pos, cand in enumerate(cands):
        got = sorted(prior.get(pos, []), key=lambda r: r[0], reverse=True)
        if len(got) < lookback[pos]:
            got = cur.execute(
                "SELECT ts, score FROM scores WHERE metric_id = ? AND detector = ? AND ts < ? ORDER BY ts DESC LIMIT ?",
                [cand.mid, cand.det.type, frame["first_ts"].iloc[pos].to_pydatetime(), lookback[pos]],
            ).fetchall()
        if pos in opens and got:
            start, end = opens[pos]
            # only an anomaly that still touches the look-back can continue into the new points
            if pd.Timestamp(start) < pd.Timestamp(got[-1][0]) <= pd.Timestamp(end):
                got = cur.execute(
                    "SELECT ts, score FROM scores WHERE metric_id = ? AND detector = ? AND ts >= ? AND ts < ?"
                    " ORDER BY ts DESC",
                    [cand.mid, cand.det.type, start, frame["first_ts"].iloc[pos].to_pydatetime()],
                ).fetchall()
        prior[pos] = got[::-1]
    # windows over the prior and the new scores
    found: list[
        tuple[int, int, int, int, float, bool]
    ] = []  # cand, start, end, peak (ns), peak score, ongoing
    for pos, cand in enumerate(cands):
        old = prior[pos]
        old_ts = pd.DatetimeIndex([r[0] for r in old]).as_unit("ns").asi8 if old else np.empty(0, "int64")
        stamps = np.concatenate([np.asarray(old_ts, dtype="int64"), cand.ts])
        combined = np.concatenate(
            [np.array([np.nan if r[1] is None else float(r[1]) for r in old], dtype="float64"), cand.scores]
        )
        flags = np.where(np.isnan(combined), -np.inf, combined) >= cand.det.threshold
        last_index = combined.size - 1
        for start, end in alarm_windows(flags, min_points=cand.det.min_points, merge_gap=cand.det.merge_gap):
            if end - 1 < len(old):
                continue  # entirely before the new points: recorded by an earlier tick
            segment = combined[start:end]
            peak_pos = start + int(np.nanargmax(segment))
            found.append(
                (
                    pos,
                    int(stamps[start]),
                    int(stamps[end - 1]),
                    int(stamps[peak_pos]),
                    float(np.nanmax(segment)),
                    last_index - (end - 1) <= cand.det.merge_gap,
                )
            )
    if not found:
        return
    # the value at the peak, what is usual at that hour (expected value and band) and whether it is a
    # habit, from one read of the candidates' points; an anomaly whose metric stays beyond its band
    # after the flagged points is held open through them (its end follows, see postrules.usual.held_through)
    points = _points_of(
        cur,
        sorted({cands[f[0]].mid for f in found}),
        lo=min(f[3] for f in found) - USUAL_REACH.value,
        hi=max(int(cands[f[0]].ts[-1]) for f in found),
        include_hi=True,
    )
    values, expecteds, lowers, uppers, habits = [], [], [], [], []
    for k, (pos, start_ns, end_ns, peak_ns, score, ongoing) in enumerate(found):
        cand = cands[pos]
        ts, vals = points.get(cand.mid, (np.empty(0, "int64"), np.empty(0)))
        at = int(np.searchsorted(ts, peak_ns))
        values.append(float(vals[at]) if at < ts.size and ts[at] == peak_ns else np.nan)
        habits.append(habitual(ts, vals, peak_ns, values[-1]))
        expected, lower, upper = usual_at(ts, vals, peak_ns)
        expecteds.append(expected)
        lowers.append(lower)
        uppers.append(upper)
        lo_pos = int(np.searchsorted(ts, end_ns, side="right"))
        hi_pos = int(np.searchsorted(ts, int(cand.ts[-1]), side="right"))
        reach = held_through(
            still_outside(vals[lo_pos:hi_pos], values[-1], expected, lower, upper), cand.det.merge_gap
        )
        if reach >= 0:
            end_ns = int(ts[lo_pos + reach])
            ongoing = hi_pos - (lo_pos + reach + 1) <= cand.det.merge_gap
            found[k] = (pos, start_ns, end_ns, peak_ns, score, ongoing)
    # a run held into the next run of the same series is one anomaly (as services.detection)
    keep: list[int] = []
    for k, f in enumerate(found):
        if keep and found[keep[-1]][0] == f[0] and f[1] <= found[keep[-1]][2]:
            prev = found[keep[-1]]
            end_ns = max(prev[2], f[2])
            if f[4] > prev[4]:
                found[k] = (f[0], prev[1], end_ns, f[3], f[4], f[5] or prev[5])
                keep[-1] = k
            else:
                found[keep[-1]] = (prev[0], prev[1], end_ns, prev[3], prev[4], prev[5] or f[5])
            continue
        keep.append(k)
    found = [found[k] for k in keep]
    values, expecteds, lowers, uppers, habits = (
        [values[k] for k in keep],
        [expecteds[k] for k in keep],
        [lowers[k] for k in keep],
        [uppers[k] for k in keep],
        [habits[k] for k in keep],
    )
    windows = pd.DataFrame(
        {
            "pos": np.arange(len(found)),
            "metric_id": np.array([cands[f[0]].mid for f in found], dtype="int32"),
            "detector": [cands[f[0]].det.type for f in found],
            "start_ts": _us([f[1] for f in found]),
            "end_ts": _us([f[2] for f in found]),
            "peak_ts": _us([f[3] for f in found]),
            "peak_score": np.array([f[4] for f in found], dtype="float64"),
        }
    )
    windows["value"] = np.array(values, dtype="float64")
    windows["expected"] = pd.array(expecteds, dtype="Float64")
    windows["lower"] = pd.array(lowers, dtype="Float64")
    windows["upper"] = pd.array(uppers, dtype="Float64")
    # a window that grew backwards (merged with an earlier one) replaces it
    cur.register("_tw_tick_windows", windows)
    try:
        cur.execute(
            "DELETE FROM anomalies a USING _tw_tick_windows w WHERE a.metric_id = w.metric_id"
            " AND a.detector = w.detector AND a.start_ts > w.start_ts AND a.start_ts <= w.end_ts"
        )
        cur.execute(
            "INSERT INTO anomalies (metric_id, detector, start_ts, end_ts, peak_ts, peak_score, value, expected,"
            " lower, upper) SELECT metric_id, detector, start_ts, end_ts, peak_ts, peak_score,"
            " CASE WHEN isnan(value) THEN NULL ELSE value END, expected, lower, upper FROM _tw_tick_windows"
            " ON CONFLICT (metric_id, detector, start_ts) DO UPDATE SET end_ts = excluded.end_ts,"
            " peak_ts = excluded.peak_ts, peak_score = excluded.peak_score, value = excluded.value,"
            " expected = excluded.expected, lower = excluded.lower, upper = excluded.upper"
        )
    finally:
        cur.unregister("_tw_tick_windows")
    infos = _metric_infos(cur, sorted({c.mid for c in cands}))
    for k, (pos, start_ns, end_ns, peak_ns, peak_score, ongoing) in enumerate(found):
        cand = cands[pos]
        info = infos[cand.mid]
        expected = expecteds[k]
        anomaly = FoundAnomaly(
            metric_id=cand.mid,
            metric=info.name,
            labels=dict(info.labels),
            detector=cand.det.type,
            start=pd.Timestamp(start_ns, unit="ns", tz="UTC"),
            end=pd.Timestamp(end_ns, unit="ns", tz="UTC"),
            peak=pd.Timestamp(peak_ns, unit="ns", tz="UTC"),
            peak_score=peak_score,
            value=values[k],
            expected=expected,
            ongoing=ongoing,
            lower=lowers[k],
            upper=uppers[k],
            habitual=habits[k],
        )
        report.anomalies.append(anomaly)
        firing_now[anomaly.key] = {
            "series": cand.key,
            "metric_id": anomaly.metric_id,
            "detector": anomaly.detector,
            "start": anomaly.start.isoformat(),
        }


def _metric_infos(cur: Any, metric_ids: list[int]) -> dict[int, repo.MetricInfo]:
    """Name and labels of metrics, in one query (an id not in the store raises NotFoundError)."""
    rows = cur.execute(
        "SELECT id, name, labels FROM metrics WHERE id IN (SELECT unnest(?::INTEGER[]))", [metric_ids]
    ).fetchall()
    out = {
        int(r[0]): repo.MetricInfo(id=int(r[0]), name=str(r[1]), labels=json.loads(r[2] or "{}"))
        for r in rows
    }
    for mid in metric_ids:
        if mid not in out:
            out[mid] = repo.get_metric(cur, mid)  # raises NotFoundError naming the id
    return out


def _tail_starts(
    cur: Any, monitor: str, metric_ids: list[int], needs: dict[int, tick_state.Need]
) -> dict[int, int]:
    """Where each metric's kept context tail started (ns), from ``tick_state``, when it kept enough."""
    rows = cur.execute(
        "SELECT metric_id, min(tail_start), min(tail_points) FROM tick_state WHERE monitor = ?"
        " AND metric_id IN (SELECT unnest(?::INTEGER[])) AND tail_start IS NOT NULL GROUP BY metric_id",
        [monitor, metric_ids],
    ).fetchall()
    out: dict[int, int] = {}
    for mid, start, points in rows:
        need = needs[int(mid)]
        if not need.day and int(points) >= need.points:
            out[int(mid)] = int(pd.Timestamp(start).as_unit("ns").value)
    return out


_NAT = np.iinfo("int64").min  # NaT as datetime64[ns]


def _metric_info(cur: Any, metric_id: int) -> repo.MetricInfo:
    """Name and labels of a metric (without ``repo.get_metric``'s scan of its points)."""
    row = cur.execute("SELECT name, labels FROM metrics WHERE id = ?", [metric_id]).fetchone()
    if row is None:
        return repo.get_metric(cur, metric_id)  # raises NotFoundError naming the id
    return repo.MetricInfo(id=metric_id, name=str(row[0]), labels=json.loads(row[1] or "{}"))


def _write_score_batch(
    store: Store, jobs: dict[str, list[tick_state.Job]], scored: dict[tuple[int, str], np.ndarray]
) -> None:
    """All scores of the tick in one statement (a frame inserted by DuckDB, not row by row)."""
    parts = [(job, det_type) for det_type, group in jobs.items() for job in group]
    if not parts:
        return
    lengths = [job.ts.size for job, _d in parts]
    frame = pd.DataFrame(
        {
            "metric_id": np.repeat(np.array([job.metric_id for job, _d in parts], dtype="int32"), lengths),
            "detector": np.repeat(np.array([d for _j, d in parts], dtype=object), lengths),
            "ts": np.concatenate([job.ts for job, _d in parts])
            .astype("datetime64[ns]")
            .astype("datetime64[us]"),
            "score": np.concatenate([scored[(job.metric_id, d)] for job, d in parts]),
        }
    )
    with store.transaction(series=True) as tx:
        repo.replace_scores(tx, frame)  # scored before (a tick stopped before its watermark was saved)


def _save_tick_state(
    store: Store,
    spec: MonitorSpec,
    series_new: dict[str, tuple[int, np.ndarray, np.ndarray]],
    memory: tick_state.MonitorMemory,
    metrics: list[int],
    *,
    tick: pd.Timestamp,
    generation: str,
    cursor: dict[str, Any],
) -> None:
    """Watermarks (``monitor_series.last_scored``), the state rows, the generation and the monitor's
    cursor (what is firing, the alerts this tick owes): one transaction. Once the watermarks moved, a
    rerun of the tick finds nothing new, so what it found must be stored with them."""
    marks = pd.DataFrame(
        {
            "series_key": list(series_new),
            "last_scored": np.array([v[1][-1] for v in series_new.values()], dtype="int64")
            .astype("datetime64[ns]")
            .astype("datetime64[us]"),
        }
    )
    last = {mid: int(ts[-1]) for mid, ts, _v in series_new.values()}
    rows = [(mid, det.type) for mid in metrics for det in spec.all_detectors]
    tails = [memory.tails[mid] for mid, _d in rows]
    held = [memory.models[(mid, d)] for mid, d in rows]
    state = pd.DataFrame(
        {
            "metric_id": np.array([mid for mid, _d in rows], dtype="int32"),
            "detector": [d for _m, d in rows],
            "last_scored": np.array([last[mid] for mid, _d in rows], dtype="int64")
            .astype("datetime64[ns]")
            .astype("datetime64[us]"),
            "tail_start": np.array([int(t.ts[0]) if t.ts.size else _NAT for t in tails], dtype="int64")
            .view("datetime64[ns]")
            .astype("datetime64[us]"),
            "tail_points": np.array([t.ts.size for t in tails], dtype="int32"),
            "trained_at": np.array(
                [h.trained_at.value if h.trained_at is not None else _NAT for h in held], dtype="int64"
            )
            .view("datetime64[ns]")
            .astype("datetime64[us]"),
        }
    )
    now = _naive(_wall())
    with store.transaction() as tx:
        tx.register("_tw_tick_marks", marks)
        tx.register("_tw_tick_state", state)
        try:
            tx.execute(
                "UPDATE monitor_series SET last_scored = m.last_scored FROM _tw_tick_marks m"
                " WHERE monitor_series.monitor = ? AND monitor_series.series_key = m.series_key",
                [spec.name],
            )
            tx.execute(
                "INSERT INTO tick_state (monitor, metric_id, detector, last_scored, tail_start, tail_points,"
                " trained_at, updated_at) SELECT ?, metric_id, detector, last_scored, tail_start, tail_points,"
                " trained_at, ? FROM _tw_tick_state ON CONFLICT (monitor, metric_id, detector) DO UPDATE SET"
                " last_scored = excluded.last_scored, tail_start = excluded.tail_start,"
                " tail_points = excluded.tail_points, trained_at = excluded.trained_at,"
                " updated_at = excluded.updated_at",
                [spec.name, now],
            )
            tx.execute(
                "INSERT INTO tick_generations (monitor, generation, tick_at, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (monitor) DO UPDATE SET generation = excluded.generation,"
                " tick_at = excluded.tick_at, updated_at = excluded.updated_at",
                [spec.name, generation, _naive(tick), now],
            )
            tx.execute(
                "UPDATE monitor_state SET cursor = ? WHERE monitor = ?",
                [json.dumps(cursor, sort_keys=True), spec.name],
            )
        finally:
            tx.unregister("_tw_tick_marks")
            tx.unregister("_tw_tick_state")


def _score_per_metric(
    spec: MonitorSpec,
    *,
    store: Store,
    tick: pd.Timestamp,
    data_end: pd.Timestamp,
    report: MonitorRunReport,
    cursor: dict[str, Any],
) -> bool:
    """The per-metric tick (the reference the streaming tick is measured against): several store
    queries per series, the model read and a day of context re-read every tick."""
    cur = store.cursor()
    rows = cur.execute(
        "SELECT series_key, metric_id, last_point, last_scored FROM monitor_series WHERE monitor = ? ORDER BY series_key",
        [spec.name],
    ).fetchall()
    firing_before: dict[str, dict[str, Any]] = dict(cursor.get("firing") or {})
    firing_now: dict[str, dict[str, Any]] = {}
    for key, metric_id, _last_point, last_scored in rows:
        info = repo.get_metric(cur, int(metric_id))
        scored_until = _ts(last_scored)
        start = (
            scored_until + pd.Timedelta(microseconds=1)
            if scored_until is not None
            else data_end - pd.Timedelta(spec.history)
        )
        new = repo.read_series(cur, int(metric_id), start=start, end=data_end + pd.Timedelta(microseconds=1))
        if new.empty:
            # nothing new: anomalies of this series keep their state
            firing_now.update({k: v for k, v in firing_before.items() if v.get("series") == key})
            continue
        for det in spec.all_detectors:
            loaded = _load_model(store, spec, int(metric_id), det)
            model: Detector | None
            if loaded is None or tick - loaded[1] >= pd.Timedelta(spec.train.every):
                model = _train(
                    store,
                    spec,
                    int(metric_id),
                    det,
                    tick=tick,
                    data_end=data_end + pd.Timedelta(microseconds=1),
                    report=report,
                )
                report.trained += model is not None
            else:
                model = loaded[0]
            if model is None:
                continue
            context = repo.read_series(
                cur, int(metric_id), start=new.index[0] - pd.Timedelta(days=1), end=new.index[0]
            )
            raw = model.score(new, context=context if len(context) else None)
            z = calibrate(model, raw.to_numpy(dtype="float64"))
            scores = pd.Series(_unwarmed(model, tick_state.utc_ns(raw.index), z), index=raw.index)
            _write_scores(store, int(metric_id), det.type, scores)
            with store.transaction():
                found = _anomalies(
                    store, spec, metric_id=int(metric_id), info=info, det=det, new=new, scores=scores
                )
            for anomaly in found:
                report.anomalies.append(anomaly)
                firing_now[anomaly.key] = {
                    "series": key,
                    "metric_id": anomaly.metric_id,
                    "detector": anomaly.detector,
                    "start": anomaly.start.isoformat(),
                }
            report.scored += int(new.notna().sum())
            # anomalies that were firing and were not extended by these new points have ended, once
            # more than merge_gap normal points followed them (fewer could still merge with the next)
            for akey, item in firing_before.items():
                if item.get("series") != key or item.get("detector") != det.type or akey in firing_now:
                    continue
                end_row = cur.execute(
                    "SELECT end_ts, value, expected, lower, upper FROM anomalies WHERE metric_id = ?"
                    " AND detector = ? AND start_ts = ?",
                    [int(metric_id), det.type, _naive(pd.Timestamp(item["start"]))],
                ).fetchone()
                after = 0
                if end_row is not None:
                    since = repo.read_series(
                        cur,
                        int(metric_id),
                        start=pd.Timestamp(end_row[0]).tz_localize("UTC") + pd.Timedelta(microseconds=1),
                        end=new.index[-1] + pd.Timedelta(microseconds=1),
                    )
                    last_out = held_through(
                        still_outside(since.to_numpy(dtype="float64"), *end_row[1:]), det.merge_gap
                    )
                    if last_out >= 0:  # held open while the metric has not come back
                        with store.transaction() as tx:
                            tx.execute(
                                "UPDATE anomalies SET end_ts = ? WHERE metric_id = ? AND detector = ?"
                                " AND start_ts = ?",
                                [
                                    _naive(since.index[last_out]),
                                    int(metric_id),
                                    det.type,
                                    _naive(pd.Timestamp(item["start"])),
                                ],
                            )
                        since = since.iloc[last_out + 1 :]
                    after = len(since)
                if end_row is not None and after <= det.merge_gap:
                    firing_now[akey] = item
                    continue
                report.resolved.append(akey)
                report.resolved_items.append({**item, "key": akey})
        with store.transaction() as tx:
            tx.execute(
                "UPDATE monitor_series SET last_scored = ? WHERE monitor = ? AND series_key = ?",
                [_naive(new.index[-1]), spec.name, key],
            )
    cursor["firing"] = firing_now
    cursor["resolved"] = {k: firing_before[k] for k in report.resolved if k in firing_before}
    return False  # the caller stores the cursor (this reference path is not crash-atomic)


def _write_scores(store: Store, metric_id: int, detector: str, scores: pd.Series) -> None:
    index = pd.DatetimeIndex(scores.index).tz_convert("UTC").tz_localize(None)
    frame = pd.DataFrame(
        {
            "metric_id": np.full(len(scores), metric_id, dtype="int32"),
            "detector": detector,
            "ts": index.astype("datetime64[us]"),
            "score": scores.to_numpy(dtype="float64"),
        }
    )
    with store.transaction(series=True) as tx:
        repo.replace_scores(tx, frame)


def _anomalies(
    store: Store,
    spec: MonitorSpec,
    *,
    metric_id: int,
    info: repo.MetricInfo,
    det: DetectorSpec,
    new: pd.Series,
    scores: pd.Series,
) -> list[FoundAnomaly]:
    """Anomaly windows over the stored scores just before the new ones and the new ones; a window that
    continues one from the previous tick keeps its start (so its key and its alert stay the same).

    Writes the windows with the calling thread's cursor: the caller holds the transaction (a tick
    records all its anomalies and resolutions in one)."""
    cur = store.cursor()
    lookback_points = det.merge_gap + det.min_points + 1
    prior = cur.execute(
        "SELECT ts, score FROM scores WHERE metric_id = ? AND detector = ? AND ts < ? ORDER BY ts DESC LIMIT ?",
        [metric_id, det.type, _naive(new.index[0]), lookback_points],
    ).fetchall()
    # extend back to the start of a still-open anomaly, if any
    open_row = cur.execute(
        "SELECT start_ts, end_ts FROM anomalies WHERE metric_id = ? AND detector = ? AND end_ts < ?"
        " ORDER BY end_ts DESC LIMIT 1",
        [metric_id, det.type, _naive(new.index[0])],
    ).fetchone()
    if open_row is not None and prior:
        oldest_prior = pd.Timestamp(prior[-1][0])
        # only an anomaly that still touches the look-back can continue into the new points
        if pd.Timestamp(open_row[0]) < oldest_prior <= pd.Timestamp(open_row[1]):
            prior = cur.execute(
                "SELECT ts, score FROM scores WHERE metric_id = ? AND detector = ? AND ts >= ? AND ts < ? ORDER BY ts DESC",
                [metric_id, det.type, open_row[0], _naive(new.index[0])],
            ).fetchall()
    prior_series = pd.Series(
        [float("nan") if r[1] is None else float(r[1]) for r in reversed(prior)],
        index=pd.DatetimeIndex([pd.Timestamp(r[0]) for r in reversed(prior)]).tz_localize("UTC")
        if prior
        else pd.DatetimeIndex([], tz="UTC"),
        dtype="float64",
    )
    combined = pd.concat([prior_series, scores]) if len(prior_series) else scores
    flags = (combined.fillna(-np.inf) >= det.threshold).to_numpy()
    windows = alarm_windows(flags, min_points=det.min_points, merge_gap=det.merge_gap)
    n_prior = len(prior_series)
    values = repo.read_series(
        cur, metric_id, start=combined.index[0], end=combined.index[-1] + pd.Timedelta(microseconds=1)
    )
    out: list[FoundAnomaly] = []
    last_index = len(combined) - 1
    for start, end in windows:
        if end - 1 < n_prior:
            continue  # entirely before the new points: recorded by an earlier tick
        segment = combined.iloc[start:end]
        peak_pos = start + int(np.nanargmax(segment.to_numpy()))
        peak = pd.Timestamp(combined.index[peak_pos])
        start_ts, end_ts = pd.Timestamp(combined.index[start]), pd.Timestamp(combined.index[end - 1])
        value = float(values.get(peak, np.nan))
        history = repo.read_series(
            cur, metric_id, start=peak - USUAL_REACH, end=peak + pd.Timedelta(microseconds=1)
        )
        hist_ts, hist_values = (
            np.asarray(pd.DatetimeIndex(history.index).as_unit("ns").asi8),
            history.to_numpy(dtype="float64"),
        )
        expected, lower, upper = usual_at(hist_ts, hist_values, peak.value)
        habit = habitual(hist_ts, hist_values, peak.value, value)
        ongoing = last_index - (end - 1) <= det.merge_gap
        after = values[values.index > end_ts]
        reach = held_through(
            still_outside(after.to_numpy(dtype="float64"), value, expected, lower, upper), det.merge_gap
        )
        if reach >= 0:  # held open while the metric stays beyond its band (as the streaming tick)
            end_ts = pd.Timestamp(after.index[reach])
            ongoing = len(after) - (reach + 1) <= det.merge_gap
        # a window that grew backwards (merged with an earlier one) replaces it
        cur.execute(
            "DELETE FROM anomalies WHERE metric_id = ? AND detector = ? AND start_ts > ? AND start_ts <= ?",
            [metric_id, det.type, _naive(start_ts), _naive(end_ts)],
        )
        cur.execute(
            "INSERT INTO anomalies (metric_id, detector, start_ts, end_ts, peak_ts, peak_score, value, expected,"
            " lower, upper) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (metric_id, detector, start_ts)"
            " DO UPDATE SET end_ts = excluded.end_ts, peak_ts = excluded.peak_ts,"
            " peak_score = excluded.peak_score, value = excluded.value, expected = excluded.expected,"
            " lower = excluded.lower, upper = excluded.upper",
            [
                metric_id,
                det.type,
                _naive(start_ts),
                _naive(end_ts),
                _naive(peak),
                float(segment.max()),
                value,
                expected,
                lower,
                upper,
            ],
        )
        out.append(
            FoundAnomaly(
                metric_id=metric_id,
                metric=info.name,
                labels=dict(info.labels),
                detector=det.type,
                start=start_ts,
                end=end_ts,
                peak=peak,
                peak_score=float(segment.max()),
                value=value,
                expected=expected,
                ongoing=ongoing,
                lower=lower,
                upper=upper,
                habitual=habit,
            )
        )
    return out


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


def _unwarmed(model: Detector, ts: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``z`` with no score before the model's ``scored_from_`` (a series' first day, where a detector
    has no history yet: as ``telewatch detect``, see ``services.detection.warm_up``)."""
    start = getattr(model, "scored_from_", None)
    if start is None:
        return z
    out = np.array(z, dtype="float64", copy=True)
    out[np.asarray(ts, dtype="int64") < pd.Timestamp(start).value] = np.nan
    return out


def _blip(spec: MonitorSpec, report: MonitorRunReport, a: FoundAnomaly, *, related: Sequence[str]) -> bool:
    """A blip: over by the time the tick sees it (not at the edge of the tick's data), shorter than
    ``alert.min_blip``, below the critical score, with no other metric anomalous in its incident —
    nothing for a person to act on when the message arrives. Recorded and shown in the UI; not paged."""
    data_end = report.tick - pd.Timedelta(spec.lag)
    if related or a.end >= data_end - pd.Timedelta(minutes=2) or a.peak_score >= CRITICAL_SCORE:
        return False
    return bool(a.end - a.start + pd.Timedelta(minutes=1) < pd.Timedelta(spec.alert.min_blip))


def _incidents_of(
    cur: Any, items: Sequence[tuple[int, str, pd.Timestamp]]
) -> dict[tuple[int, str, pd.Timestamp], tuple[int, str | None, tuple[str, ...]]]:
    """(incident id, type, other anomalous metrics) of each (metric id, detector, start) anomaly."""
    out: dict[tuple[int, str, pd.Timestamp], tuple[int, str | None, tuple[str, ...]]] = {}
    for mid, det, start in items:
        row = cur.execute(
            "SELECT i.id, coalesce(i.type_title, i.type) FROM anomalies a"
            " JOIN incident_anomalies ia ON ia.anomaly_id = a.id JOIN incidents i ON i.id = ia.incident_id"
            " WHERE a.metric_id = ? AND a.detector = ? AND a.start_ts = ? ORDER BY i.id DESC LIMIT 1",
            [mid, det, _naive(start)],
        ).fetchone()
        if row is None:
            continue
        related = cur.execute(
            "SELECT m.name FROM incident_metrics im JOIN metrics m ON m.id = im.metric_id"
            " WHERE im.incident_id = ? AND im.anomalous AND im.metric_id <> ? ORDER BY im.rank LIMIT 5",
            [int(row[0]), mid],
        ).fetchall()
        out[(mid, det, start)] = (int(row[0]), row[1], tuple(str(r[0]) for r in related))
    return out


def _deviation(value: float, expected: float | None) -> float | None:
    if expected is None or expected == 0 or np.isnan(value):
        return None
    return (value - expected) / abs(expected) * 100.0


def build_candidates(spec: MonitorSpec, report: MonitorRunReport, *, store: Store) -> list[Any]:
    """Alert candidates (``telewatch.alerts.model.AlertCandidate``) for the anomalies of this tick:
    firing for new or extended ones (only those reaching into this tick's data: see
    :func:`_alertable`), each with its incident so one incident is one message."""
    from telewatch.alerts.model import AlertCandidate

    out: list[Any] = []
    cur = store.cursor()
    news = [a for a in report.anomalies if _alertable(spec, report, a)]
    incidents = _incidents_of(cur, [(a.metric_id, a.detector, a.start) for a in news])
    for a in news:
        incident = incidents.get((a.metric_id, a.detector, a.start))
        if _blip(spec, report, a, related=incident[2] if incident else ()):
            continue
        window = repo.read_series(
            cur, a.metric_id, start=a.start - pd.Timedelta(hours=6), end=a.end + pd.Timedelta(minutes=1)
        )
        out.append(
            AlertCandidate(
                key=f"{spec.name}:{a.key}",
                monitor=spec.name,
                metric=a.metric,
                labels=a.labels,
                group=spec.group,
                value=a.value,
                expected=a.expected,
                lower=a.lower,
                upper=a.upper,
                deviation_pct=_deviation(a.value, a.expected),
                score=a.peak_score,
                severity=spec.alert.severity or "warning",
                started_at=a.start,
                last_seen=a.end,
                owner=spec.owner,
                incident_id=incident[0] if incident else None,
                incident_type=incident[1] if incident else None,
                related=incident[2] if incident else (),
                status="firing",
                series=window,
            )
        )
    return out


def _resolved_candidates(spec: MonitorSpec, report: MonitorRunReport, *, store: Store) -> list[Any]:
    """Resolved candidates for the anomalies that ended: the true duration (first to last anomalous
    point) and, as the value, the metric's latest reading (back to normal)."""
    from telewatch.alerts.model import AlertCandidate

    out: list[Any] = []
    cur = store.cursor()
    rows = []
    for item in report.resolved_items:
        start = pd.Timestamp(item["start"])
        row = cur.execute(
            "SELECT end_ts, peak_score, value, expected, lower, upper FROM anomalies WHERE metric_id = ?"
            " AND detector = ? AND start_ts = ?",
            [int(item["metric_id"]), item["detector"], _naive(start)],
        ).fetchone()
        if row is not None:
            rows.append((item, start, row))
    incidents = _incidents_of(cur, [(int(i["metric_id"]), str(i["detector"]), s) for i, s, _r in rows])
    for item, start, row in rows:
        info = repo.get_metric(cur, int(item["metric_id"]))
        latest = cur.execute(
            "SELECT value FROM points WHERE metric_id = ? AND ts <= ? AND value IS NOT NULL"
            " ORDER BY ts DESC LIMIT 1",
            [int(item["metric_id"]), _naive(report.tick)],
        ).fetchone()
        value = (
            float(latest[0])
            if latest is not None
            else (float(row[2]) if row[2] is not None else float("nan"))
        )
        incident = incidents.get((int(item["metric_id"]), str(item["detector"]), start))
        out.append(
            AlertCandidate(
                key=f"{spec.name}:{item['key']}",
                monitor=spec.name,
                metric=info.name,
                labels=dict(info.labels),
                group=spec.group,
                value=value,
                expected=float(row[3]) if row[3] is not None else None,
                lower=float(row[4]) if row[4] is not None else None,
                upper=float(row[5]) if row[5] is not None else None,
                deviation_pct=None,
                score=float(row[1]),
                severity=spec.alert.severity or "warning",
                started_at=start,
                last_seen=pd.Timestamp(row[0]).tz_localize("UTC"),
                owner=spec.owner,
                incident_id=incident[0] if incident else None,
                incident_type=incident[1] if incident else None,
                status="resolved",
            )
        )
    return out


#: Severity from the calibrated score and the deviation from what is usual at that hour, for a
#: monitor without a fixed ``alert.severity``: critical for an extreme score or a large deviation.
CRITICAL_SCORE = 8.0
CRITICAL_DEVIATION_PCT = 50.0


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
            levels = [  # the first satisfied wins
                SeverityLevel(level="critical", min_score=CRITICAL_SCORE),
                SeverityLevel(level="critical", min_deviation_pct=CRITICAL_DEVIATION_PCT),
                SeverityLevel(level="warning"),
            ]
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


def _update_incidents(
    store: Store, *, now: pd.Timestamp, since: pd.Timestamp, report: MonitorRunReport
) -> None:
    """Group recent anomalies into incidents (``telewatch.services.incidents``); a failure there is
    reported as a warning and does not fail the monitor's tick."""
    try:
        from telewatch.services.incidents import update_incidents

        update_incidents(store, now=now, since=since, rerank_unchanged=False)
    except Exception as exc:
        report.warnings.append(f"incidents not updated: {type(exc).__name__}: {exc}")
        log.warning("monitor %s: incidents not updated: %s", report.monitor, exc)
