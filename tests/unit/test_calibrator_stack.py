"""``CalibratorStack`` / ``calibrate_many`` (a tick's scores of a whole detector group calibrated at
once) give exactly the z's of one ``Calibrator`` call per series, NaN and ±inf included."""

from __future__ import annotations

import numpy as np
import pytest

from telewatch.core.errors import NotFoundError, ValidationError
from telewatch.postrules.calibrate import Calibrator, CalibratorStack, calibrate_many


def _calibrators(rng: np.random.Generator, n: int) -> list[Calibrator]:
    out = []
    for k in range(n):
        kind = k % 6
        if kind == 0:
            cal = Calibrator().train(np.abs(rng.normal(0, 1 + k % 7, 1500)))
        elif kind == 1:
            cal = Calibrator(scale="median", tail=0.9).train(rng.exponential(2.0, 400))
        elif kind == 2:
            cal = Calibrator().train(np.full(200, float(k % 5)))  # degenerate: constant scores
        elif kind == 3:  # a spike among near-constant scores (trimmed tail)
            cal = Calibrator().train(np.concatenate([rng.normal(0, 0.001, 900), [5.0, 7.0]]))
        elif kind == 4:  # fewer quantile levels than the others: rows of different sizes
            cal = Calibrator(quantiles=100).train(rng.gamma(2.0, 1.5, 800))
        else:  # novelty-like: many ties at 0, a few large scores, NaN among the training scores
            s = np.where(rng.random(1000) < 0.97, rng.random(1000) * 0.01, 1 + rng.random(1000))
            s[::97] = np.nan
            cal = Calibrator().train(s)
        out.append(cal)
    return out


def _scores(rng: np.random.Generator, size: int) -> np.ndarray:
    x = rng.normal(0, 3, size) * rng.choice([1.0, 10.0, 1e3], size)
    x = np.where(rng.random(size) < 0.2, np.abs(x), x)
    edge = np.array([np.nan, np.inf, -np.inf, 0.0, 1e308, -1e308, 1e-300])
    pick = rng.random(size) < 0.02  # a few rows get a NaN or ±inf
    x[pick] = rng.choice(edge, int(pick.sum()))
    return x


@pytest.mark.parametrize("seed", range(4))
def test_many_equals_one_call_per_series(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cals = _calibrators(rng, 300)
    stack = CalibratorStack()
    for _tick in range(3):  # the same stack over ticks, with new points of different lengths
        sizes = rng.integers(0, 9, len(cals)) if _tick else np.full(len(cals), 5)
        scores = [_scores(rng, int(m)) for m in sizes]
        got = calibrate_many(cals, scores, stack)
        want = [cal(s) for cal, s in zip(cals, scores, strict=True)]
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            # equal bit for bit (NaN where the per-series call gives NaN)
            np.testing.assert_array_equal(g, w)
    assert any(np.isnan(w).any() for w in want)  # the NaN rows were exercised


def test_training_scores_and_levels_themselves() -> None:
    # scores equal to the levels (ties: searchsorted's left side), just above and below them, and u
    rng = np.random.default_rng(7)
    cals = _calibrators(rng, 60)
    scores = []
    for cal in cals:
        lv = cal.levels_[rng.integers(0, cal.levels_.size, 6)]
        scores.append(np.concatenate([lv, np.nextafter(lv, np.inf), np.nextafter(lv, -np.inf), [cal.u_]]))
    got = calibrate_many(cals, scores)
    for g, cal, s in zip(got, cals, scores, strict=True):
        np.testing.assert_array_equal(g, cal(s))


def test_retrained_calibrators_join_the_stack_and_old_ones_go() -> None:
    rng = np.random.default_rng(3)
    cals = _calibrators(rng, 40)
    stack = CalibratorStack(cals)
    assert len(stack) == 40
    for k in range(5):  # a few models retrained each tick: their new calibrators are appended
        for i in range(k * 8, k * 8 + 8):
            cals[i] = Calibrator().train(np.abs(rng.normal(0, 1 + i, 500)))
        scores = [_scores(rng, 4) for _ in cals]
        got = calibrate_many(cals, scores, stack)
        for g, cal, s in zip(got, cals, scores, strict=True):
            np.testing.assert_array_equal(g, cal(s))
        assert len(stack) <= 2 * len(cals)  # rebuilt once the old rows outnumber the live ones
    rows = stack.rows_of(cals)
    assert rows is not None
    assert len(set(rows.tolist())) == len(cals)  # one row each


def test_unsorted_levels_are_left_to_their_calibrator() -> None:
    rng = np.random.default_rng(5)
    cal = Calibrator().train(rng.normal(0, 1, 500))
    cal.levels_ = cal.levels_[::-1].copy()  # not a quantile function: the stack must not bisect it
    other = Calibrator().train(rng.normal(0, 1, 500))
    scores = [rng.normal(0, 1, 20), rng.normal(0, 1, 20)]
    got = calibrate_many([cal, other], scores)
    np.testing.assert_array_equal(got[0], cal(scores[0]))
    np.testing.assert_array_equal(got[1], other(scores[1]))


def test_errors_are_clear() -> None:
    with pytest.raises(NotFoundError, match="train"):
        CalibratorStack([Calibrator()])
    cal = Calibrator().train(np.arange(100.0))
    with pytest.raises(ValidationError, match="one calibrator per"):
        calibrate_many([cal], [])
    with pytest.raises(ValidationError, match="one row index per score"):
        CalibratorStack([cal]).z(np.zeros(3), np.zeros(2, dtype="int64"))
    assert calibrate_many([], []) == []
