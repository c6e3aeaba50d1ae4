"""The job every scheduler runs: load a monitors file, run the due tick(s) of its monitors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from telewatch.core.errors import ConfigError
from telewatch.monitors.config import MonitorsFile
from telewatch.monitors.validate import validate_file
from telewatch.scheduler.driver_logs import one_line_driver_logs
from telewatch.services.monitor import AlertingSetup, MonitorRunReport, run_monitor
from telewatch.store.db import Store


@dataclass
class LoadedConfig:
    monitors: MonitorsFile
    alerting: Any  # telewatch.alerts.config.AlertingConfig

    def setup(self, *, deliver: bool = True) -> AlertingSetup:
        return AlertingSetup(config=self.alerting, deliver=deliver)


def load_config(path: Path | str) -> LoadedConfig:
    """Validate a monitors file completely; raise :class:`ConfigError` listing every problem."""
    report = validate_file(path)
    if not report.ok or report.monitors is None:
        raise ConfigError(f"{path}: {len(report.problems)} error(s):\n  " + "\n  ".join(report.lines()))
    return LoadedConfig(monitors=report.monitors, alerting=report.alerting)


def check_monitors(
    config: LoadedConfig,
    *,
    store: Store,
    now: pd.Timestamp | str | None = None,
    monitor: str | None = None,
    deliver: bool = True,
) -> list[MonitorRunReport]:
    """Run one tick of each monitor (or of ``monitor``) as of ``now`` (default: the current minute)."""
    tick = pd.Timestamp(now) if now is not None else pd.Timestamp.now(tz="UTC").floor("min")
    tick = tick.tz_localize("UTC") if tick.tzinfo is None else tick.tz_convert("UTC")
    specs = (
        [config.monitors.monitor(monitor)] if monitor else [m for m in config.monitors.monitors if m.enabled]
    )
    one_line_driver_logs()  # as under `telewatch run`: a failing source logs one line, no driver traceback
    setup = config.setup(deliver=deliver)
    return [run_monitor(spec, store=store, now=tick, alerting=setup) for spec in specs]


def airflow_task(*, config: str, monitor: str, db: str | None = None, **context: Any) -> dict[str, Any]:
    """Entry point for Airflow's PythonOperator (telewatch installed in Airflow's environment)."""
    from telewatch.core.allocator import tune_allocator
    from telewatch.settings import Settings

    tune_allocator()  # the task's process, as the telewatch command sets its own (docs/scale.md)

    logical = context.get("logical_date") or context.get("data_interval_end")
    path = Path(db) if db else Settings().store_path
    with Store(path) as store:
        (result,) = check_monitors(load_config(config), store=store, now=logical, monitor=monitor)
    if result.status == "error":
        raise RuntimeError(f"monitor {monitor}: {result.error}")
    return {"status": result.status, "points": result.points, "anomalies": len(result.anomalies)}
