"""The Airflow DAG factory, for real: Airflow 3.3 in its own virtual environment (created once under
``.cache/airflow-venv`` and reused), ``airflow db migrate`` on SQLite and ``airflow dags test``; a tick
through Airflow raises the same alert as ``telewatch check``."""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from support.webhook import WebhookReceiver

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".cache" / "airflow-venv"
AIRFLOW_SPEC = "apache-airflow==3.3.2"
STAMP = VENV / ".telewatch-stamp"
TELEWATCH = Path(sys.executable).with_name("telewatch")
T0 = pd.Timestamp("2026-03-01 00:00", tz="UTC")


def ensure_airflow_venv(timeout: float = 900) -> Path:
    """Airflow in its own venv, installed once (about 2 minutes here) and reused while the spec is unchanged."""
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with (VENV.parent / "airflow-venv.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test sessions wait for one install
        if STAMP.exists() and STAMP.read_text() == AIRFLOW_SPEC and (VENV / "bin" / "airflow").exists():
            return VENV / "bin" / "airflow"
        started = time.monotonic()
        python = (
            "python3.11"
            if subprocess.run(["which", "python3.11"], capture_output=True).returncode == 0
            else sys.executable
        )
        subprocess.run([python, "-m", "venv", "--clear", str(VENV)], check=True, timeout=120)
        subprocess.run(
            [str(VENV / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", AIRFLOW_SPEC],
            check=True,
            timeout=timeout,
        )
        STAMP.write_text(AIRFLOW_SPEC)
        print(f"installed {AIRFLOW_SPEC} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return VENV / "bin" / "airflow"


def _write_logins(path: Path) -> None:
    rng = np.random.default_rng(11)
    lines = []
    for m in range(135):
        n = 250 if m in (121, 122, 123) else int(rng.poisson(15))
        for k in range(n):
            ts = T0 + pd.Timedelta(minutes=m, seconds=59 * k / max(n, 1))
            lines.append(json.dumps({"ts": ts.isoformat(), "event": "login", "result": "fail"}))
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as r:
        yield r


@pytest.fixture
def setup(tmp_path: Path, receiver: WebhookReceiver) -> dict[str, Path]:
    _write_logins(tmp_path / "auth.jsonl")
    hook_port = receiver.port
    config = tmp_path / "monitors.yaml"
    config.write_text(
        f"""
alerting:
  channels:
    ops-hook: {{type: webhook, url: "http://127.0.0.1:{hook_port}/", format: json}}
monitors:
  - name: failed-logins
    owner: "@secops"
    source: {{type: logs, path: auth.jsonl, counts: [{{name: failed_logins, where: {{result: fail}}}}]}}
    schedule: {{every: 15m}}
    train: {{every: 1d, window: 1d, min_points: 60, warm_up: 0s}}
    alert: {{severity: critical, recovered_severity: critical}}  # a burst of failed logins pages even when over
    channels: [ops-hook]
"""
    )
    return {"config": config, "dir": tmp_path}


def _airflow_doc_examples() -> tuple[list[str], str, list[str]]:
    """From docs/monitors.md's Airflow section: the install lines, the DAG file, the airflow commands."""
    text = (REPO / "docs" / "monitors.md").read_text(encoding="utf-8")
    section = text.split("\n## Airflow\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^ *```(\w*)\n(.*?)^ *```", section, re.S | re.M)
    shell = [body for lang, body in blocks if lang == "bash"]
    (dag_file,) = [textwrap.dedent(body) for lang, body in blocks if lang == "python"]
    assert len(shell) == 2
    install = [ln.split("#", 1)[0].strip() for ln in shell[0].splitlines() if ln.strip()]
    commands = [ln.split(" #", 1)[0].strip() for ln in shell[1].splitlines() if ln.strip()]
    return install, dag_file, commands


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(TELEWATCH), *args], capture_output=True, text=True, timeout=300, check=False)


def _alerts(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keep = ("metric", "labels", "monitor", "status", "severity", "value", "started_at", "key")
    return [{k: a.get(k) for k in keep} for b in bodies for a in b.get("alerts", [])]


@pytest.mark.slow
def test_a_tick_through_airflow_raises_the_same_alert_as_check(
    setup: dict[str, Path], receiver: WebhookReceiver
) -> None:
    airflow = ensure_airflow_venv()
    config, work = setup["config"], setup["dir"]
    first, second = T0 + pd.Timedelta(minutes=120), T0 + pd.Timedelta(minutes=135)

    # the reference: two ticks with `telewatch check` (the first trains, the second sees the burst)
    ref_db = work / "ref.duckdb"
    for tick in (first, second):
        result = _cli("check", "--config", str(config), "--db", str(ref_db), "--now", tick.isoformat())
        assert result.returncode == 0, result.stdout + result.stderr
    reference = _alerts(receiver.bodies)
    assert [(a["status"], a["metric"], a["severity"]) for a in reference] == [
        ("firing", "failed_logins", "critical")
    ]
    receiver.clear()

    # the same first tick with `telewatch check`, the second one through Airflow
    af_db = work / "airflow.duckdb"
    result = _cli("check", "--config", str(config), "--db", str(af_db), "--now", first.isoformat())
    assert result.returncode == 0, result.stdout + result.stderr
    assert receiver.bodies == []
    home = work / "airflow-home"
    dags = home / "dags"
    dags.mkdir(parents=True)
    # the install and the DAG file of docs/monitors.md, as written there (paths swapped for the test's)
    install, dag_file, commands = _airflow_doc_examples()
    target = work / "airflow-path"
    pip = next(ln for ln in install if "--no-deps --target" in ln).split()
    assert pip[1:6] == [
        "install",
        "--no-deps",
        "--target",
        "/opt/telewatch/airflow-path",
        "/path/to/telewatch",
    ]
    quiet = ["--quiet", "--disable-pip-version-check"]
    subprocess.run(
        [sys.executable, "-m", "pip", *pip[1:3], *quiet, "--target", str(target), str(REPO)],
        check=True,
        timeout=600,
    )
    paths = {
        "/opt/telewatch/airflow-path": str(target),
        "/etc/telewatch/monitors.yaml": str(config),
        "/opt/telewatch/.venv/bin/telewatch": str(TELEWATCH),
        "/var/lib/telewatch/telewatch.duckdb": str(af_db),
    }
    for old, new in paths.items():
        assert old in dag_file, old
        dag_file = dag_file.replace(old, new)
    (dags / "telewatch_dags.py").write_text(dag_file)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "PATH": f"{airflow.parent}:{os.environ.get('PATH', '')}",
    }
    env.pop("VIRTUAL_ENV", None)
    migrate = subprocess.run(
        [str(airflow), "db", "migrate"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]
    assert commands == ["airflow dags reserialize", "airflow dags list | grep telewatch_"]
    for command in commands:  # `dags reserialize` parses the DAG file: the monitor's DAG is listed
        done = subprocess.run(
            command.replace("airflow ", f"{airflow} ", 1),
            shell=True,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, command + ": " + done.stdout[-2000:] + done.stderr[-2000:]
    assert "telewatch_failed-logins" in done.stdout
    run = subprocess.run(
        [str(airflow), "dags", "test", "telewatch_failed-logins", second.isoformat()],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    log = run.stdout + run.stderr
    assert "DagRun Finished: dag_id=telewatch_failed-logins, logical_date=2026-03-01 02:15:00+00:00" in log
    assert "state=success" in log
    assert "failed-logins @ 2026-03-01 02:15 UTC: ok" in log
    assert _alerts(receiver.bodies) == reference
