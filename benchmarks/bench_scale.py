"""Many metrics at once: telewatch's default detector beside reference libraries, speed and NAB score.

Run: ``.venv/bin/python benchmarks/bench_scale.py`` (1 metric and 1,000 metrics × 30 days of 1-minute
data, a few minutes); ``--quick`` for a smoke run (1 and 20 metrics × 3 days, NAB on the shipped
samples, well under a minute); ``--metrics 200 --sample 5 --workers 2 --days 30 --nab DIR --no-nab
--only novelty`` (methods whose name contains a word), ``--detector novelty_seasonal`` (another
telewatch detector's batch rows beside novelty's, same data, same run). Reference libraries: ``pip install -e
'.[bench,prophet]'``.

The data: ``days`` of 1-minute points per metric with a daily and a weekly cycle, noise and the
same 12 planted anomalies (spikes, dips, a short level shift), for 1 metric and for ``--metrics``
metrics — every method runs on the SAME matrix. Every method fits on the whole month and scores
it (as ``fit(s).score(s)``):

* the default detector (``core.defaults.DEFAULT_DETECTOR``, ``novelty_seasonal``) through the batch
  path on one thread and on ``--workers`` threads: the "target" line is its;
* ``telewatch novelty`` (the reference row: the default until 2026-12-07, and the ratios' base) through
  :func:`telewatch.services.batch.score_matrix` on one thread and on ``--workers`` threads;
  through Dask (:func:`telewatch.scheduler.distributed.score_many`, an embedded LocalCluster of
  ``--workers`` single-threaded workers); and the plain per-metric loop
  ``create_detector("novelty").fit(s).score(s)``;
* ``telewatch robust_z`` through the batch path;
* reference libraries, per metric, with the scorers of ``bench_detectors.py``: statsmodels STL
  (period 1440, LOESS jumps 144), Prophet (``uncertainty_samples=0``), scikit-learn
  IsolationForest, PyOD ECOD, ADTK SeasonalAD. A library that is not installed or fails shows so
  in its row.

Per-metric methods (the loop and the references) are timed on ``--sample`` metrics and
extrapolated to all of them (``*``). Columns: wall seconds for all metrics; CPU seconds (all
threads of the method's process and its subprocesses, e.g. Prophet's Stan: the fairer figure on a
busy machine); points per second (wall); peak memory (each method runs alone in a forked process:
``VmHWM`` after resetting it, minus ``VmRSS`` at start, so the shared input matrix is not counted;
the process peak in brackets); the ratio of CPU seconds to telewatch novelty's (the first row, same
metrics; >1 = more work); hits (planted anomalies among each metric's top 24 scores on the first
metrics: a sanity check) and the **NAB score** (standard profile, normalised: null 0, perfect 100)
of the same method on the NAB corpus (``../shared/datasets/nab`` when present, else the three NAB
files shipped in ``telewatch/data/nab``): each file fitted on its probationary rows and scored
whole, raw scores mapped to [0, 1] by the two calibrations of ``telewatch bench nab`` that suit
any detector, for every method alike: ``probationary`` (``z / (z + max probationary z)``, the
default) and ``tail`` (telewatch's calibrator and re-alarm suppression trained on the probationary
rows). STL and ADTK get each file's rows per day as their season (at most half the training rows).
The novelty rows share one NAB figure: they compute the same scores.

The C allocator is set as the ``telewatch`` command sets it (:mod:`telewatch.core.allocator`:
a chunk's large arrays reused, not faulted in again); ``TELEWATCH_MALLOC=system`` runs with glibc's
defaults, to compare.

numba compiles telewatch's kernels on their first call: that cost is measured apart (a cold
compile in a fresh cache, then a load from the on-disk cache) and kept out of the timed rows.
The targets of issue 10 (1,000 metrics × 30 days under 5 s, peak under 2 GiB) are checked at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_detectors as ref  # the reference scorers, shared with bench_detectors.py

from telewatch.core.allocator import tune_allocator  # ctypes and os only
from telewatch.core.defaults import DEFAULT_DETECTOR  # costs nothing to import

PERIOD = 1440
N_PLANTED = 12
SHARED_NAB = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "nab"
Method = Callable[[np.ndarray, pd.DatetimeIndex], np.ndarray]
#: scores one NAB series: (values as a one-column frame, training rows) -> raw scores
NabScorer = Callable[[pd.DataFrame, int], np.ndarray]


def make_data(days: int, n_metrics: int, seed: int = 0) -> tuple[np.ndarray, pd.DatetimeIndex, list[int]]:
    """``n_metrics × (days·1440)`` minute values with daily and weekly cycles and planted anomalies."""
    n = days * PERIOD
    idx = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC")
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    planted = sorted(rng.choice(np.arange(n // 2 + 100, n - 100), N_PLANTED, replace=False).tolist())
    phase = rng.uniform(0, 2 * np.pi, n_metrics)[:, None]
    level = rng.uniform(50, 500, n_metrics)[:, None]
    weekly = 0.3 * np.sin(2 * np.pi * t / (7 * PERIOD))
    x = np.empty((n_metrics, n))
    for start in range(0, n_metrics, 100):  # in blocks: bounded temporaries
        sl = slice(start, min(start + 100, n_metrics))
        daily = np.sin(2 * np.pi * (t % PERIOD) / PERIOD + phase[sl])
        x[sl] = level[sl] * (1 + 0.2 * (daily + weekly)) + rng.normal(0, 1, daily.shape) * level[sl] * 0.02
    for k, p in enumerate(planted):
        if k % 3 == 0:
            x[:, p] += level[:, 0] * 0.5
        elif k % 3 == 1:
            x[:, p] -= level[:, 0] * 0.5
        else:
            x[:, p : p + 30] += level[:, 0:1] * 0.3
    return x, idx, planted


# -- methods: (metrics × time matrix, index) -> scores of the same shape ---------------------------
def batch(detector: str, workers: int = 1, params: dict[str, Any] | None = None) -> Method:
    def run(x: np.ndarray, idx: pd.DatetimeIndex) -> np.ndarray:
        from telewatch.services.batch import score_matrix

        return score_matrix(x, idx, detector=detector, workers=workers, params=params)

    return run


def dask_path(workers: int) -> Method:
    def run(x: np.ndarray, idx: pd.DatetimeIndex) -> np.ndarray:
        from telewatch.scheduler.distributed import score_many

        frame = pd.DataFrame(x.T, index=idx, columns=[f"m{i}" for i in range(len(x))])
        out = score_many(frame, detector="novelty", n_workers=workers)
        return np.vstack([s.to_numpy() for s in out.values()])

    return run


def loop(x: np.ndarray, idx: pd.DatetimeIndex) -> np.ndarray:
    from telewatch.detectors import create_detector

    rows = []
    for row in x:
        s = pd.Series(row, index=idx)
        rows.append(create_detector("novelty").fit(s).score(s).to_numpy())
    return np.vstack(rows)


def reference(scorer: NabScorer) -> Method:
    """A ``bench_detectors`` scorer, fitted on the whole month (as ``fit(s).score(s)``)."""

    def run(x: np.ndarray, idx: pd.DatetimeIndex) -> np.ndarray:
        frame = pd.DataFrame(x.T, index=idx, columns=[f"m{i}" for i in range(len(x))])
        return np.asarray(scorer(frame, len(frame)))

    return run


# -- the plan ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    name: str
    method: Method
    per_metric: bool  # timed on a sample and extrapolated
    nab: str  # key of the NAB scorer giving this method's NAB figure
    module: str = ""  # the library it needs ("" = telewatch)


def plan(workers: int, detectors: Sequence[str] = (), params: dict[str, Any] | None = None) -> list[Plan]:
    """The methods; ``detectors`` (``--detector``, with ``params``) adds each one's batch rows after
    novelty's, so their ratio to novelty comes from the same run. The default detector
    (``core.defaults.DEFAULT_DETECTOR``) has its batch rows whether named or not."""
    said = f" {params}" if params else ""
    default = (
        [
            Plan(
                f"telewatch {DEFAULT_DETECTOR} (default), batch, {workers} threads",
                batch(DEFAULT_DETECTOR, workers),
                False,
                DEFAULT_DETECTOR,
            ),
            Plan(
                f"telewatch {DEFAULT_DETECTOR} (default), batch, 1 thread",
                batch(DEFAULT_DETECTOR, 1),
                False,
                DEFAULT_DETECTOR,
            ),
        ]
        if DEFAULT_DETECTOR != "novelty"
        else []
    )
    extra = [
        row
        for name in detectors
        for row in (
            Plan(
                f"telewatch {name}{said}, batch, {workers} threads", batch(name, workers, params), False, name
            ),
            Plan(f"telewatch {name}{said}, batch, 1 thread", batch(name, 1, params), False, name),
        )
    ]
    return [
        Plan(
            f"telewatch novelty (reference), batch, {workers} threads",
            batch("novelty", workers),
            False,
            "novelty",
        ),
        Plan("telewatch novelty, batch, 1 thread", batch("novelty", 1), False, "novelty"),
        *default,
        *extra,
        Plan(f"telewatch novelty, dask, {workers} workers", dask_path(workers), False, "novelty"),
        Plan("telewatch novelty, per-metric loop", loop, True, "novelty"),
        Plan("telewatch robust_z, batch, 1 thread", batch("robust_z", 1), False, "robust_z"),
        Plan("statsmodels STL", reference(ref.stl), True, "stl", "statsmodels"),
        Plan("Prophet", reference(ref.prophet), True, "prophet", "prophet"),
        Plan("scikit-learn IsolationForest", reference(ref.sklearn_iforest), True, "iforest", "sklearn"),
        Plan("PyOD ECOD", reference(ref.pyod_ecod), True, "ecod", "pyod"),
        Plan("ADTK SeasonalAD", reference(ref.adtk_seasonal), True, "adtk", "adtk"),
    ]


def installed(module: str) -> bool:
    import importlib.util

    return not module or importlib.util.find_spec(module) is not None


# -- measurement ---------------------------------------------------------------------------------
def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _cpu() -> float:
    """CPU seconds of this process (all threads) and of its finished children (Prophet's Stan)."""
    import resource

    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def _child(method: Method, x: np.ndarray, idx: pd.DatetimeIndex, conn: Any) -> None:
    try:
        warnings.simplefilter("ignore")
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
        start_rss = _status("VmRSS")
        t0, c0 = time.perf_counter(), _cpu()
        scores = method(x, idx)
        seconds, cpu = time.perf_counter() - t0, _cpu() - c0
        peak = _status("VmHWM")
        conn.send(("ok", seconds, cpu, max(peak - start_rss, 0), peak, scores[: min(len(scores), 5)]))
    except Exception as exc:  # a reference library that fails is reported, not raised
        msg = str(exc).splitlines()[0][:60] if str(exc) else ""
        conn.send(("error", f"{type(exc).__name__}: {msg}"))
    finally:
        conn.close()


def measure(method: Method, x: np.ndarray, idx: pd.DatetimeIndex) -> tuple[Any, ...]:
    """Run one method alone in a forked process: its own peak memory; a crash cannot take us down."""
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(method, x, idx, child))
    proc.start()
    child.close()
    try:
        result: tuple[Any, ...] = parent.recv()
    except EOFError:
        result = ("error", f"process died (exit code {proc.exitcode})")
    proc.join()
    return result


def hits(scores: np.ndarray, planted: list[int]) -> float:
    found = []
    for row in scores:
        row = np.nan_to_num(row, nan=-np.inf)
        top = np.argsort(row)[-2 * N_PLANTED :]
        found.append(np.mean([np.any(np.abs(top - p) <= 5) for p in planted]))
    return float(np.mean(found))


def jit_seconds(*, cold: bool = True) -> tuple[float, float]:
    """(cold compile in an empty cache, load from the on-disk cache) of telewatch's numba kernels,
    each in a fresh interpreter; the cold one is NaN when not asked for."""
    code = "from telewatch.detectors._kernels import warm_up; print(warm_up())"

    def first_call(env: dict[str, str]) -> float:
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        return float(done.stdout.split()[-1])

    compiled = float("nan")
    if cold:
        with tempfile.TemporaryDirectory() as cache_dir:
            compiled = first_call({**os.environ, "NUMBA_CACHE_DIR": cache_dir})
    else:
        first_call(dict(os.environ))  # fills the on-disk cache if it was empty
    return compiled, first_call(dict(os.environ))


def preload(plans: Sequence[Plan]) -> None:
    """Import every library the methods use, so that no method's time includes an import."""
    import importlib

    for module in (
        "dask.distributed",
        "telewatch.scheduler.distributed",
        "telewatch.services.batch",
        "statsmodels.tsa.seasonal",
        "sklearn.ensemble",
        "pyod.models.ecod",
        "adtk.detector",
        "prophet",
    ):
        if installed(module.split(".")[0]):
            with contextlib.suppress(Exception):  # a failing library is reported by its method's row
                importlib.import_module(module)


# -- NAB -----------------------------------------------------------------------------------------
def nab_files(data_dir: Path | None, *, samples: bool = False) -> tuple[list[Any], str]:
    """The NAB corpus in ``data_dir`` (default: the shared one when present), else (or with
    ``samples``) the three files shipped with telewatch."""
    from importlib.resources import files

    from telewatch.bench.nab import load_corpus, make_nab_file

    shared = (SHARED_NAB / "labels" / "combined_windows.json").is_file()
    if data_dir is not None or (shared and not samples):
        path = data_dir or SHARED_NAB
        corpus = load_corpus(path)
        return corpus, f"NAB v1.1, {len(corpus)} files ({path})"
    root = files("telewatch") / "data" / "nab"
    windows: dict[str, list[list[str]]] = json.loads(root.joinpath("windows.json").read_text("utf-8"))
    out = []
    for name in sorted(windows):
        frame = pd.read_csv(str(root.joinpath(name)))
        out.append(make_nab_file(name, frame["timestamp"], frame["value"], windows[name]))
    return out, f"the {len(out)} NAB files shipped in telewatch/data/nab"


def rows_per_day(index: pd.DatetimeIndex, n_rows: int) -> int:
    """A NAB file's season for STL and ADTK: rows per day, at most half the file."""
    step = float(np.median(np.diff(index.as_unit("ns").asi8))) if len(index) > 1 else 60e9
    per_day = round(86_400e9 / max(step, 1.0))
    return max(2, min(per_day, n_rows // 2 - 1))


def nab_scorers(detectors: Sequence[str] = ()) -> dict[str, NabScorer]:
    """Raw scorers for one NAB series: (values as a one-column frame, training rows) -> raw scores."""

    def telewatch(name: str) -> NabScorer:
        def run(frame: pd.DataFrame, n_train: int) -> np.ndarray:
            from telewatch.detectors import create_detector

            s = frame.iloc[:, 0]
            return create_detector(name).fit(s.iloc[:n_train]).score(s).to_numpy()[None, :]

        return run

    def seasonal(scorer: Callable[..., np.ndarray]) -> NabScorer:
        def run(frame: pd.DataFrame, n_train: int) -> np.ndarray:
            period = rows_per_day(pd.DatetimeIndex(frame.index), 2 * n_train)  # ADTK fits on n_train
            return scorer(frame, n_train, period=period)

        return run

    return {
        "novelty": telewatch("novelty"),
        "robust_z": telewatch("robust_z"),
        "stl": seasonal(ref.stl),
        "prophet": ref.prophet,
        "iforest": ref.sklearn_iforest,
        "ecod": ref.pyod_ecod,
        "adtk": seasonal(ref.adtk_seasonal),
        **{name: telewatch(name) for name in (*detectors, DEFAULT_DETECTOR)},
    }


def nab_scores(scorer: NabScorer, files: Sequence[Any]) -> dict[str, float]:
    """Normalised NAB scores (standard profile) of one raw scorer under the two calibrations of
    ``telewatch bench nab`` that suit any detector: ``probationary`` and ``tail``."""
    from telewatch.bench.nab import TAIL_COOLDOWN, calibrate_scores, probationary_scale, score_corpus
    from telewatch.postrules.alarms import RepeatSuppressor
    from telewatch.postrules.calibrate import Calibrator

    scores: dict[str, dict[str, np.ndarray]] = {"probationary": {}, "tail": {}}
    for f in files:
        n_fit = max(f.probation_rows, 1)  # as telewatch.bench.nab.detect_file
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = np.asarray(scorer(f.values.to_frame("value"), n_fit), dtype="float64")[0]
        scores["probationary"][f.name] = calibrate_scores(raw, scale=probationary_scale(raw[:n_fit]))
        z = Calibrator().train(raw[:n_fit])(raw)
        scores["tail"][f.name] = calibrate_scores(RepeatSuppressor(cooldown=TAIL_COOLDOWN)(z))
    return {k: score_corpus(files, v).normalized("standard") for k, v in scores.items()}


# -- the run -------------------------------------------------------------------------------------
@dataclass
class Row:
    name: str
    metrics: int
    seconds: float = float("nan")
    cpu: float = float("nan")
    extrapolated: bool = False
    growth: int = 0
    peak: int = 0
    hits: float = float("nan")
    error: str = ""


def run_size(
    plans: list[Plan],
    x: np.ndarray,
    idx: pd.DatetimeIndex,
    planted: list[int],
    sample: int,
    console: Console,
    done: dict[tuple[str, int], tuple[Any, ...]],
) -> list[Row]:
    """Measure every method on ``x``; ``done`` holds measurements by (method, metrics), so a
    per-metric method's sample already measured (e.g. the 1-metric run) is not run twice."""
    n_metrics = len(x)
    head = x[: max(1, min(sample, n_metrics))]
    factor = n_metrics / len(head)
    rows = []
    for p in plans:
        row = Row(p.name, n_metrics, extrapolated=p.per_metric and factor > 1)
        data = head if p.per_metric else x
        if not installed(p.module):
            row.error = "not installed"
        elif (p.name, len(data)) in done:
            result = done[p.name, len(data)]
        else:
            with console.status(f"{p.name} on {n_metrics} metric(s) …"):
                result = done[p.name, len(data)] = measure(p.method, data, idx)
        if not row.error:
            if result[0] == "error":
                row.error = result[1]
            else:
                _, seconds, cpu, row.growth, row.peak, scores = result
                row.seconds = seconds * (factor if p.per_metric else 1.0)
                row.cpu = cpu * (factor if p.per_metric else 1.0)
                row.hits = hits(scores, planted)
        rows.append(row)
        console.log(f"{p.name} on {n_metrics} metric(s): " + (row.error or f"{row.seconds:.2f} s"))
    return rows


def _seconds(value: float) -> str:
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.0f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--metrics", type=int, default=1000, help="metrics in the many-metrics run")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--sample", type=int, default=3, help="metrics timed for the per-metric methods")
    parser.add_argument("--workers", type=int, default=2, help="threads / Dask workers")
    parser.add_argument(
        "--nab", type=Path, default=None, help="NAB corpus folder (default: shared, else samples)"
    )
    parser.add_argument("--no-nab", action="store_true", help="leave out the NAB column")
    parser.add_argument("--only", nargs="*", help="run only the methods whose name contains one of these")
    parser.add_argument(
        "--detector",
        action="append",
        default=[],
        help="also run this telewatch detector through the batch path (repeatable), beside novelty",
    )
    parser.add_argument("--params", default="{}", help="parameters (JSON) of the --detector rows")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 20 metrics × 3 days, 1 sampled, NAB samples"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.metrics, args.days, args.sample = min(args.metrics, 20), min(args.days, 3), 1
    console = Console(width=170)

    plans = [
        p
        for p in plan(args.workers, args.detector, json.loads(args.params))
        if not args.only or any(o in p.name for o in args.only)
    ]
    if not plans:
        parser.error(f"--only {' '.join(args.only)}: no method matches")
    preload(plans)  # before forking: no method's time includes an import
    from telewatch.detectors import _kernels

    tune_allocator()  # as the telewatch command sets it (TELEWATCH_MALLOC=system: glibc's own)

    with console.status("numba: compiling the kernels in a fresh cache, then loading the cache …"):
        cold, cached = jit_seconds(cold=not args.quick)
    _kernels.warm_up()  # this process (and every forked method) starts with the kernels loaded

    with console.status(f"making {args.metrics} metrics × {args.days} days of minute data"):
        x, idx, planted = make_data(args.days, args.metrics)
    rows: list[Row] = []
    load_start = os.getloadavg()[0]  # others' work on the machine stretches wall times, not CPU times
    done: dict[tuple[str, int], tuple[Any, ...]] = {}
    for size in sorted({1, args.metrics}):
        rows += run_size(plans, x[:size], idx, planted, args.sample, console, done)

    nab: dict[str, str] = {}
    nab_source = "nothing (--no-nab)"
    if not args.no_nab:
        files, nab_source = nab_files(args.nab, samples=args.quick and args.nab is None)
        scorers = nab_scorers(args.detector)
        for key in dict.fromkeys(p.nab for p in plans):
            module = next(p.module for p in plans if p.nab == key)
            if not installed(module):
                nab[key] = "not installed"
                continue
            with console.status(f"NAB: {key} on {len(files)} files …"):
                started = time.perf_counter()
                try:
                    got = nab_scores(scorers[key], files)
                    nab[key] = f"{got['probationary']:.1f} / {got['tail']:.1f}"
                except Exception as exc:  # a reference library that fails is reported, not raised
                    nab[key] = f"error: {type(exc).__name__}"
            console.log(f"NAB {key}: {nab[key]} ({time.perf_counter() - started:.0f} s)")

    print_table(
        console, rows, plans, nab, args, x, nab_source, cold, cached, (load_start, os.getloadavg()[0])
    )


def print_table(
    console: Console,
    rows: list[Row],
    plans: list[Plan],
    nab: dict[str, str],
    args: argparse.Namespace,
    x: np.ndarray,
    nab_source: str,
    cold: float,
    cached: float,
    load: tuple[float, float],
) -> None:
    nab_of = {p.name: p.nab for p in plans}
    n_rows = x.shape[1]
    table = Table(
        title=f"{args.days} days of 1-minute data ({n_rows:,} points per metric), fit on all and score all",
        caption=(
            f"* timed on {args.sample} metric(s) and extrapolated. CPU s: CPU time of all threads (and "
            "subprocesses) of the method: wall seconds on a busy machine, CPU seconds / cores on an idle one. ratio: CPU s / CPU s of telewatch "
            f"novelty (the reference row, the first) on the same metrics (>1 = more work). memory: peak growth "
            r"of a forked process running the method alone \[process peak]. hits: planted anomalies in the "
            f"top 24 scores. NAB: standard profile, normalised (null 0, perfect 100), raw scores calibrated "
            f"as `telewatch bench nab --calibration probationary` / `tail`, on {nab_source}."
        ),
        caption_justify="left",
    )
    for col in (
        "method",
        "metrics",
        "seconds",
        "CPU s",
        "points/s",
        r"peak memory \[process]",
        "ratio",
        "hits",
        "NAB prob. / tail",
    ):
        table.add_column(col, justify="left" if col == "method" else "right")
    base = {r.metrics: r.cpu for r in rows if r.name == plans[0].name}
    for r in rows:
        if r.metrics != rows[0].metrics and r.name == plans[0].name:
            table.add_section()
        score = nab.get(nab_of[r.name], "")
        if r.error:
            table.add_row(r.name, f"{r.metrics:,}", f"[red]{r.error}[/]", "", "", "", "", "", score)
            continue
        table.add_row(
            r.name,
            f"{r.metrics:,}",
            f"{_seconds(r.seconds)}{'*' if r.extrapolated else ''}",
            f"{_seconds(r.cpu)}{'*' if r.extrapolated else ''}",
            f"{r.metrics * n_rows / r.seconds / 1e6:.2f} M",
            f"{r.growth / 2**20:.0f} MiB \\[{r.peak / 2**20:.0f} MiB]",
            f"{r.cpu / base[r.metrics]:.3g}",
            f"{r.hits:.2f}",
            score,
        )
    console.print(table)
    compiled = "not measured (--quick)" if np.isnan(cold) else f"{cold:.2f} s"
    console.print(
        f"numba kernels (telewatch's warm_up: novelty and the profile channel), not in the times above: first call {compiled} when "
        f"compiling (empty cache), {cached:.2f} s when loading the on-disk cache (each new process)."
    )
    console.print(
        f"C allocator: {tune_allocator()} (telewatch.core.allocator, as the telewatch command sets it; "
        "TELEWATCH_MALLOC=system for glibc's defaults)."
    )
    big = [
        r for r in rows if r.metrics == args.metrics and nab_of[r.name] == DEFAULT_DETECTOR and not r.error
    ]
    measured = [r for r in big if not r.extrapolated]
    if measured and not args.quick:  # a smoke run is too small to extrapolate from
        scale = 1000 / args.metrics * 30 / args.days
        best = min(measured, key=lambda r: r.seconds)
        cores = min(args.workers, os.cpu_count() or 1)
        threaded = [r for r in measured if "threads" in r.name] or measured  # the path that uses the cores
        idle = min(r.cpu for r in threaded) / cores
        peak = max(r.peak for r in measured)
        how = "measured" if scale == 1 else "linear estimate"
        console.print(
            f"target: 1,000 metrics × 30 days under 5 s with the default detector — {how}: "
            f"{best.seconds * scale:.1f} s wall ({best.name}; {'met' if best.seconds * scale < 5 else 'NOT met'} "
            f"on this machine, load average {load[0]:.1f} → {load[1]:.1f} during the run); "
            f"{idle * scale:.1f} s on {cores} idle cores (CPU seconds of the threaded path / {cores}: "
            f"{'met' if idle * scale < 5 else 'NOT met'}); peak {peak / 2**30:.2f} GiB "
            f"({'met' if peak < 2 * 2**30 else 'NOT met'} for < 2 GiB)"
        )


if __name__ == "__main__":
    main()
