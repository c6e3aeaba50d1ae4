"""Links in alert messages: the link templates of the alerting configuration and how they are filled.

Below :mod:`telewatch.alerts.config` (which holds them in ``links:``) and
:mod:`telewatch.alerts.render` (which fills them for each message).
"""

from __future__ import annotations

import re
import string
from typing import Any

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DashboardLink(_Model):
    """An external dashboard; ``url`` is a template with {metric}, {labels[host]}, {start_ms}, {end_ms}, ..."""

    title: str
    url: str


LINK_FIELDS = {
    "base_url": "http://telewatch",
    "metric": "m",
    "metric_q": "m",
    "labels": {},
    "labels_q": "",
    "slice_q": "",
    "monitor": "mon",
    "from_iso": "2026-01-01T00:00:00Z",
    "to_iso": "2026-01-01T06:00:00Z",
    "start_ms": 0,
    "end_ms": 0,
    "incident_id": 1,
    "key_q": "k",
}


class _AnyLabel(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def format_link(template: str, fields: dict[str, Any]) -> str:
    """Fill a link template: ``{base_url}``, ``{metric}``, ``{metric_q}`` (URL-quoted), ``{labels[host]}``,
    ``{labels_q}`` (``k=v,...`` URL-quoted), ``{from_iso}``, ``{to_iso}``, ``{start_ms}``, ``{end_ms}``,
    ``{incident_id}``, ``{monitor}``.

    >>> format_link("{base_url}/x?m={metric_q}&h={labels[host]}", {**LINK_FIELDS, "metric_q": "a%20b",
    ...             "labels": {"host": "h1"}})
    'http://telewatch/x?m=a%20b&h=h1'
    """
    values = dict(fields)
    values["labels"] = _AnyLabel(fields.get("labels") or {})
    return _LINK_FORMATTER.vformat(template, (), values)


class _LinkFormatter(string.Formatter):
    """``str.format`` without attribute access (``{metric.__class__}``) or giant widths: link templates
    come from the configuration file, and ``{labels.__missing__.__globals__}`` would reach our modules."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        match = re.fullmatch(r"(\w+)((?:\[[^\]]*\])*)", field_name)
        if match is None or field_name.startswith("_"):
            raise ValueError(f"{{{field_name}}}: only plain fields and [keys] are allowed in a link template")
        obj = self.get_value(match.group(1), args, kwargs)
        for key in re.findall(r"\[([^\]]*)\]", match.group(2)):
            obj = obj[key]
        return obj, match.group(1)

    def format_field(self, value: Any, format_spec: str) -> Any:
        if any(int(n) > 1000 for n in re.findall(r"\d+", format_spec)):
            raise ValueError(f"format spec {format_spec!r} is too wide for a link template")
        return super().format_field(value, format_spec)


_LINK_FORMATTER = _LinkFormatter()


class Links(_Model):
    """Links put in messages. ``chart`` and ``incident`` are templates over the fields of :func:`format_link`."""

    base_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8000")
    chart: str = "{base_url}/explore?metric={metric_q}&labels={labels_q}&from={from_iso}&to={to_iso}"
    incident: str = "{base_url}/incidents/{incident_id}"
    dashboards: list[DashboardLink] = Field(default_factory=list)

    @model_validator(mode="after")
    def _templates(self) -> Links:
        templates = [("chart", self.chart), ("incident", self.incident)]
        templates += [(f"dashboards.{i}.url", d.url) for i, d in enumerate(self.dashboards)]
        for where, template in templates:
            try:
                format_link(template, LINK_FIELDS)
            except (KeyError, IndexError, ValueError, AttributeError) as exc:
                raise ValueError(
                    f"{where}: link template {template!r} uses an unknown field {exc}"
                    f" (known: {', '.join(sorted(LINK_FIELDS))})"
                ) from None
        return self

    @property
    def base(self) -> str:
        return str(self.base_url).rstrip("/")
