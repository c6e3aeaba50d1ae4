"""Rolling-origin splits and threshold choice."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from telewatch.bench.cv import choose_threshold, cross_validate_threshold, rolling_origin_splits
from telewatch.core.errors import ValidationError


@given(
    n=st.integers(2, 3000),
    n_splits=st.integers(1, 10),
    min_train=st.integers(1, 500),
    horizon=st.integers(1, 300),
    gap=st.integers(0, 50),
    expanding=st.booleans(),
)
def test_splits_never_look_ahead(
    n: int, n_splits: int, min_train: int, horizon: int, gap: int, expanding: bool
) -> None:
    assume(n - n_splits * horizon - gap >= min_train)
    splits = rolling_origin_splits(
        n, n_splits=n_splits, min_train=min_train, horizon=horizon, gap=gap, expanding=expanding
    )
    assert len(splits) == n_splits
    prev_test_stop = None
    for train, test in splits:
        tr, te = np.arange(n)[train], np.arange(n)[test]
        assert tr.size >= min_train
        assert te.size == horizon
        assert tr.max() < te.min()  # every test index > every train index
        assert te.min() - tr.max() == gap + 1
        if not expanding:
            assert tr.size == min_train
        else:
            assert tr.min() == 0
        if prev_test_stop is not None:
            assert te.min() == prev_test_stop  # test windows tile forward in time
        prev_test_stop = te.max() + 1
    assert prev_test_stop == n


def test_splits_that_do_not_fit_are_refused() -> None:
    with pytest.raises(ValidationError):
        rolling_origin_splits(100, n_splits=5, min_train=60, horizon=10)
    with pytest.raises(ValidationError):
        rolling_origin_splits(100, n_splits=0, min_train=10, horizon=10)
    with pytest.raises(ValidationError):
        rolling_origin_splits(100, n_splits=2, min_train=10, horizon=10, gap=-1)


def test_quantile_threshold() -> None:
    assert choose_threshold(np.arange(101.0), "quantile", q=0.9) == pytest.approx(90.0)
    assert choose_threshold([1.0, np.nan, 3.0], q=0.5) == pytest.approx(2.0)
    with pytest.raises(ValidationError):
        choose_threshold([np.nan])
    with pytest.raises(ValidationError):
        choose_threshold([1.0, 2.0], "median")  # type: ignore[arg-type]


def test_pot_threshold_sane_on_exponential_data() -> None:
    x = np.random.default_rng(42).exponential(scale=2.0, size=50_000)
    for risk in (1e-3, 1e-4):
        level = choose_threshold(x, "pot", risk=risk)
        exact = -2.0 * np.log(risk)  # P(X > t) = exp(-t / 2)
        assert level == pytest.approx(exact, rel=0.1)
        assert level > np.quantile(x, 0.98)


def test_pot_falls_back_to_quantile_when_it_cannot_fit() -> None:
    x = np.zeros(1000)
    x[:3] = 1.0  # three distinct peaks: too few to fit a tail
    with pytest.warns(UserWarning, match="quantile"):
        level = choose_threshold(x, "pot", q=0.999)
    assert level == pytest.approx(np.quantile(x, 0.999))


def test_cross_validation_picks_on_train_and_reports_test() -> None:
    rng = np.random.default_rng(7)
    n = 6000
    labels = np.zeros(n, dtype=int)
    for start in range(250, n, 600):
        labels[start : start + 20] = 1
    scores = rng.normal(size=n) + 5.0 * labels
    splits = rolling_origin_splits(n, n_splits=3, min_train=2000, horizon=1000, gap=10)
    cv = cross_validate_threshold(scores, labels, splits)
    assert len(cv.folds) == 3
    for fold in cv.folds:
        assert fold.train_rows[1] + 10 == fold.test_rows[0]
        assert 1.0 < fold.threshold < 5.0
        assert fold.test.kind == "composite"
    assert cv.pooled.recall == 1.0
    assert cv.pooled.f1 > 0.8
    assert cv.mean_test_f1 == pytest.approx(np.mean([f.test.f1 for f in cv.folds]))
    # the chosen thresholds never see the test folds' labels
    scrambled = labels.copy()
    scrambled[4000:] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cv2 = cross_validate_threshold(scores, scrambled, splits)
    assert cv2.folds[0].threshold == cv.folds[0].threshold
    assert cv2.folds[1].threshold == cv.folds[1].threshold
