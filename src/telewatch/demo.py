"""Demo data: a synthetic month of telemetry from a small web shop and its network, with labelled incidents.

The demo system is an online shop (``service=shop``) served by one application host (``app-1``) in an
EU region, reached through a telecom uplink (``uplink-1`` at site ``fra-1``). Ten metrics are sampled
every minute:

=====================  ========  ============================================================
metric                 group     what it is
=====================  ========  ============================================================
web_response_ms        web       mean response time of the shop's pages, ms
throughput_rpm         web       requests per minute (Poisson counts)
apdex                  web       Apdex score 0..1 (falls with response time and errors)
error_rate             web       share of requests that failed 0..1 (often 0 at night)
cpu_percent            host      CPU use of app-1, follows the served traffic
memory_percent         host      memory use of app-1: a sawtooth, the app restarts daily at 03:00
temperature_c          host      chassis temperature: room cycle plus heat from the CPU
active_sessions        network   subscriber sessions on the uplink
channel_load_percent   network   uplink utilisation, follows the sessions
active_users           business  users active in the shop
=====================  ========  ============================================================

Every metric has a slow upward trend (+0.5 %/day), a daily cycle in local time (CET, UTC+1: a night
trough around 04:00, a day peak around 16:00 with an evening shoulder; the peak is normal, not an
incident), a weekly cycle (weekends about 28 % lower) and realistic noise. Two short collector outages
leave rows absent, and :data:`ISOLATED_NANS` single cells are NaN.

About eleven incidents are planted after a five-day warm-up (a third of a shorter demo) so detectors have history, each moving
several related metrics coherently — a backend outage drops throughput and CPU and raises errors and
response time, which pulls apdex down; a channel overload pins the uplink near 100 % and rejects
sessions; and so on. :class:`DemoIncident` records which metrics each one moved: the root-cause
ground truth. Windows are inclusive: ``start`` is the first affected minute and ``end`` the last.

The whole month is generated with vectorised numpy in a few tens of milliseconds and is the same for
the same ``seed`` and ``end``.

Three small series from the Numenta Anomaly Benchmark (NAB v1.1, MIT licence, see
``data/nab/ATTRIBUTION.md``) ship as extra samples with their labelled windows: :func:`nab_samples`.

>>> data = generate_demo(days=30)
>>> data.frame.shape[1], str(data.frame.index.tz), data.frame.index.name
(10, 'UTC', 'timestamp')
>>> len(data.incidents) >= 8 and data.incidents[0].start > data.frame.index[0] + pd.Timedelta(days=5)
True
>>> sorted(demo_labels_frame(data).columns)
['end', 'kind', 'metric', 'start']
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from telewatch.core.errors import ValidationError

__all__ = [
    "DEFAULT_END",
    "ISOLATED_NANS",
    "METRIC_NAMES",
    "DemoData",
    "DemoIncident",
    "DemoMetric",
    "demo_labels_frame",
    "generate_demo",
    "nab_samples",
    "write_demo_csv",
]

DEFAULT_END = pd.Timestamp("2026-11-02 00:00", tz="UTC")
"""Where the demo month ends unless told otherwise, so tests and docs are stable."""

LOCAL_UTC_OFFSET_HOURS = 1
"""The demo system's local time (CET): its daily and weekly cycles follow local clocks."""

ISOLATED_NANS = 6
"""How many single cells are NaN (besides the absent rows of the gaps)."""

WARMUP_DAYS = 5


@dataclass(frozen=True)
class DemoMetric:
    """One demo metric and its catalogue entry."""

    name: str
    unit: str
    owner: str
    group: str
    labels: dict[str, str]
    description: str


@dataclass(frozen=True)
class DemoIncident:
    """A planted incident: its kind, its inclusive UTC window and the metrics it moved."""

    kind: str
    start: pd.Timestamp
    end: pd.Timestamp
    metrics: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class DemoData:
    """The generated demo: catalogue, wide frame (one float64 column per metric) and incidents."""

    metrics: list[DemoMetric]
    frame: pd.DataFrame
    incidents: list[DemoIncident]


_WEB = {"service": "shop", "host": "app-1", "region": "eu"}
_HOST = {"host": "app-1", "region": "eu"}
_NET = {"link": "uplink-1", "site": "fra-1", "region": "eu"}
_BIZ = {"service": "shop", "region": "eu"}

_METRICS: tuple[DemoMetric, ...] = (
    DemoMetric("web_response_ms", "ms", "@web-oncall", "web", _WEB, "Mean response time of the shop's pages"),
    DemoMetric("throughput_rpm", "requests/min", "@web-oncall", "web", _WEB, "Requests served per minute"),
    DemoMetric("apdex", "score", "@web-oncall", "web", _WEB, "Apdex user-satisfaction score (0..1)"),
    DemoMetric("error_rate", "share", "@web-oncall", "web", _WEB, "Share of requests that failed (0..1)"),
    DemoMetric("cpu_percent", "%", "@infra", "host", _HOST, "CPU utilisation of the application host"),
    DemoMetric("memory_percent", "%", "@infra", "host", _HOST, "Memory use of the application host"),
    DemoMetric(
        "temperature_c", "°C", "@infra", "host", {**_HOST, "sensor": "chassis"}, "Equipment temperature"
    ),
    DemoMetric("active_sessions", "sessions", "@noc", "network", _NET, "Subscriber sessions on the uplink"),
    DemoMetric("channel_load_percent", "%", "@noc", "network", _NET, "Utilisation of the uplink channel"),
    DemoMetric("active_users", "users", "@product", "business", _BIZ, "Users active in the shop"),
)
METRIC_NAMES: tuple[str, ...] = tuple(m.name for m in _METRICS)


@dataclass(frozen=True)
class _Plan:
    """One incident of the schedule: local start hour, duration range in minutes, what it moves."""

    kind: str
    local_hour: float
    minutes: tuple[int, int]
    metrics: tuple[str, ...]
    description: str


_WEB_OUTAGE = ("throughput_rpm", "error_rate", "web_response_ms", "apdex", "cpu_percent")
# In chronological order, at least two days apart. Every window ends on its local day and none touches
# 03:00 (the daily restart) or 05:00 (the collector gaps), so the same hours a day earlier are clean;
# neighbours whose hours overlap move different metrics, so two days earlier is clean for them too.
_SCHEDULE: tuple[_Plan, ...] = (
    _Plan(
        "latency_degradation",
        10.0,
        (90, 150),
        ("web_response_ms", "apdex"),
        "Slow database queries after a deploy: response time triples, apdex falls",
    ),
    _Plan(
        "error_burst",
        14.0,
        (6, 12),
        ("error_rate", "apdex"),
        "A faulty payment integration fails a share of requests for a few minutes",
    ),
    _Plan(
        "memory_leak",
        7.5,
        (180, 240),
        ("memory_percent", "cpu_percent"),
        "Memory leak: memory climbs to ~97 % over hours with rising GC CPU, then the app restarts",
    ),
    _Plan(
        "backend_outage",
        19.0,
        (15, 30),
        _WEB_OUTAGE,
        "Backend down: throughput collapses, errors and response times soar, apdex dips, CPU idles",
    ),
    _Plan(
        "channel_overload",
        20.5,
        (40, 70),
        ("channel_load_percent", "active_sessions"),
        "Uplink saturated by a traffic surge: channel load pinned near 100 %, new sessions rejected",
    ),
    _Plan(
        "cpu_saturation",
        11.0,
        (45, 75),
        ("cpu_percent", "web_response_ms", "apdex", "temperature_c"),
        "Runaway batch job: CPU at 95-100 %, pages slow down, the chassis heats up",
    ),
    _Plan(
        "users_drop",
        16.0,
        (30, 50),
        ("active_users", "throughput_rpm", "cpu_percent"),
        "Login broken by a release: active users halve, traffic and CPU follow",
    ),
    _Plan(
        "temperature_rise",
        10.0,
        (90, 150),
        ("temperature_c", "cpu_percent"),
        "Cooling failure: temperature climbs ~11 °C and the throttled CPU works harder",
    ),
    _Plan(
        "sessions_drop",
        9.0,
        (20, 40),
        ("active_sessions", "channel_load_percent"),
        "Gateway failure: most subscriber sessions drop, the uplink goes quiet",
    ),
    _Plan(
        "backend_outage", 1.5, (8, 14), _WEB_OUTAGE, "Night-time backend outage during a failed maintenance"
    ),
    _Plan(
        "error_burst",
        21.5,
        (5, 8),
        ("error_rate", "apdex"),
        "Short burst of 5xx errors from a misbehaving cache node",
    ),
)


def _ar1(rng: np.random.Generator, n: int, phi: float, sd: float) -> np.ndarray:
    """AR(1) noise with stationary standard deviation ``sd``, started in its stationary state."""
    eps = rng.standard_normal(n) * sd * math.sqrt(1.0 - phi * phi)
    eps[0] = rng.standard_normal() * sd
    return np.asarray(lfilter([1.0], [1.0, -phi], eps), dtype=np.float64)


def _ema(x: np.ndarray, alpha: float) -> np.ndarray:
    """Exponential moving average, started at ``x[0]``."""
    zi = np.array([x[0] * (1.0 - alpha)])
    out, _ = lfilter([alpha], [1.0, -(1.0 - alpha)], x, zi=zi)
    return np.asarray(out, dtype=np.float64)


def _daily_profile(hour: np.ndarray) -> np.ndarray:
    """Load over the local day: 0 at the 04:00 trough, 1 at the afternoon peak, an evening shoulder."""
    base = 0.5 - 0.5 * np.cos(2.0 * np.pi * (hour - 4.0) / 24.0)
    shoulder = 0.18 * np.exp(-(((hour - 20.5) / 1.6) ** 2))
    profile = base + shoulder
    return np.asarray(profile / profile.max(initial=1.0), dtype=np.float64)


def generate_demo(
    *, seed: int = 7, days: int = 30, end: pd.Timestamp | None = None, step: str = "1min"
) -> DemoData:
    """Generate ``days`` of demo telemetry ending (exclusive) at ``end``, every ``step``.

    ``end`` defaults to :data:`DEFAULT_END`; pass ``pd.Timestamp.now(tz="UTC").floor("min")`` for a
    month up to now (naive timestamps are read as UTC). The same ``seed``, ``days``, ``end`` and ``step``
    give the same data.

    >>> d = generate_demo(days=10, seed=1)
    >>> d.frame.index[-1] < DEFAULT_END, d.frame.dtypes.unique().tolist()
    (True, [dtype('float64')])
    """
    if days < 1:
        raise ValidationError(f"days must be at least 1, got {days}")
    try:
        step_td = pd.Timedelta(step)
    except ValueError as exc:
        raise ValidationError(f"step: not a duration: {step!r}") from exc
    if step_td < pd.Timedelta("1min") or step_td > pd.Timedelta("1h"):
        raise ValidationError(f"step must be between 1min and 1h, got {step!r}")
    end_ts = DEFAULT_END if end is None else pd.Timestamp(end)
    end_ts = end_ts.tz_localize("UTC") if end_ts.tzinfo is None else end_ts.tz_convert("UTC")
    end_ts = end_ts.floor(step_td)
    start_ts = end_ts - pd.Timedelta(days=days)
    # Nanoseconds throughout: the arithmetic on ``asi8`` below assumes it.
    index = pd.date_range(start_ts, end_ts, freq=step_td, inclusive="left", name="timestamp").as_unit("ns")
    n = len(index)
    step_min = step_td / pd.Timedelta("1min")
    rng = np.random.default_rng(seed)

    # Calendar in local time.
    offset = pd.Timedelta(hours=LOCAL_UTC_OFFSET_HOURS)
    local = index + offset
    t_days = (index.asi8 - index.asi8[0]) / 86.4e12
    hour = np.asarray(local.hour + local.minute / 60.0, dtype=np.float64)
    weekend = np.asarray(local.day_of_week >= 5)
    daily = _daily_profile(hour)
    weekly = np.where(weekend, 0.72, 1.0)
    trend = 1.0 + 0.005 * t_days
    # Shared, slowly wandering demand noise makes traffic, sessions and users move together.
    wander = np.exp(_ar1(rng, n, 0.995, 0.03))
    demand = trend * weekly * wander  # multiplies each metric's own daily shape

    # Incidents: where they fall and their envelopes on the grid.
    incidents, spans = _place_incidents(rng, index, days=days, step=step_td)

    def env(kind: str, shape: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        out = np.zeros(n)
        for inc, (i0, i1) in zip(incidents, spans, strict=True):
            if inc.kind == kind:
                p = (np.arange(i1 - i0) + 0.5) / (i1 - i0)
                out[i0:i1] = np.maximum(out[i0:i1], shape(p))
        return out

    def box(p: np.ndarray) -> np.ndarray:
        return np.ones_like(p)

    def trapezoid(ramp: float) -> Callable[[np.ndarray], np.ndarray]:
        return lambda p: np.clip(np.minimum(p, 1.0 - p) / ramp, 0.0, 1.0)

    def ramp_up(p: np.ndarray) -> np.ndarray:
        return p

    e_outage = env("backend_outage", box)
    e_latency = env("latency_degradation", trapezoid(0.15))
    e_cpu = env("cpu_saturation", trapezoid(0.05))
    e_leak = env("memory_leak", ramp_up)
    e_overload = env("channel_overload", trapezoid(0.1))
    e_sessions = env("sessions_drop", box)
    e_heat = env("temperature_rise", lambda p: np.clip(np.minimum(p / 0.5, (1.0 - p) / 0.08), 0.0, 1.0))
    e_users = env("users_drop", box)
    e_errors = env("error_burst", box)

    # Web traffic.
    peak_rpm = 1200.0
    load = demand * (0.12 + 0.88 * daily)  # 1.0 = a weekday peak at the start of the month
    thr_mult = (1.0 - 0.93 * e_outage) * (1.0 - 0.5 * e_users)
    served = load * thr_mult
    counts = rng.poisson(peak_rpm * served * step_min)
    throughput = counts / step_min

    p_err = 0.0015 + 0.0006 * served
    p_err = p_err + 0.45 * e_outage + rng.uniform(0.05, 0.12) * e_errors
    errors = rng.binomial(counts, np.clip(p_err, 0.0, 1.0))
    error_rate = np.divide(errors, counts, out=np.zeros(n), where=counts > 0)

    cpu = 5.0 + 55.0 * served + _ar1(rng, n, 0.8, 1.0) * (0.6 + 1.8 * served)
    cpu = cpu + 40.0 * e_leak + 30.0 * e_heat  # GC pressure, thermal throttling
    cpu = cpu + e_cpu * (rng.uniform(95.5, 99.5, n) - cpu)
    cpu = np.clip(cpu, 0.5, 100.0)

    rt_sd = 0.05 + 0.6 / np.sqrt(np.maximum(counts, 1))
    rt = (95.0 + 60.0 * served**2) * np.exp(rng.standard_normal(n) * rt_sd)
    rt = rt * (1.0 + 2.2 * e_latency) * (1.0 + 2.0 * e_cpu)
    rt = rt + e_outage * (rng.normal(2200.0, 250.0, n) - rt)  # upstream timeouts

    apdex = (1.0 / (1.0 + (rt / 900.0) ** 2.5)) * (1.0 - error_rate)
    apdex = apdex - np.abs(rng.standard_normal(n)) * (0.002 + 0.08 / np.sqrt(np.maximum(counts, 1)))
    apdex = np.clip(apdex, 0.0, 1.0)

    # Host: memory sawtooth with a restart every day at 03:00 local and after a leak.
    restarts_local = np.unique(np.floor((local.asi8 / 3.6e12 - 3.0) / 24.0))
    restart_ns = (restarts_local * 24.0 + 3.0) * 3.6e12 - offset.value
    leak_ends = [
        index.asi8[i1 - 1] + step_td.value
        for inc, (_, i1) in zip(incidents, spans, strict=True)
        if inc.kind == "memory_leak" and i1 < n
    ]
    restart_ns = np.sort(np.concatenate([restart_ns, np.asarray(leak_ends, dtype=np.float64)]))
    last = restart_ns[np.clip(np.searchsorted(restart_ns, index.asi8, side="right") - 1, 0, None)]
    since_h = np.clip((index.asi8 - last) / 3.6e12, 0.0, 24.0)
    memory = 38.0 + 1.15 * since_h + 3.0 * served + _ar1(rng, n, 0.9, 0.4)
    memory = memory + e_leak * (97.0 - memory)
    memory = np.clip(memory, 0.0, 100.0)

    ambient = 21.5 + 1.4 * np.sin(2.0 * np.pi * (hour - 9.0) / 24.0)
    alpha = 1.0 - math.exp(-step_min / 15.0)
    temperature = ambient + 0.08 * _ema(cpu, alpha) + 11.0 * e_heat + rng.normal(0.0, 0.2, n)

    # Network and business.
    peak_sessions = 5200.0
    sess_mult = (1.0 - 0.4 * e_overload) * (1.0 - 0.65 * e_sessions)
    sessions = rng.poisson(peak_sessions * demand * (0.3 + 0.7 * daily) * sess_mult).astype(np.float64)
    channel = 8.0 + 60.0 * sessions / peak_sessions + rng.normal(0.0, 1.2, n)
    channel = channel + e_overload * (rng.uniform(97.0, 100.0, n) - channel)
    channel = np.clip(channel, 0.0, 100.0)
    users = rng.poisson(2600.0 * demand * (0.06 + 0.94 * daily) * (1.0 - 0.55 * e_users)).astype(np.float64)

    columns = {
        "web_response_ms": np.round(rt, 1),
        "throughput_rpm": np.round(throughput, 2),
        "apdex": np.round(apdex, 4),
        "error_rate": np.round(error_rate, 6),
        "cpu_percent": np.round(cpu, 1),
        "memory_percent": np.round(memory, 1),
        "temperature_c": np.round(temperature, 1),
        "active_sessions": sessions,
        "channel_load_percent": np.round(channel, 1),
        "active_users": users,
    }
    frame = pd.DataFrame({k: np.asarray(v, dtype=np.float64) for k, v in columns.items()}, index=index)

    keep = _blank_gaps_and_cells(rng, frame, spans, step=step_td)
    frame = frame.loc[keep]
    return DemoData(metrics=list(_METRICS), frame=frame, incidents=incidents)


def _place_incidents(
    rng: np.random.Generator, index: pd.DatetimeIndex, *, days: int, step: pd.Timedelta
) -> tuple[list[DemoIncident], list[tuple[int, int]]]:
    """Spread the schedule over the days after the warm-up, at least two days apart."""
    offset = pd.Timedelta(hours=LOCAL_UTC_OFFSET_HOURS)
    first_midnight = (index[0] + offset).ceil("D") - offset  # UTC instant of the first local midnight
    # a short demo (`telewatch demo --days 7`) gets a shorter warm-up rather than no incident at all
    warmup = min(WARMUP_DAYS, max(1, days // 3))
    usable = days - warmup - 1  # whole local days after the warm-up, the last one kept clear
    count = min(len(_SCHEDULE), max(0, int(usable // 2.0)))
    if count == 0:
        return [], []
    spacing = usable / count
    incidents: list[DemoIncident] = []
    spans: list[tuple[int, int]] = []
    for k, plan in enumerate(_SCHEDULE[:count]):
        day = warmup + math.floor(k * spacing + spacing / 2.0)
        jitter = float(rng.uniform(-0.75, 0.75))
        minutes = int(rng.integers(plan.minutes[0], plan.minutes[1] + 1))
        start = (first_midnight + pd.Timedelta(days=day, hours=plan.local_hour + jitter)).ceil(step)
        duration = max(pd.Timedelta(minutes=minutes), step)
        i0 = int(index.searchsorted(start))
        i1 = int(index.searchsorted(start + duration))
        if i1 <= i0 or i1 > len(index):
            continue
        incidents.append(
            DemoIncident(
                kind=plan.kind,
                start=index[i0],
                end=index[i1 - 1],
                metrics=plan.metrics,
                description=plan.description,
            )
        )
        spans.append((i0, i1))
    return incidents, spans


def _blank_gaps_and_cells(
    rng: np.random.Generator, frame: pd.DataFrame, spans: list[tuple[int, int]], *, step: pd.Timedelta
) -> np.ndarray:
    """Put :data:`ISOLATED_NANS` single NaN cells into ``frame`` (in place) and return the rows to keep.

    Two collector outages (a few minutes at 05:xx local, where no incident runs) leave rows absent.
    """
    n = len(frame)
    index = pd.DatetimeIndex(frame.index)
    offset = pd.Timedelta(hours=LOCAL_UTC_OFFSET_HOURS)
    busy = np.zeros(n, dtype=bool)
    for i0, i1 in spans:
        busy[max(0, i0 - 2) : i1 + 2] = True
    keep = np.ones(n, dtype=bool)
    for fraction, minutes in ((0.37, int(rng.integers(6, 10))), (0.71, int(rng.integers(10, 16)))):
        day = (index[int(fraction * (n - 1))] + offset).floor("D") - offset
        at = (day + pd.Timedelta(hours=5, minutes=int(rng.integers(5, 40)))).ceil(step)
        g0 = int(index.searchsorted(at))
        g1 = min(n, int(index.searchsorted(at + max(pd.Timedelta(minutes=minutes), step))))
        if g1 - g0 < n // 4 and not busy[g0:g1].any():  # skip on very short demos
            keep[g0:g1] = False
    blocked = busy | ~keep
    blocked[1:] |= ~keep[:-1]
    blocked[:-1] |= ~keep[1:]
    blocked[[0, -1]] = True
    values = frame.to_numpy(copy=True)
    placed = 0
    for row in rng.permutation(n):
        if placed == ISOLATED_NANS:
            break
        if blocked[row]:
            continue
        values[row, int(rng.integers(values.shape[1]))] = np.nan
        blocked[max(0, row - 2) : row + 3] = True
        placed += 1
    frame.iloc[:, :] = values
    return keep


def demo_labels_frame(data: DemoData) -> pd.DataFrame:
    """The planted incidents as labelled windows: one row per incident × metric.

    Columns ``metric``, ``start``, ``end`` (inclusive, UTC) and ``kind``.

    >>> demo_labels_frame(generate_demo(days=14)).iloc[0]["kind"]
    'latency_degradation'
    """
    rows = [
        {"metric": name, "start": inc.start, "end": inc.end, "kind": inc.kind}
        for inc in data.incidents
        for name in inc.metrics
    ]
    frame = pd.DataFrame(rows, columns=["metric", "start", "end", "kind"])
    for col in ("start", "end"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


def write_demo_csv(data: DemoData, path: str | Path) -> Path:
    """Write the wide demo frame as CSV in the upload format and return the path.

    The first column is ``timestamp`` in ISO-8601 UTC (``2026-10-03T00:00:00Z``), then one column per
    metric; a NaN is an empty cell and absent minutes are absent rows.
    """
    target = Path(path)
    out = data.frame.copy()
    out.index = pd.Index(pd.DatetimeIndex(out.index).strftime("%Y-%m-%dT%H:%M:%SZ"), name="timestamp")
    out.to_csv(target, na_rep="", lineterminator="\n")
    return target


def nab_samples() -> list[tuple[str, pd.Series, list[tuple[pd.Timestamp, pd.Timestamp]]]]:
    """The shipped NAB v1.1 samples: ``(name, values, windows)`` each, sorted by name.

    ``name`` is ``nab/<file stem>``; ``values`` is a float64 series on a UTC index; ``windows`` are
    NAB's labelled anomaly windows, inclusive, in UTC (NAB's naive timestamps are read as UTC).

    >>> [name for name, _, _ in nab_samples()]  # doctest: +NORMALIZE_WHITESPACE
    ['nab/ambient_temperature_system_failure', 'nab/ec2_cpu_utilization_24ae8d', 'nab/nyc_taxi']
    """
    root = resources.files("telewatch").joinpath("data", "nab")
    windows: dict[str, list[list[str]]] = json.loads(root.joinpath("windows.json").read_text("utf-8"))
    samples: list[tuple[str, pd.Series, list[tuple[pd.Timestamp, pd.Timestamp]]]] = []
    for relpath, pairs in windows.items():
        with root.joinpath(*relpath.split("/")).open("r", encoding="utf-8") as fh:
            raw = pd.read_csv(fh)
        name = "nab/" + relpath.rsplit("/", 1)[-1].removesuffix(".csv")
        idx = pd.DatetimeIndex(pd.to_datetime(raw["timestamp"], utc=True), name="timestamp")
        values = pd.Series(raw["value"].to_numpy(dtype=np.float64), index=idx, name=name)
        spans = [(pd.Timestamp(s, tz="UTC"), pd.Timestamp(e, tz="UTC")) for s, e in pairs]
        samples.append((name, values, spans))
    return sorted(samples, key=lambda item: item[0])
