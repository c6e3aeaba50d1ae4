"""Compiled kernels (numba) for the detectors' hot loops, over a matrix of metrics × time.

Each kernel gives exactly what the pandas / Python code it replaces gives (the unit tests in
``tests/unit/test_kernels.py`` compare them bit for bit on random data with gaps):

* :func:`rolling_median`: ``pd.DataFrame(values.T).rolling(window, min_periods).median().T`` —
  a trailing window of ``window`` points ending at ``t``, NaN (and ±inf, as pandas) ignored, NaN
  where fewer than ``min_periods`` finite values; the median of an even count is the mean of the
  two middle values. A sorted window updated by insertion: O(window) per point, no allocation.
* :func:`novelty_scores`: :class:`~telewatch.detectors.novelty.Novelty`'s score of every row
  (the novelty memory and the rolling-median tie-breaker fused in one pass per row).

The kernels release the GIL (``nogil``) and run one row after another: callers get parallelism
from threads over blocks of rows (``score_matrix(workers=...)``, Dask's threads), which stays safe
when several threads call them at once — numba's own ``parallel=True`` pool is not re-entrant.
They compile on first use and are cached on disk (``cache=True``, next to this file or in
``NUMBA_CACHE_DIR``): the first call in a fresh environment costs a few seconds of compilation,
later processes load the cache in well under a second. The detectors import this module (and
numba with it) on their first score, so importing telewatch stays fast.

>>> import numpy as np
>>> rolling_median(np.array([[1.0, 5.0, np.nan, 2.0, 4.0]]), window=3, min_periods=2)
array([[nan, 3. , 3. , 3.5, 3. ]])
"""

from __future__ import annotations

import numba
import numpy as np

from telewatch.core.errors import ValidationError
from telewatch.core.series import MAD_TO_SIGMA

__all__ = ["held_median", "novelty_fit", "novelty_scores", "rolling_median", "warm_up"]

# novelty memory: flags for bins -1024 ... 3071 (a fitted range is bins 0 ... bins), a sorted
# search for the rest
_TABLE_SIZE = 4096
_TABLE_OFFSET = 1024


def rolling_median(values: np.ndarray, *, window: int, min_periods: int | None = None) -> np.ndarray:
    """Trailing rolling median of every row of ``values`` (2-D, metrics × time), as pandas'.

    ``min_periods`` defaults to ``window`` (pandas' default). Returns a new float64 array.
    """
    arr = _as_matrix(values, "rolling_median")
    minp = window if min_periods is None else min_periods
    if window < 1:
        raise ValidationError(f"rolling_median: window must be at least 1, got {window}")
    if not 0 <= minp <= window:
        raise ValidationError(f"rolling_median: min_periods must be in [0, {window}], got {minp}")
    out = np.empty_like(arr)
    _rolling_median_kernel(arr, int(window), int(minp), out)
    return out


def novelty_fit(values: np.ndarray, *, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, ``Novelty._fit``'s ``(low_, width_)``: the row's minimum and ``1 / bins`` of its
    range (NaN ignored; an all-NaN row gives ``(0, 1)``, a constant one ``|value| / bins``)."""
    arr = _as_matrix(values, "novelty_fit")
    low = np.empty(arr.shape[0])
    width = np.empty(arr.shape[0])
    _novelty_fit_kernel(arr, float(bins), low, width)
    return low, width


def novelty_scores(
    values: np.ndarray, low: np.ndarray, width: np.ndarray, *, cooldown: int, window: int, tie: bool = True
) -> np.ndarray:
    """``Novelty`` scores of every row of ``values`` (metrics × time) with the fitted ``low`` and
    ``width`` per row: the novelty of each value plus ``0.01 ×`` its squashed robust distance from
    the median of the ``window`` points before it (``tie=False``: the novelty alone, without that
    tie-breaker — its two rolling medians are nearly all of the cost). NaN in gives NaN out."""
    arr = _as_matrix(values, "novelty_scores")
    lo = np.ascontiguousarray(low, dtype="float64").reshape(-1)
    wd = np.ascontiguousarray(width, dtype="float64").reshape(-1)
    if lo.size != arr.shape[0] or wd.size != arr.shape[0]:
        raise ValidationError(
            f"novelty_scores: low and width need one value per row ({arr.shape[0]}), "
            f"got {lo.size} and {wd.size}"
        )
    if window < 2:
        # pandas refuses min_periods=2 > window
        raise ValidationError(f"novelty: local_window must be at least 2, got {window}")
    out = np.empty_like(arr)
    _novelty_scores_kernel(arr, lo, wd, int(max(cooldown, 1)), int(window), bool(tie), out)
    return out


def held_median(
    values: np.ndarray,
    *,
    window: int,
    lag: int,
    min_periods: int,
    scale: float,
    hold: float,
    max_hold: int,
    with_mad: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A trailing median that stops adapting while the series is anomalous (1-D ``values``).

    At ``t`` the reference is the median (and, with ``with_mad``, the MAD as sigma) of the last
    ``window`` *accepted* values among those at least ``lag`` points old. A value is accepted unless
    it is **held**: ``|x_t - median_t| / sigma_t >= hold``, ``sigma_t`` the MAD (floored at ``scale``)
    or ``scale`` itself. So during an outage or a step the reference stays at the level from before,
    and the whole incident keeps scoring; a run held for ``max_hold`` points is accepted from then
    on (a new normal), until a point is back within ``hold``. NaN values are neither scored nor
    accepted. Where fewer than ``min_periods`` values were accepted, median and MAD are NaN.
    Returns ``(median, mad, held)``.
    """
    x = np.ascontiguousarray(values, dtype="float64").reshape(-1)
    med = np.empty(x.size)
    mad = np.empty(x.size)
    held = np.zeros(x.size, dtype=np.bool_)
    _held_median_kernel(
        x,
        int(window),
        int(max(lag, 1)),
        int(max(min_periods, 1)),
        float(scale),
        float(hold),
        int(max_hold),
        bool(with_mad),
        med,
        mad,
        held,
    )
    return med, mad, held


def warm_up() -> float:
    """Compile (or load from the cache) every kernel now; returns the seconds it took. Those other
    modules registered in :mod:`~telewatch.detectors._warm` too (``novelty_seasonal``'s profile
    channel: :func:`~telewatch.detectors.novelty_seasonal.warm_up`, its matrix path on a small
    matrix)."""
    import time

    from telewatch.detectors import _warm

    t0 = time.perf_counter()
    x = np.array([[1.0, np.nan, 3.0, 2.0]])
    rolling_median(x, window=2, min_periods=1)
    low, width = novelty_fit(x, bins=10)
    novelty_scores(x, low, width, cooldown=10, window=2)
    for hook in _warm.HOOKS:
        hook()
    return time.perf_counter() - t0


def _as_matrix(values: np.ndarray, name: str) -> np.ndarray:
    arr = np.ascontiguousarray(values, dtype="float64")
    if arr.ndim != 2:
        raise ValidationError(f"{name}: values must be 2-D (metrics × time), got {arr.ndim}-D")
    return arr


_jit = numba.njit(nogil=True, cache=True)


@_jit
def _rank(srt: np.ndarray, n: int, value: float) -> int:
    """How many of ``srt[:n]`` are below ``value``: the index where ``value`` goes in sorted
    ``srt[:n]`` (before any equal value). A branch-free count, which the compiler vectorises, beats
    a binary search on windows this short (tens of values)."""
    count = 0
    for k in range(n):
        count += srt[k] < value
    return count


@_jit
def _shift_up(srt: np.ndarray, lo: int, hi: int) -> None:
    """``srt[lo + 1 : hi + 1] = srt[lo:hi]``, in place. Loops over a view from 0 up, so numba
    knows the indices are not negative (no wrap-around checks; about twice as fast)."""
    view = srt[lo : hi + 1]
    m = np.uint64(hi - lo)
    for k in range(np.uint64(0), m):
        view[m - k] = view[m - k - np.uint64(1)]


@_jit
def _shift_down(srt: np.ndarray, lo: int, hi: int) -> None:
    """``srt[lo:hi] = srt[lo + 1 : hi + 1]``, in place (see :func:`_shift_up`)."""
    view = srt[lo : hi + 1]
    for k in range(hi - lo):
        view[k] = view[k + 1]


@_jit
def _push(ring: np.ndarray, srt: np.ndarray, state: np.ndarray, value: float) -> None:
    """Slide the window by one: ``value`` in (NaN if not finite), the oldest value out.

    ``ring`` holds the window's raw values in arrival order, ``srt[:state[2]]`` its finite
    values sorted; ``state`` = (next ring slot, values pushed so far capped at the window, n)."""
    w = ring.size
    if not np.isfinite(value):
        value = np.nan
    pos = state[0]
    if state[1] >= w:
        old = ring[pos]
    else:
        old = np.nan
        state[1] += 1
    ring[pos] = value
    state[0] = pos + 1 if pos + 1 < w else 0
    n = state[2]
    if old == old:  # the oldest value was finite: it leaves the sorted window
        if value == value:  # the new value takes its slot; the values between them move by one
            i = 0
            j = 0
            for k in range(n):
                v = srt[k]
                i += v < old
                j += v < value
            if j > i:
                _shift_down(srt, i, j - 1)
                srt[j - 1] = value
            else:
                _shift_up(srt, j, i)
                srt[j] = value
        else:
            _shift_down(srt, _rank(srt, n, old), n - 1)
            state[2] = n - 1
    elif value == value:
        i = _rank(srt, n, value)
        _shift_up(srt, i, n)
        srt[i] = value
        state[2] = n + 1


@_jit
def _bisect_left(srt: np.ndarray, n: int, value: float) -> int:
    """The first index of sorted ``srt[:n]`` holding a value ``>= value`` (binary search)."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) >> 1
        if srt[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


@_jit
def _median(srt: np.ndarray, n: int, min_periods: int) -> float:
    if n == 0 or n < min_periods:
        return np.nan
    mid = n >> 1
    if n & 1:
        return srt[mid]
    return (srt[mid] + srt[mid - 1]) / 2  # as pandas' roll_median_c


@_jit
def _rolling_median_kernel(values: np.ndarray, window: int, min_periods: int, out: np.ndarray) -> None:
    ring = np.empty(window)
    srt = np.empty(window)
    state = np.zeros(3, dtype=np.int64)
    for r in range(values.shape[0]):
        state[:] = 0
        for t in range(values.shape[1]):
            _push(ring, srt, state, values[r, t])
            out[r, t] = _median(srt, state[2], min_periods)


@_jit
def _novelty_fit_kernel(values: np.ndarray, bins: float, low: np.ndarray, width: np.ndarray) -> None:
    for r in range(values.shape[0]):
        lo = np.inf
        hi = -np.inf
        count = 0
        for t in range(values.shape[1]):
            v = values[r, t]
            if v == v:
                count += 1
                if v < lo:
                    lo = v
                if v > hi:
                    hi = v
        if count == 0:
            low[r] = 0.0
            width[r] = 1.0
            continue
        span = hi - lo
        if span <= 0.0:
            span = abs(hi) if hi != 0.0 else 1.0
        low[r] = lo
        width[r] = span / bins


@_jit
def _novelty_memory(
    x: np.ndarray,
    low: float,
    width: float,
    cooldown: int,
    seen: np.ndarray,
    visited: np.ndarray,
    stack_t: np.ndarray,
    stack_d: np.ndarray,
    out: np.ndarray,
) -> int:
    """``Novelty._novelty``: each value's distance (in bins) to the nearest bin visited
    before, on a bin's first visit only, weighted down within ``cooldown`` points of an
    earlier novelty at least as far out. Returns how many bins were visited (sorted in
    ``seen[:k]``)."""
    big = 1e9
    k = 0  # bins seen, sorted in seen[:k]
    top = 0  # earlier novelties, distances strictly decreasing
    visited[:] = 0  # bins seen, as flags, for bins -_TABLE_OFFSET ... visited.size - _TABLE_OFFSET
    limit = visited.size - _TABLE_OFFSET
    for t in range(x.size):
        out[t] = 0.0
        q = np.floor((x[t] - low) / width)
        if not np.isfinite(q):
            continue
        slot = -1
        if -_TABLE_OFFSET <= q < limit:  # nearly always: a flag says if the bin was seen
            slot = int(q) + _TABLE_OFFSET
            if visited[slot]:
                continue
            i = _bisect_left(seen, k, q)
        else:
            i = _bisect_left(seen, k, q)
            if i < k and seen[i] == q:
                continue
        if k > 0:
            left = q - seen[i - 1] if i > 0 else big
            right = seen[i] - q if i < k else big
            dist = min(left, right)
            while top > 0 and stack_d[top - 1] < dist:
                top -= 1
            gap = t - stack_t[top - 1] if top > 0 else cooldown
            out[t] = dist * min(1.0, gap / cooldown)
            stack_t[top] = t
            stack_d[top] = dist
            top += 1
        for j in range(k, i, -1):
            seen[j] = seen[j - 1]
        seen[i] = q
        k += 1
        if slot >= 0:
            visited[slot] = 1
    return k


@_jit
def _novelty_scores_kernel(
    values: np.ndarray,
    low: np.ndarray,
    width: np.ndarray,
    cooldown: int,
    window: int,
    tie: bool,
    out: np.ndarray,
) -> None:
    n = values.shape[1]
    seen = np.empty(n + 1)
    visited = np.zeros(_TABLE_SIZE, dtype=np.uint8)
    stack_t = np.empty(n + 1, dtype=np.int64)
    stack_d = np.empty(n + 1)
    ring1 = np.empty(window)
    srt1 = np.empty(window)
    state1 = np.zeros(3, dtype=np.int64)
    ring2 = np.empty(window)
    srt2 = np.empty(window)
    state2 = np.zeros(3, dtype=np.int64)
    huge = np.finfo(np.float64).max
    for r in range(values.shape[0]):
        x = values[r]
        o = out[r]
        _novelty_memory(x, low[r], width[r], cooldown, seen, visited, stack_t, stack_d, o)
        if not tie:  # the novelty alone: NaN where the value is
            for t in range(n):
                if x[t] != x[t]:
                    o[t] = np.nan
            continue
        # tie-breaker, as Novelty._local: prev = x shifted by one; its rolling median m1;
        # the rolling median of |prev - m1| as the MAD; z squashed into [0, 1)
        state1[:] = 0
        state2[:] = 0
        wd = width[r]
        for t in range(n):
            prev = x[t - 1] if t > 0 else np.nan
            _push(ring1, srt1, state1, prev)
            m1 = _median(srt1, state1[2], 2)
            _push(ring2, srt2, state2, abs(prev - m1))
            mad = _median(srt2, state2[2], 2) * MAD_TO_SIGMA
            if mad != mad:
                mad = 0.0
            elif mad == np.inf:
                mad = huge  # np.nan_to_num
            scale = mad if mad > wd else wd
            v = x[t]
            z = abs(v - m1) / scale
            if z != z:
                z = 0.0
            elif z == np.inf:
                z = huge  # np.nan_to_num
            if v != v:
                o[t] = np.nan
            else:
                o[t] = o[t] + 0.01 * (z / (z + 5.0))


@_jit
def _sorted_insert(srt: np.ndarray, n: int, value: float) -> None:
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) >> 1
        if srt[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    for k in range(n, lo, -1):
        srt[k] = srt[k - 1]
    srt[lo] = value


@_jit
def _sorted_remove(srt: np.ndarray, n: int, value: float) -> None:
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) >> 1
        if srt[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    for k in range(lo, n - 1):
        srt[k] = srt[k + 1]


@_jit
def _sorted_mad(srt: np.ndarray, n: int, m: float) -> float:
    """Median of ``|srt[:n] - m|`` for sorted ``srt``: the deviations left and right of ``m`` are each
    sorted, so the middle ones come from merging outwards from ``m``."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) >> 1
        if srt[mid] < m:
            lo = mid + 1
        else:
            hi = mid
    i, j = lo - 1, lo
    k = n >> 1
    prev, cur = 0.0, 0.0
    for _ in range(k + 1):
        prev = cur
        if i < 0:
            cur = srt[j] - m
            j += 1
        elif j >= n or m - srt[i] <= srt[j] - m:
            cur = m - srt[i]
            i -= 1
        else:
            cur = srt[j] - m
            j += 1
    return cur if n & 1 else (prev + cur) / 2


@_jit
def _held_median_kernel(
    x: np.ndarray,
    window: int,
    lag: int,
    min_periods: int,
    scale: float,
    hold: float,
    max_hold: int,
    with_mad: bool,
    med: np.ndarray,
    mad: np.ndarray,
    held: np.ndarray,
) -> None:
    ring = np.empty(window)
    srt = np.empty(window + 1)
    count = 0
    head = 0
    run = 0
    expired = False
    for t in range(x.size):
        j = t - lag  # the value that becomes old enough to join the reference now
        if j >= 0 and not held[j] and np.isfinite(x[j]):
            if count == window:
                _sorted_remove(srt, count, ring[head])
                count -= 1
            _sorted_insert(srt, count, x[j])
            count += 1
            ring[head] = x[j]
            head = (head + 1) % window
        if count < min_periods:
            med[t] = np.nan
            mad[t] = np.nan
            continue
        mid = count >> 1
        m = srt[mid] if count & 1 else (srt[mid] + srt[mid - 1]) / 2
        med[t] = m
        sigma = scale
        if with_mad:
            mad[t] = _sorted_mad(srt, count, m) * MAD_TO_SIGMA
            if mad[t] > sigma:
                sigma = mad[t]
        else:
            mad[t] = np.nan
        if not np.isfinite(x[t]):
            continue
        off = abs(x[t] - m) >= hold * sigma
        if off and not expired:
            run += 1
            if run > max_hold:
                expired = True
            else:
                held[t] = True
        elif not off:
            run = 0
            expired = False
