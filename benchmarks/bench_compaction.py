"""Compaction: one metric's history and a window scan, before and after finished days are rewritten
in (hour, metric, time) order.

A store as a monitor's ticks leave it (``bench_tick.build_store``: 10,000 metrics, 1-minute points
written hour by hour for all metrics) is read two ways — ``repo.read_series`` of single metrics over the
whole history (the explorer, the API) and ``explain_window`` over every metric (the window scan, which
reads time slices) — then compacted with ``telewatch.services.compaction.compact_store`` and read again.

    .venv/bin/python benchmarks/bench_compaction.py [--metrics 10000] [--days 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
import bench_tick

from telewatch.services.compaction import compact_store
from telewatch.services.explain import explain_window
from telewatch.store import repo
from telewatch.store.db import Store


def timings(
    store: Store, metric_ids: list[int], window_end: pd.Timestamp, repeat: int
) -> tuple[float, float]:
    """Median seconds of one metric's whole history, and of a 60-minute window scan over every metric."""
    cur = store.cursor()
    reads = []
    for _ in range(repeat):
        for mid in metric_ids:
            started = time.perf_counter()
            repo.read_series(cur, mid)
            reads.append(time.perf_counter() - started)
    scans = []
    for _ in range(repeat):
        started = time.perf_counter()
        explain_window(store, start=window_end - pd.Timedelta(minutes=60), end=window_end, limit=20)
        scans.append(time.perf_counter() - started)
    return statistics.median(reads), statistics.median(scans)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--metrics", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    console = Console(width=140)
    spec = bench_tick.monitor_spec()
    with (
        tempfile.TemporaryDirectory(prefix="tw-bench-compact-") as tmp,
        Progress(console=console) as progress,
    ):
        path = Path(tmp) / "store.duckdb"
        bench_tick.build_store(path, spec, args.metrics, args.days * 24, progress)
        with Store(path) as store:
            cur = store.cursor()
            ids = [int(r[0]) for r in cur.execute("SELECT id FROM metrics ORDER BY id").fetchall()]
            picks = [ids[0], ids[len(ids) // 4], ids[len(ids) // 2], ids[-1]]
            last = pd.Timestamp(cur.execute("SELECT max(ts) FROM points").fetchall()[0][0]).tz_localize("UTC")
            window_end = last - pd.Timedelta(hours=2)
            timings(store, picks[:1], window_end, 1)  # warm: kernels compiled, file cached
            read_before, scan_before = timings(store, picks, window_end, args.repeat)
            started = time.perf_counter()
            report = compact_store(store, now=last, tables=("points",))
            seconds = time.perf_counter() - started
            cur.execute("CHECKPOINT")
            read_after, scan_after = timings(store, picks, window_end, args.repeat)
    days = report.days["points"]
    table = Table(
        title=f"{args.metrics:,} metrics × {args.days} days of 1-minute points; {days} finished days compacted"
    )
    for col in ("read", "before s", "after s", "ratio"):
        table.add_column(col, justify="left" if col == "read" else "right")
    table.add_row(
        f"one metric's whole history ({args.days * 1440:,} points)",
        f"{read_before:.4f}",
        f"{read_after:.4f}",
        f"{read_before / read_after:.1f}×",
    )
    table.add_row(
        "window scan over every metric (60 min)",
        f"{scan_before:.3f}",
        f"{scan_after:.3f}",
        f"{scan_before / scan_after:.2f}×",
    )
    console.print(table)
    console.print(
        f"compaction: {report.rows['points']:,} rows in {seconds:.1f} s ({seconds / max(days, 1):.2f} s per day);"
        " ratio > 1 = faster after. Medians of "
        f"{args.repeat} runs ({len(picks)} metrics each for the reads)."
    )


if __name__ == "__main__":
    main()
