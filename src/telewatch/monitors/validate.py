"""Check a monitors file completely: its schema (pydantic), then what only the rest of telewatch knows —
detector types and parameters, alerting channels and rules. Every problem is reported with its path
in the file (``monitors[2].detector.type``) and line, not just the first one."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from telewatch.core.errors import ConfigError
from telewatch.monitors.config import (
    Loc,
    MonitorConfigError,
    MonitorsFile,
    format_path,
    load_monitors,
    read_yaml,
)


@dataclass
class ValidationReport:
    path: str
    monitors: MonitorsFile | None = None
    alerting: Any = None  # telewatch.alerts.config.AlertingConfig
    problems: list[tuple[str, int | None, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        return [
            f"{path}" + (f" (line {line})" if line else "") + f": {msg}" for path, line, msg in self.problems
        ]


def load_alerting_for(monitors: MonitorsFile, *, source: str) -> Any:
    """The alerting configuration a monitors file names: inline ``alerting:``, a path, or none (empty)."""
    from telewatch.alerts.config import AlertingConfig, load_alerting_config, parse_alerting_config

    if monitors.alerting is None:
        return AlertingConfig()
    if isinstance(monitors.alerting, str):
        return load_alerting_config(monitors.alerting)
    return parse_alerting_config({"alerting": monitors.alerting}, source=source)


def validate_file(path: Path | str) -> ValidationReport:
    """Validate ``path``; never raises for a bad file (the report lists the problems)."""
    report = ValidationReport(path=str(path))
    try:
        report.monitors = load_monitors(path)
    except MonitorConfigError as exc:
        report.problems.extend(exc.problems)
        return report
    except ConfigError as exc:
        report.problems.append(("(file)", None, str(exc)))
        return report
    _, lines = read_yaml(path)

    def line(loc: Loc) -> int | None:
        for cut in range(len(loc), -1, -1):
            if loc[:cut] in lines:
                return lines[loc[:cut]]
        return None

    from telewatch.detectors import create_detector

    for i, spec in enumerate(report.monitors.monitors):
        for j, det in enumerate(spec.all_detectors):
            loc: Loc = ("monitors", i, "detectors", j) if spec.detectors else ("monitors", i, "detector")
            try:
                create_detector(det.type, **det.params)
            except ConfigError as exc:
                report.problems.append((format_path((*loc, "type")), line(loc), str(exc)))
    try:
        report.alerting = load_alerting_for(report.monitors, source=str(path))
    except ConfigError as exc:
        report.problems.append(("alerting", line(("alerting",)), str(exc)))
        return report
    channels = set(report.alerting.channels)
    for i, spec in enumerate(report.monitors.monitors):
        for j, name in enumerate(spec.channels):
            if name not in channels:
                known = ", ".join(sorted(channels)) or "none configured"
                loc = ("monitors", i, "channels", j)
                report.problems.append(
                    (format_path(loc), line(loc), f"no alerting channel named {name!r} ({known})")
                )
    return report
