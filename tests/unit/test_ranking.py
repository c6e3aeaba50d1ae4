"""The window scan on data with known causes."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from telewatch.core.errors import ValidationError
from telewatch.incidents.ranking import ScanConfig, ks_two_sample, rank_window, window_evidence

DAY = 1440
STEP = pd.Timedelta("1min")


def _days(n_days: int, n_metrics: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(100.0, 2.0, size=(n_metrics, n_days * DAY))


def test_planted_co_moving_metrics_rank_first_with_directions() -> None:
    x = _days(4, 8)
    w0, w1 = 3 * DAY + 600, 3 * DAY + 660
    x[2, w0:w1] -= 40.0  # falls 40 %
    x[5, w0:w1] += 25.0
    ranked = rank_window(x, w0, w1, names=[f"m{i}" for i in range(8)], step=STEP)
    assert {ranked[0].name, ranked[1].name} == {"m2", "m5"}
    by_name = {r.name: r for r in ranked}
    assert by_name["m2"].direction == "down"
    assert by_name["m5"].direction == "up"
    assert by_name["m2"].magnitude == pytest.approx(-0.40, abs=0.03)
    assert "fell 40%" in by_name["m2"].reason
    assert by_name["m2"].ks_p < 1e-6
    assert ranked[2].score < 0.2 * ranked[1].score


def test_lagged_cause_leads_the_target_by_its_lag() -> None:
    x = _days(4, 4, seed=1)
    w0, w1 = 3 * DAY + 300, 3 * DAY + 400
    x[0, w0 + 7 : w1] += 30.0  # the anomalous metric moves 7 steps after its cause
    x[1, w0:w1] += 30.0  # the cause
    x[3, w0 + 12 : w1] -= 30.0  # a consequence, 5 steps after the target
    ranked = rank_window(x, w0, w1, names=["target", "cause", "calm", "effect"], step=STEP, target=0)
    by_name = {r.name: r for r in ranked}
    assert by_name["cause"].lead_lag == 7
    assert by_name["effect"].lead_lag == -5
    assert "moved 7 min before target" in by_name["cause"].reason
    assert "after target" in by_name["effect"].reason
    assert ranked[-1].name == "calm"


def test_seasonal_metric_at_its_daily_peak_is_not_blamed() -> None:
    x = _days(4, 3, seed=2)
    t = np.arange(x.shape[1])
    x[0] += 40.0 * ((t % DAY >= 840) & (t % DAY < 1000))  # a daily batch job 14:00-16:40
    w0, w1 = 3 * DAY + 840, 3 * DAY + 900  # the window sits on the start of today's batch
    x[1, w0:w1] += 12.0  # the real change: a smaller step than the peak
    names = ["seasonal", "real", "calm"]
    ranked = rank_window(x, w0, w1, names=names, step=STEP)
    assert ranked[0].name == "real"
    assert ranked[0].baseline in {"preceding", "same_hours"}
    seasonal = next(r for r in ranked if r.name == "seasonal")
    assert seasonal.score < 0.3 * ranked[0].score
    assert seasonal.baseline == "same_hours"
    # without the same-hours baseline the daily peak would be blamed first
    naive = rank_window(x, w0, w1, names=names, step=STEP, config=ScanConfig(period=None))
    assert naive[0].name == "seasonal"


def test_ks_statistic_matches_scipy_with_nan_and_ties() -> None:
    rng = np.random.default_rng(3)
    a = np.round(rng.normal(0, 1, size=(5, 40)), 1)
    b = np.round(rng.normal(0.5, 1, size=(5, 90)), 1)
    a[0, :5] = np.nan
    b[2, 10:20] = np.nan
    d, p = ks_two_sample(a, b)
    for i in range(5):
        ref = stats.ks_2samp(a[i][~np.isnan(a[i])], b[i][~np.isnan(b[i])])
        assert d[i] == pytest.approx(ref.statistic, abs=1e-12)
        assert p[i] == pytest.approx(ref.pvalue, abs=0.05)


def test_stored_scores_add_evidence() -> None:
    x = _days(2, 3, seed=4)
    w0, w1 = DAY + 100, DAY + 130
    scores = np.zeros_like(x)
    scores[2, w0:w1] = 50.0
    plain = window_evidence(x, w0, w1)
    scored = window_evidence(x, w0, w1, scores=scores)
    assert scored.score[2] > plain.score[2] + 1.0
    assert scored.score[0] == pytest.approx(plain.score[0])


def test_scores_without_a_baseline_add_no_evidence() -> None:
    # a monitor that has just started: scores exist in the window but not before it. They cannot be
    # calibrated (the empty baseline's scale is the 1e-9 floor): no evidence, not +10 for every metric
    x = _days(2, 4, seed=5)
    w0, w1 = DAY + 100, DAY + 130
    x[3, w0:w1] += 10.0  # the one metric that really moved
    scores = np.full_like(x, np.nan)
    scores[:, w0 - 3 : w1] = 1.0  # three scored steps before the window: too few to calibrate
    scores[1, : w0 - 3] = 0.5  # metric 1 has a baseline of scores
    scores[1, w0:w1] = 3.0
    plain = window_evidence(x, w0, w1)
    scored = window_evidence(x, w0, w1, scores=scores)
    for row in (0, 2, 3):
        assert np.isnan(scored.score_excess[row])
        assert scored.score[row] == pytest.approx(plain.score[row])
    assert np.isfinite(scored.score_excess[1])
    assert scored.score[1] > plain.score[1]
    assert int(np.argmax(scored.score)) == 3


def test_missing_values_and_constant_metrics_are_handled() -> None:
    x = _days(2, 3, seed=5)
    x[0] = 7.0  # constant
    x[1, ::3] = np.nan
    w0, w1 = DAY + 200, DAY + 260
    x[1, w0:w1] += 50
    ev = window_evidence(x, w0, w1)
    assert np.all(np.isfinite(ev.score))
    assert int(np.argmax(ev.score)) == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"w0": 10, "w1": 5}, "window"),
        ({"w0": 0, "w1": 10}, "baseline"),
        ({"w0": 100, "w1": 10**6}, "window"),
        ({"w0": 100, "w1": 110, "target": 9}, "target"),
    ],
)
def test_bad_input_is_rejected_with_a_clear_error(kwargs: dict[str, int], match: str) -> None:
    x = _days(1, 3)
    with pytest.raises(ValidationError, match=match):
        window_evidence(x, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="2-D"):
        window_evidence(np.zeros(10), 1, 2)
    with pytest.raises(ValidationError, match="names"):
        rank_window(x, 100, 110, names=["a"])


def test_one_window_over_a_thousand_metrics_is_one_vectorised_pass() -> None:
    x = np.random.default_rng(6).normal(size=(1000, 4 * DAY)).astype(np.float64)
    x[17, 3 * DAY + 600 : 3 * DAY + 660] += 8.0
    t0 = time.perf_counter()
    ranked = rank_window(
        x, 3 * DAY + 600, 3 * DAY + 660, names=[str(i) for i in range(1000)], target=17, limit=5
    )
    elapsed = time.perf_counter() - t0
    assert ranked[0].name == "17"
    assert elapsed < 30  # a guard against a per-metric loop, not a benchmark (see benchmarks/)
