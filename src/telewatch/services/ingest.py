"""Use-case: bring a file of metrics into the store, all of it or nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from telewatch.core.faults import crash_point
from telewatch.core.series import infer_step
from telewatch.sources.files import IngestOptions, ParsedFile, parse_file
from telewatch.store import repo
from telewatch.store.db import Store


@dataclass(frozen=True)
class SeriesReport:
    """What one stored metric received."""

    metric_id: int
    name: str
    labels: dict[str, str]
    points: int  # values stored
    missing: int  # empty cells stored as missing
    first_ts: pd.Timestamp | None
    last_ts: pd.Timestamp | None
    step: pd.Timedelta | None
    gaps: int  # runs of absent timestamps longer than the step
    largest_gap: pd.Timedelta | None


@dataclass(frozen=True)
class IngestReport:
    source: str
    format: str
    shape: str
    rows: int
    duplicates_resolved: int
    timestamps: int = 0  # distinct timestamps over all series
    series: list[SeriesReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def points(self) -> int:
        return sum(s.points for s in self.series)

    @property
    def first_ts(self) -> pd.Timestamp | None:
        stamps = [s.first_ts for s in self.series if s.first_ts is not None]
        return min(stamps) if stamps else None

    @property
    def last_ts(self) -> pd.Timestamp | None:
        stamps = [s.last_ts for s in self.series if s.last_ts is not None]
        return max(stamps) if stamps else None


def _gaps(index: pd.DatetimeIndex) -> tuple[pd.Timedelta | None, int, pd.Timedelta | None]:
    step = infer_step(index)
    if step is None:
        return None, 0, None
    diffs = np.diff(index.as_unit("ns").asi8)
    big = diffs[diffs > step.value]
    largest = pd.Timedelta(int(big.max()), unit="ns") if big.size else None
    return step, int(big.size), largest


def store_parsed(
    store: Store,
    parsed: ParsedFile,
    *,
    source: str,
    sha256: str | None = None,
    rename: Mapping[str, str] | None = None,
    prefix: str = "",
    labels: Mapping[str, str] | None = None,
    unit: str | None = None,
    owner: str | None = None,
    group: str | None = None,
) -> IngestReport:
    """Write a parsed file in one transaction: every series of it, or nothing."""
    reports: list[SeriesReport] = []
    stamps: list[np.ndarray] = []
    crash_point("ingest.begin")
    with store.transaction(series=True) as tx:
        for item in parsed.series:
            name = prefix + (rename or {}).get(item.name, item.name)
            series_labels = {**item.labels, **(labels or {})}
            metric_id = repo.upsert_metric(
                tx, name=name, labels=series_labels, unit=unit, owner=owner, group=group
            )
            repo.write_points(tx, metric_id, item.values)
            index = pd.DatetimeIndex(item.values.index)
            stamps.append(index.as_unit("ns").asi8)
            step, gaps, largest = _gaps(index)
            reports.append(
                SeriesReport(
                    metric_id=metric_id,
                    name=name,
                    labels=dict(series_labels),
                    points=int(item.values.notna().sum()),
                    missing=int(item.values.isna().sum()),
                    first_ts=index[0] if len(index) else None,
                    last_ts=index[-1] if len(index) else None,
                    step=step,
                    gaps=gaps,
                    largest_gap=largest,
                )
            )
        crash_point("ingest.after_points")
        total = sum(r.points for r in reports)
        repo.record_ingest(tx, source=source, sha256=sha256, metrics=len(reports), points=total)
        crash_point("ingest.before_commit")
    crash_point("ingest.after_commit")
    distinct = int(np.unique(np.concatenate(stamps)).size) if stamps else 0
    return IngestReport(
        source=source,
        format=parsed.format,
        shape=parsed.shape,
        rows=parsed.rows,
        duplicates_resolved=parsed.duplicates_resolved,
        series=reports,
        warnings=list(parsed.warnings),
        timestamps=distinct,
    )


def ingest_file(
    store: Store,
    source: Path | bytes,
    *,
    options: IngestOptions | None = None,
    name: str | None = None,
    rename: Mapping[str, str] | None = None,
    prefix: str = "",
    labels: Mapping[str, str] | None = None,
    unit: str | None = None,
    owner: str | None = None,
    group: str | None = None,
) -> IngestReport:
    """Parse ``source`` (a path or uploaded bytes) and store it. A malformed file raises
    :class:`~telewatch.core.errors.IngestError` naming the line and column, and stores nothing."""
    display = name or (str(source) if isinstance(source, Path) else "upload")
    parsed = parse_file(source, options, name=display)
    digest = hashlib.sha256(source if isinstance(source, bytes) else Path(source).read_bytes()).hexdigest()
    return store_parsed(
        store,
        parsed,
        source=display,
        sha256=digest,
        rename=rename,
        prefix=prefix,
        labels=labels,
        unit=unit,
        owner=owner,
        group=group,
    )
