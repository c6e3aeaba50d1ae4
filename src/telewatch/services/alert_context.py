"""What an alert about one anomaly shows beside its numbers: the chart's last hours of the metric and
the band usual at each of those minutes (the same time of day on the previous days), for every path
that alerts (a monitor's tick, ``telewatch detect``, an upload)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from telewatch.postrules.usual import usual_band
from telewatch.store import repo

#: Hours of the metric an alert's chart shows before the anomaly.
CHART_HOURS = 6
#: Days of history the usual band is read from (postrules.usual.usual_at's default).
BAND_DAYS = 7


@dataclass(frozen=True)
class AlertContext:
    """``window``: the points the chart draws; ``band``: the usual band over them (``expected``,
    ``lower``, ``upper``); ``history``: the metric's values over the band's days (to infer its kind)."""

    window: pd.Series
    band: pd.DataFrame
    history: pd.Series


def alert_context(cur: Any, metric_id: int, start: pd.Timestamp, end: pd.Timestamp) -> AlertContext:
    """The chart window (``CHART_HOURS`` before ``start`` to ``end``) and the usual band over it, read
    from the store through ``cur``."""
    first = start - pd.Timedelta(hours=CHART_HOURS)
    history = repo.read_series(
        cur, metric_id, start=first - pd.Timedelta(days=BAND_DAYS), end=end + pd.Timedelta(minutes=1)
    )
    window = history[history.index >= first]
    band = usual_band(history[history.index < end + pd.Timedelta(minutes=1)], pd.DatetimeIndex(window.index))
    return AlertContext(window=window, band=band, history=history)
