"""Event-level metrics on hand-worked arrays (exact numbers)."""

from __future__ import annotations

import numpy as np
import pytest

from telewatch.bench.metrics import (
    composite_f1,
    composite_f1_curve,
    hit_rate,
    label_events,
    point_adjusted_f1,
    point_f1,
    pool,
)
from telewatch.core.errors import ValidationError

LABELS = np.array([0, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 1])  # events [1,4), [6,8), [11,12)
PRED = np.array([0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0])  # hits event 1 once, 2 false alarms


def test_label_events() -> None:
    assert label_events(LABELS) == [(1, 4), (6, 8), (11, 12)]
    assert label_events([]) == []
    assert label_events([0, 0]) == []
    assert label_events([1, 1, 1]) == [(0, 3)]
    assert label_events(np.array([True, False, True])) == [(0, 1), (2, 3)]


def test_point_f1_exact() -> None:
    r = point_f1(PRED, LABELS)
    assert (r.tp, r.fp, r.fn) == (1, 2, 5)
    assert r.precision == pytest.approx(1 / 3)
    assert r.recall == pytest.approx(1 / 6)
    assert r.f1 == pytest.approx(2 / 9)  # 2PR/(P+R) = (1/9)/(1/2)


def test_point_adjusted_f1_exact() -> None:
    r = point_adjusted_f1(PRED, LABELS)
    # the hit in [1,4) turns into 3 true positives; the other two events are missed
    assert (r.tp, r.fp, r.fn) == (3, 2, 3)
    assert (r.events_detected, r.events_total) == (1, 3)
    assert r.precision == pytest.approx(3 / 5)
    assert r.recall == pytest.approx(1 / 2)
    assert r.f1 == pytest.approx(6 / 11)


def test_composite_f1_exact() -> None:
    r = composite_f1(PRED, LABELS)
    assert (r.tp, r.fp, r.fn, r.events_detected, r.events_total) == (1, 2, 5, 1, 3)
    assert r.precision == pytest.approx(1 / 3)
    assert r.recall == pytest.approx(1 / 3)
    assert r.f1 == pytest.approx(1 / 3)


def test_no_alarms_and_no_labels_give_zero_not_nan() -> None:
    assert composite_f1(np.zeros(5), np.zeros(5)).f1 == 0.0
    assert point_f1(np.zeros(5), np.array([0, 1, 0, 0, 0])).f1 == 0.0
    assert point_adjusted_f1(np.ones(3), np.zeros(3)).precision == 0.0


def test_alarming_on_every_row_scores_about_0_1_not_1() -> None:
    # 10,000 rows, 20 events of 30 rows: 6% anomalous, 2 events per 1000 rows
    labels = np.zeros(10_000, dtype=int)
    for start in range(200, 10_000, 500):
        labels[start : start + 30] = 1
    assert labels.mean() == pytest.approx(0.06)
    everything = np.ones_like(labels)
    comp = composite_f1(everything, labels)
    assert comp.precision == pytest.approx(0.06)
    assert comp.recall == 1.0
    assert comp.f1 == pytest.approx(2 * 0.06 / 1.06)  # 0.113
    assert 0.1 < comp.f1 < 0.12
    # one alarm per event, nothing else: point-adjusted calls that perfect, point-wise F1 does not
    sparse = np.zeros_like(labels)
    sparse[np.arange(200, 10_000, 500)] = 1
    assert point_adjusted_f1(sparse, labels).f1 == 1.0
    assert point_f1(sparse, labels).f1 == pytest.approx(2 * (1 / 30) / (1 + 1 / 30))
    assert composite_f1(sparse, labels).f1 == 1.0


def test_composite_curve_matches_composite_f1() -> None:
    rng = np.random.default_rng(3)
    labels = (rng.random(3000) < 0.05).astype(int)
    labels[100:160] = 1
    labels[-5:] = 1  # an event that runs to the last row
    scores = rng.normal(size=3000) + 2 * labels
    scores[7] = np.nan
    thresholds = np.array([-1.0, 0.5, 1.5, 2.5, 10.0])
    curve = composite_f1_curve(scores, labels, thresholds)
    expected = [composite_f1(np.nan_to_num(scores, nan=-np.inf) > t, labels).f1 for t in thresholds]
    np.testing.assert_allclose(curve, expected)


def test_pool_sums_counts_then_computes() -> None:
    a = composite_f1([1, 1, 0, 0], [1, 0, 0, 1])  # tp 1 fp 1, events 1/2
    b = composite_f1([0, 0, 0, 1, 1, 1], [1, 1, 0, 0, 0, 1])  # tp 1 fp 2, events 1/2
    r = pool([a, b])
    assert (r.tp, r.fp, r.fn, r.events_detected, r.events_total) == (2, 3, 3, 2, 4)
    assert r.precision == pytest.approx(2 / 5)
    assert r.recall == pytest.approx(1 / 2)
    assert r.f1 == pytest.approx(4 / 9)
    p = pool([point_f1([1, 0], [1, 1]), point_f1([1, 1], [0, 1])])
    assert (p.tp, p.fp, p.fn) == (2, 1, 1)
    assert p.f1 == pytest.approx(2 / 3)
    pa = pool([point_adjusted_f1([1, 0], [1, 1])])
    assert (pa.kind, pa.tp, pa.events_detected) == ("point_adjusted", 2, 1)


def test_pool_refuses_mixed_kinds_and_nothing() -> None:
    with pytest.raises(ValidationError):
        pool([point_f1([1], [1]), composite_f1([1], [1])])
    with pytest.raises(ValidationError):
        pool([])


def test_length_mismatch_and_nan_rejected() -> None:
    with pytest.raises(ValidationError):
        point_f1([1, 0], [1, 0, 0])
    with pytest.raises(ValidationError):
        composite_f1([np.nan, 1.0], [1, 0])


def test_hit_rate_cutoffs_follow_tranad_round() -> None:
    ranking = np.array([5, 2, 9, 0, 1, 7, 3])
    assert hit_rate(ranking, {2, 7}, 1.0) == 0.5  # top 2: {5, 2}
    assert hit_rate(ranking, {2, 7}, 1.5) == 0.5  # round(3.0) = 3: {5, 2, 9}
    assert hit_rate(ranking, {5}, 1.0) == 1.0
    assert hit_rate(ranking, {2}, 1.5) == 1.0  # round(1.5) = 2 keeps {5, 2}
    # k=3, p=1.5: round(4.5) = 4 (half to even, like TranAD), so 7 at rank 6 is out
    assert hit_rate(ranking, {0, 1, 7}, 1.5) == pytest.approx(1 / 3)
    assert hit_rate(ranking, {0, 1, 7}, 2.0) == 1.0  # top 6
    assert hit_rate(ranking, {2, 7}, 10.0) == 1.0  # cut-off capped at the ranking's length
    with pytest.raises(ValidationError):
        hit_rate(ranking, set(), 1.0)
