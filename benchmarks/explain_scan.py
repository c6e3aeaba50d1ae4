"""Speed of the window scan: one window over 1,000 and 10,000 metrics (matrix metrics × time).

Run: .venv/bin/python benchmarks/explain_scan.py [--metrics 1000 10000] [--no-store] [--cache DIR]

Prints the scan's time (4 days of 1-minute history, a 60-minute window, with a target metric, so
every evidence term runs: two baselines, KS, z, lead/lag), and — as the reference — the same KS
statistics computed with one ``scipy.stats.ks_2samp`` call per metric. Then the end-to-end table:
``explain_window`` over a DuckDB store holding 4 days of 1-minute points of each metric count
(reading, ranking and total seconds; wall time, best of 3, and the process CPU time of that run).
The stores are built once under ``--cache`` (time-major, as a live monitor writes them; the 10,000
metric store takes minutes to build) and reused by later runs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from scipy import stats

from telewatch.incidents.ranking import rank_window, window_evidence

DAY = 1440
START = pd.Timestamp("2026-01-01", tz="UTC")
console = Console(width=150)


def _best(fn, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def scan(n_metrics: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(100.0, 5.0, size=(n_metrics, 4 * DAY))
    w0, w1 = 3 * DAY + 600, 3 * DAY + 660
    x[: n_metrics // 100, w0:w1] += 20.0
    names = [f"m{i}" for i in range(n_metrics)]
    t_scan = _best(lambda: rank_window(x, w0, w1, names=names, target=0, limit=20))
    c0 = time.process_time()
    rank_window(x, w0, w1, names=names, target=0, limit=20)
    cpu = time.process_time() - c0
    t_evidence = _best(lambda: window_evidence(x, w0, w1, target=0))
    base = x[:, w0 - 240 : w0]
    win = x[:, w0:w1]
    sample = min(n_metrics, 1000)
    t_scipy = (
        _best(lambda: [stats.ks_2samp(win[i], base[i]) for i in range(sample)], repeat=1) * n_metrics / sample
    )
    print(
        f"scan metrics={n_metrics} window=60 history=4d: rank_window {t_scan:.3f} s (cpu {cpu:.3f} s)"
        f" (evidence only {t_evidence:.3f} s); scipy ks_2samp loop, KS alone, preceding baseline only:"
        f" {t_scipy:.3f} s (ratio {t_scipy / t_scan:.1f}x)"
    )


def build_store(path: Path, n_metrics: int, days: int = 4) -> None:
    """A store of ``n_metrics`` × ``days`` of 1-minute points, written time-major as a live monitor
    writes it (every tick appends the newest minute of every metric); 1 % of the metrics shift by
    +20 in the benchmark window. Values are a deterministic hash noise around 100."""
    from telewatch.store.db import Store

    tmp = path.with_suffix(".building")
    tmp.unlink(missing_ok=True)
    w0 = (days - 1) * DAY + 600
    first = START.tz_localize(None).to_pydatetime()
    with Store(tmp) as store, Progress(console=console) as progress:
        con = store.cursor()
        con.execute(
            "INSERT INTO metrics (id, name, labels, grp) SELECT i + 1, 'm' || i::VARCHAR, '{}', 'bench'"
            " FROM range(?) t(i)",
            [n_metrics],
        )
        task = progress.add_task(f"building a store of {n_metrics:,} metrics x {days} days", total=days)
        for day in range(days):
            con.execute(
                "INSERT INTO points SELECT m + 1, ?::TIMESTAMP + to_minutes(k),"
                " 100 + (hash(m * 100003 + k) % 10000) / 1000.0 - 5"
                " + CASE WHEN m < ? AND k >= ? AND k < ? THEN 20 ELSE 0 END"
                " FROM range(?, ?) a(k), range(?) b(m) ORDER BY k, m",
                [first, n_metrics // 100, w0, w0 + 60, day * DAY, (day + 1) * DAY, n_metrics],
            )
            progress.advance(task)
    tmp.rename(path)


def store_scan(n_metrics: int, cache: Path, repeat: int = 3) -> list[str]:
    """End to end from a DuckDB store: ``explain_window`` over every metric, target ``m0``."""
    from telewatch.services.explain import explain_window
    from telewatch.store.db import Store

    days = 4
    path = cache / f"explain_scan_{n_metrics}x{days}d.duckdb"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        build_store(path, n_metrics, days)
    start = START + pd.Timedelta(minutes=(days - 1) * DAY + 600)
    end = start + pd.Timedelta("60min")
    with Store(path) as store:
        explain_window(store, start=start, end=end, metric="m0")  # warm the file cache
        runs = []
        for _ in range(repeat):
            c0 = time.process_time()
            r = explain_window(store, start=start, end=end, metric="m0", limit=20)
            runs.append((r.seconds, time.process_time() - c0, r))
        best = min(runs, key=lambda run: run[0])
        total, cpu, result = best
        planted = {f"m{i}" for i in range(n_metrics // 100)}
        top = [m.metric for m in result.ranked[: min(20, len(planted))]]
    return [
        f"{n_metrics:,}",
        f"{n_metrics * days * DAY / 1e6:.1f} M",
        f"{result.read_seconds:.3f}",
        f"{result.scan_seconds:.3f}",
        f"{total:.3f}",
        f"{cpu:.3f}",
        f"{sum(m in planted for m in top)}/{len(top)}",
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--no-store", action="store_true", help="only the in-memory scan, not end to end")
    parser.add_argument("--store", action="store_true", help=argparse.SUPPRESS)  # the default now
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "telewatch-bench",
        help="where the benchmark stores are built once and reused (10,000 metrics: 57.6 M points, ~3 GB)",
    )
    args = parser.parse_args()
    for n in args.metrics:
        scan(n)
    if not args.no_store:
        table = Table(
            title="explain_window end to end from a DuckDB store (4 days of 1-minute points, 60-minute window,"
            " target m0; best of 3)"
        )
        for col in ("metrics", "store points", "read s", "rank s", "total s", "cpu s", "planted in top"):
            table.add_column(col, justify="right")
        for n in args.metrics:
            table.add_row(*store_scan(n, args.cache))
        console.print(table)
