"""The ML, deep and multivariate detectors: anomalies caught, contributions, torch extra, SMD path."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from telewatch.core.errors import ConfigError, ValidationError
from telewatch.detectors import create_detector
from telewatch.detectors.autoencoder import import_torch
from telewatch.detectors.features import FeatureBuilder
from telewatch.detectors.multivariate import (
    MultivariateEnsemble,
    MultivariatePCA,
    MultivariateRobustZ,
    create_multivariate_detector,
    validate_frame,
)


def seasonal(days: int = 3, seed: int = 0) -> pd.Series:
    """Minute data with a daily cycle: low at night, a peak in the afternoon."""
    n = days * 1440
    idx = pd.date_range("2024-03-04", periods=n, freq="1min", tz="UTC")
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    return pd.Series(50 + 20 * np.sin(2 * np.pi * (t % 1440) / 1440) + rng.normal(0, 1, n), index=idx)


def top_hits(scores: pd.Series, planted: list[int], k: int) -> int:
    top = set(np.argsort(-np.nan_to_num(scores.to_numpy(), nan=-np.inf))[:k].tolist())
    return sum(1 for p in planted if any(abs(p - t) <= 2 for t in top))


# -- features ---------------------------------------------------------------------------------------
def test_features_are_causal_and_calendar_needs_a_full_cycle() -> None:
    s = seasonal(2)
    fb = FeatureBuilder(lags=(1, 5), windows=(10,)).fit(s)
    assert fb.names_ == ["value", "diff_1", "diff_5", "z_10", "shift_10", "tod_sin", "tod_cos"]
    full = fb.transform(s)
    np.testing.assert_allclose(full[:500], fb.transform(s.iloc[:500]))
    short = FeatureBuilder().fit(s.iloc[:600])
    assert not any(n.startswith(("tod", "dow")) for n in short.names_)
    with pytest.raises(ConfigError, match="lags"):
        FeatureBuilder(lags=(0,))
    with pytest.raises(ConfigError, match="smooth"):
        FeatureBuilder(smooth=-1)
    assert "shift_10" not in FeatureBuilder(smooth=0).fit(s).names_


@pytest.mark.parametrize(
    ("name", "params"), [("isolation_forest", {"n_estimators": 50}), ("ocsvm", {"max_train": 1500})]
)
def test_feature_models_catch_spikes_and_a_dip(name: str, params: dict[str, float]) -> None:
    s = seasonal(3)
    train, test = s.iloc[:2880], s.iloc[2880:].copy()
    planted = [200, 700, 1100]
    test.iloc[200] += 15
    test.iloc[700] -= 15
    test.iloc[1100:1105] += 12
    det = create_detector(name, **params).fit(train)
    scores = det.score(test, context=train)
    assert top_hits(scores, planted, 15) == 3
    # deterministic: a second fit gives the same scores
    again = create_detector(name, **params).fit(train).score(test, context=train)
    np.testing.assert_allclose(scores.to_numpy(), again.to_numpy())


# -- deep ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["lstm_ae", "aer"])
def test_deep_models_catch_anomalies_and_are_repeatable(name: str) -> None:
    s = seasonal(2, seed=1)
    train, test = s.iloc[:2000], s.iloc[2000:2600].copy()
    planted = [150, 400]
    test.iloc[150] += 30
    test.iloc[400] -= 30
    params = {"epochs": 2, "max_windows": 1024, "hidden": 8}
    det = create_detector(name, **params).fit(train)
    scores = det.score(test, context=train)
    assert top_hits(scores, planted, 6) == 2
    assert scores.iloc[[150, 400]].min() > scores.drop(scores.index[[150, 400]]).quantile(0.99)
    again = create_detector(name, **params).fit(train).score(test, context=train)
    np.testing.assert_allclose(scores.to_numpy(), again.to_numpy(), rtol=1e-5, atol=1e-6)


def test_missing_torch_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    with pytest.raises(ConfigError, match=r"pip install 'telewatch\[deep\]'"):
        import_torch()
    s = seasonal(1)
    with pytest.raises(ConfigError, match="telewatch"):
        create_detector("aer", epochs=1).fit(s)


def test_bad_deep_params_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="window"):
        create_detector("lstm_ae", window=1).fit(seasonal(1))


# -- multivariate -------------------------------------------------------------------------------
def group(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Requests drive cpu and bytes out; temp is independent."""
    idx = pd.date_range("2024-03-04", periods=n, freq="1min", tz="UTC")
    rng = np.random.default_rng(seed)
    req = 100 + 30 * np.sin(2 * np.pi * np.arange(n) / 720) + rng.normal(0, 2, n)
    return pd.DataFrame(
        {
            "requests": req,
            "cpu": 0.4 * req + rng.normal(0, 0.8, n),
            "bytes_out": 3.0 * req + rng.normal(0, 6, n),
            "temp": 40 + rng.normal(0, 1, n),
        },
        index=idx,
    )


def test_correlated_break_caught_by_group_model_missed_by_univariate() -> None:
    f = group()
    train, test = f.iloc[:1400], f.iloc[1400:].copy()
    # cpu decouples from requests: it stays inside its own normal range, but the pairing is broken
    brk = slice(300, 340)
    test.iloc[brk, 1] = 0.4 * (200 - test.iloc[brk, 0].to_numpy())
    lo, hi = train["cpu"].min(), train["cpu"].max()
    assert test["cpu"].iloc[brk].between(lo, hi).all()
    pca = MultivariatePCA().fit(train)
    score, contrib = pca.score_with_contributions(test, context=train)
    thr = pca.score(train).quantile(0.995)
    caught = score.iloc[brk] > thr
    assert caught.mean() > 0.5
    assert (contrib.iloc[brk][caught.to_numpy()].idxmax(axis=1) == "cpu").mean() > 0.5
    # the per-metric baseline sees each metric inside its range: it catches far less
    uni = MultivariateRobustZ().fit(train)
    uni_thr = uni.score(train).quantile(0.995)
    assert (uni.score(test, context=train).iloc[brk] > uni_thr).mean() < 0.2


def test_contributions_rank_the_broken_metrics_first() -> None:
    f = group()
    train, test = f.iloc[:1400], f.iloc[1400:].copy()
    test.iloc[100:110, 3] += 12  # temp
    test.iloc[400:410, [1, 2]] *= 1.8  # cpu and bytes_out
    for det in (MultivariateEnsemble(), MultivariateRobustZ(), MultivariatePCA()):
        det.fit(train)
        score, contrib = det.score_with_contributions(test, context=train)
        np.testing.assert_allclose(contrib.sum(axis=1), score.clip(lower=0), atol=1e-9)
        assert contrib.iloc[100:110].mean().idxmax() == "temp", det
        ranked = contrib.iloc[400:410].mean().sort_values(ascending=False).index
        if not isinstance(det, MultivariatePCA):
            # (a PCA residual smears over correlated metrics: when two of three coupled metrics move,
            # the one that did not is as inconsistent as they are, so PCA's ranking is not checked)
            assert set(ranked[:2]) == {"cpu", "bytes_out"}, det
        thr = det.score(train).quantile(0.995)
        assert (score.iloc[100:110] > thr).all(), det
        assert (score.iloc[400:410] > thr).all(), det


def test_ensemble_top_k_and_validation() -> None:
    f = group(300)
    assert MultivariateEnsemble().fit(f).k_ == 1  # 20% of 4 metrics, at least one
    assert MultivariateEnsemble(top_k=10).fit(f).k_ == 4
    with pytest.raises(ConfigError, match="window"):
        MultivariateEnsemble(window=0).fit(f)
    with pytest.raises(ConfigError, match="unknown multivariate detector"):
        create_multivariate_detector("nope")
    with pytest.raises(ValidationError, match="duplicate metric"):
        validate_frame(pd.DataFrame([[1, 2]], columns=["a", "a"], index=f.index[:1]))
    with pytest.raises(ValidationError, match="numeric"):
        validate_frame(pd.DataFrame({"a": ["x"]}, index=f.index[:1]))
    with pytest.raises(ValidationError, match="DataFrame"):
        MultivariateEnsemble().fit(f["cpu"])  # type: ignore[arg-type]


@pytest.mark.shared
def test_smd_runs_multivariate_detectors(shared_datasets: Path, tmp_path: Path) -> None:
    from telewatch.bench.smd import run_smd_benchmark

    result = run_smd_benchmark(
        data_dir=shared_datasets / "smd",
        detector="mv_ensemble",
        machines=["machine-1-6"],
        json_path=tmp_path / "smd.json",
        console=Console(file=io.StringIO()),
    )
    (m,) = result.machines
    assert result.calibration == "inside the multivariate detector"
    # machine-1-6: pooled-bar territory with train-only thresholds (measured 0.956)
    assert m.composite.f1 > 0.85
    assert 0.3 < m.hit_rate_100 <= m.hit_rate_150 <= 1.0
    assert (tmp_path / "smd.json").stat().st_size > 0


def _minute_series(seed: int, *, cycle: float, days: int = 7) -> pd.Series:
    """A week of minute data: a level of 1000 with noise sigma 20 and a daily cycle of ``cycle``
    sigmas either way (0: a flat level)."""
    rng = np.random.default_rng(seed)
    n = days * 1440
    idx = pd.date_range("2024-03-04", periods=n, freq="1min", tz="UTC")
    day = 2 * np.pi * (np.arange(n) % 1440) / 1440
    return pd.Series(1000 + 20 * cycle * np.sin(day - 2.0) + rng.normal(0, 20, n), index=idx)


#: :func:`test_feature_models_catch_a_6_sigma_20_minute_spike_at_the_default_threshold`: the most
#: points at or above the default threshold allowed on the series without the spike (four scored
#: days, 5,760 points) and elsewhere on the series with it (measured: none without the spike on any
#: seed and shape; one point elsewhere once in sixty, One-Class SVM).
MAX_FALSE_ALARM_POINTS = 2


@pytest.mark.parametrize("name", ["isolation_forest", "ocsvm"])
@pytest.mark.parametrize("cycle", [0.0, 10.0, 30.0])
@pytest.mark.parametrize("seed", range(10))
def test_feature_models_catch_a_6_sigma_20_minute_spike_at_the_default_threshold(
    name: str, cycle: float, seed: int
) -> None:
    """Through the pipeline's calibration (fit on the whole week, spike included; the first three days
    get no score): a +6 sigma spike lasting 20 minutes on day six, at a different hour for each seed,
    reaches the default threshold, and the same week without the spike has no more than
    MAX_FALSE_ALARM_POINTS points there. Before, Isolation Forest missed such a spike on nine seeds
    of ten with a daily cycle of 10 or 30 sigma (z 3.3-4.8), and One-Class SVM on four seeds in
    ten on each shape, while flagging up to two ordinary points a week."""
    from telewatch.services.detection import DEFAULT_THRESHOLD, calibrated_scores

    clean = _minute_series(seed, cycle=cycle)
    at = 5 * 1440 + (seed * 149) % 1400
    series = clean.copy()
    series.iloc[at : at + 20] += 6 * 20.0
    everywhere = np.ones(len(series), dtype=bool)
    zz = calibrated_scores(name, {}, series, everywhere)[1].to_numpy()
    assert np.nanmax(zz[at : at + 20]) >= DEFAULT_THRESHOLD
    elsewhere = np.ones(len(series), dtype=bool)
    elsewhere[at - 5 : at + 80] = False
    assert (np.nan_to_num(zz[elsewhere]) >= DEFAULT_THRESHOLD).sum() <= MAX_FALSE_ALARM_POINTS
    z_clean = calibrated_scores(name, {}, clean, everywhere)[1].to_numpy()
    assert (np.nan_to_num(z_clean) >= DEFAULT_THRESHOLD).sum() <= MAX_FALSE_ALARM_POINTS


def test_ocsvm_score_is_its_decision_function_plus_the_distance_past_the_training_extent() -> None:
    from telewatch.detectors.ocsvm import OneClassSVMDetector

    series = _minute_series(4, cycle=10.0, days=3)
    det = OneClassSVMDetector().fit(series)
    assert det.model_ is not None
    x = det.features_.transform(series)
    score = det.score(series).to_numpy()
    theirs = -det.model_.decision_function(x)
    inside = (np.abs(x) <= det.extent_).all(axis=1)
    assert 0.9 < inside.mean() < 1.0
    order = np.argsort(theirs[inside], kind="stable")
    assert (np.diff(score[inside][order]) >= -1e-12).all()  # inside: the decision function's order
    # far outside, where the kernel sum has vanished, the score keeps growing with the deviation
    far = series.copy()
    far.iloc[-30:] += np.array([20.0, 200.0])[:, None].repeat(15, axis=1).ravel()
    tail = det.score(far).to_numpy()[-30:]
    assert tail[15:].max() > tail[:15].max() + 5


@pytest.mark.parametrize("name", ["mv_robust_z", "mv_pca", "mv_ensemble"])
def test_multivariate_detectors_catch_a_6_sigma_20_minute_spike_in_one_metric(name: str) -> None:
    """Eight metrics, some with a daily cycle; one gets +6 sigma for 20 minutes, at a different hour
    for each of ten seeds. At the bench's thresholds from train scores (the 0.995 quantile, POT at
    risk 0.003) the spike is caught on every seed, and the same ten days without it have no more
    flagged rows than twice the threshold's target share (measured: at most 0.75 % and 0.44 %).
    Before ``mv_ensemble``'s short-term reference skipped the last 10 rows it missed seed 8."""
    from telewatch.bench.cv import choose_threshold
    from telewatch.detectors.multivariate import create_multivariate_detector

    n = 10 * 1440
    idx = pd.date_range("2024-03-01", periods=2 * n, freq="1min", tz="UTC")
    cycle = np.sin(2 * np.pi * np.arange(2 * n) / 1440)[:, None] * np.linspace(0, 5, 8)[None, :]
    for seed in range(10):
        rng = np.random.default_rng(seed)
        frame = pd.DataFrame(
            rng.normal(size=(2 * n, 8)) + cycle, index=idx, columns=[f"m{j}" for j in range(8)]
        )
        train, clean = frame.iloc[:n], frame.iloc[n:]
        test = clean.copy()
        at = 3 * 1440 + 200 + (seed * 149) % 1400
        test.iloc[at : at + 20, 3] += 6.0
        det = create_multivariate_detector(name).fit(train)
        s_train = det.score(train).to_numpy()
        s_test = det.score(test, context=train).to_numpy()
        s_clean = det.score(clean, context=train).to_numpy()
        for threshold, target in (
            (choose_threshold(s_train, "quantile", q=0.995), 0.005),
            (choose_threshold(s_train, "pot", risk=0.003), 0.003),
        ):
            assert (s_test[at : at + 20] > threshold).any(), (seed, target)
            assert (s_clean > threshold).mean() <= 2 * target, (seed, target)
