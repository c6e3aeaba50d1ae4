"""The one interface every live data source implements.

A :class:`Source` fetches the points of one metric or of a group of metrics for a time range
(``start <= ts < end``), as a list of :class:`FetchedSeries` (name, labels, values). Incremental
fetching (:meth:`Source.fetch_incremental`) asks only for what is newer than the last point seen per
metric; sources that cannot look back in time (SNMP polling) or that follow a file (event logs) keep
their own cursor in :class:`SourceState`, which the monitor persists in the store between runs.

Secrets (passwords, tokens, DSNs) never appear in messages: every error a source raises goes through
:func:`redact` with the source's secrets.
"""

from __future__ import annotations

import json
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from telewatch.core.errors import ConfigError
from telewatch.sources.sql_guard import QueryRefusedError, SourceError

__all__ = ["FetchedSeries", "QueryRefusedError", "Source", "SourceError", "SourceState", "SqlSource"]


def series_key(name: str, labels: Mapping[str, str] | None = None) -> str:
    """A stable text key for a metric and its labels.

    >>> series_key("rx_bps", {"if": "eth0", "host": "r1"})
    'rx_bps{host=r1,if=eth0}'
    >>> series_key("cpu")
    'cpu'
    """
    if not labels:
        return name
    return name + "{" + ",".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"


@dataclass
class FetchedSeries:
    """Points of one metric from a source: float64 values on a sorted UTC index."""

    name: str
    labels: dict[str, str]
    values: pd.Series

    @property
    def key(self) -> str:
        return series_key(self.name, self.labels)


@dataclass
class SourceState:
    """What a source remembers between runs: the last point seen per series key, and an opaque cursor."""

    last_seen: dict[str, pd.Timestamp] = field(default_factory=dict)
    cursor: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {"last_seen": {k: v.isoformat() for k, v in self.last_seen.items()}, "cursor": self.cursor},
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | None) -> SourceState:
        """
        >>> s = SourceState.from_json(SourceState(last_seen={"a": pd.Timestamp("2024-01-01", tz="UTC")}).to_json())
        >>> s.last_seen["a"].isoformat()
        '2024-01-01T00:00:00+00:00'
        """
        if not text:
            return cls()
        data = json.loads(text)
        return cls(
            last_seen={k: pd.Timestamp(v) for k, v in (data.get("last_seen") or {}).items()},
            cursor=dict(data.get("cursor") or {}),
        )


def utc(ts: pd.Timestamp | str | float | int) -> pd.Timestamp:
    """A UTC timestamp (naive input is read as UTC).

    >>> utc("2024-01-01 03:00").isoformat()
    '2024-01-01T03:00:00+00:00'
    """
    stamp = pd.Timestamp(ts)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def make_series(stamps: Iterable[Any], values: Iterable[Any], *, unit: str | None = None) -> pd.Series:
    """A clean series from raw timestamps and values: UTC, sorted, duplicates keep the last, float64.

    ``unit="s"`` reads numeric timestamps as epoch seconds.

    >>> make_series([120, 60, 60], [3, 1, 2], unit="s").tolist()
    [2.0, 3.0]
    """
    stamps = list(stamps)
    if unit is not None:
        seconds = pd.Index(np.asarray(stamps, dtype="float64"))
        index = pd.DatetimeIndex(pd.to_datetime(seconds, unit=unit, utc=True))  # type: ignore[call-overload]
    else:
        index = pd.DatetimeIndex(pd.to_datetime(stamps, utc=True))
    vals = pd.to_numeric(pd.Series(list(values), dtype="object"), errors="coerce").astype("float64")
    series = pd.Series(vals.to_numpy(), index=index.as_unit("ns"))
    series = series[~series.index.duplicated(keep="last")].sort_index()
    return series


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every secret (and URL passwords) in ``text`` with ``***``.

    >>> redact("connect failed: postgresql://bob:hunter2@db/x password=hunter2", ["hunter2"])
    'connect failed: postgresql://bob:***@db/x password=***'
    """
    out = text
    for secret in secrets:
        if secret and len(secret) >= 3:
            out = out.replace(secret, "***")
    out = re.sub(r"(://[^:/@\s]+:)[^@\s]+@", r"\1***@", out)
    out = re.sub(r"(?i)\b(password|passwd|pwd|token|secret)=([^\s'\"&]+)", r"\1=***", out)
    return out


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate_env(text: str, *, environ: Mapping[str, str] | None = None, where: str = "") -> str:
    """Expand ``${NAME}`` (and ``${NAME:-default}``) from the environment; a missing name is an error.

    >>> interpolate_env("${TW_DOCTEST_X:-fallback}/db", environ={})
    'fallback/db'
    """
    env = os.environ if environ is None else environ

    def sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"{where + ': ' if where else ''}environment variable {name} is not set")

    return _ENV.sub(sub, text)


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (server errors often append stack traces)."""
    text = str(exc).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # ClickHouse puts "Code: N." alone on the first line and the reason on the next.
    msg = (
        " ".join(lines[:2])
        if lines and re.fullmatch(r"Code: \d+\.?", lines[0])
        else (lines[0] if lines else "")
    )
    msg = re.sub(r"\s*Stack trace:.*$", "", msg)
    return (msg or type(exc).__name__)[:limit]


class Source(ABC):
    """A live source of metrics. Subclasses implement :meth:`fetch` (time range, ``start <= ts < end``)."""

    kind: ClassVar[str] = ""

    #: How far back the first fetch reaches when nothing has been seen yet (set by the monitor).
    default_lookback: pd.Timedelta = pd.Timedelta(days=1)
    #: How far a series may lag behind the newest one and still be read from its own last point; a
    #: series silent for longer does not make every run re-read its whole gap.
    straggler_window: pd.Timedelta = pd.Timedelta(hours=6)

    @abstractmethod
    def fetch(self, *, start: pd.Timestamp, end: pd.Timestamp) -> list[FetchedSeries]:
        """Points with ``start <= ts < end`` of every series the source's query returns."""

    def secrets(self) -> list[str]:
        """Secret strings this source holds, to be redacted from any message."""
        return []

    def describe(self) -> str:
        """A one-line description without secrets (for logs and the UI)."""
        return self.kind

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Release connections (a no-op for sources that hold none)."""

    def error(self, what: str, exc: BaseException | None = None) -> SourceError:
        """A :class:`SourceError` naming this source, with secrets redacted."""
        detail = f": {first_line(exc)}" if exc is not None else ""
        return SourceError(redact(f"{self.describe()}: {what}{detail}", self.secrets()))

    def fetch_incremental(
        self, *, state: SourceState, end: pd.Timestamp, lookback: pd.Timedelta | None = None
    ) -> tuple[list[FetchedSeries], SourceState]:
        """Points newer than the last point seen per series, up to ``end`` (exclusive).

        The time range starts at the oldest last-seen point (or ``end - lookback`` on the first run)
        so that a series that lags behind the others is not skipped; points at or before a series'
        own last-seen point are then dropped. Returns the new points and the updated state.
        """
        end = utc(end)
        lookback = self.default_lookback if lookback is None else lookback
        if state.last_seen:
            newest = max(state.last_seen.values())
            start = min(state.last_seen.values()) + pd.Timedelta(microseconds=1)
            start = max(start, end - lookback, newest - self.straggler_window)
        else:
            start = end - lookback
        if start >= end:
            return [], state
        fetched = self.fetch(start=start, end=end)
        return filter_new(fetched, state)


def filter_new(fetched: list[FetchedSeries], state: SourceState) -> tuple[list[FetchedSeries], SourceState]:
    """Drop points at or before each series' last-seen point; return the rest and the advanced state."""
    new_seen = dict(state.last_seen)
    out: list[FetchedSeries] = []
    for item in fetched:
        values = item.values
        seen = state.last_seen.get(item.key)
        if seen is not None:
            values = values[values.index > seen]
        if values.empty:
            continue
        new_seen[item.key] = max(values.index[-1], new_seen.get(item.key, values.index[-1]))
        out.append(FetchedSeries(name=item.name, labels=item.labels, values=values))
    return out, SourceState(last_seen=new_seen, cursor=dict(state.cursor))


def long_to_series(
    frame: pd.DataFrame,
    *,
    metric_column: str | None,
    value_columns: list[str],
    label_columns: list[str],
    fixed_name: str | None = None,
) -> list[FetchedSeries]:
    """Split a frame with an epoch-seconds ``__ts`` column into series.

    Long shape: one ``metric_column`` naming the metric and one value column. Wide shape
    (``metric_column`` None): each value column is a metric. Label columns slice either shape.
    """
    out: list[FetchedSeries] = []
    if frame.empty:
        return out
    group_cols = ([metric_column] if metric_column else []) + label_columns
    groups: Iterable[tuple[Any, pd.DataFrame]] = (
        frame.groupby(group_cols, sort=True, dropna=False) if group_cols else [((), frame)]
    )
    for key, part in groups:
        key_tuple = key if isinstance(key, tuple) else (key,)
        names = dict(zip(group_cols, key_tuple, strict=True))
        labels = {c: str(names[c]) for c in label_columns}
        if metric_column:
            metric = str(names[metric_column])
            out.append(
                FetchedSeries(
                    name=metric,
                    labels=labels,
                    values=make_series(part["__ts"], part[value_columns[0]], unit="s"),
                )
            )
        else:
            for col in value_columns:
                out.append(
                    FetchedSeries(
                        name=fixed_name or col,
                        labels=labels,
                        values=make_series(part["__ts"], part[col], unit="s"),
                    )
                )
    return out


AGGREGATIONS = ("avg", "sum", "min", "max", "count", "first", "last", "median", "pNN", "quantile(p)")

_QUANTILE = re.compile(r"(?:quantile\(\s*([0-9]*\.?[0-9]+)\s*\)|p([0-9]+(?:\.[0-9]+)?))")


@dataclass(frozen=True)
class Aggregation:
    """A per-bucket aggregation pushed into SQL: ``kind`` and, for ``quantile``, the level ``q``."""

    kind: str  # avg, sum, min, max, count, first, last, quantile
    q: float | None = None

    def __str__(self) -> str:
        return self.kind if self.q is None else f"quantile({self.q:g})"


def parse_aggregation(text: str) -> Aggregation:
    """Read an ``agg`` setting: ``avg`` (or ``mean``), ``sum``, ``min``, ``max``, ``count``, ``first``,
    ``last``, ``median``, ``p95`` / ``p99.9`` (percentiles) or ``quantile(0.95)`` (linear interpolation,
    as pandas).

    >>> parse_aggregation("p99.9")
    Aggregation(kind='quantile', q=0.999)
    >>> str(parse_aggregation("median")), str(parse_aggregation("Mean"))
    ('quantile(0.5)', 'avg')
    >>> parse_aggregation("p101")
    Traceback (most recent call last):
    ...
    telewatch.core.errors.ConfigError: agg 'p101': a percentile must be between 0 and 100
    """
    word = str(text).strip().lower()
    if word == "mean":
        word = "avg"
    if word in {"avg", "sum", "min", "max", "count", "first", "last"}:
        return Aggregation(word)
    if word == "median":
        return Aggregation("quantile", 0.5)
    match = _QUANTILE.fullmatch(word)
    if match is None:
        raise ConfigError(f"agg must be one of {', '.join(AGGREGATIONS)}, not {text!r}")
    if match.group(2) is not None:
        pct = float(match.group(2))
        if not 0.0 <= pct <= 100.0:
            raise ConfigError(f"agg {text!r}: a percentile must be between 0 and 100")
        return Aggregation("quantile", round(pct / 100.0, 12))
    q = float(match.group(1))
    if not 0.0 <= q <= 1.0:
        raise ConfigError(f"agg {text!r}: a quantile level must be between 0 and 1")
    return Aggregation("quantile", q)


def ceil_to_step(ts: pd.Timestamp, step: pd.Timedelta) -> pd.Timestamp:
    """The first bucket boundary (multiple of ``step`` since the epoch) at or after ``ts``.

    >>> ceil_to_step(pd.Timestamp("2026-03-01 00:01:30", tz="UTC"), pd.Timedelta("5min")).isoformat()
    '2026-03-01T00:05:00+00:00'
    """
    ns = int(utc(ts).as_unit("ns").value)
    width = int(step.as_unit("ns").value)
    return pd.Timestamp(-(-ns // width) * width, unit="ns", tz="UTC")


class SqlSource(Source):
    """Shared query building for the SQL sources (PostgreSQL, ClickHouse).

    Either ``query`` (the user's SELECT, with ``%(start)s`` and ``%(end)s`` bind parameters for the time
    range) or ``table`` (with a column mapping) says what to read. The shape is *long* when
    ``metric_column`` is set (one row per timestamp and metric) and *wide* otherwise (one column per
    metric, ``value_columns``). The query is wrapped so that timestamps come back as epoch seconds,
    the range ``start <= ts < end`` holds exactly, and per-``resample`` aggregation runs in the server.
    """

    dialect: ClassVar[str] = "postgres"

    def __init__(
        self,
        *,
        query: str | None = None,
        table: str | None = None,
        timestamp_column: str = "ts",
        metric_column: str | None = None,
        value_column: str = "value",
        value_columns: list[str] | None = None,
        label_columns: list[str] | None = None,
        filters: Mapping[str, str | int | float] | None = None,
        metrics: list[str] | None = None,
        resample: pd.Timedelta | None = None,
        agg: str = "avg",
        timeout: float = 30.0,
    ) -> None:
        from telewatch.sources.sql_guard import check_read_only

        if (query is None) == (table is None):
            raise ConfigError("a SQL source needs exactly one of `query` or `table`")
        aggregation = parse_aggregation(agg)
        if metric_column is None and resample is not None and not value_columns:
            raise ConfigError("a wide-shaped SQL source with `resample` needs `value_columns`")
        self.query = check_read_only(query, dialect=self.dialect) if query is not None else None
        self.table = table
        self.timestamp_column = timestamp_column
        self.metric_column = metric_column
        self.value_column = value_column
        self.value_columns = list(value_columns) if value_columns else None
        self.label_columns = list(label_columns or [])
        self.filters = dict(filters or {})
        self.metrics = list(metrics) if metrics else None
        if resample is not None and (
            resample < pd.Timedelta(seconds=1) or resample % pd.Timedelta(seconds=1) != pd.Timedelta(0)
        ):
            raise ConfigError(f"resample must be a whole number of seconds (at least 1 s), not {resample}")
        self.resample = resample
        self.agg = agg
        self.aggregation = aggregation
        self.timeout = float(timeout)
        #: rows the server returned for the last fetch (buckets when aggregating in the database)
        self.last_rows: int | None = None

    # -- dialect hooks --------------------------------------------------------------------------
    def _q(self, name: str) -> str:
        from telewatch.sources.sql_guard import quote_identifier

        return quote_identifier(name, dialect=self.dialect)

    @abstractmethod
    def _epoch(self, column: str) -> str:
        """SQL for a timestamp column as epoch seconds (a number)."""

    @abstractmethod
    def _bucket(self, column: str, seconds: int) -> str:
        """SQL for the start of a ``seconds``-long bucket, as epoch seconds."""

    def _aggregate(self, value: str, ts: str) -> str:
        """SQL aggregating ``value`` over a bucket (``ts``: the timestamp column, for first/last).

        ``avg``, ``sum``, ``min``, ``max`` and ``count`` are standard SQL; the dialects add ``first``,
        ``last`` and ``quantile`` (whose level is the bind parameter ``agg_q``).
        """
        kind = self.aggregation.kind
        if kind in {"avg", "sum", "min", "max", "count"}:
            return f"{kind}({value})"
        raise ConfigError(f"{self.kind or 'this'} source cannot aggregate with {self.agg!r}")

    @abstractmethod
    def _in_list(self, column: str, param: str) -> str:
        """SQL for ``column`` in the list bound as ``param``."""

    @abstractmethod
    def _list_param(self, values: list[str]) -> Any: ...

    @abstractmethod
    def _execute(self, sql: str, params: dict[str, Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run the read-only SELECT; return column names and rows. Raise SourceError."""

    # -- query building -------------------------------------------------------------------------
    def build_sql(self) -> tuple[str, dict[str, Any]]:
        """The SQL to send and its parameters (without ``start``/``end``, which fetch adds)."""
        ts = self._q(self.timestamp_column)
        params: dict[str, Any] = {}
        where = [f"{ts} >= %(start)s", f"{ts} < %(end)s"]
        for k, (col, value) in enumerate(sorted(self.filters.items())):
            where.append(f"{self._q(col)} = %(f{k})s")
            params[f"f{k}"] = value
        if self.metrics and self.metric_column:
            where.append(self._in_list(self._q(self.metric_column), "metrics"))
            params["metrics"] = self._list_param(self.metrics)
        source = self._q(self.table) if self.table else f"({self.query}) AS __q"
        keys = ([self._q(self.metric_column)] if self.metric_column else []) + [
            self._q(c) for c in self.label_columns
        ]
        if self.metric_column:
            values = [self._q(self.value_column)]
        elif self.value_columns:
            values = [self._q(c) for c in self.value_columns]
        else:
            values = ["*"]
        if self.resample is not None:
            seconds = int(self.resample.total_seconds())
            bucket = self._bucket(ts, seconds)
            if self.aggregation.q is not None:
                params["agg_q"] = self.aggregation.q
            # ClickHouse refuses an alias equal to the column it aggregates ("cyclic aliases")
            aggs = [f"{self._aggregate(v, ts)} AS __v{i}" for i, v in enumerate(values)]
            select = ", ".join([f"{bucket} AS __ts", *keys, *aggs])
            group = ", ".join(["__ts", *keys])
            sql = f"SELECT {select} FROM {source} WHERE {' AND '.join(where)} GROUP BY {group} ORDER BY __ts"
        else:
            select = ", ".join([f"{self._epoch(ts)} AS __ts", *keys, *values])
            sql = f"SELECT {select} FROM {source} WHERE {' AND '.join(where)} ORDER BY __ts"
        return sql, params

    def fetch_incremental(
        self, *, state: SourceState, end: pd.Timestamp, lookback: pd.Timedelta | None = None
    ) -> tuple[list[FetchedSeries], SourceState]:
        """As :meth:`Source.fetch_incremental`; with ``resample`` only complete buckets are fetched
        (``end`` is floored to a bucket boundary), so a bucket still filling is read whole on a later
        run, and the next run starts at the bucket after the watermark."""
        end = utc(end)
        if self.resample is not None:
            ceiled = ceil_to_step(end, self.resample)
            end = ceiled if ceiled == end else ceiled - self.resample
        return super().fetch_incremental(state=state, end=end, lookback=lookback)

    def fetch(self, *, start: pd.Timestamp, end: pd.Timestamp) -> list[FetchedSeries]:
        """Points with ``start <= ts < end``; with ``resample``, the buckets starting in that range,
        each aggregated over its whole width (the raw range sent is widened to bucket boundaries)."""
        start, end = utc(start), utc(end)
        if self.resample is not None:
            start, end = ceil_to_step(start, self.resample), ceil_to_step(end, self.resample)
            if start >= end:
                self.last_rows = 0
                return []
        sql, params = self.build_sql()
        params["start"] = start.to_pydatetime()
        params["end"] = end.to_pydatetime()
        columns, rows = self._execute(sql, params)
        self.last_rows = len(rows)
        if self.resample is not None:
            names = [self.value_column] if self.metric_column else list(self.value_columns or [])
            columns = [names[int(c[3:])] if c.startswith("__v") and c[3:].isdigit() else c for c in columns]
        frame = pd.DataFrame.from_records(rows, columns=columns)
        if self.metric_column:
            value_columns = [self.value_column]
        elif self.value_columns:
            value_columns = self.value_columns
        else:
            skip = {"__ts", self.timestamp_column, *self.label_columns}
            value_columns = [c for c in columns if c not in skip]
        missing = [c for c in [*value_columns, *self.label_columns] if c not in frame.columns]
        if missing:
            raise self.error(f"the query returned no column {missing[0]!r} (columns: {', '.join(columns)})")
        return long_to_series(
            frame,
            metric_column=self.metric_column,
            value_columns=value_columns,
            label_columns=self.label_columns,
        )
