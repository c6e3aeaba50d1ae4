"""Soak: the scheduler runs many thousands of one-minute ticks on a simulated clock, with retention on.

A log file (JSON lines, rotated daily like logrotate does) gets the events of each simulated minute
before its tick; a monitor counts failed logins per minute and per event type, scores them and alerts a
local webhook receiver when a planted burst appears. Every ``--sample-every`` ticks the script records
the process's RSS, the store file's size and the row count of every growing table; at the end it prints
a table, the slope of RSS and file size over the second half (flat is the result) and writes a plot.

    .venv/bin/python benchmarks/soak.py                     # 20,000 ticks ≈ 2 weeks of minutes
    .venv/bin/python benchmarks/soak.py --ticks 3000 --retention 6h --png soak.png

``run_soak`` is what ``tests/integration/test_soak.py`` runs, bounded.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd

from telewatch.scheduler.jobs import load_config
from telewatch.scheduler.runner import Runner
from telewatch.services.retention import TABLES, RetentionPolicy
from telewatch.store.db import Store

T0 = pd.Timestamp("2026-03-02 00:00", tz="UTC")
COUNTED = TABLES


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc; psutil elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import psutil

        return int(psutil.Process().memory_info().rss)


class Receiver:
    """A webhook endpoint on loopback that counts what it receives (and keeps nothing else)."""

    def __init__(self) -> None:
        self.notifications = 0
        self.firing = 0
        self.resolved = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.notifications += 1
                for alert in body.get("alerts", []):
                    if alert.get("status") == "firing":
                        outer.firing += 1
                    elif alert.get("status") == "resolved":
                        outer.resolved += 1
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


class EventLog:
    """Writes one simulated minute of login events at a time; rotates the file like logrotate."""

    def __init__(self, path: Path, *, seed: int = 7, rate: float = 12.0) -> None:
        self.path = path
        self.rng = np.random.default_rng(seed)
        self.rate = rate
        path.write_text("")

    def write_minute(self, minute: pd.Timestamp, *, burst: bool) -> None:
        fails = 250 if burst else int(self.rng.poisson(self.rate))
        oks = int(self.rng.poisson(self.rate * 3))
        lines = []
        for k in range(fails + oks):
            ts = minute + pd.Timedelta(seconds=59.0 * k / (fails + oks))
            result = "fail" if k < fails else "ok"
            lines.append(f'{{"ts": "{ts.isoformat()}", "event": "login", "result": "{result}"}}\n')
        with self.path.open("a") as fh:
            fh.writelines(lines)

    def rotate(self) -> None:
        os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        self.path.write_text("")


def write_config(directory: Path, *, hook_url: str, step_minutes: int = 1, history: str = "6h") -> Path:
    path = directory / "monitors.yaml"
    path.write_text(
        f"""
alerting:
  channels:
    hook: {{type: webhook, url: "{hook_url}", format: json}}
monitors:
  - name: logins
    owner: "@secops"
    source:
      type: logs
      path: auth.jsonl
      count_by: [result]
      counts: [{{name: failed_logins, where: {{result: fail}}}}]
    schedule: {{every: {step_minutes}m}}
    history: {history}
    # merge_gap below the points one tick brings: an anomaly resolves only when a single tick holds more
    # than merge_gap points after its end (services/monitor/), so the default 5 never resolves on
    # 1-minute ticks — the alert, its state and its anomaly would stay firing (and kept) for ever
    detector: {{type: robust_bands, merge_gap: {max(0, step_minutes - 1)}}}
    train: {{every: {history}, window: {history}, min_points: 60, warm_up: 0s}}
    alert: {{repeat_interval: 1h}}
    channels: [hook]
"""
    )
    return path


@dataclass
class Sample:
    tick: int
    seconds: float
    rss: int
    file_size: int
    wal_size: int
    rows: dict[str, int]


@dataclass
class SoakResult:
    ticks: int
    seconds: float
    step_minutes: int = 1
    samples: list[Sample] = field(default_factory=list)
    notifications: int = 0
    firing: int = 0
    resolved: int = 0
    anomalies_found: int = 0
    errors: list[str] = field(default_factory=list)
    retention_passes: int = 0
    retention_deleted: int = 0

    def slope(self, attr: str, *, second_half: bool = True) -> float:
        """Least-squares growth of ``rss``, ``file_size``, ``disk`` (file + WAL) or a table's rows per 1,000
        ticks."""
        samples = self.samples[len(self.samples) // 2 :] if second_half else self.samples
        if len(samples) < 2:
            return 0.0
        x = np.array([s.tick for s in samples], dtype=float)
        if attr == "disk":
            y = np.array([s.file_size + s.wal_size for s in samples], dtype=float)
        elif attr in ("rss", "file_size"):
            y = np.array([getattr(s, attr) for s in samples], dtype=float)
        else:
            y = np.array([s.rows[attr] for s in samples], dtype=float)
        return float(np.polyfit(x, y, 1)[0] * 1000.0)


def count_rows(store: Store) -> dict[str, int]:
    cur = store.cursor()
    return {t: int(cur.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in COUNTED}  # type: ignore[index]


def run_soak(
    directory: Path,
    *,
    ticks: int = 20_000,
    sample_every: int = 200,
    retention: RetentionPolicy | None = None,
    step_minutes: int = 1,
    history: str = "6h",
    burst_every: int = 360,
    rotate_every: int = 1440,
    on_sample: Callable[[Sample], None] | None = None,
) -> SoakResult:
    """Run ``ticks`` scheduler passes, ``step_minutes`` apart on a simulated clock, over a growing log.

    A 3-minute burst of failed logins is planted every ``burst_every`` minutes; the log is rotated
    every ``rotate_every`` minutes. Samples every ``sample_every`` ticks.
    """
    policy = retention or RetentionPolicy(
        points=timedelta(days=1),
        scores=timedelta(days=1),
        anomalies=timedelta(days=1),
        alert_history=timedelta(days=1),
        runs=timedelta(hours=12),
        every=timedelta(hours=1),
    )
    log = EventLog(directory / "auth.jsonl")
    result = SoakResult(ticks=ticks, seconds=0.0, step_minutes=step_minutes)
    with receiver() as hook:
        config = load_config(
            write_config(directory, hook_url=hook.url, step_minutes=step_minutes, history=history)
        )
        db = directory / "soak.duckdb"
        clock = {"now": T0}
        with Store(db) as store:
            runner = Runner(config, store=store, clock=lambda: clock["now"], retention=policy)
            started = time.perf_counter()
            for i in range(1, ticks + 1):
                now = T0 + pd.Timedelta(minutes=i * step_minutes)
                for m in range((i - 1) * step_minutes, i * step_minutes):
                    log.write_minute(T0 + pd.Timedelta(minutes=m), burst=(m % burst_every) in (0, 1, 2))
                    if m > 0 and m % rotate_every == 0:
                        log.rotate()
                clock["now"] = now
                for report in runner.run_pending(now):
                    if report.status != "ok":
                        result.errors.append(f"{report.tick}: {report.status}: {report.error}")
                    result.anomalies_found += len(report.anomalies)
                done = runner.retention.last_report
                if done is not None and done.now == now:
                    result.retention_passes += 1
                    result.retention_deleted += done.total
                if i % sample_every == 0 or i == ticks:
                    gc.collect()
                    sample = Sample(
                        tick=i,
                        seconds=time.perf_counter() - started,
                        rss=rss_bytes(),
                        file_size=db.stat().st_size,
                        wal_size=_wal_size(db),
                        rows=count_rows(store),
                    )
                    result.samples.append(sample)
                    if on_sample is not None:
                        on_sample(sample)
            result.seconds = time.perf_counter() - started
        result.notifications, result.firing, result.resolved = hook.notifications, hook.firing, hook.resolved
    return result


def _wal_size(db: Path) -> int:
    wal = db.with_name(db.name + ".wal")
    return wal.stat().st_size if wal.exists() else 0


def plot(result: SoakResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ticks = [s.tick for s in result.samples]
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(9, 9), sharex=True)
    ax1.plot(ticks, [s.rss / 2**20 for s in result.samples], color="#3182bd")
    ax1.set_ylabel("RSS (MiB)")
    ax1.set_title(
        f"soak: {result.ticks:,} ticks {result.step_minutes} simulated minute(s) apart, retention on"
    )
    ax2.plot(ticks, [s.file_size / 2**20 for s in result.samples], color="#e6550d", label="store file")
    ax2.plot(
        ticks,
        [(s.file_size + s.wal_size) / 2**20 for s in result.samples],
        color="#fdae6b",
        label="file + WAL",
    )
    ax2.set_ylabel("MiB")
    ax2.legend(loc="upper left", fontsize=8)
    for table in ("points", "scores", "monitor_runs", "alert_notifications", "anomalies"):
        ax3.plot(ticks, [s.rows[table] for s in result.samples], label=table)
    ax3.set_ylabel("rows")
    ax3.set_xlabel(f"tick ({result.step_minutes} simulated minute(s) each)")
    ax3.legend(loc="upper left", fontsize=8)
    for ax in (ax1, ax2, ax3):
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _policy(text: str) -> RetentionPolicy:
    from telewatch.core.durations import parse_duration

    horizon = parse_duration(text)
    return RetentionPolicy(
        points=horizon,
        scores=horizon,
        anomalies=horizon,
        alert_history=horizon,
        runs=horizon / 2,
        every=min(timedelta(hours=1), horizon / 4),
    )


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from rich.table import Table

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ticks", type=int, default=20_000, help="one-minute ticks to run (default 20,000)")
    parser.add_argument("--every", type=int, default=1, help="minutes between ticks (default 1)")
    parser.add_argument("--sample-every", type=int, default=250, help="ticks between samples")
    parser.add_argument("--retention", default="1d", help="horizon of points, scores, alerts (runs: half)")
    parser.add_argument("--png", type=Path, default=Path("soak.png"), help="where to write the plot")
    parser.add_argument("--csv", type=Path, default=None, help="also append each sample here as it is taken")
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: a temp dir)")
    args = parser.parse_args(argv)
    console = Console()
    policy = _policy(args.retention)
    # the monitor reads no further back than the points are kept
    assert policy.points is not None
    history = args.retention if policy.points < timedelta(hours=6) else "6h"
    with tempfile.TemporaryDirectory(prefix="telewatch-soak-") as tmp:
        directory = args.dir or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        with Progress(
            TextColumn("[bold]soak"),
            BarColumn(),
            TextColumn("{task.completed:,}/{task.total:,} ticks"),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("soak", total=args.ticks, info="")

            if args.csv:
                args.csv.write_text("tick,seconds,rss,file_size,wal_size," + ",".join(COUNTED) + "\n")

            def show(sample: Sample) -> None:
                if args.csv:
                    with args.csv.open("a") as fh:
                        values = [sample.tick, round(sample.seconds, 2), sample.rss, sample.file_size]
                        values += [sample.wal_size, *(sample.rows[t] for t in COUNTED)]
                        fh.write(",".join(map(str, values)) + "\n")
                progress.update(
                    task,
                    completed=sample.tick,
                    info=f"RSS {sample.rss / 2**20:.0f} MiB, store {sample.file_size / 2**20:.1f} MiB",
                )

            result = run_soak(
                directory,
                ticks=args.ticks,
                step_minutes=args.every,
                history=history,
                sample_every=args.sample_every,
                retention=policy,
                on_sample=show,
            )
    table = Table(
        title=f"soak: {result.ticks:,} ticks in {result.seconds:.0f} s ({1000 * result.seconds / result.ticks:.1f} ms/tick)"
    )
    for col in (
        "tick",
        "sim. time",
        "RSS MiB",
        "store + WAL MiB",
        "points",
        "scores",
        "runs",
        "notif.",
        "anomalies",
    ):
        table.add_column(col, justify="right")
    step = max(1, len(result.samples) // 16)
    for s in [*result.samples[::step], result.samples[-1]] if result.samples else []:
        table.add_row(
            f"{s.tick:,}",
            f"{(T0 + pd.Timedelta(minutes=s.tick * args.every)):%m-%d %H:%M}",
            f"{s.rss / 2**20:.1f}",
            f"{s.file_size / 2**20:.2f} + {s.wal_size / 2**20:.2f}",
            f"{s.rows['points']:,}",
            f"{s.rows['scores']:,}",
            f"{s.rows['monitor_runs']:,}",
            f"{s.rows['alert_notifications']:,}",
            f"{s.rows['anomalies']:,}",
        )
    console.print(table)
    console.print(
        f"second half, per 1,000 ticks: RSS {result.slope('rss') / 2**20:+.2f} MiB, store file "
        f"{result.slope('file_size') / 2**20:+.3f} MiB (with WAL {result.slope('disk') / 2**20:+.3f} MiB), "
        f"points {result.slope('points'):+.0f} rows, scores {result.slope('scores'):+.0f} rows, "
        f"runs {result.slope('monitor_runs'):+.0f} rows"
    )
    console.print(
        f"alerts: {result.anomalies_found} anomaly updates, {result.notifications} webhook posts "
        f"({result.firing} firing, {result.resolved} resolved); retention: {result.retention_passes} passes, "
        f"{result.retention_deleted:,} rows deleted; errors: {len(result.errors)}"
    )
    for error in result.errors[:5]:
        console.print(f"  [red]{error}")
    plot(result, args.png)
    console.print(f"plot: {args.png}")
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
