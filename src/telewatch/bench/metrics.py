"""Event-level detection metrics and root-cause hit rates (pure numpy, vectorised).

Three F1 flavours, all from a 0/1 prediction and a 0/1 label array of the same length:

* :func:`point_f1` — every row on its own. Strict; long events weigh by their length.
* :func:`point_adjusted_f1` — the OmniAnomaly/"PA" protocol: if *any* row of a labelled segment is
  predicted, the *whole* segment counts as detected. **It flatters**: a detector that fires once per
  long event gets the event's full length as true positives, and random alarms score well on data with
  long events. Report it only next to the other two, never as the headline.
* :func:`composite_f1` — Garg et al. 2021 ("An Evaluation of Anomaly Detection and Diagnosis in
  Multivariate Time Series", IEEE TNNLS): point-wise precision with *event-wise* recall (an event is a
  contiguous labelled segment, detected if any alarm falls inside it). Alarming on every row gets
  precision = label share and recall = 1, so F1 ≈ 2p/(1+p) — about 0.11 at SMD's 6% — not 1.

Every result carries its counts so scores can be *pooled* over machines with :func:`pool` (sum the
counts, then compute), which weighs machines by their size and events, unlike a mean of per-machine F1.
Where a ratio has a zero denominator it is 0.0 (sklearn's ``zero_division=0``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from telewatch.core.errors import ValidationError

MetricKind = Literal["point", "point_adjusted", "composite"]


@dataclass(frozen=True)
class PRF:
    """Precision, recall, F1 and the counts they came from.

    ``tp``/``fp``/``fn`` count rows (after adjustment for ``point_adjusted``). For ``composite``,
    precision comes from ``tp``/``fp`` and recall from ``events_detected``/``events_total``.
    """

    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int
    events_detected: int = 0
    events_total: int = 0
    kind: MetricKind = "point"


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else 0.0


def _harmonic(p: float, r: float) -> float:
    return 2.0 * p * r / (p + r) if p + r > 0 else 0.0


def _as_bool(name: str, x: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValidationError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    if arr.dtype != np.bool_:
        if arr.size and np.isnan(arr.astype("float64")).any():
            raise ValidationError(f"{name}: NaN is not a 0/1 value")
        arr = arr != 0
    return arr


def _pair(pred: npt.ArrayLike, labels: npt.ArrayLike) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    p, y = _as_bool("pred", pred), _as_bool("labels", labels)
    if p.shape != y.shape:
        raise ValidationError(f"pred and labels differ in length: {p.size} != {y.size}")
    return p, y


def _event_bounds(labels: npt.NDArray[np.bool_]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    padded = np.concatenate(([0], labels.astype(np.int8), [0]))
    edges = np.diff(padded)
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _detected(
    pred: npt.NDArray[np.bool_], starts: npt.NDArray[np.intp], ends: npt.NDArray[np.intp]
) -> npt.NDArray[np.bool_]:
    csum = np.concatenate(([0], np.cumsum(pred, dtype=np.int64)))
    return np.asarray((csum[ends] - csum[starts]) > 0)


def label_events(labels: npt.ArrayLike) -> list[tuple[int, int]]:
    """Contiguous runs of 1 in ``labels`` as ``(start, end)`` row pairs, end exclusive.

    >>> label_events([0, 1, 1, 0, 0, 1, 0, 1])
    [(1, 3), (5, 6), (7, 8)]
    """
    starts, ends = _event_bounds(_as_bool("labels", labels))
    return [(int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def point_f1(pred: npt.ArrayLike, labels: npt.ArrayLike) -> PRF:
    """Row-wise precision, recall and F1.

    >>> r = point_f1([1, 1, 0, 0, 1], [1, 0, 0, 1, 1])
    >>> (r.tp, r.fp, r.fn, round(r.f1, 3))
    (2, 1, 1, 0.667)
    """
    p, y = _pair(pred, labels)
    tp = int(np.count_nonzero(p & y))
    fp = int(np.count_nonzero(p & ~y))
    fn = int(np.count_nonzero(~p & y))
    return _point_prf(tp, fp, fn, kind="point")


def _point_prf(tp: int, fp: int, fn: int, *, kind: MetricKind) -> PRF:
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return PRF(precision, recall, _harmonic(precision, recall), tp, fp, fn, kind=kind)


def point_adjusted_f1(pred: npt.ArrayLike, labels: npt.ArrayLike) -> PRF:
    """Point-adjusted F1: a labelled segment hit anywhere counts as predicted in full. **Flatters.**

    One alarm inside a 4-row event turns into 4 true positives:

    >>> r = point_adjusted_f1([0, 1, 0, 0, 0, 0, 1], [1, 1, 1, 1, 0, 0, 0])
    >>> (r.tp, r.fp, r.fn, round(r.f1, 3))
    (4, 1, 0, 0.889)
    """
    p, y = _pair(pred, labels)
    starts, ends = _event_bounds(y)
    hit = _detected(p, starts, ends)
    mark = np.zeros(p.size + 1, dtype=np.int64)
    np.add.at(mark, starts[hit], 1)
    np.add.at(mark, ends[hit], -1)
    adjusted = p | (np.cumsum(mark[:-1]) > 0)
    tp = int(np.count_nonzero(adjusted & y))
    fp = int(np.count_nonzero(adjusted & ~y))
    fn = int(np.count_nonzero(~adjusted & y))
    r = _point_prf(tp, fp, fn, kind="point_adjusted")
    return PRF(**{**r.__dict__, "events_detected": int(hit.sum()), "events_total": int(starts.size)})


def composite_f1(pred: npt.ArrayLike, labels: npt.ArrayLike) -> PRF:
    """Garg et al. 2021 composite F1: point-wise precision, event-wise recall.

    Two events, one hit by an alarm, plus one false alarm: precision 1/2, recall 1/2.

    >>> r = composite_f1([0, 1, 0, 0, 0, 1, 0], [1, 1, 0, 0, 1, 0, 0])
    >>> (r.precision, r.recall, r.f1, r.events_detected, r.events_total)
    (0.5, 0.5, 0.5, 1, 2)
    """
    p, y = _pair(pred, labels)
    starts, ends = _event_bounds(y)
    detected = int(_detected(p, starts, ends).sum())
    tp = int(np.count_nonzero(p & y))
    fp = int(np.count_nonzero(p & ~y))
    fn = int(np.count_nonzero(~p & y))
    return _composite_prf(tp, fp, fn, detected, int(starts.size))


def _composite_prf(tp: int, fp: int, fn: int, detected: int, total: int) -> PRF:
    precision, recall = _ratio(tp, tp + fp), _ratio(detected, total)
    return PRF(precision, recall, _harmonic(precision, recall), tp, fp, fn, detected, total, "composite")


def composite_f1_curve(
    scores: npt.ArrayLike, labels: npt.ArrayLike, thresholds: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Composite F1 of ``scores > t`` for every ``t`` in ``thresholds``, in one vectorised pass.

    NaN scores never alarm.

    >>> composite_f1_curve([0.1, 0.9, 0.2, 0.8], [0, 1, 0, 0], [0.5, 0.85, 0.95]).round(3).tolist()
    [0.667, 1.0, 0.0]
    """
    s = np.asarray(scores, dtype="float64")
    y = _as_bool("labels", labels)
    t = np.asarray(thresholds, dtype="float64").ravel()
    if s.shape != y.shape:
        raise ValidationError(f"scores and labels differ in length: {s.size} != {y.size}")
    s = np.where(np.isnan(s), -np.inf, s)
    pos = np.sort(s[y])
    neg = np.sort(s[~y])
    tp = pos.size - np.searchsorted(pos, t, side="right")
    fp = neg.size - np.searchsorted(neg, t, side="right")
    starts, ends = _event_bounds(y)
    if starts.size:
        # max score inside each event: reduce over [start, end) pairs; the -inf sentinel keeps
        # an end equal to len(s) a valid index.
        bounds = np.column_stack((starts, ends)).ravel()
        event_max = np.maximum.reduceat(np.append(s, -np.inf), bounds)[::2]
        emax = np.sort(event_max)
        detected = emax.size - np.searchsorted(emax, t, side="right")
    else:
        detected = np.zeros_like(tp)
    precision = np.divide(tp, tp + fp, out=np.zeros(t.size), where=(tp + fp) > 0)
    recall = detected / starts.size if starts.size else np.zeros(t.size)
    den = precision + recall
    return np.asarray(np.divide(2 * precision * recall, den, out=np.zeros(t.size), where=den > 0))


def pool(prfs: Iterable[PRF]) -> PRF:
    """Pool results over machines: sum the counts, then compute the ratios.

    >>> a = composite_f1([1, 0, 0, 0], [1, 0, 0, 1])
    >>> b = composite_f1([0, 0, 1, 0], [0, 1, 0, 0])
    >>> r = pool([a, b])
    >>> (r.tp, r.fp, r.events_detected, r.events_total, round(r.f1, 3))
    (1, 1, 1, 3, 0.4)
    """
    items = list(prfs)
    if not items:
        raise ValidationError("pool: nothing to pool")
    kinds = {r.kind for r in items}
    if len(kinds) != 1:
        raise ValidationError(f"pool: cannot mix metric kinds {sorted(kinds)}")
    kind = items[0].kind
    tp, fp, fn = (sum(getattr(r, f) for r in items) for f in ("tp", "fp", "fn"))
    det, tot = sum(r.events_detected for r in items), sum(r.events_total for r in items)
    if kind == "composite":
        return _composite_prf(tp, fp, fn, det, tot)
    r = _point_prf(tp, fp, fn, kind=kind)
    return PRF(**{**r.__dict__, "events_detected": det, "events_total": tot})


def mean_f1(prfs: Sequence[PRF]) -> float:
    """Unweighted mean of per-machine F1 (the other common way to average)."""
    return float(np.mean([r.f1 for r in prfs])) if prfs else 0.0


def hit_rate(ranking: npt.ArrayLike, true_dims: set[int], p: float) -> float:
    """Share of the ``k`` true dimensions found in the top ``round(p * k)`` of ``ranking``.

    ``ranking`` lists dimension indices, most suspicious first. The cut-off follows TranAD's
    ``src/diagnosis.py`` (``hit_att``: ``size = round(p * len(l) / 100)``) — Python's ``round``, which
    rounds halves to even, so ``p=1.5`` keeps 2 of k=1, 4 of k=3 and 8 of k=5 — keeping scores
    comparable with published HitRate@P%. An empty ``true_dims`` is an error (nothing to hit).

    >>> hit_rate([3, 0, 2, 1], {0, 1}, 1.0)
    0.5
    >>> hit_rate([3, 0, 2, 1], {0, 1}, 1.5)
    0.5
    >>> hit_rate([3, 0, 2, 1], {0, 1}, 2.0)
    1.0
    """
    if not true_dims:
        raise ValidationError("hit_rate: true_dims is empty")
    order = np.asarray(ranking).ravel()
    size = max(0, min(round(p * len(true_dims)), order.size))
    top = {int(d) for d in order[:size]}
    return len(top & true_dims) / len(true_dims)
