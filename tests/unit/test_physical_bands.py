"""Physical bands: a metric's kind bounds its expected band (issue 19, item 6)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from telewatch.detectors import create_detector
from telewatch.detectors.bands import METRIC_KINDS, bound_band, infer_metric_kind, kind_bounds
from telewatch.store.db import Store


@pytest.mark.parametrize(
    ("name", "unit", "kind"),
    [
        ("apdex", None, "ratio"),
        ("checkout_success_rate", None, "ratio"),
        ("memory_percent", None, "percent"),
        ("disk", "%", "percent"),
        ("web_response", None, "latency"),
        ("p99", "ms", "latency"),
        ("throughput", None, "rate"),
        ("ingress", "bytes/s", "rate"),
        ("active_users", None, "count"),
        ("errors", None, "count"),
        ("temperature", None, "gauge"),
    ],
)
def test_kind_from_name_and_unit(name: str, unit: str | None, kind: str) -> None:
    assert infer_metric_kind(name, unit) == kind


def test_data_overrule_a_kind_they_contradict_and_fill_in_without_hints() -> None:
    assert infer_metric_kind("cpu_percent", values=[10.0, 250.0]) == "rate"  # many-core CPU %
    assert infer_metric_kind("apdex", values=[0.2, 0.97]) == "ratio"
    assert infer_metric_kind("apdex", values=[0.5, 3.0]) == "rate"
    assert infer_metric_kind("throughput", values=[-5.0, 10.0]) == "gauge"
    assert infer_metric_kind("m", values=[0, 3, 7]) == "count"
    assert infer_metric_kind("m", values=[0.5, 3.2]) == "rate"
    assert infer_metric_kind("m", values=[np.nan]) == "gauge"
    assert set(METRIC_KINDS) == {"count", "percent", "ratio", "latency", "rate", "gauge"}
    with pytest.raises(ValueError, match="unknown metric kind"):
        kind_bounds("pressure")


def test_bands_stay_in_the_physical_range() -> None:
    """A series near 0 with big swings (active users at night, memory % near full): the raw band leaves
    the range; bounded by the kind it does not."""
    rng = np.random.default_rng(0)
    n = 6 * 1440
    idx = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC")
    day = np.sin(2 * np.pi * np.arange(n) / 1440)
    users = np.clip(3000 + 3000 * day + 400 * rng.normal(size=n), 0, None).round()
    memory = np.clip(90 + 9 * day + 3 * rng.normal(size=n), 0, 100)
    apdex = np.clip(0.97 + 0.05 * rng.normal(size=n), 0, 1)
    left = set()
    for values, name in ((users, "active_users"), (memory, "memory_percent"), (apdex, "apdex")):
        series = pd.Series(values, index=idx)
        kind = infer_metric_kind(name, values=values)
        lo, hi = kind_bounds(kind)
        for detector in ("deviation", "level_shift", "seasonal"):
            det = create_detector(detector).fit(series)
            raw = det.expected(series)  # type: ignore[attr-defined]
            band = det.expected(series, kind=kind)  # type: ignore[attr-defined]
            assert (band[["lower", "upper", "expected"]].stack() >= lo).all(), (name, detector)
            assert (band[["lower", "upper", "expected"]].stack() <= hi).all(), (name, detector)
            if (raw["lower"] < lo).any() or (raw["upper"] > hi).any():
                left.add(name)
            inside = raw["lower"].between(lo, hi) & raw["upper"].between(lo, hi)
            pd.testing.assert_frame_equal(band[inside], raw[inside])  # only what was outside moves
    assert left == {"active_users", "memory_percent", "apdex"}  # unbounded, every one leaves its range
    band = pd.DataFrame({"expected": [0.5], "lower": [-0.2], "upper": [1.4]})
    assert bound_band(band, bounds=(0.1, 1.2)).iloc[0].tolist() == [0.5, 0.1, 1.2]
    assert bound_band(band, "gauge").equals(band)


def _near_limits() -> dict[str, pd.Series]:
    rng = np.random.default_rng(1)
    n = 4 * 1440
    idx = pd.date_range("2024-02-01", periods=n, freq="1min", tz="UTC")
    day = np.sin(2 * np.pi * np.arange(n) / 1440)
    return {
        "active_users": pd.Series(
            np.clip(3000 + 3000 * day + 400 * rng.normal(size=n), 0, None).round(), idx
        ),
        "memory_percent": pd.Series(np.clip(90 + 9 * day + 3 * rng.normal(size=n), 0, 100), idx),
        "apdex": pd.Series(np.clip(0.97 + 0.05 * rng.normal(size=n), 0, 1), idx),
    }


def test_the_explorer_shows_bands_in_the_physical_range(store: Store) -> None:
    """Where the displayed band is made (services.adhoc: a detector's band, or the rolling robust band
    the explorer falls back to), a stored metric's band keeps to the range of its kind."""
    from telewatch.services.adhoc import DetectorSpec, detect_adhoc, expected_band
    from telewatch.store import repo

    cur = store.cursor()
    for name, series in _near_limits().items():
        repo.write_points(cur, repo.upsert_metric(cur, name=name), series)
        lo, hi = kind_bounds(infer_metric_kind(name, values=series.to_numpy()))
        out = detect_adhoc(store, detectors=[DetectorSpec("deviation", {})], metric=name)
        band = out.results[0].band
        assert band is not None
        assert (band.stack().dropna() >= lo).all(), name
        assert (band.stack().dropna() <= hi).all(), name
        fallback = expected_band(out.series, window=288, k=4.0)
        assert (fallback.stack().dropna() >= lo).all(), name
        assert (fallback.stack().dropna() <= hi).all(), name
        # the raw band (no kind) leaves the range: the bound is what keeps it in
        raw = expected_band(out.series, window=288, k=4.0, kind="gauge")
        assert (raw.stack() < lo).any() or (raw.stack() > hi).any(), name
    apdex = _near_limits()["apdex"].rename("apdex")
    assert (expected_band(apdex, window=288, k=4.0)["upper"].dropna() <= 1.0).all()
