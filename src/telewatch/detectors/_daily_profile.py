"""The seasonal channel of ``novelty_seasonal``: the residual from the usual value at this time of
day (a per-slot median profile fitted once) and a held local level, in robust sigmas.

Plain arrays in and out (timestamps as ns since the epoch, UTC), written to run on one series or on
many that share their timestamps (a matrix: the slot layout is worked out once), so that the
detector's per-series, matrix and streaming paths compute the same numbers:

* **profile** — the points are put in slots of the day (``slot`` = the series' step, at least
  :data:`MIN_SLOT`, so 288 five-minute slots for 1-minute data); the profile is each slot's median
  over the training data (an outage on one day of three moves no median); a slot without training
  points takes the median of the others;
* **level** — the mean of the residuals ``r = x - profile`` of the last ``window`` points (by
  position, the point itself left out) that lie within ``hold`` robust sigmas of the profile; when
  fewer than a quarter of the window are within (a step the profile does not know has lasted most
  of the window), the mean of all of them: the new level is accepted. Its reach is ``window``
  points, no more (no recursion), so a tick's carry is just the last ``window`` residuals;
* **score** — ``|r - level| / scale``, ``scale`` the robust sigma (median absolute value × 1.4826)
  of the training residuals, at least ``min_scale`` of the values' own robust spread and the
  smallest step between two values of a slot (an integer counter's resolution). These medians over
  the whole history are over at most :data:`SAMPLE` of its points, evenly spread
  (:func:`sample_columns`: 8,192 of a month of 1-minute data's 43,200).

>>> ts = (np.arange(4 * 288) * 300 * 10**9).astype("int64")  # 4 days of 5-minute points
>>> x = 10 + np.sin(2 * np.pi * np.arange(ts.size) / 288) + np.random.default_rng(0).normal(0, 0.05, ts.size)
>>> fit = fit_profile(ts, x[None, :], step_ns=300 * 10**9)
>>> x[500] += 1.0
>>> z = channel_scores(fit, ts, x[None, :])[0]
>>> int(np.argmax(z)), bool(z[500] > 10 > np.median(z) * 10)
(500, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from telewatch.core.series import MAD_TO_SIGMA, infer_step
from telewatch.detectors.bands import ExpectedBand
from telewatch.detectors.base import Detector

DAY_NS = 86_400 * 10**9
WEEK_NS = 7 * DAY_NS
#: A weekly profile (on what the daily one leaves) is learned from this many days of training data.
WEEKLY_DAYS = 14
#: ... and where a typical slot of the week holds this many timestamps.
WEEKLY_MIN_POINTS = 4
#: Slots are at least this wide (ns): five minutes, so a slot of 1-minute data holds 5 points a day.
MIN_SLOT = 300 * 10**9
#: Defaults of the channel's parameters (``novelty_seasonal``'s ``seasonal`` mapping overrides them).
WINDOW = 144
HOLD = 6.0
MAX_HOLD_NS = 12 * 3600 * 10**9
#: A profile (daily, weekly) is kept where its robust spread is at least this share of the noise
#: around it; else the channel's baseline is flat there.
MIN_CYCLE = 1.0
#: Below this many timestamps in a typical slot, a slot's median pools its neighbours too.
POOL_BELOW = 8
#: Medians over a whole history are taken over at most this many of its points (:func:`sample_columns`)
SAMPLE = 8192
#: ... and over all of a row's points where fewer than this many of that sample are present.
SAMPLE_MIN = 2048
MIN_SCALE = 0.05
#: A residual this time of day (within :data:`HABIT_MINUTES`) reached on at least this many training
#: days is a habit (a nightly job's dip, a cron spike that wanders by a few minutes): the channel
#: scores it at most :data:`HABIT_CAP` robust sigmas (its calibrator is trained on the scores
#: before the cap). Learned from :data:`HABIT_MIN_DAYS` days.
HABIT_DAYS = 2
HABIT_MINUTES = 15
HABIT_MIN_DAYS = 3
#: ... of the last this many days of training data (as ``postrules.usual.habitual``'s week).
HABIT_WINDOW_DAYS = 7
HABIT_CAP = 2.0
#: A habit reaches this share further than the residuals it was learned from (both sides, each by
#: its own extreme): a cron spike that tops out 10 % higher than on the days before, or a nightly
#: dip a little deeper, is still the habit; one twice as high is not. Chosen on NAB's tuning half as
#: a monitor runs it (0.15-0.4 alike: see docs/evaluation.md).
HABIT_MARGIN = 0.25
#: The compiled passes (numba), built on first use.
_KERNELS: dict[str, Any] = {}


@dataclass
class ProfileFit:
    """Fitted state of many series sharing their slot layout: one row per series."""

    slot_ns: int
    profile: np.ndarray  # (rows, slots of a day)
    scale: np.ndarray  # (rows,)
    window: int
    hold: float
    reach: int  # points a held level looks back (``max_hold`` in points, at least ``window``)
    weekly: np.ndarray | None = None  # (rows, slots of a week): added to the daily profile
    #: (rows, 2, slots of a day): the residuals this time of day reached on at least
    #: :data:`HABIT_DAYS` training days (low, high; :func:`habits`), None: no habits learned
    habit: np.ndarray | None = None

    def value(self, ts_ns: np.ndarray) -> np.ndarray:
        """The profile (rows × points) at ``ts_ns``."""
        out = self.profile[:, slots_of(ts_ns, self.slot_ns)]
        if self.weekly is not None:
            out = out + self.weekly[:, slots_of(ts_ns, self.slot_ns, WEEK_NS)]
        return out


def slot_ns_for(step_ns: int) -> int:
    """The slot width for a series of step ``step_ns``: the step, at least :data:`MIN_SLOT`, at
    most a day."""
    return int(min(max(int(step_ns), MIN_SLOT), DAY_NS))


def slots_of(ts_ns: np.ndarray, slot_ns: int, period_ns: int = DAY_NS) -> np.ndarray:
    """The slot of each timestamp in its period: ``(ts % period) // slot`` (int64), at most
    ``(period - 1) // slot``, below the ``-(-period // slot)`` slots of a period (a last, shorter
    slot where ``slot`` does not divide the period)."""
    return (np.asarray(ts_ns, dtype="int64") % int(period_ns)) // int(slot_ns)


def _slot_medians(
    ts_ns: np.ndarray,
    x: np.ndarray,
    slot_ns: int,
    period_ns: int = DAY_NS,
    pool: int = 0,
    *,
    resolution: str = "exact",
    slot: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's per-slot median (NaN for a slot without points) and the smallest positive step
    between two values of a slot (0 where there is none); with ``pool``, each slot's median is
    over it and ``pool`` slots either side (a day's wrap included).

    ``resolution``: ``"exact"``; ``"none"`` (0, not computed); ``"bound"``: an upper bound of it
    (the smallest positive step of the first slot that has one, ``inf`` where none does) — enough
    where the step only matters above a floor (:func:`fit_profile`). The values go in a grid of
    slots × width (NaN-padded; :func:`_gather_kernel`), sorted along the width by numpy, then one
    compiled pass reads the medians and steps off it (:func:`_grid_kernel`)."""
    n_slots = -(-period_ns // slot_ns)
    if slot is None:  # else the caller's slots_of(ts_ns, slot_ns, period_ns)
        slot = slots_of(ts_ns, slot_ns, period_ns)
    order = np.argsort(slot.astype(np.int32), kind="stable")
    counts = np.bincount(slot, minlength=n_slots)
    width = max(int(counts.max()) if counts.size else 0, 1)
    x = np.ascontiguousarray(x, dtype="float64")
    rows = x.shape[0]
    # each cell of the grid: the column of x it holds (-1: padding, NaN), the points of a slot in
    # their order; every slot full: the sorted order itself
    if slot.size == n_slots * width:
        source = order.astype(np.int64)
    else:
        starts = np.cumsum(counts) - counts
        sorted_slot = slot[order]
        source = np.full(n_slots * width, -1, dtype=np.int64)
        source[sorted_slot * width + (np.arange(slot.size) - starts[sorted_slot])] = order
    cells = np.empty((rows, n_slots * width))
    _gather_kernel()(x, source, cells)  # one pass: no NaN grid filled first, then scattered into
    grid = cells.reshape(rows, n_slots, width)
    if pool > 0:
        grid = np.concatenate([np.roll(grid, k, axis=1) for k in range(-pool, pool + 1)], axis=2)
    grid.sort(axis=2)  # NaN last
    med = np.empty((rows, n_slots))
    res = np.full(rows, np.inf)
    mode = {"none": 0, "exact": 1, "bound": 2}[resolution]
    _grid_kernel()(grid, mode, med, res)
    return med, (np.where(np.isfinite(res), res, 0.0) if mode == 1 else res)


def _gather_kernel() -> Any:
    """``grid[i, c] = x[i, source[c]]``, NaN where ``source[c]`` is -1 (numba, on first use)."""
    if "gather" not in _KERNELS:
        import numba

        @numba.njit(cache=True, nogil=True)
        def kernel(x, source, grid):  # type: ignore[no-untyped-def]
            for i in range(x.shape[0]):
                for c in range(source.size):
                    q = source[c]
                    grid[i, c] = x[i, q] if q >= 0 else np.nan

        _KERNELS["gather"] = kernel
    return _KERNELS["gather"]


def _grid_kernel() -> Any:
    """Per row and slot of a grid sorted along its last axis (NaN last): the median of the
    present values, ``(lo + hi) / 2`` (the middle one halved with itself for an odd count, as the
    array code read it off the grid), NaN for none; ``mode`` 1: per row, the smallest positive
    difference of two neighbours over every slot (``inf`` if none); 2: that of the first slot
    which has one (an upper bound of the row's); 0: neither."""
    if "grid" not in _KERNELS:
        import numba

        @numba.njit(cache=True, nogil=True)
        def kernel(grid, mode, med, res):  # type: ignore[no-untyped-def]
            rows, n_slots, width = grid.shape
            for i in range(rows):
                best = np.inf
                for s in range(n_slots):
                    p = width
                    while p > 0 and np.isnan(grid[i, s, p - 1]):
                        p -= 1
                    if p == 0:
                        med[i, s] = np.nan
                        continue
                    med[i, s] = (grid[i, s, (p - 1) // 2] + grid[i, s, p // 2]) / 2.0
                    if mode == 1 or (mode == 2 and best == np.inf):
                        for q in range(p - 1):
                            d = grid[i, s, q + 1] - grid[i, s, q]
                            if d > 0 and d < best:
                                best = d
                res[i] = best

        _KERNELS["grid"] = kernel
    return _KERNELS["grid"]


def _row_medians(
    x: np.ndarray, *, absolute: bool, halve_odd: bool, centre: np.ndarray | None = None
) -> np.ndarray:
    """Per row, the median of its non-NaN values (of ``x - centre``, ``|x - centre|`` with
    ``absolute``; ``centre`` 0 by default); NaN if none.
    ``(lo + hi) / 2`` for an even count; for an odd one the middle value (``np.median``'s mean of
    one) or, ``halve_odd``, ``(mid + mid) / 2`` (as a median read off a sorted row)."""
    x = np.ascontiguousarray(np.atleast_2d(x), dtype="float64")
    out = np.empty(x.shape[0])
    offset = np.zeros(x.shape[0]) if centre is None else np.ascontiguousarray(centre, dtype="float64")
    ranks = np.full(x.shape[0], -1, dtype=np.int64)
    _median_kernel()(x, offset, bool(absolute), bool(halve_odd), ranks, out, np.empty(x.shape[0]))
    return out


def order_pair(values: np.ndarray, k: int) -> tuple[float, float]:
    """The ``k``-th and ``(k + 1)``-th smallest of ``values`` (1-D, no NaN, ``k + 1 < size``), by
    the selection of :func:`_median_kernel`: what ``np.sort(values)[k : k + 2]`` holds (a
    partition's order statistics, in a fraction of its time)."""
    x = np.ascontiguousarray(values, dtype="float64")[None, :]
    lo, hi = np.empty(1), np.empty(1)
    _median_kernel()(x, np.zeros(1), False, False, np.array([k], dtype=np.int64), lo, hi)
    return float(lo[0]), float(hi[0])


def _median_kernel() -> Any:
    """The compiled selection behind :func:`_row_medians`. A median is an order statistic or the
    mean of two, so selection gives numpy's numbers. A long row is first narrowed to a band
    around the median of a sample of it (Floyd and Rivest's idea; the whole row where the middle
    ranks fall outside the band); then a radix pass or two on the float's order-preserving key
    (11 bits at a time) narrows the values to the bucket that holds the middle rank, and Wirth's
    selection finds it in place; the next rank, for an even count, is the smallest value past
    that bucket or right of it. Where ``ranks[i]`` is set (0 or more), not the median: the values
    of ranks ``ranks[i]`` and the next, in ``out`` and ``out2``."""
    if "median" not in _KERNELS:
        import numba

        @numba.njit(cache=True, nogil=True)
        def kernel(x, offset, absolute, halve_odd, ranks, out, out2):  # type: ignore[no-untyped-def]
            rows, n = x.shape
            b = np.empty(n + 1)
            tb = np.empty_like(b)
            bu = b.view(np.uint64)
            tu = tb.view(np.uint64)
            hist = np.zeros(2048, dtype=np.int64)
            sign = np.uint64(1) << np.uint64(63)
            zero = np.uint64(0)
            mask = np.uint64(2047)
            top = np.uint64(63)
            sample = np.empty(1024)
            for i in range(rows):
                c = offset[i]
                # a long row: a band around the median of a sample of it, one pass to count the
                # values below the band and keep those in it; where the middle ranks fall in the
                # band (nearly always), the selection runs on the band alone
                cnt = -1
                if n >= 4096:
                    ns = 0
                    for j in range(0, n, n // 512):
                        v = x[i, j] - c
                        if not np.isnan(v):
                            sample[ns] = abs(v) if absolute else v
                            ns += 1
                    if ns >= 256:
                        s = sample[:ns]
                        s.sort()
                        d = 3 * int(np.sqrt(ns)) // 2 + 1  # about 3 sd of the rank's place
                        at = ns // 2 if ranks[i] < 0 else int(ns * (ranks[i] / n))
                        lo_v = s[max(at - d, 0)]
                        hi_v = s[min(at + d, ns - 1)]
                        guess = s[at]
                        below = 0
                        nb = 0
                        m = 0
                        below_g = 0
                        at_g = 0
                        # the sample tied around the rank: a tie in the values may hold the
                        # ranks; count the values below and at the sample's value there too
                        tied = s[max(at - 1, 0)] == s[min(at + 1, ns - 1)]
                        for j in range(n):
                            v = x[i, j] - c
                            if np.isnan(v):
                                continue
                            if absolute:
                                v = abs(v)
                            m += 1
                            # branch-free: half the values fall either side, unpredictably
                            below += v < lo_v
                            if tied:
                                below_g += v < guess
                                at_g += v == guess
                            b[nb] = v
                            nb += (v >= lo_v) & (v <= hi_v)
                        rank = (m - 1) // 2 if ranks[i] < 0 else ranks[i]
                        pair = ranks[i] >= 0 or m % 2 == 0
                        # a tie over the ranks (a score that is 0 at nearly every point): they
                        # hold the sample's value, bit for bit where no zero of the other sign is
                        # among the values equal to it (all in the band), with no selection to run
                        if below_g <= rank and rank + pair < below_g + at_g:
                            same = True
                            if guess == 0.0:
                                neg = math.copysign(1.0, guess) < 0
                                for q in range(nb):
                                    if b[q] == 0.0 and (math.copysign(1.0, b[q]) < 0) != neg:
                                        same = False
                                        break
                            if same:
                                if not pair:
                                    out[i] = (guess + guess) / 2.0 if halve_odd else guess
                                elif ranks[i] >= 0:
                                    out[i] = guess
                                    out2[i] = guess
                                else:
                                    out[i] = (guess + guess) / 2.0
                                continue
                        if below <= rank and rank + pair < below + nb:
                            rank -= below
                            cnt = nb
                if cnt < 0:  # every value
                    m = 0
                    for j in range(n):
                        v = x[i, j] - c  # as x - centre[:, None] (x - 0.0 == x, -0.0 included)
                        if not np.isnan(v):
                            b[m] = abs(v) if absolute else v
                            m += 1
                    if m == 0:
                        out[i] = np.nan
                        continue
                    rank = (m - 1) // 2 if ranks[i] < 0 else ranks[i]
                    cnt = m
                pair = ranks[i] >= 0 or m % 2 == 0
                need2 = pair
                v2 = 0.0
                in_b = True
                shift = 53
                while cnt > 512 and shift >= 0:
                    src_u = bu if in_b else tu
                    dst_u = tu if in_b else bu
                    src_f = b if in_b else tb
                    sh = np.uint64(shift)
                    hist[:] = 0
                    for q in range(cnt):
                        u = src_u[q]
                        key = u ^ ((zero - (u >> top)) | sign)
                        hist[np.int64((key >> sh) & mask)] += 1
                    acc = 0
                    bkt = 0
                    while acc + hist[bkt] <= rank:
                        acc += hist[bkt]
                        bkt += 1
                    rank -= acc
                    beyond = need2 and rank + 1 >= hist[bkt]
                    found = False
                    c2 = 0
                    for q in range(cnt):
                        u = src_u[q]
                        key = u ^ ((zero - (u >> top)) | sign)
                        bq = np.int64((key >> sh) & mask)
                        if bq == bkt:
                            dst_u[c2] = u
                            c2 += 1
                        elif beyond and bq > bkt and (not found or src_f[q] < v2):
                            v2 = src_f[q]
                            found = True
                    if beyond:
                        need2 = False
                    cnt = c2
                    in_b = not in_b
                    shift -= 11
                a = b if in_b else tb
                lo = 0
                hi = cnt - 1
                while lo < hi:  # Wirth: a[rank] ends in place, <= left of it, >= right
                    pivot = a[rank]
                    ii = lo
                    jj = hi
                    while ii <= jj:
                        while a[ii] < pivot:
                            ii += 1
                        while pivot < a[jj]:
                            jj -= 1
                        if ii <= jj:
                            tmp = a[ii]
                            a[ii] = a[jj]
                            a[jj] = tmp
                            ii += 1
                            jj -= 1
                    if jj < rank:
                        lo = ii
                    if rank < ii:
                        hi = jj
                v1 = a[rank]
                if not pair:
                    out[i] = (v1 + v1) / 2.0 if halve_odd else v1
                    continue
                if need2:  # the next rank is in this bucket, right of rank
                    v2 = a[rank + 1]
                    for q in range(rank + 2, cnt):
                        if a[q] < v2:
                            v2 = a[q]
                if ranks[i] >= 0:
                    out[i] = v1
                    out2[i] = v2
                else:
                    out[i] = (v1 + v2) / 2.0

        _KERNELS["median"] = kernel
    return _KERNELS["median"]


def _robust_sigma(r: np.ndarray, *, nan: bool | None = None, centre: np.ndarray | None = None) -> np.ndarray:
    """Per row: median of |r| (NaN left out) × 1.4826; 0 for a row without values. (As the array
    code computed it: ``np.median`` without NaN in the matrix, else the middle of the sorted
    values, ``(lo + hi) / 2``; ``nan`` says which, when the caller knows; one selection per row
    either way.)"""
    if not r.shape[1]:
        return np.zeros(r.shape[0])
    if nan is None:
        nan = bool(np.isnan(r).any())
    out = _row_medians(r, absolute=True, halve_odd=nan, centre=centre) * MAD_TO_SIGMA
    return np.where(np.isnan(out), 0.0, out) if nan else out


def _writable(a: np.ndarray) -> np.ndarray:
    """``a``, or a copy of it where it is read-only (a pandas series' values): numba builds a
    kernel once per kind of array, so the per-series path (read-only values) would compile every
    pass a second time."""
    return a if a.flags.writeable else a.copy()


def sample_columns(n: int) -> np.ndarray | None:
    """The columns a median over a whole history of ``n`` points is taken over: ``None`` (all of
    them) up to :data:`SAMPLE`, else :data:`SAMPLE` of them evenly spread, ``j * n // SAMPLE``
    (a stride of ``n / SAMPLE`` points, not a whole number in general, so the sample does not keep
    to a few times of day). It depends on ``n`` alone: every path that fits a series on the same
    points takes the same sample.

    >>> sample_columns(8_000) is None, sample_columns(43_200)[:4].tolist(), sample_columns(43_200).size
    (True, [0, 5, 10, 15], 8192)
    """
    if n <= SAMPLE:
        return None
    return (np.arange(SAMPLE, dtype=np.int64) * n) // SAMPLE


class _WholeRows:
    """Medians over the whole history of each row of a matrix shaped as ``x`` (the same NaN), over
    :func:`sample_columns`: one selection of :data:`SAMPLE` values per row instead of one of every
    value (at 30 days of 1-minute data, 8,192 of 43,200). A row with fewer than
    :data:`SAMPLE_MIN` values present at those columns (a sparse row) is taken whole."""

    def __init__(self, x: np.ndarray) -> None:
        self.pos = sample_columns(x.shape[1])
        self.sparse = np.zeros(x.shape[0], dtype=bool)
        if self.pos is not None:
            self.sparse = (~np.isnan(x[:, self.pos])).sum(axis=1) < SAMPLE_MIN

    def sigma(
        self, r: np.ndarray, *, centre: np.ndarray | None = None, rows: np.ndarray | None = None
    ) -> np.ndarray:
        """:func:`_robust_sigma` of each row of ``r`` (of ``rows`` only, a mask, when given)
        over the sample."""
        return self._each(lambda a, c: _robust_sigma(a, centre=c), r, centre, rows)

    def median(self, x: np.ndarray) -> np.ndarray:
        """:func:`_median_rows` of each row of ``x`` over the sample."""
        return self._each(lambda a, c: _median_rows(a), x, None, None)

    def _each(
        self,
        f: Any,
        a: np.ndarray,
        centre: np.ndarray | None,
        rows: np.ndarray | None,
    ) -> np.ndarray:
        sparse = self.sparse if rows is None else self.sparse[rows]
        if rows is not None:
            a = a[rows]
            centre = None if centre is None else centre[rows]
        if self.pos is None:
            return np.asarray(f(a, centre))
        out = np.asarray(f(a[:, self.pos], centre))
        if sparse.any():
            out[sparse] = f(a[sparse], None if centre is None else centre[sparse])
        return out


def fit_profile(
    ts_ns: np.ndarray,
    x: np.ndarray,
    *,
    step_ns: int,
    window: int = WINDOW,
    hold: float = HOLD,
    max_hold_ns: int = MAX_HOLD_NS,
    min_scale: float = MIN_SCALE,
    pool_slots: int | None = None,
    min_cycle: float = MIN_CYCLE,
) -> ProfileFit:
    """Fit the channel on each row of ``x`` (series × time, NaN for missing), all at ``ts_ns``."""
    x = _writable(np.atleast_2d(np.asarray(x, dtype="float64")))
    slot_ns = slot_ns_for(step_ns)
    slot = slots_of(ts_ns, slot_ns)  # the points' slots of the day and of the week, once
    week_slot = slots_of(ts_ns, slot_ns, WEEK_NS)
    # a slot's median over fewer than POOL_BELOW timestamps (5-minute data, 3 days: 3) is noisy:
    # then over it and its neighbours (decided on the timestamps alone, the same for every row)
    per_slot = np.bincount(slot, minlength=-(-DAY_NS // slot_ns))
    typical = float(np.median(per_slot)) if per_slot.size else 0.0
    pool = pool_slots if pool_slots is not None else (1 if typical < POOL_BELOW else 0)
    # the slot's resolution only counts where it is above the rest of the scale's floor: an upper
    # bound of it first (a sort of a slot or two), the exact one (every slot sorted) where needed
    med, res_bound = _slot_medians(ts_ns, x, slot_ns, pool=pool, resolution="bound", slot=slot)
    missing = np.isnan(med)
    if missing.any():  # a slot never seen: the median of the others (0 when none)
        fill = np.zeros(med.shape[0])
        some = ~missing.all(axis=1)
        if some.any():
            fill[some] = np.nanmedian(med[some], axis=1)
        med = np.where(missing, fill[:, None], med)
    r = x - med[:, slot]
    # medians over the whole history (the residuals' robust sigmas, the values' centre and
    # spread) over an evenly spread sample of the points (:func:`sample_columns`)
    whole = _WholeRows(x)
    sigma_r = whole.sigma(r)
    # the values' own centre (their median) and spread about it, for the floor of the scale
    centre = whole.median(x)
    # no daily cycle to speak of (the profile's spread below the noise around it): a flat profile,
    # the series' median — the channel is then a held robust level, and the profile's noise (the
    # medians of a few points per slot) does not become the baseline
    weak = _robust_sigma(med - _median_rows(med)[:, None]) < min_cycle * sigma_r
    if weak.any():
        med[weak] = centre[weak][:, None]
        r[weak] = x[weak] - med[weak][:, slot]
    weekly = _weekly(ts_ns, r, slot_ns, week_slot)
    strong = np.zeros(x.shape[0], dtype=bool)
    sigma_w = sigma_r
    if weekly is not None:
        w_of = weekly[:, week_slot]
        r_w = r - w_of
        sigma_w = whole.sigma(r_w)
        strong = ~weak & (_robust_sigma(weekly) >= min_cycle * sigma_w)
        weekly[~strong] = 0.0
        # r - w_of where strong (r_w, the same subtraction), r - 0.0 == r bit for bit elsewhere
        r = np.where(strong[:, None], r_w, r)
        if not strong.any():
            weekly = None
    # the robust sigma of r as it is now: the weekly profile's rows r - w_of (sigma_w), the
    # others r as first computed (sigma_r), but the weak ones (a flat profile since): computed
    sigma_now = np.where(strong, sigma_w, sigma_r)
    if weak.any():
        sigma_now[weak] = whole.sigma(r, rows=weak)
    spread = (
        whole.sigma(x, centre=centre)  # |x - centre| in the selection pass; NaN where x is
        if np.isfinite(centre).all()
        else whole.sigma(x - centre[:, None])
    )
    rest = np.maximum.reduce([min_scale * spread, min_scale / 10 * np.abs(centre), np.full(x.shape[0], 1e-9)])
    resolution = np.zeros(x.shape[0])  # where its bound is at most the rest: it changes nothing
    exact = ~(res_bound <= rest)
    if exact.any():
        resolution[exact] = _slot_medians(ts_ns, x[exact], slot_ns, pool=pool, resolution="exact", slot=slot)[
            1
        ]
    floor = np.maximum.reduce(
        [min_scale * spread, min_scale / 10 * np.abs(centre), resolution, np.full(x.shape[0], 1e-9)]
    )
    scale0 = np.maximum(sigma_now, floor)
    reach = int(window) + int(max_hold_ns // max(int(step_ns), 1))
    first = ProfileFit(slot_ns, med, scale0, int(window), float(hold), reach, weekly)
    resid = np.empty_like(r)  # r - _levels(first, r), in the same pass
    _level_pass(first, np.ascontiguousarray(r), resid, mode=2)
    scale = np.maximum(whole.sigma(resid), floor)
    return ProfileFit(
        slot_ns, med, scale, int(window), float(hold), reach, weekly, habits(ts_ns, r, slot_ns, slot)
    )


def habits(
    ts_ns: np.ndarray, r: np.ndarray, slot_ns: int, slot: np.ndarray | None = None
) -> np.ndarray | None:
    """Per row and slot of the day, the lowest and highest residual (``r``, rows × points, from the
    profile) that this time of day — the slot and :data:`HABIT_MINUTES` either side — reached on at
    least :data:`HABIT_DAYS` of the last :data:`HABIT_WINDOW_DAYS` training days: the second lowest of the days' minima and the
    second highest of their maxima there, each widened by :data:`HABIT_MARGIN` of itself (away from
    0). ``None`` under :data:`HABIT_MIN_DAYS` days of data. A nightly job's one-minute dip, which a
    slot's median cannot learn, lies within them from the third night; a one-off (an outage at
    that hour) does not.

    >>> ts = (np.arange(5 * 288) * 300 * 10**9).astype("int64")  # 5 days of 5-minute points
    >>> r = np.zeros((1, ts.size)); r[0, 288 + 36 :: 288] = 5.0  # 03:00 on each day from the second
    >>> h = habits(ts, r, 300 * 10**9)
    >>> float(h[0, 1, 36]), float(h[0, 1, 39]), float(h[0, 1, 100])  # 5 and a quarter more
    (6.25, 6.25, 0.0)
    """
    day = np.asarray(ts_ns, dtype="int64") // DAY_NS
    if slot is None:
        slot = slots_of(ts_ns, slot_ns)
    if day.size:  # the last HABIT_WINDOW_DAYS days
        first = int(np.searchsorted(day, day[-1] - (HABIT_WINDOW_DAYS - 1)))
        day, slot, r = day[first:], slot[first:], r[:, first:]
    days = int(day[-1] - day[0] + 1) if day.size else 0
    if days < HABIT_MIN_DAYS:
        return None
    n_slots = -(-DAY_NS // slot_ns)
    k = max(1, -(-HABIT_MINUTES * 60 * 10**9 // slot_ns))
    out = np.empty((r.shape[0], 2, n_slots))
    _habit_kernel()(
        _writable(np.ascontiguousarray(r, dtype="float64")),
        np.ascontiguousarray(day - day[0]),
        np.ascontiguousarray(slot, dtype=np.int64),
        days,
        n_slots,
        k,
        HABIT_DAYS,
        out,
    )
    with np.errstate(invalid="ignore"):  # NaN (too few days at a slot) stays NaN
        out[:, 1] += HABIT_MARGIN * np.maximum(out[:, 1], 0.0)
        out[:, 0] -= HABIT_MARGIN * np.maximum(-out[:, 0], 0.0)
    return out


def _habit_kernel() -> Any:
    """:func:`habits`' pass (numba, on first use): per row, each day's minimum and maximum per slot
    in one pass over the points, then per slot each day's extreme over the slots within ``k``
    (around the clock: the slots before midnight of a window at 00:05 are the evening before) and
    the ``nth`` lowest / highest of those over the days (NaN with fewer days)."""
    if "habit" not in _KERNELS:
        import numba

        @numba.njit(cache=True, nogil=True)
        def kernel(r, day, slot, days, n_slots, k, nth, out):  # type: ignore[no-untyped-def]
            lows = np.empty((n_slots, days))  # slot-major: the days of a slot are contiguous
            highs = np.empty((n_slots, days))
            low_k = np.empty(nth)
            high_k = np.empty(nth)
            wide_lo = np.empty(days)
            wide_hi = np.empty(days)
            for i in range(r.shape[0]):
                lows[:] = np.inf  # inf: no point in that day and slot
                highs[:] = -np.inf
                for t in range(r.shape[1]):
                    v = r[i, t]
                    if v == v:  # not NaN
                        d, c = day[t], slot[t]
                        if v < lows[c, d]:
                            lows[c, d] = v
                        if v > highs[c, d]:
                            highs[c, d] = v
                for c in range(n_slots):
                    # each day's extreme over the slots within k of c (around the clock)
                    wide_lo[:] = np.inf
                    wide_hi[:] = -np.inf
                    for j in range(-k, k + 1):
                        q = c + j
                        shift = 0  # a slot past midnight is the neighbouring day's: a burst at
                        if q < 0:  # 23:59-00:01 is one night's, not two days' (the last evening
                            q += n_slots  # of the window at 00:00 is the day before)
                            shift = -1
                        elif q >= n_slots:
                            q -= n_slots
                            shift = 1
                        for d in range(max(0, -shift), min(days, days - shift)):
                            if lows[q, d + shift] < wide_lo[d]:
                                wide_lo[d] = lows[q, d + shift]
                            if highs[q, d + shift] > wide_hi[d]:
                                wide_hi[d] = highs[q, d + shift]
                    # the nth lowest and nth highest over the days with points (sorted k-lists)
                    found = 0
                    for d in range(days):
                        lo = wide_lo[d]
                        if lo == np.inf:
                            continue
                        hi = wide_hi[d]
                        p = min(found, nth)
                        while p > 0 and low_k[p - 1] > lo:
                            if p < nth:
                                low_k[p] = low_k[p - 1]
                            p -= 1
                        if p < nth:
                            low_k[p] = lo
                        p = min(found, nth)
                        while p > 0 and high_k[p - 1] < hi:
                            if p < nth:
                                high_k[p] = high_k[p - 1]
                            p -= 1
                        if p < nth:
                            high_k[p] = hi
                        found += 1
                    if found >= nth:
                        out[i, 0, c] = low_k[nth - 1]
                        out[i, 1, c] = high_k[nth - 1]
                    else:
                        out[i, 0, c] = np.nan
                        out[i, 1, c] = np.nan

        _KERNELS["habit"] = kernel
    return _KERNELS["habit"]


def habit_capped(fit: ProfileFit, ts_ns: np.ndarray, r: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``z`` with the points whose residual ``r`` (rows × points at ``ts_ns``, shared or one row of
    stamps per row) lies within what their time of day reached on :data:`HABIT_DAYS` training days
    (:func:`habits`) scored at most :data:`HABIT_CAP`. Only the points over the cap are looked at:
    the streaming path's few new points (:func:`channel_score_pair` caps a whole matrix in its
    pass)."""
    if fit.habit is None:
        return z
    with np.errstate(invalid="ignore"):
        rows, cols = np.nonzero(z > HABIT_CAP)  # only these can change: a few per cent of the points
    if not rows.size:
        return z
    stamps = np.asarray(ts_ns)
    s = slots_of(stamps[cols] if stamps.ndim == 1 else stamps[rows, cols], fit.slot_ns)
    at = r[rows, cols]
    inside = (at >= fit.habit[rows, 0, s]) & (at <= fit.habit[rows, 1, s])
    out = z.copy()
    out[rows[inside], cols[inside]] = HABIT_CAP
    return out


def _weekly(
    ts_ns: np.ndarray, r: np.ndarray, slot_ns: int, week_slot: np.ndarray | None = None
) -> np.ndarray | None:
    """Per row, the weekly profile of the daily profile's residuals ``r`` (medians per slot of the
    week, centred on their median; 0 for a slot without points) where the row's training data spans
    :data:`WEEKLY_DAYS` days, zeros elsewhere; ``None`` when no row does. ``week_slot``: the
    points' slots of the week, when the caller has them."""
    if week_slot is None:
        week_slot = slots_of(ts_ns, slot_ns, WEEK_NS)
    present = ~np.isnan(r)
    any_present = present.any(axis=1)
    first = np.where(any_present, ts_ns[np.argmax(present, axis=1)], 0)
    last = np.where(any_present, ts_ns[r.shape[1] - 1 - np.argmax(present[:, ::-1], axis=1)], 0)
    long = any_present & (last - first >= WEEKLY_DAYS * DAY_NS)
    per_slot = np.bincount(week_slot, minlength=-(-WEEK_NS // slot_ns))
    if not long.any() or float(np.median(per_slot)) < WEEKLY_MIN_POINTS:
        return None
    med, _ = _slot_medians(ts_ns, r[long], slot_ns, WEEK_NS, resolution="none", slot=week_slot)
    centre = np.nanmedian(med, axis=1)
    med = np.where(np.isnan(med), 0.0, med - centre[:, None])
    out = np.zeros((r.shape[0], med.shape[1]))
    out[long] = med
    return out


def _median_rows(x: np.ndarray) -> np.ndarray:
    """Per row, the median of its values (NaN left out; 0 for a row without any): ``np.median`` /
    ``np.nanmedian``'s numbers, by one selection per row (``np.nanmedian`` of a row of 600 or more
    is ``np.median`` of its values; shorter ones with NaN are left to it)."""
    if not x.shape[1]:
        return np.zeros(x.shape[0])
    nan = bool(np.isnan(x).any())
    if not nan or x.shape[1] >= 600:
        out = _row_medians(x, absolute=False, halve_odd=False)
        return np.where(np.isnan(out), 0.0, out) if nan else out
    out = np.zeros(x.shape[0])
    some = ~np.isnan(x).all(axis=1)
    if some.any():
        out[some] = np.nanmedian(x[some], axis=1)
    return out


def residuals(fit: ProfileFit, ts_ns: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``x - profile`` at ``ts_ns`` for each row (NaN where x is)."""
    x = np.atleast_2d(np.asarray(x, dtype="float64"))
    return x - fit.value(ts_ns)


def _levels(fit: ProfileFit, r: np.ndarray) -> np.ndarray:
    """The level before each point: the mean of the held residuals (within ``hold`` sigmas of the
    profile) of the ``window`` points before it; when fewer than a quarter of those are held (an
    excursion), the mean of the held ones of the ``reach`` points before it (the level before the
    excursion); when those are fewer too, the mean of all of the last ``window`` (a new level,
    accepted); 0 when none is present.

    The sums over the points before ``t`` are differences of running sums (``cs[t-1] -
    cs[t-1-k]``, the point itself left out), in one compiled pass per row
    (:func:`_level_kernel`); ``tests/unit/test_fast_profile.py`` holds it to the array formula."""
    r = np.ascontiguousarray(np.atleast_2d(r), dtype="float64")
    out = np.empty_like(r)
    _level_pass(fit, r, out, mode=0)
    return out


_NO_PROFILE = (np.zeros((0, 0)), np.zeros(0, dtype=np.int64))
_NO_HABIT = np.zeros((0, 2, 0))


def _level_pass(
    fit: ProfileFit,
    r: np.ndarray,
    out: np.ndarray,
    *,
    mode: int,
    ts_ns: np.ndarray | None = None,
    capped: np.ndarray | None = None,
) -> None:
    """``out`` = the level (``mode`` 0), ``|r - level| / scale`` (1) or ``r - level`` (2); with
    ``ts_ns``, ``r`` holds the values and the residuals ``r - fit.value(ts_ns)`` are taken in the
    same pass (:func:`residuals`' numbers, without its matrices). With ``capped`` (mode 1, with
    ``ts_ns``): also the scores with the habits capped (:func:`habit_capped`'s numbers), in the
    same pass."""
    w, h = int(fit.window), int(max(fit.reach, fit.window))
    scale = np.ascontiguousarray(fit.scale, dtype="float64")
    thr = fit.hold * scale  # as the array formula: hold × scale, per row
    daily, slot = _NO_PROFILE
    weekly, week_slot = _NO_PROFILE
    if ts_ns is not None:
        daily = np.ascontiguousarray(fit.profile, dtype="float64")
        slot = slots_of(ts_ns, fit.slot_ns)
        if fit.weekly is not None:
            weekly = np.ascontiguousarray(fit.weekly, dtype="float64")
            week_slot = slots_of(ts_ns, fit.slot_ns, WEEK_NS)
    habit, cap_out = _NO_HABIT, _NO_PROFILE[0]
    if capped is not None:  # channel_score_pair's: mode 1 with ts_ns, a fit with habits
        if fit.habit is None or ts_ns is None or mode != 1:
            raise ValueError("_level_pass: capped scores need mode 1, ts_ns and a fit with habits")
        habit, cap_out = np.ascontiguousarray(fit.habit, dtype="float64"), capped
    _level_kernel()(
        r,
        daily,
        slot,
        weekly,
        week_slot,
        thr,
        scale,
        w,
        h,
        max(1, w // 4),
        mode,
        out,
        habit,
        HABIT_CAP,
        cap_out,
    )


def _level_kernel() -> Any:
    """The compiled pass behind :func:`_levels` and :func:`channel_scores` (numba, on first use;
    ``cache=True``): per row, the running counts and sums of the present and of the held
    residuals, accumulated in order as ``np.cumsum`` does, their windows taken as differences, the
    level chosen as the array formula chooses it; out: the level, ``|r - level| / scale`` or
    ``r - level`` (``mode`` 0, 1, 2). ``daily`` and ``weekly`` (rows × slots, none: 0 columns)
    with the points' ``slot`` and ``week_slot``: ``r`` holds the values, the residuals taken
    point by point as :func:`residuals` takes them, ``x - (daily + weekly)``. ``habit`` (rows × 2
    × slots, none: 0 rows) in mode 1: ``capped`` gets the scores over ``cap`` whose residual lies
    within its slot's habit set to ``cap``, the others as ``out``."""
    if "levels" not in _KERNELS:
        import numba

        @numba.njit(cache=True, nogil=True)
        def kernel(  # type: ignore[no-untyped-def]
            r, daily, slot, weekly, week_slot, thr, scale, w, h, enough, mode, out, habit, cap, capped
        ):
            rows, n = r.shape
            habits = habit.shape[0] > 0
            c_all = np.empty(n, dtype=np.int64)
            c_held = np.empty(n, dtype=np.int64)
            cs_all = np.empty(n)
            cs_held = np.empty(n)
            profile = daily.shape[1] > 0
            week = weekly.shape[1] > 0
            for i in range(rows):
                limit = thr[i]
                for t in range(n):
                    v = r[i, t]
                    if week:  # x - (daily + weekly), as residuals() computes it
                        v = v - (daily[i, slot[t]] + weekly[i, week_slot[t]])
                    elif profile:
                        v = v - daily[i, slot[t]]
                    present = not np.isnan(v)
                    value = v if present else 0.0
                    held = present and abs(value) <= limit
                    if t == 0:  # cumsum starts at the first element (no 0.0 + x)
                        c_all[0] = 1 if present else 0
                        c_held[0] = 1 if held else 0
                        cs_all[0] = value
                        cs_held[0] = value if held else 0.0
                    else:
                        c_all[t] = c_all[t - 1] + (1 if present else 0)
                        c_held[t] = c_held[t - 1] + (1 if held else 0)
                        cs_all[t] = cs_all[t - 1] + value
                        cs_held[t] = cs_held[t - 1] + (value if held else 0.0)
                    level = 0.0
                    if t > 0:
                        n_held = c_held[t - 1]
                        s_held = cs_held[t - 1]
                        if t > w:
                            n_held -= c_held[t - 1 - w]
                            s_held -= cs_held[t - 1 - w]
                        if n_held >= enough:
                            level = s_held / max(n_held, 1)
                        else:
                            n_far = c_held[t - 1]
                            s_far = cs_held[t - 1]
                            if t > h:
                                n_far -= c_held[t - 1 - h]
                                s_far -= cs_held[t - 1 - h]
                            if n_far >= enough:
                                level = s_far / max(n_far, 1)
                            else:
                                n_all = c_all[t - 1]
                                s_all = cs_all[t - 1]
                                if t > w:
                                    n_all -= c_all[t - 1 - w]
                                    s_all -= cs_all[t - 1 - w]
                                if n_all > 0:
                                    level = s_all / max(n_all, 1)
                    if mode == 1:
                        z = abs(v - level) / scale[i]
                        out[i, t] = z
                        if habits:  # a habit (v within what this time of day reached) scores at most cap
                            c = slot[t]
                            if z > cap and habit[i, 0, c] <= v <= habit[i, 1, c]:
                                z = cap
                            capped[i, t] = z
                    elif mode == 2:
                        out[i, t] = v - level
                    else:
                        out[i, t] = level

        _KERNELS["levels"] = kernel
    return _KERNELS["levels"]


def channel_scores(fit: ProfileFit, ts_ns: np.ndarray, x: np.ndarray, *, cap: bool = True) -> np.ndarray:
    """``|r - level| / scale`` for each row of ``x`` at ``ts_ns`` (NaN where x is NaN); habits
    scored at most :data:`HABIT_CAP` (:func:`habit_capped`) unless ``cap`` is false (what the
    calibrator is trained on)."""
    uncapped, capped = channel_score_pair(fit, ts_ns, x, cap=cap)
    return capped if cap else uncapped


def channel_score_pair(
    fit: ProfileFit, ts_ns: np.ndarray, x: np.ndarray, *, cap: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`channel_scores` before and after the habits' cap, in one pass (the same array twice
    where there is nothing to cap, or with ``cap`` false)."""
    values = _writable(np.ascontiguousarray(np.atleast_2d(x), dtype="float64"))
    out = np.empty_like(values)
    if not cap or fit.habit is None:
        _level_pass(fit, values, out, mode=1, ts_ns=ts_ns)  # the residuals taken in the pass
        return out, out
    capped = np.empty_like(values)
    _level_pass(fit, values, out, mode=1, ts_ns=ts_ns, capped=capped)
    return out, capped


def level_after(fit: ProfileFit, r_window: np.ndarray, new_r: np.ndarray) -> np.ndarray:
    """Scores of new residuals ``new_r`` (rows × m) after ``r_window`` (rows × k, the residuals of
    the points just before, NaN-padded on the left when fewer; ``k`` at least ``reach``): what
    :func:`channel_scores` gives them with that past — the streaming path. The window sums of
    :func:`_levels`, taken at the new points only."""
    both = np.concatenate([r_window, new_r], axis=1)
    w, h = fit.window, max(fit.reach, fit.window)
    enough = max(1, w // 4)
    present = ~np.isnan(both)
    held = present & (np.abs(np.where(present, both, 0.0)) <= fit.hold * fit.scale[:, None])
    rows, n = both.shape
    m = new_r.shape[1]
    zero = np.zeros((rows, 1))
    c_all = np.concatenate([zero, np.cumsum(present, axis=1, dtype=np.int64)], axis=1)
    c_held = np.concatenate([zero, np.cumsum(held, axis=1, dtype=np.int64)], axis=1)
    cs_all = np.concatenate([zero, np.cumsum(np.where(present, both, 0.0), axis=1)], axis=1)
    cs_held = np.concatenate([zero, np.cumsum(np.where(held, both, 0.0), axis=1)], axis=1)
    at = np.arange(n - m, n)  # the new points' positions: sums over the points before each

    def window(c: np.ndarray, k: int) -> np.ndarray:
        lo = at - k
        out = c[:, at].copy()
        inside = lo > 0
        out[:, inside] -= c[:, lo[inside]]
        return out

    n_held, n_far, n_all = window(c_held, w), window(c_held, h), window(c_all, w)
    with np.errstate(invalid="ignore", divide="ignore"):
        level = np.where(
            n_held >= enough,
            window(cs_held, w) / np.maximum(n_held, 1),
            np.where(
                n_far >= enough,
                window(cs_held, h) / np.maximum(n_far, 1),
                np.where(n_all > 0, window(cs_all, w) / np.maximum(n_all, 1), 0.0),
            ),
        )
    return np.abs(new_r - level) / fit.scale[:, None]


def index_ns(index: pd.Index) -> np.ndarray:
    """Nanoseconds since the epoch (UTC; naive = UTC) of a timestamp index."""
    idx = pd.DatetimeIndex(index)
    return np.asarray(idx.as_unit("ns").asi8, dtype="int64")


def step_ns_of(index: pd.Index) -> int:
    """The series' spacing: its most common interval or, when larger, its mean interval (an
    irregular series with a few points an hour gets slots that hold some); 1 minute when it has
    none."""
    step = infer_step(pd.DatetimeIndex(index))
    if step is None:
        return 60 * 10**9
    ts = index_ns(index)
    mean = (int(ts[-1]) - int(ts[0])) // max(ts.size - 1, 1)
    return max(int(step.value), int(mean))


class DailyProfile(ExpectedBand, Detector):
    """The channel as a detector of its own (not registered: ``novelty_seasonal`` holds it as its
    ``seasonal_``): fitted by :func:`fit_profile`, scored by :func:`channel_scores`; its expected
    value is the profile plus the level, its band ``band_sigma`` robust sigmas either side.

    >>> idx = pd.date_range("2024-01-01", periods=4 * 288, freq="5min", tz="UTC")
    >>> s = pd.Series(10 + np.sin(2 * np.pi * np.arange(idx.size) / 288), index=idx)
    >>> det = DailyProfile().fit(s)
    >>> s.iloc[700] -= 0.5  # inside the range, off the profile
    >>> int(np.argmax(det.score(s)))
    700
    """

    def __init__(
        self,
        window: int = WINDOW,
        hold: float = HOLD,
        max_hold: str = "12h",
        min_scale: float = MIN_SCALE,
        band_sigma: float = 4.0,
        pool: int | None = None,
    ) -> None:
        self.pool = pool
        self.window = window
        self.hold = hold
        self.max_hold = max_hold
        self.min_scale = min_scale
        self.band_sigma = band_sigma

    def _fit(self, series: pd.Series) -> None:
        s = series  # NaNs kept: the level's window counts positions, as when scoring
        self.fit_ = fit_profile(
            index_ns(s.index),
            s.to_numpy(dtype="float64")[None, :],
            step_ns=step_ns_of(s.index),
            window=self.window,
            hold=self.hold,
            max_hold_ns=self.max_hold_ns(),
            min_scale=self.min_scale,
            pool_slots=self.pool,
        )

    def max_hold_ns(self) -> int:
        return int(pd.Timedelta(self.max_hold).value)

    def score_pair(self, series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """The scores before habits are capped (what a calibrator of this channel is trained on) and
        after (what it scores), in one pass."""
        uncapped, capped = channel_score_pair(
            self.fit_, index_ns(series.index), series.to_numpy(dtype="float64")[None, :]
        )
        return uncapped[0], capped[0]

    def _score(self, series: pd.Series) -> pd.Series:
        z = channel_scores(self.fit_, index_ns(series.index), series.to_numpy(dtype="float64")[None, :])
        return pd.Series(z[0], index=series.index)

    def _expected(self, series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ts = index_ns(series.index)
        r = residuals(self.fit_, ts, series.to_numpy(dtype="float64")[None, :])
        base = self.fit_.value(ts)[0] + _levels(self.fit_, r)[0]
        half = self.band_sigma * float(self.fit_.scale[0])
        return base, base - half, base + half
