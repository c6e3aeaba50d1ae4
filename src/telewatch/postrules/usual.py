"""What is usual for a metric at a given time of day: the value and band an alert shows beside the
anomalous value ("expected 5,003 (usual 4,200 – 5,600 at this hour)").

A detector's own expected value answers "what did the model predict"; an on-call engineer asks
"what does this metric normally do at this hour". The answer here is read from the metric's own
recent history: the values within ``half_window`` of the same time of day on each of the previous
``days`` days. Taken from observed values, the band never leaves the metric's physical range (no
negative users, no APDEX above 1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DAY_NS = 86_400 * 1_000_000_000
MINUTE_NS = 60 * 1_000_000_000
#: :func:`usual_at` leaves out the one day furthest past each edge of the band from this many days
#: of history on (a week less its weekend)
DROP_ONE_FROM_DAYS = 5
#: ... when that day's quantile lies beyond the next day's by more than this share of the range of
#: all the days' quantiles
LONE_DAY_GAP = 0.5


def usual_at(
    ts: np.ndarray,
    values: np.ndarray,
    at_ns: int,
    *,
    days: int = 7,
    half_window_minutes: int = 10,
    low_q: float = 0.05,
    high_q: float = 0.95,
) -> tuple[float | None, float | None, float | None]:
    """(median, lower, upper) of the values near the time of day of ``at_ns`` on the ``days`` days
    before it; ``ts`` (ns since the epoch, sorted) and ``values`` are the metric's points. The
    band's quantiles are taken over the values within ``half_window_minutes`` of those days pooled
    (the day-to-day spread is part of what is usual), but each edge without the one day that
    reaches far past all the others (a day whose own quantile lies beyond the next day's by more
    than :data:`LONE_DAY_GAP` of the days' whole range), from :data:`DROP_ONE_FROM_DAYS` days on:
    one day's outage at that hour does not stretch the band for a week, while a habit whose size
    varies from night to night (a nightly job's errors, 0.5 to 3.4 %) keeps its range. (With fewer
    days, the one weekday among a weekend's would be that day: the band would call an ordinary
    Tuesday afternoon high.) Falls back to the whole day before ``at_ns`` when fewer than 5 such
    values exist; (None, None, None) when there is nothing before it.

    >>> minute = np.arange(0, 3 * 1440) * MINUTE_NS
    >>> daily = 100 + 50 * np.sin(2 * np.pi * np.arange(3 * 1440) / 1440)
    >>> med, lo, hi = usual_at(minute, daily, int(minute[-1] + MINUTE_NS) + 360 * MINUTE_NS)
    >>> round(med), lo <= med <= hi, round(hi - lo) < 10
    (150, True, True)

    A collapse to 0 at that hour on one of the seven days leaves the band where it was:

    >>> week = np.arange(0, 7 * 1440) * MINUTE_NS
    >>> flat = np.full(week.size, 1000.0) + np.arange(week.size) % 7
    >>> flat[3 * 1440 + 590 : 3 * 1440 + 615] = 0.0  # 09:50-10:15 on day 3
    >>> med, lo, hi = usual_at(week, flat, int(7 * 1440 * MINUTE_NS) + 600 * MINUTE_NS)
    >>> round(med), round(lo), round(hi)
    (1002, 1000, 1006)
    """
    ts = np.asarray(ts, dtype="int64")
    values = np.asarray(values, dtype="float64")
    per_day: list[np.ndarray] = []
    half = half_window_minutes * MINUTE_NS
    for d in range(1, days + 1):
        centre = at_ns - d * DAY_NS
        lo, hi = (
            np.searchsorted(ts, centre - half, side="left"),
            np.searchsorted(ts, centre + half, side="right"),
        )
        window = values[lo:hi]
        window = window[np.isfinite(window)]
        if window.size:
            per_day.append(window)
    if sum(w.size for w in per_day) >= 5:
        pooled = np.concatenate(per_day)
        lowest = highest = None  # the days each edge leaves out (None: none)
        if len(per_day) >= DROP_ONE_FROM_DAYS:
            edges = np.array([np.quantile(w, [low_q, high_q]) for w in per_day])
            lowest = _lone_day(-edges[:, 0])
            highest = _lone_day(edges[:, 1])
        return (
            float(np.median(pooled)),
            float(np.quantile(_without_day(per_day, lowest, pooled), low_q)),
            float(np.quantile(_without_day(per_day, highest, pooled), high_q)),
        )
    lo = np.searchsorted(ts, at_ns - DAY_NS, side="left")
    hi = np.searchsorted(ts, at_ns, side="left")
    sample = values[lo:hi]
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return None, None, None
    return (
        float(np.median(sample)),
        float(np.quantile(sample, low_q)),
        float(np.quantile(sample, high_q)),
    )


def _lone_day(edges: np.ndarray) -> int | None:
    """The day whose ``edges`` value is the highest by more than :data:`LONE_DAY_GAP` of the range
    of all of them (Dixon's gap ratio), else None.

    >>> _lone_day(np.array([950.0, 960, 940, 955, 1900])), _lone_day(np.array([3.4, 3.1, 2.5, 0.5, 1.6]))
    (4, None)
    """
    order = np.argsort(edges)
    span = float(edges[order[-1]] - edges[order[0]])
    if span <= 0 or float(edges[order[-1]] - edges[order[-2]]) <= LONE_DAY_GAP * span:
        return None
    return int(order[-1])


def _without_day(per_day: list[np.ndarray], day: int | None, pooled: np.ndarray) -> np.ndarray:
    """The pooled values less those of ``day`` (all of them when None)."""
    if day is None:
        return pooled
    return np.concatenate(per_day[:day] + per_day[day + 1 :])


def usual_band(history: pd.Series, index: pd.DatetimeIndex, *, days: int = 7) -> pd.DataFrame:
    """The band :func:`usual_at` gives at every time of ``index`` (columns ``expected``, ``lower``,
    ``upper``), from ``history`` (the metric's points, UTC index, at least ``days`` days before
    ``index``): what an alert's chart draws behind the value, so the reader sees the usual range at
    each hour, not one flat line.

    >>> idx = pd.date_range("2024-01-01", periods=3 * 1440, freq="1min", tz="UTC")
    >>> hist = pd.Series(100 + 50 * np.sin(2 * np.pi * np.arange(idx.size) / 1440), index=idx)
    >>> band = usual_band(hist, idx[-360:])
    >>> bool((band["lower"] <= band["expected"]).all() and (band["expected"] <= band["upper"]).all())
    True
    >>> round(float(band["expected"].iloc[0])), round(float(band["expected"].iloc[-1]))
    (50, 100)
    """
    ts = pd.DatetimeIndex(history.index)
    ts = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
    keep = np.isfinite(history.to_numpy(dtype="float64"))
    ts_ns = ts.as_unit("ns").asi8[keep]
    values = history.to_numpy(dtype="float64")[keep]
    target = pd.DatetimeIndex(index)
    target = target.tz_localize("UTC") if target.tz is None else target.tz_convert("UTC")
    rows = [usual_at(ts_ns, values, int(t), days=days) for t in target.as_unit("ns").asi8]
    out = pd.DataFrame(rows, index=target, columns=["expected", "lower", "upper"], dtype="float64")
    return out


def habitual(
    ts: np.ndarray,
    values: np.ndarray,
    at_ns: int,
    value: float,
    *,
    days: int = 7,
    half_window_minutes: int = 15,
    recurrences: int = 2,
    margin: float = 0.05,
) -> bool:
    """Whether ``value`` at ``at_ns`` is something the metric has done at this time of day before:
    on at least ``recurrences`` of the previous ``days`` days, the extreme within ``half_window``
    of the same time reached as far (within ``margin`` of the day's range). A nightly dip, an evening
    peak or a midnight batch's error burst is learned this way after two or three days and is not
    paged about again; a one-off at that hour is not habitual. Needs points on at least
    ``recurrences + 1`` of those days (a new series has no habits).

    >>> minute = np.arange(0, 5 * 1440) * MINUTE_NS
    >>> daily = np.where(np.arange(5 * 1440) % 1440 == 1320, 9000.0, 4000.0)  # 22:00 every day
    >>> at = int(minute[-1] + MINUTE_NS) + 1320 * MINUTE_NS
    >>> habitual(minute, daily, at, 9100.0), habitual(minute, daily, at, 20000.0)
    (True, False)
    >>> habitual(minute, daily, at, 500.0)  # a collapse at the hour of the peak is not a habit
    False
    """
    ts = np.asarray(ts, dtype="int64")
    values = np.asarray(values, dtype="float64")
    half = half_window_minutes * MINUTE_NS
    highs: list[float] = []
    lows: list[float] = []
    spans: list[float] = []
    for d in range(1, days + 1):
        centre = at_ns - d * DAY_NS
        lo, hi = (
            np.searchsorted(ts, centre - half, side="left"),
            np.searchsorted(ts, centre + half, side="right"),
        )
        window = values[lo:hi]
        window = window[np.isfinite(window)]
        if window.size == 0:
            continue
        highs.append(float(window.max()))
        lows.append(float(window.min()))
        day_lo, day_hi = np.searchsorted(ts, centre - DAY_NS // 2), np.searchsorted(ts, centre + DAY_NS // 2)
        day = values[day_lo:day_hi]
        day = day[np.isfinite(day)]
        spans.append(float(day.max() - day.min()) if day.size else 0.0)
    if len(highs) < recurrences + 1 or not np.isfinite(value):
        return False
    slack = margin * float(np.median(spans)) if spans else 0.0
    median = float(np.median(np.concatenate([highs, lows])))
    if value >= median:
        reach = sorted(highs, reverse=True)[recurrences - 1]  # reached at least `recurrences` times
        return bool(value <= reach + slack)
    reach = sorted(lows)[recurrences - 1]
    return bool(value >= reach - slack)


def ordinary_blip(
    points: int, value: float, lower: float | None, upper: float | None, *, max_points: int = 1
) -> bool:
    """Whether an anomaly is a lone reading (at most ``max_points`` points) that stays within one band
    width of what the metric usually does at this hour (``lower``/``upper`` from :func:`usual_at`):
    a new daily high by a few per cent, one noisy minute past the band. Novelty flags such a value
    because it is new, not because it is far; a person has nothing to act on. A lone reading far out
    (an outage's first minute, an error rate 100 times its usual) is not a blip, nor is anything
    longer, nor a value without a usual band.

    >>> ordinary_blip(1, 1301.0, 778.0, 1191.0), ordinary_blip(1, 0.43, 0.0, 0.004)
    (True, False)
    >>> ordinary_blip(5, 1301.0, 778.0, 1191.0), ordinary_blip(1, 1301.0, None, None)
    (False, False)
    """
    if points > max_points or lower is None or upper is None or not np.isfinite(value):
        return False
    width = float(upper) - float(lower)
    return bool(float(lower) - width <= value <= float(upper) + width)


#: An anomaly is held open while its metric stays beyond its band by at least this share of the
#: distance from the usual value to the anomaly's peak (an outage that flattened out at 10 % of the
#: usual traffic is still an outage, though the detector stopped scoring it as new).
HOLD_SHARE = 0.5


def held_through(outside: np.ndarray, merge_gap: int) -> int:
    """The position of the last point of the run of ``outside`` points that starts within
    ``merge_gap`` points of the anomaly's end and continues with gaps of at most ``merge_gap``
    (-1: the metric came back at once). Later excursions (tomorrow's peak) are not this anomaly.

    >>> held_through(np.array([0, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1], dtype=bool), 3)
    4
    >>> held_through(np.array([0, 0, 0, 0, 1], dtype=bool), 3)
    -1
    """
    last = -1
    for pos in np.flatnonzero(outside):
        if pos - last - 1 > merge_gap:
            break
        last = int(pos)
    return last


def still_outside(
    values: np.ndarray, peak: float | None, expected: float | None, lower: float | None, upper: float | None
) -> np.ndarray:
    """Which of ``values`` (after an anomaly's end) are still on the anomaly's side of the usual band,
    at least :data:`HOLD_SHARE` of the way from the usual value to the peak and past the band by its width."""
    out = np.zeros(values.size, dtype=bool)
    if peak is None or expected is None or not np.isfinite(peak) or values.size == 0:
        return out
    peak, expected = float(peak), float(expected)
    mark = expected + HOLD_SHARE * (peak - expected)
    # and beyond the band by its own width again: a noisy metric's ordinary wobble just past its band
    # does not hold an anomaly open for hours
    width = float(upper) - float(lower) if upper is not None and lower is not None else 0.0
    with np.errstate(invalid="ignore"):
        if peak > expected:
            bound = max(mark, float(upper) + width) if upper is not None else mark
            out = values > bound
        elif peak < expected:
            bound = min(mark, float(lower) - width) if lower is not None else mark
            out = values < bound
    return out & np.isfinite(values)
