"""Forecasts over a real store: the REST API (history + forecast in one response, clear 4xx) and the CLI."""

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
from telewatch.demo import generate_demo
from telewatch.services.demo_data import load_demo
from telewatch.store import repo
from telewatch.store.db import Store

END = pd.Timestamp("2026-11-02 00:00", tz="UTC")


def _load(store: Store) -> None:
    load_demo(store, data=generate_demo(days=8, end=END), with_nab=False)
    # A metric heading for its limit: memory climbing 0.3 %/min over the last two hours.
    idx = pd.date_range(END - pd.Timedelta(days=3), END, freq="1min", tz="UTC", inclusive="left")
    rng = np.random.default_rng(0)
    values = 40 + rng.normal(0, 0.5, idx.size)
    values[-120:] += np.arange(120) * 0.3
    cur = store.cursor()
    mid = repo.upsert_metric(cur, name="leaky_memory", unit="%", group="leaky")
    repo.write_points(cur, mid, pd.Series(values, index=idx))
    # A few anomalies of the web group for the outlook.
    web = repo.get_metric(cur, "throughput_rpm").id
    for minutes in (30, 300, 3000):
        start = (END - pd.Timedelta(minutes=minutes)).tz_localize(None)
        cur.execute(
            "INSERT INTO anomalies (metric_id, detector, start_ts, end_ts, peak_ts, peak_score, value)"
            " VALUES (?, 'robust_bands', ?, ?, ?, 9.0, 1.0)",
            [web, start, start, start],
        )


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One loaded store for the read-only API tests (loading and fitting is the slow part)."""
    tmp = tmp_path_factory.mktemp("forecast_api")
    with Store(tmp / "telewatch.duckdb") as store:
        _load(store)
        settings = auth_settings(db_path=tmp / "unused.duckdb")
        with TestClient(create_app(settings, store=store), headers=ADMIN_HEADERS) as c:
            yield c


def test_metric_forecast_returns_history_prediction_and_intervals(client: TestClient) -> None:
    r = client.get("/api/forecast/memory_percent", params={"horizon": "60min", "history": "2h"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "robust_seasonal"
    assert body["step_seconds"] == 60
    assert len(body["t"]) == len(body["mean"]) == 60
    assert len(body["history_t"]) == len(body["history_v"]) == 120
    assert body["t"][0] == body["history_t"][-1] + 60_000  # the forecast starts one step after the history
    assert set(body["intervals"]) == {"80", "95"}
    lo80, hi80 = body["intervals"]["80"]["lower"], body["intervals"]["80"]["upper"]
    lo95, hi95 = body["intervals"]["95"]["lower"], body["intervals"]["95"]["upper"]
    assert all(a <= m <= b for a, m, b in zip(lo80, body["mean"], hi80, strict=True))
    assert all(a <= b and c <= d for a, b, c, d in zip(lo95, lo80, hi80, hi95, strict=True))
    # Memory stays in its daily sawtooth (30-70 %): the forecast is in range and warns of nothing.
    assert min(body["mean"]) > 25
    assert max(body["mean"]) < 80
    assert body["breaches"] == []


@pytest.mark.parametrize("model", ["seasonal_naive", "ets"])
def test_other_models_answer(client: TestClient, model: str) -> None:
    body = client.get("/api/forecast/cpu_percent", params={"model": model, "horizon": "30min"}).json()
    assert body["model"] == model
    assert len(body["mean"]) == 30


def test_a_ramp_toward_its_limit_is_a_predicted_breach(client: TestClient) -> None:
    body = client.get("/api/forecast/leaky_memory", params={"limit_upper": 90, "band": "false"}).json()
    [breach] = body["breaches"]
    assert breach["direction"] == "upper"
    assert breach["limit"] == 90
    assert 0 < breach["minutes_ahead"] <= 60
    assert breach["probability"] >= 0.5
    assert "leaky_memory will rise above 90" in breach["message"]
    calm = client.get("/api/forecast/leaky_memory", params={"limit_upper": 500}).json()
    assert calm["breaches"] == []


def test_group_forecast_and_outlook(client: TestClient) -> None:
    body = client.get("/api/forecast/group/web", params={"horizon": "30min"}).json()
    assert body["group"] == "web"
    assert {f["metric"].split("{")[0] for f in body["forecasts"]} == {
        "web_response_ms",
        "throughput_rpm",
        "apdex",
        "error_rate",
    }
    outlook = body["outlook"]
    assert 0.0 <= outlook["probability"] <= 1.0
    assert outlook["level"] in {"low", "elevated", "high"}
    assert "in the next hour" in outlook["statement"]
    assert outlook["basis"][0].startswith("3 incident(s) in the last 7 days")
    # Already far outside its learned band: that is the detector's business, not a prediction.
    leaky = client.get("/api/forecast/group/leaky").json()
    assert leaky["outlook"]["probability_from_forecast"] == 0.0
    # Against a static limit of 90 % the same ramp is a predicted breach, and the outlook says so.
    from telewatch.services.forecasting import forecast_group

    store = client.app.state.store  # type: ignore[attr-defined]
    result = forecast_group(store, group="leaky", limits={"leaky_memory": (None, 90.0)}, band=False)
    assert result.outlook.probability_from_forecast > 0.5
    assert result.outlook.level == "high"
    assert any("leaky_memory will rise above 90" in line for line in result.outlook.basis)


@pytest.mark.parametrize(
    ("path", "params", "status", "needle"),
    [
        ("/api/forecast/memory_percent", {"horizon": "soon"}, 400, "horizon"),
        ("/api/forecast/memory_percent", {"horizon": "30D"}, 400, "at most 7 days"),
        ("/api/forecast/memory_percent", {"horizon": "-5min"}, 400, "positive"),
        ("/api/forecast/memory_percent", {"model": "arima"}, 400, "unknown forecast model 'arima'"),
        ("/api/forecast/memory_percent", {"history": "often"}, 400, "show"),
        ("/api/forecast/memory_percent", {"at": "yesterday-ish"}, 400, "at"),
        ("/api/forecast/memory_percent", {"limit_upper": "high"}, 422, "limit_upper"),
        ("/api/forecast/no_such_metric", {}, 404, "no_such_metric"),
        ("/api/forecast/group/no_such_group", {}, 404, "no_such_group"),
        ("/api/forecast/memory_percent", {"at": "2020-01-01T00:00Z"}, 400, "at least 10"),
    ],
)
def test_bad_input_gets_a_clear_4xx(
    client: TestClient, path: str, params: dict, status: int, needle: str
) -> None:
    r = client.get(path, params=params)
    assert r.status_code == status, r.text
    assert needle in r.json()["detail"]


def test_forecast_as_of_an_earlier_time(client: TestClient) -> None:
    at = (END - pd.Timedelta(days=1)).isoformat()
    body = client.get("/api/forecast/cpu_percent", params={"at": at, "horizon": "10min"}).json()
    assert pd.Timestamp(body["made_at"]) <= pd.Timestamp(at)
    assert pd.Timestamp(body["t"][0], unit="ms", tz="UTC") > pd.Timestamp(at) - pd.Timedelta("1min")


def test_cli_forecast_and_bench(store: Store, tmp_path: Path) -> None:
    _load(store)
    db = store.path
    store.close()
    runner = CliRunner()
    png = tmp_path / "leak.png"
    res = runner.invoke(
        cli_app, ["forecast", "leaky_memory", "--limit-upper", "90", "--plot", str(png), "--db", db]
    )
    assert res.exit_code == 0, res.output
    assert "early warning" in res.output
    assert "rise above 90" in res.output
    assert png.stat().st_size > 5_000
    bad = runner.invoke(cli_app, ["forecast", "leaky_memory", "--horizon", "soon", "--db", db])
    assert bad.exit_code == 2
    assert "horizon" in bad.output
    models = runner.invoke(cli_app, ["forecast-models"])
    assert models.exit_code == 0
    assert "robust_seasonal" in models.output
    bench = runner.invoke(
        cli_app,
        ["bench", "forecast", "--no-nab", "--model", "robust_seasonal", "--folds", "2", "--no-lead-time"],
    )
    assert bench.exit_code == 0, bench.output
    lines = [ln for ln in bench.output.splitlines() if ln.startswith("FORECAST model=")]
    assert [ln.split()[1] for ln in lines] == ["model=seasonal_naive", "model=robust_seasonal"]
    assert "coverage80=" in lines[1]
    assert "mase=" in lines[1]


def test_early_warning_goes_through_the_alerting_pipeline_and_resolves(store: Store) -> None:
    from telewatch.alerts.config import parse_alerting_config
    from telewatch.services.forecasting import LimitSpec, raise_early_warnings

    _load(store)
    config = parse_alerting_config(
        {
            "channels": {"hook": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}},
            "rules": [{"name": "early", "channels": ["hook"]}],
        }
    )
    limits = [LimitSpec(metric="leaky_memory", upper=90.0)]
    first = raise_early_warnings(store, limits=limits, rules=config, now=END)
    assert first.firing == ["forecast:leaky_memory:upper"]
    assert len(first.notifications) == 1
    # The leak is fixed: memory back at 40 % for the next 30 minutes; the forecast no longer crosses.
    idx = pd.date_range(END, periods=30, freq="1min", tz="UTC")
    mid = repo.get_metric(store.cursor(), "leaky_memory").id
    repo.write_points(store.cursor(), mid, pd.Series(40.0, index=idx))
    later = END + pd.Timedelta(minutes=29)
    second = raise_early_warnings(store, limits=limits, rules=config, now=later)
    assert second.resolved == ["forecast:leaky_memory:upper"]
    assert second.firing == []
