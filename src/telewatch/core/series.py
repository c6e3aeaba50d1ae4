"""Series conventions.

A *series* in telewatch is a ``pandas.Series`` of float64 values on a sorted, unique,
timezone-aware UTC ``DatetimeIndex``. NaN means "missing"; a gap (absent timestamp) stays a gap.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from telewatch.core.errors import ValidationError

#: Scale from the median absolute deviation to a normal distribution's standard deviation
#: (``1 / Φ⁻¹(3/4)``): ``MAD_TO_SIGMA * MAD`` estimates sigma robustly. The one copy in telewatch.
MAD_TO_SIGMA = 1.4826


def as_utc_index(index: pd.Index, *, timezone: str = "UTC") -> pd.DatetimeIndex:
    """Return ``index`` as a UTC DatetimeIndex; naive timestamps are read in ``timezone``.

    >>> as_utc_index(pd.DatetimeIndex(["2024-01-01 03:00"]), timezone="Europe/Moscow")[0]
    Timestamp('2024-01-01 00:00:00+0000', tz='UTC')
    """
    idx = pd.DatetimeIndex(index)
    if idx.tz is None:
        idx = idx.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
    return idx.tz_convert("UTC")


def validate_series(series: pd.Series, *, name: str = "series") -> pd.Series:
    """Check and normalise a series: float64 values, sorted unique UTC index.

    Raises :class:`ValidationError` naming what is wrong.

    >>> s = validate_series(pd.Series([1, 2], index=pd.to_datetime(["2024-01-01", "2024-01-02"])))
    >>> str(s.index.tz), s.dtype
    ('UTC', dtype('float64'))
    """
    if not isinstance(series, pd.Series):
        raise ValidationError(f"{name}: expected a pandas Series, got {type(series).__name__}")
    if not isinstance(series.index, pd.DatetimeIndex):
        raise ValidationError(f"{name}: the index must be timestamps, got {type(series.index).__name__}")
    try:
        values = pd.to_numeric(series, errors="raise").astype("float64")
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{name}: values must be numeric ({exc})") from exc
    values.index = as_utc_index(series.index)
    if values.index.hasnans:
        raise ValidationError(f"{name}: the index holds missing timestamps")
    if not values.index.is_monotonic_increasing:
        values = values.sort_index()
    if values.index.has_duplicates:
        dup = values.index[values.index.duplicated()][0]
        raise ValidationError(f"{name}: duplicate timestamp {dup.isoformat()}")
    values.name = series.name
    return values


def infer_step(index: pd.DatetimeIndex) -> pd.Timedelta | None:
    """The series' regular step: the most common difference between consecutive timestamps.

    >>> infer_step(pd.date_range("2024-01-01", periods=5, freq="1min"))
    Timedelta('0 days 00:01:00')
    """
    if len(index) < 2:
        return None
    diffs = np.diff(index.as_unit("ns").asi8)
    diffs = diffs[diffs > 0]
    if diffs.size == 0:
        return None
    values, counts = np.unique(diffs, return_counts=True)
    return pd.Timedelta(int(values[np.argmax(counts)]), unit="ns")
