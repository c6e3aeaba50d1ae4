"""One scheduled tick over many metrics: the streaming tick against the per-metric tick.

Run: ``.venv/bin/python benchmarks/bench_tick.py [--metrics 10000] [--history-hours 24] [--reference 100]
[--detector novelty] [--params JSON]`` (the detector a monitor runs when it names none, ``novelty``, by default;
``--detector robust_bands`` for the figures from before it was)

Setup (not timed): a temporary store holding ``--history-hours`` of 1-minute points for each of
``--metrics`` metrics (daily cycle, noise, a few planted spikes in the ticks), a fitted model per
metric (written in bulk, as the daily retraining leaves them) and the watermarks of a monitor that
has scored everything so far. The monitor reads an in-process source that serves the newest
5 minutes of every metric at each tick, in columns (a real
:class:`telewatch.sources.base.ColumnarSource`, like the SQL sources: its default incremental fetch,
with the per-series watermarks, runs as for any source).

Rows:

* ``streaming, after a restart``: the first tick of a new process — it reads the models and the
  context tails from the store (one query each) and then keeps them in memory;
* ``streaming``: the following ticks (median of ``--repeat``), the scheduler's steady state;
* ``per-metric tick*``: the reference (``run_monitor(..., streaming=False)``: a few store queries per
  series, the model and a day of context re-read every tick), timed on ``--reference`` metrics and
  extrapolated to all (marked ``*``).

Columns: wall and CPU seconds (this process, all threads) for the whole tick (``run_monitor``:
fetch, store points, score, incidents, state), the CPU seconds of the source's fetch, of storing the
points and of scoring (``_score``: reading new points, scoring, anomalies, writing scores and
state); points scored per second (wall); peak memory growth during the tick (``VmHWM`` after resetting it, minus ``VmRSS``
before); the ratio to the streaming tick. The target from issue 10 (10,000 metrics in under 2 s on
2 cores) is checked at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from telewatch.core.defaults import default_detector
from telewatch.detectors import create_detector
from telewatch.monitors.config import MonitorSpec, parse_monitors
from telewatch.postrules.calibrate import Calibrator
from telewatch.services.monitor import run as monitor_run
from telewatch.services.monitor import state as monitor_state
from telewatch.sources.base import ColumnarSource, FetchedBatch, Source
from telewatch.store.db import Store

T = pd.Timestamp("2026-03-02 00:00", tz="UTC")  # the first timed tick is T + 5 min
STEP = pd.Timedelta(minutes=1)
DETECTOR = default_detector()  # what a monitor without a ``detector:`` runs
PARAMS: dict[str, Any] = {}  # its parameters (``--params``)
SPIKE_EVERY = 2 * 1440  # a 3-minute spike per metric every 2 days: ~17 new anomalies per tick at 10,000


def values_at(minutes: np.ndarray, metrics: np.ndarray) -> np.ndarray:
    """Deterministic values (metrics × minutes): a daily cycle, noise, a spike every ~3 hours."""
    minutes = minutes + 100_000
    ids = np.asarray(metrics)[:, None]
    level = 100.0 + (ids % 97)
    phase = (ids % 13) / 13.0 * 2 * np.pi
    noise = np.sin(minutes[None, :] * 12.9898 + ids * 78.233) * 43758.5453
    noise = (noise - np.floor(noise)) - 0.5
    x = level * (1 + 0.2 * np.sin(2 * np.pi * minutes[None, :] / 1440 + phase)) + 4 * noise
    spikes = (minutes[None, :] + ids * 7) % SPIKE_EVERY < 3  # 3 points: long enough to alarm
    return np.where(spikes, x * 1.8, x)


class MinuteSource(ColumnarSource):
    """Serves every metric's 1-minute points in ``[start, end)`` (computed, so any range exists), in
    columns as the SQL sources do; the incremental fetch with its per-series watermarks is the
    library's own (:meth:`ColumnarSource.fetch_incremental_batch`)."""

    kind = "bench"

    def __init__(self, n_metrics: int) -> None:
        self.n_metrics = n_metrics
        self.names = [f"m{i:05d}" for i in range(n_metrics)]

    def fetch_batch(self, *, start: pd.Timestamp, end: pd.Timestamp) -> FetchedBatch:
        first = int(np.ceil((start - T) / STEP))
        last = int(np.ceil((end - T) / STEP))
        minutes = np.arange(first, max(first, last))
        stamps = np.asarray(pd.DatetimeIndex(T + minutes * STEP).as_unit("ns").asi8, dtype="int64")
        x = values_at(minutes, np.arange(self.n_metrics))
        return FetchedBatch(
            names=list(self.names),
            labels=[{} for _ in self.names],
            ts=np.tile(stamps, self.n_metrics),
            values=x.ravel(),
            offsets=np.arange(self.n_metrics + 1, dtype="int64") * minutes.size,
        )


def monitor_spec() -> MonitorSpec:
    return parse_monitors(
        {
            "monitors": [
                {
                    "name": "bench",
                    "source": {"type": "logs", "path": "unused", "count_by": ["event"]},
                    "schedule": {"every": "5m"},
                    "history": "1d",
                    "train": {"every": "7d", "window": "1d", "min_points": 60, "warm_up": "0s"},
                    "detector": {"type": DETECTOR, "params": PARAMS},
                }
            ]
        }
    ).monitors[0]


def build_store(path: Path, spec: MonitorSpec, n_metrics: int, hours: int, progress: Progress) -> None:
    """History, models and watermarks of ``n_metrics`` metrics, written in bulk. The points are
    written in time order, hour by hour for all metrics, as a monitor's ticks leave a store (the
    time-ordered row groups let DuckDB's zone maps skip what a time range does not need)."""
    minutes = np.arange(-hours * 60, 0)
    index = pd.DatetimeIndex(T + minutes * STEP).tz_localize(None).astype("datetime64[us]")
    names = MinuteSource(n_metrics).names
    task = progress.add_task(f"store: {n_metrics:,} metrics × {hours} h", total=n_metrics)
    with Store(path) as store:
        con = store.cursor()
        con.register("_names", pd.DataFrame({"name": names}))
        con.execute("INSERT INTO metrics (name) SELECT name FROM _names ORDER BY name")
        con.unregister("_names")
        ids = dict(con.execute("SELECT name, id FROM metrics").fetchall())
        all_ids = np.array([ids[n] for n in names], dtype="int32")
        for hour in range(hours):
            part = slice(hour * 60, (hour + 1) * 60)
            x = values_at(minutes[part], np.arange(n_metrics))
            frame = pd.DataFrame(
                {
                    "metric_id": np.tile(all_ids, 60),
                    "ts": np.repeat(index.to_numpy()[part], n_metrics),
                    "value": x.T.ravel(),
                }
            )
            con.register("_pts", frame)
            con.execute("INSERT INTO points SELECT * FROM _pts")
            con.unregister("_pts")
        chunk = 500
        for lo in range(0, n_metrics, chunk):
            x = values_at(minutes, np.arange(lo, min(lo + chunk, n_metrics)))
            models = []
            for i in range(x.shape[0]):
                s = pd.Series(x[i], index=pd.DatetimeIndex(index).tz_localize("UTC"))
                model = create_detector(DETECTOR, **PARAMS).fit(s)
                # as a monitor's training leaves it: with the calibrator of its own scores (ticks
                # compare calibrated z's with the threshold)
                model.calibrator_ = Calibrator().train(model.score(s).to_numpy())  # type: ignore[attr-defined]
                # ... and the span it was trained on (a tick's memory for novelty's kind)
                model.trained_span_ = s.index[-1] - s.index[0]  # type: ignore[attr-defined]
                models.append(model.dumps())
            con.register(
                "_models",
                pd.DataFrame(
                    {
                        "metric_id": np.array([ids[n] for n in names[lo : lo + chunk]], dtype="int32"),
                        "model": models,
                    }
                ),
            )
            con.execute(
                "INSERT INTO monitor_models (monitor, metric_id, detector, params, trained_at, train_start,"
                " train_end, points, model) SELECT ?, metric_id, ?, ?, ?, ?, ?, ?, model FROM _models",
                [
                    spec.name,
                    DETECTOR,
                    json.dumps(
                        PARAMS, sort_keys=True, default=str
                    ),  # as a monitor's training stores them: the tick keeps the models
                    T.tz_localize(None).to_pydatetime(),
                    index[0].to_pydatetime(),
                    index[-1].to_pydatetime(),
                    len(minutes),
                ],
            )
            con.unregister("_models")
            progress.advance(task, x.shape[0])
        last = index[-1].to_pydatetime()
        con.execute(
            "INSERT INTO monitor_series (monitor, series_key, metric_id, last_point, last_scored)"
            " SELECT ?, name, id, ?, ? FROM metrics",
            [spec.name, last, last],
        )
        cursor = {
            "source": {"last_seen": {n: (T - STEP).isoformat() for n in names}, "cursor": {}},
            "firing": {},
        }
        state = monitor_state.MonitorState(
            monitor=spec.name, last_run_at=T, status="ok", cursor=json.dumps(cursor)
        )
        with store.transaction() as tx:
            monitor_state._save_state(tx, state, spec.fingerprint())
        con.execute("CHECKPOINT")


@contextlib.contextmanager
def peak_growth() -> Iterator[dict[str, float]]:
    """Peak resident memory growth (MiB) of the block: VmHWM after a reset, minus VmRSS before."""
    out: dict[str, float] = {}
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    before = _status("VmRSS")
    yield out
    out["peak_mib"] = max(0.0, (_status("VmHWM") - before) / 1024)


def _status(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1])
    return 0.0


class Phases:
    """Times the phases of a tick: the source's fetch, storing the points, scoring (with the state)."""

    PARTS: ClassVar[dict[str, tuple[Any, tuple[str, ...]]]] = {
        "fetch": (None, ("fetch_incremental_batch",)),
        # patched where the tick looks them up (services.monitor.run)
        "store": (monitor_run, ("_store_points", "_store_points_per_series")),
        "score": (monitor_run, ("_score", "_score_per_metric")),
    }

    def __init__(self, source: Source) -> None:
        self.seconds = dict.fromkeys(self.PARTS, 0.0)  # CPU seconds of this process (all threads)
        self._source = source
        self._saved: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> Phases:
        for part, (owner, names) in self.PARTS.items():
            target = owner if owner is not None else self._source
            for name in names:
                fn = getattr(target, name)
                self._saved.append((target, name, fn))
                setattr(target, name, self._wrap(part, fn))
        return self

    def __exit__(self, *exc: object) -> None:
        for target, name, fn in reversed(self._saved):
            if target is self._source:
                delattr(target, name)  # back to the class's method
            else:
                setattr(target, name, fn)

    def _wrap(self, part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[part] += time.process_time() - started

        return run


@dataclass
class TickTiming:
    seconds: float
    cpu: float
    phases: dict[str, float]
    scored: int
    anomalies: int
    peak_mib: float


def one_tick(
    store: Store, spec: MonitorSpec, source: Source, now: pd.Timestamp, *, streaming: bool
) -> TickTiming:
    with Phases(source) as phases, peak_growth() as mem:
        started, cpu = time.perf_counter(), time.process_time()
        report = monitor_run.run_monitor(spec, store=store, now=now, source=source, streaming=streaming)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if report.status != "ok":
        raise SystemExit(f"tick failed: {report.error}")
    return TickTiming(
        seconds, cpu, dict(phases.seconds), report.scored, len(report.anomalies), mem["peak_mib"]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--metrics", type=int, default=10_000)
    parser.add_argument("--history-hours", type=int, default=24)
    parser.add_argument("--reference", type=int, default=100, help="metrics the per-metric tick is timed on")
    parser.add_argument("--repeat", type=int, default=3, help="steady-state ticks timed (median)")
    parser.add_argument(
        "--detector",
        default=default_detector(),
        help="detector the monitor runs (default: the monitors' default detector, novelty)",
    )
    parser.add_argument(
        "--params", default="{}", help='the detector\'s parameters as JSON, e.g. \'{"channel": "profile"}\''
    )
    args = parser.parse_args()
    from telewatch.core.allocator import tune_allocator

    tune_allocator()  # as the telewatch command sets it (TELEWATCH_MALLOC=system: glibc's own)
    global DETECTOR, PARAMS
    DETECTOR = args.detector
    PARAMS = json.loads(args.params)
    console = Console(width=150)
    spec = monitor_spec()
    rows: list[tuple[str, TickTiming, bool]] = []
    steady: list[TickTiming] = []
    with tempfile.TemporaryDirectory(prefix="tw-bench-tick-") as tmp, Progress(console=console) as progress:
        main_path, ref_path = Path(tmp) / "tick.duckdb", Path(tmp) / "reference.duckdb"
        build_store(main_path, spec, args.metrics, args.history_hours, progress)
        build_store(ref_path, spec, args.reference, args.history_hours, progress)
        ticks = [T + pd.Timedelta(minutes=5 * (k + 1)) for k in range(args.repeat + 1)]
        task = progress.add_task("ticks", total=2 * len(ticks) + 1)
        source = MinuteSource(args.metrics)
        with Store(main_path) as store:  # a monitor's first streaming tick: no state stored, none in memory
            rows.append(
                (
                    "streaming, first tick (no state yet)",
                    one_tick(store, spec, source, ticks[0], streaming=True),
                    False,
                )
            )
            progress.advance(task)
            for now in ticks[1:]:
                steady.append(one_tick(store, spec, source, now, streaming=True))
                progress.advance(task)
        rows.append(("streaming", median(steady), False))
        with Store(main_path) as store:  # a restarted process: the state is in the store, not in memory
            restart = one_tick(store, spec, source, ticks[-1] + pd.Timedelta(minutes=5), streaming=True)
            rows.append(("streaming, after a restart", restart, False))
            progress.advance(task)
        ref_source = MinuteSource(args.reference)
        with Store(ref_path) as store:
            timings = []
            for now in ticks:
                timings.append(one_tick(store, spec, ref_source, now, streaming=False))
                progress.advance(task)
        rows.append(("per-metric tick*", scaled(median(timings[1:]), args.metrics / args.reference), True))

    base = rows[1][1].seconds
    table = Table(
        title=f"One tick: {args.metrics:,} metrics, the newest 5 minutes each ({DETECTOR} {PARAMS or ''}, 2 cores)"
    )
    columns = (
        "method",
        "wall s",
        "CPU s",
        "fetch CPU s",
        "store CPU s",
        "score CPU s",
        "points",
        "points/s",
        "anomalies",
    )
    for col in (*columns, "peak memory", "ratio"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for name, t, star in rows:
        mark = "*" if star else ""
        table.add_row(
            name,
            f"{t.seconds:.2f}{mark}",
            f"{t.cpu:.2f}{mark}",
            f"{t.phases['fetch']:.2f}{mark}",
            f"{t.phases['store']:.2f}{mark}",
            f"{t.phases['score']:.2f}{mark}",
            f"{t.scored:,}",
            f"{t.scored / t.seconds:,.0f}",
            f"{t.anomalies}",
            f"{t.peak_mib:.0f} MiB",
            f"{t.seconds / base:.2f}",
        )
    console.print(table)
    console.print(
        f"* timed on {args.reference} metrics and extrapolated ×{args.metrics / args.reference:g}."
        " CPU = this process's CPU time (all threads); fetch = the source (here in-process);"
        " tick = fetch + store + score + incidents and bookkeeping."
    )
    tick = rows[1][1]
    own = tick.cpu - tick.phases["fetch"]
    console.print(f"steady ticks: {', '.join(f'{t.seconds:.2f}' for t in steady)} s")
    for what, value in (
        ("the whole tick, wall", tick.seconds),
        ("the whole tick, CPU", tick.cpu),
        ("the tick without the source's fetch, CPU", own),
    ):
        verdict = "met" if value < 2.0 else "NOT met"
        console.print(f"target < 2 s for {args.metrics:,} metrics, {what}: {value:.2f} s ({verdict})")


def median(timings: list[TickTiming]) -> TickTiming:
    return sorted(timings, key=lambda t: t.seconds)[len(timings) // 2]


def scaled(t: TickTiming, factor: float) -> TickTiming:
    return replace(
        t,
        seconds=t.seconds * factor,
        cpu=t.cpu * factor,
        phases={k: v * factor for k, v in t.phases.items()},
        scored=int(t.scored * factor),
        anomalies=round(t.anomalies * factor),
    )


if __name__ == "__main__":
    main()
