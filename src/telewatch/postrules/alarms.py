"""Alarm filter: turn per-point flags into anomaly windows with a minimum duration and merging."""

from __future__ import annotations

import numpy as np


def alarm_windows(flags: np.ndarray, *, min_points: int = 1, merge_gap: int = 0) -> list[tuple[int, int]]:
    """Runs of True in ``flags`` as ``(start, end)`` positions, end exclusive.

    Runs separated by at most ``merge_gap`` False points are merged; runs shorter than
    ``min_points`` (after merging) are dropped.

    >>> alarm_windows(np.array([0, 1, 1, 0, 1, 0, 0, 0, 1], bool), merge_gap=1)
    [(1, 5), (8, 9)]
    >>> alarm_windows(np.array([0, 1, 1, 0, 1], bool), min_points=2)
    [(1, 3)]
    """
    flags = np.asarray(flags, dtype=bool)
    if flags.size == 0:
        return []
    padded = np.concatenate([[False], flags, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    runs = list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))
    merged: list[tuple[int, int]] = []
    for start, end in runs:
        if merged and start - merged[-1][1] <= merge_gap:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return [(s, e) for s, e in merged if e - s >= min_points]


class AlarmFilter:
    """Per-point flags → alarm windows: runs of at least ``min_points`` (after merging runs at most
    ``merge_gap`` points apart), and no new alarm within ``cooldown`` points after the previous one
    ends (a flapping metric alarms once, not every few minutes).

    >>> f = AlarmFilter(min_points=2, cooldown=3)
    >>> f(np.array([0, 1, 1, 0, 1, 1, 0, 0, 0, 0, 1, 1], bool))
    [(1, 3), (10, 12)]
    >>> f.flags(np.array([1, 1, 0, 1], bool)).tolist()
    [True, True, False, False]
    """

    def __init__(self, min_points: int = 1, merge_gap: int = 0, cooldown: int = 0) -> None:
        if min_points < 1 or merge_gap < 0 or cooldown < 0:
            raise ValueError("AlarmFilter: min_points >= 1, merge_gap >= 0 and cooldown >= 0")
        self.min_points = min_points
        self.merge_gap = merge_gap
        self.cooldown = cooldown

    def train(self, scores: object = None, labels: object = None) -> AlarmFilter:
        """Nothing to learn; here so every post-rule has the same shape."""
        return self

    def __call__(self, flags: np.ndarray) -> list[tuple[int, int]]:
        """Alarm windows as ``(start, end)`` positions, end exclusive."""
        windows = alarm_windows(flags, min_points=self.min_points, merge_gap=self.merge_gap)
        kept: list[tuple[int, int]] = []
        for start, end in windows:
            if kept and start - kept[-1][1] < self.cooldown:
                continue
            kept.append((start, end))
        return kept

    def flags(self, flags: np.ndarray) -> np.ndarray:
        """The filtered flags, same length."""
        out = np.zeros(np.asarray(flags).size, dtype=bool)
        for start, end in self(flags):
            out[start:end] = True
        return out


class RepeatSuppressor:
    """Damps re-alarms: a score counts in full only if no score at least as high came within the
    last ``cooldown`` points; otherwise it is scaled by ``gap / cooldown`` (``gap`` = points since
    that higher score). Threshold-free, so it can run before the threshold stage (NAB credits the
    first detection of an incident and charges every extra one as a false positive). NaN → 0.

    >>> RepeatSuppressor(cooldown=4)(np.array([0.0, 5.0, 5.0, 3.0, 0.0, 0.0, 9.0, 1.0])).tolist()
    [0.0, 5.0, 1.25, 0.75, 0.0, 0.0, 9.0, 0.25]
    """

    def __init__(self, cooldown: int = 1000) -> None:
        if cooldown < 1:
            raise ValueError("RepeatSuppressor: cooldown must be at least 1 point")
        self.cooldown = cooldown

    def train(self, scores: object = None, labels: object = None) -> RepeatSuppressor:
        """Nothing to learn; here so every post-rule has the same shape."""
        return self

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        z = np.nan_to_num(np.asarray(scores, dtype="float64"), nan=0.0)
        out = np.zeros(z.size)
        # earlier positive scores with strictly decreasing values: after popping the smaller ones,
        # the top is the latest score at least as high as the current one
        stack: list[tuple[int, float]] = []
        for t in np.flatnonzero(z > 0).tolist():
            value = float(z[t])
            while stack and stack[-1][1] < value:
                stack.pop()
            gap = t - stack[-1][0] if stack else self.cooldown
            out[t] = value * min(1.0, gap / self.cooldown)
            stack.append((t, value))
        return out
