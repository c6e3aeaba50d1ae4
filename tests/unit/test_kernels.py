"""The compiled kernels give exactly what the pandas / Python code they replace gives."""

from __future__ import annotations

import bisect
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from telewatch.core.errors import ValidationError
from telewatch.detectors import create_detector
from telewatch.detectors._kernels import novelty_fit, novelty_scores, rolling_median


def _pandas_median(values: np.ndarray, window: int, min_periods: int | None) -> np.ndarray:
    return pd.DataFrame(values.T).rolling(window, min_periods=min_periods).median().to_numpy().T


def _random_rows(rng: np.random.Generator, n_rows: int, n: int) -> np.ndarray:
    x = rng.normal(0, 1, (n_rows, n))
    x[::2] = np.round(x[::2] * 2)  # ties
    x[rng.random((n_rows, n)) < 0.2] = np.nan
    return x


@pytest.mark.parametrize("seed", range(4))
def test_rolling_median_equals_pandas_on_random_data_with_gaps(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(15):
        n = int(rng.integers(1, 400))
        window = int(rng.integers(1, 90))
        min_periods = int(rng.integers(0, window + 1))
        x = _random_rows(rng, 3, n)
        got = rolling_median(x, window=window, min_periods=min_periods)
        np.testing.assert_array_equal(got, _pandas_median(x, window, min_periods))


def test_rolling_median_edge_cases() -> None:
    short = np.array([[4.0, np.nan, 1.0]])
    for window in (1, 2, 3, 10):  # a window longer than the series included
        for min_periods in (None, 1, 2):
            if min_periods is not None and min_periods > window:
                continue
            np.testing.assert_array_equal(
                rolling_median(short, window=window, min_periods=min_periods),
                _pandas_median(short, window, min_periods),
            )
    constant = np.full((2, 50), 7.5)
    np.testing.assert_array_equal(rolling_median(constant, window=60, min_periods=2)[:, 1:], 7.5)
    assert np.isnan(rolling_median(constant, window=60, min_periods=2)[:, 0]).all()
    # infinities are gaps, as in pandas; an all-NaN row gives NaN; an empty matrix stays empty
    odd = np.array([[1.0, np.inf, 3.0, -np.inf, 5.0, 2.0], [np.nan] * 6])
    np.testing.assert_array_equal(rolling_median(odd, window=3, min_periods=1), _pandas_median(odd, 3, 1))
    assert rolling_median(np.empty((0, 5)), window=3).shape == (0, 5)
    assert rolling_median(np.empty((2, 0)), window=3).shape == (2, 0)
    # even counts: the mean of the two middle values
    np.testing.assert_array_equal(
        rolling_median(np.array([[1.0, 2.0, 10.0, 20.0]]), window=4, min_periods=1),
        [[1.0, 1.5, 2.0, 6.0]],
    )


def test_kernels_reject_bad_arguments() -> None:
    with pytest.raises(ValidationError, match="2-D"):
        rolling_median(np.arange(5.0), window=3)
    with pytest.raises(ValidationError, match="window"):
        rolling_median(np.ones((1, 5)), window=0)
    with pytest.raises(ValidationError, match="min_periods"):
        rolling_median(np.ones((1, 5)), window=3, min_periods=4)
    with pytest.raises(ValidationError, match="one value per row"):
        novelty_scores(np.ones((2, 5)), np.zeros(1), np.ones(2), cooldown=10, window=5)
    with pytest.raises(ValidationError, match="local_window"):
        novelty_scores(np.ones((1, 5)), np.zeros(1), np.ones(1), cooldown=10, window=1)


# -- novelty: the kernel against the Python implementation it replaced -------------------------
def _reference_novelty(x: np.ndarray, low: float, width: float, bins_cooldown: int) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        q = np.floor((x - low) / width)
    out = np.zeros(x.size)
    seen: list[int] = []
    seen_set: set[int] = set()
    cooldown = max(bins_cooldown, 1)
    stack: list[tuple[int, float]] = []
    for t in np.flatnonzero(np.isfinite(q)).tolist():
        b = int(q[t])
        if b in seen_set:
            continue
        if seen:
            i = bisect.bisect_left(seen, b)
            left = b - seen[i - 1] if i > 0 else 10**9
            right = seen[i] - b if i < len(seen) else 10**9
            dist = float(min(left, right))
            while stack and stack[-1][1] < dist:
                stack.pop()
            gap = t - stack[-1][0] if stack else cooldown
            out[t] = dist * min(1.0, gap / cooldown)
            stack.append((t, dist))
        bisect.insort(seen, b)
        seen_set.add(b)
    return out


def _reference_local(series: pd.Series, width: float, window: int) -> np.ndarray:
    prev = series.shift(1)
    median = prev.rolling(window, min_periods=2).median()
    mad = (prev - median).abs().rolling(window, min_periods=2).median() * 1.4826
    scale = np.maximum(np.nan_to_num(mad.to_numpy(), nan=0.0), width)
    with np.errstate(invalid="ignore"):
        z = np.nan_to_num(np.abs(series.to_numpy() - median.to_numpy()) / scale, nan=0.0)
    return z / (z + 5.0)


def _reference_score(series: pd.Series, low: float, width: float, cooldown: int, window: int) -> np.ndarray:
    scores = _reference_novelty(series.to_numpy(), low, width, cooldown)
    scores = scores + 0.01 * _reference_local(series, width, window)
    scores[series.isna().to_numpy()] = np.nan
    return scores


def _series(rng: np.random.Generator, n: int, kind: int) -> pd.Series:
    idx = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC")
    x = np.cumsum(rng.normal(0, 1, n)) if kind % 2 else rng.normal(0, 1, n) * 10
    if kind % 3 == 0:
        x = np.round(x)
    if kind % 5 == 0:
        x[:] = 3.0
    x[rng.random(n) < 0.1] = np.nan
    if kind % 7 == 0 and n > 5:
        x[3] = np.inf
    return pd.Series(x, index=idx)


@pytest.mark.parametrize("seed", range(3))
def test_novelty_score_equals_the_python_implementation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for kind in range(25):
        s = _series(rng, int(rng.integers(1, 1500)), kind)
        params = {
            "bins": int(rng.integers(5, 200)),
            "cooldown": int(rng.integers(0, 1500)),
            "local_window": int(rng.integers(2, 90)),
        }
        n_train = int(rng.integers(1, len(s) + 1))  # scored data reaches outside the trained range
        det = create_detector("novelty", **params).fit(s.iloc[:n_train])
        with np.errstate(invalid="ignore"):
            expected = _reference_score(s, det.low_, det.width_, params["cooldown"], params["local_window"])
        np.testing.assert_array_equal(det.score(s).to_numpy(), expected, err_msg=str(params))


def test_novelty_kernel_far_outside_the_table_and_with_context() -> None:
    rng = np.random.default_rng(7)
    idx = pd.date_range("2024-01-01", periods=3000, freq="1min", tz="UTC")
    s = pd.Series(rng.normal(0, 1, 3000), index=idx)
    s.iloc[2000:2100] = rng.normal(0, 1, 100) * 1e5  # ~1e6 bins away: beyond the flag table
    s.iloc[2500] = -1e12  # beyond the 1e9 sentinel distance
    det = create_detector("novelty").fit(s.iloc[:500])
    got = det.score(s.iloc[1000:], context=s.iloc[:1000]).to_numpy()
    expected = _reference_score(s, det.low_, det.width_, 1000, 60)[1000:]
    np.testing.assert_array_equal(got, expected)
    assert 1e9 <= got[1500] <= 1e9 + 0.01  # the 1e9 sentinel caps a one-sided distance, as before


def test_novelty_fit_per_row_equals_the_detector_fit() -> None:
    rng = np.random.default_rng(3)
    rows = _random_rows(rng, 6, 300)
    rows[1] = np.nan
    rows[2] = 4.0
    rows[3] = 0.0
    rows[4, :] = np.nan
    rows[4, 10] = -2.0
    low, width = novelty_fit(rows, bins=37)
    idx = pd.date_range("2024-01-01", periods=300, freq="1min", tz="UTC")
    for i, row in enumerate(rows):
        det = create_detector("novelty", bins=37).fit(pd.Series(row, index=idx))
        assert (low[i], width[i]) == (det.low_, det.width_)


def test_novelty_kernel_from_two_threads_at_once() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(0, 1, (8, 3000))
    low, width = novelty_fit(x, bins=100)
    alone = novelty_scores(x, low, width, cooldown=1000, window=60)
    with ThreadPoolExecutor(max_workers=2) as pool:
        parts = list(
            pool.map(
                lambda i: novelty_scores(
                    x[i : i + 1], low[i : i + 1], width[i : i + 1], cooldown=1000, window=60
                ),
                range(8),
            )
        )
    np.testing.assert_array_equal(np.vstack(parts), alone)


def test_novelty_expected_band_centre_is_the_pandas_rolling_median() -> None:
    rng = np.random.default_rng(11)
    s = _series(rng, 700, 1)
    det = create_detector("novelty", local_window=45).fit(s.iloc[:300])
    band = det.expected(s.iloc[300:], context=s.iloc[:300])  # type: ignore[attr-defined]
    centre = s.shift(1).rolling(45, min_periods=1).median().to_numpy()[300:]
    np.testing.assert_array_equal(band["expected"].to_numpy(), centre)
    assert np.isfinite(band["expected"].to_numpy()).all()


def _held_median_reference(
    x: np.ndarray,
    window: int,
    lag: int,
    min_periods: int,
    scale: float,
    hold: float,
    max_hold: int,
    with_mad: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """held_median written out plainly: the reference is the last ``window`` accepted values."""
    accepted: list[float] = []
    med, mad = np.full(x.size, np.nan), np.full(x.size, np.nan)
    held = np.zeros(x.size, dtype=bool)
    run, expired = 0, False
    for t in range(x.size):
        j = t - lag
        if j >= 0 and not held[j] and np.isfinite(x[j]):
            accepted = [*accepted, float(x[j])][-window:]
        if len(accepted) < min_periods:
            continue
        med[t] = float(np.median(accepted))
        sigma = scale
        if with_mad:
            mad[t] = float(np.median(np.abs(np.array(accepted) - med[t]))) * 1.4826
            sigma = max(sigma, mad[t])
        if not np.isfinite(x[t]):
            continue
        off = abs(x[t] - med[t]) >= hold * sigma
        if off and not expired:
            run += 1
            expired = run > max_hold
            held[t] = not expired
        elif not off:
            run, expired = 0, False
    return med, mad, held


@pytest.mark.parametrize("seed", range(6))
def test_held_median_matches_its_plain_definition(seed: int) -> None:
    from telewatch.detectors._kernels import held_median

    rng = np.random.default_rng(seed)
    x = rng.normal(100, 1, 1500)
    x[rng.random(x.size) < 0.05] = np.nan
    x[600:800] = 0.0  # an outage: held
    x[1000:] += 40.0  # a shift longer than max_hold: accepted after it
    if seed % 2:
        x = np.round(x, 1)  # ties
    for kw in (
        {
            "window": 60,
            "lag": 5,
            "min_periods": 3,
            "scale": 0.5,
            "hold": 6.0,
            "max_hold": 300,
            "with_mad": True,
        },
        {
            "window": 17,
            "lag": 1,
            "min_periods": 1,
            "scale": 0.3,
            "hold": 4.0,
            "max_hold": 100,
            "with_mad": False,
        },
    ):
        ours = held_median(x, **kw)  # type: ignore[arg-type]
        ref = _held_median_reference(x, **kw)  # type: ignore[arg-type]
        for a, b in zip(ours, ref, strict=True):
            np.testing.assert_allclose(a, b, equal_nan=True)
        if kw["with_mad"]:
            assert ours[2][605:800].all()  # the outage is held to its end
