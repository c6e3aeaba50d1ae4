"""``telewatch monitors validate|status``, ``telewatch run`` and ``telewatch check``."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from telewatch.cli.common import DbOption
from telewatch.cli.common import fail as _fail
from telewatch.cli.common import open_store as _store
from telewatch.core.errors import TelewatchError

monitors_app = typer.Typer(
    help="Monitors: validate a monitors file, see their last runs.", no_args_is_help=True
)
console = Console()
err_console = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="Monitors YAML (default: $TELEWATCH_MONITORS_FILE or ./monitors.yaml)."
    ),
]


def _config_path(config: Path | None) -> Path:
    path = config or Path(os.environ.get("TELEWATCH_MONITORS_FILE", "monitors.yaml"))
    if not path.exists():
        err_console.print(f"[bold red]error:[/] monitors file {path} does not exist")
        raise typer.Exit(code=2)
    return path


@monitors_app.command("validate")
def validate_cmd(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="Monitors YAML.")],
) -> None:
    """Check a monitors file; every error is listed with its path in the file and its line."""
    from telewatch.monitors.validate import validate_file

    report = validate_file(file)
    if not report.ok:
        err_console.print(f"[bold red]{file}: {len(report.problems)} error(s)[/]", highlight=False)
        for line in report.lines():
            err_console.print(f"  {line}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=1)
    assert report.monitors is not None
    table = Table(title=f"{file}: {len(report.monitors.monitors)} monitors, valid")
    for col in ("monitor", "source", "schedule", "detectors", "channels", "owner"):
        table.add_column(col)
    for m in report.monitors.monitors:
        sched = f"every {m.schedule.every}" if m.schedule.every is not None else f"cron {m.schedule.cron}"
        table.add_row(
            m.name + ("" if m.enabled else " (disabled)"),
            m.source.type,
            sched,
            ", ".join(d.type for d in m.all_detectors),
            ", ".join(m.channels) or "—",
            m.owner or "—",
        )
    console.print(table)


@monitors_app.command("status")
def status_cmd(db: DbOption = None) -> None:
    """Last run, status, failure streak and next retry of every monitor that ran."""
    from telewatch.services.monitor import list_states

    try:
        with _store(db) as store:
            states = list_states(store)
    except TelewatchError as exc:
        raise _fail(exc) from exc
    table = Table(title=f"{len(states)} monitors")
    for col in ("monitor", "status", "last run", "attempts", "next retry", "error"):
        table.add_column(col)
    for s in states:
        table.add_row(
            s.monitor,
            s.status,
            s.last_run_at.isoformat() if s.last_run_at is not None else "—",
            str(s.attempts),
            s.next_retry_at.isoformat() if s.next_retry_at is not None else "—",
            s.error or "",
        )
    console.print(table)


def _print_reports(reports: list[Any]) -> None:
    for r in reports:
        colour = {"ok": "green", "error": "red"}.get(r.status, "yellow")
        line = (
            f"{r.monitor} @ {r.tick:%Y-%m-%d %H:%M} UTC: [{colour}]{r.status}[/], {r.points} new points in"
            f" {r.series} series, {r.scored} scored, {len(r.anomalies)} anomalies, {r.alerts_submitted} alerts"
            f" ({r.alerts_sent} sent)"
        )
        if r.error:
            line += f" — {r.error}"
            if r.next_retry_at is not None:
                line += f" (retry after {r.next_retry_at:%H:%M:%S})"
        console.print(line, highlight=False, soft_wrap=True)
        if r.warming:
            needs = sorted(set(r.warming.values()))
            console.print(
                f"  {len(r.warming)} series not scored yet (warming up: "
                + ", ".join(needs[:3])
                + (" …" if len(needs) > 3 else "")
                + "): no anomaly or alert for them before that",
                highlight=False,
                soft_wrap=True,
            )
        for warning in r.warnings:
            console.print(f"  [yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)


def check(
    config: ConfigOption = None,
    monitor: Annotated[str | None, typer.Option("--monitor", "-m", help="Only this monitor.")] = None,
    now: Annotated[
        str | None, typer.Option(help="Run the tick of this time (ISO 8601, UTC); default: now.")
    ] = None,
    no_deliver: Annotated[bool, typer.Option("--no-deliver", help="Queue alerts but do not send.")] = False,
    db: DbOption = None,
) -> None:
    """Run one tick of every monitor (or one) now: fetch, score, update incidents, alert. Exit status 1
    when a monitor failed (for cron and CI)."""
    from telewatch.scheduler.jobs import check_monitors, load_config

    path = _config_path(config)
    try:
        loaded = load_config(path)
        with _store(db) as store:
            reports = check_monitors(loaded, store=store, now=now, monitor=monitor, deliver=not no_deliver)
    except TelewatchError as exc:
        raise _fail(exc) from exc
    _print_reports(reports)
    if any(r.status == "error" for r in reports):
        raise typer.Exit(code=1)


def run(
    config: ConfigOption = None,
    once: Annotated[bool, typer.Option("--once", help="One scheduling pass (due ticks), then exit.")] = False,
    db: DbOption = None,
) -> None:
    """Keep every monitor on its schedule until stopped (Ctrl-C / SIGTERM): catches up missed ticks in
    order, retries failing monitors with backoff, never overlaps runs of one monitor."""
    from telewatch.scheduler.jobs import load_config
    from telewatch.scheduler.runner import Runner

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    path = _config_path(config)
    try:
        loaded = load_config(path)
        with _store(db) as store:

            def show(report: Any) -> None:
                line = (
                    f"{report.tick:%Y-%m-%d %H:%M} {report.monitor}: {report.status}, {report.points} points,"
                    f" {len(report.anomalies)} anomalies, {report.alerts_submitted} alerts"
                )
                if report.error:
                    line += f" — {report.error} (retry at {report.next_retry_at:%H:%M:%S})"
                console.print(line, highlight=False, soft_wrap=True)

            runner = Runner(loaded, store=store, on_report=show)
            if once:
                runner.run_pending()
                return
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            console.print(f"telewatch scheduler: {len(loaded.monitors.monitors)} monitors from {path}")
            try:
                runner.run_forever(stop=stop)
            except KeyboardInterrupt:
                stop.set()
    except TelewatchError as exc:
        raise _fail(exc) from exc


def register(app: typer.Typer) -> None:
    """Add ``monitors``, ``run`` and ``check`` to the main command line."""
    app.add_typer(monitors_app, name="monitors")
    app.command("run")(run)
    app.command("check")(check)
