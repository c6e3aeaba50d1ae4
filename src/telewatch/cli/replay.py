"""``telewatch replay``: what a monitors and alerting configuration would have done over stored history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from telewatch.cli.common import DbOption, fail, open_store
from telewatch.core.errors import TelewatchError

console = Console()


def _run(
    *,
    db: Path | None,
    start: str,
    end: str,
    monitors: Path | None,
    alerting: Path | None,
    every: str | None,
    group: str | None,
) -> Any:
    from telewatch.alerts.config import load_alerting_config
    from telewatch.core.durations import parse_duration
    from telewatch.monitors.validate import load_alerting_for
    from telewatch.services.replay import load_replay_monitors, replay

    specs = None
    config = None
    if monitors is not None:
        loaded = load_replay_monitors(monitors)
        specs = [m for m in loaded.monitors if m.enabled]
        if alerting is None and loaded.alerting is not None:
            config = load_alerting_for(loaded, source=str(monitors))
    if alerting is not None:
        config = load_alerting_config(alerting)
    with open_store(db) as store:
        return replay(
            store,
            start=start,
            end=end,
            monitors=specs,
            alerting=config,
            every=parse_duration(every) if every else None,
            group=group,
            console=console,
        )


def _day_table(report: Any, title: str) -> Table:
    table = Table(title=title)
    for col in ("day", "anomalies", "incidents", "messages", "firing", "resolved", "labels caught"):
        table.add_column(col, justify="right" if col != "day" else "left")
    for d in report.days:
        table.add_row(
            d.day,
            str(d.anomalies),
            str(d.incidents),
            str(d.messages),
            str(d.firing),
            str(d.resolved),
            f"{d.labels_caught}/{d.labels}" if d.labels else "",
        )
    return table


def replay_cmd(
    start: Annotated[str, typer.Option("--from", help="Replay from this time (ISO 8601, UTC).")],
    end: Annotated[str, typer.Option("--to", help="Replay up to this time (ISO 8601, UTC).")],
    monitors: Annotated[
        Path | None,
        typer.Option(
            help="Monitors file to replay (default: one monitor with the default settings over every stored metric)."
        ),
    ] = None,
    alerting: Annotated[
        Path | None, typer.Option(help="Alerting file (default: the monitors file's `alerting:`).")
    ] = None,
    every: Annotated[
        str | None, typer.Option(help="Tick every this long (e.g. 15m) instead of each monitor's schedule.")
    ] = None,
    group: Annotated[
        str | None, typer.Option(help="Without --monitors: only the stored metrics of this group.")
    ] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write days, incidents and messages as JSON here.")
    ] = None,
    messages_dir: Annotated[
        Path | None,
        typer.Option("--messages-dir", help="Write each message it would have sent (text, chart PNG) here."),
    ] = None,
    compare: Annotated[
        Path | None, typer.Option(help="A second monitors file replayed over the same time, shown beside.")
    ] = None,
    db: DbOption = None,
) -> None:
    """Alerting dry run: run the ticks the scheduler would have run over stored points, on a simulated
    clock, with alerts rendered but not sent and the live tables untouched. Prints a table per day and
    last a line `REPLAY days=.. anomalies=.. incidents=.. messages=.. firing=..`."""
    from telewatch.services.replay import write_messages

    try:
        report = _run(
            db=db, start=start, end=end, monitors=monitors, alerting=alerting, every=every, group=group
        )
        other = (
            _run(db=db, start=start, end=end, monitors=compare, alerting=alerting, every=every, group=group)
            if compare is not None
            else None
        )
    except TelewatchError as exc:
        raise fail(exc) from exc
    console.print(_day_table(report, f"replay of {', '.join(report.monitors)}: {report.ticks} ticks"))
    incidents = Table(title=f"{len(report.incidents)} incidents")
    several = len(report.monitors) > 1  # whose incident it is, when the replay ran several monitors
    for col in (
        "id",
        "start",
        "end",
        *(("monitor",) if several else ()),
        "type",
        "severity",
        "messages",
        "metrics",
    ):
        incidents.add_column(col)
    for inc in report.incidents[-60:]:
        incidents.add_row(
            str(inc.id),
            f"{inc.start:%Y-%m-%d %H:%M}",
            f"{inc.end:%Y-%m-%d %H:%M}",
            *((inc.monitor or "",) if several else ()),
            inc.type or "",
            inc.severity or "",
            str(inc.messages),
            ", ".join(inc.metrics[:4]) + (" …" if len(inc.metrics) > 4 else ""),
        )
    console.print(incidents)
    for err in report.errors:
        console.print(f"[yellow]tick failed:[/] {err}", highlight=False, soft_wrap=True)
    if other is not None:
        console.print(_day_table(other, f"compare: {', '.join(other.monitors)}"))
        console.print(f"compare: {other.summary_line()}", highlight=False)
    if json_path is not None:
        data = report.to_dict()
        if other is not None:
            data["compare"] = other.to_dict()
        json_path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
        console.print(f"wrote {json_path}")
    if messages_dir is not None:
        written = write_messages(report, messages_dir)
        console.print(f"wrote {len(written)} files to {messages_dir}")
    print(report.summary_line(), flush=True)


def register(app: typer.Typer) -> None:
    app.command("replay")(replay_cmd)
