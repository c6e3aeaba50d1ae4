"""Messages from editable Jinja2 templates (en, ru): Telegram HTML, e-mail HTML, plain text, subject.

Templates live in ``alerts/templates/<lang>/``; a ``templates_dir`` in the configuration with the same
layout overrides any of them file by file (``templates_dir/ru/telegram.html.j2`` replaces only that one).

Override files are user input: they render in a hardened Jinja ``SandboxedEnvironment`` (HTML templates
autoescaped). Attributes starting with ``_`` are refused (no ``''.__class__.__mro__``, no
``cycler.__init__.__globals__``), ``lipsum`` is gone, and a render is bounded: loop steps and calls, the
size of strings, numbers and the output, format widths and wall time. Past a bound the render stops with
:class:`jinja2.exceptions.SecurityError`; :func:`check_templates` (run when the alerting configuration
is loaded) turns any such problem, and any syntax error, into a :class:`~telewatch.core.errors.ConfigError`
naming the file.
"""

from __future__ import annotations

import html
import math
import re
import string
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
from jinja2 import (
    ChoiceLoader,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    Template,
    TemplateError,
    nodes,
    select_autoescape,
)
from jinja2.exceptions import SecurityError
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment, safe_range
from jinja2.utils import pass_eval_context

from telewatch.alerts.chart import drawn
from telewatch.alerts.links import Links, format_link
from telewatch.alerts.model import AlertCandidate, severity_rank
from telewatch.alerts.sample import sample_candidate
from telewatch.core.errors import ConfigError
from telewatch.incidents.data_quality import DataQualityIssue
from telewatch.incidents.types import title_in

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
    #: an ``update`` that raised the severity: the severity people were told before ("escalated
    #: from warning"); None otherwise
    was: str | None = None


@dataclass(frozen=True)
class Rendered:
    subject: str
    body_html: str
    body_email: str
    body_text: str
    summary: str
    payload: dict[str, Any]


def format_number(value: float | None, language: str = "en") -> str:
    """Four significant digits, grouped as the language writes numbers: ``1234.5`` → ``1,234``;
    ``0.012345`` → ``0.01235``; in Russian a no-break space groups and a comma marks the decimals.

    >>> format_number(1234.5), format_number(0.012345), format_number(None)
    ('1,234', '0.01235', '—')
    >>> format_number(12345.6, "ru"), format_number(0.012345, "ru")
    ('12\u00a0346', '0,01235')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, 3 - magnitude)
    return _localised(f"{value:,.{decimals}f}", language)


def _localised(text: str, language: str) -> str:
    """``1,234.5`` as ``language`` writes it (Russian: ``1 234,5`` with a no-break space)."""
    if language != "ru":
        return text
    return text.replace(",", "\u00a0").replace(".", ",")


def format_duration(delta: pd.Timedelta, language: str = "en") -> str:
    """``pd.Timedelta('2h5min')`` → ``2 h 5 min`` (``2 ч 5 мин`` in Russian).

    >>> format_duration(pd.Timedelta("2h5min")), format_duration(pd.Timedelta(days=1, hours=3), "ru")
    ('2 h 5 min', '1 д 3 ч')
    >>> format_duration(pd.Timedelta("44min59s")), format_duration(pd.Timedelta("40s"))
    ('45 min', '40 s')
    """
    units = {"en": ("d", "h", "min", "s"), "ru": ("д", "ч", "мин", "с")}.get(language, ("d", "h", "min", "s"))
    seconds = max(0, int(delta.total_seconds()))
    if seconds >= 60:  # "45 min", not "44 min 59 s": seconds only for what lasted under a minute
        seconds = round(seconds / 60) * 60
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{v} {u}" for v, u in zip((days, hours, minutes, secs), units, strict=True) if v]
    return " ".join(parts[:2]) or f"0 {units[3]}"


def data_quality_text(issues: Sequence[DataQualityIssue], language: str = "en") -> str | None:
    """What the collection did around an anomaly, in one line (None when nothing): the reader of a
    "collection gap" alert sees the gap and the stale readings that followed it, not only a value.

    >>> from telewatch.incidents.data_quality import DataQualityIssue
    >>> t = pd.Timestamp("2024-04-19 10:31", tz="UTC")
    >>> gap = DataQualityIssue("collection_gap", t, t + pd.Timedelta(minutes=11), 12)
    >>> stuck = DataQualityIssue(
    ...     "stuck_value", t + pd.Timedelta(minutes=12), t + pd.Timedelta(minutes=25), 14, 504.06668
    ... )
    >>> data_quality_text([gap, stuck])
    'no readings 10:31–10:42 (12 min); the same reading, 504.1, 10:43–10:56 (14 readings)'
    >>> data_quality_text([gap, stuck], "ru")
    'нет показаний 10:31–10:42 (12 мин); одно и то же значение 504,1 10:43–10:56 (14 показаний)'
    """
    ru = language == "ru"
    parts = []
    for i in issues:
        span = f"{i.start.tz_convert('UTC'):%H:%M}–{i.end.tz_convert('UTC'):%H:%M}"
        if i.kind == "collection_gap":
            lasted = format_duration(i.end - i.start + (i.end - i.start) / max(i.points - 1, 1), language)
            parts.append(f"нет показаний {span} ({lasted})" if ru else f"no readings {span} ({lasted})")
        elif i.kind == "stuck_value":
            value = format_number(i.value, language)
            parts.append(
                f"одно и то же значение {value} {span} ({i.points} показаний)"
                if ru
                else f"the same reading, {value}, {span} ({i.points} readings)"
            )
        else:  # counter_reset
            at = f"{i.start.tz_convert('UTC'):%H:%M}"
            value = format_number(i.value, language)
            parts.append(
                f"сброс счётчика в {at} (до {value})" if ru else f"counter reset at {at} (to {value})"
            )
    return "; ".join(parts) or None


def deviation_floor(deviation_pct: float | None, language: str = "en") -> str | None:
    """The figure in "deviation more than X%": the absolute deviation rounded down to a round number.

    >>> deviation_floor(143.7), deviation_floor(-37.2), deviation_floor(7.9), deviation_floor(None)
    ('140', '35', '7', None)

    Under 1 % the figure keeps a decimal or two (an APDEX 0.95 % below its usual value is not
    "more than 0 %"):

    >>> deviation_floor(-0.95), deviation_floor(0.057), deviation_floor(0.004), deviation_floor(0.95, "ru")
    ('0.9', '0.05', None, '0,9')
    """
    if deviation_pct is None or math.isnan(deviation_pct):
        return None
    dev = abs(deviation_pct)
    if dev < 1:
        places = 1 if dev >= 0.1 else 2
        floored = math.floor(dev * 10**places) / 10**places
        return _localised(f"{floored:.{places}f}", language) if floored > 0 else None
    step = 1 if dev < 20 else 5 if dev < 100 else 10 if dev < 1000 else 100
    return _localised(f"{int(dev // step * step):,}", language)


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
    if c.series is not None and len(c.series):
        # the link opens at least what the chart draws (a metric read hourly: 72 readings, not 6 hours)
        window_start = min(window_start, pd.Timestamp(drawn(c.series, chart_hours).index[0]))
    # the chart ends at the alert's time (a firing alert: now, its latest news; resolved: a few minutes
    # after the last anomalous point, so the return to normal is in view), never in the future
    resolved = event.event == "resolved"
    chart_end = last + pd.Timedelta(minutes=15) if resolved else max(last, now)
    link_fields = {
        "base_url": links.base,
        "metric": c.metric,
        "metric_q": quote(c.metric, safe=""),
        "labels": dict(c.labels),
        "labels_q": quote(",".join(f"{k}={v}" for k, v in sorted(c.labels.items())), safe=""),
        "slice_q": quote(slice_text(c.labels), safe=""),
        "monitor": c.monitor,
        "from_iso": _iso(window_start),
        "to_iso": _iso(chart_end),
        "start_ms": int(window_start.timestamp() * 1000),
        "end_ms": int(chart_end.timestamp() * 1000),
        "incident_id": c.incident_id if c.incident_id is not None else "",
        "key_q": quote(c.key, safe=""),
    }
    outside = (
        ("above" if c.value > c.upper else "below" if c.value < c.lower else None)
        if resolved and c.lower is not None and c.upper is not None and not math.isnan(c.value)
        else None
    )
    rebound = (outside, c.moved) in {("above", "down"), ("below", "up")}
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
        "value_text": format_number(c.value, language),
        "expected": c.expected,
        "expected_text": format_number(c.expected, language) if c.expected is not None else None,
        "lower": c.lower,
        "upper": c.upper,
        "band_text": (
            f"{format_number(c.lower, language)} – {format_number(c.upper, language)}"
            if c.lower is not None and c.upper is not None
            else None
        ),
        "deviation_pct": deviation,
        "deviation_more_than": deviation_floor(deviation, language),
        # a share's deviation is in percentage points, others' relative to the expected value
        "deviation_unit": ((" п.п." if language == "ru" else " pp") if c.deviation_points else "%"),
        "deviation_points": bool(c.deviation_points),
        "direction": direction,
        "score": round(float(c.score), 3),
        # one decimal is all a reader compares (5 is the threshold; 47.7 is an outage), written as
        # the language writes numbers (8,6 in Russian, where the values beside it have a comma too)
        "score_text": _localised(f"{float(c.score):.1f}", language),
        "severity": event.severity,
        "started_at": _iso(started),
        "started_text": started.strftime("%Y-%m-%d %H:%M UTC"),
        "last_seen": _iso(last),
        # resolved: how long it was anomalous (first to last anomalous point, inclusive); firing: so far
        "duration_text": format_duration(
            (last - started + pd.Timedelta(minutes=1)) if resolved else (max(last, now) - started), language
        ),
        # resolved, yet the latest value lies outside the band usual now, on the anomaly's side: the
        # detector let go of a slow return (a surge easing off over hours) — not "back to normal"
        "still_outside": outside if outside is not None and not rebound else None,
        # ... or past the other edge (traffic catching up after an outage): over, and now on that side
        "now_outside": outside if rebound else None,
        # over before it was told: how long it lasted (first to last anomalous point, inclusive)
        "recovered": bool(c.recovered) and not resolved,
        # the collection around the anomaly: a gap, the same reading repeated, a counter reset
        "data_quality": [
            {
                "kind": i.kind,
                "start": _iso(i.start),
                "end": _iso(i.end),
                "points": i.points,
                "value": None if math.isnan(i.value) else i.value,
            }
            for i in c.data_quality
        ],
        "data_quality_text": data_quality_text(c.data_quality, language),
        "lasted_text": format_duration(last - started + pd.Timedelta(minutes=1), language),
        "owner": event.owner,
        "incident_id": c.incident_id,
        "incident_type": title_in(c.incident_type, language),
        "related": list(c.related),
        "rule": event.rule,
        "chart_url": format_link(links.chart, link_fields),
        "incident_url": format_link(links.incident, link_fields) if c.incident_id is not None else None,
        "dashboards": [{"title": d.title, "url": format_link(d.url, link_fields)} for d in links.dashboards],
    }


# -- the hardened sandbox ---------------------------------------------------------------------------
#: Loop iterations, calls and (per 64 characters) produced text one render may spend.
MAX_TEMPLATE_STEPS = 200_000
#: Wall time of one render.
MAX_RENDER_SECONDS = 2.0
#: Longest string (or list) an expression may build, and the longest rendered message.
MAX_TEMPLATE_STRING = 1_000_000
#: Largest integer (in bits) arithmetic may produce, and widest format field.
MAX_TEMPLATE_INT_BITS = 4096
MAX_FORMAT_WIDTH = 1000
TEMPLATE_NAMES = (
    "telegram.html.j2",
    "email.html.j2",
    "text.txt.j2",
    "subject.txt.j2",
    "summary.txt.j2",
    "digest.html.j2",
    "digest.txt.j2",
)


class _Budget:
    def __init__(self) -> None:
        self.steps = 0
        self.deadline = time.monotonic() + MAX_RENDER_SECONDS

    def spend(self, steps: int) -> None:
        self.steps += steps
        if self.steps > MAX_TEMPLATE_STEPS:
            raise SecurityError(
                f"the template does too much work (more than {MAX_TEMPLATE_STEPS:,} loop steps and calls)"
            )
        if time.monotonic() > self.deadline:
            raise SecurityError(f"the template took longer than {MAX_RENDER_SECONDS:g} s to render")


_BUDGET: ContextVar[_Budget | None] = ContextVar("telewatch_template_budget", default=None)


def _spend(steps: int = 1) -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.spend(steps)


class _BudgetedTemplate(Template):
    """A template whose every top-level render gets a fresh budget (includes and macros share it)."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        if _BUDGET.get() is not None:
            return super().render(*args, **kwargs)
        token = _BUDGET.set(_Budget())
        try:
            return super().render(*args, **kwargs)
        finally:
            _BUDGET.reset(token)


def _check_size(size: int, what: str = "string") -> None:
    if size > MAX_TEMPLATE_STRING:
        raise SecurityError(f"the template builds a {what} longer than {MAX_TEMPLATE_STRING:,}")
    _spend(1 + size // 64)


def _check_int(value: int) -> None:
    if abs(value).bit_length() > MAX_TEMPLATE_INT_BITS:
        raise SecurityError(f"the template builds a number larger than 2**{MAX_TEMPLATE_INT_BITS}")


def _check_width(width: Any, what: str) -> None:
    if isinstance(width, bool):
        return
    if isinstance(width, int | float) and abs(width) > MAX_FORMAT_WIDTH:
        raise SecurityError(f"{what} {width} is wider than {MAX_FORMAT_WIDTH}")
    if isinstance(width, str) and len(width) > MAX_FORMAT_WIDTH:
        raise SecurityError(f"{what} is longer than {MAX_FORMAT_WIDTH} characters")


_PRINTF_FIELD = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_printf(fmt: str) -> None:
    for match in _PRINTF_FIELD.finditer(fmt):
        for part in match.groups():
            if part == "*":
                raise SecurityError("a '*' width in a format string is not allowed in templates")
            if part:
                _check_width(int(part), "format width")


def _check_str_format(fmt: str) -> None:
    for _, _, spec, _ in string.Formatter().parse(fmt):
        if spec and "{" in spec:
            raise SecurityError("nested replacement fields in a format spec are not allowed in templates")
        for number in re.findall(r"\d+", spec or ""):
            _check_width(int(number), "format width")


def _sized_len(value: Any) -> int | None:
    return len(value) if isinstance(value, str | bytes | list | tuple) else None


class _HardenedSandbox(SandboxedEnvironment):
    """SandboxedEnvironment plus bounds on work, sizes and format widths (see the module docstring)."""

    template_class = _BudgetedTemplate
    intercepted_binops = frozenset({"*", "**", "+", "%", "//"})

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _spend(1)
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(left, int | float) and isinstance(right, int | float):
            if abs(left) > 1 and right > 0 and right * math.log2(abs(left)) > MAX_TEMPLATE_INT_BITS:
                raise SecurityError(f"the template builds a number larger than 2**{MAX_TEMPLATE_INT_BITS}")
        elif operator == "*":
            for seq, times in ((left, right), (right, left)):
                n = _sized_len(seq)
                if n is not None and isinstance(times, int):
                    _check_size(n * max(times, 0), "sequence")
            bits = (
                abs(left).bit_length() + abs(right).bit_length()
                if isinstance(left, int) and isinstance(right, int)
                else 0
            )
            if bits > MAX_TEMPLATE_INT_BITS:
                raise SecurityError(f"the template builds a number larger than 2**{MAX_TEMPLATE_INT_BITS}")
        elif operator == "+":
            a, b = _sized_len(left), _sized_len(right)
            if a is not None and b is not None:
                _check_size(a + b, "sequence")
        elif operator == "%" and isinstance(left, str):
            _check_printf(left)
        result = super().call_binop(context, operator, left, right)
        if isinstance(result, int) and not isinstance(result, bool):
            _check_int(result)
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        _check_str_format(value.__self__)
        return wrapped

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        # every loop counts its steps; every ~ concatenation is size-checked
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, "tw_steps", [], [], None, None, lineno=loop.lineno)
        for concat in list(tree.find_all(nodes.Concat)):
            inner = nodes.Concat(concat.nodes, lineno=concat.lineno)
            concat.nodes = [nodes.Filter(inner, "tw_sized", [], [], None, None, lineno=concat.lineno)]
        return tree


def _counted(iterable: Iterable[Any]) -> Iterator[Any]:
    for item in iterable:
        _spend(1)
        yield item


def _sized(value: Any) -> Any:
    n = _sized_len(value)
    if n is not None:
        _check_size(n)
    return value


def _bounded_concat(chunks: Iterable[str]) -> str:
    parts, size = [], 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_TEMPLATE_STRING:
            raise SecurityError(f"the rendered message is longer than {MAX_TEMPLATE_STRING:,} characters")
        parts.append(chunk)
    return "".join(parts)


def _harden_filters(env: SandboxedEnvironment) -> None:
    f = dict(env.filters)

    def center(value: Any, width: int = 80) -> str:
        _check_width(width, "center width")
        return str(f["center"](value, width))

    def indent(value: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
        _check_width(width, "indent width")
        _check_size(len(str(value)) * (len(width) if isinstance(width, str) else max(int(width), 1)))
        return str(f["indent"](value, width, first, blank))

    def wordwrap(value: Any, width: int = 79, *args: Any, **kwargs: Any) -> str:
        wrapstring = kwargs.get("wrapstring", args[1] if len(args) > 1 else None)
        if wrapstring is not None:
            _check_width(wrapstring, "wrapstring")
        _check_size(len(str(value)) * 2)
        return str(f["wordwrap"](env, value, width, *args, **kwargs))

    @pass_eval_context
    def replace(eval_ctx: EvalContext, value: Any, old: str, new: str, count: int | None = None) -> Any:
        text, old, new = str(value), str(old), str(new)
        hits = text.count(old) if old else len(text) + 1
        if count is not None and count >= 0:
            hits = min(hits, count)
        _check_size(len(text) + hits * max(0, len(new) - len(old)))
        return f["replace"](eval_ctx, value, old, new, count)

    def format_(value: Any, *args: Any, **kwargs: Any) -> str:
        _check_printf(str(value))
        return str(f["format"](value, *args, **kwargs))

    @pass_eval_context
    def join(eval_ctx: EvalContext, value: Any, d: str = "", attribute: Any = None) -> str:
        items = list(_counted(value))
        _check_size(len(str(d)) * len(items) + sum(len(str(i)) for i in items))
        return str(f["join"](eval_ctx, items, d, attribute))

    def slice_(value: Any, slices: int, fill_with: Any = None) -> Any:
        _check_width(slices, "slices")
        return f["slice"](value, slices, fill_with)

    def batch(value: Any, linecount: int, fill_with: Any = None) -> Any:
        _check_width(linecount, "batch size")
        return f["batch"](value, linecount, fill_with)

    @pass_eval_context
    def tojson(eval_ctx: EvalContext, value: Any, indent: int | None = None) -> Any:
        _check_width(indent, "tojson indent")
        return f["tojson"](eval_ctx, value, indent)

    env.filters.update(
        center=center,
        indent=indent,
        wordwrap=wordwrap,
        format=format_,
        slice=slice_,
        batch=batch,
        replace=replace,
        join=join,
        tojson=tojson,
        tw_steps=_counted,
        tw_sized=_sized,
    )
    env.globals.pop("lipsum", None)  # lipsum(n=10**9) would run for ever

    def bounded_range(*args: Any) -> range:
        result = safe_range(*args)  # the sandbox's range: at most 100,000 items
        _spend(len(result))
        return result

    env.globals["range"] = bounded_range
    env.concat = _bounded_concat  # type: ignore[method-assign]


@lru_cache(maxsize=16)
def _environment(templates_dir: str | None) -> SandboxedEnvironment:
    """One Jinja environment per templates directory: compiled templates are reused across renders.
    (Edits to override files are picked up: Jinja checks their modification time.)"""
    loaders: list[Any] = []
    if templates_dir is not None:
        loaders.append(FileSystemLoader(templates_dir))
    loaders.append(PackageLoader("telewatch.alerts", "templates"))
    # Sandboxed: templates are user-editable files; they get data, not our objects' internals.
    env = _HardenedSandbox(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["num"] = format_number
    _harden_filters(env)
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
        try:
            return self.env.get_template(f"{language}/{name}").render(**context).strip()
        except (TemplateError, RecursionError, OverflowError) as exc:  # OverflowError: range() too big
            # an override file is user input: its faults are configuration errors, named by file and line
            raise ConfigError(f"alert template {language}/{name}: {_describe_template_error(exc)}") from exc

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
            # an incident's metrics: one metric flagged twice (two bursts) is one metric, not two
            "metric_count": len({(a["metric"], tuple(sorted(a["labels"].items()))) for a in alerts}),
            "first": first,
            "grouped": len(alerts) > 1,
            "incident_id": next(iter(incidents)) if len(incidents) == 1 else None,
            "incident_type": first["incident_type"],
            "incident_url": first["incident_url"] if len(incidents) == 1 else None,
            "owners": owners,
            "all_resolved": all(a["status"] == "resolved" for a in alerts),
            "all_recovered": all(a["recovered"] for a in alerts),
            # an update that raised the severity: what it was (the message says "escalated from ...")
            "escalated_from": next((e.was for e in ordered if e.was), None) if kind == "update" else None,
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
            "escalated_from": context["escalated_from"],
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
    plain = html.unescape(re.sub(r"<[^>]+>", "", body_html))
    return html.escape(plain[: limit - 200]) + "\n…"


def caption(summary: str) -> str:
    """A photo caption (HTML-escaped, within Telegram's 1024 characters)."""
    text = html.escape(summary)
    return text if len(text) <= TELEGRAM_CAPTION_LIMIT else text[: TELEGRAM_CAPTION_LIMIT - 1] + "…"


def _describe_template_error(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "not allowed: the template recurses too deeply"
    if isinstance(exc, OverflowError):
        return f"not allowed: {exc}"
    kind = "not allowed" if isinstance(exc, SecurityError) else type(exc).__name__
    line = getattr(exc, "lineno", None)
    return f"{kind}{f' (line {line})' if line else ''}: {exc}"


def check_templates(templates_dir: Path | None, *, languages: Sequence[str] = ("en", "ru")) -> None:
    """Compile and trial-render every message template with sample data; raise
    :class:`~telewatch.core.errors.ConfigError` naming the file for a syntax error, a refused
    construct (``__class__``, ``range(10**9)``, ...) or a render that runs past its bounds.

    >>> check_templates(None)  # the packaged templates are fine
    """
    where = f" (overrides in {templates_dir})" if templates_dir is not None else ""
    renderer = Renderer(templates_dir=templates_dir)
    now = pd.Timestamp("2026-01-01 12:00", tz="UTC")
    candidate = sample_candidate(now=now)
    event = AlertEvent(
        candidate=candidate, event="firing", severity=candidate.severity, owner=candidate.owner, rule="r"
    )
    for language in languages:
        for name in TEMPLATE_NAMES:  # compile first: a syntax error names its line
            try:
                renderer.env.get_template(f"{language}/{name}")
            except TemplateError as exc:
                raise ConfigError(
                    f"alert template {language}/{name}{where}: {_describe_template_error(exc)}"
                ) from exc
        try:
            rendered = renderer.render([event], kind="firing", language=language, now=now)
            renderer.render_digest(
                [{"summary": rendered.summary, "severity": "warning", "created_at": now, "payload": {}}],
                language=language,
                now=now,
            )
        except ConfigError as exc:
            raise ConfigError(f"{exc}{where}") from exc
