"""Sliding-window kernels (numba) for the streaming paths of the trailing-window detectors.

A tick scores a few new points per series after a context of past points. Instead of computing
rolling medians over the whole context again, these kernels keep sorted windows and slide them by
insertion and removal: O(window) per new point.

* :func:`trailing_medians`: the rolling medians (pandas' semantics) at the last columns of a matrix;
* :func:`deviations`: robust_bands' ``|x[t-1] - median_t|`` over a context, where its MAD window
  starts when nothing was kept from a previous tick;
* :func:`bands_kernel`: robust_bands' step over new points, from windows kept between ticks.

numba is imported and the kernels compiled on first use (cached on disk), so importing the
detectors stays fast. :meth:`telewatch.detectors.robust_bands.RobustBands.score_contexts` is the
caller; ``tests/integration/test_tick_streaming.py`` compares them with pandas.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import numpy as np

__all__ = ["bands_kernel", "deviations", "left_pad", "median_kernel", "trailing_medians"]


def left_pad(arrays: Iterable[np.ndarray], width: int) -> np.ndarray:
    """Rows of the last ``width`` values of each array, NaN in front where shorter (NaN = absent for
    a rolling window with ``min_periods``)."""
    rows = list(arrays)
    out = np.full((len(rows), width), np.nan)
    if width == 0:
        return out
    for i, a in enumerate(rows):
        a = a[-width:]
        if a.size:
            out[i, width - a.size :] = a
    return out


def trailing_medians(raw: np.ndarray, *, count: int, window: int, min_periods: int) -> np.ndarray:
    """Medians of ``raw[:, k : k + window]`` for ``k < count`` (metrics × count), as pandas' rolling
    median: NaN and ±inf ignored, NaN where fewer than ``min_periods`` values (at least one); the
    median of an even count is the mean of the two middle values. A compiled kernel (numba) sorts
    each row's first window once and slides it by insertion: O(window) per new point.

    >>> trailing_medians(np.array([[1.0, np.nan, 3.0, 10.0, 4.0]]), count=3, window=3, min_periods=2)
    array([[2. , 6.5, 4. ]])
    """
    arr = np.ascontiguousarray(raw, dtype="float64")
    out = np.empty((arr.shape[0], count))
    if not (arr.shape[0] and count):
        return out
    kernel, least = median_kernel(), max(min_periods, 1)
    # rows are independent and the kernel releases the GIL: large matrices (the first tick of a
    # process, thousands of metrics) are split over the cores in row blocks
    workers = min(os.cpu_count() or 1, 4, max(1, arr.shape[0] * count * window // 50_000_000))
    if workers == 1:
        kernel(arr, count, window, least, out)
        return out
    bounds = np.linspace(0, arr.shape[0], workers + 1).astype(int)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        done = [
            pool.submit(kernel, arr[lo:hi], count, window, least, out[lo:hi])
            for lo, hi in pairwise(bounds.tolist())
        ]
        for job in done:
            job.result()
    return out


_MEDIAN: list[Callable[..., None]] = []


def median_kernel() -> Callable[..., None]:
    """The compiled sliding-median kernel (numba imported and compiled on first use, cached on disk)."""
    if _MEDIAN:
        return _MEDIAN[0]
    import numba

    @numba.njit(cache=True, nogil=True)
    def slide(raw: np.ndarray, count: int, window: int, min_periods: int, out: np.ndarray) -> None:
        buf = np.empty(window)
        for i in range(raw.shape[0]):
            c = 0
            for j in range(window):
                v = raw[i, j]
                if np.isfinite(v):
                    buf[c] = v
                    c += 1
            buf[:c].sort()
            for k in range(count):
                if k > 0:
                    old = raw[i, k - 1]
                    if np.isfinite(old):
                        p = np.searchsorted(buf[:c], old)
                        for t in range(p, c - 1):
                            buf[t] = buf[t + 1]
                        c -= 1
                    new = raw[i, k + window - 1]
                    if np.isfinite(new):
                        q = np.searchsorted(buf[:c], new)
                        for t in range(c, q, -1):
                            buf[t] = buf[t - 1]
                        buf[q] = new
                        c += 1
                if c >= min_periods:
                    out[i, k] = (buf[(c - 1) // 2] + buf[c // 2]) / 2.0
                else:
                    out[i, k] = np.nan

    _MEDIAN.append(slide)
    return slide


def deviations(tails: Sequence[np.ndarray], window: int, min_periods: int) -> np.ndarray:
    """``|x[t-1] - median_t|`` at the last ``window - 1`` points of each tail (rows): where
    robust_bands' MAD window starts from when nothing was kept from a previous call."""
    if window <= 1:
        return np.empty((len(tails), 0))
    x = left_pad(tails, 2 * window)
    prev = np.full_like(x, np.nan)
    prev[:, 1:] = x[:, :-1]  # the value before each point
    # the rolling median (pandas' semantics, compiled) of prev at its last window - 1 columns
    median = trailing_medians(prev[:, 2:], count=window - 1, window=window, min_periods=min_periods)
    with np.errstate(invalid="ignore"):
        return np.ascontiguousarray(np.abs(prev[:, window + 1 :] - median))


_BANDS: list[Callable[..., None]] = []


def bands_kernel() -> Callable[..., None]:
    """The compiled robust_bands step: per row, slide the sorted window of values (median) and of
    deviations (MAD) over the new points — O(window) per point, no sorting when the windows are
    kept from the previous tick (``have``); fills ``dev``'s new part, ``median``, ``mad`` and leaves
    the windows ready for the next tick. Medians as pandas' rolling median (see
    :func:`trailing_medians`)."""
    if _BANDS:
        return _BANDS[0]
    import numba

    @numba.njit(cache=True, nogil=True)
    def median_of(buf: np.ndarray, c: int, min_periods: int) -> float:
        if c < min_periods:
            return np.nan
        return (buf[(c - 1) // 2] + buf[c // 2]) / 2.0

    @numba.njit(cache=True, nogil=True)
    def remove(buf: np.ndarray, c: int, v: float) -> int:
        if not np.isfinite(v):
            return c
        p = np.searchsorted(buf[:c], v)
        for t in range(p, c - 1):
            buf[t] = buf[t + 1]
        buf[c - 1] = np.nan
        return c - 1

    @numba.njit(cache=True, nogil=True)
    def insert(buf: np.ndarray, c: int, v: float) -> int:
        if not np.isfinite(v):
            return c
        q = np.searchsorted(buf[:c], v)
        for t in range(c, q, -1):
            buf[t] = buf[t - 1]
        buf[q] = v
        return c + 1

    @numba.njit(cache=True, nogil=True)
    def fill(buf: np.ndarray, values: np.ndarray) -> int:
        c = 0
        for v in values:
            if np.isfinite(v):
                buf[c] = v
                c += 1
        buf[c:] = np.nan
        buf[:c].sort()
        return c

    @numba.njit(cache=True, nogil=True)
    def step(
        raw: np.ndarray,
        dev: np.ndarray,
        windows: np.ndarray,
        have: np.ndarray,
        m: int,
        w: int,
        min_periods: int,
        median: np.ndarray,
        mad: np.ndarray,
    ) -> None:
        for i in range(raw.shape[0]):
            vals = windows[i, 0]
            devs = windows[i, 1]
            if have[i]:
                cv = 0
                while cv < w and np.isfinite(vals[cv]):
                    cv += 1
                cd = 0
                while cd < w and np.isfinite(devs[cd]):
                    cd += 1
            else:
                cv = fill(vals, raw[i, :w])
                cd = fill(devs, dev[i, : w - 1])
            for k in range(m):
                if k > 0:
                    cv = remove(vals, cv, raw[i, k - 1])
                    cv = insert(vals, cv, raw[i, k + w - 1])
                med = median_of(vals, cv, min_periods)
                median[i, k] = med
                d = abs(raw[i, w - 1 + k] - med)
                dev[i, w - 1 + k] = d
                cd = insert(devs, cd, d)
                mad[i, k] = median_of(devs, cd, min_periods)
                cd = remove(devs, cd, dev[i, k])
            cv = remove(vals, cv, raw[i, m - 1])
            cv = insert(vals, cv, raw[i, m + w - 1])

    _BANDS.append(step)
    return step


_PREV: list[Callable[..., np.ndarray]] = []


def previous_at_least(values: np.ndarray, cooldown: int) -> np.ndarray:
    """``min(1, gap / cooldown)`` for each point of ``values`` (1-D), ``gap`` the points since the
    latest earlier point at least as high; 1 where there is none (NaN neither counts nor is
    weighed). A monotonic stack: O(n).

    >>> previous_at_least(np.array([3.0, 1.0, 2.0, 3.0, np.nan, 4.0]), 4).tolist()
    [1.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    """
    if not _PREV:
        import numba

        @numba.njit(cache=True, nogil=True)
        def weights(x: np.ndarray, cooldown: int) -> np.ndarray:
            out = np.ones(x.size)
            stack = np.empty(x.size, dtype=np.int64)  # positions, values strictly decreasing
            top = 0
            for t in range(x.size):
                v = x[t]
                if not np.isfinite(v):
                    continue
                while top > 0 and x[stack[top - 1]] < v:
                    top -= 1
                if top > 0:
                    out[t] = min(1.0, (t - stack[top - 1]) / cooldown)
                stack[top] = t
                top += 1
            return out

        _PREV.append(weights)
    return _PREV[0](np.ascontiguousarray(values, dtype="float64"), max(int(cooldown), 1))
