"""``novelty_seasonal``'s faster pieces against the formulas they replace: the combination that
looks only above the seasonal calibrator's ``u_``, the seasonal tail from the top order statistics,
and the matrix path against the per-series one where each of its branches is taken."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from telewatch.detectors.novelty_seasonal import (
    NoveltySeasonal,
    _only_tail_matters,
    combine,
    repeat_weights,
    seasonal_tail,
)
from telewatch.postrules.calibrate import Calibrator


def reference_combine(
    novelty_raw: np.ndarray, seasonal_raw: np.ndarray, cal_n: Calibrator, cal_s: Calibrator, cooldown: int
) -> np.ndarray:
    """``combine`` as it was written: every point's surprisal, weighed, in novelty's units."""
    with np.errstate(invalid="ignore", over="ignore"):
        surprisal = -cal_s.log_tail_probability(seasonal_raw)
        if cooldown > 0:
            surprisal = surprisal * repeat_weights(surprisal, int(cooldown))
        start = -np.log(cal_n.p_u_)
        as_novelty = np.where(surprisal > start, cal_n.u_ + cal_n.beta_ * (surprisal - start), -np.inf)
    return np.fmax(novelty_raw, as_novelty)


def channels(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    novelty = np.abs(rng.normal(0, 1, n)) * 0.01
    novelty[rng.random(n) < 0.03] += 1.0  # novel values: a tail of its own
    seasonal = np.abs(rng.normal(0, 1, n))
    seasonal[n // 2 : n // 2 + 30] += 12.0  # an excursion: repeats weighed down
    seasonal[n // 3] = np.inf
    gaps = rng.random(n) < 0.05
    seasonal[gaps] = np.nan
    novelty[gaps] = np.nan
    return novelty, seasonal


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n", [40, 100, 700, 5_000])
@pytest.mark.parametrize("cooldown", [0, 1, 50, 1_000])
def test_combine_equals_the_formula_over_every_point(seed: int, n: int, cooldown: int) -> None:
    """Both branches (short series: novelty's tail start is below the seasonal's empirical
    surprisals, every point is looked up; long ones: only those above ``u_``), bit for bit."""
    novelty, seasonal = channels(seed, n)
    cal_n = Calibrator().train(novelty)
    cal_s = Calibrator().train(seasonal[np.isfinite(seasonal)][: n - 3])
    want = reference_combine(novelty, seasonal, cal_n, cal_s, cooldown)
    np.testing.assert_array_equal(combine(novelty, seasonal, cal_n, cal_s, cooldown), want)


def test_both_branches_are_taken() -> None:
    short_n, short_s = channels(0, 40)
    long_n, long_s = channels(0, 5_000)
    short = Calibrator().train(short_n), Calibrator().train(short_s)
    long = Calibrator().train(long_n), Calibrator().train(long_s)
    assert not _only_tail_matters(short[1], float(-np.log(short[0].p_u_)))
    assert _only_tail_matters(long[1], float(-np.log(long[0].p_u_)))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n", [30, 300, 3_000, 43_200])
def test_seasonal_tail_is_the_calibrators_tail(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    scores = np.abs(rng.normal(0, 1, n)) if seed % 2 else np.round(rng.exponential(2.0, n))
    cal = Calibrator().train(scores)
    for start in (3.0, 3.9, 4.5, 10.0):
        got = seasonal_tail(scores, start)
        if got is None:
            continue
        assert got == (cal.u_, cal.beta_, cal.p_u_)
        assert _only_tail_matters(cal, start)  # never claimed where the full levels deny it
    if n >= 3_000:
        assert seasonal_tail(scores, 4.5) is not None


def matrix_rows(freq: str, days: int, seed: int) -> tuple[np.ndarray, pd.DatetimeIndex]:
    periods = int(pd.Timedelta(days=days) / pd.Timedelta(freq))
    idx = pd.date_range("2024-01-01", periods=periods, freq=freq, tz="UTC")
    rng = np.random.default_rng(seed)
    t = np.arange(periods) / (pd.Timedelta(days=1) / pd.Timedelta(freq))
    x = 100 + 20 * np.sin(2 * np.pi * t)[None, :] + rng.normal(0, 2, (5, periods))
    x[1, periods // 2 : periods // 2 + periods // 30] = 0.0  # an outage: novelty screened and refitted
    x[2] = np.round(x[2] / 10)  # a coarse counter
    x[3, rng.random(periods) < 0.1] = np.nan
    x[4, -periods // 10 :] -= 30  # a late drop inside the range
    return x, idx


@pytest.mark.parametrize(("freq", "days"), [("1h", 4), ("15min", 4), ("5min", 16), ("1min", 8)])
def test_matrix_rows_are_the_per_series_scores_exactly(freq: str, days: int) -> None:
    """Both paths, bit for bit; at 1-minute data over 8 days (11,520 points) the profile's medians
    over the whole history are over a sample of it."""
    x, idx = matrix_rows(freq, days, days)
    det = NoveltySeasonal(channel="profile")
    matrix = det.fit_score_matrix(x, idx)
    assert matrix is not None
    for i in range(x.shape[0]):
        s = pd.Series(x[i], index=idx)
        fitted = NoveltySeasonal(channel="profile").fit(s)
        assert fitted.seasonal_ is not None
        np.testing.assert_array_equal(matrix[i], fitted.score(s).to_numpy())


def test_quantiles_by_selection_are_np_quantile() -> None:
    from telewatch.detectors.novelty_seasonal import quantiles

    rng = np.random.default_rng(2)
    qs = np.array([0.0, 0.2, 0.5, 0.8, 0.98, 0.999, 1.0])
    for x in (
        rng.normal(0, 1, 43_200),
        np.abs(rng.normal(0, 1, 10_001)),
        np.round(rng.exponential(1.0, 5_000)),
        np.array([2.0]),
        np.array([1.0, 3.0]),
        rng.normal(0, 1, 37),
        np.full(600, 4.0),
    ):
        np.testing.assert_array_equal(quantiles(x, qs), np.quantile(x, qs))
        assert float(quantiles(x, [0.8])[0]) == float(np.quantile(x, 0.8))
