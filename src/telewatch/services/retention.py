"""Use-case: bounded retention — delete what has aged past its horizon, never what is still live.

Each kind of record has its own horizon (``Settings.retention_*``; ``None`` keeps it forever):

- ``points``: stored points older than the horizon;
- ``scores``: detector scores older than the horizon;
- ``anomalies``: anomalies that ended before the horizon and are no longer firing (not in a monitor's
  firing set, not part of an incident that is kept), and resolved incidents that ended before it (with
  their ranked metrics, anomaly links and notes). An incident still open, one a firing alert points
  to, and anything with feedback (feedback is training data) are kept;
- ``alert_history``: notifications in a final state (``sent``, ``failed``, ``digested``) created before
  the horizon and their delivery attempts, resolved alert states, silences that ended — never a
  ``pending``/``sending``/``digest`` notification of the outbox nor a firing alert;
- ``runs``: monitor run records whose tick is before the horizon (the newest run of each monitor is kept).

By default (``scope="monitored"``) points, scores and anomalies are deleted only for the series that a
monitor collects: data uploaded by hand for exploration stays until it is deleted by hand.
After a large delete the store is checkpointed so that DuckDB reuses the freed blocks and the file
stops growing. A pass also compacts the days that ended ``compact_after`` ago
(:mod:`telewatch.services.compaction`): no data is deleted, the rows are rewritten in an order that
makes one metric's history cheap to read.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from telewatch.core.errors import ValidationError
from telewatch.services.compaction import compact_store
from telewatch.store import maintenance
from telewatch.store.db import Store

if TYPE_CHECKING:
    from telewatch.monitors.config import MonitorSpec
    from telewatch.settings import Settings

log = logging.getLogger("telewatch.retention")

Scope = Literal["monitored", "all"]
#: days per table a retention pass compacts at most
COMPACT_DAYS_PER_PASS = 3
# The tables retention deletes from, in the order it deletes (children before their parents).
TABLES = (
    "points",
    "scores",
    "incident_metrics",
    "incident_anomalies",
    "incident_notes",
    "incidents",
    "anomalies",
    "alert_delivery_attempts",
    "alert_notifications",
    "alert_state",
    "silences",
    "monitor_runs",
)


@dataclass(frozen=True)
class RetentionPolicy:
    """How long each kind of record is kept (``None``: forever) and how often the scheduler applies it.

    >>> policy = RetentionPolicy(points=timedelta(days=90), runs=timedelta(days=14))
    >>> policy.enabled, policy.horizons()["scores"]
    (True, None)
    """

    points: timedelta | None = None
    scores: timedelta | None = None
    anomalies: timedelta | None = None
    alert_history: timedelta | None = None
    runs: timedelta | None = None
    every: timedelta = timedelta(hours=1)
    scope: Scope = "monitored"
    checkpoint_rows: int = 1
    compact_after: timedelta | None = None

    def __post_init__(self) -> None:
        for name, value in self.horizons().items():
            if value is not None and value <= timedelta(0):
                raise ValidationError(
                    f"retention_{name}: a horizon must be positive (or empty to keep forever)"
                )
        if self.every <= timedelta(0):
            raise ValidationError("retention_every: must be positive")
        if self.compact_after is not None and self.compact_after <= timedelta(0):
            raise ValidationError("retention_compact_after: must be positive (or empty: never compact)")
        if self.scope not in ("monitored", "all"):
            raise ValidationError(f"retention_scope: 'monitored' or 'all', not {self.scope!r}")

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        return cls(
            points=settings.retention_points,
            scores=settings.retention_scores,
            anomalies=settings.retention_anomalies,
            alert_history=settings.retention_alert_history,
            runs=settings.retention_runs,
            every=settings.retention_every,
            scope=settings.retention_scope,
            compact_after=settings.retention_compact_after,
        )

    def horizons(self) -> dict[str, timedelta | None]:
        return {
            "points": self.points,
            "scores": self.scores,
            "anomalies": self.anomalies,
            "alert_history": self.alert_history,
            "runs": self.runs,
        }

    @property
    def enabled(self) -> bool:
        return self.compact_after is not None or any(v is not None for v in self.horizons().values())


@dataclass
class RetentionReport:
    """What one retention pass deleted (or, for a dry run, would delete), per table."""

    now: pd.Timestamp
    dry_run: bool
    deleted: dict[str, int] = field(default_factory=dict)
    cutoffs: dict[str, pd.Timestamp | None] = field(default_factory=dict)
    checkpointed: bool = False
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    #: rows rewritten by compaction per table, and the days compacted (not counted in ``total``)
    compacted: dict[str, int] = field(default_factory=dict)
    compacted_days: int = 0

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


def _naive(ts: pd.Timestamp) -> Any:
    stamp = pd.Timestamp(ts)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.tz_localize(None).to_pydatetime()


def _firing_anomalies(store: Store) -> pd.DataFrame:
    """(metric_id, detector, start_ts) of the anomalies some monitor still has firing (its cursor)."""
    rows: list[tuple[int, str, Any]] = []
    for text in maintenance.monitor_cursors(store.cursor()):
        try:
            firing = (json.loads(text or "{}") or {}).get("firing") or {}
        except (ValueError, AttributeError):
            continue
        for item in firing.values():
            try:
                rows.append(
                    (int(item["metric_id"]), str(item["detector"]), _naive(pd.Timestamp(item["start"])))
                )
            except (KeyError, TypeError, ValueError):
                continue
    frame = pd.DataFrame(rows, columns=["metric_id", "detector", "start_ts"])
    return frame.astype({"metric_id": "int64", "detector": "object", "start_ts": "datetime64[us]"})


def retention_warnings(policy: RetentionPolicy, monitors: Iterable[MonitorSpec]) -> list[str]:
    """Monitors whose history or training window reaches further back than the points are kept."""
    out: list[str] = []
    if policy.points is None:
        return out
    for spec in monitors:
        needs = max(spec.history, spec.train.window)
        if needs > policy.points:
            out.append(
                f"monitor {spec.name}: it reads {needs} of history (history/train.window) but points are kept"
                f" for {policy.points} (retention_points): it will train and score on less"
            )
    return out


def apply_retention(
    store: Store,
    *,
    now: pd.Timestamp | str,
    settings: Settings | None = None,
    policy: RetentionPolicy | None = None,
    dry_run: bool = False,
) -> RetentionReport:
    """Delete what has aged past the horizons of ``policy`` (default: from ``settings``) as of ``now``.

    ``dry_run`` counts what would go and deletes nothing. Returns the rows per table.

    >>> from telewatch.store.db import Store
    >>> with Store(":memory:") as store:
    ...     policy = RetentionPolicy(runs=timedelta(days=1))
    ...     report = apply_retention(store, now="2026-01-02", policy=policy)
    >>> report.deleted["monitor_runs"], report.cutoffs["runs"]
    (0, Timestamp('2026-01-01 00:00:00+0000', tz='UTC'))
    """
    if policy is None:
        if settings is None:
            raise ValidationError("apply_retention: give settings or policy")
        policy = RetentionPolicy.from_settings(settings)
    stamp = pd.Timestamp(now)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    started = time.perf_counter()
    report = RetentionReport(now=stamp, dry_run=dry_run)
    report.deleted = dict.fromkeys(TABLES, 0)
    cutoffs = {k: (stamp - pd.Timedelta(v) if v is not None else None) for k, v in policy.horizons().items()}
    report.cutoffs = cutoffs
    deleted = report.deleted

    for table in ("points", "scores"):
        cutoff = cutoffs[table]
        if cutoff is not None:
            with store.transaction() as tx:
                deleted[table] += maintenance.expire_series(
                    tx, table, _naive(cutoff), scope=policy.scope, dry_run=dry_run
                )

    if cutoffs["anomalies"] is not None:
        firing = _firing_anomalies(store)
        with store.transaction() as tx:
            counts = maintenance.expire_anomalies_and_incidents(
                tx, _naive(cutoffs["anomalies"]), firing, scope=policy.scope, dry_run=dry_run
            )
        for table, n in counts.items():
            deleted[table] += n

    if cutoffs["alert_history"] is not None:
        with store.transaction() as tx:
            counts = maintenance.expire_alert_history(tx, _naive(cutoffs["alert_history"]), dry_run=dry_run)
        for table, n in counts.items():
            deleted[table] += n

    if cutoffs["runs"] is not None:
        with store.transaction() as tx:
            deleted["monitor_runs"] += maintenance.expire_runs(tx, _naive(cutoffs["runs"]), dry_run=dry_run)

    if not dry_run and policy.compact_after is not None:
        # a bounded number of days per pass: a large store's backlog is worked off over a few passes
        # instead of holding up one scheduling pass (about 2 s per day of 10,000 metrics)
        compaction = compact_store(
            store, now=stamp, keep_recent=policy.compact_after, max_days=COMPACT_DAYS_PER_PASS
        )
        report.compacted = dict(compaction.rows)
        report.compacted_days = sum(compaction.days.values())

    if not dry_run and report.total + sum(report.compacted.values()) >= policy.checkpoint_rows:
        # DuckDB frees the blocks of deleted row groups at a checkpoint; the file then reuses them
        try:
            maintenance.checkpoint(store.cursor())
            report.checkpointed = True
        except Exception as exc:  # another transaction is running: the automatic checkpoint will do it
            report.warnings.append(f"checkpoint skipped: {exc}")
            log.info("retention: checkpoint skipped: %s", exc)
    report.seconds = time.perf_counter() - started
    if report.total:
        log.info(
            "retention%s: %s",
            " (dry run)" if dry_run else "",
            ", ".join(f"{t} {n}" for t, n in report.deleted.items() if n),
        )
    return report


class RetentionSchedule:
    """Apply a policy at most once per ``policy.every`` of a caller's clock (the scheduler's hook)."""

    def __init__(self, policy: RetentionPolicy) -> None:
        self.policy = policy
        self.last_run: pd.Timestamp | None = None
        self.last_report: RetentionReport | None = None

    def due(self, now: pd.Timestamp) -> bool:
        return self.policy.enabled and (
            self.last_run is None or now - self.last_run >= pd.Timedelta(self.policy.every)
        )

    def maybe_apply(self, store: Store, *, now: pd.Timestamp) -> RetentionReport | None:
        """Apply the policy when due; a failure is logged and retried at the next interval."""
        if not self.due(now):
            return None
        self.last_run = now
        try:
            self.last_report = apply_retention(store, now=now, policy=self.policy)
        except Exception:  # retention must never stop the scheduler
            log.exception("retention pass failed")
            return None
        return self.last_report
