"""The tick's calibration of a detector group (``services.monitor.scoring._calibrated``) equals one
``_unwarmed(model, ts, calibrate(model, raw))`` per series, with each model's calibrator and start of
scores (``ModelState.calibration``) worked out once per model and again for a retrained one."""

from __future__ import annotations

import numpy as np
import pandas as pd

from telewatch.services import tick_state
from telewatch.services.detection import calibrate, calibrated_scores
from telewatch.services.monitor.scoring import _calibrated
from telewatch.services.monitor.training import _unwarmed

IDX = pd.date_range("2026-03-01", periods=5 * 1440, freq="1min", tz="UTC")


def _model(seed: int, *, warm: bool) -> object:
    rng = np.random.default_rng(seed)
    series = pd.Series(50 + 10 * np.sin(np.arange(IDX.size) / 229) + rng.normal(size=IDX.size), index=IDX)
    model, _z, _s = calibrated_scores("robust_z", {}, series, np.ones(IDX.size, dtype=bool))
    if not warm:
        model.scored_from_ = None  # type: ignore[attr-defined]
    return model


def _jobs(states: list[tick_state.ModelState], ts: np.ndarray) -> list[tick_state.Job]:
    tail = tick_state.Tail(np.empty(0, dtype="int64"), np.empty(0), tick_state.Need(0, 0))
    return [
        tick_state.Job(metric_id=i, state=s, tail=tail, need=s.need, ts=ts, values=np.zeros(ts.size))
        for i, s in enumerate(states)
    ]


def test_group_calibration_equals_one_call_per_series_with_and_without_a_warm_up() -> None:
    models = [_model(k, warm=k % 2 == 0) for k in range(4)]
    states = [tick_state.ModelState(model=m, trained_at=IDX[-1]) for m in models]  # type: ignore[arg-type]
    memory = tick_state.MonitorMemory(generation="", fingerprint="")
    rng = np.random.default_rng(11)
    start = pd.Timestamp(models[0].scored_from_)  # type: ignore[attr-defined]
    # new points straddling the warm-up's end: some before a model's first score, some after
    ts = np.asarray((start + pd.to_timedelta(np.arange(-3, 3), unit="min")).as_unit("ns").asi8, dtype="int64")
    for _tick in range(2):  # the second tick reads what the first worked out
        raw = [np.abs(rng.normal(0, 3, ts.size)) for _ in states]
        raw[1][2] = np.nan
        got = _calibrated(memory, "robust_z", _jobs(states, ts), raw)
        want = [_unwarmed(m, ts, calibrate(m, r)) for m, r in zip(models, raw, strict=True)]  # type: ignore[arg-type]
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
        assert np.isnan(got[0][:3]).all()
        assert not np.isnan(got[1][:2]).any()  # no warm-up: scored from the first point
    # a retrained model (a new object in the state): its own calibrator and start
    states[1].model = _model(7, warm=True)  # type: ignore[assignment]
    models[1] = states[1].model
    raw = [np.abs(rng.normal(0, 3, ts.size)) for _ in states]
    got = _calibrated(memory, "robust_z", _jobs(states, ts), raw)
    want = [_unwarmed(m, ts, calibrate(m, r)) for m, r in zip(models, raw, strict=True)]  # type: ignore[arg-type]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
    assert np.isnan(got[1][:3]).all()
    assert states[1].calibration()[0] is models[1].calibrator_  # type: ignore[attr-defined]


def test_a_model_without_our_calibrator_sends_the_group_one_by_one() -> None:
    model = _model(3, warm=False)
    state = tick_state.ModelState(model=model, trained_at=IDX[-1])  # type: ignore[arg-type]
    assert state.calibration() == (model.calibrator_, tick_state.NO_START)  # type: ignore[attr-defined]
    other = _model(4, warm=False)
    other.calibrator_ = None  # type: ignore[attr-defined]
    plain = tick_state.ModelState(model=other, trained_at=IDX[-1])  # type: ignore[arg-type]
    assert plain.calibration() == (None, tick_state.NO_START)
