"""Messages from editable Jinja2 templates (en, ru): Telegram HTML, e-mail HTML, plain text, subject.

Templates live in ``alerts/templates/<lang>/``; a ``templates_dir`` in the configuration with the same
layout overrides any of them file by file (``templates_dir/ru/telegram.html.j2`` replaces only that one).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
from jinja2 import ChoiceLoader, FileSystemLoader, PackageLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

from telewatch.alerts.config import Links, format_link
from telewatch.alerts.model import AlertCandidate, severity_rank

TELEGRAM_TEXT_LIMIT = 4096
TELEGRAM_CAPTION_LIMIT = 1024
MAX_ALERTS_SHOWN = 10


@dataclass(frozen=True)
class AlertEvent:
    """One candidate as a message shows it: what happened (firing, update, repeat, resolved) and to whom."""

    candidate: AlertCandidate
    event: str
    severity: str
    owner: str | None
    rule: str | None = None


@dataclass(frozen=True)
class Rendered:
    subject: str
    body_html: str
    body_email: str
    body_text: str
    summary: str
    payload: dict[str, Any]


def format_number(value: float | None) -> str:
    """Four significant digits, thin grouping: ``1234.5`` → ``1,234``; ``0.012345`` → ``0.01235``.

    >>> format_number(1234.5), format_number(0.012345), format_number(None)
    ('1,234', '0.01235', '—')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, 3 - magnitude)
    return f"{value:,.{decimals}f}"


def format_duration(delta: pd.Timedelta, language: str = "en") -> str:
    """``pd.Timedelta('2h5min')`` → ``2 h 5 min`` (``2 ч 5 мин`` in Russian).

    >>> format_duration(pd.Timedelta("2h5min")), format_duration(pd.Timedelta(days=1, hours=3), "ru")
    ('2 h 5 min', '1 д 3 ч')
    """
    units = {"en": ("d", "h", "min", "s"), "ru": ("д", "ч", "мин", "с")}.get(language, ("d", "h", "min", "s"))
    seconds = max(0, int(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{v} {u}" for v, u in zip((days, hours, minutes, secs), units, strict=True) if v]
    return " ".join(parts[:2]) or f"0 {units[3]}"


def deviation_floor(deviation_pct: float | None) -> str | None:
    """The figure in "deviation more than X%": the absolute deviation rounded down to a round number.

    >>> deviation_floor(143.7), deviation_floor(-37.2), deviation_floor(7.9), deviation_floor(None)
    ('140', '35', '7', None)
    """
    if deviation_pct is None or math.isnan(deviation_pct):
        return None
    dev = abs(deviation_pct)
    step = 1 if dev < 20 else 5 if dev < 100 else 10 if dev < 1000 else 100
    return str(int(dev // step * step))


def slice_text(labels: dict[str, str]) -> str:
    """``{"dc": "eu", "host": "a"}`` → ``dc=eu, host=a``."""
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _iso(ts: pd.Timestamp) -> str:
    return ts.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def alert_fields(
    event: AlertEvent, *, links: Links, now: pd.Timestamp, language: str, chart_hours: float
) -> dict[str, Any]:
    """Everything templates and webhooks know about one alert (JSON-serialisable)."""
    c = event.candidate
    started, last = c.started_at.tz_convert("UTC"), c.last_seen.tz_convert("UTC")
    window_start = min(started, last - pd.Timedelta(hours=chart_hours))
    link_fields = {
        "base_url": links.base,
        "metric": c.metric,
        "metric_q": quote(c.metric, safe=""),
        "labels": dict(c.labels),
        "labels_q": quote(",".join(f"{k}={v}" for k, v in sorted(c.labels.items())), safe=""),
        "slice_q": quote(slice_text(c.labels), safe=""),
        "monitor": c.monitor,
        "from_iso": _iso(window_start),
        "to_iso": _iso(last + pd.Timedelta(minutes=30)),
        "start_ms": int(window_start.timestamp() * 1000),
        "end_ms": int((last + pd.Timedelta(minutes=30)).timestamp() * 1000),
        "incident_id": c.incident_id if c.incident_id is not None else "",
        "key_q": quote(c.key, safe=""),
    }
    deviation = c.deviation_pct
    direction = None
    if deviation is not None and not math.isnan(deviation):
        direction = "above" if deviation >= 0 else "below"
    return {
        "key": c.key,
        "event": event.event,
        "status": "resolved" if event.event == "resolved" else "firing",
        "monitor": c.monitor,
        "metric": c.metric,
        "labels": dict(c.labels),
        "slice": slice_text(c.labels),
        "group": c.group,
        "value": c.value,
        "value_text": format_number(c.value),
        "expected": c.expected,
        "expected_text": format_number(c.expected) if c.expected is not None else None,
        "lower": c.lower,
        "upper": c.upper,
        "band_text": (
            f"{format_number(c.lower)} – {format_number(c.upper)}"
            if c.lower is not None and c.upper is not None
            else None
        ),
        "deviation_pct": deviation,
        "deviation_more_than": deviation_floor(deviation),
        "direction": direction,
        "score": round(float(c.score), 3),
        "severity": event.severity,
        "started_at": _iso(started),
        "started_text": started.strftime("%Y-%m-%d %H:%M UTC"),
        "last_seen": _iso(last),
        "duration_text": format_duration(max(last, now) - started, language),
        "owner": event.owner,
        "incident_id": c.incident_id,
        "incident_type": c.incident_type,
        "related": list(c.related),
        "rule": event.rule,
        "chart_url": format_link(links.chart, link_fields),
        "incident_url": format_link(links.incident, link_fields) if c.incident_id is not None else None,
        "dashboards": [{"title": d.title, "url": format_link(d.url, link_fields)} for d in links.dashboards],
    }


@lru_cache(maxsize=16)
def _environment(templates_dir: str | None) -> SandboxedEnvironment:
    """One Jinja environment per templates directory: compiled templates are reused across renders.
    (Edits to override files are picked up: Jinja checks their modification time.)"""
    loaders: list[Any] = []
    if templates_dir is not None:
        loaders.append(FileSystemLoader(templates_dir))
    loaders.append(PackageLoader("telewatch.alerts", "templates"))
    # Sandboxed: templates are user-editable files; they get data, not our objects' internals.
    env = SandboxedEnvironment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["num"] = format_number
    return env


class Renderer:
    """Renders notifications with the packaged templates, overridden by ``templates_dir`` when given."""

    def __init__(
        self, *, templates_dir: Path | None = None, links: Links | None = None, chart_hours: float = 6.0
    ):
        self.env = _environment(str(templates_dir) if templates_dir is not None else None)
        self.links = links or Links()
        self.chart_hours = chart_hours

    def _render(self, language: str, name: str, context: dict[str, Any]) -> str:
        return self.env.get_template(f"{language}/{name}").render(**context).strip()

    def render(
        self,
        events: Sequence[AlertEvent],
        *,
        kind: str,
        language: str,
        now: pd.Timestamp,
        chart_cid: str | None = None,
    ) -> Rendered:
        """Render one notification carrying ``events`` (several when one incident groups metrics)."""
        # the most severe first, then the most anomalous: what a person should look at leads
        ordered = sorted(
            events, key=lambda e: (-severity_rank(e.severity), -e.candidate.score, e.candidate.key)
        )
        alerts = [
            alert_fields(e, links=self.links, now=now, language=language, chart_hours=self.chart_hours)
            for e in ordered
        ]
        severity = max((a["severity"] for a in alerts), key=severity_rank, default="info")
        incidents = {a["incident_id"] for a in alerts if a["incident_id"] is not None}
        owners = sorted({a["owner"] for a in alerts if a["owner"]})
        first = alerts[0]
        context = {
            "kind": kind,
            "severity": severity,
            "alerts": alerts[:MAX_ALERTS_SHOWN],
            "more": max(0, len(alerts) - MAX_ALERTS_SHOWN),
            "count": len(alerts),
            "first": first,
            "grouped": len(alerts) > 1,
            "incident_id": next(iter(incidents)) if len(incidents) == 1 else None,
            "incident_type": first["incident_type"],
            "incident_url": first["incident_url"] if len(incidents) == 1 else None,
            "owners": owners,
            "all_resolved": all(a["status"] == "resolved" for a in alerts),
            "base_url": self.links.base,
            "generated_at": now.tz_convert("UTC").strftime("%Y-%m-%d %H:%M UTC"),
            "chart_cid": chart_cid,
        }
        body_html = self._render(language, "telegram.html.j2", context)
        if len(body_html) > TELEGRAM_TEXT_LIMIT:
            context["alerts"] = alerts[:1]
            context["more"] = len(alerts) - 1
            body_html = self._render(language, "telegram.html.j2", context)
        payload = {
            "kind": kind,
            "severity": severity,
            "status": "resolved" if context["all_resolved"] else "firing",
            "incident_id": context["incident_id"],
            "owners": owners,
            "alerts": alerts,
        }
        return Rendered(
            subject=self._render(language, "subject.txt.j2", context).replace("\n", " "),
            body_html=_fit(body_html, TELEGRAM_TEXT_LIMIT),
            body_email=self._render(language, "email.html.j2", context),
            body_text=self._render(language, "text.txt.j2", context),
            summary=self._render(language, "summary.txt.j2", context).replace("\n", " "),
            payload=payload,
        )

    def render_digest(self, items: Sequence[dict[str, Any]], *, language: str, now: pd.Timestamp) -> Rendered:
        """One message listing held notifications (``items``: summary, severity, created_at, payload)."""
        severity = max((i["severity"] for i in items), key=severity_rank, default="info")
        context = {
            "kind": "digest",
            "severity": severity,
            "items": items,
            "count": len(items),
            "base_url": self.links.base,
            "generated_at": now.tz_convert("UTC").strftime("%Y-%m-%d %H:%M UTC"),
        }
        body_html = self._render(language, "digest.html.j2", context)
        text = self._render(language, "digest.txt.j2", context)
        alerts = [a for i in items for a in i["payload"].get("alerts", [])]
        return Rendered(
            subject=text.splitlines()[0],
            body_html=_fit(body_html, TELEGRAM_TEXT_LIMIT),
            body_email="<html><body>" + body_html.replace("\n", "<br>\n") + "</body></html>",
            body_text=text,
            summary=text.splitlines()[0],
            payload={"kind": "digest", "severity": severity, "status": "firing", "alerts": alerts},
        )


def _fit(body_html: str, limit: int) -> str:
    """Telegram refuses longer texts; a cut inside a tag would be refused too, so fall back to plain text."""
    if len(body_html) <= limit:
        return body_html
    import re

    plain = html.unescape(re.sub(r"<[^>]+>", "", body_html))
    return html.escape(plain[: limit - 200]) + "\n…"


def caption(summary: str) -> str:
    """A photo caption (HTML-escaped, within Telegram's 1024 characters)."""
    text = html.escape(summary)
    return text if len(text) <= TELEGRAM_CAPTION_LIMIT else text[: TELEGRAM_CAPTION_LIMIT - 1] + "…"
