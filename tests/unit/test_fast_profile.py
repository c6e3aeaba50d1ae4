"""The daily profile's compiled pieces against the array formulas they replace, bit for bit: the
held level (``_levels``) and the channel's scores, on random residuals with gaps, excursions and
several windows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from telewatch.detectors import _daily_profile as dp


def reference_levels(fit: dp.ProfileFit, r: np.ndarray) -> np.ndarray:
    """``_levels`` as the array formula was written (cumulative sums, windows by differences)."""
    w, h = fit.window, max(fit.reach, fit.window)
    enough = max(1, w // 4)
    present = ~np.isnan(r)
    held = present & (np.abs(np.where(present, r, 0.0)) <= fit.hold * fit.scale[:, None])
    n = r.shape[1]
    c_all = np.cumsum(present, axis=1, dtype=np.int64)
    c_held = np.cumsum(held, axis=1, dtype=np.int64)
    cs_all = np.cumsum(np.where(present, r, 0.0), axis=1)
    cs_held = np.cumsum(np.where(held, r, 0.0), axis=1)

    def window(cs: np.ndarray, k: int) -> np.ndarray:
        out = np.zeros_like(cs)
        out[:, 1:] = cs[:, :-1]
        if k < n:
            out[:, k + 1 :] -= cs[:, : n - k - 1]
        return out

    n_held, n_far, n_all = window(c_held, w), window(c_held, h), window(c_all, w)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(
            n_held >= enough,
            window(cs_held, w) / np.maximum(n_held, 1),
            np.where(
                n_far >= enough,
                window(cs_held, h) / np.maximum(n_far, 1),
                np.where(n_all > 0, window(cs_all, w) / np.maximum(n_all, 1), 0.0),
            ),
        )


def residual_rows(seed: int, rows: int = 6, n: int = 3_000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    r = rng.normal(0, 1, (rows, n))
    r[0, 100:400] += 20.0  # an excursion longer than the window: the far level, then accepted
    r[1, rng.random(n) < 0.3] = np.nan  # gaps
    r[2, :50] = np.nan  # a late start
    r[3, 500:2_000] = np.nan  # a long gap
    r[4] = np.round(r[4])  # ties, exact zeros
    r[4, 0] = -0.0
    r[5, 1_000:1_050] = 1e6
    return r


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("window", "reach"), [(144, 864), (10, 10), (4, 7), (1, 1), (5_000, 6_000)])
def test_levels_and_scores_equal_the_array_formula(seed: int, window: int, reach: int) -> None:
    r = residual_rows(seed)
    scale = np.abs(np.random.default_rng(seed).normal(1, 0.3, r.shape[0])) + 0.1
    fit = dp.ProfileFit(300 * 10**9, np.zeros((r.shape[0], 288)), scale, window, 6.0, reach)
    want = reference_levels(fit, r)
    np.testing.assert_array_equal(dp._levels(fit, r), want)
    ts = (np.arange(r.shape[1]) * 60 * 10**9).astype("int64")
    z = dp.channel_scores(fit, ts, r)  # profile 0: the residuals are the values
    np.testing.assert_array_equal(z, np.abs(r - want) / scale[:, None])


def test_empty_and_all_missing_rows() -> None:
    fit = dp.ProfileFit(300 * 10**9, np.zeros((2, 288)), np.ones(2), 144, 6.0, 864)
    r = np.full((2, 50), np.nan)
    r[1, 10] = 3.0
    np.testing.assert_array_equal(dp._levels(fit, r), reference_levels(fit, r))
    empty = np.empty((2, 0))
    assert dp._levels(fit, empty).shape == (2, 0)


def reference_slot_medians(
    ts_ns: np.ndarray, x: np.ndarray, slot_ns: int, period_ns: int = dp.DAY_NS, pool: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``_slot_medians`` as it was written: a slots × width grid per row, sorted along the width."""
    n_slots = -(-period_ns // slot_ns)
    slot = dp.slots_of(ts_ns, slot_ns, period_ns)
    order = np.argsort(slot.astype(np.int32), kind="stable")
    counts = np.bincount(slot, minlength=n_slots)
    starts = np.cumsum(counts) - counts
    sorted_slot = slot[order]
    pos = np.arange(slot.size) - starts[sorted_slot]
    width = int(counts.max()) if counts.size else 0
    rows = x.shape[0]
    grid = np.full((rows, n_slots, max(width, 1)), np.nan)
    grid[:, sorted_slot, pos] = x[:, order]
    if pool > 0:
        grid = np.concatenate([np.roll(grid, k, axis=1) for k in range(-pool, pool + 1)], axis=2)
        width = grid.shape[2]
    grid.sort(axis=2)
    present = (~np.isnan(grid)).sum(axis=2)
    lo = np.maximum((present - 1) // 2, 0)
    hi = np.minimum(np.maximum(present // 2, 0), max(width, 1) - 1)
    take_lo = np.take_along_axis(grid, lo[..., None], axis=2)[..., 0]
    take_hi = np.take_along_axis(grid, hi[..., None], axis=2)[..., 0]
    with np.errstate(invalid="ignore"):
        med = np.where(present > 0, (take_lo + take_hi) / 2.0, np.nan)
        d = np.diff(grid, axis=2)
    d = np.where(d > 0, d, np.inf)
    resolution = d.min(axis=(1, 2)) if d.size else np.full(rows, np.inf)
    return med, np.where(np.isfinite(resolution), resolution, 0.0)


@pytest.mark.parametrize("pool", [0, 1, 2])
@pytest.mark.parametrize(
    ("days", "step_s", "period"), [(3, 300, dp.DAY_NS), (15, 60, dp.WEEK_NS), (2, 60, dp.DAY_NS)]
)
def test_slot_medians_equal_the_grid_formula(pool: int, days: int, step_s: int, period: int) -> None:
    rng = np.random.default_rng(pool + days)
    n = days * 86_400 // step_s
    ts = (np.arange(n) * step_s * 10**9 + 7 * 10**9).astype("int64")
    x = rng.normal(10, 2, (5, n))
    x[1, rng.random(n) < 0.4] = np.nan
    x[2] = np.round(x[2])  # ties: a resolution of 1
    x[3, : n // 2] = np.nan  # slots without points in the first days only
    x[4] = 3.0  # constant: no positive step
    want = reference_slot_medians(ts, x, 300 * 10**9, period, pool)
    got = dp._slot_medians(ts, x, 300 * 10**9, period, pool)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert got[1][2] == 1.0
    assert got[1][4] == 0.0
    no_res = dp._slot_medians(ts, x, 300 * 10**9, period, pool, resolution="none")
    np.testing.assert_array_equal(no_res[0], want[0])


def test_slot_medians_of_sparse_timestamps() -> None:
    """Slots without any timestamp (NaN medians), one point a day, an empty series."""
    ts = (np.arange(4) * dp.DAY_NS + 3_600 * 10**9).astype("int64")
    x = np.array([[1.0, 2.0, 4.0, 8.0], [np.nan] * 4])
    for pool in (0, 1):
        want = reference_slot_medians(ts, x, 300 * 10**9, pool=pool)
        got = dp._slot_medians(ts, x, 300 * 10**9, pool=pool)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    empty = dp._slot_medians(np.empty(0, dtype="int64"), np.empty((2, 0)), 300 * 10**9)
    want = reference_slot_medians(np.empty(0, dtype="int64"), np.empty((2, 0)), 300 * 10**9)
    np.testing.assert_array_equal(empty[0], want[0])
    np.testing.assert_array_equal(empty[1], want[1])


@pytest.mark.parametrize("gaps", [True, False])
@pytest.mark.parametrize(("days", "step_s"), [(4, 300), (16, 60), (3, 3_600), (15, 300)])
def test_fit_and_scores_equal_the_array_formulas(days: int, step_s: int, gaps: bool) -> None:
    """The fit (profile, weekly profile, scale) and the scores equal those of the array code, on
    rows with and without a daily or weekly cycle, an outage, a coarse counter (its resolution is
    the scale's floor), a constant, a flat noisy row, a sparse one; with gaps in the matrix and
    without. Past 8,192 points (16 days of 1-minute data) the medians over the whole history are
    over a sample of it (``reference_whole``)."""
    rng = np.random.default_rng(days)
    n = days * 86_400 // step_s
    ts = (np.arange(n) * step_s * 10**9).astype("int64")
    t = np.arange(n) * step_s / 86_400
    x = 100 + 10 * np.sin(2 * np.pi * t)[None, :] + rng.normal(0, 1, (10, n))
    x[1] = 50 + rng.normal(0, 1, n)  # no daily cycle: a flat profile
    x[2, n // 3 : n // 3 + n // 20] -= 40  # an outage
    x[4] = np.round(x[4] / 5)  # a coarse counter
    x[5] += 5 * (np.floor(t) % 7 >= 5)  # weekends
    x[6] = 7.0  # constant
    x[7] = np.round(rng.normal(0, 0.3, n))  # mostly zeros: ties, an odd and even count of them
    x[8] = 1e-3 * rng.normal(0, 1, n) + 1e6  # tiny noise on a large value: the floor of |centre|
    if gaps:
        x[3, rng.random(n) < 0.2] = np.nan
        x[5, : n // 4] = np.nan
        x[9, rng.random(n) < 0.9] = np.nan  # sparse: its medians over all of its points
    want_fit = reference_fit_profile(ts, x, step_ns=step_s * 10**9)
    fit = dp.fit_profile(ts, x, step_ns=step_s * 10**9)
    np.testing.assert_array_equal(fit.profile, want_fit.profile)
    np.testing.assert_array_equal(fit.scale, want_fit.scale)
    assert (fit.weekly is None) == (want_fit.weekly is None)
    if fit.weekly is not None:
        np.testing.assert_array_equal(fit.weekly, want_fit.weekly)
    r = dp.residuals(want_fit, ts, x)
    want = np.abs(r - reference_levels(want_fit, r)) / want_fit.scale[:, None]
    np.testing.assert_array_equal(dp.channel_scores(fit, ts, x, cap=False), want)
    # the habits: what each time of day reached on two training days, and the scores capped there
    want_habit = reference_habits(ts, dp.residuals(fit, ts, x), fit.slot_ns)
    assert (fit.habit is None) == (want_habit is None)
    if fit.habit is not None:
        np.testing.assert_allclose(fit.habit, want_habit, rtol=1e-12, atol=1e-12)
        r_fit = dp.residuals(fit, ts, x)
        lo = fit.habit[:, 0, :][:, dp.slots_of(ts, fit.slot_ns)]
        hi = fit.habit[:, 1, :][:, dp.slots_of(ts, fit.slot_ns)]
        with np.errstate(invalid="ignore"):
            inside = (r_fit >= lo) & (r_fit <= hi)
        assert inside.any()
        capped = np.where(inside, np.minimum(want, dp.HABIT_CAP), want)
        np.testing.assert_array_equal(dp.channel_scores(fit, ts, x), capped)
    # the floor: the counter's resolution (1 / 5 of the value's unit) is what holds its scale up
    assert fit.scale[4] >= 1.0


def reference_habits(ts: np.ndarray, r: np.ndarray, slot_ns: int) -> np.ndarray | None:
    """:func:`dp.habits` by loops: over the last ``HABIT_WINDOW_DAYS`` days, per row and slot, each
    day's extreme over the slots within ``HABIT_MINUTES`` (of the day before or after across
    midnight), then the
    ``HABIT_DAYS``-th most extreme of the days, widened by ``HABIT_MARGIN`` of itself."""
    keep = ts // dp.DAY_NS >= ts[-1] // dp.DAY_NS - (dp.HABIT_WINDOW_DAYS - 1)  # the last week
    ts, r = ts[keep], r[:, keep]
    day = ts // dp.DAY_NS
    days = int(day[-1] - day[0] + 1)
    if days < dp.HABIT_MIN_DAYS:
        return None
    n_slots = -(-dp.DAY_NS // slot_ns)
    k = max(1, -(-dp.HABIT_MINUTES * 60 * 10**9 // slot_ns))
    slot = (ts % dp.DAY_NS) // slot_ns
    out = np.full((r.shape[0], 2, n_slots), np.nan)
    for i in range(r.shape[0]):
        lows = np.full((days, n_slots), np.nan)
        highs = np.full((days, n_slots), np.nan)
        at = (day - day[0]) * n_slots + slot  # the points' slots counted from the first day's 00:00
        for d in range(days):
            for sl in range(n_slots):
                v = r[i, np.abs(at - (d * n_slots + sl)) <= k]  # the same hour across midnight
                v = v[~np.isnan(v)]
                if v.size:
                    lows[d, sl], highs[d, sl] = v.min(), v.max()
        for sl in range(n_slots):
            lo, hi = np.sort(lows[~np.isnan(lows[:, sl]), sl]), np.sort(highs[~np.isnan(highs[:, sl]), sl])
            if lo.size >= dp.HABIT_DAYS:
                low, high = lo[dp.HABIT_DAYS - 1], hi[-dp.HABIT_DAYS]
                out[i, 0, sl] = low - dp.HABIT_MARGIN * max(-low, 0.0)
                out[i, 1, sl] = high + dp.HABIT_MARGIN * max(high, 0.0)
    return out


# -- fit_profile and its helpers as the array code wrote them (before the compiled passes) --
def reference_robust_sigma(r: np.ndarray) -> np.ndarray:
    """Per row: median of |r| (NaN left out) × 1.4826; 0 for a row without values."""
    a = np.abs(r)
    if not np.isnan(a).any():
        return np.median(a, axis=1) * dp.MAD_TO_SIGMA if a.shape[1] else np.zeros(a.shape[0])
    a = np.sort(a, axis=1)  # NaN last
    c = (~np.isnan(a)).sum(axis=1)
    lo = np.maximum((c - 1) // 2, 0)
    hi = np.minimum(np.maximum(c // 2, 0), max(a.shape[1] - 1, 0))
    rows = np.arange(a.shape[0])
    out = (a[rows, lo] + a[rows, hi]) / 2.0 * dp.MAD_TO_SIGMA if a.shape[1] else np.zeros(a.shape[0])
    return np.where(c > 0, out, 0.0)


def reference_fit_profile(
    ts_ns: np.ndarray,
    x: np.ndarray,
    *,
    step_ns: int,
    window: int = dp.WINDOW,
    hold: float = dp.HOLD,
    max_hold_ns: int = dp.MAX_HOLD_NS,
    min_scale: float = dp.MIN_SCALE,
    pool_slots: int | None = None,
    min_cycle: float = dp.MIN_CYCLE,
) -> dp.ProfileFit:
    """Fit the channel on each row of ``x`` (series × time, NaN for missing), all at ``ts_ns``."""
    x = np.atleast_2d(np.asarray(x, dtype="float64"))
    slot_ns = dp.slot_ns_for(step_ns)
    # a slot's median over fewer than dp.POOL_BELOW timestamps (5-minute data, 3 days: 3) is noisy:
    # then over it and its neighbours (decided on the timestamps alone, the same for every row)
    per_slot = np.bincount(dp.slots_of(ts_ns, slot_ns), minlength=-(-dp.DAY_NS // slot_ns))
    typical = float(np.median(per_slot)) if per_slot.size else 0.0
    pool = pool_slots if pool_slots is not None else (1 if typical < dp.POOL_BELOW else 0)
    med, resolution = reference_slot_medians(ts_ns, x, slot_ns, pool=pool)
    missing = np.isnan(med)
    if missing.any():  # a slot never seen: the median of the others (0 when none)
        fill = np.zeros(med.shape[0])
        some = ~missing.all(axis=1)
        if some.any():
            fill[some] = np.nanmedian(med[some], axis=1)
        med = np.where(missing, fill[:, None], med)
    slot = dp.slots_of(ts_ns, slot_ns)
    r = x - med[:, slot]
    # the values' own centre (their median) and spread about it, for the floor of the scale
    centre = reference_whole(reference_median_rows, x)
    # no daily cycle to speak of (the profile's spread below the noise around it): a flat profile,
    # the series' median — the channel is then a held robust level, and the profile's noise (the
    # medians of a few points per slot) does not become the baseline
    weak = reference_robust_sigma(med - reference_median_rows(med)[:, None]) < min_cycle * reference_whole(
        reference_robust_sigma, r
    )
    if weak.any():
        med[weak] = centre[weak][:, None]
        r[weak] = x[weak] - med[weak][:, slot]
    weekly = reference_weekly(ts_ns, r, slot_ns)
    if weekly is not None:
        w_of = weekly[:, dp.slots_of(ts_ns, slot_ns, dp.WEEK_NS)]
        strong = ~weak & (
            reference_robust_sigma(weekly) >= min_cycle * reference_whole(reference_robust_sigma, r - w_of)
        )
        weekly[~strong] = 0.0
        r = r - np.where(strong[:, None], w_of, 0.0)
        if not strong.any():
            weekly = None
    spread = reference_whole(reference_robust_sigma, x - centre[:, None])
    floor = np.maximum.reduce(
        [min_scale * spread, min_scale / 10 * np.abs(centre), resolution, np.full(x.shape[0], 1e-9)]
    )
    scale0 = np.maximum(reference_whole(reference_robust_sigma, r), floor)
    reach = int(window) + int(max_hold_ns // max(int(step_ns), 1))
    first = dp.ProfileFit(slot_ns, med, scale0, int(window), float(hold), reach, weekly)
    resid = r - reference_levels(first, r)
    scale = np.maximum(reference_whole(reference_robust_sigma, resid), floor)
    return dp.ProfileFit(slot_ns, med, scale, int(window), float(hold), reach, weekly)


def reference_whole(f: Any, a: np.ndarray) -> np.ndarray:
    """``f`` (a per-row median) over the whole history as the fit takes it: a row of more than
    8,192 points over 8,192 of them, those at ``j * n // 8192``, unless fewer than 2,048 of those
    are present (then all of them); row by row."""
    n = a.shape[1]
    out = np.empty(a.shape[0])
    for i in range(a.shape[0]):
        row = a[i : i + 1]
        if n > 8_192:
            sample = row[:, [j * n // 8_192 for j in range(8_192)]]
            if (~np.isnan(sample)).sum() >= 2_048:
                row = sample
        out[i] = f(row)[0]
    return out


def reference_weekly(ts_ns: np.ndarray, r: np.ndarray, slot_ns: int) -> np.ndarray | None:
    """Per row, the weekly profile of the daily profile's residuals ``r`` (medians per slot of the
    week, centred on their median; 0 for a slot without points) where the row's training data spans
    :data:`dp.WEEKLY_DAYS` days, zeros elsewhere; ``None`` when no row does."""
    present = ~np.isnan(r)
    any_present = present.any(axis=1)
    first = np.where(any_present, ts_ns[np.argmax(present, axis=1)], 0)
    last = np.where(any_present, ts_ns[r.shape[1] - 1 - np.argmax(present[:, ::-1], axis=1)], 0)
    long = any_present & (last - first >= dp.WEEKLY_DAYS * dp.DAY_NS)
    per_slot = np.bincount(dp.slots_of(ts_ns, slot_ns, dp.WEEK_NS), minlength=-(-dp.WEEK_NS // slot_ns))
    if not long.any() or float(np.median(per_slot)) < dp.WEEKLY_MIN_POINTS:
        return None
    med, _ = reference_slot_medians(ts_ns, r[long], slot_ns, dp.WEEK_NS)
    centre = np.nanmedian(med, axis=1)
    med = np.where(np.isnan(med), 0.0, med - centre[:, None])
    out = np.zeros((r.shape[0], med.shape[1]))
    out[long] = med
    return out


def reference_median_rows(x: np.ndarray) -> np.ndarray:
    if not np.isnan(x).any():
        return np.median(x, axis=1) if x.shape[1] else np.zeros(x.shape[0])
    out = np.zeros(x.shape[0])
    some = ~np.isnan(x).all(axis=1)
    if some.any():
        out[some] = np.nanmedian(x[some], axis=1)
    return out


def median_cases() -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    split = np.concatenate([np.full(700, 1.0), np.full(700, 2.0)])  # the two middle ones apart
    near = np.concatenate([np.full(700, 1.0), np.full(700, np.nextafter(1.0, 2.0))])
    signs = np.concatenate([-np.abs(rng.normal(0, 1, 600)), np.abs(rng.normal(0, 1, 600))])
    zeros = np.where(rng.random(1_001) < 0.5, 0.0, -0.0)
    decoy = rng.normal(0, 1, 43_200)
    decoy[:: 43_200 // 512] = 1e9  # the sample the band is drawn from: all far off (the whole row)
    mostly_zero = np.zeros(43_200)  # novelty's scores without its tie-breaker
    mostly_zero[rng.choice(43_200, 60, replace=False)] = rng.random(60) + 0.5
    signed_zeros = np.where(rng.random(20_000) < 0.5, 0.0, -0.0)  # a tie of both zeros
    signed_zeros[:50] = 1.0
    held = rng.normal(0, 1, 10_000)  # a tie over the middle, values either side
    held[rng.random(10_000) < 0.4] = 0.25
    return [
        mostly_zero,
        signed_zeros,
        held,
        -held,
        decoy,
        -decoy,
        rng.normal(0, 1, 4_096),
        np.sort(rng.normal(0, 1, 10_000)),  # the sample in order
        rng.normal(0, 1, 43_200),
        rng.normal(0, 1, 43_199),
        rng.lognormal(0, 5, 5_000),
        np.round(rng.normal(0, 2, 4_000)),
        split,
        rng.permutation(split),
        near,
        signs,
        zeros,
        np.concatenate([rng.normal(0, 1, 999), [np.inf, -np.inf, np.inf]]),
        np.full(2_000, 3.0),
        rng.normal(0, 1, 513),
        rng.normal(0, 1, 512),
        rng.normal(0, 1, 7),
        np.array([5.0]),
    ]


@pytest.mark.parametrize("case", range(len(median_cases())))
def test_row_medians_are_numpys(case: int) -> None:
    """The compiled selection (radix passes, then Wirth's) against np.median, with and without
    NaN and absolute values: ties, two middle values in different buckets or a ulp apart, signed
    zeros, infinities, sizes either side of the radix pass's 512, a tie over the middle ranks
    (found without a selection)."""
    x = median_cases()[case]
    got = dp._row_medians(x[None, :], absolute=False, halve_odd=False)[0]
    assert got == np.median(x)
    got_abs = dp._row_medians(x[None, :], absolute=True, halve_odd=False)[0]
    assert got_abs == np.median(np.abs(x))
    holes = x.copy()
    holes[1::3] = np.nan
    assert dp._row_medians(holes[None, :], absolute=False, halve_odd=False)[0] == np.nanmedian(holes)
    assert dp._robust_sigma(holes[None, :])[0] == reference_robust_sigma(holes[None, :])[0]
    assert dp._robust_sigma(x[None, :])[0] == reference_robust_sigma(x[None, :])[0]


@pytest.mark.parametrize("case", range(len(median_cases())))
def test_order_pairs_are_the_sorted_values(case: int) -> None:
    """``order_pair`` (the selection with a rank) against a sort, at ranks across the row."""
    x = median_cases()[case]
    x = x[~np.isnan(x)]
    if x.size < 2:
        return
    ordered = np.sort(x)
    for k in sorted(
        {min(k, x.size - 2) for k in (0, 1, x.size // 5, x.size // 2, (x.size * 98) // 100, x.size - 2)}
    ):
        lo, hi = dp.order_pair(x, k)
        assert (lo, hi) == (ordered[k], ordered[k + 1])
