"""Whether an anomaly moved a metric by enough to matter to a person: an absolute floor beside the
statistical score.

A share that is almost always zero makes every small change statistically extreme: an error share
of 0.5 % at night, where 0.01 % is usual, is fifty times the usual value and scores far past any
threshold — yet 99.5 % of requests still succeed, and nobody should be woken for it. An APDEX of
0.988 against a usual 0.998 is the same story. The score says *unusual*; this rule asks whether the
value is *far enough outside* what is usual for the metric's kind: by default one percentage point
for a share (``ratio`` kind: 0.01; ``percent`` kind: 1), nothing for other kinds, whose units telewatch
cannot know (set ``alert.min_change`` per metric for those).

An anomaly below its floor is recorded and shown in the UI like any other; it is not paged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fnmatch import fnmatchcase

from telewatch.detectors.bands import infer_metric_kind

#: The default floor per metric kind (:data:`telewatch.detectors.bands.METRIC_KINDS`): one
#: percentage point for shares. Kinds absent here have no floor.
DEFAULT_MIN_CHANGE: dict[str, float] = {"ratio": 0.01, "percent": 1.0}


def outside_by(value: float, lower: float | None, upper: float | None, expected: float | None) -> float:
    """How far ``value`` lies outside the band ``[lower, upper]`` (0 inside it); with no band, its
    distance from ``expected``; NaN when neither is known.

    >>> outside_by(0.0059, 0.0002, 0.0004, 0.0003), outside_by(5.0, 1.0, 9.0, 5.0)
    (0.0055, 0.0)
    >>> outside_by(0.2, None, None, 0.5), math.isnan(outside_by(1.0, None, None, None))
    (0.3, True)
    """
    if value is None or not math.isfinite(value):
        return math.nan
    lo = lower if lower is not None and math.isfinite(lower) else None
    hi = upper if upper is not None and math.isfinite(upper) else None
    if lo is not None or hi is not None:
        above = value - hi if hi is not None else 0.0
        below = lo - value if lo is not None else 0.0
        return round(max(above, below, 0.0), 12)
    if expected is None or not math.isfinite(expected):
        return math.nan
    return round(abs(value - expected), 12)


def min_change_for(metric: str, kind: str, overrides: Mapping[str, float] | None = None) -> float:
    """The floor for ``metric``: the first ``overrides`` glob (over the metric name) that matches it,
    else the default of its ``kind`` (:data:`DEFAULT_MIN_CHANGE`), else 0.

    >>> min_change_for("error", "ratio"), min_change_for("web_response", "latency")
    (0.01, 0.0)
    >>> min_change_for("web_response", "latency", {"web_*": 0.05, "*": 1})
    0.05
    """
    for pattern, floor in (overrides or {}).items():
        if fnmatchcase(metric, pattern):
            return float(floor)
    return DEFAULT_MIN_CHANGE.get(kind, 0.0)


def material(
    value: float,
    lower: float | None,
    upper: float | None,
    expected: float | None,
    *,
    floor: float,
) -> bool:
    """Whether the value is at least ``floor`` outside its band (always, with a floor of 0 or when
    nothing is known to measure against).

    >>> material(0.0059, 0.0002, 0.0004, 0.0003, floor=0.01), material(0.021, 0.0002, 0.0014, 0.0003, floor=0.01)
    (False, True)
    >>> material(0.9882, 0.9954, 0.9989, 0.9977, floor=0.01), material(0.105, 0.9965, 0.9993, 0.998, floor=0.01)
    (False, True)
    """
    if floor <= 0.0:
        return True
    distance = outside_by(value, lower, upper, expected)
    return bool(math.isnan(distance) or distance >= floor)


def assess(
    metric: str,
    *,
    unit: str | None,
    history: object,
    value: float,
    lower: float | None,
    upper: float | None,
    expected: float | None,
    overrides: Mapping[str, float] | None = None,
) -> tuple[bool, float | None, bool]:
    """What an alert step needs of one anomaly: whether it is worth paging (:func:`material` with the
    floor of the metric: :func:`min_change_for`), and its deviation with whether that is in
    percentage points (:func:`deviation`) — the metric's kind inferred once from its name, ``unit``
    and recent values (``history``, array-like).

    >>> import numpy as np
    >>> night = np.full(600, 0.0002)
    >>> assess("error", unit=None, history=night, value=0.0059, lower=0.0001, upper=0.0004, expected=0.0002)
    (False, 0.57, True)
    >>> assess("error", unit=None, history=night, value=0.0059, lower=0.0001, upper=0.0004,
    ...        expected=0.0002, overrides={"error": 0.001})[0]
    True
    """
    kind = infer_metric_kind(metric, unit, history)  # type: ignore[arg-type]
    page = material(value, lower, upper, expected, floor=min_change_for(metric, kind, overrides))
    dev, points = deviation(value, expected, kind)
    return page, dev, points


#: Kinds whose change is told in percentage points of the whole rather than relative to the expected
#: value, and how many of the metric's units make one point.
SHARE_POINT: dict[str, float] = {"ratio": 0.01, "percent": 1.0}


def deviation(value: float, expected: float | None, kind: str) -> tuple[float | None, bool]:
    """The deviation an alert states, and whether it is in percentage points: for a share (a
    ``ratio`` or ``percent`` metric) the change in points of the whole — an error share from 0.03 %
    to 3.4 % is 3.37 points, where "11,000 % above expected" would tell a person nothing; for other
    kinds, relative to the expected value in %. (None, False) when it cannot be said.

    >>> deviation(0.034, 0.0003, "ratio"), deviation(504.0, 4806.0, "rate")
    ((3.37, True), (-89.51, False))
    >>> deviation(1.0, 0.0, "count"), deviation(float("nan"), 1.0, "rate")
    ((None, False), (None, False))
    """
    if expected is None or not math.isfinite(expected) or value is None or not math.isfinite(value):
        return None, False
    point = SHARE_POINT.get(kind)
    if point is not None:
        return round((value - expected) / point, 2), True
    if expected == 0:
        return None, False
    return round((value - expected) / abs(expected) * 100.0, 2), False
