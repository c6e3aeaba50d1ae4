"""The calibrator on clean data (the false-alarm rate z = 5 promises) and on a contaminated tail."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr

from telewatch.postrules.calibrate import Calibrator, screen_anomalies


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clean_false_alarm_rate_is_not_raised_by_the_screen(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for scores in (np.abs(rng.normal(0, 1, 50_000)), rng.exponential(1.0, 50_000)):
        assert not screen_anomalies(scores).any()  # clean: nothing left out, a single pass
        z = Calibrator().train(scores[:25_000])(scores[25_000:])
        # z >= 5 means p ~ 3e-7: on 25k fresh clean points not even one alarm is expected
        assert int((z >= 5.0).sum()) == 0
        # and z >= 2 stays near its nominal rate (not inflated)
        rate = float((z >= 2.0).mean())
        assert rate <= 3 * float(1 - ndtr(2.0))


def test_median_scale_matches_mean_on_an_exponential_tail() -> None:
    scores = np.random.default_rng(4).exponential(2.0, 200_000)
    mean, median = Calibrator().train(scores), Calibrator(scale="median").train(scores)
    assert median.beta_ == pytest.approx(mean.beta_, rel=0.05)
    assert mean.beta_ == pytest.approx(2.0, rel=0.05)


def test_contaminated_tail_no_longer_calibrates_an_incident_away() -> None:
    rng = np.random.default_rng(5)
    scores = np.abs(rng.normal(0, 1, 20_000))
    scores[12_000:12_200] = rng.uniform(20, 40, 200)  # a 200-point incident: half the tail sample
    naive = Calibrator().train(scores)(scores)
    assert np.median(naive[12_000:12_200]) < 5.0  # the failure: the mean excess is the incident's
    mask = screen_anomalies(scores)
    assert mask[12_000:12_200].all()
    assert mask.sum() <= 200 + 10  # the incident and its padding, nothing of the clean part
    robust = Calibrator().train(scores[~mask])(scores)
    assert (robust[12_000:12_200] >= 5.0).all()
    assert int((robust[~mask] >= 5.0).sum()) == 0


def test_median_scale_is_robust_where_the_mean_is_not() -> None:
    rng = np.random.default_rng(6)
    scores = rng.exponential(1.0, 20_000)
    scores[:150] = 60.0
    assert Calibrator(scale="median").train(scores).beta_ < 3.0 < Calibrator().train(scores).beta_


def test_screen_ignores_nan_and_validates() -> None:
    scores = np.abs(np.random.default_rng(7).normal(0, 1, 5_000))
    scores[:10] = np.nan
    assert not screen_anomalies(scores)[:10].any()
    assert not screen_anomalies(np.full(5, np.nan)).any()
    with pytest.raises(ValueError, match="scale"):
        Calibrator(scale="max")  # type: ignore[arg-type]
