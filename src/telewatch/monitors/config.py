"""Monitors declared in YAML, validated by pydantic.

A monitors file has ``monitors:`` (a list), optional ``connections:`` (named connection settings a
monitor's source refers to with ``connection: NAME``) and an optional ``alerting:`` section (channels
and rules, see ``docs/alerting.md``) or ``alerting: PATH`` to a separate file. Strings may reference
the environment as ``${NAME}`` or ``${NAME:-default}``; secrets (passwords, tokens, communities) are
:class:`pydantic.SecretStr` and never appear in reprs, logs or API answers.

This module imports only pydantic and PyYAML (and the sources lazily, in :meth:`build`), so an
Airflow environment can read a monitors file to build its DAGs without telewatch's heavy dependencies.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from telewatch.alerts.config import Digest
from telewatch.core.errors import ConfigError
from telewatch.core.yamlfile import error_position, parse_with_lines

if TYPE_CHECKING:
    from telewatch.sources.base import Source

from telewatch.core.defaults import DEFAULT_THRESHOLD, default_detector
from telewatch.core.durations import Duration

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


# -- schedules ----------------------------------------------------------------------------------
class Schedule(_Model):
    """``every: 15m`` (ticks at multiples of the interval since the epoch, plus ``offset``) or a 5-field
    ``cron: "*/15 * * * *"`` expression (UTC)."""

    every: Duration | None = None
    cron: str | None = None
    offset: Duration = timedelta(0)

    @model_validator(mode="after")
    def _one(self) -> Schedule:
        if (self.every is None) == (self.cron is None):
            raise ValueError("give exactly one of `every` (e.g. 15m) or `cron` (e.g. '*/15 * * * *')")
        if self.every is not None and self.every < timedelta(seconds=1):
            raise ValueError("every: the interval must be at least 1s")
        if self.cron is not None:
            fields = self.cron.split()
            if len(fields) != 5:
                raise ValueError(
                    f"cron: expected 5 fields (minute hour day month weekday), got {self.cron!r}"
                )
            try:
                from croniter import croniter

                ok = croniter.is_valid(self.cron)
            except ImportError:  # validated again where the scheduler runs
                ok = True
            if not ok:
                raise ValueError(f"cron: {self.cron!r} is not a valid cron expression")
        return self

    @property
    def nominal_interval(self) -> timedelta:
        """The interval between ticks (for cron: between the next two ticks from the epoch)."""
        if self.every is not None:
            return self.every
        ticks = self.ticks_between(EPOCH, EPOCH + timedelta(days=8), limit=2)
        return ticks[1] - ticks[0] if len(ticks) == 2 else timedelta(days=1)

    def previous_tick(self, now: datetime) -> datetime:
        """The latest tick at or before ``now``."""
        now = _aware(now)
        if self.every is not None:
            step = self.every.total_seconds()
            base = (now - EPOCH - self.offset).total_seconds()
            return EPOCH + self.offset + timedelta(seconds=(base // step) * step)
        from croniter import croniter

        itr = croniter(str(self.cron), now + timedelta(microseconds=1))
        return itr.get_prev(datetime).astimezone(UTC)

    def next_tick(self, after: datetime) -> datetime:
        """The first tick strictly after ``after``."""
        after = _aware(after)
        if self.every is not None:
            return self.previous_tick(after) + self.every
        from croniter import croniter

        return croniter(str(self.cron), after).get_next(datetime).astimezone(UTC)

    def ticks_between(self, after: datetime, until: datetime, *, limit: int = 10_000) -> list[datetime]:
        """Ticks ``t`` with ``after < t <= until``, oldest first (at most ``limit``, the newest kept)."""
        out: list[datetime] = []
        tick = self.next_tick(after)
        until = _aware(until)
        while tick <= until:
            out.append(tick)
            if len(out) > limit:
                out.pop(0)
            tick = self.next_tick(tick)
        return out


def _aware(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


# -- sources ------------------------------------------------------------------------------------
class _SqlQuery(_Model):
    query: str | None = None
    table: str | None = None
    timestamp_column: str = "ts"
    metric_column: str | None = None
    value_column: str = "value"
    value_columns: list[str] | None = None
    label_columns: list[str] = Field(default_factory=list)
    filters: dict[str, str | int | float] = Field(default_factory=dict)
    resample: Duration | None = None
    agg: str = "avg"  # avg sum min max count first last median p95 quantile(0.9): parse_aggregation
    timeout: Duration = timedelta(seconds=30)

    @model_validator(mode="after")
    def _what(self) -> _SqlQuery:
        if (self.query is None) == (self.table is None):
            raise ValueError("give exactly one of `query` (a SELECT) or `table` (with column names)")
        if self.query is not None:
            from telewatch.sources.sql_guard import check_read_only

            dialect = "clickhouse" if getattr(self, "type", "") == "clickhouse" else "postgres"
            try:
                check_read_only(self.query, dialect=dialect)
            except ValueError as exc:  # QueryRefusedError
                raise ValueError(f"query: {exc}") from None
        if self.metric_column is None and self.resample is not None and not self.value_columns:
            raise ValueError("a wide table (no metric_column) with `resample` needs `value_columns`")
        if self.resample is not None and self.resample < timedelta(seconds=1):
            raise ValueError("resample: at least 1s")
        from telewatch.sources.base import parse_aggregation

        parse_aggregation(self.agg)  # a ConfigError (ValueError) names the bad value
        return self

    def _query_kwargs(self, metrics: list[str] | None) -> dict[str, Any]:
        import pandas as pd

        return {
            "query": self.query,
            "table": self.table,
            "timestamp_column": self.timestamp_column,
            "metric_column": self.metric_column,
            "value_column": self.value_column,
            "value_columns": self.value_columns,
            "label_columns": self.label_columns,
            "filters": self.filters,
            "metrics": metrics,
            "resample": pd.Timedelta(self.resample) if self.resample is not None else None,
            "agg": self.agg,
            "timeout": self.timeout.total_seconds(),
        }


class PostgresSourceSpec(_SqlQuery):
    type: Literal["postgres"]
    connection: str | None = None
    dsn: SecretStr | None = None
    host: str | None = None
    port: int = Field(default=5432, ge=1, le=65535)
    user: str | None = None
    password: SecretStr | None = None
    database: str | None = None
    connect_timeout: Duration = timedelta(seconds=10)

    def build(self, *, metrics: list[str] | None = None) -> Source:
        from telewatch.sources.postgres import PostgresSource

        return PostgresSource(
            dsn=_secret(self.dsn),
            host=self.host,
            port=self.port,
            user=self.user,
            password=_secret(self.password),
            database=self.database,
            connect_timeout=self.connect_timeout.total_seconds(),
            **self._query_kwargs(metrics),
        )


class ClickHouseSourceSpec(_SqlQuery):
    type: Literal["clickhouse"]
    connection: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=9000, ge=1, le=65535)
    user: str = "default"
    password: SecretStr | None = None
    database: str = "default"
    secure: bool = False
    connect_timeout: Duration = timedelta(seconds=10)

    def build(self, *, metrics: list[str] | None = None) -> Source:
        from telewatch.sources.clickhouse import ClickHouseSource

        return ClickHouseSource(
            host=self.host,
            port=self.port,
            user=self.user,
            password=_secret(self.password),
            database=self.database,
            secure=self.secure,
            connect_timeout=self.connect_timeout.total_seconds(),
            **self._query_kwargs(metrics),
        )


class PrometheusSourceSpec(_Model):
    type: Literal["prometheus"]
    connection: str | None = None
    url: str = Field(pattern=r"^https?://")
    query: str = Field(min_length=1)
    step: Duration = timedelta(minutes=1)
    name: str | None = None
    timeout: Duration = timedelta(seconds=30)
    bearer_token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    verify_tls: bool = True

    def build(self, *, metrics: list[str] | None = None) -> Source:
        import pandas as pd

        from telewatch.sources.prometheus import PrometheusSource

        return PrometheusSource(
            url=self.url,
            query=self.query,
            step=pd.Timedelta(self.step),
            name=self.name,
            timeout=self.timeout.total_seconds(),
            bearer_token=_secret(self.bearer_token),
            username=self.username,
            password=_secret(self.password),
            headers={k: v.get_secret_value() for k, v in self.headers.items()},
            verify_tls=self.verify_tls,
        )


class SnmpObjectSpec(_Model):
    name: str = Field(min_length=1)
    oid: str = Field(min_length=1)
    walk: bool = False
    kind: Literal["auto", "gauge", "counter32", "counter64"] = "auto"
    rate: bool | None = None
    scale: float = 1.0
    label: str = "index"
    label_oid: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("oid", "label_oid")
    @classmethod
    def _oid(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                from telewatch.sources.snmp import resolve_oid
            except ImportError:  # a light environment (Airflow's) without pandas: checked where it runs
                return v
            try:
                resolve_oid(v)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return v


class SnmpSourceSpec(_Model):
    type: Literal["snmp"]
    connection: str | None = None
    host: str = Field(min_length=1)
    port: int = Field(default=161, ge=1, le=65535)
    community: SecretStr = SecretStr("public")
    objects: list[SnmpObjectSpec] = Field(min_length=1)
    timeout: Duration = timedelta(seconds=2)
    retries: int = Field(default=1, ge=0, le=10)
    labels: dict[str, str] | None = None

    def build(self, *, metrics: list[str] | None = None) -> Source:
        from telewatch.sources.snmp import SnmpObject, SnmpSource

        return SnmpSource(
            host=self.host,
            port=self.port,
            community=self.community.get_secret_value(),
            objects=[SnmpObject(**o.model_dump()) for o in self.objects],
            timeout=self.timeout.total_seconds(),
            retries=self.retries,
            labels=self.labels,
        )


class LogCountSpec(_Model):
    name: str = Field(min_length=1)
    where: dict[str, str] = Field(min_length=1)


class LogSourceSpec(_Model):
    type: Literal["logs"]
    connection: str | None = None
    path: Path
    format: Literal["jsonl", "syslog"] = "jsonl"
    metric: str = "events"
    count_by: list[str] = Field(default_factory=list)
    counts: list[LogCountSpec] = Field(default_factory=list)
    timestamp_field: str = "ts"
    timestamp_format: str | None = None
    pattern: str | None = None
    classify: dict[str, str] = Field(default_factory=dict)
    timezone: str = "UTC"

    @model_validator(mode="after")
    def _what(self) -> LogSourceSpec:
        if not self.count_by and not self.counts:
            raise ValueError("give `count_by` fields and/or named `counts`")
        for where, regex in [
            ("pattern", self.pattern),
            *((f"classify.{k}", v) for k, v in self.classify.items()),
        ]:
            if regex is not None:
                try:
                    re.compile(regex)
                except re.error as exc:
                    raise ValueError(f"{where}: invalid regular expression: {exc}") from None
        return self

    def build(self, *, metrics: list[str] | None = None) -> Source:
        from telewatch.sources.logs import CountSpec, LogSource

        return LogSource(
            path=self.path,
            format=self.format,
            metric=self.metric,
            count_by=self.count_by,
            counts=[CountSpec(name=c.name, where=c.where) for c in self.counts],
            timestamp_field=self.timestamp_field,
            timestamp_format=self.timestamp_format,
            pattern=self.pattern,
            classify=self.classify,
            timezone=self.timezone,
        )


class StoreSourceSpec(_Model):
    """Points already in telewatch's own store (a ``group`` of metrics, or all): the source of the
    monitor ``telewatch replay`` runs when no monitors file is given. The store has one owner process,
    so such a source is served by the replay, not built here."""

    type: Literal["store"]
    group: str | None = None

    def build(self, *, metrics: list[str] | None = None) -> Source:
        raise ConfigError(
            "a source of type 'store' reads telewatch's own store: it runs under `telewatch replay`"
        )


SourceSpec = Annotated[
    PostgresSourceSpec
    | ClickHouseSourceSpec
    | PrometheusSourceSpec
    | SnmpSourceSpec
    | LogSourceSpec
    | StoreSourceSpec,
    Field(discriminator="type"),
]
SOURCE_TYPES = ("postgres", "clickhouse", "prometheus", "snmp", "logs", "store")


# -- detection, training, alerting --------------------------------------------------------------
class DetectorSpec(_Model):
    """A detector type (see ``telewatch detectors``), its parameters and how its scores become anomalies."""

    type: str = Field(default_factory=default_detector)
    params: dict[str, Any] = Field(default_factory=dict)
    #: a calibrated z, as ``telewatch detect --threshold`` (the tick calibrates each model's scores)
    threshold: float = Field(default=DEFAULT_THRESHOLD, gt=0)
    min_points: int = Field(default=1, ge=1)
    merge_gap: int = Field(default=5, ge=0)


class TrainSpec(_Model):
    """Models are refitted every ``every`` on the last ``window`` of stored points (``min_points`` at least)."""

    every: Duration = timedelta(days=1)
    window: Duration = timedelta(days=14)
    min_points: int = Field(default=60, ge=2)
    #: a series is not scored (nor alerted on) until its history covers this much: its daily cycle,
    #: seen a few times (``check`` and the overview say how long it still needs)
    warm_up: Duration = timedelta(days=3)


class AlertSpec(_Model):
    """How this monitor's anomalies are told (a rule derived for the monitor's ``channels``)."""

    #: fixed, or (None) from the calibrated score and deviation: critical at z >= 8 with a deviation of
    #: 20 % or more from what is usual at that hour, or at 50 % or more whatever the score — once it
    #: is sustained (see ``critical_after``); else warning (for a share — an error share, APDEX — the
    #: deviation is in percentage points of the whole)
    severity: Literal["info", "warning", "critical"] | None = None
    #: with a derived severity: an anomaly is critical only once it has lasted this long, or at once
    #: when its incident holds two metrics or more (latency with errors); before that a warning, and
    #: a tick that finds it still going sends the critical update. A two-minute latency spike on one
    #: metric is told, not paged. 0s: critical at once, as before 2026-12-07
    critical_after: Duration = timedelta(minutes=5)
    #: a blip — an anomaly already over when the tick sees it, shorter than this, on one metric alone
    #: in its incident — is recorded and shown, not paged (0s pages all)
    min_blip: Duration = timedelta(minutes=3)
    #: the least an anomalous value must lie outside its usual band to be paged, per metric (glob over
    #: the metric name -> absolute amount in the metric's unit); a metric no glob names gets the
    #: default of its kind: one percentage point for a share (0.01 for a 0–1 ratio such as APDEX or
    #: an error share, 1 for a percent), none for others. Smaller anomalies are recorded, not paged
    #: (``{"*": 0}`` pages them all)
    min_change: dict[str, float] = Field(default_factory=dict)
    min_duration: Duration = timedelta(0)
    repeat_interval: Duration = timedelta(hours=4)
    send_resolved: bool = True
    #: the highest severity of an anomaly already over when the tick first sees it (a two-minute
    #: burst between two 15-minute ticks): told once, saying it is back to normal, with no
    #: "resolved" message after it; critical pages are for what is happening now
    recovered_severity: Literal["info", "warning", "critical"] = "warning"
    #: alerts of these severities are not sent one by one but collected into one message every
    #: ``interval`` (an alerting rule's ``digest``): with ``recovered_severity: info`` and ``digest:
    #: {severities: [info], interval: 1h}``, what was already over when a tick saw it is told in
    #: one list an hour, and what is going on at once
    digest: Digest | None = None

    @field_validator("min_change")
    @classmethod
    def _floors_not_negative(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [f"{k}: {v}" for k, v in value.items() if not v >= 0]
        if bad:
            raise ValueError(f"min_change amounts are 0 or more (got {', '.join(bad)})")
        return value


class RetrySpec(_Model):
    """A failing run is retried after ``initial``, doubling up to ``max``."""

    initial: Duration = timedelta(seconds=30)
    max: Duration = timedelta(minutes=15)


class MonitorSpec(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)
    description: str | None = None
    owner: str | None = None
    group: str | None = None
    enabled: bool = True
    source: SourceSpec
    metrics: list[str] | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    detector: DetectorSpec | None = None
    detectors: list[DetectorSpec] = Field(default_factory=list)
    schedule: Schedule = Schedule(every=timedelta(minutes=15))
    lag: Duration = timedelta(0)
    history: Duration = timedelta(days=7)
    train: TrainSpec = TrainSpec()
    alert: AlertSpec = AlertSpec()
    channels: list[str] = Field(default_factory=list)
    retry: RetrySpec = RetrySpec()
    timeout: Duration = timedelta(minutes=10)

    @model_validator(mode="after")
    def _detectors(self) -> MonitorSpec:
        if self.detector is not None and self.detectors:
            raise ValueError("give `detector` or `detectors`, not both")
        names = [d.type for d in self.all_detectors]
        if len(names) != len(set(names)):
            raise ValueError("detectors: each detector type may appear once")
        return self

    @property
    def all_detectors(self) -> list[DetectorSpec]:
        if self.detectors:
            return list(self.detectors)
        return [self.detector or DetectorSpec()]

    def produced_names(self) -> set[str] | None:
        """The metric names this monitor stores, where its configuration says; None where the names
        come from the data (a SQL ``metric_column`` without ``metrics:``, a Prometheus query without
        ``name``, a ``store`` source)."""
        if self.metrics:
            return set(self.metrics)
        src: Any = self.source
        kind = src.type
        if kind in ("postgres", "clickhouse") and src.metric_column is None:
            return set(src.value_columns) if src.value_columns else {src.value_column}
        if kind == "prometheus" and src.name:
            return {src.name}
        if kind == "snmp":
            return {o.name for o in src.objects}
        if kind == "logs":
            return {c.name for c in src.counts} | ({src.metric} if src.count_by else set())
        return None

    def build_source(self) -> Source:
        """The live source this monitor reads."""
        return self.source.build(metrics=self.metrics)

    def fingerprint(self) -> str:
        """A hash of the settings that change what the monitor stores and scores (secrets excluded)."""
        data = self.model_dump(mode="json", exclude={"description", "owner", "channels", "alert", "retry"})
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


class MonitorsFile(_Model):
    connections: list[str] = Field(default_factory=list)  # names only: the settings went into the sources
    alerting: dict[str, Any] | str | None = None
    monitors: list[MonitorSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> MonitorsFile:
        problems = []
        seen: dict[str, int] = {}
        for i, monitor in enumerate(self.monitors):
            if monitor.name in seen:
                problems.append(
                    f"monitors[{i}].name: {monitor.name!r} is already the name of monitors[{seen[monitor.name]}]"
                )
            seen.setdefault(monitor.name, i)
        # two monitors storing the same series would overwrite each other's points, silently
        writers: dict[tuple[str, str], int] = {}
        for i, monitor in enumerate(self.monitors):
            names = monitor.produced_names()
            if names is None:
                continue
            labels = json.dumps(monitor.labels, sort_keys=True)
            for name in sorted(names):
                other = writers.setdefault((name, labels), i)
                if other != i:
                    problems.append(
                        f"monitors[{i}].source: stores the series {name!r}"
                        + (f" {monitor.labels}" if monitor.labels else "")
                        + f" that monitors[{other}] ({self.monitors[other].name!r}) stores too: their points"
                        " would overwrite each other (rename one with `metrics:`/`value_columns`, or give it"
                        " `labels:` to keep them apart)"
                    )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def monitor(self, name: str) -> MonitorSpec:
        for monitor in self.monitors:
            if monitor.name == name:
                return monitor
        from telewatch.core.errors import NotFoundError

        known = ", ".join(m.name for m in self.monitors) or "none"
        raise NotFoundError(f"no monitor named {name!r} (configured: {known})")


# -- loading ------------------------------------------------------------------------------------
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
Loc = tuple[str | int, ...]


def format_path(loc: Loc) -> str:
    """``("monitors", 2, "source", "query")`` → ``monitors[2].source.query``.

    >>> format_path(("monitors", 2, "source", "query"))
    'monitors[2].source.query'
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _expand(value: Any, path: Loc, problems: list[tuple[Loc, str]], environ: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v, (*path, k), problems, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, (*path, i), problems, environ) for i, v in enumerate(value)]
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            problems.append((path, f"environment variable {name} is not set"))
            return ""

        return _ENV.sub(sub, value)
    return value


def _merge_connections(data: dict[str, Any], problems: list[tuple[Loc, str]]) -> None:
    connections = data.get("connections") or {}
    if not isinstance(connections, dict) or not all(isinstance(v, dict) for v in connections.values()):
        problems.append((("connections",), "a mapping of names to connection settings"))
        data["connections"] = []
        return
    for i, monitor in enumerate(data.get("monitors") or []):
        if not isinstance(monitor, dict) or not isinstance(monitor.get("source"), dict):
            continue
        source = monitor["source"]
        ref = source.get("connection")
        if ref is None:
            continue
        if ref not in connections or not isinstance(connections[ref], dict):
            known = ", ".join(sorted(connections)) or "none"
            problems.append(
                (("monitors", i, "source", "connection"), f"no connection named {ref!r} (known: {known})")
            )
            continue
        monitor["source"] = {**connections[ref], **source}
    data["connections"] = sorted(connections)  # secrets live on in the sources only (as SecretStr)


def _line_for(loc: Loc, lines: dict[Loc, int]) -> int | None:
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return None


def _clean_loc(loc: Loc) -> Loc:
    out: list[str | int] = []
    for k, part in enumerate(loc):
        # drop the discriminated union's tag and pydantic's function-validator markers
        if k > 0 and loc[k - 1] == "source" and part in SOURCE_TYPES:
            continue
        if isinstance(part, str) and (part.startswith("function-") or part in {"constrained-str"}):
            continue
        out.append(part)
    return tuple(out)


class MonitorConfigError(ConfigError):
    """A monitors file is invalid; ``problems`` lists ``(path, line, message)`` for each error."""

    def __init__(self, source: str, problems: list[tuple[str, int | None, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"{path}" + (f" (line {line})" if line else "") + f": {msg}" for path, line, msg in problems]
        super().__init__(f"{source}: {len(problems)} error(s):\n  " + "\n  ".join(lines))


def parse_monitors(
    data: Any,
    *,
    source: str = "<config>",
    lines: dict[Loc, int] | None = None,
    environ: dict[str, str] | None = None,
) -> MonitorsFile:
    """Validate an already-parsed mapping; raise :class:`MonitorConfigError` listing every problem."""
    lines = lines or {}
    if data is None:
        data = {}
    if isinstance(data, list):
        data = {"monitors": data}
    if not isinstance(data, dict):
        raise MonitorConfigError(
            source, [("(top level)", 1, "a monitors file is a mapping with a `monitors:` list")]
        )
    problems: list[tuple[Loc, str]] = []
    data = _expand(data, (), problems, dict(os.environ) if environ is None else environ)
    _merge_connections(data, problems)
    result: MonitorsFile | None = None
    try:
        result = MonitorsFile.model_validate(data)
    except PydanticValidationError as exc:
        for err in exc.errors():
            loc = _clean_loc(tuple(err["loc"]))
            msg = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown setting (check the spelling)"
            elif err["type"] == "union_tag_invalid":
                msg = f"unknown source type; known: {', '.join(SOURCE_TYPES)}"
            elif err["type"] == "union_tag_not_found":
                msg = f"a source needs a `type` ({', '.join(SOURCE_TYPES)})"
            # the file-level validator lists its problems at once, each with its own path
            for part in re.split(r"; (?=monitors\[\d+\]\.)", msg) if not loc else [msg]:
                m = re.match(r"^monitors\[(\d+)\]\.(\w+): (.*)$", part, re.S)
                if m:
                    problems.append((("monitors", int(m.group(1)), m.group(2)), m.group(3)))
                else:
                    problems.append((loc, part))
    if problems:
        out = [(format_path(loc), _line_for(loc, lines), msg) for loc, msg in problems]
        raise MonitorConfigError(source, out)
    assert result is not None
    return result


def read_yaml(path: Path | str) -> tuple[Any, dict[Loc, int]]:
    """Parse a YAML file; return the data and the line of every key path."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {file}: {exc.strerror}") from exc
    try:
        return parse_with_lines(text)
    except yaml.YAMLError as exc:
        line, where = error_position(exc)
        raise MonitorConfigError(
            str(file), [("(file)", line, f"not valid YAML{where}: {getattr(exc, 'problem', exc)}")]
        ) from exc


def load_monitors(path: Path | str, *, environ: dict[str, str] | None = None) -> MonitorsFile:
    """Read and validate a monitors YAML file (relative log paths resolve against the file's folder)."""
    file = Path(path)
    data, lines = read_yaml(file)
    if isinstance(data, dict):
        for monitor in data.get("monitors") or []:
            src = monitor.get("source") if isinstance(monitor, dict) else None
            if (
                isinstance(src, dict)
                and src.get("type") == "logs"
                and isinstance(src.get("path"), str)
                and not os.path.isabs(src["path"])
                and "${" not in src["path"]
            ):
                src["path"] = str((file.parent / src["path"]).resolve())
        if isinstance(data.get("alerting"), str) and not os.path.isabs(data["alerting"]):
            data["alerting"] = str((file.parent / data["alerting"]).resolve())
    return parse_monitors(data, source=str(file), lines=lines, environ=environ)
