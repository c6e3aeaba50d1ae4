"""The incident update a tick runs when it found anomalies, part by part, at 1,000 and 10,000 metrics.

Run: ``.venv/bin/python benchmarks/bench_incidents.py [--metrics 1000 10000] [--history-hours 24]
[--scored-minutes 15] [--repeat 5] [--cache DIR]``

Setup (not timed): a DuckDB store per metric count holding ``--history-hours`` of 1-minute points of
every metric (a daily cycle and noise, written time-major as a live monitor writes them), the
detector scores of the last ``--scored-minutes`` minutes (as a monitor's streaming ticks leave them;
15 = the first ticks of ``benchmarks/bench_tick.py``, where the baseline has no scores yet and every
metric's stored-score evidence is large: all metrics count as involved, the worst case for typing),
and 20 anomalies (3-minute spikes, staggered over the last 15 minutes) that group into one incident.
Stores are built once under ``--cache`` when given and reused.

Timed: ``update_incidents(store, now=, since=, rerank_unchanged=False)`` as
``services/monitor/run._update_incidents`` calls it after a tick, creating the incident (its
incident rows are deleted between repeats). Rows: the whole update and its parts — ranking and
typing the incident (``_rank_and_type``): the scan (``explain_window``: choosing the metrics,
reading the values and scores matrices, the evidence, formatting the kept rows), the involved
metrics read from the evidence, the type rules — wall and CPU seconds (the process, all threads),
best of ``--repeat`` by the whole update's wall time. The last row is the reference: the same scan
with every row formatted (``explain_window(limit=None)``, what the incident update ran before).
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from telewatch.incidents import types
from telewatch.services import explain, incidents
from telewatch.store.db import Store

T = pd.Timestamp("2026-03-02 00:00", tz="UTC")  # the tick: data up to T + 15 min
STEP = pd.Timedelta(minutes=1)
N_ANOMALIES = 20
console = Console(width=140)


def values_at(minutes: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Deterministic values (metrics × minutes): a daily cycle with a phase per metric, and noise."""
    m = minutes[None, :].astype(np.float64)
    i = ids[:, None].astype(np.float64)
    level = 100.0 + (i % 97)
    noise = np.sin(m * 12.9898 + i * 78.233) * 43758.5453
    noise = noise - np.floor(noise) - 0.5
    return level * (1 + 0.2 * np.sin(2 * np.pi * m / 1440 + (i % 13) / 13.0 * 2 * np.pi)) + 4 * noise


def spikes(n_metrics: int) -> list[tuple[int, int]]:
    """(metric row, first minute after T) of the planted 3-minute spikes, staggered over 15 minutes."""
    rows = np.linspace(0, n_metrics - 1, N_ANOMALIES).astype(int)
    return [(int(r), int(k % 12)) for k, r in enumerate(rows)]


def build_store(path: Path, n_metrics: int, hours: int, scored: int, progress: Progress) -> None:
    minutes_all = np.arange(-hours * 60, 15)
    ids = np.arange(n_metrics)
    planted = spikes(n_metrics)
    task = progress.add_task(f"store: {n_metrics:,} metrics × {hours} h", total=len(minutes_all))
    with Store(path) as store:
        con = store.cursor()
        con.register("_names", pd.DataFrame({"name": [f"m{i:05d}" for i in ids]}))
        con.execute("INSERT INTO metrics (name) SELECT name FROM _names ORDER BY name")
        con.unregister("_names")
        first_id = int(con.execute("SELECT min(id) FROM metrics").fetchall()[0][0])
        for lo in range(0, len(minutes_all), 60):  # time-major: an hour of every metric at a time
            minutes = minutes_all[lo : lo + 60]
            x = values_at(minutes, ids)
            for row, start in planted:
                hit = (minutes >= start) & (minutes < start + 3)
                x[row, hit] *= 1.8
            stamps = (T + pd.to_timedelta(minutes, unit="min")).tz_localize(None).to_numpy("datetime64[us]")
            frame = pd.DataFrame(
                {
                    "metric_id": np.tile(ids + first_id, len(minutes)).astype("int32"),
                    "ts": np.repeat(stamps, n_metrics),
                    "value": x.T.ravel(),
                }
            )
            con.register("_pts", frame)
            con.execute("INSERT INTO points SELECT * FROM _pts")
            con.unregister("_pts")
            new_scored = minutes >= 15 - scored
            if new_scored.any():
                z = np.abs(np.sin(minutes[None, new_scored] * 3.1 + ids[:, None] * 0.7))
                for row, start in planted:
                    hit = (minutes[new_scored] >= start) & (minutes[new_scored] < start + 3)
                    z[row, hit] = 9.0
                frame = pd.DataFrame(
                    {
                        "metric_id": np.tile(ids + first_id, int(new_scored.sum())).astype("int32"),
                        "ts": np.repeat(stamps[new_scored], n_metrics),
                        "score": z.T.ravel(),
                    }
                )
                con.register("_sc", frame)
                con.execute("INSERT INTO scores SELECT metric_id, 'robust_bands', ts, score FROM _sc")
                con.unregister("_sc")
            progress.advance(task, len(minutes))
        for row, start in planted:
            t0 = (T + start * STEP).tz_localize(None).to_pydatetime()
            con.execute(
                "INSERT INTO anomalies (metric_id, detector, start_ts, end_ts, peak_ts, peak_score)"
                " VALUES (?, 'robust_bands', ?, ?, ?, 9.0)",
                [row + first_id, t0, t0 + 2 * STEP.to_pytimedelta(), t0],
            )
        con.execute("CHECKPOINT")


class Parts:
    """Wall and CPU seconds of the calls of some module functions, wrapped in place."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextlib.contextmanager
    def wrap(self, targets: list[tuple[Any, str, str]]) -> Iterator[None]:
        saved = [(module, attr, getattr(module, attr)) for module, attr, _ in targets]
        for (module, attr, label), (_, _, real) in zip(targets, saved, strict=True):
            setattr(module, attr, self._timed(label, real))
        try:
            yield
        finally:
            for module, attr, real in saved:
                setattr(module, attr, real)

    def _timed(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            w, c = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.wall[label] = self.wall.get(label, 0.0) + time.perf_counter() - w
                self.cpu[label] = self.cpu.get(label, 0.0) + time.process_time() - c

        return run


ROWS = [
    ("update", "update_incidents (one new incident)"),
    ("rank_and_type", "  rank and type it (_rank_and_type)"),
    ("explain", "    scan (explain_window, kept rows)"),
    ("select", "      choose the metrics"),
    ("read", "      read values + scores matrices"),
    ("evidence", "      evidence (window_evidence)"),
    ("rank", "      format the kept rows"),
    ("involved", "    involved metrics (from the evidence)"),
    ("classify", "    type rules (classify)"),
]


def measure(path: Path, repeat: int) -> tuple[dict[str, tuple[float, float]], dict[str, float]]:
    targets = [
        (incidents, "_rank_and_type", "rank_and_type"),
        (incidents, "explain_window", "explain"),
        (explain, "_select_metrics", "select"),
        (explain, "read_blocks", "read"),
        (explain, "window_evidence", "evidence"),
        (explain, "rank_evidence", "rank"),
        (incidents, "_involved", "involved"),
        (incidents, "classify", "classify"),
    ]
    best: Parts | None = None
    info: dict[str, float] = {}
    with Store(path) as store:
        con = store.cursor()
        for _ in range(repeat):
            for table in ("incident_metrics", "incident_anomalies", "incidents"):
                con.execute(f"DELETE FROM {table}")
            parts = Parts()
            with parts.wrap(targets):
                w, c = time.perf_counter(), time.process_time()
                report = incidents.update_incidents(
                    store, now=T + 15 * STEP, since=T - pd.Timedelta("1D"), rerank_unchanged=False
                )
                parts.wall["update"] = time.perf_counter() - w
                parts.cpu["update"] = time.process_time() - c
            assert len(report.created) == 1, report
            if best is None or parts.wall["update"] < best.wall["update"]:
                best = parts
        drafts = incidents.group_anomalies(
            incidents._read_anomalies(store, since=None, split_label=None), merge_gap=pd.Timedelta("5min")
        )
        draft = drafts[0]
        end = max(draft.end + STEP, draft.start + incidents.MIN_WINDOW)
        walls, cpus = [], []
        for _ in range(repeat):
            w, c = time.perf_counter(), time.process_time()
            full = explain.explain_window(
                store, start=draft.start, end=end, metric=draft.peak_metric_id, limit=None
            )
            walls.append(time.perf_counter() - w)
            cpus.append(time.process_time() - c)
        k = int(np.argmin(walls))
        info["reference_wall"], info["reference_cpu"] = walls[k], cpus[k]
        info["involved"] = len(incidents._involved(full.scanned))
        info["metrics"] = full.metrics_scanned
        info["kept"] = float(con.execute("SELECT count(*) FROM incident_metrics").fetchall()[0][0])
    assert best is not None
    return {key: (best.wall.get(key, 0.0), best.cpu.get(key, 0.0)) for key, _ in ROWS}, info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--metrics", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--history-hours", type=int, default=24)
    ap.add_argument("--scored-minutes", type=int, default=15)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--cache", type=Path, default=None, help="keep the built stores here and reuse them")
    args = ap.parse_args()
    types.load_rules()  # parse the shipped rules once, outside the timing
    with contextlib.ExitStack() as stack:
        root = args.cache or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        root.mkdir(parents=True, exist_ok=True)
        results = {}
        with Progress(console=console) as progress:
            for n in args.metrics:
                path = root / f"incidents-{n}-{args.history_hours}h-{args.scored_minutes}s.duckdb"
                if not path.exists():
                    tmp = path.with_suffix(".building")
                    tmp.unlink(missing_ok=True)
                    build_store(tmp, n, args.history_hours, args.scored_minutes, progress)
                    tmp.rename(path)
        for n in args.metrics:
            path = root / f"incidents-{n}-{args.history_hours}h-{args.scored_minutes}s.duckdb"
            console.print(f"measuring {n:,} metrics ...")
            results[n] = measure(path, args.repeat)
    table = Table(
        title=f"Incident update after a tick (best of {args.repeat}; {args.history_hours} h history, "
        f"scores for the last {args.scored_minutes} min, {N_ANOMALIES} anomalies → one incident)"
    )
    table.add_column("part")
    for n in args.metrics:
        table.add_column(f"{n:,} wall s", justify="right")
        table.add_column(f"{n:,} CPU s", justify="right")
    for key, label in ROWS:
        table.add_row(label, *[f"{v:.3f}" for n in args.metrics for v in results[n][0][key]])
    table.add_row(
        "reference: scan with every row formatted",
        *[f"{results[n][1][k]:.3f}" for n in args.metrics for k in ("reference_wall", "reference_cpu")],
    )
    console.print(table)
    for n in args.metrics:
        info = results[n][1]
        console.print(
            f"{n:,} metrics: {int(info['kept'])} rows stored with the incident, "
            f"{int(info['involved'])} metrics involved (typed on)"
        )


if __name__ == "__main__":
    main()
