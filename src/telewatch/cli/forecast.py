"""``telewatch forecast METRIC`` and ``telewatch bench forecast``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from telewatch.cli.bench import parse_params
from telewatch.core.errors import TelewatchError

console = Console()
err_console = Console(stderr=True)

_SHARED = Path("..") / "shared" / "datasets"


def _fail(exc: Exception) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
    return typer.Exit(code=2)


def forecast_cmd(
    metric: Annotated[str, typer.Argument(help="Metric name or id.")],
    horizon: Annotated[str, typer.Option(help="How far ahead, e.g. 60min, 2h.")] = "60min",
    model: Annotated[
        str | None, typer.Option(help="Forecast model (see `telewatch forecast-models`).")
    ] = None,
    labels: Annotated[
        str | None, typer.Option(help="Slice, when the name has several: key=value,...")
    ] = None,
    limit_upper: Annotated[
        float | None, typer.Option(help="Warn when the forecast rises above this.")
    ] = None,
    limit_lower: Annotated[
        float | None, typer.Option(help="Warn when the forecast falls below this.")
    ] = None,
    band: Annotated[
        bool, typer.Option("--band/--no-band", help="Check against the learned normal band too.")
    ] = False,
    history: Annotated[str, typer.Option(help="History fitted on, e.g. 28D.")] = "28D",
    params: Annotated[str | None, typer.Option(help="Model parameters as JSON.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG of the forecast here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    db: Annotated[Path | None, typer.Option("--db", help="Store file.")] = None,
) -> None:
    """Forecast a stored metric with prediction intervals and predicted limit breaches."""
    from telewatch.forecast import DEFAULT_MODEL
    from telewatch.services.catalog import parse_selector
    from telewatch.services.forecasting import forecast_metric, forecast_payload
    from telewatch.settings import Settings
    from telewatch.store.db import Store

    settings = Settings() if db is None else Settings(db_path=db)
    try:
        with Store(settings.store_path) as store:
            result = forecast_metric(
                store,
                metric=metric,
                labels=parse_selector(labels),
                horizon=horizon,
                model=model or DEFAULT_MODEL,
                params=parse_params(params),
                fit_window=history,
                limit_upper=limit_upper,
                limit_lower=limit_lower,
                band=band,
            )
    except TelewatchError as exc:
        raise _fail(exc) from exc
    if as_json:
        payload = forecast_payload(result)
        payload["breaches"] = [
            {
                "direction": b.direction,
                "limit": b.limit,
                "eta": b.eta.isoformat(),
                "probability": b.probability,
            }
            for b in (result.check.breaches if result.check else [])
        ]
        console.print_json(json.dumps(payload))
        return
    frame = result.forecast
    table = Table(
        title=f"{result.metric.display_name}: {result.model} forecast from {result.made_at:%Y-%m-%d %H:%M} UTC"
        f" (fitted in {result.fit_seconds:.2f} s)"
    )
    cols = list(frame.columns)
    table.add_column("time (UTC)")
    for col in cols:
        table.add_column(col, justify="right")
    every = max(1, len(frame) // 12)
    for ts, row in list(frame.iterrows())[every - 1 :: every]:
        table.add_row(f"{ts:%H:%M}", *[f"{row[c]:.4g}" for c in cols])
    console.print(table)
    if result.check is not None:
        if result.check.breaches:
            for b in result.check.breaches:
                console.print(f"[bold yellow]early warning:[/] {b.describe()}", highlight=False)
        else:
            console.print("no limit breach predicted within the horizon")
        for d in result.check.already_beyond:
            console.print(f"the last value is already beyond the {d} limit", highlight=False)
    if plot is not None:
        from telewatch.forecast.plot import plot_forecast

        band_pair = (result.band["lower"], result.band["upper"]) if result.band is not None else None
        plot_forecast(
            plot,
            history=result.history,
            forecasts={result.model: frame},
            limit=limit_upper,
            lower_limit=limit_lower,
            band=band_pair,
            title=f"{result.metric.display_name} — {result.model}",
        )
        console.print(f"wrote {plot}")


def forecast_models_cmd() -> None:
    """List the forecast models and their parameters."""
    from telewatch.forecast import available_forecasters

    table = Table(title="forecast models")
    table.add_column("model")
    table.add_column("parameters (defaults)")
    table.add_column("what it does")
    for name, cls in available_forecasters().items():
        params = ", ".join(f"{k}={v!r}" for k, v in cls().get_params().items())
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        table.add_row(name, params, doc)
    console.print(table)


def bench_forecast_cmd(
    data: Annotated[Path, typer.Option(help="NAB corpus folder (data/, labels/).")] = _SHARED / "nab",
    model: Annotated[
        list[str] | None, typer.Option(help="Models to evaluate (repeatable; seasonal naive always runs).")
    ] = None,
    horizon: Annotated[str, typer.Option(help="Forecast horizon.")] = "60min",
    folds: Annotated[int, typer.Option(min=2, max=50, help="Rolling origins per series.")] = 8,
    refit_every: Annotated[int, typer.Option(min=1, help="Refit the model every N origins.")] = 4,
    max_nab: Annotated[int | None, typer.Option(help="Only the first N NAB series.")] = None,
    nab: Annotated[bool, typer.Option("--nab/--no-nab", help="Evaluate on NAB series.")] = True,
    demo: Annotated[bool, typer.Option("--demo/--no-demo", help="Evaluate on the demo month.")] = True,
    lead_time: Annotated[
        bool, typer.Option("--lead-time/--no-lead-time", help="Measure breach-warning lead time.")
    ] = True,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the full result as JSON here.")
    ] = None,
    plots: Annotated[Path | None, typer.Option("--plots", help="Write example PNGs here.")] = None,
) -> None:
    """Forecast accuracy (MASE, interval coverage vs seasonal naive, rolling origin) on NAB and the
    demo, and the lead time of predicted-breach warnings on planted slow incidents."""
    from telewatch.bench.forecast import DEFAULT_MODELS, run_forecast_benchmark
    from telewatch.bench.report import write_json

    started = time.perf_counter()
    try:
        result = run_forecast_benchmark(
            nab_dir=data if nab else None,
            models=model or DEFAULT_MODELS,
            horizon=horizon,
            folds=folds,
            refit_every=refit_every,
            demo=demo,
            max_nab=max_nab,
            lead_time=lead_time,
            plots_dir=plots,
            console=err_console,
        )
    except (TelewatchError, FileNotFoundError) as exc:
        raise _fail(exc) from exc
    console.print(result.table())
    if json_path is not None:
        write_json(json_path, result)
    console.print(f"{time.perf_counter() - started:.1f} s")
    for line in result.summary_lines():
        console.print(line, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``forecast`` and ``forecast-models`` to ``app`` and ``forecast`` to ``telewatch bench``."""
    from telewatch.cli.bench import bench_app

    app.command("forecast")(forecast_cmd)
    app.command("forecast-models")(forecast_models_cmd)
    bench_app.command("forecast")(bench_forecast_cmd)
