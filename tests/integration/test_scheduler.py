"""The built-in scheduler with a simulated clock: schedules, catch-up in order without duplicate alerts,
retries with backoff that do not stop other monitors, no overlapping runs, retraining on schedule."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from support.webhook import WebhookReceiver
from telewatch.scheduler.jobs import load_config
from telewatch.scheduler.runner import Runner
from telewatch.services.monitor import (
    acquire_lease,
    default_holder,
    read_state,
    release_lease,
    run_monitor,
)
from telewatch.store.db import Store

T0 = pd.Timestamp("2026-03-01 00:00", tz="UTC")


def minutes(n: float) -> pd.Timedelta:
    return pd.Timedelta(minutes=n)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as r:
        yield r


def write_logins(path: Path, *, total_minutes: int, burst: range) -> None:
    rng = np.random.default_rng(5)
    lines = []
    for m in range(total_minutes):
        n = 300 if m in burst else int(rng.poisson(20))
        for k in range(n):
            ts = T0 + minutes(m) + pd.Timedelta(seconds=59 * k / max(n, 1))
            lines.append(json.dumps({"ts": ts.isoformat(), "event": "login", "result": "fail"}))
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def config_file(tmp_path: Path, receiver: WebhookReceiver) -> Path:
    write_logins(tmp_path / "auth.jsonl", total_minutes=240, burst=range(150, 153))
    port = receiver.port
    path = tmp_path / "monitors.yaml"
    path.write_text(
        f"""
alerting:
  channels:
    hook: {{type: webhook, url: "http://127.0.0.1:{port}/", format: json}}
monitors:
  - name: failed-logins
    owner: "@secops"
    source: {{type: logs, path: auth.jsonl, counts: [{{name: failed_logins, where: {{result: fail}}}}]}}
    schedule: {{every: 15m}}
    history: 1d
    train: {{every: 1h, window: 1d, min_points: 60, warm_up: 0s}}
    channels: [hook]
  - name: late-file
    source: {{type: logs, path: not-yet.jsonl, count_by: [event]}}
    schedule: {{every: 15m}}
    retry: {{initial: 1m, max: 10m}}
"""
    )
    return path


def test_catch_up_in_order_without_duplicate_alerts_and_retries(
    config_file: Path, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    config = load_config(config_file)
    with Store(tmp_path / "tw.duckdb") as store:
        runner = Runner(config, store=store)
        first = runner.run_pending(T0 + minutes(97))
        assert [(r.monitor, r.tick, r.status) for r in first] == [
            ("failed-logins", T0 + minutes(90), "ok"),
            ("late-file", T0 + minutes(90), "error"),
        ]
        assert first[0].points == 90
        assert first[0].trained == 1
        assert receiver.bodies == []
        failing = read_state(store, "late-file")
        assert failing.attempts == 1
        assert failing.next_retry_at == T0 + minutes(97 + 1)
        assert "not-yet.jsonl" in (failing.error or "")

        # down for 80 minutes: the missed ticks run in order; the burst at 02:30 alerts once
        reports = runner.run_pending(T0 + minutes(180))
        ticks = [r.tick for r in reports if r.monitor == "failed-logins"]
        assert ticks == [T0 + minutes(m) for m in (105, 120, 135, 150, 165, 180)]
        assert all(r.status == "ok" for r in reports if r.monitor == "failed-logins")
        assert len(receiver.firing()) == 1
        alert = receiver.firing()[0]
        assert alert["metric"] == "failed_logins"
        assert alert["monitor"] == "failed-logins"
        # the other monitor kept failing (retried once, backoff doubled) without stopping this one
        failing = read_state(store, "late-file")
        assert failing.attempts == 2
        assert failing.next_retry_at == T0 + minutes(180 + 2)
        assert runner.due_ticks("late-file", T0 + minutes(181)) == []  # still backing off

        # retrained on its own schedule: 90 → 150 (1 h later) → not again before 210
        trained = (
            store.cursor()
            .execute("SELECT trained_at FROM monitor_models WHERE monitor = 'failed-logins'")
            .fetchone()
        )
        assert pd.Timestamp(trained[0]).tz_localize("UTC") == T0 + minutes(150)

        # the same moment again: nothing is due, nothing is sent
        bodies = len(receiver.bodies)
        assert [r for r in runner.run_pending(T0 + minutes(180)) if r.monitor == "failed-logins"] == []
        assert len(receiver.bodies) == bodies

        # the file appears: the failing monitor recovers at its next retry and reads the events
        (tmp_path / "not-yet.jsonl").write_text(
            json.dumps({"ts": (T0 + minutes(100)).isoformat(), "event": "x"}) + "\n"
        )
        reports = runner.run_pending(T0 + minutes(183))
        late = [r for r in reports if r.monitor == "late-file"]
        assert [(r.tick, r.status, r.points) for r in late] == [
            (T0 + minutes(180), "ok", 80)
        ]  # 01:40 to 02:59
        state = read_state(store, "late-file")
        assert state.attempts == 0
        assert state.status == "ok"
        assert state.last_run_at == T0 + minutes(180)


def test_a_lease_left_by_a_killed_process_is_taken_over_at_once(config_file: Path, tmp_path: Path) -> None:
    """A process killed mid-tick leaves its lease; the next process to open the store ticks at once."""
    config = load_config(config_file)
    spec = config.monitors.monitor("failed-logins")
    path = tmp_path / "tw.duckdb"
    script = (
        "import os, sys, pandas as pd\n"
        "from telewatch.services.monitor import acquire_lease, default_holder\n"
        "from telewatch.store.db import Store\n"
        "store = Store(sys.argv[1])\n"
        "assert acquire_lease(store, monitor=sys.argv[2], holder=default_holder(), ttl=pd.Timedelta(hours=1))\n"
        "store.cursor().execute('CHECKPOINT')\n"
        "os.kill(os.getpid(), 9)\n"  # killed holding the lease, as in the middle of a tick
    )
    done = subprocess.run([sys.executable, "-c", script, str(path), spec.name], timeout=120, check=False)
    assert done.returncode == -9
    with Store(path) as store:
        (left,) = store.cursor().execute("SELECT holder, expires_at FROM monitor_leases").fetchall()
        assert pd.Timestamp(left[1]).tz_localize("UTC") > pd.Timestamp.now(tz="UTC") + pd.Timedelta(
            minutes=50
        )
        report = run_monitor(spec, store=store, now=T0 + minutes(90))
        assert report.status == "ok", report.error
        assert report.points > 0
        assert store.cursor().execute("SELECT count(*) FROM monitor_leases").fetchall() == [(0,)]


def test_runs_never_overlap(config_file: Path, tmp_path: Path) -> None:
    config = load_config(config_file)
    spec = config.monitors.monitor("failed-logins")
    with Store(tmp_path / "tw.duckdb") as store:
        other_run = default_holder()  # another run of this process (e.g. `telewatch serve`'s API)
        assert acquire_lease(store, monitor=spec.name, holder=other_run, ttl=pd.Timedelta(minutes=5))
        busy = run_monitor(spec, store=store, now=T0 + minutes(90))
        assert busy.status == "busy"
        assert busy.points == 0
        assert read_state(store, spec.name).status == "never"
        release_lease(store, monitor=spec.name, holder=other_run)
        assert run_monitor(spec, store=store, now=T0 + minutes(90)).status == "ok"
        # the tick is idempotent: the same now again stores and scores nothing
        again = run_monitor(spec, store=store, now=T0 + minutes(90))
        assert again.status == "ok"
        assert again.points == 0
        assert again.scored == 0


def test_run_once_and_status_commands(config_file: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from telewatch.cli.app import app

    db = tmp_path / "cli.duckdb"
    result = CliRunner().invoke(app, ["run", "--once", "--config", str(config_file), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "failed-logins: ok" in result.output
    assert "late-file: error" in result.output
    assert "not-yet.jsonl" in result.output
    status = CliRunner().invoke(app, ["monitors", "status", "--db", str(db)], env={"COLUMNS": "200"})
    assert status.exit_code == 0, status.output
    assert "failed-logins" in status.output
    assert "late-file" in status.output
    assert "error" in status.output
    # `check` exits 1 when a monitor failed (for cron and CI)
    check = CliRunner().invoke(app, ["check", "--config", str(config_file), "--db", str(db)])
    assert check.exit_code == 1
