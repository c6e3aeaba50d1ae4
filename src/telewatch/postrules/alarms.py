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
