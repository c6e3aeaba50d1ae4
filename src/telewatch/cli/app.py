"""The ``telewatch`` command line: a thin shell over :mod:`telewatch.services`."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from telewatch.cli.common import DbOption
from telewatch.core.errors import TelewatchError
from telewatch.settings import Settings

app = typer.Typer(
    name="telewatch",
    help="Watch IT and telecom telemetry: ingest metrics, detect anomalies, explain and alert.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
console = Console()
err_console = Console(stderr=True)


def _print_version(value: bool) -> None:
    if value:
        from telewatch import __version__

        console.print(f"telewatch {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print telewatch's version and exit."
        ),
    ] = False,
) -> None:
    """Watch IT and telecom telemetry: ingest metrics, detect anomalies, explain and alert."""


def _settings(db: Path | None) -> Settings:
    settings = Settings()
    if db is not None:
        settings = settings.model_copy(update={"db_path": db})
    return settings


def _open_store(db: Path | None) -> Any:
    from telewatch.store.db import Store

    return Store(_settings(db).store_path)


def _fail(exc: Exception) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
    return typer.Exit(code=2)


def _split(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    return parts or None


def _pairs(items: list[str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{what} {item!r} must be KEY=VALUE")
        out[key] = value
    return out


def _fmt_td(td: Any) -> str:
    """A duration as people write it: 45 s, 3 min, 2 h 5 min, 1 d 4 h."""
    if td is None:
        return "—"
    seconds = int(td.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{v} {u}" for v, u in ((days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")) if v]
    return " ".join(parts[:2]) or "0 s"


def _doc_summary(doc: str | None) -> str:
    """The first paragraph of a docstring as plain text (reST roles and literals unwrapped).

    >>> _doc_summary('''Score ``|x - m|`` per point
    ...     with a :class:`~telewatch.postrules.calibrate.Calibrator`.
    ...
    ...     More.''')
    'Score |x - m| per point with a Calibrator.'
    """
    import re

    first = (doc or "").strip().split("\n\n", 1)[0]
    text = " ".join(line.strip() for line in first.splitlines())
    text = re.sub(r":[a-z]+:`~?(?:[\w.]*\.)?([^`]+)`", r"\1", text)  # :class:`~a.b.C` -> C
    return text.replace("``", "")


def _fmt_ts(ts: Any) -> str:
    return "—" if ts is None else ts.strftime("%Y-%m-%d %H:%M:%S UTC")


# ---------------------------------------------------------------------------------------------
@app.command()
def ingest(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV/TSV file (.gz/.xz too).")
    ],
    fmt: Annotated[
        str,
        typer.Option(
            "--format", help="auto, csv, tsv or clickhouse-tsv (TabSeparated[WithNames[AndTypes]])."
        ),
    ] = "auto",
    shape: Annotated[
        str, typer.Option(help="auto, wide (time + a column per metric) or long (metric, time, value).")
    ] = "auto",
    header: Annotated[
        bool | None,
        typer.Option(
            "--header/--no-header", help="Whether the first row names the columns (default: detect)."
        ),
    ] = None,
    columns: Annotated[
        str | None, typer.Option(help="Column names for a headerless file, comma-separated.")
    ] = None,
    timestamp_column: Annotated[str | None, typer.Option(help="The time column (default: detect).")] = None,
    metric_column: Annotated[
        str | None, typer.Option(help="Long tables: the column naming the metric.")
    ] = None,
    value_column: Annotated[
        str | None, typer.Option(help="Long tables: the column holding the value.")
    ] = None,
    label_columns: Annotated[
        str | None, typer.Option(help="Long tables: columns that become labels (comma-separated).")
    ] = None,
    metrics: Annotated[
        str | None, typer.Option(help="Wide tables: only these metric columns (comma-separated).")
    ] = None,
    timezone: Annotated[str, typer.Option(help="Zone of naive timestamps, e.g. Europe/Moscow.")] = "UTC",
    timestamp_format: Annotated[
        str | None, typer.Option(help="strftime format, unix_s or unix_ms (default: infer).")
    ] = None,
    duplicates: Annotated[
        str,
        typer.Option(help="Rule for a repeated (metric, time): last, first, mean, max, min, sum or error."),
    ] = "last",
    prefix: Annotated[str, typer.Option(help="Prefix for every metric name.")] = "",
    rename: Annotated[list[str] | None, typer.Option(help="Rename a metric: OLD=NEW (repeatable).")] = None,
    label: Annotated[
        list[str] | None, typer.Option(help="Add a label to every metric: KEY=VALUE (repeatable).")
    ] = None,
    unit: Annotated[str | None, typer.Option(help="Unit of the metrics.")] = None,
    owner: Annotated[str | None, typer.Option(help="Owner to mention in alerts, e.g. @web-oncall.")] = None,
    group: Annotated[str | None, typer.Option(help="Group of the metrics (for explain and the UI).")] = None,
    detect: Annotated[
        bool,
        typer.Option(
            "--detect/--no-detect", help="Score the stored metrics with the default detector (as `detect`)."
        ),
    ] = True,
    db: DbOption = None,
) -> None:
    """Load a metrics file into the store. A malformed file is rejected whole, with the line and
    column at fault; re-ingesting the same data adds nothing.

    Example: telewatch ingest key_features.tsv --columns point,web_response,throughput,apdex,error
    """
    from telewatch.services.ingest import ingest_file
    from telewatch.sources.files import IngestOptions

    settings = _settings(db)
    try:
        options = IngestOptions(
            format=fmt,  # type: ignore[arg-type]
            shape=shape,  # type: ignore[arg-type]
            header=header,
            columns=_split(columns),
            timestamp_column=timestamp_column,
            metric_column=metric_column,
            value_column=value_column,
            label_columns=_split(label_columns),
            metrics=_split(metrics),
            timezone=timezone,
            timestamp_format=timestamp_format,
            duplicates=duplicates,  # type: ignore[arg-type]
            max_bytes=settings.max_upload_bytes,
            max_rows=settings.max_upload_rows,
            max_columns=settings.max_upload_columns,
            max_line_bytes=settings.max_line_bytes,
            max_parse_seconds=settings.max_parse_seconds,
        )
        started = time.perf_counter()
        with _open_store(db) as store, console.status(f"ingesting {file.name}"):
            report = ingest_file(
                store,
                file,
                options=options,
                name=str(file),
                rename=_pairs(rename, "--rename"),
                prefix=prefix,
                labels=_pairs(label, "--label"),
                unit=unit,
                owner=owner,
                group=group,
            )
            scored = None
            if detect and report.series:
                from telewatch.services.detection import detect_metrics

                scored = detect_metrics(
                    store, metric_ids=sorted({s.metric_id for s in report.series}), console=console
                )
        elapsed = time.perf_counter() - started
    except TelewatchError as exc:
        raise _fail(exc) from exc
    table = Table(title=f"{file.name}: {report.format}, {report.shape} table, {report.rows:,} rows")
    for col in ("metric", "points", "missing", "first", "last", "step", "gaps (largest)"):
        table.add_column(col, justify="right" if col in {"points", "missing"} else "left")
    for s in report.series:
        gaps = f"{s.gaps} ({_fmt_td(s.largest_gap)})" if s.gaps else "0"
        name = s.name + ("{" + ",".join(f"{k}={v}" for k, v in s.labels.items()) + "}" if s.labels else "")
        table.add_row(
            name,
            f"{s.points:,}",
            f"{s.missing:,}",
            _fmt_ts(s.first_ts),
            _fmt_ts(s.last_ts),
            _fmt_td(s.step),
            gaps,
        )
    console.print(table)
    total_gaps = sum(s.gaps for s in report.series)
    largest = max((s.largest_gap for s in report.series if s.largest_gap is not None), default=None)
    console.print(
        f"stored {len(report.series)} metrics, {report.points:,} points over {report.timestamps:,} timestamps"
        f" ({_fmt_ts(report.first_ts)} → {_fmt_ts(report.last_ts)}); duplicates resolved by '{duplicates}':"
        f" {report.duplicates_resolved:,}; gaps: {total_gaps}"
        + (f" (largest {_fmt_td(largest)})" if largest else "")
        + f"; {elapsed:.2f} s",
        soft_wrap=True,
    )
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    if scored is not None:
        console.print(
            f"scored with {scored.detector}: {len(scored.anomalies)} anomalies on {scored.metrics} metrics"
            " (see `telewatch detect`; --no-detect to skip)",
            soft_wrap=True,
        )


metrics_app = typer.Typer(
    help="List the stored metrics (no subcommand), or delete one (`metrics delete`).", no_args_is_help=False
)
app.add_typer(metrics_app, name="metrics")


@metrics_app.command("delete")
def metrics_delete(
    metric: Annotated[str, typer.Argument(help="The metric's id, or its name (with --labels for a slice).")],
    labels: Annotated[str | None, typer.Option(help="The slice, when the name has several: k=v,...")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    db: DbOption = None,
) -> None:
    """Delete a metric with its points, scores, anomalies and labelled windows (incidents lose it)."""
    from telewatch.services.catalog import delete_metric, get_metric, parse_selector

    try:
        with _open_store(db) as store:
            found = get_metric(store, metric, parse_selector(labels))
            if not yes and not typer.confirm(
                f"Delete metric {found.id} {found.display_name} and its {found.points:,} points?"
            ):
                raise typer.Exit(1)
            done = delete_metric(store, found.id)
    except TelewatchError as exc:
        raise _fail(exc) from exc
    rows = ", ".join(f"{n:,} {kind}" for kind, n in done.rows.items() if n)
    console.print(
        f"deleted metric {done.metric.id} {done.metric.display_name}" + (f": {rows}" if rows else ""),
        markup=False,  # a metric name is data: "[red]" in it is not a style
        highlight=False,
    )


@metrics_app.callback(invoke_without_command=True)
def metrics_cmd(
    ctx: typer.Context,
    group: Annotated[str | None, typer.Option(help="Only metrics of this group.")] = None,
    selector: Annotated[str | None, typer.Option(help="Label selector, e.g. host=app-1,region=eu.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    db: DbOption = None,
) -> None:
    """List the stored metrics with their points and time range."""
    if ctx.invoked_subcommand is not None:
        return
    from telewatch.services.catalog import list_metrics, parse_selector

    try:
        with _open_store(db) as store:
            items = list_metrics(store, group=group, selector=parse_selector(selector))
    except TelewatchError as exc:
        raise _fail(exc) from exc
    if as_json:
        rows = [
            {
                "id": m.id,
                "name": m.name,
                "labels": m.labels,
                "unit": m.unit,
                "owner": m.owner,
                "group": m.group,
                "points": m.points,
                "missing": m.missing,
                "first": m.first_ts.isoformat() if m.first_ts else None,
                "last": m.last_ts.isoformat() if m.last_ts else None,
            }
            for m in items
        ]
        console.print_json(json.dumps(rows))
        return
    table = Table(title=f"{len(items)} metrics")
    for col in ("id", "metric", "group", "unit", "owner", "points", "missing", "first", "last"):
        table.add_column(col)
    for m in items:
        table.add_row(
            str(m.id),
            m.display_name,
            m.group or "",
            m.unit or "",
            m.owner or "",
            f"{m.points:,}",
            f"{m.missing:,}",
            _fmt_ts(m.first_ts),
            _fmt_ts(m.last_ts),
        )
    console.print(table)


@app.command()
def demo(
    days: Annotated[int, typer.Option(min=7, max=120, help="Days of per-minute data to generate.")] = 30,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 7,
    detect: Annotated[bool, typer.Option("--detect/--no-detect", help="Run detection after loading.")] = True,
    csv: Annotated[
        Path | None, typer.Option(help="Also write the demo month as a CSV (the upload format).")
    ] = None,
    db: DbOption = None,
) -> None:
    """Load a realistic month of a small web/telecom system, with planted incidents, and detect."""
    import pandas as pd

    from telewatch.demo import generate_demo, write_demo_csv
    from telewatch.services.demo_data import load_demo
    from telewatch.services.detection import detect_metrics

    started = time.perf_counter()
    try:
        data = generate_demo(seed=seed, days=days, end=pd.Timestamp.now(tz="UTC").floor("min"))
        with _open_store(db) as store:
            with console.status("storing the demo month"):
                report = load_demo(store, data=data)
            console.print(
                f"demo: {report.metrics} metrics ({report.nab_samples} NAB samples), {report.points:,} points,"
                f" {report.incidents} planted incidents, {_fmt_ts(report.first_ts)} → {_fmt_ts(report.last_ts)}"
            )
            if detect:
                found = detect_metrics(store, detector=Settings().default_detector, console=console)
                console.print(
                    f"detection ({found.detector}): {len(found.anomalies)} anomalies on {found.metrics} metrics"
                )
                from telewatch.services.incidents import update_incidents

                grouped = update_incidents(store, now=data.frame.index[-1])
                console.print(
                    f"incidents: {len(grouped.created) + len(grouped.updated)} grouped from the anomalies"
                )
        if csv is not None:
            write_demo_csv(data, csv)
            console.print(f"wrote {csv}")
    except TelewatchError as exc:
        raise _fail(exc) from exc
    console.print(f"done in {time.perf_counter() - started:.1f} s")


@app.command("detect")
def detect_cmd(
    detector: Annotated[str | None, typer.Option(help="Detector type (see `telewatch detectors`).")] = None,
    metric: Annotated[
        list[str] | None, typer.Option(help="Metric name or id (repeatable; default all).")
    ] = None,
    threshold: Annotated[
        float | None, typer.Option(help="Calibrated z at or above which a point is anomalous (default 5).")
    ] = None,
    plot_dir: Annotated[Path | None, typer.Option(help="Write one PNG per metric here.")] = None,
    db: DbOption = None,
) -> None:
    """Score stored metrics and record their anomalies."""
    from telewatch.services.catalog import get_metric, read_series
    from telewatch.services.detection import detect_metrics

    try:
        with _open_store(db) as store:
            ids = [get_metric(store, m).id for m in metric] if metric else None
            settings = _settings(db)
            report = detect_metrics(
                store,
                detector=detector or settings.default_detector,
                metric_ids=ids,
                threshold=threshold,
                console=console,
            )
            from telewatch.services.detect_alerts import alert_if_configured

            told = alert_if_configured(store, report.anomalies, settings=settings)
            if told is not None and told[0]:
                console.print(f"alerted {told[0]} recent anomalies ({told[1]} messages sent)")
            table = Table(
                title=f"{report.detector}: {len(report.anomalies)} anomalies on {report.metrics} metrics"
            )
            for col in ("metric", "start", "end", "peak score", "value"):
                table.add_column(col)
            for a in sorted(report.anomalies, key=lambda a: a.start)[-50:]:
                table.add_row(
                    a.metric, _fmt_ts(a.start), _fmt_ts(a.end), f"{a.peak_score:.1f}", f"{a.value:.4g}"
                )
            console.print(table)
            if plot_dir is not None:
                _plot_detections(store, report, plot_dir, read_series, ids)
    except TelewatchError as exc:
        raise _fail(exc) from exc


def _plot_detections(
    store: Any, report: Any, plot_dir: Path, read_series: Any, ids: list[int] | None
) -> None:
    from telewatch.bench.report import plot_detection
    from telewatch.services.catalog import list_metrics, read_scores

    by_metric: dict[int, list[Any]] = {}
    for a in report.anomalies:
        by_metric.setdefault(a.metric_id, []).append(a)
    for m in list_metrics(store):
        if ids is not None and m.id not in ids:
            continue
        view = read_series(store, m.id, max_points=10**9)
        score_series = read_scores(store, m.id, report.detector)
        if score_series.empty:
            continue
        path = plot_dir / f"{m.id}-{m.name}.png"
        plot_detection(
            path,
            values=view.values,
            scores=score_series,
            threshold=report.threshold,
            windows=[(a.start, a.end) for a in by_metric.get(m.id, [])],
            title=f"{m.display_name} — {report.detector}",
        )
    console.print(f"plots in {plot_dir}")


@app.command()
def detectors() -> None:
    """List the available detector types and their parameters."""
    from telewatch.detectors import available_detectors

    table = Table(title="detectors")
    table.add_column("type")
    table.add_column("parameters (defaults)")
    table.add_column("what it does")
    for name, cls in available_detectors().items():
        params = ", ".join(f"{k}={v!r}" for k, v in cls().get_params().items())
        table.add_row(name, params, _doc_summary(cls.__doc__))
    console.print(table)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default 8000).")] = None,
    monitors: Annotated[
        Path | None,
        typer.Option(
            help="Also run these monitors on their schedule in this process (default:"
            " $TELEWATCH_MONITORS_FILE if set): the embedded store has one owner, so the UI and the"
            " scheduler share it."
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Serve the web UI and the REST API (OpenAPI docs at /docs), and with --monitors run the monitors'
    schedule too (as `telewatch run` would)."""
    import uvicorn

    from telewatch.api.app import create_app

    settings = _settings(db)
    updates: dict[str, Any] = {}
    if host:
        updates["host"] = host
    if port:
        updates["port"] = port
    settings = settings.model_copy(update=updates)
    from telewatch.cli.tokens import ensure_bootstrap_token, install_log_redaction
    from telewatch.store.db import Store

    url_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    try:
        store = Store(settings.store_path)
        try:
            application = create_app(settings, store=store)
            sign_in_url = ensure_bootstrap_token(
                settings=settings,
                store=store,
                url_host=url_host,
                port=settings.port,
                codes=application.state.authenticator.sign_in_codes,
            )
        except BaseException:
            store.close()
            raise
    except TelewatchError as exc:
        raise _fail(exc) from exc
    console.print(f"telewatch UI on http://{url_host}:{settings.port}/  (API docs: /docs)")
    if sign_in_url:
        console.print("No API token was configured: an admin token is kept (hashed) in the store.")
        console.print(
            "Sign in with this one-time link (it works once, for 15 minutes; then create tokens on the"
            " Tokens page):"
        )
        print(sign_in_url, flush=True)
    elif settings.api_tokens is None:
        console.print(
            "Sign in at /login with an API token from the store (`telewatch tokens list`); lost it? Stop the"
            " server, run `telewatch tokens create --name me --scope admin`, and start it again."
        )
    monitors_file = monitors or settings.monitors_file
    stop = threading.Event()
    scheduler: threading.Thread | None = None
    if monitors_file is not None:
        from telewatch.scheduler.jobs import load_config
        from telewatch.scheduler.runner import Runner

        try:
            loaded = load_config(monitors_file)
        except TelewatchError as exc:
            store.close()
            raise _fail(exc) from exc
        runner = Runner(loaded, store=store)
        scheduler = threading.Thread(
            target=runner.run_forever, kwargs={"stop": stop}, name="telewatch-scheduler", daemon=True
        )
        console.print(
            f"running {len(loaded.monitors.monitors)} monitors from {monitors_file} on their schedule",
            highlight=False,
        )
    config = uvicorn.Config(application, host=settings.host, port=settings.port, log_level="info")
    install_log_redaction(settings)  # after uvicorn configured its loggers: mask secrets in every log line
    try:
        if scheduler is not None:
            scheduler.start()
        uvicorn.Server(config).run()
    finally:
        stop.set()
        if scheduler is not None:
            scheduler.join(timeout=60)
        store.close()


# Feature command groups: one module each under telewatch/cli/, added here (one line each).
from telewatch.cli.bench import bench_app  # noqa: E402
from telewatch.cli.labels import labels_app  # noqa: E402

app.add_typer(bench_app, name="bench")
app.add_typer(labels_app, name="labels")
from telewatch.cli.forecast import register as register_forecast  # noqa: E402

register_forecast(app)
from telewatch.cli.alerts import register as register_alerts  # noqa: E402

register_alerts(app)
from telewatch.cli.explain import register as register_explain  # noqa: E402

register_explain(app)
from telewatch.cli.monitors import register as register_monitors  # noqa: E402

register_monitors(app)
from telewatch.cli.tokens import tokens_app  # noqa: E402

app.add_typer(tokens_app, name="tokens")
from telewatch.cli.retention import register as register_retention  # noqa: E402

register_retention(app)
from telewatch.cli.replay import register as register_replay  # noqa: E402

register_replay(app)
# -- end of feature command groups


def main() -> None:
    from telewatch.core.allocator import tune_allocator
    from telewatch.core.errors import ConfigError
    from telewatch.core.secrets import install_redacting_record_factory

    install_redacting_record_factory()  # no password or token in any log line (docs/security.md)
    try:
        tune_allocator()  # large arrays reused, not faulted in again (docs/scale.md)
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}") from None
    app()
