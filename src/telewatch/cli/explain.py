"""``telewatch explain``, ``telewatch incidents`` and ``telewatch bench smd-rca``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from telewatch.core.errors import TelewatchError

console = Console()
err_console = Console(stderr=True)

incidents_app = typer.Typer(
    help="Incidents: co-occurring anomalies grouped, ranked and typed.", no_args_is_help=False
)

DbOption = Annotated[
    Path | None, typer.Option("--db", help="Store file (default: $TELEWATCH_DB_PATH or the data dir).")
]
TypesOption = Annotated[
    Path | None,
    typer.Option(
        "--types", help="Incident type rules (YAML; default $TELEWATCH_INCIDENT_TYPES or the shipped rules)."
    ),
]


def _open_store(db: Path | None) -> Any:
    from telewatch.settings import Settings
    from telewatch.store.db import Store

    settings = Settings()
    if db is not None:
        settings = settings.model_copy(update={"db_path": db})
    return Store(settings.store_path)


def _fail(exc: Exception) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
    return typer.Exit(code=2)


def _ts(ts: Any) -> str:
    return ts.strftime("%Y-%m-%d %H:%M UTC")


def explain(
    window: Annotated[str, typer.Option("--window", help="FROM..TO in ISO time (UTC unless zoned).")],
    group: Annotated[str | None, typer.Option(help="Only metrics of this group.")] = None,
    selector: Annotated[str | None, typer.Option(help="Label selector, e.g. host=app-1,region=eu.")] = None,
    metric: Annotated[
        str | None, typer.Option(help="The anomalous metric (name or id): lead/lag against it.")
    ] = None,
    step: Annotated[
        str | None, typer.Option(help="Grid step, e.g. 1m, 30s, 1h (default: the data's spacing).")
    ] = None,
    baseline_factor: Annotated[
        float, typer.Option(help="Preceding baseline = this many window lengths.")
    ] = 4.0,
    seasonal_days: Annotated[int, typer.Option(help="Same hours of this many earlier days (0 = off).")] = 3,
    limit: Annotated[int, typer.Option(min=1, help="Show this many metrics.")] = 15,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    db: DbOption = None,
) -> None:
    """Rank the metrics that changed in a time window, with a reason each.

    Example: telewatch explain --window 2026-10-16T18:35..2026-10-16T19:00 --metric throughput_rpm
    """
    from telewatch.incidents.ranking import ScanConfig
    from telewatch.services.catalog import parse_selector
    from telewatch.services.explain import explain_window, format_step, parse_step, parse_window

    try:
        start, end = parse_window(window)
        step_td = parse_step(step) if step is not None else None
        config = ScanConfig(
            baseline_factor=baseline_factor,
            seasonal_days=seasonal_days,
            period=1440 if seasonal_days else None,
        )
        with _open_store(db) as store:
            result = explain_window(
                store,
                start=start,
                end=end,
                group=group,
                selector=parse_selector(selector),
                metric=metric,
                step=step_td,
                config=config,
                limit=limit,
            )
    except TelewatchError as exc:
        raise _fail(exc) from exc
    if as_json:
        rows = [
            {
                "rank": e.ranked.rank,
                "metric_id": e.metric_id,
                "metric": e.metric,
                "score": round(e.ranked.score, 4),
                "direction": e.ranked.direction,
                "magnitude": e.ranked.magnitude,
                "lead_lag": e.ranked.lead_lag,
                "reason": e.ranked.reason,
            }
            for e in result.ranked
        ]
        console.print_json(json.dumps(rows))
        if result.metrics_left_out:  # the JSON stays a list of rows; the note goes to stderr
            err_console.print(result.left_out_text(), highlight=False)
        return
    table = Table(
        title=f"{_ts(result.start)} → {_ts(result.end)}: {result.metrics_scanned} metrics scanned"
        + (f", against {result.target}" if result.target else ""),
        caption=f"baseline from {_ts(result.baseline_start)}, step {format_step(result.step)}; "
        + (f"{result.left_out_text()}; " if result.metrics_left_out else "")
        + f"{result.seconds:.2f} s",
    )
    for col in ("#", "metric", "score", "dir", "change", "lead", "reason"):
        table.add_column(col, overflow="fold")
    for e in result.ranked:
        r = e.ranked
        change = f"{r.magnitude * 100:+.0f}%" if r.magnitude_kind == "relative" else f"{r.magnitude:+.1f} sd"
        lead = "" if r.lead_lag is None else f"{r.lead_lag:+d}"
        table.add_row(str(r.rank), e.metric, f"{r.score:.1f}", r.direction, change, lead, r.reason)
    console.print(table)


@incidents_app.callback(invoke_without_command=True)
def incidents_default(ctx: typer.Context, db: DbOption = None) -> None:
    """List incidents (the default), show one, resolve one, or update them from the anomalies."""
    if ctx.invoked_subcommand is None:
        list_cmd(state=None, limit=50, monitor=None, db=db)


@incidents_app.command("list")
def list_cmd(
    state: Annotated[str | None, typer.Option(help="open or resolved.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Most incidents to show.")] = 50,
    monitor: Annotated[str | None, typer.Option(help="Only the incidents of this monitor's metrics.")] = None,
    db: DbOption = None,
) -> None:
    """Incidents, newest first."""
    from telewatch.services.incidents import list_incidents

    try:
        with _open_store(db) as store:
            items = list_incidents(store, state=state, limit=limit, monitor=monitor)
    except TelewatchError as exc:
        raise _fail(exc) from exc
    table = Table(title=f"{len(items)} incidents")
    for col in ("id", "state", "type", "start", "end", "metrics", "monitor", "title"):
        table.add_column(col)
    for i in items:
        table.add_row(
            str(i.id),
            i.state,
            i.type or "—",
            _ts(i.start),
            _ts(i.end),
            str(i.metrics),
            i.monitor or "—",
            i.title,
        )
    console.print(table)


@incidents_app.command("show")
def show_cmd(incident_id: Annotated[int, typer.Argument(help="Incident id.")], db: DbOption = None) -> None:
    """One incident with its ranked metrics."""
    from telewatch.services.incidents import get_incident

    try:
        with _open_store(db) as store:
            detail = get_incident(store, incident_id=incident_id)
    except TelewatchError as exc:
        raise _fail(exc) from exc
    i = detail.incident
    console.print(
        f"[bold]#{i.id} {i.title}[/] — {i.state}, type {i.type or 'unknown'}; {_ts(i.start)} → {_ts(i.end)},"
        f" peak {_ts(i.peak)} (score {i.peak_score:.1f}); {len(detail.anomaly_ids)} anomalies"
    )
    table = Table()
    for col in ("#", "metric", "anomalous", "dir", "score", "lead", "reason"):
        table.add_column(col, overflow="fold")
    for m in detail.metrics:
        lead = "" if m.lead_lag is None else f"{m.lead_lag:+d}"
        table.add_row(
            str(m.rank), m.metric, "yes" if m.anomalous else "", m.direction, f"{m.score:.1f}", lead, m.reason
        )
    console.print(table)


@incidents_app.command("resolve")
def resolve_cmd(
    incident_id: Annotated[int, typer.Argument(help="Incident id.")], db: DbOption = None
) -> None:
    """Mark an incident resolved (a later anomaly extending it reopens it)."""
    from telewatch.services.incidents import resolve_incident

    try:
        with _open_store(db) as store:
            summary = resolve_incident(store, incident_id=incident_id)
    except TelewatchError as exc:
        raise _fail(exc) from exc
    console.print(f"incident {summary.id} resolved")


@incidents_app.command("update")
def update_cmd(
    merge_gap: Annotated[str, typer.Option(help="Anomalies closer than this are one incident.")] = "5min",
    quiet: Annotated[str, typer.Option(help="Resolved after this long without anomalies.")] = "30min",
    split_label: Annotated[
        str | None, typer.Option(help="Keep incidents apart by this label (e.g. host).")
    ] = None,
    types: TypesOption = None,
    db: DbOption = None,
) -> None:
    """Group the stored anomalies into incidents (idempotent)."""
    from telewatch.services.incidents import update_incidents

    try:
        with _open_store(db) as store, console.status("grouping anomalies into incidents"):
            report = update_incidents(
                store, merge_gap=merge_gap, quiet=quiet, split_label=split_label, rules_path=types
            )
    except (TelewatchError, ValueError) as exc:
        raise _fail(exc) from exc
    console.print(
        f"incidents: {len(report.created)} new, {len(report.updated)} updated, {len(report.unchanged)} unchanged,"
        f" {len(report.merged)} merged; {report.open} open, {report.resolved} resolved"
    )


def bench_smd_rca(
    data: Annotated[
        Path, typer.Option(help="SMD folder (train/, test/, test_label/, interpretation_label/).")
    ] = Path("../shared/datasets/smd"),
    machine: Annotated[list[str] | None, typer.Option(help="Machine name (repeatable; default all).")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the result as JSON here.")] = None,
) -> None:
    """Root-cause ranking on SMD: HitRate@100%/@150% against interpretation_label."""
    from telewatch.bench.smd_rca import evaluate_rca

    try:
        result = evaluate_rca(data, machine or None, console=err_console)
    except TelewatchError as exc:
        raise _fail(exc) from exc
    console.print(result.table())
    if json_path is not None:
        from telewatch.bench.report import write_json

        write_json(json_path, result)
    console.print(result.summary_line(), highlight=False, soft_wrap=True)


def bench_demo_types(
    mode: Annotated[
        str, typer.Option(help="planted (perfect anomalies) or detected (a real detector).")
    ] = "detected",
    detector: Annotated[
        str | None, typer.Option(help="Detector for mode=detected (default: detection's).")
    ] = None,
) -> None:
    """Incident types on the demo: share of planted incidents whose incident gets the right type."""
    from telewatch.bench.demo_types import evaluate_demo_types

    if mode not in {"planted", "detected"}:
        raise _fail(ValueError(f"--mode must be planted or detected, got {mode!r}"))
    try:
        with console.status(f"demo month, {mode} anomalies, incidents"):
            result = evaluate_demo_types(mode=mode, detector=detector)  # type: ignore[arg-type]
    except TelewatchError as exc:
        raise _fail(exc) from exc
    table = Table(title=f"demo incident types ({mode})")
    table.add_column("planted kind")
    table.add_column("incident type")
    table.add_column("right")
    for kind, given in result.rows:
        table.add_row(kind, given or "—", "yes" if kind == given else "")
    console.print(table)
    console.print(result.summary_line(), highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``explain``, ``incidents`` and ``bench smd-rca`` to the main app."""
    from telewatch.cli.bench import bench_app

    app.command("explain")(explain)
    app.add_typer(incidents_app, name="incidents")
    bench_app.command("smd-rca")(bench_smd_rca)
    bench_app.command("demo-types")(bench_demo_types)
