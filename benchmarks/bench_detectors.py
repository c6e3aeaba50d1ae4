"""Speed of telewatch's detectors side by side with reference libraries, on one month of minute data.

Run: ``.venv/bin/python benchmarks/bench_detectors.py [--metrics N] [--days D] [--only NAME ...]``

The data: ``days`` (default 30) of 1-minute points with a daily and a weekly cycle, noise, and planted
anomalies (spikes, dips, a short level shift) — 1 metric, then N metrics (default 4). Each method fits
on the first half and scores the whole series (reference libraries in their own usual way), once, and
the table shows, side by side:

* seconds (fit + score, wall clock), CPU seconds (all threads of the process: the fairer figure on a
  busy machine), points per second (points = rows × metrics);
* peak memory: growth of the resident set (``VmHWM`` minus ``VmRSS`` at start) of a forked process
  that runs the method alone (Linux; Prophet's Stan subprocess is not counted);
* the time ratio to telewatch's default detector (>1 = slower than it);
* hits: the share of planted anomalies found among the top ``2 × #planted`` scores (a sanity check,
  not a benchmark of quality — see ``telewatch bench nab|smd`` for that).

Reference methods: statsmodels STL (period 1440 with ``seasonal_jump = trend_jump = low_pass_jump =
144``: without the jumps one month takes over 30 s per metric), scikit-learn IsolationForest (on the
raw values), PyOD ECOD (on the raw values), ADTK SeasonalAD, Prophet (``uncertainty_samples=0``) when
installed. A library that is missing or fails (ADTK and pandas 3) is reported in the table, not raised.
Install the references with ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import multiprocessing as mp
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from telewatch.core.series import MAD_TO_SIGMA

PERIOD = 1440
ScoreFn = Callable[[pd.DataFrame, int], np.ndarray]


def make_data(days: int, n_metrics: int, seed: int = 0) -> tuple[pd.DataFrame, list[int]]:
    """Minute data with daily and weekly cycles, noise and the same planted anomalies in every metric."""
    n = days * PERIOD
    idx = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC")
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    cols = {}
    planted = sorted(rng.choice(np.arange(n // 2 + 100, n - 100), 12, replace=False).tolist())
    for j in range(n_metrics):
        daily = np.sin(2 * np.pi * (t % PERIOD) / PERIOD + j)
        weekly = 0.3 * np.sin(2 * np.pi * t / (7 * PERIOD))
        x = 100 + 20 * (daily + weekly) + rng.normal(0, 2, n)
        for k, p in enumerate(planted):
            if k % 3 == 0:
                x[p] += 25
            elif k % 3 == 1:
                x[p] -= 25
            else:
                x[p : p + 10] += 15
        cols[f"m{j}"] = x
    return pd.DataFrame(cols, index=idx), planted


def hits(scores: np.ndarray, planted: list[int]) -> float:
    """Share of planted anomalies with a top-(2×planted) score within 10 points after their start."""
    s = np.nan_to_num(np.asarray(scores, dtype="float64"), nan=-np.inf)
    top = np.argsort(-s)[: 2 * len(planted)]
    return float(np.mean([np.any((top >= p) & (top <= p + 10)) for p in planted]))


# -- methods: each returns one score row per metric (metrics × rows) -------------------------------
def telewatch_univariate(name: str) -> ScoreFn:
    from telewatch.detectors import create_detector

    def run(frame: pd.DataFrame, n_train: int) -> np.ndarray:
        out = []
        for col in frame.columns:
            s = frame[col]
            det = create_detector(name).fit(s.iloc[:n_train])
            out.append(det.score(s).to_numpy())
        return np.vstack(out)

    return run


def telewatch_multivariate(name: str) -> ScoreFn:
    from telewatch.detectors.multivariate import create_multivariate_detector

    def run(frame: pd.DataFrame, n_train: int) -> np.ndarray:
        det = create_multivariate_detector(name).fit(frame.iloc[:n_train])
        return det.score(frame).to_numpy()[None, :]

    return run


def stl(frame: pd.DataFrame, n_train: int, *, period: int = PERIOD) -> np.ndarray:
    """Robust z of STL's residual (``period`` rows; LOESS jumps of ``period // 10``, 144 for a day
    of minutes). Shared with ``bench_scale.py``, which passes each NAB file's rows per day."""
    from statsmodels.tsa.seasonal import STL

    jump = max(period // 10, 1)
    out = []
    for col in frame.columns:
        res = STL(
            frame[col].to_numpy(), period=period, seasonal_jump=jump, trend_jump=jump, low_pass_jump=jump
        ).fit()
        r = res.resid
        med = np.median(r[:n_train])
        out.append(np.abs(r - med) / (MAD_TO_SIGMA * np.median(np.abs(r[:n_train] - med))))
    return np.vstack(out)


def sklearn_iforest(frame: pd.DataFrame, n_train: int) -> np.ndarray:
    from sklearn.ensemble import IsolationForest

    out = []
    for col in frame.columns:
        x = frame[[col]].to_numpy()
        model = IsolationForest(random_state=0).fit(x[:n_train])
        out.append(-model.score_samples(x))
    return np.vstack(out)


def pyod_ecod(frame: pd.DataFrame, n_train: int) -> np.ndarray:
    from pyod.models.ecod import ECOD

    out = []
    for col in frame.columns:
        x = frame[[col]].to_numpy()
        out.append(ECOD().fit(x[:n_train]).decision_function(x))
    return np.vstack(out)


def adtk_seasonal(frame: pd.DataFrame, n_train: int, *, period: int = PERIOD) -> np.ndarray:
    """ADTK's SeasonalAD with a season of ``period`` rows (0/1 anomaly flags as the score)."""
    from adtk.detector import SeasonalAD

    out = []
    for col in frame.columns:
        # ADTK wants a regular index: rows as consecutive minutes (the season is counted in rows)
        s = pd.Series(
            frame[col].to_numpy(), index=pd.date_range("2000-01-01", periods=len(frame), freq="min")
        )
        det = SeasonalAD(freq=period, c=3.0)
        det.fit(s.iloc[:n_train])
        out.append(det.detect(s).astype(float).fillna(0.0).to_numpy())
    return np.vstack(out)


def prophet(frame: pd.DataFrame, n_train: int) -> np.ndarray:
    import logging

    from prophet import Prophet

    logging.getLogger("cmdstanpy").setLevel(logging.WARNING)
    out = []
    for col in frame.columns:
        df = pd.DataFrame({"ds": frame.index.tz_localize(None), "y": frame[col].to_numpy()})
        model = Prophet(uncertainty_samples=0, daily_seasonality=True, weekly_seasonality=True)
        model.fit(df.iloc[:n_train])
        yhat = model.predict(df[["ds"]])["yhat"].to_numpy()
        out.append(np.abs(df["y"].to_numpy() - yhat))
    return np.vstack(out)


# -- harness --------------------------------------------------------------------------------------
@dataclass
class Row:
    method: str
    kind: str
    metrics: int
    seconds: float = math.nan
    cpu_seconds: float = math.nan
    points_per_s: float = math.nan
    peak_mb: float = math.nan
    hits: float = math.nan
    error: str = ""


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _child(fn: ScoreFn, frame: pd.DataFrame, planted: list[int], conn: Any) -> None:
    try:
        rss0 = _status_kb("VmRSS")
        t0, c0 = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scores = fn(frame, len(frame) // 2)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        peak_mb = max(_status_kb("VmHWM") - rss0, 0) / 1024
        conn.send(("ok", seconds, cpu, peak_mb, float(np.mean([hits(s, planted) for s in scores]))))
    except Exception as exc:  # a reference library that fails is reported, not raised
        msg = str(exc).splitlines()[0][:80] if str(exc) else ""
        conn.send(("error", f"{type(exc).__name__}: {msg}"))


def measure(method: str, kind: str, fn: ScoreFn, frame: pd.DataFrame, planted: list[int]) -> Row:
    """Run one method in a forked process: its own peak memory, and a crash cannot take us down."""
    row = Row(method, kind, frame.shape[1])
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(fn, frame, planted, child))
    proc.start()
    child.close()
    try:
        result = parent.recv()
    except EOFError:
        result = ("error", f"process died (exit code {proc.exitcode})")
    proc.join()
    if result[0] == "error":
        row.error = result[1]
        return row
    _, row.seconds, row.cpu_seconds, row.peak_mb, row.hits = result
    row.points_per_s = frame.size / row.seconds
    return row


def default_detector() -> str:
    """The detector a user gets without choosing (``services.detection.DEFAULT_DETECTOR``)."""
    from telewatch.detectors import available_detectors

    try:
        from telewatch.services.detection import DEFAULT_DETECTOR

        if DEFAULT_DETECTOR in available_detectors():
            return DEFAULT_DETECTOR
    except ImportError:
        pass
    known = available_detectors()
    return next(n for n in ("novelty", "seasonal", "robust_bands") if n in known)


def preload() -> None:
    """Import every library up front, so that no method's time includes an import."""
    import importlib

    for module in (
        "statsmodels.tsa.seasonal",
        "sklearn.ensemble",
        "sklearn.svm",
        "pyod.models.ecod",
        "adtk.detector",
        "prophet",
        "torch",
    ):
        with contextlib.suppress(Exception):  # a missing library is reported by its method's run
            importlib.import_module(module)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", type=int, default=4, help="metrics in the many-metrics run")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--only", nargs="*", help="run only methods whose name contains one of these")
    parser.add_argument("--skip-deep", action="store_true", help="leave out the torch detectors")
    args = parser.parse_args(argv)

    from telewatch.detectors import available_detectors
    from telewatch.detectors.multivariate import available_multivariate_detectors

    console = Console(width=160)  # a table wider than a pipe's default 80 columns
    default = default_detector()
    preload()
    references: list[tuple[str, ScoreFn]] = [
        ("statsmodels STL", stl),
        ("sklearn IsolationForest", sklearn_iforest),
        ("PyOD ECOD", pyod_ecod),
        ("ADTK SeasonalAD", adtk_seasonal),
        ("Prophet", prophet),
    ]
    ours: list[tuple[str, ScoreFn]] = [
        (f"telewatch {name}", telewatch_univariate(name))
        for name in available_detectors()
        if not (args.skip_deep and name in ("lstm_ae", "aer"))
    ]
    multi = [
        (f"telewatch {name}", telewatch_multivariate(name)) for name in available_multivariate_detectors()
    ]

    def wanted(method: str) -> bool:
        return not args.only or any(o in method for o in args.only) or method == f"telewatch {default}"

    rows: list[Row] = []
    for n_metrics in sorted({1, args.metrics}):
        frame, planted = make_data(args.days, n_metrics)
        console.print(f"[bold]{len(frame)} rows × {n_metrics} metrics[/] (train = first half)")
        plan = [(m, "reference", f) for m, f in references] + [(m, "telewatch", f) for m, f in ours]
        if n_metrics > 1:
            plan += [(m, "group", f) for m, f in multi]
        for method, kind, fn in plan:
            if not wanted(method):
                continue
            with console.status(f"{method} on {n_metrics} metric(s)"):
                rows.append(measure(method, kind, fn, frame, planted))
            r = rows[-1]
            done = f"{r.seconds:.2f} s ({r.cpu_seconds:.2f} s CPU)"
            console.print(f"  {method}: " + (r.error or done), highlight=False)

    table = Table(
        title=f"Detector speed: {args.days} days of 1-minute data, fit on the first half, score all",
        caption=(
            f"ratio = CPU seconds / CPU seconds of telewatch's default ({default}) on the same metrics. "
            "peak MB: resident-set growth of a forked process running the method alone. "
            "hits: planted anomalies found in the top 2×planted scores. group = one multivariate "
            "detector over all metrics."
        ),
        caption_justify="left",
    )
    for col in ("method", "kind", "metrics", "seconds", "CPU s", "points/s", "peak MB", "ratio", "hits"):
        table.add_column(col, justify="left" if col in ("method", "kind") else "right")
    base = {r.metrics: r.cpu_seconds for r in rows if r.method == f"telewatch {default}"}
    for r in rows:
        if r.error:
            table.add_row(r.method, r.kind, str(r.metrics), f"[red]{r.error}[/]", "", "", "", "", "")
            continue
        ratio = r.cpu_seconds / base[r.metrics] if base.get(r.metrics) else math.nan
        table.add_row(
            r.method,
            r.kind,
            str(r.metrics),
            f"{r.seconds:.2f}",
            f"{r.cpu_seconds:.2f}",
            f"{r.points_per_s:,.0f}",
            f"{r.peak_mb:.0f}",
            f"{ratio:.2f}",
            f"{r.hits:.2f}",
        )
    console.print(table)


if __name__ == "__main__":
    main()
