"""Use-case: compaction — re-sort finished days of points and scores so one metric's history is cheap
to read.

A monitor's ticks append every metric's newest minutes together, so the ``points`` and ``scores``
tables are ordered by time: each of DuckDB's row groups (about 123,000 rows) holds a few minutes of
*every* metric. A query over a time slice of all metrics (a tick, the window scan) touches only the row
groups of its minutes, but a query for *one* metric over days (the explorer, the API, training) reads
every row group of those days: 15 ms per day of history at 10,000 metrics, over a second for 90 days.

Compaction rewrites each day, once it is older than the window scan reaches (the window, its baseline
and the same hours of the 3 days before: ``keep_recent``, 4 days by default), in the order (metric,
time): a row group then holds a day of a few dozen metrics, so DuckDB's zone maps skip all but one or
two of the day's row groups for one metric (at 10,000 metrics, 118 of them per day). A time slice of
such a day now reads the whole day, which is why recent days stay time-ordered: the ticks, the scan of
a recent window and the incident update never read a compacted day; explaining a window weeks old
does, at the cost of a day's scan per slice. Each day is rewritten in one
transaction (appended in the new order, the old rows deleted), with the store's series-write lock held,
so a kill leaves the day either as it was or compacted, and no writer can slip a point in between.
Points that arrive for a compacted day later (a late upload) are appended as usual and read correctly;
they are just not sorted. ``store_compaction`` remembers, per table, the day up to which it is done.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pandas as pd

from telewatch.store import maintenance
from telewatch.store.db import Store

log = logging.getLogger("telewatch.compaction")

#: table -> the physical order a compacted day is written in
ORDER = maintenance.COMPACTION_ORDER
_DAY = pd.Timedelta(days=1)


@dataclass
class CompactionReport:
    """What one compaction pass rewrote: per table, the days and rows."""

    days: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    until: dict[str, pd.Timestamp | None] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def _naive(ts: pd.Timestamp) -> Any:
    return ts.tz_convert("UTC").tz_localize(None).to_pydatetime()


def compacted_until(store: Store, table: str) -> pd.Timestamp | None:
    """The day (UTC midnight) before which ``table`` is compacted, or ``None`` if never."""
    return maintenance.compacted_until(store.cursor(), table)


def compact_store(
    store: Store,
    *,
    now: pd.Timestamp | str,
    keep_recent: timedelta = timedelta(days=4),
    tables: tuple[str, ...] = ("points", "scores"),
    max_days: int | None = None,
) -> CompactionReport:
    """Rewrite, in (metric, time) order, every day of ``tables`` that ended at least
    ``keep_recent`` before ``now`` and is not compacted yet (at most ``max_days`` days per table).

    >>> with Store(":memory:") as store:
    ...     report = compact_store(store, now="2026-01-05")
    >>> report.days, report.total_rows
    ({'points': 0, 'scores': 0}, 0)
    """
    started = time.perf_counter()
    stamp = pd.Timestamp(now)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    stop = (stamp - pd.Timedelta(keep_recent)).floor("D")
    report = CompactionReport()
    for table in tables:
        if table not in ORDER:
            raise ValueError(f"compaction: no order known for table {table!r}")
        report.days[table], report.rows[table] = 0, 0
        day = compacted_until(store, table)
        if day is None:
            first = maintenance.first_series_ts(store.cursor(), table)
            if first is None:
                report.until[table] = None
                continue
            day = first.floor("D")
        while day < stop and (max_days is None or report.days[table] < max_days):
            report.rows[table] += _compact_day(store, table, day)
            report.days[table] += 1
            day += _DAY
        report.until[table] = day
    report.seconds = time.perf_counter() - started
    if report.total_rows:
        log.info(
            "compaction: %s in %.1f s",
            ", ".join(f"{t} {report.days[t]} days / {report.rows[t]:,} rows" for t in tables),
            report.seconds,
        )
    return report


def _compact_day(store: Store, table: str, day: pd.Timestamp) -> int:
    """One day of ``table`` rewritten in one transaction; returns the rows rewritten."""
    with store.transaction(series=True) as tx:
        return maintenance.compact_day(tx, table, _naive(day), _naive(day + _DAY))
