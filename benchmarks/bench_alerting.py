"""Cost of alerting: rendering (message, chart), the outbox transaction, and delivery to a local webhook.

Run: ``.venv/bin/python benchmarks/bench_alerting.py [--alerts N]``

Measures, on this machine, with a DuckDB store in a temporary file and a webhook receiver on loopback:

* one message rendered (en Telegram HTML + e-mail HTML + text + subject), in ms;
* one chart PNG (6 h of minute values with the band and the anomaly), in ms;
* ``submit_alerts`` of N firing candidates (distinct keys, no charts; then with charts), total and per alert;
* ``deliver_outbox`` of those N notifications to the webhook, notifications per second (each delivery is
  three store transactions: claim, send, mark sent);
* a second ``submit_alerts`` of the same N (all deduplicated), per alert.

The reference point is Prometheus Alertmanager's typical notification pipeline (a group_wait of 30 s):
what matters here is that the outbox adds milliseconds, not seconds, per alert.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd

from telewatch.alerts.chart import render_chart
from telewatch.alerts.config import parse_alerting_config
from telewatch.alerts.render import AlertEvent, Renderer
from telewatch.alerts.rules import sample_candidate
from telewatch.services.alerting import deliver_outbox, submit_alerts
from telewatch.store.db import Store


class _Hook(BaseHTTPRequestHandler):
    count = 0

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        _Hook.count += 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


def _timed(fn: Any, repeat: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=200)
    args = parser.parse_args()
    n = args.alerts
    now = pd.Timestamp("2026-11-23 12:00", tz="UTC")
    sample = sample_candidate(now=now)
    renderer = Renderer()
    event = AlertEvent(candidate=sample, event="firing", severity="critical", owner="@oncall")
    render_ms = 1000 * _timed(lambda: renderer.render([event], kind="firing", language="en", now=now), 50)
    render_chart(sample)  # warm matplotlib up
    chart_ms = 1000 * _timed(lambda: render_chart(sample), 10)

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for charts in (False, True):
            config = parse_alerting_config(
                {
                    "channels": {"hook": {"type": "webhook", "url": url, "send_chart": charts}},
                    "rules": [{"name": "all", "channels": ["hook"], "group_by_incident": False}],
                }
            )
            with Store(Path(tmp) / f"bench-{charts}.duckdb") as store:
                candidates = [
                    replace(
                        sample_candidate(now=now, metric=f"m{i}", key=f"k{i}", with_series=charts),
                        incident_id=None,
                    )
                    for i in range(n)
                ]
                t = time.perf_counter()
                submit_alerts(store, candidates=candidates, rules=config, now=now)
                submit_s = time.perf_counter() - t
                t = time.perf_counter()
                submit_alerts(store, candidates=candidates, rules=config, now=now + pd.Timedelta(minutes=1))
                again_s = time.perf_counter() - t
                _Hook.count = 0
                t = time.perf_counter()
                deliver_outbox(store, channels=config, now=now)
                deliver_s = time.perf_counter() - t
                assert _Hook.count == n, (_Hook.count, n)
                rows.append(
                    {
                        "charts": charts,
                        "alerts": n,
                        "submit_s": round(submit_s, 3),
                        "submit_ms_per_alert": round(1000 * submit_s / n, 2),
                        "dedup_ms_per_alert": round(1000 * again_s / n, 2),
                        "deliver_s": round(deliver_s, 3),
                        "delivered_per_s": round(n / deliver_s, 1),
                    }
                )
    server.shutdown()
    print(json.dumps({"render_message_ms": round(render_ms, 2), "render_chart_ms": round(chart_ms, 1)}))
    print(
        f"{'charts':>6} {'alerts':>6} {'submit s':>9} {'ms/alert':>9} {'dedup ms/alert':>15} {'deliver s':>10} {'sent/s':>8}"
    )
    for r in rows:
        print(
            f"{r['charts']!s:>6} {r['alerts']:>6} {r['submit_s']:>9} {r['submit_ms_per_alert']:>9}"
            f" {r['dedup_ms_per_alert']:>15} {r['deliver_s']:>10} {r['delivered_per_s']:>8}"
        )


if __name__ == "__main__":
    main()
