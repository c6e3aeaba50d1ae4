"""Use-cases: list metrics and read their series for people and charts."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from telewatch.core.durations import parse_duration
from telewatch.core.errors import ValidationError
from telewatch.store import repo
from telewatch.store.db import Store
from telewatch.store.repo import MetricInfo, parse_selector

__all__ = [
    "DeletedMetric",
    "MetricInfo",
    "SeriesView",
    "delete_metric",
    "format_step",
    "get_metric",
    "list_metrics",
    "parse_selector",
    "parse_step",
    "parse_time",
    "read_label_windows",
    "read_points",
    "read_scores",
    "read_series",
    "step_duration",
]


@dataclass(frozen=True)
class SeriesView:
    metric: MetricInfo
    values: pd.Series
    step: pd.Timedelta | None  # None = raw points
    agg: str


def list_metrics(
    store: Store, *, group: str | None = None, selector: Mapping[str, str] | None = None
) -> list[MetricInfo]:
    return repo.list_metrics(store.cursor(), group=group, selector=selector)


def get_metric(store: Store, ref: str | int, labels: Mapping[str, str] | None = None) -> MetricInfo:
    """One metric by id, or by name (plus labels when the name has several slices)."""
    return repo.get_metric(store.cursor(), ref, labels)


def read_points(
    store: Store, metric_id: int, *, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
) -> pd.Series:
    """The raw points of one metric in [start, end), in time order (gaps stay gaps)."""
    return repo.read_series(store.cursor(), metric_id, start=start, end=end)


def read_label_windows(store: Store, metric_id: int | None = None) -> pd.DataFrame:
    """Labelled anomaly windows (of one metric, or all): planted demo incidents, imported labels, feedback."""
    return repo.read_label_windows(store.cursor(), metric_id)


def read_scores(store: Store, metric_id: int, detector: str) -> pd.Series:
    """The stored scores of one metric by one detector, in time order."""
    return repo.read_scores(store.cursor(), metric_id, detector)


@dataclass(frozen=True)
class DeletedMetric:
    metric: MetricInfo
    rows: dict[str, int]  # rows deleted per kind: points, scores, anomalies, incidents, ...


def delete_metric(store: Store, ref: str | int, labels: Mapping[str, str] | None = None) -> DeletedMetric:
    """Delete one metric (by id, or name and labels) with its points, scores, anomalies and the incidents
    left without a member: how an admin removes bad data (an upload with a wrong or hostile column)."""
    metric = repo.get_metric(store.cursor(), ref, labels)
    with store.transaction(series=True) as cur:
        rows = repo.delete_metric(cur, metric.id)
    return DeletedMetric(metric=metric, rows=rows)


# an ISO time whose "+HH:MM" offset lost its "+" (an unencoded "+" in a query string arrives as a space)
_SPACED_OFFSET = re.compile(r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}(?::?\d{2})?)$")


def parse_time(text: str | None, *, what: str) -> pd.Timestamp | None:
    """An ISO-8601 time (naive = UTC), or None.

    An offset whose ``+`` arrived as a space (``?from=2024-03-07T22:00:00+03:00`` unencoded in a URL) is
    read as the offset it was, not as a time of day (pandas alone reads it as 03:00 that day):

    >>> parse_time("2024-03-07T22:00:00 03:00", what="from")
    Timestamp('2024-03-07 19:00:00+0000', tz='UTC')
    >>> parse_time("2024-03-07 22:00", what="from")
    Timestamp('2024-03-07 22:00:00+0000', tz='UTC')
    """
    if text is None or text == "":
        return None
    spaced = _SPACED_OFFSET.match(text.strip())
    if spaced:
        text = f"{spaced[1]}+{spaced[2]}"
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError) as exc:
        raise ValidationError(
            f"{what}: {text!r} is not a time (use ISO 8601, e.g. 2024-05-01T12:00Z)"
        ) from exc
    if stamp is pd.NaT:
        raise ValidationError(f"{what}: {text!r} is not a time")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def parse_step(text: str | pd.Timedelta | None) -> pd.Timedelta | None:
    """A resampling step such as ``5min``, ``1h``, ``30s`` (None or empty = raw points); see
    :func:`step_duration`."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    return step_duration(text)


def step_duration(value: str | pd.Timedelta) -> pd.Timedelta:
    """A grid or resampling step as people write it: the project's durations (``1m``, ``90s``,
    ``1h30m``, ``5min``; :func:`telewatch.core.durations.parse_duration`) or anything pandas reads
    (``5T``, ``1 days``). A bare number is refused (``5`` is not five of anything in particular), as is
    a step under one second.

    >>> step_duration("5min"), step_duration("1h30m")
    (Timedelta('0 days 00:05:00'), Timedelta('0 days 01:30:00'))
    >>> step_duration("5")
    Traceback (most recent call last):
    ...
    telewatch.core.errors.ValidationError: step: '5' has no unit; a step needs a unit, e.g. 5m, 30s or 1h
    """
    if isinstance(value, pd.Timedelta):
        step = value
    else:
        text = str(value).strip()
        if re.fullmatch(r"\d+(\.\d+)?", text):
            raise ValidationError(
                f"step: {value!r} has no unit; a step needs a unit, e.g. {text}m, 30s or 1h"
            )
        try:
            step = pd.Timedelta(parse_duration(text))
        except ValueError:
            try:
                step = pd.Timedelta(text)
            except (ValueError, TypeError) as exc:
                raise ValidationError(
                    f"step: {value!r} is not a duration; write e.g. 1m, 30s, 5min or 1h"
                ) from exc
    if step < pd.Timedelta(seconds=1):
        raise ValidationError(f"step must be at least one second, got {format_step(step)}")
    return step


def format_step(step: pd.Timedelta) -> str:
    """A step as the duration parser reads it: ``1m``, ``90s`` → ``1m30s``, ``1d``.

    >>> format_step(pd.Timedelta("1min")), format_step(pd.Timedelta("90s")), format_step(pd.Timedelta("1D"))
    ('1m', '1m30s', '1d')
    """
    total = step.total_seconds()
    if total <= 0 or total != int(total):
        return f"{total:g}s"
    seconds = int(total)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)


def read_series(
    store: Store,
    ref: str | int,
    *,
    labels: Mapping[str, str] | None = None,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    step: pd.Timedelta | None = None,
    agg: str = "avg",
    max_points: int = 200_000,
) -> SeriesView:
    """A metric's points in [start, end), resampled to ``step`` when given.

    When the raw points would exceed ``max_points`` and no step is given, a step is chosen so
    that they fit (a chart cannot show more points than that anyway).
    """
    if start is not None and end is not None and end <= start:
        raise ValidationError(
            f"the window is empty: to ({end.isoformat()}) is not after from ({start.isoformat()})"
        )
    cur = store.cursor()
    metric = repo.get_metric(cur, ref, labels)
    if step is None and metric.first_ts is not None and metric.last_ts is not None:
        total = metric.points + metric.missing
        lo = max(start, metric.first_ts) if start is not None else metric.first_ts
        hi = min(end, metric.last_ts) if end is not None else metric.last_ts
        span = metric.last_ts - metric.first_ts
        share = (hi - lo) / span if span > pd.Timedelta(0) else 1.0
        if total * max(share, 0.0) > max_points:
            seconds = max(1, int((hi - lo).total_seconds() / max_points) + 1)
            step = pd.Timedelta(seconds=seconds)
    values = repo.read_series(cur, metric.id, start=start, end=end, step=step, agg=agg)
    if len(values) > max_points:
        raise ValidationError(
            f"{len(values)} points exceed the limit of {max_points}; choose a longer step or a shorter window"
        )
    values.name = metric.name
    return SeriesView(metric=metric, values=values, step=step, agg=agg)
