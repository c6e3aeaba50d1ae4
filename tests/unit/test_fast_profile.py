"""The daily profile's compiled pieces against the array formulas they replace, bit for bit: the
held level (``_levels``) and the channel's scores, on random residuals with gaps, excursions and
several windows."""

from __future__ import annotations

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
