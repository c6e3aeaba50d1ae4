"""The calibrator's quantiles read off one sort (``sorted_quantile``, ``Calibrator.train_finite``)
against the formula they replace: ``np.quantile`` for 512 levels and ``u``, on random, tied, NaN,
infinite, signed-zero and constant scores — every fitted number equal."""

from __future__ import annotations

import numpy as np
import pytest

from telewatch.postrules.calibrate import (
    TRIM_MAX_POINTS,
    TRIM_MAX_SHARE,
    TRIM_SCALES,
    Calibrator,
    sorted_quantile,
    tail_fit,
)


def reference_train(scores: np.ndarray, tail: float = 0.98, scale: str = "mean") -> dict[str, object]:
    """``Calibrator.train`` as it was written before the sort (np.quantile on the raw scores)."""
    s = np.asarray(scores, dtype="float64").ravel()
    s = s[np.isfinite(s)]
    if s.size == 0:
        s = np.zeros(1)
    levels = np.quantile(s, np.linspace(0.0, 1.0, 512))
    u = float(np.quantile(s, tail))
    excess = s[s > u] - u
    top = float(levels[-1])
    if not excess.size:
        beta = 0.0
    else:
        robust = float(np.median(excess)) / np.log(2.0)
        far = excess > TRIM_SCALES * robust if robust > 0 else np.zeros(excess.size, dtype=bool)
        if 0 < far.sum() <= max(TRIM_MAX_POINTS, TRIM_MAX_SHARE * excess.size):
            excess = excess[~far]
            top = u + float(excess.max())
        beta = robust if scale == "median" else float(excess.mean())
    spread = top - float(levels[0])
    beta = max(beta, spread * 0.01, abs(u) * 0.01, 1e-12)
    return {
        "levels_": levels,
        "n_": s.size,
        "u_": u,
        "beta_": beta,
        "degenerate_": beta <= 1e-12,
        "p_u_": max(float((s > u).mean()), 1.0 / (s.size + 1)),
    }


def cases() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    out = [
        np.abs(rng.normal(0, 1, 43_200)),  # a month of minutes
        rng.normal(5, 2, 1_000),
        np.round(np.abs(rng.normal(0, 3, 5_000))),  # many ties
        np.round(rng.exponential(1.0, 777), 1),
        np.full(300, 2.5),  # constant
        np.zeros(50),
        np.array([3.0]),
        np.array([1.0, 2.0]),
        np.array([], dtype="float64"),
        np.array([np.nan, np.nan]),
        rng.lognormal(0, 3, 2_048),  # heavy tail
    ]
    gaps = np.abs(rng.normal(0, 1, 10_000))
    gaps[rng.random(gaps.size) < 0.2] = np.nan
    gaps[5] = np.inf
    gaps[6] = -np.inf
    out.append(gaps)
    spike = np.abs(rng.normal(0, 1, 9_999))
    spike[100] = 1e6  # an isolated extreme: trimmed
    out.append(spike)
    zeros = np.where(rng.random(4_000) < 0.5, 0.0, -0.0)
    zeros[:30] = rng.random(30)
    out.append(zeros)
    tiny = 1e-300 * rng.random(600)
    out.append(tiny)
    huge = rng.choice([-1e308, 1e308, 0.0, 1.0], 1_000)
    out.append(huge)
    return out


@pytest.mark.filterwarnings("ignore:overflow encountered")  # the ±1e308 case, both formulas alike
@pytest.mark.parametrize("case", range(len(cases())))
@pytest.mark.parametrize(("tail", "scale"), [(0.98, "mean"), (0.8, "median"), (0.5, "mean")])
def test_train_equals_quantile_formula(case: int, tail: float, scale: str) -> None:
    x = cases()[case]
    want = reference_train(x, tail, scale)
    got = Calibrator(tail=tail, scale=scale).train(x)  # type: ignore[arg-type]
    np.testing.assert_array_equal(got.levels_, want["levels_"])
    for name in ("n_", "u_", "beta_", "degenerate_", "p_u_"):
        assert getattr(got, name) == want[name], name


def test_sorted_quantile_is_np_quantile() -> None:
    rng = np.random.default_rng(3)
    probs = np.concatenate([np.linspace(0.0, 1.0, 512), rng.random(200), [0.0, 0.5, 0.8, 0.98, 1.0]])
    for x in cases():
        x = x[np.isfinite(x)]
        if not x.size:
            continue
        ordered = np.sort(x)
        np.testing.assert_array_equal(sorted_quantile(ordered, probs), np.quantile(x, probs))
        for q in (0.0, 0.25, 0.8, 0.98, 0.999, 1.0):
            assert float(sorted_quantile(ordered, q)) == float(np.quantile(x, q))
    # sizes where (n - 1) * q lands on and beside integers
    for n in range(1, 60):
        x = rng.normal(0, 1, n)
        np.testing.assert_array_equal(sorted_quantile(np.sort(x), probs), np.quantile(x, probs))


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_tail_fit_is_the_calibrators_tail() -> None:
    """The tail alone (``u``, extremes in; no levels) gives the calibrator's ``beta_`` and ``p_u_``."""
    for x in cases():
        cal = Calibrator().train(x)
        s = x[np.isfinite(x)] if np.isfinite(x).any() else np.zeros(1)
        beta, p_u = tail_fit(s, float(np.quantile(s, 0.98)), float(s.min()), float(s.max()))
        assert (beta, p_u) == (cal.beta_, cal.p_u_)


def test_widen_is_the_convolution() -> None:
    from telewatch.detectors.novelty_seasonal import widen

    rng = np.random.default_rng(5)
    for n, share in [(11, 1.0), (13, 0.5), (11, 0.2), (12, 0.0), (500, 0.01), (500, 0.5), (1_000, 0.9)]:
        mask = rng.random(n) < share
        mask[0] = mask[-1] = rng.random() < 0.5  # the edges
        for pad in (0, 1, 5):
            want = np.convolve(mask.astype("int64"), np.ones(2 * pad + 1, dtype="int64"), mode="same") > 0
            np.testing.assert_array_equal(widen(mask, pad), want)


def test_sorted_quantile_from_the_top_order_statistics() -> None:
    """Given only the order statistics from ``first`` on (a partition, the top sorted): the same
    numbers as np.quantile for the quantiles up there; a clear error below."""
    rng = np.random.default_rng(9)
    probs = np.linspace(0.0, 1.0, 512)[490:]
    for x in cases():
        x = x[np.isfinite(x)]
        if x.size < 3:
            continue
        first = int(np.floor((x.size - 1) * 0.95))
        top = np.sort(np.partition(x, first)[first:])
        np.testing.assert_array_equal(sorted_quantile(top, probs, first=first), np.quantile(x, probs))
        assert float(sorted_quantile(top, 0.98, first=first)) == float(np.quantile(x, 0.98))
        with pytest.raises(ValueError, match="below the order statistics"):
            sorted_quantile(top, 0.5, first=first)
    x = rng.normal(0, 1, 10)
    assert float(sorted_quantile(np.sort(x)[9:], 1.0, first=9)) == x.max()


def test_searchsorted_never_passes_a_level_at_or_above_the_key() -> None:
    """What ``_only_tail_matters`` leans on, on sorted and unsorted levels alike: numpy's
    searchsorted gives ``i`` with ``i == 0`` or ``levels[i - 1] < key`` (its binary search only
    moves right past a level below the key, also when it starts from the previous key's answer)."""
    rng = np.random.default_rng(4)
    for _ in range(200):
        levels = np.sort(rng.normal(0, 1, rng.integers(1, 600)))
        swap = rng.integers(0, levels.size, 3)
        levels[swap] = levels[swap[::-1]] + rng.normal(0, 1e-3, 3)  # a few out of order
        keys = rng.normal(0, 1.2, 300)
        keys[::7] = np.sort(keys[::7])  # runs of rising keys: the search starts from the last answer
        at = np.searchsorted(levels, keys, side="left")
        ok = (at == 0) | (levels[np.maximum(at - 1, 0)] < keys)
        assert ok.all()
