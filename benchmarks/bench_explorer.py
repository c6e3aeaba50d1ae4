"""Time to first paint of the metric explorer, with a month of 1-minute data for 10 metrics.

Run: ``.venv/bin/python benchmarks/bench_explorer.py [--metrics 10] [--days 30] [--repeat 5]``

Before and after a change, in one run, on the same data: export the older tree (``git archive REV src |
tar -x -C /tmp/old``) and run this script with ``PYTHONPATH=/tmp/old/src`` and then with ``PYTHONPATH=src``.

Serves telewatch (uvicorn in a thread, a temporary DuckDB store holding ``metrics`` x ``days`` of
1-minute points), opens ``/explore/{id}`` in Debian's headless chromium (Playwright) and reports, as
medians over ``repeat`` page loads (each on a fresh browser context, so nothing is cached):

* navigation start -> first contentful paint (the page's frame and words), in ms;
* navigation start -> the series visible (the light preview drawn while Plotly loads, where the page has
  one; otherwise the chart) — the meaningful paint — in ms;
* navigation start -> the series chart drawn (interactive, Plotly), in ms;
* the same three on a second visit in the same browser context (what a returning user sees: cached
  scripts), and the bytes the first visit transferred;
* the explorer script's own part (series fetch at a resampled step + Plotly draw), in ms;
* zoom to one day -> raw 1-minute points redrawn, in ms;
* first contentful paint of the overview, a window scan and an incident page (fresh contexts), in ms;
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
from telewatch.services.incidents import update_incidents
from telewatch.settings import Settings
from telewatch.store import repo
from telewatch.store.db import Store

PAGES = {  # the other pages whose first paint is measured
    "overview": "/",
    "scan": "/scan?from=2024-05-10T10:00Z&to=2024-05-10T11:00Z",
    "incident": "/incidents/1",
}
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
        at = pd.Timestamp("2024-05-10 10:00")  # one stored anomaly, grouped: an incident page to open
        store.cursor().execute(
            "INSERT INTO anomalies (metric_id, detector, start_ts, end_ts, peak_ts, peak_score)"
            " VALUES (1, 'bench', ?, ?, ?, 9.0)",
            [at, at + pd.Timedelta("5min"), at],
        )
        update_incidents(store, now=pd.Timestamp("2024-05-31", tz="UTC"))
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
        fcp, visible, warm_fcp, warm_visible, warm_nav, sent = [], [], [], [], [], []
        fcp_of: dict[str, list[float]] = {}
        paints = """() => [
          (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime,
          window.__tw.previewAt ?? window.__tw.firstPaintAt, window.__tw.firstPaintAt,
          performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))
            .reduce((n, e) => n + (e.transferSize || 0), 0)]"""
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
                p = page.evaluate(paints)
                fcp.append(p[0])
                visible.append(p[1])
                sent.append(p[3])
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
                # a second visit in the same context: scripts come from the browser's cache (after the
                # first page's ad-hoc detection, which keeps the server busy, has answered)
                page.wait_for_selector("#detect-table", timeout=120_000)
                page.goto(f"{url}/explore/{(i + 1) % args.metrics + 1}")
                page.wait_for_selector("#main-chart.drawn", timeout=120_000)
                p = page.evaluate(paints)
                warm_fcp.append(p[0])
                warm_visible.append(p[1])
                warm_nav.append(p[2])
                context.close()
            # first contentful paint of the other pages, each on a fresh context
            for name, path in PAGES.items():
                for _ in range(args.repeat):
                    context = browser.new_context(
                        viewport={"width": 1400, "height": 900}, extra_http_headers=auth
                    )
                    page = context.new_page()
                    page.goto(f"{url}{path}", wait_until="load")
                    page.wait_for_timeout(200)
                    fcp_of.setdefault(name, []).append(
                        page.evaluate(
                            "() => (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime"
                        )
                    )
                    context.close()
            browser.close()
        server.should_exit = True
    points = args.metrics * args.days * 1440
    print(f"explorer, {args.metrics} metrics x {args.days} days of 1-minute points ({points:,} values)")
    med = statistics.median
    print(f"  first contentful paint      median {med(fcp):8.0f} ms  (runs: {[round(x) for x in fcp]})")
    print(
        f"  navigation -> series shown  median {med(visible):8.0f} ms  (runs: {[round(x) for x in visible]})"
    )
    print(f"  navigation -> chart drawn   median {med(nav):8.0f} ms  (runs: {[round(x) for x in nav]})")
    print(f"  transferred, first visit    median {med(sent) / 1e6:8.2f} MB")
    print(
        f"  second visit (cached): contentful paint {med(warm_fcp):.0f} ms, series shown"
        f" {med(warm_visible):.0f} ms, chart drawn {med(warm_nav):.0f} ms"
    )
    for name, runs in fcp_of.items():
        print(
            f"  first contentful paint, {name:9s} median {med(runs):6.0f} ms  (runs: {[round(x) for x in runs]})"
        )
    print(f"  script: fetch + draw        median {statistics.median(script):8.0f} ms")
    print(f"  zoom to one day (raw)       median {statistics.median(zoom):8.0f} ms")
    print(f"  reference: raw month drawn  median {statistics.median(raw):8.0f} ms (43,200 points sent)")
    print(f"  server: {server_ms}")


if __name__ == "__main__":
    main()
