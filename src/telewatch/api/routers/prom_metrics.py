"""``GET /metrics``: Prometheus exposition format, for Grafana and Alertmanager.

Exposes each metric's latest anomaly score per detector, anomaly and incident counts, feedback
counts, and telewatch's own health (store size, schema version, alert outbox backlog, uptime).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from telewatch import __version__
from telewatch.api.deps import StoreDep
from telewatch.services import status
from telewatch.store.db import Store

router = APIRouter(tags=["prometheus"])
_STARTED = time.time()
_NAME_RE = re.compile(r"[^a-zA-Z0-9_]")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _label_name(key: str, taken: Iterable[str]) -> str:
    name = _NAME_RE.sub("_", key) or "_"
    if name[0].isdigit() or name.startswith("__"):
        name = "l_" + name.lstrip("_")
    return "label_" + name if name in set(taken) else name


def _labels(pairs: Mapping[str, str]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in pairs.items()) + "}"


def _metric_labels(name: str, labels_json: str, **fixed: str) -> dict[str, str]:
    out = {"metric": name, **fixed}
    for key, value in json.loads(labels_json).items():
        out[_label_name(str(key), out)] = str(value)
    return out


class _Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        text = "NaN" if value != value else repr(float(value))
        self.lines.append(f"{name}{_labels(labels or {})} {text}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render_metrics(store: Store) -> str:
    """The exposition text (the store read in a handful of aggregate queries)."""
    stats = status.store_statistics(store)
    out = _Exposition()
    out.family("telewatch_up", "gauge", "1 when telewatch serves and its store answers.")
    out.sample("telewatch_up", 1.0)
    out.family("telewatch_build_info", "gauge", "telewatch's version.")
    out.sample("telewatch_build_info", 1.0, {"version": __version__})
    out.family("telewatch_uptime_seconds", "gauge", "Seconds since this process loaded the API.")
    out.sample("telewatch_uptime_seconds", round(time.time() - _STARTED, 3))
    out.family("telewatch_store_schema_version", "gauge", "Applied schema migration version of the store.")
    out.sample("telewatch_store_schema_version", float(stats.schema_version))

    names = stats.metrics
    out.family("telewatch_metrics", "gauge", "Metrics in the store.")
    out.sample("telewatch_metrics", float(len(names)))
    out.family("telewatch_points", "gauge", "Stored points (values and missing values).")
    out.sample("telewatch_points", float(stats.points))

    out.family("telewatch_metric_last_point_timestamp_seconds", "gauge", "Time of a metric's newest point.")
    for metric_id, last in stats.last_point:
        if metric_id in names:
            name, labels = names[metric_id]
            out.sample(
                "telewatch_metric_last_point_timestamp_seconds", float(last), _metric_labels(name, labels)
            )

    out.family("telewatch_anomaly_score", "gauge", "A metric's latest anomaly score per detector.")
    for metric_id, detector, score in stats.latest_scores:
        if metric_id in names:
            name, labels = names[metric_id]
            out.sample(
                "telewatch_anomaly_score", float(score), _metric_labels(name, labels, detector=detector)
            )

    out.family("telewatch_anomalies", "gauge", "Stored anomaly windows per metric and detector.")
    for metric_id, detector, count in stats.anomalies:
        if metric_id in names:
            name, labels = names[metric_id]
            out.sample("telewatch_anomalies", float(count), _metric_labels(name, labels, detector=detector))

    out.family(
        "telewatch_incidents", "gauge", "Incidents by status (0 when incident tracking is not set up)."
    )
    if stats.incidents_by_state is not None:
        for state, count in stats.incidents_by_state:
            out.sample("telewatch_incidents", float(count), {"status": state})
    else:
        out.sample("telewatch_incidents", 0.0, {"status": "open"})

    out.family("telewatch_alert_notifications", "gauge", "Alert notifications in the outbox by status.")
    for state, count in stats.notifications_by_status or []:
        out.sample("telewatch_alert_notifications", float(count), {"status": state})

    out.family("telewatch_feedback", "gauge", "Feedback given on incidents and anomalies, by kind.")
    for kind, count in stats.feedback_by_kind:
        out.sample("telewatch_feedback", float(count), {"kind": kind})
    return out.text()


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus exposition format 0.0.4"}},
)
def prometheus_metrics(store: StoreDep) -> PlainTextResponse:
    """Anomaly scores, incident counts and telewatch's own health for Prometheus to scrape."""
    return PlainTextResponse(render_metrics(store), media_type=CONTENT_TYPE)
