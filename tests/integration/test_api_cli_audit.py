"""What a user audit of the CLI and the API found, fixed: each test fails on the code before the fix."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from support.auth import ADMIN_HEADERS, auth_settings
from telewatch import __version__
from telewatch.api.app import create_app
from telewatch.cli.app import app as cli
from telewatch.core.errors import ValidationError
from telewatch.sources.files import IngestOptions
from telewatch.store import repo
from telewatch.store.db import Store

START = pd.Timestamp("2024-03-07", tz="UTC")
runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture
def client(store: Store, tmp_path: Path) -> Iterator[TestClient]:
    cur = store.cursor()
    idx = pd.date_range(START, periods=2 * 1440, freq="1min")
    for name in ("latency_ms", "error_rate"):
        mid = repo.upsert_metric(cur, name=name)
        repo.write_points(cur, mid, pd.Series(np.arange(idx.size, dtype="float64"), index=idx))
    with TestClient(
        create_app(auth_settings(db_path=tmp_path / "unused.duckdb"), store=store),
        raise_server_exceptions=False,
        headers=ADMIN_HEADERS,
    ) as c:
        yield c


def _anomaly(store: Store, metric_id: int, start: pd.Timestamp, end: pd.Timestamp) -> int:
    """A stored novelty anomaly of ``metric_id`` over [start, end] (naive UTC), peaking at its start."""
    row = (
        store.cursor()
        .execute(
            "INSERT INTO anomalies (metric_id, detector, start_ts, end_ts, peak_ts, peak_score)"
            " VALUES (?, 'novelty', ?, ?, ?, 7.0) RETURNING id",
            [metric_id, start, end, start],
        )
        .fetchone()
    )
    assert row is not None
    return int(row[0])


def test_an_offset_whose_plus_arrived_as_a_space_selects_the_right_window(client: TestClient) -> None:
    # "?from=2024-03-07T22:00:00+03:00" typed into a URL unencoded: the "+" arrives as a space
    url = "/api/series/latency_ms?from=2024-03-07T22:00:00+03:00&to=2024-03-07T22:10:00+03:00"
    body = client.get(url).json()
    times = pd.to_datetime(body["t"], unit="ms", utc=True)
    assert times[0] == pd.Timestamp("2024-03-07T19:00Z")
    assert times[-1] == pd.Timestamp("2024-03-07T19:09Z")  # [from, to)
    encoded = client.get(
        "/api/series/latency_ms",
        params={"from": "2024-03-07T22:00:00+03:00", "to": "2024-03-07T22:10:00+03:00"},
    ).json()
    assert encoded == body


def test_a_step_without_a_unit_is_refused(client: TestClient) -> None:
    r = client.get("/api/series/latency_ms", params={"step": "5"})
    assert r.status_code == 400
    assert "needs a unit" in r.json()["detail"]


def test_anomalies_and_labels_take_a_metric_name_or_id(client: TestClient, store: Store) -> None:
    cur = store.cursor()
    mid = repo.get_metric(cur, "error_rate").id
    _anomaly(store, mid, pd.Timestamp("2024-03-07 10:00"), pd.Timestamp("2024-03-07 10:05"))
    by_name = client.get("/api/anomalies", params={"metric": "error_rate"}).json()
    assert [a["metric_id"] for a in by_name] == [mid]
    assert client.get("/api/anomalies", params={"metric": str(mid)}).json() == by_name
    assert client.get("/api/anomalies", params={"metric": "latency_ms"}).json() == []
    missing = client.get("/api/anomalies", params={"metric": "no_such_metric"})
    assert missing.status_code == 404
    assert "no_such_metric" in missing.json()["detail"]
    assert client.get("/api/labels", params={"metric": "error_rate"}).status_code == 200
    assert client.get("/api/labels", params={"metric": "nope"}).status_code == 404


def test_feedback_on_an_incident_checks_it_and_takes_its_window_and_metrics(
    client: TestClient, store: Store
) -> None:
    r = client.post("/api/feedback", json={"kind": "confirmed", "incident_id": 99999, "metric_ids": [1]})
    assert r.status_code == 404
    assert "99999" in r.json()["detail"]
    assert client.get("/api/incident-notes", params={"incident": 99999}).status_code == 404
    cur = store.cursor()
    mid = repo.get_metric(cur, "error_rate").id
    start, end = pd.Timestamp("2024-03-07 10:00"), pd.Timestamp("2024-03-07 10:05")
    anomaly = _anomaly(store, mid, start, end)
    incident = cur.execute(
        "INSERT INTO incidents (start_ts, end_ts, peak_ts, peak_score, peak_metric_id, title)"
        " VALUES (?, ?, ?, 7.0, ?, 'Anomaly: error_rate') RETURNING id",
        [start, end, start, mid],
    ).fetchone()
    assert incident is not None
    cur.execute("INSERT INTO incident_anomalies VALUES (?, ?)", [incident[0], anomaly])
    assert client.get("/api/incident-notes", params={"incident": incident[0]}).json() == []
    made = client.post("/api/feedback", json={"kind": "false_alarm", "incident_id": incident[0]})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["metric_ids"] == [mid]
    assert pd.Timestamp(body["start"]) == start.tz_localize("UTC")
    assert pd.Timestamp(body["end"]) == end.tz_localize("UTC")


def test_ingest_refuses_unknown_option_values(tmp_path: Path) -> None:
    data = tmp_path / "m.csv"
    data.write_text("time,cpu\n2024-01-01T00:00Z,1\n2024-01-01T00:01Z,2\n")
    for option, value in (("--format", "bogus"), ("--shape", "bogus"), ("--duplicates", "bogus")):
        result = runner.invoke(cli, ["ingest", str(data), option, value, "--db", str(tmp_path / "s.duckdb")])
        assert result.exit_code == 2, (option, result.output)
        assert f"'{value}' is not one of" in result.output, result.output
    with Store(tmp_path / "s.duckdb") as s:
        assert repo.list_metrics(s.cursor()) == []  # nothing stored
    with pytest.raises(ValidationError, match="duplicates: 'avg' is not one of last, first"):
        IngestOptions(duplicates="avg")  # type: ignore[arg-type]


def test_version_and_detector_summaries() -> None:
    assert runner.invoke(cli, ["--version"]).output.strip() == f"telewatch {__version__}"
    listed = runner.invoke(cli, ["detectors"]).output
    assert ":class:" not in listed
    assert "``" not in listed


PORTS = "metric,time,value,port\nrx,2024-01-01T00:00Z,1,80\nrx,2024-01-01T00:00Z,2,443\nrx,2024-01-01T00:01Z,3,80\n"


def test_a_numeric_column_that_tells_series_apart_becomes_a_label(client: TestClient) -> None:
    r = client.post("/api/ingest", files={"file": ("ports.csv", PORTS.encode())})
    assert r.status_code == 200, r.text
    body = r.json()
    assert sorted((s["labels"]["port"], s["points"]) for s in body["series"]) == [("443", 1), ("80", 2)]
    assert body["duplicates_resolved"] == 0
    assert any("port taken as labels" in w for w in body["warnings"])
    # a numeric column that does not tell series apart stays ignored, as before
    plain = "metric,time,value,seq\ncpu,2024-01-01T00:00Z,1,1\ncpu,2024-01-01T00:01Z,2,2\n"
    r = client.post("/api/ingest", files={"file": ("seq.csv", plain.encode())})
    assert [s["labels"] for s in r.json()["series"]] == [{}]
    assert any("ignored numeric columns seq" in w for w in r.json()["warnings"])


def test_the_upload_takes_the_reading_options_of_the_cli(client: TestClient) -> None:
    # month/day order cannot be detected: only a timestamp_format reads it
    us = "when;what;host;rx\n03/04/2024 10:00;rx_bytes;a;1\n03/04/2024 10:01;rx_bytes;a;2\n"
    r = client.post(
        "/api/ingest",
        files={"file": ("us.csv", us.encode())},
        data={
            "timestamp_format": "%m/%d/%Y %H:%M",
            "label_columns": "host",
            "value_column": "rx",
            "shape": "long",
            "metric_column": "what",
            "prefix": "edge.",
        },
    )
    assert r.status_code == 200, r.text
    series = r.json()["series"]
    assert [(s["name"], s["labels"]) for s in series] == [("edge.rx_bytes", {"host": "a"})]
    assert pd.Timestamp(series[0]["first"]) == pd.Timestamp("2024-03-04T10:00Z")
    preview = client.post(
        "/api/ingest/preview",
        files={"file": ("ports.csv", PORTS.encode())},
        data={"label_columns": "port"},
    )
    assert preview.status_code == 200, preview.text
    assert sorted(s["labels"]["port"] for s in preview.json()["series"]) == ["443", "80"]


def test_a_bad_detector_parameter_is_named_with_what_was_expected(client: TestClient) -> None:
    body = client.post(
        "/api/detect",
        json={
            "metric": "latency_ms",
            "detectors": [
                {"name": "robust_bands", "params": {"window": "abc"}},
                {"name": "seasonal", "params": {"min_scale": "abc"}},
                {"name": "forecast_interval", "params": {"band_sigma": -1}},
                {"name": "robust_bands", "params": {"window": "60"}},
            ],
        },
    ).json()
    errors = [r["error"] for r in body["results"]]
    assert "window must be a whole number, got 'abc'" in errors[0]
    assert "min_scale must be a number, got 'abc'" in errors[1]
    assert "band_sigma must be at least 0, got -1" in errors[2]
    assert errors[3] is None  # a number in text form is read as the number
    run = client.post(
        "/api/detect/run",
        json={"metric_ids": [1], "detector": {"name": "robust_bands", "params": {"window": 0}}},
    )
    assert run.status_code == 400
    assert "window must be at least 1" in run.json()["detail"]


def test_a_scan_of_unknown_metrics_is_a_404(client: TestClient) -> None:
    window = {"from": "2024-03-07T10:00Z", "to": "2024-03-07T10:20Z"}
    r = client.post("/api/scan", json={**window, "metrics": [999, 1]})
    assert r.status_code == 404
    assert "999" in r.json()["detail"]
    assert client.post("/api/scan", json={**window, "metrics": [1]}).status_code == 200


def test_a_silence_takes_an_end_or_a_duration_and_lasts_an_hour_by_default(client: TestClient) -> None:
    matchers = [{"name": "metric", "value": "latency_ms"}]
    both = client.post(
        "/api/silences", json={"matchers": matchers, "duration_minutes": 60, "ends_at": "2030-01-01T00:00Z"}
    )
    assert both.status_code == 400
    assert "not both" in both.json()["detail"]
    made = client.post("/api/silences", json={"matchers": matchers})
    assert made.status_code == 201, made.text
    body = made.json()
    assert pd.Timestamp(body["ends_at"]) - pd.Timestamp(body["starts_at"]) == pd.Timedelta(hours=1)


def test_the_verdicts_of_a_page_of_anomalies_come_in_one_request(client: TestClient, store: Store) -> None:
    cur = store.cursor()
    mid = repo.get_metric(cur, "error_rate").id
    ids = []
    for hour in (10, 11, 12):
        at = pd.Timestamp(f"2024-03-07 {hour}:00")
        ids.append(_anomaly(store, mid, at, at))
    for anomaly, kind in ((ids[0], "confirmed"), (ids[1], "confirmed"), (ids[1], "false_alarm")):
        assert client.post("/api/feedback", json={"kind": kind, "anomaly_id": anomaly}).status_code == 201
    page = client.get("/api/feedback", params=[("anomaly", i) for i in ids] + [("limit", 100)]).json()
    assert page["total"] == 3
    latest: dict[int, str] = {}
    for item in page["items"]:  # newest first: the first of each anomaly is its verdict
        latest.setdefault(item["anomaly_id"], item["kind"])
    assert latest == {ids[0]: "confirmed", ids[1]: "false_alarm"}
    assert client.get("/api/feedback", params={"anomaly": ids[2]}).json()["total"] == 0
