"""Profile one steady streaming tick (cProfile): bench_tick's store and source, a first tick, then
``--ticks`` steady ticks, the last one profiled.

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/profile_tick.py [--metrics 3000] [--sort tottime]
[--top 40]``. The store is built once under ``--dir`` (default ``/tmp/tw-profile``) and copied per run.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import shutil
import sys
import time
from pathlib import Path

import pandas as pd
from rich.progress import Progress

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_tick

from telewatch.store.db import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--metrics", type=int, default=3000)
    parser.add_argument("--ticks", type=int, default=2, help="steady ticks before the profiled one")
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/tw-profile"))
    parser.add_argument("--out", type=Path, default=None, help="write the raw profile here")
    args = parser.parse_args()
    spec = bench_tick.monitor_spec()
    args.dir.mkdir(parents=True, exist_ok=True)
    base = args.dir / f"{bench_tick.DETECTOR}-{args.metrics}.duckdb"
    if not base.exists():
        with Progress(disable=True) as progress:
            bench_tick.build_store(base, spec, args.metrics, 24, progress)
    work = args.dir / "work.duckdb"
    shutil.copy(base, work)
    source = bench_tick.MinuteSource(args.metrics)
    gc_seconds = [0.0, 0.0]  # [total, started at]
    gc_counts = [0, 0, 0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_seconds[1] = time.perf_counter()
        else:
            gc_seconds[0] += time.perf_counter() - gc_seconds[1]
            gc_counts[info["generation"]] += 1

    gc.callbacks.append(on_gc)
    try:
        with Store(work) as store:
            for k in range(args.ticks + 1):
                now = bench_tick.T + pd.Timedelta(minutes=5 * (k + 1))
                gc_seconds[0], gc_counts[:] = 0.0, [0, 0, 0]
                t = bench_tick.one_tick(store, spec, source, now, streaming=True)
                print(
                    f"tick {k}: wall {t.seconds:.3f} s, CPU {t.cpu:.3f} s, phases {t.phases},"
                    f" garbage collection {gc_seconds[0]:.3f} s (collections by generation {gc_counts})"
                )
            now = bench_tick.T + pd.Timedelta(minutes=5 * (args.ticks + 2))
            prof = cProfile.Profile()
            prof.enable()
            t = bench_tick.one_tick(store, spec, source, now, streaming=True)
            prof.disable()
            print(f"profiled tick: wall {t.seconds:.3f} s, CPU {t.cpu:.3f} s, phases {t.phases}")
    finally:
        work.unlink(missing_ok=True)
        Path(f"{work}.wal").unlink(missing_ok=True)
    if args.out is not None:
        prof.dump_stats(args.out)
    pstats.Stats(prof).sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
