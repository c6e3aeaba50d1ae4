"""The REST API over a real store, in process (TestClient) and as a served process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from support import free_port
from support.auth import ADMIN_HEADERS, AUTH_ENV, READ_HEADERS, auth_settings
from telewatch.api.app import create_app
from telewatch.store import repo
from telewatch.store.db import Store


@pytest.fixture
def client(store: Store, tmp_path: Path) -> Iterator[TestClient]:
    cur = store.cursor()
    idx = pd.date_range("2024-05-01", periods=600, freq="1min", tz="UTC")
    for name, labels in (("cpu", {"host": "a"}), ("cpu", {"host": "b"}), ("rps", {})):
        mid = repo.upsert_metric(
            cur, name=name, labels=labels, unit="%", group="host" if name == "cpu" else "web"
        )
        values = pd.Series(np.linspace(0, 1, 600), index=idx)
        values.iloc[10] = np.nan
        repo.write_points(cur, mid, values)
    settings = auth_settings(db_path=tmp_path / "unused.duckdb", max_points_per_response=500)
    with TestClient(create_app(settings, store=store), headers=ADMIN_HEADERS) as c:
        yield c


def test_health(client: TestClient) -> None:
    body = client.get("/api/health").json()
    assert body["status"] == "ok"
    assert body["metrics"] == 3
    assert body["schema_version"] >= 2


def test_metrics_list_and_filters(client: TestClient) -> None:
    all_metrics = client.get("/api/metrics").json()
    assert len(all_metrics) == 3
    assert {m["points"] for m in all_metrics} == {599}
    assert {m["missing"] for m in all_metrics} == {1}
    assert len(client.get("/api/metrics", params={"group": "host"}).json()) == 2
    only_b = client.get("/api/metrics", params={"selector": "host=b"}).json()
    assert [m["labels"] for m in only_b] == [{"host": "b"}]
    bad = client.get("/api/metrics", params={"selector": "nonsense"})
    assert bad.status_code == 400
    assert "key=value" in bad.json()["detail"]


def test_series_by_name_window_and_step(client: TestClient) -> None:
    body = client.get("/api/series/rps", params={"from": "2024-05-01T00:00", "to": "2024-05-01T00:30"}).json()
    assert len(body["t"]) == 30
    assert body["v"][10] is None  # missing stays missing
    assert body["t"][0] == int(pd.Timestamp("2024-05-01", tz="UTC").timestamp() * 1000)
    stepped = client.get("/api/series/rps", params={"step": "1h"}).json()
    assert stepped["step_seconds"] == 3600
    assert len(stepped["t"]) == 10


def test_series_is_downsampled_past_the_point_limit(client: TestClient) -> None:
    body = client.get("/api/series/rps").json()  # 600 points, limit 500
    assert body["step_seconds"] is not None
    assert len(body["t"]) <= 500


def test_series_errors_are_clear_4xx(client: TestClient) -> None:
    r = client.get("/api/series/nope")
    assert r.status_code == 404
    assert "nope" in r.json()["detail"]
    r = client.get("/api/series/cpu")
    assert r.status_code == 400
    assert "slices" in r.json()["detail"]
    assert client.get("/api/series/cpu", params={"labels": "host=a"}).status_code == 200
    r = client.get("/api/series/rps", params={"from": "yesterday-ish"})
    assert r.status_code == 400
    assert "from" in r.json()["detail"]
    r = client.get("/api/series/rps", params={"step": "banana"})
    assert r.status_code == 400
    r = client.get("/api/series/rps", params={"agg": "drop table"})
    assert r.status_code == 422
    r = client.get("/api/series/rps", params={"from": "2024-05-02", "to": "2024-05-01"})
    assert r.status_code == 400
    assert "empty" in r.json()["detail"]


def test_upload_stores_file_and_reports_errors(client: TestClient) -> None:
    good = b"timestamp,a,b\n2024-05-01 00:00,1,2\n2024-05-01 00:01,,3\n"
    r = client.post("/api/ingest", files={"file": ("m.csv", good, "text/csv")}, data={"group": "up"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["points"] == 3
    assert {s["name"]: s["missing"] for s in body["series"]} == {"a": 1, "b": 0}
    bad = b"timestamp,a\n2024-05-01 00:00,1\n2024-05-01 00:01,abc\n"
    r = client.post("/api/ingest", files={"file": ("bad.csv", bad, "text/csv")})
    assert r.status_code == 400
    err = r.json()
    assert (err["line"], err["column"]) == (3, "a")
    assert len(client.get("/api/metrics", params={"group": "up"}).json()) == 2


def test_openapi_lists_the_endpoints_and_docs_are_offline(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/health", "/api/metrics", "/api/series/{metric}", "/api/ingest", "/api/anomalies"):
        assert path in paths
    params = {p["name"] for p in paths["/api/series/{metric}"]["get"]["parameters"]}
    assert {"from", "to", "step"} <= params
    html = client.get("/docs").text
    assert "cdn" not in html.lower()
    for src in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert src.startswith("/"), src
        assert client.get(src).status_code == 200, src


def test_index_page_lists_metrics_with_local_assets_only(client: TestClient) -> None:
    html = client.get("/").text
    assert html.count('class="metric"') == 3
    for src in re.findall(r'(?:src|href)="([^"]+)"', html):
        if src.startswith(("/?", "?")):  # this page with a query (the language switch)
            continue
        assert src.startswith("/"), f"external asset {src}"
        r = client.get(src)
        assert r.status_code == 200, src
    assert "Plotly" in client.get("/static/plotly.min.js").text[:5000]


def test_served_process_answers_over_http(tmp_path: Path) -> None:
    db = tmp_path / "served.duckdb"
    with Store(db) as s:
        repo.upsert_metric(s.cursor(), name="up")
    port = free_port()
    exe = Path(sys.executable).parent / "telewatch"
    proc = subprocess.Popen(
        [str(exe), "serve", "--db", str(db), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, **AUTH_ENV},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        assert r.json()["metrics"] == 1
        assert "telewatch" in httpx.get(f"http://127.0.0.1:{port}/", timeout=5, headers=READ_HEADERS).text
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_alert_chart_links_open_the_explorer_on_that_metric(client: TestClient) -> None:
    """Alerts link to /explore?metric=NAME&labels=SLICE: the page must select that metric's slice."""
    ids = {(m["name"], tuple(m["labels"].items())): m["id"] for m in client.get("/api/metrics").json()}
    html = client.get("/explore", params={"metric": "cpu", "labels": "host=b"}).text
    assert f'<option value="{ids[("cpu", (("host", "b"),))]}" translate="no" selected' in html
    assert client.get("/explore", params={"metric": "nope"}).status_code == 404


def test_served_process_runs_the_monitors_schedule_beside_the_ui(tmp_path: Path) -> None:
    """`telewatch serve --monitors FILE`: one process owns the store, serves the UI and runs the ticks,
    so the monitors' state is readable over the API while they run."""
    now = pd.Timestamp.now(tz="UTC").floor("min")
    lines = [
        f'{{"ts": "{(now - pd.Timedelta(minutes=m)).isoformat()}", "event": "login"}}' for m in range(1, 30)
    ]
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    monitors = tmp_path / "monitors.yaml"
    monitors.write_text(
        "monitors:\n  - name: logins\n    source: {type: logs, path: events.jsonl, count_by: [event]}\n"
        "    schedule: {every: 1m}\n    history: 1h\n",
        encoding="utf-8",
    )
    port = free_port()
    exe = Path(sys.executable).parent / "telewatch"
    proc = subprocess.Popen(
        [
            str(exe),
            "serve",
            "--db",
            str(tmp_path / "s.duckdb"),
            "--port",
            str(port),
            "--monitors",
            str(monitors),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, **AUTH_ENV},
    )
    try:
        deadline = time.monotonic() + 90
        status: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/monitor-status", timeout=2, headers=READ_HEADERS)
                status = r.json() if r.status_code == 200 else []
                if status and status[0].get("last_points"):
                    break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.3)
        assert status, "the monitor never ran"
        assert status[0]["monitor"] == "logins"
        assert status[0]["status"] == "ok"
        assert int(status[0]["last_points"]) > 0  # type: ignore[call-overload]
        names = {
            m["name"] for m in httpx.get(f"http://127.0.0.1:{port}/api/metrics", headers=READ_HEADERS).json()
        }
        assert any(n.startswith("events") for n in names), names
    finally:
        proc.terminate()
        proc.wait(timeout=60)
