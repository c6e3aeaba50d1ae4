"""``telewatch bench``: detection quality on labelled data, rerunnable by anyone."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from telewatch.core.defaults import default_detector
from telewatch.core.errors import TelewatchError

bench_app = typer.Typer(
    help="Measure detection quality on NAB, SMD and your own labels.", no_args_is_help=True
)
console = Console()

_SHARED = Path("..") / "shared" / "datasets"


def parse_params(text: str | None) -> dict[str, Any]:
    """``--params`` as given on the command line: a JSON object of parameters (empty → {})."""
    if not text:
        return {}
    return _json_object(
        text,
        bad_json="--params must be a JSON object",
        not_object="--params must be a JSON object, e.g. '{\"window\": 144}'",
    )


def parse_grid(text: str | None) -> dict[str, Any] | None:
    """``--grid`` as given on the command line: a JSON object of lists of parameter values (empty →
    None: the command's own grid, or none)."""
    if not text:
        return None
    return _json_object(
        text, bad_json="--grid must be JSON", not_object="--grid must be a JSON object of lists"
    )


def _duration(text: str | None) -> Any:
    """``--train-window 28d`` as a ``pd.Timedelta``, written as a monitors file writes
    ``train.window`` (``core.durations.parse_duration``); None: not given; a clear error otherwise."""
    if text is None:
        return None
    import pandas as pd

    from telewatch.core.durations import parse_duration

    try:
        value = pd.Timedelta(parse_duration(text))
    except ValueError as exc:
        raise typer.BadParameter(f"not a duration: {text!r} (e.g. 28d, 336h)") from exc
    if value <= pd.Timedelta(0):
        raise typer.BadParameter(f"must be positive, got {text!r}")
    return value


def _json_object(text: str, *, bad_json: str, not_object: str) -> dict[str, Any]:
    """``text`` read as a JSON object: ``bad_json: <the parser's words>`` where it is no JSON,
    ``not_object`` where it is JSON of another kind (both a ``typer.BadParameter``)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"{bad_json}: {exc}") from exc
    if not isinstance(value, dict):
        raise typer.BadParameter(not_object)
    return value


ParamsOption = Annotated[
    str | None, typer.Option("--params", help="Detector parameters as JSON, e.g. '{\"window\": 144}'.")
]
JsonOption = Annotated[Path | None, typer.Option("--json", help="Write the full result as JSON here.")]
PlotsOption = Annotated[Path | None, typer.Option("--plots", help="Write one PNG per series here.")]


@bench_app.command("nab")
def bench_nab(
    data: Annotated[Path, typer.Option(help="NAB corpus folder (data/, labels/, config/).")] = _SHARED
    / "nab",
    detector: Annotated[
        str | None,
        typer.Option(help="Detector type (default: the service default, core.defaults.default_detector())."),
    ] = None,
    params: ParamsOption = None,
    export: Annotated[
        Path | None, typer.Option(help="Write DIR/<category>/<file>.csv (timestamp,value,anomaly_score).")
    ] = None,
    calibration: Annotated[
        str,
        typer.Option(
            help="Raw score → [0,1]: 'auto' (the default: 'probationary' or 'fixed', whichever scores "
            "higher on the tuning half, said on the first line) or 'probationary' (scaled by each file's "
            "probationary-period scores) or "
            "'fixed' (one map for every file; right for detectors whose scores are already comparable) or "
            "'tail' (telewatch's calibrator trained on the probationary rows, then re-alarm suppression) or "
            "'monitor' (as a monitor runs it: refitted daily on 14 days, scored tick by tick, its own calibrator)."
        ),
    ] = "auto",
    train_window: Annotated[
        str | None,
        typer.Option(
            help="With --calibration monitor: the monitors' train.window to run with (e.g. 28d; default 14d)."
        ),
    ] = None,
    json_path: JsonOption = None,
    plots: PlotsOption = None,
) -> None:
    """Score a detector on the NAB v1.1 corpus (standard, low-FP and low-FN profiles)."""
    from telewatch.bench.nab import run_nab_benchmark

    started = time.perf_counter()
    try:
        result = run_nab_benchmark(
            data_dir=data,
            detector=detector or default_detector(),
            detector_params=parse_params(params),
            calibration=calibration,
            train_window=_duration(train_window),
            export_dir=export,
            plots_dir=plots,
            json_path=json_path,
            console=console,
        )
    except (TelewatchError, FileNotFoundError) as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"{time.perf_counter() - started:.1f} s")
    for line in result.half_lines():
        console.print(line, highlight=False, soft_wrap=True)
    console.print(result.summary_line(), highlight=False, soft_wrap=True)


@bench_app.command("nab-select")
def bench_nab_select(
    data: Annotated[Path, typer.Option(help="NAB corpus folder (data/, labels/, config/).")] = _SHARED
    / "nab",
    detector: Annotated[str, typer.Option(help="Detector whose parameters are chosen.")] = "novelty",
    params: ParamsOption = None,
    grid: Annotated[
        str | None,
        typer.Option(
            help='Candidate values as JSON, e.g. \'{"bins": [50, 100], "cooldown": [500, 1000]}\' '
            "(every combination, over --params). Default for novelty: bins × cooldown."
        ),
    ] = None,
    calibration: Annotated[
        str, typer.Option(help="Raw score → [0,1], as `bench nab`: probationary, fixed, tail or monitor.")
    ] = "probationary",
    tolerance: Annotated[
        float,
        typer.Option(
            help="A candidate replaces the current parameters (--params) only when it beats them on the "
            "tuning half by more than this many standard points."
        ),
    ] = 0.5,
) -> None:
    """Choose a detector's parameters on NAB's tuning half only, then score the choice once on the
    held-out half (at the tuning half's threshold). One line per candidate (tuning half), then the
    choice with its held-out figure; no other candidate is ever scored on the held-out half."""
    from telewatch.bench.nab import select_on_tuning_half

    started = time.perf_counter()
    try:
        selection = select_on_tuning_half(
            data_dir=data,
            detector=detector,
            base_params=parse_params(params),
            grid=parse_grid(grid),
            calibration=calibration,
            tolerance=tolerance,
            console=console,
        )
    except (TelewatchError, FileNotFoundError) as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"{time.perf_counter() - started:.1f} s")
    for line in selection.lines():
        console.print(line, highlight=False, soft_wrap=True)


@bench_app.command("nab-pages")
def bench_nab_pages(
    data: Annotated[Path, typer.Option(help="NAB corpus folder (data/, labels/, config/).")] = _SHARED
    / "nab",
    half: Annotated[
        str, typer.Option(help="Which half of the corpus: tuning, heldout or both (bench.nab.nab_half).")
    ] = "tuning",
    file: Annotated[
        list[str] | None,
        typer.Option("--file", help="Only this file (e.g. realKnownCause/nyc_taxi.csv); repeatable."),
    ] = None,
    every: Annotated[
        str, typer.Option(help="The replay's tick (e.g. 15m: a monitor's; 1h is four times faster).")
    ] = "1h",
    monitors: Annotated[
        Path | None,
        typer.Option(
            help="A monitors file whose monitors read the store (source: {type: store}); default: the default monitor."
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Files replayed at once (default: the CPUs).")
    ] = None,
    json_path: JsonOption = None,
    messages_dir: Annotated[
        Path | None, typer.Option(help="Write each file's messages (text, chart PNG) under DIR/<file>/.")
    ] = None,
) -> None:
    """Replay NAB files through a monitor and count its pages: labelled windows told, pages, critical
    ones, and pages outside every window per series-week (what wakes people, not points)."""
    from telewatch.bench.nab_pages import run_nab_pages

    started = time.perf_counter()
    try:
        result = run_nab_pages(
            data_dir=data,
            half=half,
            names=file,
            every=_duration(every).to_pytimedelta(),
            monitors_path=monitors,
            workers=workers,
            json_path=json_path,
            messages_dir=messages_dir,
            console=console,
        )
    except (TelewatchError, FileNotFoundError) as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    console.print(result.table())
    console.print(f"{time.perf_counter() - started:.1f} s")
    for line in result.lines():
        console.print(line, highlight=False, soft_wrap=True)


@bench_app.command("smd")
def bench_smd(
    data: Annotated[
        Path, typer.Option(help="SMD folder (train/, test/, test_label/, interpretation_label/).")
    ] = _SHARED / "smd",
    detector: Annotated[
        str, typer.Option(help="Detector type (univariate ones run per metric; mv_* see the whole machine).")
    ] = "mv_ensemble",
    params: ParamsOption = None,
    threshold: Annotated[
        str,
        typer.Option(
            help="How each machine sets its own threshold from its own TRAIN scores: pot (peaks over "
            "threshold, a target share of normal rows above it: --risk) or quantile (--q)."
        ),
    ] = "pot",
    q: Annotated[float, typer.Option(help="--threshold quantile: the quantile of train scores.")] = 0.995,
    risk: Annotated[
        float,
        typer.Option(
            help="--threshold pot: the target share of normal rows above the threshold (0.003 at one row "
            "a minute: about 4 a day); chosen by leave-one-machine-out."
        ),
    ] = 0.003,
    machine: Annotated[list[str] | None, typer.Option(help="Only these machines (repeatable).")] = None,
    rca: Annotated[
        bool,
        typer.Option(
            "--rca/--no-rca",
            help="Also score the explain ranking (window scan) against interpretation_label (SMD-RCA line).",
        ),
    ] = True,
    json_path: JsonOption = None,
    plots: PlotsOption = None,
) -> None:
    """Score a detector on the Server Machine Dataset: composite F1 (headline), point-adjusted and
    point-wise F1, and root-cause HitRate@100%/150% of the detector's contributions; with --rca also
    of the window-scan ranking (given the labelled window, and given the detected incident)."""
    from telewatch.bench.smd import run_smd_benchmark
    from telewatch.bench.smd_rca import evaluate_rca

    started = time.perf_counter()
    try:
        result = run_smd_benchmark(
            data_dir=data,
            detector=detector,
            detector_params=parse_params(params),
            threshold=threshold,  # type: ignore[arg-type]  # validated by the service
            q=q,
            risk=risk,
            machines=machine or None,
            json_path=json_path,
            plots_dir=plots,
            console=console,
        )
        rca_result = evaluate_rca(data, machine or None, q=q, console=console) if rca else None
    except (TelewatchError, FileNotFoundError) as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"{time.perf_counter() - started:.1f} s")
    console.print(result.segments_line(), highlight=False, soft_wrap=True)
    for line in result.lomo_lines():
        console.print(line, highlight=False, soft_wrap=True)
    if rca_result is not None:
        console.print(rca_result.summary_line(), highlight=False, soft_wrap=True)
    console.print(result.summary_line(), highlight=False, soft_wrap=True)


#: ``bench smd-select``'s default candidates: the detectors that run over the seven machines in
#: seconds to a minute each on a shared 2-core machine (isolation_forest and ocsvm take ~5 min each).
SELECT_DEFAULTS = ["mv_ensemble", "mv_pca", "mv_robust_z", "novelty", "robust_z", "level_shift", "seasonal"]


@bench_app.command("smd-select")
def bench_smd_select(
    data: Annotated[
        Path, typer.Option(help="SMD folder (train/, test/, test_label/, interpretation_label/).")
    ] = _SHARED / "smd",
    detector: Annotated[
        list[str] | None, typer.Option(help="Candidate detectors (repeatable); default: the quick ones.")
    ] = None,
    threshold: Annotated[
        str, typer.Option(help="Threshold rule whose parameter is chosen: pot or quantile.")
    ] = "pot",
    machine: Annotated[list[str] | None, typer.Option(help="Only these machines (repeatable).")] = None,
    grid: Annotated[
        str | None,
        typer.Option(
            help="Parameter settings of each detector as JSON, e.g. '{\"top_share\": [0.1, 0.2]}' (every "
            "combination is one candidate): a design is chosen by leave-one-machine-out too."
        ),
    ] = None,
) -> None:
    """Choose the SMD detector *and* its threshold parameter by leave-one-machine-out: each machine is
    scored with what the other machines chose. One line per candidate (its own leave-one-machine-out
    figure), then the selection line. With --grid, each detector's parameter settings are candidates
    as well (the design chosen on the other machines, not on the one scored)."""
    from telewatch.bench.nab import parameter_grid
    from telewatch.bench.smd import MachineRuns, leave_one_machine_out, run_smd_benchmark, select_by_lomo

    started = time.perf_counter()
    runs: dict[str, MachineRuns] = {}
    try:
        grid_value = parse_grid(grid)
        settings = parameter_grid(grid_value) if grid_value else [{}]
        for name in detector or SELECT_DEFAULTS:
            for params in settings:
                key = f"{name}{json.dumps(params, separators=(',', ':'))}" if params else name
                runs[key] = []
                result = run_smd_benchmark(
                    data_dir=data,
                    detector=name,
                    detector_params=params,
                    machines=machine or None,
                    console=console,
                    runs_out=runs[key],
                )
                lomo = leave_one_machine_out(runs[key], threshold)
                console.print(
                    f"{key}: leave-one-machine-out f1_comp={lomo.pooled.f1:.3f}; in-sample "
                    f"f1_comp={lomo.in_sample.f1:.3f} ({result.wall_seconds:.0f} s)",
                    highlight=False,
                    soft_wrap=True,
                )
        selection = select_by_lomo(runs, threshold)
    except (TelewatchError, FileNotFoundError) as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"{time.perf_counter() - started:.1f} s")
    console.print(selection.line(), highlight=False, soft_wrap=True)


@bench_app.command("labels")
def bench_labels(
    detector: Annotated[
        str | None,
        typer.Option(help="Detector type (default: the service default, core.defaults.default_detector())."),
    ] = None,
    params: ParamsOption = None,
    source: Annotated[
        list[str] | None, typer.Option(help="Only labels of these sources, e.g. demo, user, nab.")
    ] = None,
    train_share: Annotated[
        float,
        typer.Option(
            min=0.05, max=0.9, help="Leading share of each series used to fit and set the threshold."
        ),
    ] = 0.3,
    q: Annotated[float, typer.Option(help="Quantile of train scores used as the threshold.")] = 0.995,
    folds: Annotated[
        int, typer.Option(min=2, max=20, help="Rolling-origin folds for the threshold cross-validation.")
    ] = 4,
    json_path: JsonOption = None,
    plots: PlotsOption = None,
    db: Annotated[Path | None, typer.Option("--db", help="Store file.")] = None,
) -> None:
    """Score a detector against the labelled windows in the store (the demo's planted incidents,
    your imported labels, feedback from the UI), with rolling-origin cross-validation."""
    from telewatch.bench.labels import run_labels_benchmark
    from telewatch.settings import Settings
    from telewatch.store.db import Store

    settings = Settings() if db is None else Settings(db_path=db)
    started = time.perf_counter()
    try:
        with Store(settings.store_path) as store:
            result = run_labels_benchmark(
                store,
                detector=detector,
                detector_params=parse_params(params),
                sources=source or None,
                train_share=train_share,
                q=q,
                folds=folds,
                json_path=json_path,
                plots_dir=plots,
                console=console,
            )
    except TelewatchError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"{time.perf_counter() - started:.1f} s")
    console.print(result.summary_line(), highlight=False, soft_wrap=True)


@bench_app.command("demo")
def bench_demo(
    detector: Annotated[
        str | None, typer.Option(help="Detector type (default: the service default).")
    ] = None,
    params: ParamsOption = None,
    threshold: Annotated[
        float | None, typer.Option(help="Calibrated z threshold (default: the service default, 5).")
    ] = None,
    days: Annotated[int, typer.Option(min=7, max=120, help="Days of demo data.")] = 30,
    seed: Annotated[int, typer.Option(help="Random seed of the demo month.")] = 7,
) -> None:
    """Run detection on the demo month (fixed end) and count the planted incidents caught (a stored
    anomaly on a planted metric within ±15 min of the window) and the incidents outside them."""
    from telewatch.bench.demo_catch import evaluate_demo_catch

    started = time.perf_counter()
    try:
        result = evaluate_demo_catch(
            seed=seed, days=days, detector=detector, params=parse_params(params), threshold=threshold
        )
    except TelewatchError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    for line in result.detail_lines():
        console.print(line, highlight=False, soft_wrap=True)
    console.print(f"{time.perf_counter() - started:.1f} s")
    console.print(result.summary_line(), highlight=False, soft_wrap=True)
