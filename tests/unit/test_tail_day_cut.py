"""``tick_state.Tail``'s day cut (a guessed index, checked, else a search) keeps and hands out
exactly the points the plain ``searchsorted`` over the live points gives, tick after tick, on
regular and irregular series."""

from __future__ import annotations

import numpy as np
import pytest

from telewatch.services.tick_state import DAY, Need, Tail

_DAY = int(DAY.value)
_MIN = 60 * 10**9


class _PlainTail:
    """The reference: every point kept in one array, ``lo`` the first live one; searchsorted."""

    def __init__(self, ts: np.ndarray) -> None:
        self.ts, self.lo = ts, 0

    def live(self) -> np.ndarray:
        return self.ts[self.lo :]

    def context_for(self, need: Need, first_new: int) -> np.ndarray:
        live = self.live()
        start = max(0, live.size - need.points)
        if need.span:
            start = min(start, int(np.searchsorted(live, first_new - need.span, side="left")))
        return live[start:]

    def extend(self, ts: np.ndarray, need: Need) -> None:
        self.ts = np.concatenate([self.ts, ts])
        hi = self.ts.size
        keep = max(self.lo, hi - need.points)
        if need.span and hi > self.lo:
            live = self.ts[self.lo :]
            keep = min(keep, self.lo + int(np.searchsorted(live, live[-1] - need.span, side="right")))
        self.lo = keep


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    "need", [Need(0, _DAY), Need(120, _DAY), Need(3000, _DAY), Need(60, 0), Need(0, 3 * _DAY)]
)
def test_context_and_trim_equal_searchsorted(seed: int, need: Need) -> None:
    rng = np.random.default_rng(seed)
    # a day of minutes with some irregular steps (gaps, seconds off the minute)
    steps = np.where(rng.random(1440) < 0.05, rng.integers(1, 600, 1440) * 10**9, _MIN)
    ts = np.cumsum(steps).astype("int64")
    tail = Tail(ts, ts.astype("float64"), need)  # values = their own time, to check they follow
    plain = _PlainTail(ts)
    last = int(ts[-1])
    for _tick in range(300):
        n = int(rng.choice([1, 5, 5, 5, 30, 200]))
        gap = int(rng.choice([_MIN, _MIN, 3 * _MIN, 2 * _DAY if rng.random() < 0.05 else _MIN]))
        new_ts = (last + gap - 10**9 + np.cumsum(rng.integers(1, 120, n) * 10**9)).astype("int64")
        ctx_ts, ctx_values = tail.context_for(need, int(new_ts[0]))
        np.testing.assert_array_equal(ctx_ts, plain.context_for(need, int(new_ts[0])))
        np.testing.assert_array_equal(ctx_values, ctx_ts.astype("float64"))
        tail.extend(new_ts, new_ts.astype("float64"), need)
        plain.extend(new_ts, need)
        np.testing.assert_array_equal(tail.ts, plain.live())
        np.testing.assert_array_equal(tail.values, plain.live().astype("float64"))
        assert tail.first_ts(-1) == (int(plain.live()[0]) if plain.live().size else -1)
        last = int(new_ts[-1])
