"""Audit fixes over a real store: incident titles and counts, left-out metrics, step parsing, typing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from support.auth import ADMIN_HEADERS, auth_settings
from telewatch.api.app import create_app
from telewatch.cli.app import app as cli_app
from telewatch.services.explain import explain_window
from telewatch.services.incidents import get_incident, list_incidents, update_incidents
from telewatch.store import repo
from telewatch.store.db import Store

T0 = pd.Timestamp("2026-03-01", tz="UTC")
MIN = pd.Timedelta("1min")
W0 = T0 + pd.Timedelta("2D") + pd.Timedelta("10h")  # the incident window: 10 minutes
OLD = pd.Timestamp("2014-11-02 01:00", tz="UTC")  # a sample from another era


def _write(store: Store, name: str, values: np.ndarray, start: pd.Timestamp, group: str | None = None) -> int:
    cur = store.cursor()
    mid = repo.upsert_metric(cur, name=name, group=group)
    repo.write_points(
        cur, mid, pd.Series(values, index=pd.date_range(start, periods=values.size, freq="1min"))
    )
    return mid


def _anomaly(
    store: Store, metric_id: int, start: pd.Timestamp, value: float | None, expected: float | None
) -> None:
    store.cursor().execute(
        "INSERT INTO anomalies (metric_id, detector, start_ts, end_ts, peak_ts, peak_score, value, expected)"
        " VALUES (?, 'test', ?, ?, ?, 9.0, ?, ?)",
        [
            metric_id,
            start.tz_localize(None),
            start.tz_localize(None),
            start.tz_localize(None),
            value,
            expected,
        ],
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[Store, dict[str, int]]]:
    rng = np.random.default_rng(0)
    n = 3 * 1440
    k = int((W0 - T0) / MIN)
    with Store(tmp_path / "audit.duckdb") as st:
        ids = {}
        thr = 1000.0 + rng.normal(0, 10, n)
        thr[k : k + 10] -= 60.0  # the anomalous metric: a modest fall
        ids["throughput_rpm"] = _write(st, "throughput_rpm", thr, T0, "web")
        lat = 150.0 + rng.normal(0, 3, n)
        lat[k : k + 10] += 300.0  # not flagged, but it moved far more
        ids["web_response_ms"] = _write(st, "web_response_ms", lat, T0, "web")
        for name in ("cpu_percent", "memory_percent", "temperature_c"):  # calm
            ids[name] = _write(st, name, 50.0 + rng.normal(0, 1, n), T0, "host")
        err = 0.01 + np.abs(rng.normal(0, 0.001, n))
        err[k + 1 : k + 10] += 0.05  # errors up in the window
        ids["error_rate"] = _write(st, "error_rate", err, T0, "web")
        old = 100.0 + rng.normal(0, 2, 4 * 1440)
        old[-1440 + 60 : -1440 + 70] += 60.0  # a sample in 2014 with its own anomaly
        ids["nab/sample"] = _write(st, "nab/sample", old, OLD - pd.Timedelta("3D") - 60 * MIN)
        yield st, ids


def test_titles_name_the_anomalous_metrics_first_and_counts_agree(
    store: tuple[Store, dict[str, int]],
) -> None:
    st, ids = store
    _anomaly(st, ids["throughput_rpm"], W0, 940.0, 1000.0)
    _anomaly(st, ids["nab/sample"], OLD, 160.0, 100.0)
    update_incidents(st, now=W0 + pd.Timedelta("2h"))
    incidents = {i.start: i for i in list_incidents(st)}
    assert set(incidents) == {W0, OLD}

    outage = incidents[W0]
    detail = get_incident(st, incident_id=outage.id)
    # the anomalous metric first, then what really moved; calm metrics are neither named nor stored
    assert outage.title.split(": ", 1)[1].split(", ")[:2] == ["throughput_rpm", "web_response_ms"]
    assert {m.metric for m in detail.metrics} == {"throughput_rpm", "web_response_ms", "error_rate"}
    assert all(m.anomalous or m.direction != "flat" for m in detail.metrics)
    assert outage.metrics == len(detail.metrics)  # the list's count is the page's "Metrics involved"

    old = incidents[OLD]
    old_detail = get_incident(st, incident_id=old.id)
    # the 2026 metrics have no data in 2014: not ranked, not named, not counted
    assert old.title == "Anomaly: nab/sample"
    assert [m.metric for m in old_detail.metrics] == ["nab/sample"]
    assert old.metrics == 1
    assert "barely changed" not in " ".join(m.reason for m in old_detail.metrics)


def test_scan_leaves_out_metrics_without_data_and_says_how_many(store: tuple[Store, dict[str, int]]) -> None:
    st, _ = store
    result = explain_window(st, start=OLD, end=OLD + 10 * MIN, limit=None)
    assert [r.metric for r in result.ranked] == ["nab/sample"]
    assert result.metrics_scanned == 7
    assert result.left_out == {"no_data": 6, "no_baseline": 0}
    assert result.left_out_text() == "6 metrics left out (6 without data in the window)"


@pytest.mark.parametrize(("value", "expected", "kind"), [(0.06, 0.01, "backend_outage"), (0.004, 0.01, None)])
def test_incident_type_follows_the_direction_of_the_anomaly(
    store: tuple[Store, dict[str, int]], value: float, expected: float, kind: str | None
) -> None:
    # error_rate's window mean rose either way (and throughput fell); what the detector saw at the
    # peak decides error_rate's direction: errors up with traffic down is an outage, errors down is not
    st, ids = store
    _anomaly(st, ids["error_rate"], W0, value, expected)
    update_incidents(st, now=W0 + pd.Timedelta("2h"))
    (incident,) = list_incidents(st)
    if kind is None:
        assert incident.type not in {"backend_outage", "error_burst"}
    else:
        assert incident.type == kind
    assert incident.title.split(": ", 1)[1].startswith("error_rate")


def test_cli_step_errors_and_footer(store: tuple[Store, dict[str, int]]) -> None:
    st, _ = store
    path = Path(st.path)
    st.close()
    runner = CliRunner()
    window = f"{OLD.isoformat()}..{(OLD + 10 * MIN).isoformat()}"
    base = ["explain", "--window", window, "--db", str(path)]
    bad = runner.invoke(cli_app, [*base, "--step", "abc"])
    assert bad.exit_code == 2
    assert "error:" in bad.output
    assert "not a duration" in bad.output
    assert "Traceback" not in bad.output
    bare = runner.invoke(cli_app, [*base, "--step", "5"])
    assert bare.exit_code == 2
    assert "no unit" in bare.output
    ok = runner.invoke(cli_app, [*base, "--step", "1m"], env={"COLUMNS": "250"})
    assert ok.exit_code == 0, ok.output
    assert "step 1m;" in ok.output
    assert "0 days" not in ok.output
    assert "6 metrics left out (6 without data in the window)" in ok.output
    assert "barely changed" not in ok.output


def test_api_step_and_left_out(store: tuple[Store, dict[str, int]], tmp_path: Path) -> None:
    st, _ = store
    settings = auth_settings(db_path=tmp_path / "unused.duckdb")
    with TestClient(create_app(settings, store=st), headers=ADMIN_HEADERS) as client:
        params = {"from": OLD.isoformat(), "to": (OLD + 10 * MIN).isoformat()}
        r = client.get("/api/explain", params={**params, "step": "1min"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert [x["metric"] for x in body["ranked"]] == ["nab/sample"]
        assert body["metrics_left_out"] == {"no_data": 6, "no_baseline": 0}
        for step in ("abc", "5"):
            bad = client.get("/api/explain", params={**params, "step": step})
            assert bad.status_code == 400
            assert "step" in bad.json()["detail"]
