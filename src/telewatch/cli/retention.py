"""``telewatch retention run [--dry-run]``: delete what has aged past the ``TELEWATCH_RETENTION_*`` horizons."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from telewatch.cli.common import DbOption
from telewatch.core.errors import TelewatchError

retention_app = typer.Typer(
    help="Bounded retention: delete old points, scores, anomalies, alert history and run records.",
    no_args_is_help=True,
)
console = Console()
err_console = Console(stderr=True)

# which horizon governs each table (the report's cutoff per table)
_HORIZON = {
    "points": "points",
    "scores": "scores",
    "incident_metrics": "anomalies",
    "incident_anomalies": "anomalies",
    "incident_notes": "anomalies",
    "incidents": "anomalies",
    "anomalies": "anomalies",
    "alert_delivery_attempts": "alert_history",
    "alert_notifications": "alert_history",
    "alert_state": "alert_history",
    "silences": "alert_history",
    "monitor_runs": "runs",
}


def register(app: typer.Typer) -> None:
    """Add the ``retention`` group to the main CLI."""
    app.add_typer(retention_app, name="retention")


@retention_app.command("run")
def run_cmd(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")
    ] = False,
    now: Annotated[
        str | None, typer.Option(help="Apply the horizons as of this time (ISO 8601, UTC); default: now.")
    ] = None,
    db: DbOption = None,
) -> None:
    """Delete, per table, what is older than its horizon (``TELEWATCH_RETENTION_*``), never anything still
    open, firing or waiting in the outbox; prints the rows deleted per table."""
    import pandas as pd

    from telewatch.services.retention import RetentionPolicy, apply_retention
    from telewatch.settings import Settings
    from telewatch.store.db import Store

    try:
        settings = Settings() if db is None else Settings(db_path=db)
        policy = RetentionPolicy.from_settings(settings)
        try:
            stamp = pd.Timestamp(now) if now is not None else pd.Timestamp.now(tz="UTC")
        except ValueError as exc:
            raise TelewatchError(f"--now: not a time: {now!r}") from exc
        with Store(settings.store_path) as store:
            report = apply_retention(store, now=stamp, policy=policy, dry_run=dry_run)
    except TelewatchError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(code=2) from exc
    verb = "would delete" if dry_run else "deleted"
    table = Table(
        title=f"retention as of {report.now:%Y-%m-%d %H:%M} UTC" + (" (dry run)" if dry_run else "")
    )
    table.add_column("table")
    table.add_column("older than")
    table.add_column("rows to delete" if dry_run else "rows deleted", justify="right")
    for name, rows in report.deleted.items():
        cutoff = report.cutoffs.get(_HORIZON[name])
        table.add_row(name, f"{cutoff:%Y-%m-%d %H:%M}" if cutoff is not None else "kept forever", f"{rows:,}")
    console.print(table)
    console.print(
        f"{verb} {report.total:,} rows in {report.seconds:.2f} s"
        + ("; store checkpointed" if report.checkpointed else ""),
        highlight=False,
    )
    if report.compacted_days:
        console.print(
            f"compacted {report.compacted_days} day(s): "
            + ", ".join(f"{t} {n:,} rows" for t, n in report.compacted.items() if n)
            + " rewritten in (metric, time) order",
            highlight=False,
        )
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
