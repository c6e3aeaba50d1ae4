"""Novelty's streaming path: a tick's new points scored from what each series carries.

``Novelty.score(new, context=past)`` rebuilds the memory (the bins visited in the context) and the two
trailing medians of the tie-breaker from the whole context — for a monitor, the day before the new
points (1,440 points at 1-minute steps) for five new points. These kernels keep, per series, a
**carry** (one float64 array, :data:`HEADER` values then the windows and the memory) instead:

* the tie-breaker's two sliding windows (raw ring and sorted values, as
  :func:`telewatch.detectors._kernels._push` keeps them): the score at ``t`` depends only on the last
  ``2 × window − 1`` points, so when the context holds at least ``2 × window`` points the windows
  slid over the new points equal those the full kernel builds — the same values in the same sorted
  windows, hence the same medians bit for bit;
* the memory as the sorted bins visited since the carry was built, each with the position of its
  latest visit. The context of a tick starts at ``s = N − len(context)`` in those positions (``N``:
  points seen; the context ends where the previous call's new points ended), so a bin is in the
  context's memory exactly when its latest visit is at or after ``s``. A new point in a visited bin
  scores no novelty, as in the full kernel. A new point in a bin the context has not visited is
  novel: its distance and its cooldown weight depend on the order of first visits inside the
  context, so that row is scored by the full kernel over its context (rare: novelty is the signal).

:func:`fast_rows` handles the rows whose carry is usable and reports the others; :func:`full_rows`
scores those over their context and new points and builds their carry. Both give the scores of
:func:`telewatch.detectors._kernels.novelty_scores` over context + new points (``tests/conformance``
and ``tests/unit/test_novelty_streaming.py`` compare them).
"""

from __future__ import annotations

import numpy as np

from telewatch.core.series import MAD_TO_SIGMA
from telewatch.detectors._kernels import (
    _TABLE_OFFSET,
    _TABLE_SIZE,
    _bisect_left,
    _jit,
    _median,
    _novelty_memory,
    _push,
)

__all__ = ["HEADER", "carry_size", "fast_rows", "full_rows"]

#: Carry layout: [N, low, width, K, state1 (3), state2 (3)], then ring1, srt1, ring2, srt2 (``window``
#: each), then the K visited bins (sorted) and the K positions of their latest visits.
HEADER = 10
_N, _LOW, _WIDTH, _K, _S1, _S2 = 0, 1, 2, 3, 4, 7

#: ``fast_rows`` status bits
MEMORY_DONE = 1
TIE_DONE = 2


def carry_size(window: int, bins: int) -> int:
    """Length of a carry with ``bins`` visited bins."""
    return HEADER + 4 * window + 2 * bins


@_jit
def _tie(
    ring1: np.ndarray,
    srt1: np.ndarray,
    state1: np.ndarray,
    ring2: np.ndarray,
    srt2: np.ndarray,
    state2: np.ndarray,
    prev: float,
    v: float,
    wd: float,
    huge: float,
) -> float:
    """One step of the tie-breaker, as ``_novelty_scores_kernel``: ``0.01 × z / (z + 5)``."""
    _push(ring1, srt1, state1, prev)
    m1 = _median(srt1, state1[2], 2)
    _push(ring2, srt2, state2, abs(prev - m1))
    mad = _median(srt2, state2[2], 2) * MAD_TO_SIGMA
    if mad != mad:
        mad = 0.0
    elif mad == np.inf:
        mad = huge
    scale = mad if mad > wd else wd
    z = abs(v - m1) / scale
    if z != z:
        z = 0.0
    elif z == np.inf:
        z = huge
    return 0.01 * (z / (z + 5.0))


@_jit
def _load_windows(c: np.ndarray, w: int, rings: np.ndarray, states: np.ndarray) -> None:
    for k in range(4):
        rings[k, :] = c[HEADER + k * w : HEADER + (k + 1) * w]
    for k in range(3):
        states[0, k] = np.int64(c[_S1 + k])
        states[1, k] = np.int64(c[_S2 + k])


@_jit
def _store_windows(c: np.ndarray, w: int, rings: np.ndarray, states: np.ndarray) -> None:
    for k in range(4):
        c[HEADER + k * w : HEADER + (k + 1) * w] = rings[k, :]
    for k in range(3):
        c[_S1 + k] = float(states[0, k])
        c[_S2 + k] = float(states[1, k])


@_jit
def fast_rows(
    flat: np.ndarray,
    offsets: np.ndarray,
    new: np.ndarray,
    low: np.ndarray,
    width: np.ndarray,
    context_size: np.ndarray,
    context_last: np.ndarray,
    window: int,
    memory: np.ndarray,
    tie: np.ndarray,
    status: np.ndarray,
    sizes: np.ndarray,
) -> None:
    """Rows with a usable carry (``flat[offsets[i]:offsets[i + 1]]``, updated in place; its new length
    in ``sizes[i]``): the novelty of the new points in ``memory`` and the tie-breaker in ``tie``, with
    ``status[i]`` saying which were done (a novel point, a changed fit, a context reaching before the
    carry or shorter than ``2 × window`` leave them to :func:`full_rows`)."""
    w = window
    n, m = new.shape
    rings = np.empty((4, w))
    states = np.zeros((2, 3), dtype=np.int64)
    huge = np.finfo(np.float64).max
    for i in range(n):
        status[i] = 0
        lo_, hi_ = offsets[i], offsets[i + 1]
        if hi_ - lo_ < HEADER + 4 * w:
            continue
        c = flat[lo_:hi_]
        k = int(c[_K])
        if hi_ - lo_ != HEADER + 4 * w + 2 * k:
            continue
        seen_n = int(c[_N])
        size = context_size[i]
        if size > seen_n:  # the context reaches before what the carry saw
            continue
        start = seen_n - size  # where the context starts, in the carry's positions
        sizes[i] = hi_ - lo_
        # the memory: bins whose latest visit is in the context; a new point in one of them is not novel
        if c[_LOW] == low[i] and c[_WIDTH] == width[i]:
            base = HEADER + 4 * w
            kept = 0
            for j in range(k):  # drop the bins last visited before the context
                if c[base + k + j] >= start:
                    c[base + kept] = c[base + j]
                    c[base + k + kept] = c[base + k + j]
                    kept += 1
            for j in range(kept):  # the positions follow the kept bins
                c[base + kept + j] = c[base + k + j]
            k = kept
            c[_K] = float(k)
            sizes[i] = HEADER + 4 * w + 2 * k
            novel = False
            for j in range(m):
                memory[i, j] = 0.0
                q = np.floor((new[i, j] - low[i]) / width[i])
                if not np.isfinite(q):
                    continue
                at = _bisect_left(c[base:], k, q)
                if at < k and c[base + at] == q:
                    c[base + k + at] = float(seen_n + j)
                else:
                    novel = True
                    break
            if not novel:
                status[i] |= MEMORY_DONE
        # the tie-breaker: its windows slid over the new points
        if size >= 2 * w:
            _load_windows(c, w, rings, states)
            prev = context_last[i]
            for j in range(m):
                tie[i, j] = _tie(
                    rings[0],
                    rings[1],
                    states[0],
                    rings[2],
                    rings[3],
                    states[1],
                    prev,
                    new[i, j],
                    width[i],
                    huge,
                )
                prev = new[i, j]
            _store_windows(c, w, rings, states)
            status[i] |= TIE_DONE
        c[_N] = float(seen_n + m)


@_jit
def full_rows(
    x: np.ndarray,
    offsets: np.ndarray,
    context_size: np.ndarray,
    low: np.ndarray,
    width: np.ndarray,
    cooldown: int,
    window: int,
    scores: np.ndarray,
    carry: np.ndarray,
    carry_offsets: np.ndarray,
    carry_sizes: np.ndarray,
    tie_weight: np.ndarray,
) -> None:
    """Row ``i``: context and new points ``x[offsets[i]:offsets[i + 1]]`` (the first
    ``context_size[i]`` the context); ``scores[i]`` gets the scores of the new points as the full
    kernel gives them (the tie-breaker times ``tie_weight[i]``: 1, or 0 for a model without it),
    ``carry[carry_offsets[i]:]`` the row's carry (its length in ``carry_sizes``)."""
    w = window
    longest = 0
    for i in range(offsets.size - 1):
        longest = max(longest, offsets[i + 1] - offsets[i])
    seen = np.empty(longest + 1)
    visited = np.zeros(_TABLE_SIZE, dtype=np.uint8)
    latest = np.empty(_TABLE_SIZE, dtype=np.int64)
    stack_t = np.empty(longest + 1, dtype=np.int64)
    stack_d = np.empty(longest + 1)
    out = np.empty(longest)
    rings = np.empty((4, w))
    states = np.zeros((2, 3), dtype=np.int64)
    huge = np.finfo(np.float64).max
    limit = _TABLE_SIZE - _TABLE_OFFSET
    for i in range(offsets.size - 1):
        row = x[offsets[i] : offsets[i + 1]]
        total = row.size
        size = context_size[i]
        o = out[:total]
        k = _novelty_memory(row, low[i], width[i], cooldown, seen, visited, stack_t, stack_d, o)
        # the tie-breaker needs the last 2 × window points before a new point (see the module's doc)
        first = max(0, size - 2 * w)
        states[:, :] = 0
        for t in range(first, total):
            prev = row[t - 1] if t > 0 else np.nan
            term = _tie(
                rings[0], rings[1], states[0], rings[2], rings[3], states[1], prev, row[t], width[i], huge
            )
            if t >= size:
                scores[i, t - size] = o[t] + tie_weight[i] * term
        # the carry: windows, then the visited bins (seen[:k], sorted) with their latest visits
        c = carry[carry_offsets[i] :]
        for t in range(total):
            q = np.floor((row[t] - low[i]) / width[i])
            if -_TABLE_OFFSET <= q < limit:
                latest[int(q) + _TABLE_OFFSET] = t
        base = HEADER + 4 * w
        for j in range(k):
            c[base + j] = seen[j]
            q = seen[j]
            if -_TABLE_OFFSET <= q < limit:
                c[base + k + j] = float(latest[int(q) + _TABLE_OFFSET])
            else:  # far outside the fitted range: its latest visit by a scan from the end
                for t in range(total - 1, -1, -1):
                    if np.floor((row[t] - low[i]) / width[i]) == q:
                        c[base + k + j] = float(t)
                        break
        c[_N] = float(total)
        c[_LOW] = low[i]
        c[_WIDTH] = width[i]
        c[_K] = float(k)
        _store_windows(c, w, rings, states)
        carry_sizes[i] = base + 2 * k
