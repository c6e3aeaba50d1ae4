"""A SQL source's rows into series: the columnar batch against the per-series split it replaced.

Run: ``.venv/bin/python benchmarks/bench_fetch.py [--series 1000 10000] [--points 5]``

The rows are what a ClickHouse or PostgreSQL query returns for a tick (epoch seconds, metric name,
value; shuffled, as a server may return them): ``--points`` per series. Rows of the table:

* ``split``: rows → series (``long_to_batch`` against the per-group split with a pandas Series per
  series, the implementation before the batch path; it lives in the tests as their reference);
* ``watermarks``: dropping what each series has already seen (``filter_new_batch`` against
  ``filter_new`` on the same series).

CPU seconds of this process, median of ``--repeat`` runs; ratio = per-series / columnar.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from telewatch.sources.base import SourceState, filter_new, filter_new_batch, long_to_batch

ROOT = Path(__file__).resolve().parents[1]


def reference_split() -> Callable[..., Any]:
    """The per-group split, from the test module that checks the batch path against it."""
    path = ROOT / "tests" / "unit" / "test_fetched_batch.py"
    spec = importlib.util.spec_from_file_location("_tw_fetch_reference", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load the reference from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    reference: Callable[..., Any] = module.reference_long_to_series
    return reference


def rows(n_series: int, points: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "__ts": np.tile(np.arange(points) * 60.0 + 1.78e9, n_series),
            "metric": np.repeat([f"m{i:05d}" for i in range(n_series)], points),
            "value": rng.normal(size=n_series * points),
        }
    )
    return frame.sample(frac=1.0, random_state=1).reset_index(drop=True)


def cpu(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.process_time()
        fn()
        times.append(time.process_time() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--series", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--points", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    split = reference_split()
    table = Table(title=f"Rows → series, {args.points} points per series (CPU s, median of {args.repeat})")
    for col in ("step", "series", "per-series", "columnar", "ratio"):
        table.add_column(col, justify="left" if col == "step" else "right")
    kw: dict[str, Any] = {"metric_column": "metric", "value_columns": ["value"], "label_columns": []}
    for n in args.series:
        frame = rows(n, args.points)
        old = cpu(partial(split, frame, **kw), args.repeat)
        new = cpu(partial(long_to_batch, frame, **kw), args.repeat)
        table.add_row("split", f"{n:,}", f"{old:.3f}", f"{new:.4f}", f"{old / max(new, 1e-9):,.0f}×")
        batch = long_to_batch(frame, **kw)
        items = batch.series()
        # every series has seen all but its newest two points
        seen = {
            k: pd.Timestamp(int(batch.ts[e - 3]), tz="UTC")
            for k, e in zip(batch.keys(), batch.offsets[1:], strict=True)
        }
        state = SourceState(last_seen=seen)
        old = cpu(partial(filter_new, items, state), args.repeat)
        new = cpu(partial(filter_new_batch, batch, state), args.repeat)
        table.add_row("watermarks", f"{n:,}", f"{old:.3f}", f"{new:.4f}", f"{old / max(new, 1e-9):,.0f}×")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
