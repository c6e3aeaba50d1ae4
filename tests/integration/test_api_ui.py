"""The UI's REST API over a real store: ad-hoc detection, decomposition, window scan, overview, feedback,
notes, upload preview, Prometheus /metrics and the pages — good input and bad (clear 4xx, never 500)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from support.auth import ADMIN_HEADERS, auth_settings
from telewatch.api.app import create_app
from telewatch.store import repo
from telewatch.store.db import Store

START = pd.Timestamp("2024-05-01", tz="UTC")
N = 3 * 1440


@pytest.fixture
def client(store: Store, tmp_path: Path) -> Iterator[TestClient]:
    idx = pd.date_range(START, periods=N, freq="1min")
    rng = np.random.default_rng(3)
    cur = store.cursor()
    daily = np.sin(np.arange(N) * 2 * np.pi / 1440)
    for name, labels, group in (
        ("latency", {"host": "a"}, "web"),
        ("errors", {"host": "a"}, "web"),
        ("cpu", {"host": "a"}, "host"),
    ):
        mid = repo.upsert_metric(cur, name=name, labels=labels, group=group, unit="x")
        values = 100 + 10 * daily + rng.normal(0, 1, N)
        if name != "cpu":
            values[2 * 1440 + 600 : 2 * 1440 + 620] += 80  # a shared incident on day 3, 10:00
        repo.write_points(cur, mid, pd.Series(values, index=idx))
    settings = auth_settings(db_path=tmp_path / "unused.duckdb")
    with TestClient(
        create_app(settings, store=store), raise_server_exceptions=False, headers=ADMIN_HEADERS
    ) as c:
        yield c


def _err(r: object, status: int) -> dict[str, object]:
    assert r.status_code == status, (r.status_code, r.text)  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    assert set(body) >= {"detail", "error"}, body
    assert body["detail"], body
    return body  # type: ignore[no-any-return]


def test_detectors_are_listed_with_their_parameters(client: TestClient) -> None:
    body = client.get("/api/detectors").json()
    names = {d["name"]: d for d in body}
    assert "robust_bands" in names
    assert names["robust_bands"]["params"]["window"] == 288


def test_detect_a_stored_metric_with_two_detectors(client: TestClient) -> None:
    r = client.post(
        "/api/detect",
        json={
            "metric": "latency",
            "detectors": [{"name": "robust_bands", "params": {"window": 60}}, {"name": "robust_z"}],
            "max_points": 500,
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["points"] == N
    assert body["metric"]["name"] == "latency"
    assert len(body["series"]["t"]) <= 500
    assert body["band"] is not None
    assert len(body["band"]["t"]) <= 500
    first = body["results"][0]
    assert first["detector"] == "robust_bands"
    assert first["error"] is None
    starts = [pd.Timestamp(a["start"]) for a in first["anomalies"]]
    incident = START + pd.Timedelta(days=2, minutes=600)
    assert any(abs(s - incident) <= pd.Timedelta(minutes=5) for s in starts), starts
    assert len(body["results"][1]["scores"]["t"]) <= 500


def test_detect_a_window_and_uploaded_values(client: TestClient) -> None:
    windowed = client.post(
        "/api/detect",
        json={
            "metric": "1",
            "from": "2024-05-03T00:00Z",
            "to": "2024-05-03T12:00Z",
            "detectors": [{"name": "robust_z"}],
        },
    ).json()
    assert windowed["points"] == 720
    t = [int((START + pd.Timedelta(minutes=i)).timestamp() * 1000) for i in range(300)]
    v: list[float | None] = [float(np.sin(i / 10)) for i in range(300)]
    v[250] = 40.0
    v[10] = None
    r = client.post(
        "/api/detect",
        json={"data": {"t": t, "v": v}, "detectors": [{"name": "robust_bands", "params": {"window": 30}}]},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["metric"] is None
    peaks = [pd.Timestamp(a["peak"]) for a in body["results"][0]["anomalies"]]
    assert START + pd.Timedelta(minutes=250) in peaks


def test_detect_calibrated_scores_share_one_threshold(client: TestClient) -> None:
    body = client.post(
        "/api/detect",
        json={
            "metric": "latency",
            "calibrate": True,
            "train_share": 0.5,
            "detectors": [{"name": "robust_bands"}],
        },
    ).json()
    assert body["threshold"] == 5.0
    assert body["results"][0]["anomalies"], "the day-3 incident lies outside the training half"


@pytest.mark.parametrize(
    ("payload", "status", "needle"),
    [
        ({"metric": "latency", "detectors": [{"name": "nope"}]}, 400, "unknown detector"),
        (
            {"metric": "latency", "detectors": [{"name": "robust_bands", "params": {"bogus": 1}}]},
            400,
            "bogus",
        ),
        ({"metric": "missing", "detectors": [{"name": "robust_z"}]}, 404, "missing"),
        ({"metric": "latency", "detectors": []}, 422, "detectors"),
        ({"detectors": [{"name": "robust_z"}]}, 400, "metric"),
        ({"metric": "latency", "from": "yesterday", "detectors": [{"name": "robust_z"}]}, 400, "from"),
        (
            {
                "metric": "latency",
                "from": "2024-05-02",
                "to": "2024-05-01",
                "detectors": [{"name": "robust_z"}],
            },
            400,
            "empty",
        ),
        ({"data": {"t": [1, 2], "v": [1.0]}, "detectors": [{"name": "robust_z"}]}, 400, "2 timestamps"),
        (
            {"data": {"t": ["x", "y"], "v": [1.0, 2.0]}, "detectors": [{"name": "robust_z"}]},
            400,
            "timestamps",
        ),
        (
            {"data": {"t": [1, 1], "v": [1.0, 2.0]}, "detectors": [{"name": "robust_z"}]},
            400,
            "more than once",
        ),
        ({"data": {"t": [1, 2], "v": [None, None]}, "detectors": [{"name": "robust_z"}]}, 400, "no values"),
        (
            {"metric": "latency", "data": {"t": [1], "v": [1.0]}, "detectors": [{"name": "robust_z"}]},
            400,
            "not both",
        ),
        ({"metric": "latency", "min_points": 0, "detectors": [{"name": "robust_z"}]}, 422, "min_points"),
        ({"metric": "latency", "step": "banana", "detectors": [{"name": "robust_z"}]}, 400, "step"),
    ],
)
def test_detect_rejects_bad_input_clearly(
    client: TestClient, payload: dict[str, object], status: int, needle: str
) -> None:
    body = _err(client.post("/api/detect", json=payload), status)
    assert needle in str(body["detail"]), body


def test_a_bad_parameter_value_fails_that_detector_only(client: TestClient) -> None:
    body = client.post(
        "/api/detect",
        json={
            "metric": "latency",
            "detectors": [{"name": "robust_bands", "params": {"window": "wide"}}, {"name": "robust_z"}],
        },
    ).json()
    assert body["results"][0]["error"]
    assert body["results"][1]["error"] is None


def test_run_detection_stores_anomalies(client: TestClient, store: Store) -> None:
    r = client.post(
        "/api/detect/run", json={"metric_ids": [1], "detector": {"name": "robust_bands"}, "threshold": 3}
    )
    assert r.status_code == 200, r.text
    assert r.json()["metrics"] == 1
    stored = client.get("/api/anomalies", params={"metric": 1}).json()
    assert len(stored) == r.json()["anomalies"] >= 1
    _err(client.post("/api/detect/run", json={"metric_ids": [99]}), 404)
    _err(client.post("/api/detect/run", json={"detector": {"name": "nope"}}), 400)


def test_decomposition_has_trend_daily_and_residual(client: TestClient) -> None:
    body = client.get("/api/decompose/latency").json()
    assert body["daily"] is not None
    assert body["weekly"] is None
    obs, trend = np.array(body["observed"], float), np.array(body["trend"], float)
    daily, resid = np.array(body["daily"], float), np.array(body["residual"], float)
    assert np.allclose(obs, trend + daily + resid, atol=1e-6)
    assert np.ptp(daily) > 10  # the 20-unit daily swing
    assert abs(float(np.median(trend)) - 100) < 5
    _err(client.get("/api/decompose/nope"), 404)
    _err(client.get("/api/decompose/latency", params={"from": "2024-06-01"}), 400)


def test_window_scan_ranks_the_changed_metrics_first(client: TestClient) -> None:
    body = client.post("/api/scan", json={"from": "2024-05-03T10:00Z", "to": "2024-05-03T10:20Z"}).json()
    names = [item["metric"]["name"] for item in body["items"]]
    assert set(names[:2]) == {"latency", "errors"}
    assert "above" in body["items"][0]["reason"]
    only_host = client.post(
        "/api/scan", json={"from": "2024-05-03T10:00Z", "to": "2024-05-03T10:20Z", "group": "host"}
    ).json()
    assert [i["metric"]["name"] for i in only_host["items"]] == ["cpu"]
    _err(client.post("/api/scan", json={"from": "2024-05-03T10:00Z", "to": "2024-05-03T09:00Z"}), 400)
    _err(client.post("/api/scan", json={"to": "2024-05-03T09:00Z"}), 422)


def test_overview_pages_and_filters(client: TestClient) -> None:
    client.post("/api/detect/run", json={"detector": {"name": "robust_bands"}, "threshold": 3})
    body = client.get("/api/overview").json()
    assert body["total"] == 3
    assert body["groups"] == ["host", "web"]
    first = body["items"][0]
    assert len(first["spark"]) == 48
    assert first["anomalies"] >= 1
    assert first["anomaly_rate"] > 0
    page = client.get("/api/overview", params={"limit": 1, "offset": 1}).json()
    assert page["total"] == 3
    assert len(page["items"]) == 1
    assert page["offset"] == 1
    assert client.get("/api/overview", params={"group": "host"}).json()["total"] == 1
    assert client.get("/api/overview", params={"selector": "host=b"}).json()["total"] == 0
    _err(client.get("/api/overview", params={"selector": "oops"}), 400)
    _err(client.get("/api/overview", params={"limit": 0}), 422)


def test_feedback_becomes_labelled_windows(client: TestClient, store: Store) -> None:
    incident = (
        store.cursor()
        .execute(
            "INSERT INTO incidents (start_ts, end_ts, peak_ts, peak_score, title) VALUES"
            " ('2024-05-03 10:00', '2024-05-03 10:20', '2024-05-03 10:05', 6.0, 'Anomaly: latency') RETURNING id"
        )
        .fetchone()
    )
    assert incident is not None
    r = client.post(
        "/api/feedback",
        json={
            "kind": "false_alarm",
            "metric_ids": [1, 2],
            "start": "2024-05-03T10:00Z",
            "end": "2024-05-03T10:20Z",
            "incident_id": incident[0],
            "note": "deploy",
        },
    )
    assert r.status_code == 201, r.text
    labels = repo.read_label_windows(store.cursor())
    assert sorted(labels["metric_id"]) == [1, 2]
    assert set(labels["source"]) == {"feedback"}
    assert set(labels["kind"]) == {"false_alarm"}
    # a changed mind replaces the verdict on the same window
    client.post(
        "/api/feedback",
        json={
            "kind": "confirmed",
            "metric_ids": [1],
            "start": "2024-05-03T10:00Z",
            "end": "2024-05-03T10:20Z",
        },
    )
    labels = repo.read_label_windows(store.cursor(), 1)
    assert labels["kind"].tolist() == ["confirmed"]
    page = client.get("/api/feedback", params={"incident": incident[0]}).json()
    assert page["total"] == 1
    assert page["items"][0]["note"] == "deploy"
    assert client.get("/api/feedback", params={"limit": 1}).json()["total"] == 2


def test_feedback_on_a_stored_anomaly(client: TestClient, store: Store) -> None:
    client.post(
        "/api/detect/run", json={"metric_ids": [1], "detector": {"name": "robust_bands"}, "threshold": 3}
    )
    anomaly = client.get("/api/anomalies", params={"metric": 1}).json()[0]
    r = client.post("/api/feedback", json={"kind": "expected", "anomaly_id": anomaly["id"]})
    assert r.status_code == 201, r.text
    assert r.json()["metric_ids"] == [1]
    assert pd.Timestamp(r.json()["start"]) == pd.Timestamp(anomaly["start"])


@pytest.mark.parametrize(
    ("payload", "status", "needle"),
    [
        ({"kind": "meh", "metric_ids": [1], "start": "2024-05-01", "end": "2024-05-02"}, 422, "kind"),
        ({"kind": "confirmed", "start": "2024-05-01", "end": "2024-05-02"}, 400, "metric"),
        ({"kind": "confirmed", "metric_ids": [1]}, 400, "start and end"),
        ({"kind": "confirmed", "metric_ids": [1], "start": "2024-05-02", "end": "2024-05-01"}, 400, "before"),
        ({"kind": "confirmed", "metric_ids": [99], "start": "2024-05-01", "end": "2024-05-02"}, 404, "99"),
        ({"kind": "confirmed", "anomaly_id": 12345}, 404, "12345"),
        ({"kind": "confirmed", "metric_ids": [1], "start": "soon", "end": "2024-05-02"}, 400, "start"),
    ],
)
def test_feedback_rejects_bad_input(
    client: TestClient, payload: dict[str, object], status: int, needle: str
) -> None:
    body = _err(client.post("/api/feedback", json=payload), status)
    assert needle in str(body["detail"]), body


def test_incident_notes_and_alerts(client: TestClient, store: Store) -> None:
    row = (
        store.cursor()
        .execute(
            "INSERT INTO incidents (start_ts, end_ts, peak_ts, peak_score, peak_metric_id, state, title)"
            " VALUES (TIMESTAMP '2024-05-03 10:00', TIMESTAMP '2024-05-03 10:20', TIMESTAMP '2024-05-03 10:05',"
            " 9.0, 1, 'open', 't') RETURNING id"
        )
        .fetchall()
    )
    incident = int(row[0][0])
    r = client.post(
        "/api/incident-notes", json={"incident_id": incident, "text": "  looked at it  ", "author": "ana"}
    )
    assert r.status_code == 201, r.text
    notes = client.get("/api/incident-notes", params={"incident": incident}).json()
    assert [(n["text"], n["author"]) for n in notes] == [("looked at it", "ana")]
    _err(client.post("/api/incident-notes", json={"incident_id": incident, "text": ""}), 422)
    missing = _err(client.post("/api/incident-notes", json={"incident_id": incident + 1, "text": "x"}), 404)
    assert f"no incident with id {incident + 1}" in str(missing["detail"])
    _err(client.get("/api/incident-notes", params={"incident": incident + 1}), 404)
    _err(client.get("/api/incident-notes"), 422)
    assert client.get("/api/incident-alerts", params={"incident": incident}).json() == []


def test_ingest_preview_reports_shape_columns_and_rows(client: TestClient) -> None:
    data = "ts\tlatency\terrors\n" + "".join(
        f"2024-06-01 00:{i:02d}:00\t{i}.5\t{'' if i % 2 else i}\n" for i in range(60)
    )
    r = client.post(
        "/api/ingest/preview",
        files={"file": ("x.tsv", data.encode(), "text/tab-separated-values")},
        data={"lines": "21", "show": "5", "timezone": "Europe/Moscow"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["format"], body["shape"], body["header"], body["timestamp_column"]) == (
        "tsv",
        "wide",
        True,
        "ts",
    )
    assert body["columns"] == ["ts", "latency", "errors"]
    assert len(body["rows"]) == 5
    assert body["rows"][1][1] == "0.5"
    assert body["rows_parsed"] == 20
    assert body["lines_in_file"] == 61
    by_name = {s["name"]: s for s in body["series"]}
    assert by_name["errors"]["missing"] == 10
    assert pd.Timestamp(by_name["latency"]["first"]) == pd.Timestamp("2024-05-31T21:00Z")  # Moscow = UTC+3
    # nothing was stored
    assert client.get("/api/metrics").json().__len__() == 3


def test_ingest_preview_of_a_headerless_file_with_names(client: TestClient) -> None:
    data = b"2024-06-01 00:00:00\t1\t2\n2024-06-01 00:01:00\t3\t4\n"
    body = client.post(
        "/api/ingest/preview", files={"file": ("k.tsv", data)}, data={"columns": "t,a,b"}
    ).json()
    assert body["header"] is False
    assert body["columns"] == ["t", "a", "b"]
    assert [s["name"] for s in body["series"]] == ["a", "b"]


@pytest.mark.parametrize(
    ("content", "form", "status", "check"),
    [
        (b"", {}, 400, "empty"),
        (b"timestamp,a\n2024-05-01 00:00,1\n2024-05-01 00:01,abc\n", {}, 400, (3, "a")),
        (b"timestamp,a\n2024-05-01 00:00,1\n", {"format": "xml"}, 422, "format"),
        (b"timestamp,a\n2024-05-01 00:00,1\n", {"timezone": "Mars/Olympus"}, 400, "Mars/Olympus"),
        (b"timestamp,a\n2024-05-01 00:00,1\n", {"lines": "1"}, 422, "lines"),
        (b"\x00\x01binary", {}, 400, "binary"),
    ],
)
def test_ingest_preview_errors_name_line_and_column(
    client: TestClient, content: bytes, form: dict[str, str], status: int, check: object
) -> None:
    body = _err(client.post("/api/ingest/preview", files={"file": ("f.csv", content)}, data=form), status)
    if isinstance(check, tuple):
        assert (body["line"], body["column"]) == check
    else:
        assert str(check) in str(body["detail"]), body


_SAMPLE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? [-+0-9.eEnNaIf]+$'
)


def test_prometheus_metrics_exposition(client: TestClient, store: Store) -> None:
    odd = repo.upsert_metric(store.cursor(), name='odd"name', labels={"a-b": 'x"y\\z', "metric": "clash"})
    repo.write_points(store.cursor(), odd, pd.Series([1.0], index=pd.DatetimeIndex([START])))
    client.post(
        "/api/detect/run", json={"metric_ids": [1], "detector": {"name": "robust_bands"}, "threshold": 3}
    )
    client.post(
        "/api/feedback",
        json={"kind": "confirmed", "metric_ids": [1], "start": "2024-05-01", "end": "2024-05-02"},
    )
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = r.text.strip().splitlines()
    families = set()
    for line in lines:
        if line.startswith("# TYPE"):
            families.add(line.split()[2])
        elif not line.startswith("#"):
            assert _SAMPLE.match(line), line
    assert {"telewatch_up", "telewatch_anomaly_score", "telewatch_incidents", "telewatch_metrics"} <= families
    assert "telewatch_metrics 4.0" in lines
    assert any(
        ln.startswith('telewatch_anomaly_score{metric="latency",detector="robust_bands",host="a"}')
        for ln in lines
    )
    assert 'telewatch_feedback{kind="confirmed"} 1.0' in lines
    assert any('a_b="x\\"y\\\\z"' in ln and 'label_metric="clash"' in ln for ln in lines)


def test_pages_render_and_unknown_paths_answer_json(client: TestClient) -> None:
    for path in ("/", "/explore", "/explore/1", "/scan", "/upload", "/incidents", "/incidents/1", "/alerts"):
        r = client.get(path)
        assert r.status_code == 200, path
        for src in re.findall(r'(?:src|href)="(/static/[^"]+)"', r.text):
            assert client.get(src).status_code == 200, src
    html = client.get("/", params={"group": "web"}).text
    assert html.count('class="metric"') == 2
    assert "not key=value" in client.get("/", params={"selector": "bad"}).text
    missing = client.get("/explore/999")  # the UI's own not-found page (HTML), not a JSON error
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert 'href="/"' in missing.text
    body = _err(client.get("/no/such/page"), 404)
    assert body["error"] == "NotFound"
    _err(client.get("/explore/abc"), 422)


def test_openapi_lists_every_ui_resource(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/detect",
        "/api/detect/run",
        "/api/detectors",
        "/api/decompose/{metric}",
        "/api/scan",
        "/api/overview",
        "/api/feedback",
        "/api/incident-notes",
        "/api/incident-alerts",
        "/api/ingest/preview",
        "/metrics",
    ):
        assert path in paths, path


def test_monitor_status_from_the_store(client: TestClient, store: Store) -> None:
    assert client.get("/api/monitor-status").json() == []
    store.cursor().execute(
        "INSERT INTO monitor_state (monitor, status, attempts, error, last_run_at)"
        " VALUES ('web', 'error', 2, 'source down', TIMESTAMP '2024-05-03 10:00:00')"
    )
    [row] = client.get("/api/monitor-status").json()
    assert (row["monitor"], row["status"], row["attempts"], row["error"]) == (
        "web",
        "error",
        2,
        "source down",
    )
    assert (row["series"], row["runs"]) == (0, 0)


def test_alert_rules_from_the_alerting_config(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TELEWATCH_ALERTING_CONFIG", raising=False)
    body = _err(client.get("/api/alert-rules"), 400)
    assert body["error"] == "ConfigError"
    path = tmp_path / "alerting.yaml"
    path.write_text(
        "channels:\n  hook: {type: webhook, url: 'http://127.0.0.1:9/x'}\n"
        "rules:\n  - {name: web-pages, channels: [hook], match: {groups: [web]}}\n"
    )
    monkeypatch.setenv("TELEWATCH_ALERTING_CONFIG", str(path))
    [rule] = client.get("/api/alert-rules").json()
    assert rule["name"] == "web-pages"
    assert rule["channels"] == ["hook"]
    assert rule["match"]["groups"] == ["web"]
    path.write_text("rules: [{channels: [nowhere]}]\n")
    _err(client.get("/api/alert-rules"), 400)
