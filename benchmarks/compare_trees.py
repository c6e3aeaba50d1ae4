"""Old tree against this one, interleaved: bench_scale's default row and bench_tick's steady tick.

Run: ``.venv/bin/python benchmarks/compare_trees.py OLD_TREE [--rounds 3] [--metrics 10000]
[--scale-metrics 1000] [--days 30] [--ticks 5] [--only-tick]``, ``OLD_TREE`` a checkout of the commit to compare
with (``git worktree add ../old 8d6278d``). Each round runs, one after the other and each in a
fresh process of its own tree (``PYTHONPATH=TREE/src``, the tree's own ``benchmarks/``):

* ``scale``: the default detector (novelty), batch path, 2 threads, ``--scale-metrics`` ×
  ``--days`` of minute data (``bench_scale.make_data`` / ``bench_scale.batch``), old then new;
* ``tick``: a store of 24 h of history built by the tree's ``bench_tick.build_store`` (once, kept
  under ``/tmp/tw-compare``), a monitor's first tick, then ``--ticks`` steady ticks (median): the old
  tree with its default detector, this tree with the monitors' default detector and with
  ``robust_bands`` (like for like).

On a shared machine compare the ratios of one round (old and new ran seconds apart) and the CPU
seconds; the medians over rounds are printed with the per-round ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
STORES = Path("/tmp/tw-compare")


def child_scale(n: int, days: int) -> None:
    import bench_scale

    from telewatch.detectors import _kernels

    _kernels.warm_up()
    x, idx, _planted = bench_scale.make_data(days, n)
    run = bench_scale.batch("novelty", 2)
    run(x[:5], idx)
    wall, cpu = time.perf_counter(), time.process_time()
    run(x, idx)
    print(f"RESULT {time.perf_counter() - wall:.3f} {time.process_time() - cpu:.3f}")


def child_tick(tag: str, detector: str, n: int, ticks: int) -> None:
    import bench_tick
    import pandas as pd
    from rich.progress import Progress

    from telewatch.store.db import Store

    if detector != "-":
        bench_tick.DETECTOR = detector
    spec = bench_tick.monitor_spec()
    STORES.mkdir(exist_ok=True)
    base = STORES / f"{tag}-{bench_tick.DETECTOR}-{n}.duckdb"
    if not base.exists():
        with Progress(disable=True) as progress:
            bench_tick.build_store(base, spec, n, 24, progress)
    work = STORES / f"work-{os.getpid()}.duckdb"
    shutil.copy(base, work)
    source = bench_tick.MinuteSource(n)
    walls, cpus = [], []
    try:
        with Store(work) as store:
            for k in range(ticks + 1):
                now = bench_tick.T + pd.Timedelta(minutes=5 * (k + 1))
                t = bench_tick.one_tick(store, spec, source, now, streaming=True)
                if k:  # the first tick of a process loads the state: not a steady tick
                    walls.append(t.seconds)
                    cpus.append(t.cpu)
    finally:
        work.unlink(missing_ok=True)
        Path(f"{work}.wal").unlink(missing_ok=True)
    print(f"RESULT {statistics.median(walls):.3f} {statistics.median(cpus):.3f} {bench_tick.DETECTOR}")


def run_child(tree: Path, *args: str) -> tuple[float, float, str]:
    env = {**os.environ, "PYTHONPATH": f"{tree / 'src'}{os.pathsep}{tree / 'benchmarks'}"}
    done = subprocess.run(
        [sys.executable, str(HERE), "--child", *args],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise SystemExit(f"{tree}: {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    parts = lines[-1].split()
    return float(parts[1]), float(parts[2]), parts[3] if len(parts) > 3 else ""


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        # the tree's own benchmarks/ (on PYTHONPATH), not this file's folder
        sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE.parent]
        sys.path.insert(0, str(Path.cwd() / "benchmarks"))
        kind, *rest = sys.argv[2:]
        if kind == "scale":
            child_scale(int(rest[0]), int(rest[1]))
        else:
            child_tick(rest[0], rest[1], int(rest[2]), int(rest[3]))
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("old", type=Path, help="checkout of the commit to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--metrics", type=int, default=10_000, help="metrics of the tick")
    parser.add_argument("--scale-metrics", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--ticks", type=int, default=5, help="steady ticks per process (median)")
    parser.add_argument(
        "--only-tick",
        action="store_true",
        help="the default detector's tick only (no scale, no robust_bands)",
    )
    args = parser.parse_args()
    old, new = args.old.resolve(), HERE.parent.parent
    runs: dict[str, tuple[Path, tuple[str, ...]]] = {
        "scale, old": (old, ("scale", str(args.scale_metrics), str(args.days))),
        "scale, new": (new, ("scale", str(args.scale_metrics), str(args.days))),
        "tick, old (its default detector)": (old, ("tick", "old", "-", str(args.metrics), str(args.ticks))),
        "tick, new (default detector)": (new, ("tick", "new", "-", str(args.metrics), str(args.ticks))),
        "tick, new (robust_bands)": (
            new,
            ("tick", "new", "robust_bands", str(args.metrics), str(args.ticks)),
        ),
    }
    if args.only_tick:
        runs = {
            k: v for k, v in runs.items() if k.startswith("tick, old") or k == "tick, new (default detector)"
        }
    got: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    for r in range(args.rounds):
        print(f"round {r + 1}, load {os.getloadavg()[0]:.1f}", flush=True)
        for name, (tree, child) in runs.items():
            wall, cpu, det = run_child(tree, *child)
            got[name].append((wall, cpu))
            print(f"  {name:36} {det:14} wall {wall:7.3f} s  CPU {cpu:7.3f} s", flush=True)
    print("\nmedians over rounds (wall / CPU s) and the per-round ratios new / old (wall, CPU):")
    for name, values in got.items():
        wall = statistics.median(v[0] for v in values)
        cpu = statistics.median(v[1] for v in values)
        print(f"  {name:36} {wall:7.3f} / {cpu:7.3f}")
    for new_name, old_name in (
        ("scale, new", "scale, old"),
        ("tick, new (default detector)", "tick, old (its default detector)"),
        ("tick, new (robust_bands)", "tick, old (its default detector)"),
    ):
        if new_name not in got:
            continue
        pairs = list(zip(got[new_name], got[old_name], strict=True))
        walls = [n[0] / o[0] for n, o in pairs]
        cpus = [n[1] / o[1] for n, o in pairs]
        print(
            f"  {new_name} / old: wall {', '.join(f'{v:.2f}' for v in walls)} (median {statistics.median(walls):.2f});"
            f" CPU {', '.join(f'{v:.2f}' for v in cpus)} (median {statistics.median(cpus):.2f})"
        )


if __name__ == "__main__":
    main()
