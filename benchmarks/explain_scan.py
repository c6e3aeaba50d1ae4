"""Speed of the window scan: one window over 1,000 and 10,000 metrics (matrix metrics × time).

Run: .venv/bin/python benchmarks/explain_scan.py [--metrics 1000 10000] [--store]

Prints the scan's time (4 days of 1-minute history, a 60-minute window, with a target metric, so
every evidence term runs: two baselines, KS, z, lead/lag), and — as the reference — the same KS
statistics computed with one ``scipy.stats.ks_2samp`` call per metric. ``--store`` also times the
end-to-end ``explain_window`` over a DuckDB store holding 1,000 metrics (reading included).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from scipy import stats

from telewatch.incidents.ranking import rank_window, window_evidence

DAY = 1440


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


def store_scan(n_metrics: int) -> None:
    import tempfile
    from pathlib import Path

    from telewatch.services.explain import explain_window
    from telewatch.store import repo
    from telewatch.store.db import Store

    rng = np.random.default_rng(1)
    idx = pd.date_range("2026-01-01", periods=4 * DAY, freq="1min", tz="UTC")
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "b.duckdb") as store:
        with store.transaction() as tx:
            for i in range(n_metrics):
                mid = repo.upsert_metric(tx, name=f"m{i}", group="bench")
                repo.write_points(tx, mid, pd.Series(rng.normal(100.0, 5.0, idx.size), index=idx))
        start = idx[3 * DAY + 600]
        t = _best(lambda: explain_window(store, start=start, end=start + pd.Timedelta("60min"), metric="m0"))
        r = explain_window(store, start=start, end=start + pd.Timedelta("60min"), metric="m0")
        print(
            f"explain_window over the store: metrics={n_metrics} {t:.3f} s end to end"
            f" (scan {r.scan_seconds:.3f} s; the store holds {n_metrics * idx.size:,} points)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--store", action="store_true", help="also time explain_window over a store")
    args = parser.parse_args()
    for n in args.metrics:
        scan(n)
    if args.store:
        store_scan(1000)
