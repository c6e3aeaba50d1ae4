"""Many metrics at once: telewatch's batch path, the per-metric loop and Dask, beside reference libraries.

Run: ``.venv/bin/python benchmarks/bench_scale.py [--metrics 200] [--days 30] [--sample 5] [--workers 2]``

The data: ``days`` (default 30) of 1-minute points per metric with a daily and a weekly cycle, noise
and the same 12 planted anomalies (spikes, dips, a short level shift), for ``metrics`` metrics
(default 200, small enough for a shared 2-core machine; ``--metrics 1000`` gives the issue's figure,
43.2 M points). Every method fits on the whole month and scores it (as ``fit(s).score(s)``):

* ``telewatch batch``: :func:`telewatch.services.batch.score_matrix` on all metrics as one matrix
  (default detector ``novelty``, and ``robust_z``);
* ``telewatch dask``: :func:`telewatch.scheduler.distributed.score_many`, embedded LocalCluster of
  ``--workers`` single-threaded workers (threads of this process), 64 metrics per task;
* ``telewatch loop``: ``create_detector(...).fit(s).score(s)`` per metric, timed on ``--sample``
  metrics and extrapolated to all of them;
* scikit-learn IsolationForest on the raw values and statsmodels STL (period 1440,
  ``seasonal_jump = trend_jump = low_pass_jump = 144``, residual magnitude as the score), per metric,
  timed on ``--sample`` metrics and extrapolated.

Columns: seconds for all metrics (``*`` = extrapolated from the sample), points per second, peak
memory (each method runs alone in a forked process: ``VmHWM`` after resetting it, minus ``VmRSS`` at
start, so the shared input matrix is not counted; the total process peak is in brackets), the time
ratio to the batch path (>1 = slower), and hits: the share of planted anomalies among each metric's
top ``2 × 12`` scores on the sample metrics (a sanity check that speed was not bought with
accuracy; see ``telewatch bench nab`` for accuracy). The targets from the issue (1,000 metrics × 30
days in under 5 s, under 2 GiB) are checked at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

PERIOD = 1440
N_PLANTED = 12
Method = Callable[[np.ndarray, pd.DatetimeIndex], np.ndarray]


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


# -- methods -----------------------------------------------------------------------------------
def batch(detector: str, workers: int = 1) -> Method:
    def run(x: np.ndarray, idx: pd.DatetimeIndex) -> np.ndarray:
        from telewatch.services.batch import score_matrix

        return score_matrix(x, idx, detector=detector, workers=workers)

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


def isolation_forest(x: np.ndarray, idx: pd.DatetimeIndex) -> np.ndarray:
    from sklearn.ensemble import IsolationForest

    rows = []
    for row in x:
        v = row.reshape(-1, 1)
        model = IsolationForest(random_state=0).fit(v)
        rows.append(-model.score_samples(v))
    return np.vstack(rows)


def stl(x: np.ndarray, idx: pd.DatetimeIndex) -> np.ndarray:
    from statsmodels.tsa.seasonal import STL

    rows = []
    for row in x:
        res = STL(row, period=PERIOD, seasonal_jump=144, trend_jump=144, low_pass_jump=144).fit()
        rows.append(np.abs(res.resid))
    return np.vstack(rows)


# -- measurement -------------------------------------------------------------------------------
def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _child(method: Method, x: np.ndarray, idx: pd.DatetimeIndex, conn: Any) -> None:
    warnings.simplefilter("ignore")
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    start_rss = _status("VmRSS")
    t0 = time.perf_counter()
    scores = method(x, idx)
    seconds = time.perf_counter() - t0
    peak = _status("VmHWM")
    conn.send((seconds, max(peak - start_rss, 0), peak, scores[: min(len(scores), 5)]))
    conn.close()


def measure(method: Method, x: np.ndarray, idx: pd.DatetimeIndex) -> tuple[float, int, int, np.ndarray]:
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(method, x, idx, child))
    proc.start()
    child.close()
    result = parent.recv()
    proc.join()
    return result  # type: ignore[no-any-return]


def hits(scores: np.ndarray, planted: list[int]) -> float:
    found = []
    for row in scores:
        row = np.nan_to_num(row, nan=-np.inf)
        top = np.argsort(row)[-2 * N_PLANTED :]
        found.append(np.mean([np.any(np.abs(top - p) <= 5) for p in planted]))
    return float(np.mean(found))


@dataclass
class Row:
    name: str
    seconds: float
    extrapolated: bool
    growth: int
    peak: int
    hits: float


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", type=int, default=200)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--sample", type=int, default=5, help="metrics timed for the per-metric methods")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    console = Console(width=150)
    # import everything before forking, so import time is not measured
    import dask.distributed  # noqa: F401
    import sklearn.ensemble  # noqa: F401
    import statsmodels.tsa.seasonal  # noqa: F401

    import telewatch.scheduler.distributed
    import telewatch.services.batch  # noqa: F401

    with console.status(f"making {args.metrics} metrics × {args.days} days of minute data"):
        x, idx, planted = make_data(args.days, args.metrics)
    n_points = x.size
    sample = x[: max(1, min(args.sample, args.metrics))]
    factor = args.metrics / len(sample)
    plan: list[tuple[str, Method, bool]] = [
        ("telewatch batch (novelty, default)", batch("novelty"), False),
        (f"telewatch batch (novelty, {args.workers} threads)", batch("novelty", args.workers), False),
        ("telewatch batch (robust_z)", batch("robust_z"), False),
        (f"telewatch dask (novelty, {args.workers} workers)", dask_path(args.workers), False),
        ("telewatch loop (novelty, per metric)", loop, True),
        ("scikit-learn IsolationForest", isolation_forest, True),
        ("statsmodels STL (jumps 144)", stl, True),
    ]
    rows: list[Row] = []
    for name, method, per_metric in plan:
        with console.status(f"{name} …"):
            data = sample if per_metric else x
            seconds, growth, peak, head = measure(method, data, idx)
        rows.append(
            Row(name, seconds * (factor if per_metric else 1), per_metric, growth, peak, hits(head, planted))
        )
        console.log(f"{name}: {rows[-1].seconds:.2f} s")

    base = rows[0].seconds
    table = Table(
        title=f"{args.metrics} metrics × {args.days} days of 1-minute data ({n_points / 1e6:.1f} M points)"
    )
    for col in (
        "method",
        "seconds",
        "points/s",
        "peak memory growth [process peak]",
        "ratio to batch",
        "hits",
    ):
        table.add_column(col, justify="left" if col == "method" else "right")
    for r in rows:
        table.add_row(
            r.name,
            f"{r.seconds:.2f}{'*' if r.extrapolated else ''}",
            f"{n_points / r.seconds / 1e6:.2f} M",
            f"{r.growth / 2**20:.0f} MiB [{r.peak / 2**20:.0f} MiB]",
            f"{r.seconds / base:.2f}",
            f"{r.hits:.2f}",
        )
    console.print(table)
    console.print(f"* extrapolated from {len(sample)} metrics; input matrix {x.nbytes / 2**20:.0f} MiB")
    scale = 1000 / args.metrics * 30 / args.days
    best = min(rows[0].seconds, rows[1].seconds, rows[3].seconds)
    console.print(
        f"target: 1,000 metrics × 30 days under 5 s with the default detector — "
        f"{'measured' if scale == 1 else 'linear estimate'}: {best * scale:.1f} s "
        f"({'met' if best * scale < 5 else 'NOT met'}); "
        f"peak {max(rows[0].peak, rows[1].peak, rows[3].peak) / 2**30:.2f} GiB at this size "
        f"({'met' if max(rows[0].peak, rows[1].peak, rows[3].peak) < 2 * 2**30 else 'NOT met'} for < 2 GiB)"
    )


if __name__ == "__main__":
    main()
