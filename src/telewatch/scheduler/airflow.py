"""An Airflow DAG factory: one DAG per monitor, each running the same job as ``telewatch check``.

Put a file like this in Airflow's ``dags/`` folder::

    from telewatch.scheduler.airflow import build_dags

    globals().update(build_dags("/etc/telewatch/monitors.yaml", telewatch_bin="/opt/telewatch/bin/telewatch"))

Each DAG is scheduled like its monitor (``cron`` as is, ``every`` as a timedelta), allows one active run
at a time (runs never overlap) and retries with exponential backoff. Airflow's catch-up is off:
telewatch catches up by itself from the last run it stored.

Two modes:

- ``mode="subprocess"`` (default): a BashOperator runs ``telewatch check --monitor NAME --now <logical
  date>``, so telewatch can live in its own environment; this module then needs only PyYAML from
  Airflow's environment (it reads the monitor names and schedules, telewatch validates the rest).
- ``mode="python"``: a PythonOperator calls :func:`telewatch.scheduler.jobs.airflow_task` in Airflow's
  worker (telewatch installed in Airflow's environment).
"""

from __future__ import annotations

import re
import shlex
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d|w)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
NOW_TEMPLATE = "{{ (logical_date or dag_run.run_after).isoformat() }}"


def _duration(value: Any) -> timedelta:
    if isinstance(value, int | float):
        return timedelta(seconds=float(value))
    text = str(value).strip().lower().replace(" ", "")
    total, pos = 0.0, 0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not text or pos != len(text):
        raise ValueError(f"not a duration: {value!r}")
    return timedelta(seconds=total)


def read_schedules(config: str | Path) -> list[dict[str, Any]]:
    """Name, schedule (a cron string or a timedelta), owner and enabled flag of each monitor in the file.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.yaml"
    >>> _ = p.write_text("monitors:\\n  - name: web\\n    schedule: {every: 15m}\\n    source: {}\\n")
    >>> read_schedules(p)[0]["schedule"]
    datetime.timedelta(seconds=900)
    """
    data = yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}
    out = []
    for item in data.get("monitors") or []:
        schedule = item.get("schedule") or {"every": "15m"}
        when: str | timedelta = (
            schedule["cron"] if "cron" in schedule else _duration(schedule.get("every", "15m"))
        )
        out.append(
            {
                "name": str(item["name"]),
                "schedule": when,
                "owner": str(item.get("owner") or "telewatch"),
                "enabled": bool(item.get("enabled", True)),
                "description": item.get("description"),
            }
        )
    return out


def bash_command(
    *, telewatch_bin: str, config: str | Path, monitor: str, db: str | Path | None = None
) -> str:
    """The command a subprocess-mode task runs (the logical date is filled in by Airflow).

    >>> print(bash_command(telewatch_bin="telewatch", config="/etc/m.yaml", monitor="web"))
    telewatch check --config /etc/m.yaml --monitor web --now '{{ (logical_date or dag_run.run_after).isoformat() }}'
    """
    parts = [telewatch_bin, "check", "--config", str(config), "--monitor", monitor]
    if db is not None:
        parts += ["--db", str(db)]
    return " ".join(shlex.quote(p) for p in parts) + f" --now '{NOW_TEMPLATE}'"


def build_dags(
    config: str | Path,
    *,
    telewatch_bin: str | None = None,
    db: str | Path | None = None,
    mode: str = "subprocess",
    dag_id_prefix: str = "telewatch_",
    start_date: datetime | None = None,
    retries: int = 3,
    retry_delay: timedelta = timedelta(minutes=1),
    tags: list[str] | None = None,
) -> dict[str, Any]:
    """One Airflow DAG per enabled monitor of ``config``, keyed by DAG id (put them in ``globals()``)."""
    from airflow.sdk import DAG

    if mode not in {"subprocess", "python"}:
        raise ValueError(f"mode must be 'subprocess' or 'python', not {mode!r}")
    config = str(Path(config).resolve())
    binary = telewatch_bin or shutil.which("telewatch") or "telewatch"
    start = start_date or datetime(2024, 1, 1)
    dags: dict[str, Any] = {}
    for item in read_schedules(config):
        if not item["enabled"]:
            continue
        dag_id = dag_id_prefix + re.sub(r"[^A-Za-z0-9_.-]", "_", item["name"])
        dag = DAG(
            dag_id=dag_id,
            schedule=item["schedule"],
            start_date=start,
            catchup=False,
            max_active_runs=1,
            description=item["description"] or f"telewatch monitor {item['name']}",
            tags=tags or ["telewatch"],
            default_args={
                "owner": item["owner"],
                "retries": retries,
                "retry_delay": retry_delay,
                "retry_exponential_backoff": True,
            },
        )
        with dag:
            if mode == "subprocess":
                from airflow.providers.standard.operators.bash import BashOperator

                BashOperator(
                    task_id="check",
                    bash_command=bash_command(
                        telewatch_bin=binary, config=config, monitor=item["name"], db=db
                    ),
                )
            else:
                from airflow.providers.standard.operators.python import PythonOperator

                from telewatch.scheduler.jobs import airflow_task

                PythonOperator(
                    task_id="check",
                    python_callable=airflow_task,
                    op_kwargs={"config": config, "monitor": item["name"], "db": str(db) if db else None},
                )
        dags[dag_id] = dag
    return dags
