"""Generic webhook: JSON in one of three shapes, with an ``Idempotency-Key`` header per notification.

* ``json`` — telewatch's own: kind, severity, text, the alerts with every field (and the chart as base64
  when ``send_chart``);
* ``slack`` — ``{"text", "attachments"}``, accepted by Slack and Mattermost incoming webhooks;
* ``alertmanager`` — the body Prometheus Alertmanager posts to its webhook receivers (version 4), so
  tools that consume Alertmanager notifications take telewatch's as they are.

A re-sent notification carries the same ``Idempotency-Key`` (and ``X-Telewatch-Idempotency-Key``), so a
receiver that remembers keys processes it once.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import httpx

from telewatch.alerts.channels.base import Checkpoint, DeliveryError, HttpChannel, SendResult
from telewatch.alerts.config import WebhookChannel
from telewatch.alerts.model import OutboundMessage
from telewatch.core.secrets import mask_url, redact

_COLORS = {"critical": "#d62728", "warning": "#fd8d3c", "info": "#3182bd", "resolved": "#31a354"}


def slack_body(message: OutboundMessage) -> dict[str, Any]:
    alerts = message.payload.get("alerts", [])
    attachments = []
    for a in alerts:
        color = (
            _COLORS["resolved"]
            if a.get("status") == "resolved"
            else _COLORS.get(a.get("severity", ""), "#999")
        )
        fields = [{"title": "Value", "value": a.get("value_text", ""), "short": True}]
        if a.get("expected_text"):
            band = f" (band {a['band_text']})" if a.get("band_text") else ""
            fields.append({"title": "Expected", "value": a["expected_text"] + band, "short": True})
        if a.get("deviation_more_than") is not None:
            fields.append(
                {
                    "title": "Deviation",
                    "value": f"more than {a['deviation_more_than']}{a.get('deviation_unit', '%')}",
                    "short": True,
                }
            )
        if a.get("owner"):
            fields.append({"title": "Owner", "value": a["owner"], "short": True})
        title = a.get("metric", "") + (f" [{a['slice']}]" if a.get("slice") else "")
        attachments.append(
            {
                "fallback": message.summary,
                "color": color,
                "title": title,
                "title_link": a.get("chart_url"),
                "text": f"{a.get('status')} since {a.get('started_text')}"
                + (f" · incident #{a['incident_id']}" if a.get("incident_id") is not None else ""),
                "fields": fields,
                "footer": "telewatch",
            }
        )
    return {"text": message.body_text.split("\n", 1)[0] + "\n" + message.summary, "attachments": attachments}


def alertmanager_body(message: OutboundMessage, *, receiver: str, external_url: str) -> dict[str, Any]:
    """Alertmanager's webhook payload (version 4)."""
    alerts = []
    for a in message.payload.get("alerts", []):
        labels = {"alertname": a["metric"], "severity": a["severity"], "monitor": a["monitor"], **a["labels"]}
        if a.get("incident_id") is not None:
            labels["incident_id"] = str(a["incident_id"])
        annotations = {
            "summary": f"{a['metric']} {a['value_text']}"
            + (f" (expected {a['expected_text']})" if a.get("expected_text") else ""),
            "description": message.summary,
            "value": str(a["value"]),
        }
        for key in ("expected", "lower", "upper", "deviation_pct", "score", "owner", "incident_type"):
            if a.get(key) is not None:
                annotations[key] = str(a[key])
        if a.get("related"):
            annotations["related"] = ",".join(a["related"])
        resolved = a.get("status") == "resolved"
        alerts.append(
            {
                "status": "resolved" if resolved else "firing",
                "labels": labels,
                "annotations": annotations,
                "startsAt": a["started_at"],
                "endsAt": a["last_seen"] if resolved else "0001-01-01T00:00:00Z",
                "generatorURL": a.get("chart_url", ""),
                "fingerprint": hashlib.sha256(a["key"].encode()).hexdigest()[:16],
            }
        )
    common = dict(alerts[0]["labels"]) if alerts else {}
    for alert in alerts[1:]:
        common = {k: v for k, v in common.items() if alert["labels"].get(k) == v}
    return {
        "version": "4",
        "groupKey": f"{receiver}:{message.payload.get('group_key', message.idempotency_key)}",
        "truncatedAlerts": 0,
        "status": message.payload.get("status", "firing"),
        "receiver": receiver,
        "groupLabels": {"alertname": common["alertname"]} if "alertname" in common else {},
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": external_url,
        "alerts": alerts,
    }


class WebhookSender(HttpChannel):
    kind = "webhook"

    def __init__(self, name: str, config: WebhookChannel, *, external_url: str = "") -> None:
        super().__init__(name, config)
        self.config = config
        self.external_url = external_url

    def secrets(self) -> list[str]:
        found = [v.get_secret_value() for v in self.config.headers.values()]
        url = httpx.URL(str(self.config.url))
        if url.password:
            found.append(url.password)
        if url.username:
            found.append(url.username)
        if url.query:  # tokens often ride in the query string (?token=..., ?sig=...), whatever their length
            found.extend(v for _, v in url.params.multi_items() if v)
        # Slack/Mattermost hook URLs carry their secret in the path: any segment may be it (as in mask_url)
        found.extend(part for part in url.path.split("/") if part)
        return found

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.kind,
            "url": mask_url(self.config.url),
            "format": self.config.format,
            "headers": sorted(self.config.headers),
            "language": self.config.language,
        }

    def body(self, message: OutboundMessage) -> dict[str, Any]:
        if self.config.format == "slack":
            return slack_body(message)
        if self.config.format == "alertmanager":
            return alertmanager_body(message, receiver=self.name, external_url=self.external_url)
        body: dict[str, Any] = {
            "idempotency_key": message.idempotency_key,
            "kind": message.kind,
            "severity": message.severity,
            "subject": message.subject,
            "text": message.body_text,
            "summary": message.summary,
            "created_at": message.created_at.isoformat(),
            **message.payload,
        }
        if self.config.send_chart and message.chart_png:
            body["chart_png_base64"] = base64.b64encode(message.chart_png).decode("ascii")
        return body

    def send(
        self, message: OutboundMessage, *, progress: dict[str, Any], checkpoint: Checkpoint
    ) -> SendResult:
        headers = {k: v.get_secret_value() for k, v in self.config.headers.items()}
        headers["Idempotency-Key"] = message.idempotency_key
        headers["X-Telewatch-Idempotency-Key"] = message.idempotency_key
        try:
            response = self._client.post(str(self.config.url), json=self.body(message), headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(redact(f"webhook: {type(exc).__name__}: {exc}", self.secrets())) from None
        if 200 <= response.status_code < 300:
            return SendResult(remote_id=response.headers.get("x-request-id"))
        retry_after = response.headers.get("retry-after")
        raise DeliveryError(
            redact(f"webhook: HTTP {response.status_code}: {response.text[:200]}", self.secrets()),
            status=response.status_code,
            retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
        )
