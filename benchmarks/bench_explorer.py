"""Time to first paint of the metric explorer, with a month of 1-minute data for 10 metrics.

Run: ``.venv/bin/python benchmarks/bench_explorer.py [--metrics 10] [--days 30] [--repeat 5]``

Serves telewatch (uvicorn in a thread, a temporary DuckDB store holding ``metrics`` x ``days`` of
1-minute points), opens ``/explore/{id}`` in Debian's headless chromium (Playwright) and reports, as
medians over ``repeat`` page loads (each on a fresh browser context, so nothing is cached):

* navigation start -> the series chart drawn (what a user waits for), in ms;
* the explorer script's own part (series fetch at a resampled step + Plotly draw), in ms;
* zoom to one day -> raw 1-minute points redrawn, in ms;
* the server's share: ``GET /api/series`` for the whole month (resampled) and one day (raw), in ms.

The reference is the raw alternative: sending all 43,200 points of the month to the browser and
drawing them (``raw_month_ms``), which the server-side resampling avoids.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import uvicorn

from telewatch.api.app import create_app
from telewatch.settings import Settings
from telewatch.store import repo
from telewatch.store.db import Store

ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", type=int, default=10)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "bench.duckdb") as store:
        idx = pd.date_range("2024-05-01", periods=args.days * 1440, freq="1min", tz="UTC")
        rng = np.random.default_rng(0)
        with store.transaction(series=True) as tx:
            for k in range(args.metrics):
                mid = repo.upsert_metric(tx, name=f"m{k}", group="bench")
                daily = 10 * np.sin(np.arange(len(idx)) * 2 * np.pi / 1440)
                repo.write_points(tx, mid, pd.Series(100 + daily + rng.normal(0, 1, len(idx)), index=idx))
        port = 18000 + int(time.time()) % 1000
        token = secrets.token_urlsafe(24)  # the API needs a token (docs/security.md)
        auth = {"Authorization": f"Bearer {token}"}
        app = create_app(
            Settings(db_path=Path(tmp) / "unused.duckdb", api_tokens=f"admin:{token}"), store=store
        )
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=60, headers=auth) as http:
            server_ms = {}
            for name, path in (
                ("series_month_resampled_ms", "/api/series/1?step=18min"),
                ("series_one_day_raw_ms", "/api/series/1?from=2024-05-10&to=2024-05-11"),
            ):
                began = time.perf_counter()
                http.get(path).raise_for_status()
                server_ms[name] = round((time.perf_counter() - began) * 1000, 1)
        nav, script, zoom, raw = [], [], [], []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            for i in range(args.repeat):
                context = browser.new_context(  # wait_for_function evaluates a string: past the CSP
                    viewport={"width": 1400, "height": 900}, extra_http_headers=auth, bypass_csp=True
                )
                page = context.new_page()
                page.goto(f"{url}/explore/{i % args.metrics + 1}")
                page.wait_for_selector("#main-chart.drawn", timeout=120_000)
                timing = page.evaluate("() => [window.__tw.firstPaintAt, window.__tw.firstPaintMs]")
                nav.append(timing[0])
                script.append(timing[1])
                began = time.perf_counter()
                page.evaluate(
                    "() => Plotly.relayout(document.getElementById('main-chart'),"
                    " {'xaxis.range': ['2024-05-10 00:00', '2024-05-11 00:00']})"
                )
                page.wait_for_function("() => document.getElementById('main-chart').dataset.step === 'raw'")
                zoom.append((time.perf_counter() - began) * 1000)
                raw.append(
                    page.evaluate(
                        """async () => { const t0 = performance.now();
                        const s = await (await fetch('/api/series/1')).json();
                        const d = document.createElement('div'); document.body.append(d);
                        await Plotly.newPlot(d, [{x: s.t.map((m) => new Date(m)), y: s.v, type: 'scattergl'}]);
                        return performance.now() - t0; }"""
                    )
                )
                context.close()
            browser.close()
        server.should_exit = True
    points = args.metrics * args.days * 1440
    print(f"explorer, {args.metrics} metrics x {args.days} days of 1-minute points ({points:,} values)")
    print(
        f"  navigation -> chart drawn   median {statistics.median(nav):8.0f} ms  (runs: {[round(x) for x in nav]})"
    )
    print(f"  script: fetch + draw        median {statistics.median(script):8.0f} ms")
    print(f"  zoom to one day (raw)       median {statistics.median(zoom):8.0f} ms")
    print(f"  reference: raw month drawn  median {statistics.median(raw):8.0f} ms (43,200 points sent)")
    print(f"  server: {server_ms}")


if __name__ == "__main__":
    main()
