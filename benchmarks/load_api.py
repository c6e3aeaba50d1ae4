"""Load: N concurrent clients on the explorer's data call of a real ``telewatch serve`` on loopback.

Starts ``telewatch serve`` (uvicorn, its own process) on a temporary store holding ``--metrics`` series of
``--days`` of 1-minute points, authenticated with a read token, and for each concurrency level of
``--clients`` runs, ``--seconds`` each:

* ``health``: ``GET /api/health`` (no store, no auth: the baseline of the HTTP stack);
* ``month``: the explorer's first paint of a metric — ``GET /api/series/{id}?from&to&step&agg`` over the
  whole range at the step the explorer asks for (``TARGET_POINTS`` = 2,500 buckets), ``agg`` cycling
  avg/min/max as the explorer fetches all three;
* ``day``: a zoom to one random day — raw 1-minute points (``from``/``to``, no step).

Prints requests/s, p50/p95/p99 latency and errors per scenario and level (``--json`` saves them).

    .venv/bin/python benchmarks/load_api.py                       # --clients 1,8,32 --seconds 4
    .venv/bin/python benchmarks/load_api.py --clients 1,16 --seconds 10 --json load.json
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from telewatch.store import repo
from telewatch.store.db import Store

START = pd.Timestamp("2026-05-01", tz="UTC")
TARGET_POINTS = 2500  # as web/static/explore.js


@dataclass
class LevelResult:
    scenario: str
    clients: int
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def build_store(path: Path, *, metrics: int, days: int) -> list[int]:
    """``metrics`` series of ``days`` of 1-minute points (a daily cycle plus noise); returns their ids."""
    idx = pd.date_range(START, periods=days * 1440, freq="1min")
    rng = np.random.default_rng(0)
    ids = []
    with Store(path) as store, store.transaction(series=True) as tx:
        for k in range(metrics):
            mid = repo.upsert_metric(tx, name=f"load_{k}", labels={"host": f"h{k % 4}"}, group="load")
            daily = 10 * np.sin(np.arange(len(idx)) * 2 * np.pi / 1440)
            repo.write_points(tx, mid, pd.Series(100 + daily + rng.normal(0, 1, len(idx)), index=idx))
            ids.append(mid)
    return ids


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(db: Path, *, tokens: str, workdir: Path) -> Iterator[str]:
    """``telewatch serve`` in its own process; yields its base URL once /api/health answers."""
    port = _free_port()
    exe = Path(sys.executable).with_name("telewatch")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "telewatch.cli"]
    env = {**os.environ, "TELEWATCH_API_TOKENS": tokens, "TELEWATCH_DATA_DIR": str(workdir)}
    log = (workdir / "serve.log").open("w")
    proc = subprocess.Popen(
        [*cmd, "serve", "--db", str(db), "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"telewatch serve exited: {(workdir / 'serve.log').read_text()[-2000:]}")
            try:
                if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("telewatch serve did not answer within 60 s")
            time.sleep(0.1)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def explorer_month_step(days: int) -> str:
    """The step explore.js asks for when it shows ``days`` at once."""
    seconds = max(1, math.ceil(days * 86400 / TARGET_POINTS))
    return f"{math.ceil(seconds / 60)}min"


def scenarios(ids: list[int], days: int) -> dict[str, Callable[[random.Random], str]]:
    end = START + pd.Timedelta(days=days)
    step = explorer_month_step(days)
    iso = "%Y-%m-%dT%H:%M:%SZ"

    def month(rng: random.Random) -> str:
        agg = rng.choice(("avg", "min", "max"))
        return f"/api/series/{rng.choice(ids)}?from={START:{iso}}&to={end:{iso}}&step={step}&agg={agg}"

    def day(rng: random.Random) -> str:
        lo = START + pd.Timedelta(days=rng.randrange(days))
        return f"/api/series/{rng.choice(ids)}?from={lo:{iso}}&to={lo + pd.Timedelta(days=1):{iso}}"

    return {"health": lambda rng: "/api/health", "month": month, "day": day}


def _level(
    url: str,
    path_for: Callable[[random.Random], str],
    *,
    clients: int,
    seconds: float,
    headers: dict[str, str],
) -> tuple[list[float], int, float]:
    """``clients`` threads, each on its own keep-alive connection, requesting back to back.

    Plain ``http.client`` on threads: an ``httpx.AsyncClient`` with 32 connections spends more CPU in
    its own pool than the server spends answering, and measured itself (health fell from ~220 to ~25
    requests/s at 32 clients with it, while the server kept ~200).
    """
    host, port = url.removeprefix("http://").split(":")
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    deadline = [0.0, 0.0]  # end, start: set once every connection is warm

    def go() -> None:
        deadline[1] = time.perf_counter()
        deadline[0] = deadline[1] + seconds

    start_line = threading.Barrier(clients + 1, action=go)

    def worker(k: int) -> None:
        rng = random.Random(1000 + k)
        con = http.client.HTTPConnection(host, int(port), timeout=30)
        con.request("GET", path_for(rng), headers=headers)  # warm-up, not counted
        con.getresponse().read()
        start_line.wait()
        while time.perf_counter() < deadline[0]:
            t0 = time.perf_counter()
            try:
                con.request("GET", path_for(rng), headers=headers)
                response = con.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                con.close()
                con = http.client.HTTPConnection(host, int(port), timeout=30)
            latencies[k].append(time.perf_counter() - t0)
            errors[k] += not ok
        con.close()

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(clients)]
    for thread in threads:
        thread.start()
    start_line.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - deadline[1]
    return [x for per in latencies for x in per], sum(errors), elapsed


def run_level(
    url: str,
    scenario: str,
    path_for: Callable[[random.Random], str],
    *,
    clients: int,
    seconds: float,
    headers: dict[str, str],
) -> LevelResult:
    latencies, errors, elapsed = _level(url, path_for, clients=clients, seconds=seconds, headers=headers)
    ms = np.array(latencies) * 1000.0 if latencies else np.array([float("nan")])
    return LevelResult(
        scenario=scenario,
        clients=clients,
        requests=len(latencies),
        seconds=elapsed,
        errors=errors,
        p50_ms=float(np.percentile(ms, 50)),
        p95_ms=float(np.percentile(ms, 95)),
        p99_ms=float(np.percentile(ms, 99)),
        max_ms=float(ms.max()),
    )


def run_load(
    *,
    clients: list[int],
    seconds: float,
    metrics: int,
    days: int,
    only: list[str] | None = None,
    on_result: Callable[[LevelResult], None] | None = None,
) -> list[LevelResult]:
    """Build a store, serve it, and load each scenario at each concurrency level."""
    read_token = secrets.token_urlsafe(24)
    tokens = f"admin:{secrets.token_urlsafe(24)},read:{read_token}"
    headers = {"Authorization": f"Bearer {read_token}"}
    results: list[LevelResult] = []
    with tempfile.TemporaryDirectory(prefix="telewatch-load-") as tmp:
        workdir = Path(tmp)
        db = workdir / "load.duckdb"
        ids = build_store(db, metrics=metrics, days=days)
        with serve(db, tokens=tokens, workdir=workdir) as url:
            # the read token is required: without it the data call is refused
            refused = httpx.get(url + scenarios(ids, days)["day"](random.Random(0))).status_code
            if refused not in (401, 403):
                print(f"warning: the data call without a token answered {refused}, not 401", file=sys.stderr)
            for name, path_for in scenarios(ids, days).items():
                if only and name not in only:
                    continue
                for n in clients:
                    result = run_level(url, name, path_for, clients=n, seconds=seconds, headers=headers)
                    results.append(result)
                    if on_result is not None:
                        on_result(result)
    return results


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", default="1,8,32", help="concurrency levels, comma-separated")
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds per scenario and level")
    parser.add_argument("--metrics", type=int, default=10, help="series in the store")
    parser.add_argument("--days", type=int, default=30, help="days of 1-minute points per series")
    parser.add_argument("--only", default=None, help="scenarios to run (health,month,day)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.clients.split(",") if x.strip()]
    only = args.only.split(",") if args.only else None
    console = Console()
    n_runs = len(levels) * (len(only) if only else 3)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("loading the API", total=n_runs)
        results = run_load(
            clients=levels,
            seconds=args.seconds,
            metrics=args.metrics,
            days=args.days,
            only=only,
            on_result=lambda r: progress.advance(task),
        )
    table = Table(
        title=f"telewatch serve on loopback: {args.metrics} metrics × {args.days} days of 1-minute points, "
        f"{args.seconds:g} s per level"
    )
    for col in ("scenario", "clients", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors"):
        table.add_column(col, justify="left" if col == "scenario" else "right")
    for r in results:
        table.add_row(
            r.scenario,
            str(r.clients),
            f"{r.requests:,}",
            f"{r.rps:,.0f}",
            f"{r.p50_ms:.1f}",
            f"{r.p95_ms:.1f}",
            f"{r.p99_ms:.1f}",
            f"{r.max_ms:.0f}",
            str(r.errors),
        )
    console.print(table)
    console.print(
        f"month = GET /api/series/{{id}}?from&to&step={explorer_month_step(args.days)}&agg=avg|min|max "
        "(the explorer's first paint); day = one day raw (a zoom); health = the HTTP baseline"
    )
    if args.json:
        args.json.write_text(json.dumps([{**asdict(r), "rps": r.rps} for r in results], indent=1))
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
