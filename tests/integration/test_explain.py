"""Explain and incidents over a real store: service, API, CLI, and SMD root-cause ranking."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from support.auth import ADMIN_HEADERS, auth_settings
from telewatch.api.app import create_app
from telewatch.cli.app import app as cli_app
from telewatch.core.errors import NotFoundError, ValidationError
from telewatch.demo import DemoData, generate_demo
from telewatch.services.demo_data import load_demo
from telewatch.services.explain import explain_window
from telewatch.services.incidents import get_incident, list_incidents, resolve_incident, update_incidents
from telewatch.store import monitors as monitors_repo
from telewatch.store import repo
from telewatch.store.db import Store

SMD_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "smd"
MIN = pd.Timedelta("1min")


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoData]:
    path = tmp_path_factory.mktemp("explain") / "demo.duckdb"
    data = generate_demo(days=30)
    with Store(path) as store:
        load_demo(store, data=data, with_nab=False)
    return path, data


@pytest.fixture
def demo_store(demo_db: tuple[Path, DemoData], tmp_path: Path) -> Iterator[tuple[Store, DemoData]]:
    path = tmp_path / "copy.duckdb"
    shutil.copy(demo_db[0], path)
    with Store(path) as store:
        yield store, demo_db[1]


def _plant_anomalies(store: Store, data: DemoData) -> None:
    """One anomaly per planted metric, on the planted window (as a perfect detector would)."""
    cur = store.cursor()
    for inc in data.incidents:
        for k, name in enumerate(inc.metrics):
            metric_id = repo.get_metric(cur, name).id
            cur.execute(
                "INSERT INTO anomalies (metric_id, detector, start_ts, end_ts, peak_ts, peak_score)"
                " VALUES (?, 'test', ?, ?, ?, ?)",
                [
                    metric_id,
                    inc.start.tz_localize(None) + k * MIN,
                    inc.end.tz_localize(None),
                    inc.start.tz_localize(None) + k * MIN,
                    20.0 - k,
                ],
            )


# -- explain ----------------------------------------------------------------------------------------
def test_explain_ranks_the_planted_metrics_of_an_outage_first(demo_store: tuple[Store, DemoData]) -> None:
    store, data = demo_store
    outage = next(i for i in data.incidents if i.kind == "backend_outage")
    result = explain_window(store, start=outage.start, end=outage.end + MIN, metric="throughput_rpm")
    assert result.metrics_scanned == 10
    assert result.step == MIN
    top = [e.metric.split("{")[0] for e in result.ranked[: len(outage.metrics)]]
    assert set(top) == set(outage.metrics)
    by_name = {e.metric.split("{")[0]: e.ranked for e in result.ranked}
    assert by_name["throughput_rpm"].direction == "down"
    assert by_name["error_rate"].direction == "up"
    assert by_name["apdex"].direction == "down"
    assert "throughput_rpm" in by_name["error_rate"].reason
    assert result.ranked[0].ranked.reason.startswith(result.ranked[0].metric)


def test_explain_by_group_and_selector(demo_store: tuple[Store, DemoData]) -> None:
    store, data = demo_store
    overload = next(i for i in data.incidents if i.kind == "channel_overload")
    result = explain_window(store, start=overload.start, end=overload.end + MIN, group="network")
    assert {e.metric.split("{")[0] for e in result.ranked} == {"channel_load_percent", "active_sessions"}
    assert result.ranked[0].ranked.direction == "up"
    picked = explain_window(
        store, start=overload.start, end=overload.end, selector={"host": "app-1"}, limit=3
    )
    assert picked.metrics_scanned == 7
    assert len(picked.ranked) == 3


def test_explain_rejects_bad_windows_and_unknown_metrics(demo_store: tuple[Store, DemoData]) -> None:
    store, data = demo_store
    first = data.frame.index[0]
    with pytest.raises(ValidationError, match="not after its start"):
        explain_window(store, start=first + 10 * MIN, end=first)
    with pytest.raises(ValidationError, match="nothing to compare"):
        explain_window(store, start=first, end=first + 30 * MIN)
    with pytest.raises(ValidationError, match="no data in the window"):
        explain_window(store, start="2030-01-01", end="2030-01-02")
    with pytest.raises(NotFoundError, match="group 'nope'"):
        explain_window(
            store, start=first + pd.Timedelta("2D"), end=first + pd.Timedelta("2D1h"), group="nope"
        )
    with pytest.raises(NotFoundError, match="no metric named"):
        explain_window(
            store, start=first + pd.Timedelta("2D"), end=first + pd.Timedelta("2D1h"), metric="nope"
        )
    with pytest.raises(ValidationError, match="not a time"):
        explain_window(store, start="yesterday-ish", end=first)


# -- incidents --------------------------------------------------------------------------------------
def test_incidents_group_type_resolve_and_stay_idempotent(demo_store: tuple[Store, DemoData]) -> None:
    store, data = demo_store
    _plant_anomalies(store, data)
    now = data.frame.index[-1]
    report = update_incidents(store, now=now)
    assert len(report.created) == len(data.incidents)
    incidents = sorted(list_incidents(store, limit=100), key=lambda i: i.start)
    assert len(incidents) == len(data.incidents)
    right = sum(inc.type == planted.kind for inc, planted in zip(incidents, data.incidents, strict=True))
    assert right / len(data.incidents) >= 0.9
    assert all(i.state == "resolved" for i in incidents)
    outage = next(i for i in incidents if i.type == "backend_outage")
    detail = get_incident(store, incident_id=outage.id)
    assert detail.incident.metrics == 5
    assert len(detail.anomaly_ids) == 5
    assert {m.metric.split("{")[0] for m in detail.metrics if m.anomalous} == set(data.incidents[3].metrics)
    assert detail.metrics[0].rank == 1
    assert detail.metrics[0].reason

    again = update_incidents(store, now=now)
    assert again.created == []
    assert again.merged == []
    assert sorted(again.unchanged) == sorted(i.id for i in incidents)
    assert len(list_incidents(store, limit=100)) == len(incidents)

    # an anomaly bridging the two last incidents merges them into the older one
    last, before_last = incidents[-1], incidents[-2]
    store.cursor().execute(
        "INSERT INTO anomalies (metric_id, detector, start_ts, end_ts, peak_ts, peak_score) VALUES (?, 'test', ?, ?, ?, 1)",
        [
            repo.get_metric(store.cursor(), "memory_percent").id,
            before_last.end.tz_localize(None),
            last.start.tz_localize(None),
            before_last.end.tz_localize(None),
        ],
    )
    merged = update_incidents(store, now=now)
    assert merged.merged == [last.id]
    assert len(list_incidents(store, limit=100)) == len(incidents) - 1
    joined = get_incident(store, incident_id=before_last.id).incident
    assert (joined.start, joined.end) == (before_last.start, last.end)


def test_open_until_quiet_then_resolved_and_manual_resolve(demo_store: tuple[Store, DemoData]) -> None:
    store, data = demo_store
    _plant_anomalies(store, data)
    last = data.incidents[-1]
    update_incidents(store, now=last.end + 5 * MIN, quiet="30min")
    newest = list_incidents(store, limit=1)[0]
    assert newest.state == "open"
    assert [i.id for i in list_incidents(store, state="open")] == [newest.id]
    resolve_incident(store, incident_id=newest.id, at=last.end + 6 * MIN)
    update_incidents(store, now=last.end + 7 * MIN)
    assert get_incident(store, incident_id=newest.id).incident.state == "resolved"
    with pytest.raises(NotFoundError):
        resolve_incident(store, incident_id=99999)
    with pytest.raises(ValidationError, match="state"):
        list_incidents(store, state="closed")


def test_unchanged_incidents_keep_their_ranking_without_a_new_scan(
    demo_store: tuple[Store, DemoData], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the scheduler's ticks pass rerank_unchanged=False: an incident whose anomalies did not change is
    # not ranked again (a scan over every metric), only its state is brought up to date
    import telewatch.services.incidents as incidents_service

    store, data = demo_store
    _plant_anomalies(store, data)
    last = data.incidents[-1]
    first = update_incidents(store, now=last.end + 5 * MIN, quiet="30min")
    newest = list_incidents(store, limit=1)[0]
    assert newest.state == "open"
    ranking = [(m.metric, m.rank, m.score) for m in get_incident(store, incident_id=newest.id).metrics]

    scans: list[int] = []
    real = incidents_service._rank_and_type

    def counted(*args: object, **kwargs: object) -> object:
        scans.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(incidents_service, "_rank_and_type", counted)
    again = update_incidents(store, now=last.end + 6 * MIN, quiet="30min", rerank_unchanged=False)
    assert scans == []
    assert sorted(again.unchanged) == sorted(first.created)
    quiet = update_incidents(store, now=last.end + 40 * MIN, quiet="30min", rerank_unchanged=False)
    assert scans == []
    assert newest.id in quiet.updated
    detail = get_incident(store, incident_id=newest.id)
    assert detail.incident.state == "resolved"
    assert [(m.metric, m.rank, m.score) for m in detail.metrics] == ranking

    # a new anomaly inside the newest incident changes it: it is ranked again
    store.cursor().execute(
        "INSERT INTO anomalies (metric_id, detector, start_ts, end_ts, peak_ts, peak_score) VALUES (?, 'test', ?, ?, ?, 1)",
        [
            repo.get_metric(store.cursor(), "memory_percent").id,
            newest.start.tz_localize(None),
            newest.end.tz_localize(None),
            newest.start.tz_localize(None),
        ],
    )
    update_incidents(store, now=last.end + 41 * MIN, quiet="30min", rerank_unchanged=False)
    assert scans == [1]
    assert len(get_incident(store, incident_id=newest.id).anomaly_ids) == len(detail.anomaly_ids) + 1


def test_incident_ranking_formats_only_kept_rows_and_types_as_the_full_ranking(
    demo_store: tuple[Store, DemoData],
) -> None:
    # the incident path asks the scan for the first ``rank_limit`` rows and the anomalous metrics
    # only, and types from the evidence of all metrics: the same rows and type as ranking them all
    from dataclasses import astuple

    from telewatch.incidents.grouping import group_anomalies
    from telewatch.incidents.types import MetricChange, involvement_cut, load_rules
    from telewatch.services import incidents as incidents_service

    store, data = demo_store
    _plant_anomalies(store, data)
    rules = load_rules()
    anomalies = incidents_service._read_anomalies(store, since=None, split_label=None)
    drafts = group_anomalies(anomalies, merge_gap=pd.Timedelta("5min"))
    assert len(drafts) == len(data.incidents)
    typed = 0
    for draft in drafts:
        end = max(draft.end + MIN, draft.start + incidents_service.MIN_WINDOW)
        full = explain_window(store, start=draft.start, end=end, metric=draft.peak_metric_id, limit=None)
        top = max(r.ranked.score for r in full.ranked)
        involved = [
            MetricChange(r.ranked.name.split("{")[0], r.ranked.direction, r.group)
            for r in full.ranked
            if r.ranked.score >= involvement_cut(top)
        ]
        assert incidents_service._involved(full.scanned) == involved
        # the incident's own (anomalous) metrics are involved whatever their score, and flagged
        anomalous = set(draft.metric_ids)
        involved = [
            MetricChange(
                r.ranked.name.split("{")[0], r.ranked.direction, r.group, anomalous=r.metric_id in anomalous
            )
            for r in full.ranked
            if r.ranked.score >= involvement_cut(top) or r.metric_id in anomalous
        ]
        assert incidents_service._involved(full.scanned, anomalous=anomalous) == involved
        for rank_limit in (0, 2, 10):
            kept, kind = incidents_service._rank_and_type(store, draft, rules, rank_limit)
            expected = [
                r for r in full.ranked if r.ranked.rank <= rank_limit or r.metric_id in set(draft.metric_ids)
            ]
            assert [(r.metric_id, r.metric, r.group, repr(astuple(r.ranked))) for r in kept] == [
                (r.metric_id, r.metric, r.group, repr(astuple(r.ranked))) for r in expected
            ]
            assert kind == incidents_service.classify(rules, involved)
        typed += kind is not None
    assert typed >= len(drafts) - 1


# -- API --------------------------------------------------------------------------------------------
def test_api_explain_and_incidents(demo_store: tuple[Store, DemoData], tmp_path: Path) -> None:
    store, data = demo_store
    _plant_anomalies(store, data)
    # every demo metric fetched by one monitor: its incidents say so
    cur = store.cursor()
    for info in repo.list_metrics(cur):
        monitors_repo.record_series(
            cur, monitor="shop", series_key=f"s{info.id}", metric_id=info.id, last_point=data.frame.index[-1]
        )
    outage = next(i for i in data.incidents if i.kind == "backend_outage")
    settings = auth_settings(db_path=tmp_path / "unused.duckdb")
    with TestClient(create_app(settings, store=store), headers=ADMIN_HEADERS) as client:
        params = {
            "from": outage.start.isoformat(),
            "to": (outage.end + MIN).isoformat(),
            "metric": "throughput_rpm",
        }
        r = client.get("/api/explain", params={**params, "limit": 5})
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["ranked"]) == 5
        assert {x["metric"].split("{")[0] for x in body["ranked"]} == set(outage.metrics)
        assert body["target"].startswith("throughput_rpm")
        # bad input: clear 4xx naming the fault
        bad = client.get("/api/explain", params={**params, "from": params["to"], "to": params["from"]})
        assert bad.status_code == 400
        assert "not after its start" in bad.json()["detail"]
        assert client.get("/api/explain", params={"to": params["to"]}).status_code == 422
        assert "from" in client.get("/api/explain", params={"to": params["to"]}).json()["detail"]
        assert client.get("/api/explain", params={**params, "step": "soon"}).status_code == 400
        assert client.get("/api/explain", params={**params, "metric": "nope"}).status_code == 404
        assert client.get("/api/explain", params={**params, "selector": "host"}).status_code == 400

        r = client.post("/api/incidents/update")
        assert r.status_code == 200
        assert len(r.json()["created"]) == len(data.incidents)
        listed = client.get("/api/incidents").json()
        assert len(listed) == len(data.incidents)
        assert {x["monitor"] for x in listed} == {"shop"}
        one = client.get(f"/api/incidents/{listed[0]['id']}").json()
        assert one["ranked_metrics"]
        assert one["anomaly_ids"]
        assert client.get("/api/incidents/99999").status_code == 404
        assert client.get("/api/incidents", params={"state": "closed"}).status_code == 422
        assert client.post("/api/incidents/update", params={"merge_gap": "soon"}).status_code == 400
        resolved = client.post(f"/api/incidents/{listed[0]['id']}/resolve").json()
        assert resolved["state"] == "resolved"


# -- CLI --------------------------------------------------------------------------------------------
def test_cli_explain_and_incidents(demo_db: tuple[Path, DemoData], tmp_path: Path) -> None:
    path = tmp_path / "cli.duckdb"
    shutil.copy(demo_db[0], path)
    data = demo_db[1]
    with Store(path) as store:
        _plant_anomalies(store, data)
    runner = CliRunner()
    outage = next(i for i in data.incidents if i.kind == "backend_outage")
    window = f"{outage.start.isoformat()}..{(outage.end + MIN).isoformat()}"
    r = runner.invoke(
        cli_app, ["explain", "--window", window, "--metric", "throughput_rpm", "--db", str(path), "--json"]
    )
    assert r.exit_code == 0, r.output
    assert '"direction": "down"' in r.output
    assert "throughput_rpm" in r.output
    r = runner.invoke(cli_app, ["explain", "--window", "yesterday", "--db", str(path)])
    assert r.exit_code == 2
    assert "FROM..TO" in r.output
    r = runner.invoke(cli_app, ["incidents", "update", "--db", str(path)])
    assert r.exit_code == 0
    assert f"{len(data.incidents)} new" in r.output
    r = runner.invoke(cli_app, ["incidents", "list", "--db", str(path)], env={"COLUMNS": "250"})
    assert r.exit_code == 0
    assert "Backend outage" in r.output
    # the demo's metrics are fetched by no monitor: none of its incidents is a monitor's
    r = runner.invoke(cli_app, ["incidents", "list", "--monitor", "web", "--db", str(path)])
    assert r.exit_code == 0
    assert "0 incidents" in r.output
    r = runner.invoke(cli_app, ["incidents", "show", "1", "--db", str(path)])
    assert r.exit_code == 0
    assert "#1" in r.output
    r = runner.invoke(cli_app, ["incidents", "resolve", "1", "--db", str(path)])
    assert r.exit_code == 0
    assert "resolved" in r.output
    r = runner.invoke(cli_app, ["incidents", "show", "424242", "--db", str(path)])
    assert r.exit_code == 2
    assert "no incident" in r.output


# -- SMD --------------------------------------------------------------------------------------------
@pytest.mark.shared
def test_smd_machine_1_2_root_cause_hit_rates(shared_datasets: Path) -> None:
    from telewatch.bench.smd_rca import evaluate_rca

    result = evaluate_rca(shared_datasets / "smd", ["machine-1-2"])
    assert result.segments == 10
    assert result.hit_rate_150 >= 0.8  # mean robust z over the window: about 0.75 on 1-2..1-8
    assert result.hit_rate_100 >= 0.65
    assert 0 < result.segments_detected <= result.segments
    assert re.fullmatch(
        r"SMD-RCA machines=1 hitrate100=\d\.\d{3} hitrate150=\d\.\d{3} .*", result.summary_line()
    )


def test_demo_type_accuracy_with_perfect_anomalies() -> None:
    from telewatch.bench.demo_types import evaluate_demo_types

    result = evaluate_demo_types(mode="planted")
    assert result.planted == result.found == result.incidents == 11
    assert result.share >= 0.9
    assert result.summary_line().startswith(f"DEMO-TYPES mode=planted right={result.right}/11")
