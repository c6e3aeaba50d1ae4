"""Batch scoring (metrics × time) and the Dask fan-out give the per-metric scores exactly."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from dask.distributed import LocalCluster

from support import free_port
from telewatch.core.errors import ConfigError, ValidationError
from telewatch.detectors import create_detector
from telewatch.scheduler.distributed import score_many
from telewatch.services.batch import batch_detectors, score_matrix

N = 3 * 1440


def _data(n_metrics: int, seed: int = 0) -> tuple[np.ndarray, pd.DatetimeIndex]:
    idx = pd.date_range("2024-01-01", periods=N, freq="1min", tz="UTC")
    rng = np.random.default_rng(seed)
    t = np.arange(N)
    x = 100 + 20 * np.sin(2 * np.pi * t / 1440 + np.arange(n_metrics)[:, None])
    x = x + rng.normal(0, 2, (n_metrics, N))
    x[:, 3000] += 60.0  # a spike everywhere
    x[1, 2000:2100] = np.nan  # a gap
    if n_metrics > 4:
        x[2] = 5.0  # a constant metric
        x[3, 3500:] -= 80.0  # a level shift
        x[4, :] = np.round(x[4])  # repeated values
    return x, idx


def _per_metric(values: np.ndarray, idx: pd.DatetimeIndex, detector: str, **params: object) -> np.ndarray:
    rows = []
    for row in values:
        s = pd.Series(row, index=idx)
        rows.append(create_detector(detector, **params).fit(s).score(s).to_numpy())
    return np.vstack(rows)


@pytest.mark.parametrize(
    ("detector", "params"),
    [
        ("novelty", {}),
        ("novelty", {"bins": 37, "cooldown": 50, "local_window": 15}),
        ("robust_z", {}),
        ("robust_z", {"min_scale": 0.5}),
        ("level_shift", {}),  # no batch path: the per-metric fallback
    ],
)
def test_score_matrix_equals_the_per_metric_path(detector: str, params: dict[str, object]) -> None:
    values, idx = _data(6)
    batch = score_matrix(values, idx, detector=detector, params=params)
    expected = _per_metric(values, idx, detector, **params)
    threaded = score_matrix(values, idx, detector=detector, params=params, workers=2, chunk_size=4)
    np.testing.assert_array_equal(threaded, batch)
    assert batch.shape == values.shape
    np.testing.assert_array_equal(np.isnan(batch), np.isnan(expected))
    np.testing.assert_allclose(batch, expected, rtol=0, atol=1e-12)
    assert np.isnan(batch[1, 2050])
    assert int(np.nanargmax(batch[0])) == 3000 or detector == "level_shift"


def test_batch_paths_and_an_all_missing_metric() -> None:
    assert {"novelty", "robust_z"} <= set(batch_detectors())
    values, idx = _data(2)
    values[1] = np.nan
    for detector in ("novelty", "robust_z"):
        out = score_matrix(values, idx, detector=detector)
        assert np.isnan(out[1]).all()
        assert np.isfinite(out[0]).all()


def test_score_matrix_rejects_bad_input() -> None:
    values, idx = _data(2)
    with pytest.raises(ValidationError, match="2-D"):
        score_matrix(values[0], idx)
    with pytest.raises(ValidationError, match="columns"):
        score_matrix(values[:, :-1], idx)
    with pytest.raises(ValidationError, match="sorted"):
        score_matrix(values, idx[::-1])
    with pytest.raises(ValidationError, match="timestamps"):
        score_matrix(values, pd.RangeIndex(N))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="workers"):
        score_matrix(values, idx, workers=0)
    with pytest.raises(ConfigError, match="unknown detector"):
        score_matrix(values, idx, detector="nope")
    with pytest.raises(ConfigError, match="novelty"):
        score_matrix(values, idx, params={"nope": 1})


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as local:
        yield local


def test_dask_on_a_two_worker_cluster_equals_the_single_process_path(cluster: LocalCluster) -> None:
    values, idx = _data(7, seed=1)
    frame = pd.DataFrame(values.T, index=idx, columns=[f"m{i}" for i in range(7)])
    expected = score_matrix(values, idx, detector="novelty")
    got = score_many(frame, detector="novelty", scheduler=cluster.scheduler_address, chunk_size=3)
    assert list(got) == list(frame.columns)
    for i, name in enumerate(frame.columns):
        assert got[name].index.equals(idx)
        np.testing.assert_array_equal(got[name].to_numpy(), expected[i])


def test_dask_with_series_on_different_timestamps(cluster: LocalCluster) -> None:
    values, idx = _data(3, seed=2)
    series = {
        "a": pd.Series(values[0], index=idx),
        "b": pd.Series(values[1, ::2], index=idx[::2]),  # every other minute
        "c": pd.Series(values[2], index=idx),
    }
    got = score_many(
        series, detector="robust_z", params={"min_scale": 0.02}, scheduler=cluster.scheduler_address
    )
    assert list(got) == ["a", "b", "c"]
    for name, s in series.items():
        expected = create_detector("robust_z", min_scale=0.02).fit(s).score(s)
        assert got[name].index.equals(s.index)
        np.testing.assert_array_equal(got[name].to_numpy(), expected.to_numpy())


def test_dask_embedded_cluster_and_errors() -> None:
    values, idx = _data(3, seed=3)
    series = {f"m{i}": pd.Series(values[i], index=idx) for i in range(3)}
    got = score_many(series, detector="novelty", n_workers=2, chunk_size=1)
    expected = score_matrix(values, idx, detector="novelty")
    for i in range(3):
        np.testing.assert_array_equal(got[f"m{i}"].to_numpy(), expected[i])
    assert score_many({}, detector="novelty") == {}
    with pytest.raises(ValidationError, match="'x'"):
        score_many({"x": [1.0, 2.0]}, detector="novelty")  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="n_workers"):
        score_many(series, n_workers=0)
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(ConfigError, match="Dask scheduler"):
        score_many(series, scheduler=address, timeout=1)


def test_dask_over_tcp_with_worker_processes() -> None:
    """A scheduler address over TCP, workers in their own processes: the data and code travel pickled."""
    values, idx = _data(5, seed=4)
    frame = pd.DataFrame(values.T, index=idx, columns=[f"m{i}" for i in range(5)])
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as local:
        assert local.scheduler_address.startswith("tcp://")
        got = score_many(frame, detector="novelty", scheduler=local.scheduler_address, chunk_size=2)
    expected = score_matrix(values, idx, detector="novelty")
    for i, name in enumerate(frame.columns):
        np.testing.assert_array_equal(got[name].to_numpy(), expected[i])


@pytest.mark.parametrize("n", [1, 2, 30, 500])
def test_novelty_batch_on_gappy_and_short_matrices(n: int) -> None:
    """Shorter than the 60-point window, mostly missing, a lone point: still the per-metric scores."""
    rng = np.random.default_rng(n)
    idx = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC")
    values = rng.normal(50, 5, (5, n))
    values[0, rng.random(n) < 0.6] = np.nan
    values[1, : n // 2] = np.nan
    values[2] = np.round(values[2] / 10) * 10  # few distinct values
    values[3, -1] = 1e6  # far outside the fitted range of the rest
    batch = score_matrix(values, idx, detector="novelty", workers=2, chunk_size=2)
    np.testing.assert_array_equal(batch, _per_metric(values, idx, "novelty"))


def test_bench_scale_quick_prints_every_row() -> None:
    """The speed benchmark's smoke run prints its table: every method at both sizes, NAB column."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "bench_scale.py"), "--quick", "--metrics", "8"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = [line for line in done.stdout.splitlines() if line.startswith("│")]
    names = [
        "telewatch novelty (reference), batch, 2 threads",
        "telewatch novelty, batch, 1 thread",
        "telewatch novelty_seasonal (default), batch, 2 threads",
        "telewatch novelty_seasonal (default), batch, 1 thread",
        "telewatch novelty, dask, 2 workers",
        "telewatch novelty, per-metric loop",
        "telewatch robust_z, batch, 1 thread",
        "statsmodels STL",
        "Prophet",
        "scikit-learn IsolationForest",
        "PyOD ECOD",
        "ADTK SeasonalAD",
    ]
    for name in names:
        rows = [line for line in table if line.startswith(f"│ {name} ")]
        assert len(rows) == 2, (name, done.stdout[-4000:])  # 1 metric and 8 metrics
    for line in table:
        cells = [c.strip() for c in line.strip("│").split("│")]
        if cells[0].startswith("telewatch"):
            assert float(cells[2].rstrip("*")) > 0.0  # seconds
            for nab in cells[8].split("/"):  # NAB scores (two calibrations) on the shipped samples
                assert -100.0 <= float(nab) <= 100.0
        else:  # a reference library: measured, or says why not (not installed, or its error)
            measured = cells[2].rstrip("*").replace(".", "", 1).isdigit()
            assert measured or cells[2] == "not installed" or "Error" in cells[2], line
    assert "numba kernels" in done.stdout
