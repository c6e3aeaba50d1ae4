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
from telewatch.core.secrets import redact
from telewatch.sources.sql_guard import QueryRefusedError, SourceError

__all__ = [
    "ColumnarSource",
    "FetchedBatch",
    "FetchedSeries",
    "QueryRefusedError",
    "Source",
    "SourceError",
    "SourceState",
    "SqlSource",
]


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

    def to_dict(self) -> dict[str, Any]:
        """The state as plain JSON types (timestamps as ISO 8601 text)."""
        return {"last_seen": {k: v.isoformat() for k, v in self.last_seen.items()}, "cursor": self.cursor}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> SourceState:
        """The state :meth:`to_dict` wrote (timestamps parsed in one vectorised call: a monitor may
        watch tens of thousands of series).

        >>> s = SourceState.from_dict(SourceState(last_seen={"a": pd.Timestamp("2024-01-01", tz="UTC")}).to_dict())
        >>> s.last_seen["a"].isoformat()
        '2024-01-01T00:00:00+00:00'
        """
        if not data:
            return cls()
        seen = dict(data.get("last_seen") or {})
        stamps: list[pd.Timestamp] = (
            list(pd.DatetimeIndex(pd.to_datetime(list(seen.values()), format="ISO8601", utc=True)))
            if seen
            else []
        )
        return cls(last_seen=dict(zip(seen, stamps, strict=True)), cursor=dict(data.get("cursor") or {}))

    @classmethod
    def from_json(cls, text: str | None) -> SourceState:
        """
        >>> s = SourceState.from_json(SourceState(last_seen={"a": pd.Timestamp("2024-01-01", tz="UTC")}).to_json())
        >>> s.last_seen["a"].isoformat()
        '2024-01-01T00:00:00+00:00'
        """
        return cls.from_dict(json.loads(text) if text else None)


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
        start = self._incremental_start(state, end, lookback)
        if start >= end:
            return [], state
        fetched = self.fetch(start=start, end=end)
        return filter_new(fetched, state)

    def _incremental_start(
        self, state: SourceState, end: pd.Timestamp, lookback: pd.Timedelta | None
    ) -> pd.Timestamp:
        """Where an incremental fetch up to ``end`` starts (see :meth:`fetch_incremental`)."""
        lookback = self.default_lookback if lookback is None else lookback
        if not state.last_seen:
            return end - lookback
        newest = max(state.last_seen.values())
        start = min(state.last_seen.values()) + pd.Timedelta(microseconds=1)
        return max(start, end - lookback, newest - self.straggler_window)

    def fetch_incremental_batch(
        self, *, state: SourceState, end: pd.Timestamp, lookback: pd.Timedelta | None = None
    ) -> tuple[FetchedBatch, SourceState]:
        """:meth:`fetch_incremental` as a :class:`FetchedBatch` (what a monitor's tick reads).

        Here a conversion of the list; :class:`ColumnarSource` subclasses fetch in columns throughout.
        """
        items, new_state = self.fetch_incremental(state=state, end=end, lookback=lookback)
        return FetchedBatch.from_series(items), new_state


class ColumnarSource(Source):
    """A source that reads many series at once into columns: it implements :meth:`fetch_batch`; the
    list methods and the incremental fetch (per-series watermarks, :func:`filter_new_batch`) follow.
    """

    @abstractmethod
    def fetch_batch(self, *, start: pd.Timestamp, end: pd.Timestamp) -> FetchedBatch:
        """Points with ``start <= ts < end`` of every series, as a :class:`FetchedBatch`."""

    def fetch(self, *, start: pd.Timestamp, end: pd.Timestamp) -> list[FetchedSeries]:
        return self.fetch_batch(start=start, end=end).series()

    def fetch_incremental(
        self, *, state: SourceState, end: pd.Timestamp, lookback: pd.Timedelta | None = None
    ) -> tuple[list[FetchedSeries], SourceState]:
        batch, new_state = self.fetch_incremental_batch(state=state, end=end, lookback=lookback)
        return batch.series(), new_state

    def fetch_incremental_batch(
        self, *, state: SourceState, end: pd.Timestamp, lookback: pd.Timedelta | None = None
    ) -> tuple[FetchedBatch, SourceState]:
        end = utc(end)
        start = self._incremental_start(state, end, lookback)
        if start >= end:
            return FetchedBatch.empty(), state
        return filter_new_batch(self.fetch_batch(start=start, end=end), state)


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


_NO_MARK = np.iinfo("int64").min  # a series never seen


@dataclass
class FetchedBatch:
    """Points of many series in columns, the shape a tick over thousands of metrics works in.

    Series ``i`` is ``names[i]`` with ``labels[i]``; its points are ``ts[offsets[i]:offsets[i + 1]]``
    (nanoseconds since the epoch, UTC, strictly increasing) and the same slice of ``values``
    (float64, NaN = missing). It holds what a list of :class:`FetchedSeries` holds, without a pandas
    object per series.

    >>> b = FetchedBatch.from_series([FetchedSeries("cpu", {}, pd.Series([1.0, 2.0],
    ...     index=pd.to_datetime(["2026-01-01 00:00", "2026-01-01 00:01"], utc=True)))])
    >>> len(b), b.keys(), b.series()[0].values.tolist()
    (1, ['cpu'], [1.0, 2.0])
    """

    names: list[str]
    labels: list[dict[str, str]]
    ts: np.ndarray
    values: np.ndarray
    offsets: np.ndarray

    def __post_init__(self) -> None:
        self.ts = np.asarray(self.ts, dtype="int64")
        self.values = np.asarray(self.values, dtype="float64")
        self.offsets = np.asarray(self.offsets, dtype="int64")
        if len(self.labels) != len(self.names) or self.offsets.size != len(self.names) + 1:
            raise ValueError(
                f"a batch of {len(self.names)} series needs as many labels and {len(self.names) + 1} offsets"
            )
        if self.ts.size != self.values.size or int(self.offsets[-1]) != self.ts.size:
            raise ValueError(f"offsets end at {int(self.offsets[-1])} for {self.ts.size} points")

    def __len__(self) -> int:
        return len(self.names)

    @property
    def counts(self) -> np.ndarray:
        """Points per series."""
        return np.diff(self.offsets)

    def keys(self) -> list[str]:
        """:func:`series_key` of every series."""
        return [series_key(n, lab) for n, lab in zip(self.names, self.labels, strict=True)]

    def series(self) -> list[FetchedSeries]:
        """The same points as a list of :class:`FetchedSeries`."""
        out = []
        for i, (name, labels) in enumerate(zip(self.names, self.labels, strict=True)):
            a, b = int(self.offsets[i]), int(self.offsets[i + 1])
            index = pd.DatetimeIndex(self.ts[a:b].view("datetime64[ns]")).tz_localize("UTC")
            out.append(
                FetchedSeries(name=name, labels=labels, values=pd.Series(self.values[a:b], index=index))
            )
        return out

    def select(self, keep: np.ndarray) -> FetchedBatch:
        """The series where the boolean ``keep`` (one per series) is true."""
        keep = np.asarray(keep, dtype=bool)
        if keep.all():
            return self
        counts = self.counts
        point_keep = np.repeat(keep, counts)
        return FetchedBatch(
            names=[n for n, k in zip(self.names, keep, strict=True) if k],
            labels=[lab for lab, k in zip(self.labels, keep, strict=True) if k],
            ts=self.ts[point_keep],
            values=self.values[point_keep],
            offsets=np.concatenate([[0], np.cumsum(counts[keep])]),
        )

    @classmethod
    def empty(cls) -> FetchedBatch:
        return cls([], [], np.empty(0, "int64"), np.empty(0, "float64"), np.zeros(1, "int64"))

    @classmethod
    def from_series(cls, items: Iterable[FetchedSeries]) -> FetchedBatch:
        """A batch holding ``items`` (indexes made UTC nanoseconds)."""
        items = list(items)
        if not items:
            return cls.empty()
        stamps = []
        for item in items:
            idx = item.values.index
            idx = idx if isinstance(idx, pd.DatetimeIndex) else pd.DatetimeIndex(idx)
            idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
            stamps.append(np.asarray(idx.as_unit("ns").asi8, dtype="int64"))
        return cls(
            names=[i.name for i in items],
            labels=[i.labels for i in items],
            ts=np.concatenate(stamps),
            values=np.concatenate([i.values.to_numpy(dtype="float64", na_value=np.nan) for i in items]),
            offsets=np.concatenate([[0], np.cumsum([s.size for s in stamps])]),
        )


def filter_new_batch(batch: FetchedBatch, state: SourceState) -> tuple[FetchedBatch, SourceState]:
    """:func:`filter_new` on a batch: points at or before each series' last-seen point dropped, series
    left empty dropped, and the advanced state."""
    keys = batch.keys()
    seen = state.last_seen
    marks = np.array([seen[k].value if k in seen else _NO_MARK for k in keys], dtype="int64")
    fresh = batch.ts > np.repeat(marks, batch.counts)
    if fresh.all() and batch.counts.all():
        kept = batch
        keep = np.ones(len(batch), dtype=bool)
    else:
        ends = np.concatenate([[0], np.cumsum(fresh)])
        counts = ends[batch.offsets[1:]] - ends[batch.offsets[:-1]]
        keep = counts > 0
        kept = FetchedBatch(
            names=[n for n, k in zip(batch.names, keep, strict=True) if k],
            labels=[lab for lab, k in zip(batch.labels, keep, strict=True) if k],
            ts=batch.ts[fresh],
            values=batch.values[fresh],
            offsets=np.concatenate([[0], np.cumsum(counts[keep])]),
        )
    new_seen = dict(seen)
    if len(kept):
        last = kept.ts[kept.offsets[1:] - 1]
        # a key twice in one batch (it should not be): the newest point wins, as in filter_new
        for key, ns in zip((k for k, on in zip(keys, keep, strict=True) if on), last.tolist(), strict=True):
            old = new_seen.get(key)
            if old is None or ns > old.value:
                new_seen[key] = pd.Timestamp(ns, unit="ns", tz="UTC")
    return kept, SourceState(last_seen=new_seen, cursor=dict(state.cursor))


def long_to_batch(
    frame: pd.DataFrame,
    *,
    metric_column: str | None,
    value_columns: list[str],
    label_columns: list[str],
    fixed_name: str | None = None,
) -> FetchedBatch:
    """Split a frame with an epoch-seconds ``__ts`` column into series, in columns.

    Long shape: one ``metric_column`` naming the metric and one value column. Wide shape
    (``metric_column`` None): each value column is a metric. Label columns slice either shape.
    Series come grouped by metric and labels (sorted; in the wide shape each group's value columns in
    order), each sorted by time with duplicate timestamps keeping the last row; values are numbers
    (anything else is NaN). No pandas object per series: 10,000 series cost one sort.

    >>> f = pd.DataFrame({"__ts": [60, 0, 0], "m": ["a", "a", "b"], "value": [2, 1, "x"]})
    >>> b = long_to_batch(f, metric_column="m", value_columns=["value"], label_columns=[])
    >>> b.names, b.offsets.tolist(), b.values.tolist()
    (['a', 'b'], [0, 2, 3], [1.0, 2.0, nan])
    """
    if frame.empty:
        return FetchedBatch.empty()
    group_cols = ([metric_column] if metric_column else []) + label_columns
    n_rows = len(frame)
    if group_cols:
        codes = frame.groupby(group_cols, sort=True, dropna=False).ngroup().to_numpy(dtype="int64")
    else:
        codes = np.zeros(n_rows, dtype="int64")
    n_groups = int(codes.max()) + 1
    first = np.full(n_groups, n_rows, dtype="int64")
    np.minimum.at(first, codes, np.arange(n_rows, dtype="int64"))
    seconds = pd.Index(pd.to_numeric(frame["__ts"], errors="coerce").to_numpy(dtype="float64"))
    stamps = pd.DatetimeIndex(pd.to_datetime(seconds, unit="s", utc=True)).as_unit("ns")
    ts_one = np.asarray(stamps.asi8, dtype="int64")
    k = len(value_columns) if not metric_column else 1
    cols = value_columns[:1] if metric_column else value_columns
    # series id of (group g, value column c) = g * k + c: grouped, then the value columns in order
    sid = np.concatenate([codes * k + c for c in range(k)])
    ts = np.tile(ts_one, k)
    values = np.concatenate(
        [
            pd.to_numeric(pd.Series(frame[col].to_numpy(dtype=object), dtype="object"), errors="coerce")
            .astype("float64")
            .to_numpy()
            for col in cols
        ]
    )
    order = np.lexsort((ts, sid))  # stable: equal (series, ts) keep their row order
    sid, ts, values = sid[order], ts[order], values[order]
    last_of_run = np.ones(sid.size, dtype=bool)
    last_of_run[:-1] = (sid[1:] != sid[:-1]) | (ts[1:] != ts[:-1])
    sid, ts, values = sid[last_of_run], ts[last_of_run], values[last_of_run]
    offsets = np.concatenate([[0], np.cumsum(np.bincount(sid, minlength=n_groups * k))])
    names: list[str] = []
    labels: list[dict[str, str]] = []
    key_rows = frame[group_cols].iloc[first].itertuples(index=False, name=None) if group_cols else [()]
    for key in key_rows:
        found = dict(zip(group_cols, key, strict=True))
        lab = {c: str(found[c]) for c in label_columns}
        for col in cols:
            names.append(str(found[metric_column]) if metric_column else (fixed_name or col))
            labels.append(dict(lab))
    return FetchedBatch(names=names, labels=labels, ts=ts, values=values, offsets=offsets)


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


_PERCENT = re.compile(r"%\((?:start|end)\)s|%%|%")


def bindable_query(query: str) -> str:
    """The user's query as the drivers' ``%(name)s`` binding needs it: a ``%`` is SQL text
    (``LIKE 'web%'``, ``x % 60``) and is doubled, except in the two bind parameters ``%(start)s`` and
    ``%(end)s`` and in a ``%%`` already written the drivers' way (which stays one ``%``).

    >>> bindable_query("SELECT * FROM t WHERE m LIKE 'web%' AND ts >= %(start)s AND k % 2 = 0 AND n LIKE 'a%%'")
    "SELECT * FROM t WHERE m LIKE 'web%%' AND ts >= %(start)s AND k %% 2 = 0 AND n LIKE 'a%%'"
    """
    return _PERCENT.sub(lambda m: "%%" if m.group(0) == "%" else m.group(0), query)


class SqlSource(ColumnarSource):
    """Shared query building for the SQL sources (PostgreSQL, ClickHouse).

    Either ``query`` (the user's SELECT, with ``%(start)s`` and ``%(end)s`` bind parameters for the time
    range; any other ``%`` is SQL text, see :func:`bindable_query`) or ``table`` (with a column mapping) says what to read. The shape is *long* when
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
        source = self._q(self.table) if self.table else f"({bindable_query(self.query or '')}) AS __q"
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

    def fetch_incremental_batch(
        self, *, state: SourceState, end: pd.Timestamp, lookback: pd.Timedelta | None = None
    ) -> tuple[FetchedBatch, SourceState]:
        """As :meth:`Source.fetch_incremental`; with ``resample`` only complete buckets are fetched
        (``end`` is floored to a bucket boundary), so a bucket still filling is read whole on a later
        run, and the next run starts at the bucket after the watermark."""
        end = utc(end)
        if self.resample is not None:
            ceiled = ceil_to_step(end, self.resample)
            end = ceiled if ceiled == end else ceiled - self.resample
        return super().fetch_incremental_batch(state=state, end=end, lookback=lookback)

    def fetch_batch(self, *, start: pd.Timestamp, end: pd.Timestamp) -> FetchedBatch:
        """Points with ``start <= ts < end``; with ``resample``, the buckets starting in that range,
        each aggregated over its whole width (the raw range sent is widened to bucket boundaries)."""
        start, end = utc(start), utc(end)
        if self.resample is not None:
            start, end = ceil_to_step(start, self.resample), ceil_to_step(end, self.resample)
            if start >= end:
                self.last_rows = 0
                return FetchedBatch.empty()
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
        return long_to_batch(
            frame,
            metric_column=self.metric_column,
            value_columns=value_columns,
            label_columns=self.label_columns,
        )
