"""``Calibrator.__call__`` (written for the few points of a tick) gives the values of the plain
vectorised formula it replaced, edge values included."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtri_exp

from telewatch.postrules.calibrate import DEGENERATE_Z, MAX_Z, Calibrator


def _reference(cal: Calibrator, scores: np.ndarray) -> np.ndarray:
    s = np.asarray(scores, dtype="float64")
    p = 1.0 - np.searchsorted(cal.levels_, np.nan_to_num(s), side="left") / cal.levels_.size
    with np.errstate(divide="ignore"):
        log_p = np.log(np.clip(p, 1e-300, 1.0))
    with np.errstate(over="ignore", invalid="ignore"):
        tail = np.log(cal.p_u_) - (s - cal.u_) / cal.beta_
    log_p = np.where(s > cal.u_, tail, log_p)
    log_p = np.where(np.isnan(s), np.nan, np.minimum(log_p, 0.0))
    with np.errstate(invalid="ignore", over="ignore"):
        z = -ndtri_exp(np.nan_to_num(log_p, nan=0.0, neginf=-1e300))
    z = np.clip(np.nan_to_num(z, posinf=MAX_Z), 0.0, DEGENERATE_Z if cal.degenerate_ else MAX_Z)
    return np.where(np.isnan(log_p), np.nan, z)


@pytest.mark.parametrize("seed", range(5))
def test_call_equals_the_vectorised_formula(seed: int) -> None:
    rng = np.random.default_rng(seed)
    trained = [
        Calibrator().train(np.abs(rng.normal(0, 1, 2000))),
        Calibrator(scale="median", tail=0.9).train(rng.exponential(2.0, 500)),
        Calibrator().train(np.full(300, 3.0)),  # degenerate: constant training scores
        Calibrator().train(np.concatenate([rng.normal(0, 0.001, 900), [5.0, 7.0]])),
    ]
    edge = np.array([np.nan, np.inf, -np.inf, 0.0, -1.0, 1e308, -1e308, 3.0, 1e-300, 5e5])
    for cal in trained:
        for size in (1, 3, 5, 60, 4000):
            x = rng.normal(0, 3, size) * rng.choice([1.0, 10.0, 1e6], size)
            x[rng.random(size) < 0.1] = np.nan
            finite = np.concatenate([np.nan_to_num(x), [0.0, -1.0, 1e308, -1e308, 1e-300, 5e5, 3.0]])
            for values in (x, np.concatenate([x, edge]), np.nan_to_num(x), finite):
                np.testing.assert_array_equal(cal(values), _reference(cal, values))
                np.testing.assert_array_equal(cal.log_tail_probability(values), _reference_log(cal, values))


def _reference_log(cal: Calibrator, s: np.ndarray) -> np.ndarray:
    p = 1.0 - np.searchsorted(cal.levels_, np.nan_to_num(s), side="left") / cal.levels_.size
    with np.errstate(divide="ignore"):
        log_p = np.log(np.clip(p, 1e-300, 1.0))
    with np.errstate(over="ignore", invalid="ignore"):
        tail = np.log(cal.p_u_) - (s - cal.u_) / cal.beta_
    log_p = np.where(s > cal.u_, tail, log_p)
    return np.where(np.isnan(s), np.nan, np.minimum(log_p, 0.0))


def test_a_pickled_calibrator_leaves_its_table_out_and_gives_the_same_z() -> None:
    import pickle

    cal = Calibrator().train(np.abs(np.random.default_rng(1).normal(0, 1, 1000)))
    x = np.array([0.1, 1.0, 2.5, 9.0])
    size = len(pickle.dumps(cal))
    before = cal(x)
    assert "_log_p_table" in vars(cal)
    again = pickle.loads(pickle.dumps(cal))
    assert "_log_p_table" not in vars(again)
    assert len(pickle.dumps(cal)) == size  # the table built by the call is not stored
    np.testing.assert_array_equal(again(x), before)


def test_untrained_is_a_clear_error() -> None:
    with pytest.raises(Exception, match="train"):
        Calibrator()(np.ones(3))
