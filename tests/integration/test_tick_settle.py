"""Settling the heap after a tick that loaded much long-lived state (``tick_state.settle_heap``):
the objects alive then are frozen out of the garbage collector's walks, dropped ones are still freed,
and the first tick of a process settles while a steady one does not."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from telewatch.detectors import create_detector
from telewatch.detectors.base import Detector
from telewatch.monitors.config import MonitorSpec, parse_monitors
from telewatch.services import tick_state
from telewatch.services.monitor import run_monitor
from telewatch.sources.base import ColumnarSource, FetchedBatch
from telewatch.store.db import Store

T0 = pd.Timestamp("2026-03-01 00:00", tz="UTC")


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    """Leave the rest of the session's heap as it found it (nothing frozen)."""
    gc.unfreeze()
    yield
    gc.unfreeze()


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_settle_waits_for_enough_state_then_freezes() -> None:
    memory = tick_state.MonitorMemory(generation="", fingerprint="")
    memory.unsettled = tick_state.SETTLE_AFTER - 1
    assert not memory.settle()
    assert gc.get_freeze_count() == 0
    memory.unsettled += 1
    assert memory.settle()
    assert memory.unsettled == 0
    assert gc.get_freeze_count() > 0


def test_a_frozen_model_is_freed_when_dropped_and_a_frozen_cycle_at_the_next_settle() -> None:
    idx = pd.date_range(T0, periods=1500, freq="1min")
    series = pd.Series(np.random.default_rng(3).normal(size=idx.size), index=idx)
    model = Detector.loads(create_detector("novelty").fit(series).dumps())
    state = tick_state.ModelState(model=model, trained_at=T0)
    state.stream_key()  # what a tick caches on the state
    gone = weakref.ref(model)
    cycle = _Cycle()
    cycle_gone = weakref.ref(cycle)
    tick_state.settle_heap()
    del model, state, cycle
    assert gone() is None  # reference counting frees a frozen model (no cycle holds it)
    gc.collect()
    assert cycle_gone() is not None  # frozen: a plain collection does not look at it
    tick_state.settle_heap()
    assert cycle_gone() is None  # the next settle unfreezes first


class _Minutes(ColumnarSource):
    """``n`` metrics of 1-minute points with a daily cycle, every minute from ``T0`` on."""

    kind = "test"

    def __init__(self, n: int) -> None:
        self.names = [f"m{i}" for i in range(n)]

    def fetch_batch(self, *, start: pd.Timestamp, end: pd.Timestamp) -> FetchedBatch:
        first = max(0, int(np.ceil((start - T0) / pd.Timedelta(minutes=1))))
        last = int(np.ceil((end - T0) / pd.Timedelta(minutes=1)))
        minutes = np.arange(first, max(first, last))
        stamps = T0.value + minutes.astype("int64") * pd.Timedelta(minutes=1).value
        ids = np.arange(len(self.names))[:, None]
        values = 50 + 10 * np.sin(2 * np.pi * minutes[None, :] / 1440 + ids) + np.sin(minutes * 12.9898) % 1.0
        return FetchedBatch(
            list(self.names),
            [{} for _ in self.names],
            np.tile(stamps, len(self.names)),
            values.ravel(),
            np.arange(len(self.names) + 1, dtype="int64") * minutes.size,
        )


def _spec() -> MonitorSpec:
    return parse_monitors(
        {
            "monitors": [
                {
                    "name": "settle",
                    "source": {"type": "logs", "path": "unused", "count_by": ["event"]},
                    "schedule": {"every": "5m"},
                    "history": "1d",
                    "train": {"every": "7d", "window": "1d", "min_points": 60, "warm_up": "0s"},
                }
            ]
        }
    ).monitors[0]


def test_the_first_tick_settles_and_a_steady_tick_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tick_state, "SETTLE_AFTER", 3)  # three metrics: their models and tails
    spec = _spec()
    source = _Minutes(3)
    with Store(tmp_path / "settle.duckdb") as store:
        first = T0 + pd.Timedelta(days=1)
        report = run_monitor(spec, store=store, now=first, source=source)
        assert report.status == "ok", report.error
        assert report.trained == 3
        memory = tick_state.attach(store, monitor=spec.name, fingerprint=spec.fingerprint())
        assert memory.models
        assert memory.unsettled == 0
        assert gc.get_freeze_count() > 0
        gc.unfreeze()
        report = run_monitor(spec, store=store, now=first + pd.Timedelta(minutes=5), source=source)
        assert report.status == "ok", report.error
        assert report.scored > 0
        assert gc.get_freeze_count() == 0  # nothing new in memory: no settle
        tick_state.forget(store)  # a restarted process: the models are read again, and settled
        report = run_monitor(spec, store=store, now=first + pd.Timedelta(minutes=10), source=source)
        assert report.status == "ok", report.error
        assert report.trained == 0
        assert gc.get_freeze_count() > 0
