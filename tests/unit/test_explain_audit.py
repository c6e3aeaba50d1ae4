"""Audit fixes of the window scan: what is ranked, and that the words agree with the numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from telewatch.core.errors import ValidationError
from telewatch.incidents.ranking import directions, left_out_counts, rank_window, window_evidence
from telewatch.incidents.types import classify, load_rules
from telewatch.services.explain import ScannedRows, format_step, parse_step
from telewatch.services.incidents import _involved

STEP = pd.Timedelta("1min")


def _noise(n_metrics: int, n_time: int = 600, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(100.0, 2.0, size=(n_metrics, n_time))


def test_metrics_without_data_in_or_before_the_window_are_left_out_and_counted() -> None:
    x = _noise(5)
    w0, w1 = 560, 600
    x[1, w0:w1] += 30.0  # the real change
    x[2, w0:w1] = np.nan  # no data in the window
    x[3, :w0] = np.nan  # started in the window: nothing to compare with
    x[4, : w0 - 3] = np.nan  # three points before the window: too few
    names = [f"m{i}" for i in range(5)]
    ev = window_evidence(x, w0, w1)
    assert left_out_counts(ev) == {"no_data": 1, "no_baseline": 2}
    assert ev.score[[2, 3, 4]].tolist() == [0.0, 0.0, 0.0]  # they raise no bar for the others
    ranked = rank_window(x, w0, w1, names=names, step=STEP)
    assert [r.name for r in ranked] == ["m1", "m0"]
    assert [r.rank for r in ranked] == [1, 2]
    assert directions(ev).tolist()[2:] == ["flat", "flat", "flat"]
    # with a limit and a keep mask the left-out rows stay out too
    some = rank_window(x, w0, w1, names=names, limit=1, keep=lambda e: np.ones(5, dtype=bool))
    assert [r.name for r in some] == ["m1", "m0"]


def test_a_flat_metric_says_so_with_its_mean_and_reports_no_lead_or_lag() -> None:
    rng = np.random.default_rng(1)
    n_time, w0, w1 = 600, 560, 600
    target = 100.0 + rng.normal(0, 1.0, n_time)
    target[w0 + 5 : w1] += 40.0
    spiky = np.full(n_time, 10.0) + rng.normal(0, 0.05, n_time)
    spiky[rng.choice(w0, size=60, replace=False)] = 40.0  # spikes in the baseline: its mean is high
    spiky[w0:w1] = 10.0 + rng.normal(0, 0.05, w1 - w0)  # the window: its usual level, no spike
    spiky[w0 + 5 : w1] += np.linspace(0.0, 0.1, w1 - w0 - 5)  # follows the target a little
    x = np.vstack([target, spiky])
    ranked = rank_window(x, w0, w1, names=["latency_ms", "error_rate"], step=STEP, target=0)
    flat = next(r for r in ranked if r.name == "error_rate")
    assert flat.direction == "flat"
    assert flat.magnitude < -0.05  # its window mean is well under the baseline mean
    assert "barely changed (mean -" in flat.reason
    assert "within its usual variation" in flat.reason
    assert "moved" not in flat.reason
    assert flat.lead_lag is None
    mover = next(r for r in ranked if r.name == "latency_ms")
    assert mover.lead_lag == 0  # the target itself


@pytest.mark.parametrize("seed", range(6))
def test_direction_wording_and_magnitude_agree(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = _noise(40, seed=seed)
    x[:10] -= 100.0  # level around zero: reported in sd
    w0, w1 = 570, 600
    for row in rng.choice(40, size=20, replace=False):
        x[row, w0:w1] += rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 20.0)
    x[rng.choice(40, size=8), w0 + 3] *= -3.0  # spikes: mean and median can disagree
    ranked = rank_window(x, w0, w1, names=[f"m{i}" for i in range(40)], step=STEP, target=0)
    for r in ranked:
        change = r.reason.split(" vs ")[0]
        if r.direction == "up":
            assert " rose " in change, r
            assert r.magnitude > 0, r
        elif r.direction == "down":
            assert " fell " in change, r
            assert r.magnitude < 0, r
        else:
            assert "barely changed" in change, r
            assert "moved" not in r.reason, r
        assert "rose 0%" not in r.reason
        assert "fell 0%" not in r.reason


def test_step_is_parsed_as_a_duration_and_printed_as_one() -> None:
    assert parse_step("1m") == STEP
    assert parse_step("5min") == pd.Timedelta("5min")
    assert parse_step("90s") == pd.Timedelta("90s")
    assert parse_step("1h30m") == pd.Timedelta("90min")
    with pytest.raises(ValidationError, match="no unit"):
        parse_step("5")
    with pytest.raises(ValidationError, match="not a duration"):
        parse_step("abc")
    with pytest.raises(ValidationError, match="at least one second"):
        parse_step("500ms")
    assert [format_step(pd.Timedelta(t)) for t in ("1min", "90s", "1h", "1D", "5s")] == [
        "1m",
        "1m30s",
        "1h",
        "1d",
        "5s",
    ]


def test_typing_takes_the_anomalous_metrics_direction_from_its_anomaly() -> None:
    # error_rate's window mean rose, but its anomaly was a value below the expected one
    x = _noise(2, seed=3)
    w0, w1 = 590, 600
    x[0, w0:w1] += 12.0
    ev = window_evidence(x, w0, w1)
    scanned = ScannedRows([7, 8], ["error_rate", "memory_percent"], ["web", "host"], ev)
    rules = load_rules()
    plain = _involved(scanned)
    assert [(c.metric, c.direction) for c in plain] == [("error_rate", "up")]
    chosen = classify(rules, plain)
    assert chosen is not None
    assert chosen.name == "error_burst"
    told = _involved(scanned, {7: "down"})
    assert [(c.metric, c.direction) for c in told] == [("error_rate", "down")]
    assert classify(rules, told) is None
    # a metric that is not involved stays out whatever its anomaly says
    assert _involved(scanned, {8: "up"}) == plain
