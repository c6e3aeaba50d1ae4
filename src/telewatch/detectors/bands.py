"""Detectors that know their expected value: ``expected(series)`` → expected, lower, upper."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from telewatch.core.series import MAD_TO_SIGMA, validate_series
from telewatch.detectors.base import NotFittedError


class ExpectedBand:
    """Mixin: a public ``expected`` that validates, and a protected ``_expected`` hook returning
    ``(expected, lower, upper)`` arrays aligned with the series (causal, like ``score``)."""

    type_name: str

    def expected(
        self, series: pd.Series, *, context: pd.Series | None = None, kind: str | None = None
    ) -> pd.DataFrame:
        """Expected value and band (columns expected, lower, upper), same index as ``series``; with
        ``kind`` (see :data:`METRIC_KINDS`, :func:`infer_metric_kind`) clipped to the range a metric of
        that kind can take (:func:`bound_band`)."""
        if not getattr(self, "fitted_", False):
            raise NotFittedError(f"{self.type_name}: call fit() before expected()")
        series = validate_series(series, name=f"{self.type_name}.expected")
        full, skip = series, 0
        if context is not None and len(context):
            context = validate_series(context, name=f"{self.type_name}.expected context")
            context = context[context.index < series.index[0]] if len(series) else context
            full, skip = pd.concat([context, series]), len(context)
        cols = [np.asarray(a, dtype="float64")[skip:] for a in self._expected(full)]
        band = pd.DataFrame(dict(zip(("expected", "lower", "upper"), cols, strict=True)), index=series.index)
        return band if kind is None else bound_band(band, kind)

    def _expected(self, series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError


def scale_floor(values: np.ndarray, *, share: float = 0.01) -> float:
    """A sensible smallest scale for dividing by a spread learned from ``values``.

    The largest of: ``share`` of the values' robust spread (MAD as sigma, or the standard deviation
    when the MAD is 0), ``share / 10`` of their typical magnitude, and their resolution (the
    smallest step between distinct values, as in integer counters); ``1e-9`` when all are 0. So a
    flat stretch does not turn the next one-unit wiggle into a score of millions.

    >>> scale_floor(np.array([3.0, 3.0, 3.0, 4.0, 3.0]))
    1.0
    >>> scale_floor(np.array([0.0, 0.0]))
    1e-09
    """
    v = np.asarray(values, dtype="float64")
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 1e-9
    median = float(np.median(v))
    spread = float(np.median(np.abs(v - median))) * MAD_TO_SIGMA
    if spread == 0.0:
        spread = float(np.std(v))
    distinct = np.unique(v)
    resolution = float(np.diff(distinct).min()) if distinct.size > 1 else 0.0
    return max(share * spread, share / 10.0 * abs(median), resolution, 1e-9)


# -- physical bounds of a metric's kind ---------------------------------------------------------------
#: What a metric measures, as far as its expected band is concerned: the range its values can take.
METRIC_KINDS: dict[str, tuple[float, float]] = {
    "count": (0.0, np.inf),  # users, sessions, requests, errors, bytes
    "percent": (0.0, 100.0),  # cpu_percent, memory %, error share in %
    "ratio": (0.0, 1.0),  # APDEX, success ratio, share as a fraction
    "latency": (0.0, np.inf),  # response time, duration, RTT
    "rate": (0.0, np.inf),  # throughput, rpm, rps, bytes/s
    "gauge": (-np.inf, np.inf),  # anything else (temperature, a signed delta): no bound
}

_UNIT_KINDS: tuple[tuple[str, str], ...] = (
    (r"^(%|percent|pct|percentage)$", "percent"),
    (r"^(ratio|fraction|apdex|1|share)$", "ratio"),
    (r"^(ms|msec|millis(econds?)?|s|sec|seconds?|us|µs|ns|minutes?|min)$", "latency"),
    (r"(/s|/sec|/min|/m|/h|per[_ ]?(second|sec|minute|min|hour)|^rps$|^rpm$|^qps$|^bps$)", "rate"),
    (r"^(count|items?|users?|sessions?|requests?|bytes?|b|kb|mb|gb|packets?|errors?|events?)$", "count"),
)
_NAME_KINDS: tuple[tuple[str, str], ...] = (
    # a temperature is a reading on a scale that may go below 0, never a share (even when the name
    # ends in "_failure", as NAB's ambient_temperature_system_failure does)
    (r"(temperature|(^|_)temp(_|$)|celsius|fahrenheit)", "gauge"),
    (r"(apdex|ratio|fraction|availability|success_?rate|hit_?rate)", "ratio"),
    (r"(percent|pct|_util|utili[sz]ation|usage_?%|_share$)", "percent"),
    (r"(latency|response(_?time)?|duration|rtt|delay|elapsed|_ms$|_sec(onds)?$|_time$)", "latency"),
    (r"(throughput|rps|rpm|qps|per_?(second|sec|minute|min)|_rate$|bandwidth|bitrate)", "rate"),
    (
        r"(count|users|sessions|requests|errors|connections|calls|hits|total|bytes|packets|orders|logins)",
        "count",
    ),
)


#: names of a failure share (``error``, ``error_rate``, ``packet_loss_pct``): a ratio when the values
#: stay within 0–1, a percent within 0–100 (fractional values only: whole numbers are counts)
_SHARE_NAME = r"(^|_)(errors?|fail(ures?|ed)?|loss|drops?|dropped|timeouts?)(_?(rate|share|ratio|pct|percent|fraction))?$"


def kind_bounds(kind: str) -> tuple[float, float]:
    """The ``(lowest, highest)`` value a metric of ``kind`` can take (see :data:`METRIC_KINDS`).

    >>> kind_bounds("percent"), kind_bounds("ratio")
    ((0.0, 100.0), (0.0, 1.0))
    """
    try:
        return METRIC_KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown metric kind {kind!r} (one of {', '.join(METRIC_KINDS)})") from None


def infer_metric_kind(name: str = "", unit: str | None = None, values: ArrayLike | None = None) -> str:
    """A metric's kind (a key of :data:`METRIC_KINDS`) from its unit, then its name, checked against
    its values.

    The unit wins over the name (``%`` → percent, ``ms`` → latency, ``rpm`` → rate); then words in the
    name (``apdex`` → ratio, ``memory_percent`` → percent, ``web_response`` → latency,
    ``throughput`` → rate, ``active_users`` → count). A kind the data contradict is not taken: a
    ``percent`` metric with values above 100 (CPU% of a many-core host) or a ``ratio`` above 1 falls
    back to ``rate`` (bounded below only), and any kind with negative values to ``gauge``. With no
    hint, values never below 0 give ``count`` (whole numbers) or ``rate``, otherwise ``gauge``.

    >>> infer_metric_kind("apdex"), infer_metric_kind("memory_percent"), infer_metric_kind("x", "ms")
    ('ratio', 'percent', 'latency')
    >>> infer_metric_kind("active_users"), infer_metric_kind("throughput"), infer_metric_kind("temp")
    ('count', 'rate', 'gauge')
    >>> infer_metric_kind("cpu_percent", values=[20.0, 350.0]), infer_metric_kind("m", values=[1, 5, 0])
    ('rate', 'count')

    A failure share (``error``, ``error_rate``, ``packet_loss``) is a ``ratio`` when its values are
    fractions within 0–1, a ``percent`` within 0–100, else whatever its name says:

    >>> infer_metric_kind("error", values=[0.0002, 0.89]), infer_metric_kind("error_rate", values=[0.3, 12.5])
    ('ratio', 'percent')
    >>> infer_metric_kind("errors", values=[0, 3, 12]), infer_metric_kind("error_rate")
    ('count', 'rate')

    A temperature is a ``gauge`` whatever else its name says:

    >>> infer_metric_kind("ambient_temperature_system_failure", values=[65.0, 76.3])
    'gauge'

    """
    import re

    kind: str | None = None
    u = (unit or "").strip().lower()
    if u:
        kind = next((k for pattern, k in _UNIT_KINDS if re.search(pattern, u)), None)
    if kind is None and name:
        n = name.strip().lower()
        kind = next((k for pattern, k in _NAME_KINDS if re.search(pattern, n)), None)
    v = np.asarray(values if values is not None else [], dtype="float64").ravel()
    v = v[np.isfinite(v)]
    # an error / failure / loss "rate" is a share of requests when its values say so
    share = (
        not u
        and bool(name)
        and v.size > 0
        and kind != "gauge"
        and re.search(_SHARE_NAME, name.strip().lower()) is not None
    )
    if share and float(v.min()) >= 0.0 and not bool(np.all(v == np.round(v))):
        top = float(v.max())
        if top <= 1.0:
            return "ratio"
        if top <= 100.0:
            return "percent"
    if v.size == 0:
        return kind or "gauge"
    if float(v.min()) < 0.0:
        return "gauge"
    if kind is None:
        return "count" if bool(np.all(v == np.round(v))) else "rate"
    if float(v.max()) > METRIC_KINDS[kind][1]:
        return "rate"
    return kind


def bound_band(
    band: pd.DataFrame, kind: str | None = None, *, bounds: tuple[float, float] | None = None
) -> pd.DataFrame:
    """Clip an expected band (columns expected, lower, upper, as :meth:`ExpectedBand.expected` gives)
    to the range a metric of ``kind`` can take, or to explicit ``bounds`` (``(low, high)``, either may be
    ±inf), which win over ``kind``. A copy is returned; NaN stays NaN.

    >>> band = pd.DataFrame({"expected": [-2.0, 50.0], "lower": [-60.0, 20.0], "upper": [40.0, 150.0]})
    >>> bound_band(band, "percent").to_dict("list")
    {'expected': [0.0, 50.0], 'lower': [0.0, 20.0], 'upper': [40.0, 100.0]}
    """
    lo, hi = bounds if bounds is not None else kind_bounds(kind or "gauge")
    out = band.copy()
    for col in ("expected", "lower", "upper"):
        if col in out:
            out[col] = out[col].clip(lower=lo, upper=hi)
    return out
