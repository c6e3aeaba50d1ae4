"""Monitors YAML: validation with paths, environment interpolation, connections, schedules, secrets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from telewatch.monitors.config import MonitorConfigError, Schedule, load_monitors, parse_monitors

GOOD = """
connections:
  pg:
    type: postgres
    host: db.internal
    user: telewatch
    password: ${TW_PG_PASSWORD}
    database: metrics
monitors:
  - name: web-latency
    owner: "@web-oncall"
    source:
      connection: pg
      table: web
      metric_column: metric
    schedule: {every: 15m}
  - name: bras-sessions
    source: {type: logs, path: sessions.jsonl, count_by: [event]}
    schedule: {cron: "*/5 * * * *"}
    detectors: [{type: robust_z}, {type: robust_bands, threshold: 6}]
"""

BAD = """
monitors:
  - name: ok-one
    source: {type: logs, path: a.jsonl, count_by: [event]}
  - name: "bad name!"
    source: {type: prometheus, url: "ftp://x", query: up}
  - name: third
    source:
      type: postgres
      query: "SELECT 1; DROP TABLE t"
    schedule: {every: 15m, cron: "* * * * *"}
    detectr: {type: robust_bands}
  - name: fourth
    source: {type: mongodb}
  - name: ok-one
    source: {type: snmp, host: r1, objects: [{name: x, oid: notAnOid}]}
"""


def test_a_good_file_loads_with_connections_merged_and_secrets_hidden(tmp_path: Path) -> None:
    path = tmp_path / "monitors.yaml"
    path.write_text(GOOD)
    loaded = load_monitors(path, environ={"TW_PG_PASSWORD": "pa55-word"})
    web = loaded.monitor("web-latency")
    assert web.source.type == "postgres"
    assert web.source.host == "db.internal"
    assert "pa55-word" not in repr(loaded)
    assert "pa55-word" not in web.model_dump_json()
    source = web.build_source()
    assert source.secrets() == ["pa55-word"]
    assert "pa55-word" not in source.describe()
    logs = loaded.monitor("bras-sessions")
    assert str(logs.source.path) == str(tmp_path / "sessions.jsonl")  # type: ignore[union-attr]
    assert [d.type for d in logs.all_detectors] == ["robust_z", "robust_bands"]


def test_every_error_is_reported_with_its_path_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    with pytest.raises(MonitorConfigError) as err:
        load_monitors(path, environ={})
    problems = {p: (line, msg) for p, line, msg in err.value.problems}
    assert "monitors[1].name" in problems
    assert "monitors[1].source.url" in problems
    assert "only one statement" in problems["monitors[2].source"][1]
    assert problems["monitors[2].source"][0] == 9  # the line of `source:` of the third monitor
    assert "exactly one of `every`" in problems["monitors[2].schedule"][1]
    assert problems["monitors[2].detectr"][1] == "unknown setting (check the spelling)"
    assert "unknown source type" in problems["monitors[3].source"][1]
    assert "unknown SNMP object" in problems["monitors[4].source.objects[0].oid"][1]


def test_a_missing_environment_variable_and_an_unknown_connection_are_named(tmp_path: Path) -> None:
    data = {
        "monitors": [
            {"name": "a", "source": {"connection": "nope", "table": "t", "metric_column": "m"}},
            {
                "name": "b",
                "source": {
                    "type": "prometheus",
                    "url": "http://p:9090",
                    "query": "up",
                    "bearer_token": "${TOKEN}",
                },
            },
        ]
    }
    with pytest.raises(MonitorConfigError) as err:
        parse_monitors(data, environ={})
    text = str(err.value)
    assert "monitors[0].source.connection: no connection named 'nope'" in text
    assert "monitors[1].source.bearer_token: environment variable TOKEN is not set" in text


def test_every_and_cron_schedules() -> None:
    every = Schedule(every=timedelta(minutes=15))
    t = datetime(2026, 3, 1, 10, 7, tzinfo=UTC)
    assert every.previous_tick(t) == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert every.ticks_between(datetime(2026, 3, 1, 9, 0, tzinfo=UTC), t) == [
        datetime(2026, 3, 1, 9, 15, tzinfo=UTC),
        datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
        datetime(2026, 3, 1, 9, 45, tzinfo=UTC),
        datetime(2026, 3, 1, 10, 0, tzinfo=UTC),
    ]
    cron = Schedule(cron="*/20 * * * *")
    assert cron.previous_tick(t) == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert cron.next_tick(t) == datetime(2026, 3, 1, 10, 20, tzinfo=UTC)
    assert cron.nominal_interval == timedelta(minutes=20)
    with pytest.raises(ValueError, match="cron"):
        Schedule(cron="*/20 * * *")


def test_validate_command_lists_every_error(tmp_path: Path) -> None:
    from telewatch.cli.app import app

    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    result = CliRunner().invoke(app, ["monitors", "validate", str(bad)])
    assert result.exit_code == 1
    assert "monitors[2].source (line 9): query: only one statement is allowed" in result.output
    assert "monitors[1].source.url" in result.output
    assert "monitors[3].source" in result.output

    good = tmp_path / "good.yaml"
    good.write_text(GOOD.replace("${TW_PG_PASSWORD}", "x") + "\n    channels: [nowhere]\n")
    result = CliRunner().invoke(app, ["monitors", "validate", str(good)])
    assert result.exit_code == 1
    assert "monitors[1].channels[0]" in result.output
    assert "no alerting channel named 'nowhere'" in result.output


def test_the_shipped_example_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    from telewatch.monitors.validate import validate_file

    monkeypatch.setenv("TELEWATCH_PG_PASSWORD", "x")
    monkeypatch.setenv("TELEWATCH_CH_PASSWORD", "y")
    example = Path(__file__).resolve().parents[2] / "examples" / "monitors.yaml"
    report = validate_file(example)
    assert report.ok, report.lines()
    assert report.monitors is not None
    assert [m.source.type for m in report.monitors.monitors] == [
        "clickhouse",
        "postgres",
        "prometheus",
        "snmp",
        "logs",
    ]


def test_two_monitors_storing_one_series_are_refused_with_every_problem_listed() -> None:
    from telewatch.monitors.config import MonitorConfigError, parse_monitors

    src = {"type": "postgres", "host": "db", "table": "t"}
    data = {
        "monitors": [
            {"name": "avg", "source": {**src, "value_columns": ["web_response", "throughput"]}},
            {"name": "p95", "source": {**src, "value_columns": ["web_response"]}},
            {"name": "avg", "source": {**src, "value_columns": ["apdex"]}},
            {
                "name": "kept-apart",
                "source": {**src, "value_columns": ["web_response"]},
                "labels": {"q": "p95"},
            },
        ]
    }
    with pytest.raises(MonitorConfigError) as err:
        parse_monitors(data)
    paths = [p for p, _line, _msg in err.value.problems]
    assert paths == ["monitors[2].name", "monitors[1].source"]
    assert "web_response" in err.value.problems[1][2]
    assert "'avg'" in err.value.problems[1][2]
