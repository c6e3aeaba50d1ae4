"""One conformance suite run over every registered detector (univariate and multivariate).

Each case is tiny so the whole suite stays fast; slow models are built with their class attribute
``test_params`` (small networks, few trees) when they define one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from telewatch.core.errors import ValidationError
from telewatch.detectors import Detector, available_detectors
from telewatch.detectors.base import NotFittedError
from telewatch.detectors.multivariate import (
    MultivariateDetector,
    available_multivariate_detectors,
)
from telewatch.services.tick_state import utc_ns

UNIVARIATE = sorted(available_detectors())
MULTIVARIATE = sorted(available_multivariate_detectors())
N = 720
SPIKES = (500, 560, 640)


def make(name: str, extra: dict[str, Any] | None = None) -> Detector:
    cls = available_detectors()[name]
    params: dict[str, Any] = dict(getattr(cls, "test_params", {}) or {})
    params.update(extra or {})
    return cls(**params)


def make_mv(name: str) -> MultivariateDetector:
    cls = available_multivariate_detectors()[name]
    return cls(**dict(cls.test_params))


def series(n: int = N, seed: int = 0, start: str = "2024-01-01") -> pd.Series:
    idx = pd.date_range(start, periods=n, freq="1min", tz="UTC")
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return pd.Series(10 + 2 * np.sin(2 * np.pi * t / 120) + rng.normal(0, 0.2, n), index=idx, name="m")


def frame(n: int = N, seed: int = 0) -> pd.DataFrame:
    base = series(n, seed)
    rng = np.random.default_rng(seed + 1)
    return pd.DataFrame(
        {
            "cpu": base.to_numpy(),
            "load": 0.5 * base.to_numpy() + rng.normal(0, 0.1, n),
            "net": rng.normal(100, 5, n),
        },
        index=base.index,
    )


def assert_finite_after_warmup(scores: pd.Series) -> None:
    """Scores of present values are finite, except NaN during a leading warm-up (at most half)."""
    values = scores.to_numpy()
    assert not np.isinf(values).any()
    finite = np.isfinite(values)
    if values.size >= 10:
        first = int(np.argmax(finite)) if finite.any() else values.size
        assert first <= values.size // 2, f"no score for the first {first} of {values.size} points"
        assert finite[first:].all()


def assert_same(a: pd.Series, b: pd.Series) -> None:
    pd.testing.assert_index_equal(a.index, b.index)
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-6, atol=1e-9, equal_nan=True)


# -- univariate ------------------------------------------------------------------------------------
@pytest.fixture(params=UNIVARIATE)
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_registry_is_not_empty() -> None:
    assert {"isolation_forest", "ocsvm", "lstm_ae", "aer"} <= set(UNIVARIATE)
    assert {"mv_robust_z", "mv_pca", "mv_ensemble"} <= set(MULTIVARIATE)


def test_clone_is_unfitted_with_same_params(name: str) -> None:
    det = make(name).fit(series())
    twin = det.clone()
    assert type(twin) is type(det)
    assert twin is not det
    assert twin.get_params() == det.get_params()
    assert not getattr(twin, "fitted_", False)
    with pytest.raises(NotFittedError):
        twin.score(series())


def test_save_load_round_trip(name: str) -> None:
    s = series()
    det = make(name).fit(s.iloc[:400])
    back = Detector.loads(det.dumps())
    assert type(back) is type(det)
    assert_same(det.score(s.iloc[400:], context=s.iloc[:400]), back.score(s.iloc[400:], context=s.iloc[:400]))


def test_missing_values_in_nan_out(name: str) -> None:
    s = series()
    s.iloc[[100, 101, 300, 650]] = np.nan
    det = make(name).fit(s)
    scores = det.score(s)
    assert scores.index.equals(s.index)
    assert scores.iloc[[100, 101, 300, 650]].isna().all()
    rest = scores.drop(scores.index[[100, 101, 300, 650]])
    assert_finite_after_warmup(rest)


def test_very_short_series(name: str) -> None:
    for n in (1, 3):
        s = series(n)
        scores = make(name).fit(s).score(s)
        assert len(scores) == n
        assert scores.index.equals(s.index)
        assert not np.isinf(scores.to_numpy()).any()
    empty = series(3).iloc[:0]
    assert len(make(name).fit(series(50)).score(empty)) == 0


def test_constant_series_scores_are_finite(name: str) -> None:
    s = pd.Series(5.0, index=series().index)
    scores = make(name).fit(s).score(s)
    assert_finite_after_warmup(scores)


def test_irregular_timestamps(name: str) -> None:
    s = series()
    keep = np.sort(np.random.default_rng(3).choice(N, 500, replace=False))
    irregular = s.iloc[keep]
    scores = make(name).fit(irregular).score(irregular)
    assert scores.index.equals(irregular.index)
    assert_finite_after_warmup(scores)


def test_no_look_ahead(name: str) -> None:
    s = series()
    det = make(name).fit(s.iloc[:400])
    full = det.score(s)
    for k in (1, 150, 401, 650):
        assert_same(full.iloc[:k], det.score(s.iloc[:k]))
    test = s.iloc[400:]
    with_ctx = det.score(test, context=s.iloc[:400])
    assert_same(with_ctx, full.iloc[400:])
    for k in (1, 60, 200):
        assert_same(with_ctx.iloc[:k], det.score(test.iloc[:k], context=s.iloc[:400]))


def test_declared_context_is_enough(name: str) -> None:
    """A detector that declares its reach (``context_points() = k``) scores new points from the last
    ``k`` points exactly as from the whole past: streaming ticks keep only that much."""
    s = series()
    s.iloc[[450, 451, 600]] = np.nan
    det = make(name).fit(s.iloc[:400])
    k = det.context_points()
    if k is None:  # unbounded: ticks keep a day of context, nothing to check
        return
    assert k >= 0
    full = det.score(s)
    for cut in (400, 455, 610):
        past, new = s.iloc[:cut], s.iloc[cut : cut + 50]
        short = det.score(new, context=past.iloc[max(0, len(past) - k) :] if k else past.iloc[:0])
        assert_same(short, full.iloc[cut : cut + 50])


def test_planted_spikes_score_higher_than_elsewhere(name: str) -> None:
    s = series()
    s.iloc[list(SPIKES)] += 8.0
    det = make(name).fit(s.iloc[:400])
    scores = det.score(s.iloc[400:], context=s.iloc[:400])
    at_spikes = scores.iloc[[i - 400 for i in SPIKES]]
    elsewhere = scores.drop(at_spikes.index)
    assert at_spikes.min() > elsewhere.quantile(0.95), (at_spikes.to_list(), elsewhere.quantile(0.95))


def gappy(seed: int) -> pd.Series:
    """A series with gaps: NaN runs (one longer than a tick), single NaNs, a spike."""
    s = series(seed=seed)
    for lo, hi in ((100, 106), (300, 301), (447, 456), (470, 471), (520, 523)):
        s.iloc[lo:hi] = np.nan
    s.iloc[480 + seed] += 6.0
    return s


def assert_same_scores(mine: np.ndarray, expected: np.ndarray, what: str) -> None:
    np.testing.assert_array_equal(np.isnan(mine), np.isnan(expected), err_msg=f"{what}: NaNs differ")
    np.testing.assert_allclose(mine, expected, rtol=1e-9, atol=1e-9, equal_nan=True, err_msg=what)


TICKS = (5, 1, 7, 5, 3, 5, 12, 5, 1, 5, 8, 5, 5, 2, 5, 6, 5, 4, 5, 5)  # 100 points from 430


def test_matrix_per_series_and_streaming_scores_agree(name: str) -> None:
    """The fast paths a detector implements (``fit_score_matrix``: a matrix of series, fitted and
    scored at once; ``score_contexts_at``: many series' new points after their contexts, with what
    it carries between ticks) give the scores of ``fit(s).score(s)`` / ``score(new, context=past)``,
    tick by tick, gaps included (1e-9, same NaNs)."""
    check_paths(name, [gappy(seed) for seed in range(3)], fit_until=400, start=430)


#: Detectors (and parameters) whose scores change once the training data spans days
#: (``novelty_seasonal``'s seasonal channel from 3 days): their paths are checked on series long
#: enough for that too. A shorter ``seasonal_cooldown`` makes the contexts longer than what the
#: streaming path rebuilds a carry from (the last ``cooldown`` + ``reach`` points), so that cut is
#: checked too.
LONG = [
    ("novelty_seasonal", {"channel": "profile"}),
    ("novelty_seasonal", {"channel": "baseline"}),
    ("novelty_seasonal", {"channel": "profile", "seasonal_cooldown": 300}),
]


def long_gappy(seed: int) -> pd.Series:
    """Five days of 5-minute points with a daily cycle, gaps, a drop inside the range and a spike."""
    idx = pd.date_range("2024-01-01", periods=5 * 288, freq="5min", tz="UTC")
    rng = np.random.default_rng(seed)
    t = np.arange(idx.size)
    s = pd.Series(100 + 30 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 2, idx.size), index=idx, name="m")
    for lo, hi in ((200, 230), (700, 701), (1160, 1166), (1190, 1191)):
        s.iloc[lo:hi] = np.nan
    s.iloc[1170 + seed : 1200 + seed] -= 40.0  # inside the range, off the profile
    s.iloc[1230 + seed] += 80.0
    return s


@pytest.mark.parametrize(("long_name", "params"), LONG)
def test_paths_agree_with_the_seasonal_channel_on(long_name: str, params: dict[str, Any]) -> None:
    rows = [long_gappy(seed) for seed in range(3)]
    models = check_paths(long_name, rows, fit_until=4 * 288 + 10, start=1150, params=params)
    assert all(getattr(m, "seasonal_", None) is not None for m in models)


def check_paths(
    name: str, rows: list[pd.Series], *, fit_until: int, start: int, params: dict[str, Any] | None = None
) -> list[Detector]:
    """Matrix == per series, and per series == streaming over :data:`TICKS` from ``start``, for
    models fitted on each row's first ``fit_until`` points (``params`` over the test defaults);
    returns those models."""

    # matrix == per series
    matrix = make(name, params).fit_score_matrix(
        np.stack([s.to_numpy() for s in rows]), pd.DatetimeIndex(rows[0].index)
    )
    if matrix is not None:
        assert matrix.shape == (len(rows), len(rows[0]))
        for i, s in enumerate(rows):
            assert_same_scores(matrix[i], make(name, params).fit(s).score(s).to_numpy(), f"matrix row {i}")
    # per series == streaming, tick by tick (score with context=), and through score_contexts
    models = [make(name, params).fit(s.iloc[:fit_until]) for s in rows]
    k = models[0].context_points()
    full = [
        m.score(s.iloc[start:], context=s.iloc[:start]).to_numpy() for m, s in zip(models, rows, strict=True)
    ]
    cls = type(models[0])
    carries: list[dict[str, np.ndarray]] = [{} for _ in rows]
    at = start
    for tick, size in enumerate(TICKS):
        if tick == 10:  # a restart: nothing carried, rebuilt from the contexts
            carries = [{} for _ in rows]
        ticked, contexts, context_times = [], [], []
        for m, s in zip(models, rows, strict=True):
            past = s.iloc[:at] if k is None else s.iloc[max(0, at - k) : at]
            ticked.append(m.score(s.iloc[at : at + size], context=past).to_numpy())
            contexts.append(past.to_numpy())
            context_times.append(utc_ns(past.index))
        window = slice(at - start, at - start + size)
        for i in range(len(rows)):
            assert_same_scores(ticked[i], full[i][window], f"row {i}, tick {tick}, score(context=)")
        together = cls.score_contexts_at(
            models,
            contexts,
            np.stack([s.iloc[at : at + size].to_numpy() for s in rows]),
            carries,
            context_times=context_times,
            new_times=np.stack([utc_ns(s.index[at : at + size]) for s in rows]),
        )
        if together is not None:
            assert together.shape == (len(rows), size)
            for i in range(len(rows)):
                assert_same_scores(together[i], full[i][window], f"row {i}, tick {tick}, score_contexts")
        at += size
    assert at == start + sum(TICKS)
    return models


def test_bad_input_is_a_clear_error(name: str) -> None:
    with pytest.raises(ValidationError, match="timestamps"):
        make(name).fit(pd.Series([1.0, 2.0]))


# -- multivariate ----------------------------------------------------------------------------------
@pytest.fixture(params=MULTIVARIATE)
def mv_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_mv_clone_and_round_trip(mv_name: str) -> None:
    f = frame()
    det = make_mv(mv_name).fit(f.iloc[:400])
    twin = det.clone()
    assert twin.get_params() == det.get_params()
    assert not getattr(twin, "fitted_", False)
    with pytest.raises(NotFittedError):
        twin.score(f)
    back = MultivariateDetector.loads(det.dumps())
    assert_same(det.score(f), back.score(f))
    with pytest.raises(ValidationError):
        MultivariateDetector.loads(make("robust_z").dumps())


def test_mv_contributions_are_non_negative_and_sum_to_score(mv_name: str) -> None:
    f = frame()
    det = make_mv(mv_name).fit(f.iloc[:400])
    score, contrib = det.score_with_contributions(f.iloc[400:], context=f.iloc[:400])
    assert list(contrib.columns) == list(f.columns)
    assert contrib.index.equals(score.index)
    assert (contrib.to_numpy() >= -1e-12).all()
    np.testing.assert_allclose(contrib.sum(axis=1).to_numpy(), np.clip(score.to_numpy(), 0, None), atol=1e-9)


def test_mv_missing_values_short_constant_irregular(mv_name: str) -> None:
    f = frame()
    f.iloc[100, 0] = np.nan
    f.iloc[200, :] = np.nan
    det = make_mv(mv_name).fit(f)
    scores = det.score(f)
    assert np.isnan(scores.iloc[200])
    assert np.isfinite(scores.drop(scores.index[200]).to_numpy()).all()
    short = frame(3)
    assert len(make_mv(mv_name).fit(short).score(short)) == 3
    const = pd.DataFrame(1.0, index=f.index, columns=["a", "b"])
    assert np.isfinite(make_mv(mv_name).fit(const).score(const).to_numpy()).all()
    keep = np.sort(np.random.default_rng(3).choice(N, 500, replace=False))
    irregular = frame().iloc[keep]
    assert np.isfinite(make_mv(mv_name).fit(irregular).score(irregular).to_numpy()).all()


def test_mv_no_look_ahead(mv_name: str) -> None:
    f = frame()
    det = make_mv(mv_name).fit(f.iloc[:400])
    full = det.score(f)
    for k in (1, 150, 401, 650):
        assert_same(full.iloc[:k], det.score(f.iloc[:k]))
    with_ctx = det.score(f.iloc[400:], context=f.iloc[:400])
    assert_same(with_ctx, full.iloc[400:])
    assert_same(with_ctx.iloc[:50], det.score(f.iloc[400:450], context=f.iloc[:400]))


def test_mv_planted_spikes_and_columns(mv_name: str) -> None:
    f = frame()
    f.iloc[list(SPIKES), 2] += 60.0  # "net" jumps 12 sigma
    det = make_mv(mv_name).fit(f.iloc[:400])
    score, contrib = det.score_with_contributions(f.iloc[400:], context=f.iloc[:400])
    at = score.iloc[[i - 400 for i in SPIKES]]
    assert at.min() > score.drop(at.index).quantile(0.95)
    assert (contrib.iloc[[i - 400 for i in SPIKES]].idxmax(axis=1) == "net").all()
    # columns are matched by name, whatever their order; a missing metric is a clear error
    shuffled = f[["net", "cpu", "load"]]
    assert_same(det.score(shuffled), det.score(f))
    with pytest.raises(ValidationError, match="net"):
        det.score(f[["cpu", "load"]])
