"""Streaming state of scheduled ticks: a tick touches only the new points.

For every (monitor, metric, detector) the scheduler keeps, between ticks, in the memory of its
long-lived process:

* the fitted model (stored in ``monitor_models``; read once, not every tick);
* the series' **context tail**: the last points the detector needs to score new points causally
  (:func:`context_need`: ``Detector.context_points()``, e.g. ``2 × window`` for ``robust_bands``;
  the day before the new points for a detector whose reach is unknown or unbounded, as the
  per-metric tick always gave; the span it was trained on for one that remembers what it saw, such
  as novelty, so its memory in a tick is the one its calibrator learned from);
* what the detector's streaming path carries per series between ticks (:attr:`ModelState.carry`,
  see :meth:`telewatch.detectors.base.Detector.score_contexts`): for ``robust_bands``, the
  deviations ``|x[t-1] - median_t|`` of the last ``window - 1`` points and the sorted windows of
  values and deviations, so that scoring five new points slides two sorted windows five times (a
  numba kernel) instead of computing rolling medians over 600 points;
* the watermark (the newest point scored, ``monitor_series.last_scored``).

The store holds what a restart needs to resume exactly (``tick_state``: watermark, where the context
tail starts, model version; ``tick_generations``: a new generation every tick, so a process whose
memory is older than the store — another process ran the monitor — rebuilds from the store).

The scores are those of ``model.score(new, context=past)`` with the whole past: incremental ticks
equal one full rescoring (``tests/integration/test_tick_streaming.py``).

>>> from telewatch.detectors import create_detector
>>> context_need(create_detector("robust_bands", window=60))
Need(points=120, span=0)
>>> context_need(create_detector("robust_z")).span, context_need(create_detector("seasonal")).span == DAY.value
(0, True)
"""

from __future__ import annotations

import gc
import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from telewatch.detectors.base import Detector
from telewatch.postrules.calibrate import Calibrator, CalibratorStack
from telewatch.store import monitors as monitors_repo
from telewatch.store.db import Store

__all__ = [
    "DAY",
    "FAST_MAX_NEW",
    "ModelState",
    "MonitorMemory",
    "Need",
    "Tail",
    "attach",
    "context_need",
    "forget",
    "score_group",
    "settle_heap",
]

#: Context kept for a detector whose reach is unknown or unbounded (the per-metric tick's choice).
DAY = pd.Timedelta(days=1)
#: Above this many new points per series (the first tick, a catch-up after downtime) a series is
#: scored on its own with ``model.score(new, context=tail)``; below, series are scored as a matrix.
FAST_MAX_NEW = 64
_DAY_NS = int(DAY.value)


class Need(NamedTuple):
    """Context a series needs: its last ``points`` points, and every point of the ``span`` (ns; 0:
    none) before its first new point."""

    points: int
    span: int

    def covers(self, other: Need) -> bool:
        return self.points >= other.points and self.span >= other.span

    def merge(self, other: Need) -> Need:
        return Need(max(self.points, other.points), max(self.span, other.span))


def context_need(model: Detector) -> Need:
    """How much past ``model`` needs to score new points as if it had the whole past: its
    ``context_points()``; for a reach unknown or unbounded, the day before the new points — or, for
    a detector that remembers what it saw (``Detector.context_is_training``: novelty's visited
    values), the span it was trained on (``trained_span_``, set by
    ``services.detection.calibrated_scores``), so a tick scores with the memory its calibrator
    learned from."""
    own = model.context_points()
    if own is not None:
        return Need(max(0, int(own)), 0)
    span = _DAY_NS
    if model.context_is_training:
        trained = getattr(model, "trained_span_", None)
        if trained is not None:
            span = max(span, int(pd.Timedelta(trained).value))
    return Need(0, span)


class Tail:
    """The last points of a series before its next new points (ns since the epoch, UTC).

    Kept in buffers with room to append a few ticks' points in place (compacted when full), so a
    tick does not reallocate every series' context.

    >>> t = Tail(np.array([1, 2, 3]), np.array([1.0, 2.0, 3.0]), Need(3, 0))
    >>> t.extend(np.array([4, 5]), np.array([4.0, 5.0]), Need(3, 0)).values.tolist()
    [3.0, 4.0, 5.0]
    """

    __slots__ = ("_ts", "_values", "hi", "lo", "need")
    _ROOM = 32  # points appended in place before a compaction

    def __init__(self, ts: np.ndarray, values: np.ndarray, need: Need) -> None:
        self._ts = np.empty(ts.size + self._ROOM, dtype="int64")
        self._values = np.empty(ts.size + self._ROOM, dtype="float64")
        self._ts[: ts.size] = ts
        self._values[: ts.size] = values
        self.lo, self.hi, self.need = 0, ts.size, need

    @property
    def ts(self) -> np.ndarray:
        return self._ts[self.lo : self.hi]

    @property
    def values(self) -> np.ndarray:
        return self._values[self.lo : self.hi]

    def first_ts(self, default: int) -> int:
        """The oldest point's time (ns), ``default`` when the tail is empty."""
        return int(self._ts[self.lo]) if self.hi > self.lo else default

    def extend(self, ts: np.ndarray, values: np.ndarray, need: Need) -> Tail:
        """Append new points (in place) and trim to ``need``; returns this tail."""
        n = ts.size
        if self.hi + n > self._ts.size:  # full: keep what is live, with room again
            live = self.hi - self.lo
            size = live + n + self._ROOM
            if size > self._ts.size:
                new_ts, new_values = np.empty(size, dtype="int64"), np.empty(size, dtype="float64")
            else:
                new_ts, new_values = self._ts, self._values
            new_ts[:live] = self._ts[self.lo : self.hi]
            new_values[:live] = self._values[self.lo : self.hi]
            self._ts, self._values, self.lo, self.hi = new_ts, new_values, 0, live
        lo, hi = self.lo, self.hi + n
        self._ts[self.hi : hi] = ts
        self._values[self.hi : hi] = values
        self.hi = hi
        keep = max(lo, hi - need.points)
        if need.span and hi > lo:
            # the first point after the span before the newest one: in the steady state the span's
            # start moved by the points just added, so that guess is checked first (two comparisons;
            # exactly searchsorted's answer when it holds), else searched
            key = int(self._ts[hi - 1]) - need.span
            cut = _first_after(self._ts, lo, hi, key, min(lo + n, hi))
            keep = min(keep, cut)
        self.lo, self.need = keep, need
        return self

    def context_for(self, need: Need, first_new: int) -> tuple[np.ndarray, np.ndarray]:
        """The context one detector gets before a new point at ``first_new``."""
        lo, hi = self.lo, self.hi
        start = max(lo, hi - need.points)
        if need.span:
            # the first point at or after the span before ``first_new``: in the steady state the tail
            # starts there (``extend`` trimmed it to the span before the newest point)
            start = min(start, _first_at(self._ts, lo, hi, first_new - need.span, lo))
        return self._ts[start:hi], self._values[start:hi]


#: :meth:`ModelState.calibration`'s start of a model without ``scored_from_``: before any time.
NO_START = int(np.iinfo(np.int64).min)


def _start_ns(start: Any) -> int:
    """``pd.Timestamp(start).value``, :data:`NO_START` for ``None``."""
    if start is None:
        return NO_START
    return int(start.value if isinstance(start, pd.Timestamp) else pd.Timestamp(start).value)


def _first_at(ts: np.ndarray, lo: int, hi: int, key: int, guess: int) -> int:
    """``lo + searchsorted(ts[lo:hi], key, side="left")`` (``ts[lo:hi]`` sorted), ``guess`` when it is
    that index (checked: everything before it is below ``key``, it is not)."""
    if lo <= guess <= hi and (guess == lo or ts[guess - 1] < key) and (guess == hi or ts[guess] >= key):
        return guess
    return lo + int(ts[lo:hi].searchsorted(key, side="left"))


def _first_after(ts: np.ndarray, lo: int, hi: int, key: int, guess: int) -> int:
    """``lo + searchsorted(ts[lo:hi], key, side="right")`` (``ts[lo:hi]`` sorted), ``guess`` when it is
    that index (checked: everything before it is at most ``key``, it is above)."""
    if lo <= guess <= hi and (guess == lo or ts[guess - 1] <= key) and (guess == hi or ts[guess] > key):
        return guess
    return lo + int(ts[lo:hi].searchsorted(key, side="right"))


class ModelState:
    """A fitted model (``None``: not enough points yet) and what its streaming path carries between
    ticks (:attr:`carry`, handed to ``score_contexts``; emptied when a series is scored otherwise).

    ``deviations`` and ``windows`` name robust_bands' carry for the callers that hand it from one
    state to the next (a retrained model keeps the windows: they depend on the values alone).
    """

    __slots__ = ("_calibration", "_group", "carry", "model", "need", "trained_at")

    def __init__(
        self,
        model: Detector | None,
        trained_at: pd.Timestamp | None,
        deviations: np.ndarray | None = None,
        windows: np.ndarray | None = None,
    ) -> None:
        self.model = model
        self.trained_at = trained_at
        self.carry: dict[str, np.ndarray] = {}
        self.deviations = deviations
        self.windows = windows
        self.need = context_need(model) if model is not None else Need(0, 0)
        self._group: tuple[Detector | None, tuple[Any, ...] | None] = (None, None)
        self._calibration: tuple[Detector | None, Calibrator | None, int] = (None, None, NO_START)

    def stream_key(self) -> tuple[Any, ...] | None:
        """What :func:`score_group` groups this model's series by (its type and hyper-parameters),
        ``None`` when its type has no streaming path; worked out once per model."""
        model = self.model
        if model is None:
            return None
        held, key = self._group
        if held is not model:
            key = (
                (type(model), tuple(sorted((k, repr(v)) for k, v in model.get_params().items())))
                if _streams(type(model))
                else None
            )
            self._group = (model, key)
        return key

    def calibration(self) -> tuple[Calibrator | None, int]:
        """The model's calibrator (``None``: none, or not a :class:`Calibrator`) and the start of its
        scores (``scored_from_``, ns; :data:`NO_START` when it has none): worked out once per model."""
        model = self.model
        held, cal, start = self._calibration
        if held is not model or held is None:
            found = getattr(model, "calibrator_", None)
            cal = found if isinstance(found, Calibrator) else None
            start = _start_ns(getattr(model, "scored_from_", None))
            self._calibration = (model, cal, start)
        return cal, start

    def __repr__(self) -> str:
        return f"ModelState(model={self.model!r}, trained_at={self.trained_at!r}, carry={sorted(self.carry)})"

    @property
    def deviations(self) -> np.ndarray | None:
        return self.carry.get("deviations")

    @deviations.setter
    def deviations(self, value: np.ndarray | None) -> None:
        self._set("deviations", value)

    @property
    def windows(self) -> np.ndarray | None:
        return self.carry.get("windows")

    @windows.setter
    def windows(self, value: np.ndarray | None) -> None:
        self._set("windows", value)

    def _set(self, key: str, value: np.ndarray | None) -> None:
        if value is None:
            self.carry.pop(key, None)
        else:
            self.carry[key] = value


@dataclass
class MonitorMemory:
    """One monitor's streaming state in this process."""

    generation: str
    fingerprint: str
    tails: dict[int, Tail] = field(default_factory=dict)
    models: dict[tuple[int, str], ModelState] = field(default_factory=dict)
    loaded_models: bool = False  # the monitor's stored models were read into ``models``
    #: per detector type, the models' calibrators stacked for calibrating a tick's scores at once
    calibration: dict[str, CalibratorStack] = field(default_factory=dict)
    #: models and context tails brought into memory (read, trained) since the heap was last settled
    unsettled: int = 0

    def settle(self) -> bool:
        """:func:`settle_heap` once ``unsettled`` reached :data:`SETTLE_AFTER`; returns whether it
        did."""
        if self.unsettled < SETTLE_AFTER:
            return False
        settle_heap()
        self.unsettled = 0
        return True


#: How many models and tails a tick must bring into memory before the heap is settled (below that
#: the collector's walk over them costs less than the full collection settling does).
SETTLE_AFTER = 1000


def settle_heap() -> None:
    """Move the objects alive now out of the garbage collector's generations (``gc.freeze``), after
    one full collection (``gc.unfreeze`` first: what an earlier settle froze and has since become
    garbage in a cycle is collected now).

    A monitor's memory holds a few Python objects per series (the model, its calibrator, the state,
    the tail): ~100,000 at 10,000 metrics, on top of the interpreter's ~170,000. A tick allocates
    enough short-lived objects to make CPython run a full collection over all of them in one tick
    of two (0.15-0.35 s at 10,000 metrics); frozen, they are no longer walked (a full collection
    then walks only what came since: ~0.04 s a tick). Frozen objects are still freed by reference
    counting when dropped (a model replaced by its retrained one: the state holds no cycles). Called
    after a tick that loaded or rebuilt much of that state (the first tick of a process, a
    retraining), process-wide, as the scheduler's process holds these objects for its lifetime.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


_MEMORY: weakref.WeakKeyDictionary[Store, dict[str, MonitorMemory]] = weakref.WeakKeyDictionary()


def stored_generation(store: Store, monitor: str) -> str | None:
    return monitors_repo.stored_generation(store.cursor(), monitor)


def attach(store: Store, *, monitor: str, fingerprint: str) -> MonitorMemory:
    """This process's state of ``monitor`` if it is still the store's latest, else a fresh one."""
    generation = stored_generation(store, monitor)
    held = _MEMORY.get(store, {}).get(monitor)
    if (
        held is not None
        and generation is not None
        and held.generation == generation
        and held.fingerprint == fingerprint
    ):
        return held
    return MonitorMemory(generation=generation or "", fingerprint=fingerprint)


def keep(store: Store, *, monitor: str, memory: MonitorMemory) -> None:
    """Remember ``memory`` as the state of ``monitor`` (after the store committed its generation)."""
    _MEMORY.setdefault(store, {})[monitor] = memory


def forget(store: Store, monitor: str | None = None) -> None:
    """Drop this process's state of ``monitor`` (all monitors when ``None``); the next tick rebuilds
    it from the store, exactly as a restarted process does."""
    if monitor is None:
        _MEMORY.pop(store, None)
    else:
        _MEMORY.get(store, {}).pop(monitor, None)


def new_generation() -> str:
    return uuid.uuid4().hex


# -- reading ---------------------------------------------------------------------------------------
def split_by_metric(frame: pd.DataFrame) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """A long frame (metric_id, ts, value), sorted by metric and time → per metric (ts ns, values)."""
    if frame.empty:
        return {}
    ids = frame["metric_id"].to_numpy(dtype="int64")
    ts = pd.DatetimeIndex(frame["ts"]).as_unit("ns").asi8
    values = frame["value"].to_numpy(dtype="float64", na_value=np.nan)
    cuts = np.flatnonzero(np.diff(ids)) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [ids.size]])
    return {int(ids[s]): (ts[s:e], values[s:e]) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)}


def read_new_points(
    cur: Any, *, after: dict[int, int], end: pd.Timestamp
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """ONE query: the points of every metric in ``after`` (ns since the epoch) with
    ``after[m] < ts <= end``."""
    if not after:
        return {}
    ids = np.fromiter(after.keys(), dtype="int32", count=len(after))
    stamps = np.fromiter(after.values(), dtype="int64", count=len(after)).view("datetime64[ns]")
    frame = pd.DataFrame({"metric_id": ids, "after": stamps.astype("datetime64[us]")})
    return split_by_metric(monitors_repo.points_after(cur, frame, end=utc_naive(end)))


def read_tails(
    cur: Any, *, wanted: dict[int, tuple[int, Need]], lower: dict[int, int] | None = None
) -> dict[int, Tail]:
    """For each metric, the points before its first new point (``wanted[m][0]``, ns) that its
    :class:`Need` asks for. ``lower`` (ns, optional) bounds the scan: where the kept tail started.

    A metric without a known start is read from the day before its new points first (what a
    1-minute series needs; a day is the reach of the store's time-ordered row groups that the scan
    touches), and only a metric that found fewer points there than it needs is read again without
    a bound: a store with months of history is not scanned whole on the first tick.
    """
    if not wanted:
        return {}
    lower = lower or {}
    guessed = {m: wanted[m][0] - max(_DAY_NS, wanted[m][1].span) for m in wanted if m not in lower}
    bounds = {**lower, **guessed}
    empty = (np.empty(0, dtype="int64"), np.empty(0, dtype="float64"))
    out: dict[int, Tail] = {}
    # a few metrics at a time when their contexts are long (weeks of minutes each after a restart):
    # the query's frame and its split are transient, the tails are what is kept
    for part in _chunks(list(wanted), [_points_of(wanted[m][1]) for m in wanted]):
        chunk = {m: wanted[m] for m in part}
        found = _read_tails(cur, chunk, {m: bounds[m] for m in part if m in bounds})
        short = [
            m for m in part if m in guessed and found.get(m, (np.empty(0),))[0].size < chunk[m][1].points
        ]
        if short:
            found.update(_read_tails(cur, {m: chunk[m] for m in short}, {}))
        out.update({m: Tail(*found.get(m, empty), need=chunk[m][1]) for m in part})
    return out


#: :func:`read_tails` and :func:`score_group` take series whose contexts hold about this many points in
#: all at a time (estimated at one point a minute): a restart's first tick with two weeks of context
#: for thousands of metrics does not hold every context's frame and scoring arrays at once
CHUNK_POINTS = 1 << 21
_MINUTE_NS = 60 * 10**9


def _points_of(need: Need) -> int:
    """The context points ``need`` asks for, at most, at one point a minute."""
    return max(need.points, need.span // _MINUTE_NS, 1)


def _chunks(items: list[int], sizes: list[int]) -> list[list[int]]:
    """``items`` in order, cut where the running total of ``sizes`` would pass :data:`CHUNK_POINTS`.

    >>> _chunks([1, 2, 3, 4], [CHUNK_POINTS // 2] * 4)
    [[1, 2], [3, 4]]
    """
    out: list[list[int]] = []
    total = CHUNK_POINTS + 1
    for item, size in zip(items, sizes, strict=True):
        if total + size > CHUNK_POINTS:
            out.append([])
            total = 0
        out[-1].append(item)
        total += size
    return out


def _read_tails(
    cur: Any, wanted: dict[int, tuple[int, Need]], lower: dict[int, int]
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """ONE query: the tails of ``wanted``, each read from ``lower[m]`` (ns; none: the whole past)."""
    ids = list(wanted)
    before = np.array([wanted[m][0] for m in ids], dtype="int64")
    frame = pd.DataFrame(
        {
            "metric_id": np.array(ids, dtype="int32"),
            "before": pd.to_datetime(before, unit="ns").astype("datetime64[us]"),
            "since": pd.to_datetime(
                before - np.array([wanted[m][1].span for m in ids], dtype="int64"), unit="ns"
            ).astype("datetime64[us]"),
            "use_since": np.array([wanted[m][1].span > 0 for m in ids], dtype=bool),
            "k": np.array([wanted[m][1].points for m in ids], dtype="int64"),
            "lower": pd.to_datetime(
                np.array([lower.get(m, 0) for m in ids], dtype="int64"), unit="ns"
            ).astype("datetime64[us]"),
        }
    )
    return split_by_metric(monitors_repo.points_before(cur, frame))


def utc_naive(ts: pd.Timestamp) -> Any:
    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.to_pydatetime()


_NS_PER = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


def utc_ns(index: pd.Index) -> np.ndarray:
    """Nanoseconds since the epoch (UTC) of a timestamp index (naive = UTC).

    >>> utc_ns(pd.DatetimeIndex(["1970-01-01 01:00:01"], tz="Europe/Paris").as_unit("s")).tolist()
    [1000000000]
    """
    idx = index if isinstance(index, pd.DatetimeIndex) else pd.DatetimeIndex(index)
    return np.asarray(idx.asi8, dtype="int64") * _NS_PER[str(idx.unit)]


def to_index(ts: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(ts, unit="ns", utc=True))


# -- scoring ---------------------------------------------------------------------------------------
@dataclass(slots=True)
class Job:
    """One series and detector to score this tick."""

    metric_id: int
    state: ModelState
    tail: Tail
    need: Need
    ts: np.ndarray
    values: np.ndarray


def score_group(detector: str, jobs: list[Job]) -> list[np.ndarray]:
    """Scores of the new points of every job (all with the same detector type), in order.

    Series whose detector has a streaming path (:meth:`Detector.score_contexts`: ``robust_z``,
    ``robust_bands``, ``novelty``), with the same hyper-parameters and the same number of new points
    (at most :data:`FAST_MAX_NEW`), are scored as one matrix by the detector, with what it carries
    per series (``state.carry``); the others one by one with ``model.score(new, context=tail)``.
    """
    out: list[np.ndarray | None] = [None] * len(jobs)
    groups: dict[tuple[type, int, tuple[Any, ...]], list[int]] = {}
    for i, job in enumerate(jobs):
        assert job.state.model is not None
        key = job.state.stream_key() if 0 < job.ts.size <= FAST_MAX_NEW else None
        if key is not None:
            groups.setdefault((key[0], job.ts.size, key[1]), []).append(i)
        else:
            out[i] = _score_one(job)
    chunked = [
        (kind, part)
        for (kind, _m, _p), members in groups.items()
        for part in _chunks(members, [max(jobs[i].tail.hi - jobs[i].tail.lo, 1) for i in members])
    ]
    for kind, members in chunked:
        group = [jobs[i] for i in members]
        contexts = [j.tail.context_for(j.need, int(j.ts[0])) for j in group]
        models = [j.state.model for j in group]
        values = np.stack([j.values for j in group])
        carries = [j.state.carry for j in group]
        if _needs_times(kind):
            matrix = kind.score_contexts_at(  # type: ignore[attr-defined]
                models,
                [c[1] for c in contexts],
                values,
                carries,
                context_times=[c[0] for c in contexts],
                new_times=np.stack([j.ts for j in group]),
            )
        else:  # the timestamps are not stacked for a detector that does not read them (novelty)
            matrix = kind.score_contexts(models, [c[1] for c in contexts], values, carries)  # type: ignore[attr-defined]
        if matrix is None:  # no streaming path: one by one
            for i, job in zip(members, group, strict=True):
                out[i] = _score_one(job)
            continue
        for row, i in enumerate(members):
            out[i] = matrix[row]
    return [np.asarray(s, dtype="float64") for s in out]


def _needs_times(kind: type[Detector]) -> bool:
    """Whether ``kind``'s streaming path reads the timestamps (overrides
    :meth:`Detector.score_contexts_at`, whose default calls :meth:`Detector.score_contexts`)."""
    own = getattr(kind.score_contexts_at, "__func__", None)
    return own is not Detector.score_contexts_at.__func__  # type: ignore[attr-defined]


def _streams(kind: type[Detector]) -> bool:
    """Whether ``kind`` implements the streaming path (overrides :meth:`Detector.score_contexts` or
    :meth:`Detector.score_contexts_at`)."""
    base = (Detector.score_contexts.__func__, Detector.score_contexts_at.__func__)  # type: ignore[attr-defined]
    own = (getattr(kind.score_contexts, "__func__", None), getattr(kind.score_contexts_at, "__func__", None))
    return own != base


def _score_one(job: Job) -> np.ndarray:
    model = job.state.model
    assert model is not None
    new = pd.Series(job.values, index=to_index(job.ts))
    ctx_ts, ctx_values = job.tail.context_for(job.need, int(job.ts[0]))
    context = pd.Series(ctx_values, index=to_index(ctx_ts)) if ctx_ts.size else None
    job.state.carry.clear()  # the streaming path rebuilds it from the context
    return model.score(new, context=context).to_numpy(dtype="float64")
