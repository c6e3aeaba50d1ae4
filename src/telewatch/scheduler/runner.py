"""The built-in scheduler behind ``telewatch run``.

Each pass (:meth:`Runner.run_pending`) looks at every monitor: the ticks of its schedule after its last
successful run, up to now, are run in order (catch-up after downtime, at most ``max_catchup`` — older
missed ticks are folded into the first one, as the fetch is by data range nothing is lost). A failing
monitor stops its own catch-up, is retried after its backoff and does not hold up the others. Runs of
one monitor never overlap (one pass at a time here, and a lease in the store across processes).
At the end of a pass, at most once per ``retention.every`` of the runner's clock, old records are
deleted (:mod:`telewatch.services.retention`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pandas as pd

from telewatch.scheduler.driver_logs import DRIVER_LOGGERS, OneLineLog, one_line_driver_logs
from telewatch.scheduler.jobs import LoadedConfig
from telewatch.services.monitor import MonitorRunReport, read_state, run_monitor
from telewatch.services.retention import RetentionPolicy, RetentionSchedule, retention_warnings
from telewatch.store.db import Store

__all__ = ["DRIVER_LOGGERS", "OneLineLog", "Runner", "one_line_driver_logs"]

log = logging.getLogger("telewatch.scheduler")


def _utc_now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


class Runner:
    """Keep every monitor of ``config`` on its schedule."""

    def __init__(
        self,
        config: LoadedConfig,
        *,
        store: Store,
        clock: Callable[[], pd.Timestamp] = _utc_now,
        max_catchup: int = 96,
        on_report: Callable[[MonitorRunReport], None] | None = None,
        deliver: bool = True,
        retention: RetentionPolicy | None = None,
    ) -> None:
        """``retention``: what to delete and how often (default: the ``TELEWATCH_RETENTION_*`` settings;
        ``RetentionPolicy()`` keeps everything)."""
        self.config = config
        self.store = store
        self.clock = clock
        self.max_catchup = max_catchup
        self.on_report = on_report
        self.deliver = deliver
        self._pass_lock = threading.Lock()
        one_line_driver_logs()  # a failing source's driver logs no traceback here: run_monitor's line says it
        if retention is None:
            from telewatch.settings import Settings

            retention = RetentionPolicy.from_settings(Settings())
        self.retention = RetentionSchedule(retention)
        for warning in retention_warnings(retention, config.monitors.monitors):
            log.warning("%s", warning)

    def due_ticks(self, name: str, now: pd.Timestamp) -> list[pd.Timestamp]:
        """Ticks of monitor ``name`` to run at ``now``, oldest first (empty while a retry waits)."""
        spec = self.config.monitors.monitor(name)
        state = read_state(self.store, name)
        if state.status == "error" and state.next_retry_at is not None and now < state.next_retry_at:
            return []
        if state.last_run_at is None:
            return [pd.Timestamp(spec.schedule.previous_tick(now.to_pydatetime()))]
        ticks = spec.schedule.ticks_between(
            state.last_run_at.to_pydatetime(), now.to_pydatetime(), limit=self.max_catchup
        )
        return [pd.Timestamp(t) for t in ticks]

    def run_pending(self, now: pd.Timestamp | None = None) -> list[MonitorRunReport]:
        """One pass: run every due tick of every enabled monitor; return their reports."""
        now = now if now is not None else self.clock()
        reports: list[MonitorRunReport] = []
        with self._pass_lock:
            setup = self.config.setup(deliver=self.deliver)
            for spec in self.config.monitors.monitors:
                if not spec.enabled:
                    continue
                for tick in self.due_ticks(spec.name, now):
                    report = run_monitor(spec, store=self.store, now=tick, alerting=setup, attempted_at=now)
                    reports.append(report)
                    if self.on_report is not None:
                        self.on_report(report)
                    if report.status != "ok":
                        break  # retried after its backoff; later ticks wait for it
            self.retention.maybe_apply(self.store, now=now)
        return reports

    def next_wakeup(self, now: pd.Timestamp) -> pd.Timestamp:
        """When the next tick or retry of any monitor is due."""
        times = []
        for spec in self.config.monitors.monitors:
            if not spec.enabled:
                continue
            state = read_state(self.store, spec.name)
            if state.status == "error" and state.next_retry_at is not None:
                times.append(state.next_retry_at)
            times.append(pd.Timestamp(spec.schedule.next_tick(now.to_pydatetime())))
        return min(times) if times else now + pd.Timedelta(minutes=1)

    def run_forever(self, *, stop: threading.Event | None = None, max_sleep: float = 30.0) -> None:
        """Run passes until ``stop`` is set; sleeps until the next due tick (at most ``max_sleep`` s)."""
        stop = stop or threading.Event()
        while not stop.is_set():
            started = time.monotonic()
            try:
                self.run_pending()
            except Exception:  # a bug in one pass must not end the service
                log.exception("scheduler pass failed")
            now = self.clock()
            wait = (self.next_wakeup(now) - now).total_seconds()
            log.debug("pass took %.1f s; next wake-up in %.1f s", time.monotonic() - started, wait)
            stop.wait(max(0.05, min(max_sleep, wait)))
