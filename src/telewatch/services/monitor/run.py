"""One tick of a monitor: :func:`run_monitor` — fetch, store, score, record anomalies, update incidents, alert.

The job every scheduler calls (the built-in runner, ``telewatch check``, ``telewatch serve --monitors``, an
Airflow task, ``telewatch replay``). For a given ``now`` it is idempotent: the source's cursor and the last point
scored per series live in the store, anomalies are upserted by their start, and alert candidates carry a
stable key, so running the same tick twice stores, scores and alerts nothing new. It reads no clock except
for the lease's expiry: tests drive it with a simulated ``now``."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from telewatch.core.errors import TelewatchError
from telewatch.core.faults import crash_point
from telewatch.core.secrets import redact
from telewatch.monitors.config import MonitorSpec
from telewatch.services.monitor.alerts import submit_and_deliver
from telewatch.services.monitor.model import (
    OWED,
    AlertingSetup,
    FoundAnomaly,
    MonitorRunReport,
    _wall,
    log,
)
from telewatch.services.monitor.points import _store_points, _store_points_per_series
from telewatch.services.monitor.reference import _score_per_metric
from telewatch.services.monitor.scoring import _score
from telewatch.services.monitor.state import (
    MonitorState,
    _save_state,
    acquire_lease,
    backoff,
    default_holder,
    read_state,
    release_lease,
)
from telewatch.sources.base import Source, SourceState, utc
from telewatch.store import monitors as monitors_repo
from telewatch.store.db import Store


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
        where = src.describe() if src is not None else f"{getattr(spec.source, 'type', '')} source".strip()
        line = " ".join(message.split())  # one line: the monitor, the source, the reason (no traceback)
        line = line if line.startswith(where) else f"{where}: {line}"
        log.warning("monitor %s failed (attempt %d): %s", spec.name, state.attempts, line)
    finally:
        if own_source and src is not None:
            src.close()
        try:
            _record_run(store, report, started)
        finally:
            release_lease(store, monitor=spec.name, holder=holder)
    return report


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
        monitors_repo.record_run(
            tx,
            monitor=report.monitor,
            tick_at=report.tick,
            started_at=started,
            finished_at=_wall(),
            status=report.status,
            attempt=report.attempt,
            points=report.points,
            scored=report.scored,
            anomalies=len(report.anomalies),
            alerts=report.alerts_submitted,
            error=report.error,
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
