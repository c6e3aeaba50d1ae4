"""The fast incident path gives exactly what the slow one gave.

* ``rank_window(limit=, keep=)`` formats only the kept rows: they must equal the rows of the full
  ranking (ranks, scores, reasons...), and the full ranking must equal the per-row loop it replaced
  (kept here verbatim as the reference);
* ``directions`` (read by the incident typing instead of formatted rows) equals the ranking's;
* ``classify`` over a ``_ChangeIndex`` picks the same type as the per-change loop it replaced, on
  random rule sets and changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple
from fnmatch import fnmatchcase
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telewatch.core.errors import ValidationError
from telewatch.incidents.ranking import (
    Evidence,
    RankedMetric,
    _fmt_duration,
    _fmt_p,
    _fmt_pct,
    directions,
    rank_evidence,
    rank_window,
    window_evidence,
)
from telewatch.incidents.types import Condition, IncidentType, MetricChange, RuleSet, classify, load_rules

STEP = pd.Timedelta("1min")


# -- the replaced implementations, verbatim -------------------------------------------------------
def _reference_rows(
    ev: Evidence, names: Sequence[str], step: pd.Timedelta | None, target: int | None
) -> list[RankedMetric]:
    """The per-row loop ``rank_window`` had before it formatted selected rows only."""
    order = [i for i in np.argsort(-ev.score, kind="stable") if ev.left_out is None or ev.left_out[i] == 0]
    out: list[RankedMetric] = []
    target_name = names[target] if target is not None else None
    for rank, i in enumerate(order, start=1):
        i = int(i)
        shift = float(ev.shift[i])
        rel = float(ev.rel_change[i])
        mean_dir = rel if np.isfinite(rel) else shift
        sign = shift if abs(shift) >= 0.5 else mean_dir
        direction = "flat" if ev.z[i] < 0.5 and abs(shift) < 0.5 else ("up" if sign > 0 else "down")
        verb = "rose" if sign > 0 else "fell"
        agrees = np.isfinite(rel) and rel != 0 and (rel > 0) == (sign > 0)
        if direction == "flat":
            magnitude, kind = (rel, "relative") if np.isfinite(rel) else (shift, "z")
            change = "barely changed"
            if np.isfinite(rel) and abs(rel) >= 0.005:
                change += f" (mean {'+' if rel > 0 else '-'}{_fmt_pct(rel)}, within its usual variation)"
        elif agrees and not (abs(shift) >= 0.5 and abs(rel) < 0.005):
            magnitude, kind = rel, "relative"
            change = f"{verb} {_fmt_pct(rel)}"
        else:
            magnitude, kind = shift, "z"
            change = f"{verb} by {abs(shift):.1f} sd"
            if np.isfinite(rel) and abs(rel) >= 0.005 and (rel > 0) != (sign > 0):
                change += f" (median; its mean {'+' if rel > 0 else '-'}{_fmt_pct(rel)})"
        bname = ev.baselines[int(ev.binding[i])]
        if bname == "history":
            against = "vs its history"
        elif bname == "same_hours":
            days = ev.seasonal_days
            against = f"vs the same hours of the previous {days} day{'s' if days != 1 else ''}"
        else:
            against = "vs the preceding period"
        reason = f"{names[i]} {change} {against} (KS {_fmt_p(float(ev.ks_p[i]))}, mean |z| {ev.z[i]:.1f})"
        lead: int | None = None
        corr: float | None = None
        if target is not None:
            corr = float(ev.corr[i])
            lead = None if direction == "flat" and i != target else int(ev.lead_lag[i])
            if i != target and direction != "flat" and np.isfinite(corr) and abs(corr) >= 0.3:
                assert lead is not None
                if lead > 0:
                    reason += f", moved {_fmt_duration(lead, step)} before {target_name}"
                elif lead < 0:
                    reason += f", moved {_fmt_duration(-lead, step)} after {target_name}"
                else:
                    reason += f", moved with {target_name}"
        extra: dict[str, float] = {}
        if np.isfinite(ev.score_excess[i]):
            extra["score_excess"] = float(ev.score_excess[i])
        out.append(
            RankedMetric(
                rank=rank,
                index=i,
                name=names[i],
                score=float(ev.score[i]),
                direction=direction,  # type: ignore[arg-type]
                magnitude=float(np.nan_to_num(magnitude)),
                magnitude_kind=kind,  # type: ignore[arg-type]
                z=float(ev.z[i]),
                ks_d=float(ev.ks_d[i]),
                ks_p=float(ev.ks_p[i]),
                lead_lag=lead,
                corr=corr,
                baseline=bname,
                reason=reason,
                extra=extra,
            )
        )
    return out


def _reference_classify(rules: RuleSet, changes: Sequence[MetricChange]) -> IncidentType | None:
    """``classify`` as it was: every condition tried against every change."""

    def count(rule: IncidentType) -> int | None:
        for cond in rule.all:
            if not any(cond.matches(c) for c in changes):
                return None
        hits_any = sum(1 for cond in rule.any if any(cond.matches(c) for c in changes))
        if rule.any and hits_any < min(rule.min_any, len(rule.any)):
            return None
        for cond in rule.none:
            if any(cond.matches(c) for c in changes):
                return None
        return len(rule.all) + hits_any

    best: tuple[int, int, int] | None = None
    chosen: IncidentType | None = None
    for pos, rule in enumerate(rules.types):
        n = count(rule)
        if n is not None and (best is None or (n, rule.priority, -pos) > best):
            best, chosen = (n, rule.priority, -pos), rule
    return chosen


def _same(a: Sequence[RankedMetric], b: Sequence[RankedMetric]) -> bool:
    # repr: NaN (corr without a target's overlap, say) compares equal to itself
    return [repr(astuple(r)) for r in a] == [repr(astuple(r)) for r in b]


# -- ranking ----------------------------------------------------------------------------------------
def _matrix(seed: int, n_metrics: int, days: int, constant: int) -> tuple[np.ndarray, int, int]:
    """Noise with a daily cycle; planted rises, falls, spikes, level-zero and missing rows."""
    rng = np.random.default_rng(seed)
    n_time = days * 1440 + 400 if days else 400
    t = np.arange(n_time)
    x = 100.0 + 10.0 * np.sin(2 * np.pi * t / 1440)[None, :] + rng.normal(0, 2.0, (n_metrics, n_time))
    w0, w1 = n_time - int(rng.integers(10, 90)), n_time
    for row in rng.choice(n_metrics, size=max(1, n_metrics // 3), replace=False):
        kind = int(rng.integers(0, 4))
        if kind == 0:
            x[row, w0:w1] += rng.uniform(5, 60)
        elif kind == 1:
            x[row, w0:w1] -= rng.uniform(5, 60)
        elif kind == 2:
            x[row, w0 + int(rng.integers(0, w1 - w0))] *= 3.0
        else:
            x[row] -= 100.0  # a level around zero: the change is reported in sd, not %
    x[:constant] = 0.0  # constant rows
    if n_metrics > constant + 1:
        x[constant, w0:w1] = np.nan  # no data in the window
    x[rng.random(x.shape) < 0.02] = np.nan
    return x, w0, w1


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_metrics=st.integers(3, 40),
    days=st.sampled_from([0, 2]),
    constant=st.integers(0, 2),
    use_target=st.booleans(),
    use_scores=st.booleans(),
    limit=st.integers(1, 12),
    keep_share=st.sampled_from([0.0, 0.2, 0.7]),
    step=st.sampled_from([STEP, None, pd.Timedelta("5s"), pd.Timedelta("1h")]),
)
def test_kept_rows_equal_the_full_ranking_and_the_per_row_loop(
    seed: int,
    n_metrics: int,
    days: int,
    constant: int,
    use_target: bool,
    use_scores: bool,
    limit: int,
    keep_share: float,
    step: pd.Timedelta | None,
) -> None:
    x, w0, w1 = _matrix(seed, n_metrics, days, constant)
    rng = np.random.default_rng(seed + 1)
    names = [f"m{i}" + ("{host=a}" if i % 2 else "") for i in range(n_metrics)]
    target = int(rng.integers(constant, n_metrics)) if use_target else None
    scores = np.abs(rng.normal(0, 1, x.shape)) if use_scores else None
    if scores is not None:
        scores[: n_metrics // 2, : w0 - 5] = np.nan  # no scores in the baseline: a huge excess
    kw: dict[str, Any] = {"names": names, "step": step, "target": target, "scores": scores}
    full = rank_window(x, w0, w1, **kw)
    ev = window_evidence(x, w0, w1, target=target, scores=scores)
    assert _same(full, _reference_rows(ev, names, step, target))

    mask = rng.random(n_metrics) < keep_share
    some = rank_window(x, w0, w1, limit=limit, keep=lambda e: mask, **kw)
    expected = [r for r in full if r.rank <= limit or mask[r.index]]
    assert _same(some, expected)
    assert [r.rank for r in some] == sorted(r.rank for r in some)
    # the same from evidence computed once
    again = rank_evidence(ev, names=names, step=step, target=target, limit=limit, keep=lambda e: mask)
    assert _same(again, expected)
    # keep without a limit: everything, as before
    assert _same(rank_window(x, w0, w1, keep=lambda e: mask, **kw), full)
    # directions of all rows without formatting them
    by_index = {r.index: r.direction for r in full}
    assert directions(ev).tolist() == [by_index.get(i, "flat") for i in range(n_metrics)]
    # metrics without data in the window (or before it) are left out, and only they
    assert ev.left_out is not None
    assert sorted(by_index) == [i for i in range(n_metrics) if ev.left_out[i] == 0]


@st.composite
def evidence(draw: st.DrawFn) -> tuple[Evidence, int | None]:
    """Evidence arrays drawn directly: values at and around every threshold of the row format
    (|shift| and mean |z| near 0.5, |corr| near 0.3, p near 1e-6 and 1e-3), NaN, ties and ±inf."""
    n = draw(st.integers(1, 25))
    near = st.sampled_from([0.0, 0.3, 0.49, 0.5, 0.51, 0.7, -0.3, -0.49, -0.5, -0.51, -0.7, 2.5, -4.0])
    num = st.one_of(near, st.floats(-50, 50, allow_nan=False))
    rel = st.one_of(num, st.just(float("nan")), st.just(float("inf")), st.just(-0.0))
    p = st.sampled_from([0.0, 5e-7, 1e-6, 5e-4, 1e-3, 0.0123, 0.5, 1.0])

    def arr(elements: st.SearchStrategy[float]) -> np.ndarray:
        return np.asarray(draw(st.lists(elements, min_size=n, max_size=n)), dtype=np.float64)

    with_history = draw(st.booleans())
    baselines = ("preceding", "history", "same_hours") if with_history else ("preceding", "same_hours")
    target = draw(st.one_of(st.none(), st.integers(0, n - 1)))
    ev = Evidence(
        score=arr(st.sampled_from([0.0, 1.0, 3.0, 3.0, 7.5, 12.0])),  # many ties: stable order
        z=np.abs(arr(num)),
        shift=arr(num),
        ks_d=np.abs(arr(num)) / 50,
        ks_p=arr(p),
        rel_change=arr(rel),
        score_excess=arr(st.one_of(num, st.just(float("nan")))),
        binding=np.asarray(
            draw(st.lists(st.integers(0, len(baselines) - 1), min_size=n, max_size=n)), dtype=np.int8
        ),
        baselines=baselines,
        seasonal_days=draw(st.integers(1, 3)),
        lead_lag=np.asarray(draw(st.lists(st.integers(-20, 20), min_size=n, max_size=n)), dtype=np.int64),
        corr=arr(st.one_of(near, st.just(float("nan")), st.floats(-1, 1))),
    )
    return ev, target


@settings(max_examples=200, deadline=None)
@given(
    drawn=evidence(),
    limit=st.one_of(st.none(), st.integers(1, 5)),
    step=st.sampled_from([STEP, None, pd.Timedelta("5s"), pd.Timedelta("3h")]),
)
def test_rows_at_every_format_threshold_equal_the_per_row_loop(
    drawn: tuple[Evidence, int | None], limit: int | None, step: pd.Timedelta | None
) -> None:
    ev, target = drawn
    names = [f"m{i}" for i in range(ev.score.size)]
    full = _reference_rows(ev, names, step, target)
    mask = ev.score == 3.0
    got = rank_evidence(ev, names=names, step=step, target=target, limit=limit, keep=lambda e: mask)
    assert _same(got, [r for r in full if limit is None or r.rank <= limit or mask[r.index]])
    assert directions(ev).tolist() == [r.direction for r in sorted(full, key=lambda r: r.index)]


def test_keep_can_select_by_evidence_and_rejects_a_wrong_mask() -> None:
    x, w0, w1 = _matrix(7, 30, 0, 1)
    names = [f"m{i}" for i in range(30)]
    full = rank_window(x, w0, w1, names=names)
    cut = full[0].score / 4
    strong = rank_window(x, w0, w1, names=names, limit=2, keep=lambda ev: ev.score >= cut)
    assert [r.rank for r in strong] == [r.rank for r in full if r.rank <= 2 or r.score >= cut]
    assert len(strong) < len(full)
    with pytest.raises(ValidationError, match="mask of shape"):
        rank_window(x, w0, w1, names=names, limit=2, keep=lambda ev: np.ones(3, dtype=bool))


# -- classify ---------------------------------------------------------------------------------------
METRICS = ["error_rate", "error_count", "throughput_rpm", "cpu_percent", "apdex", "web_response_ms", "x"]
GLOBS = ["error*", "*rate", "throughput*", "cpu_percent", "*", "?pdex", "[aw]*", "*_ms", "e*_c*", "nope"]
GROUPS = [None, "web", "host", "network", "web-2"]
GROUP_GLOBS = ["web*", "host", "*", "n?twork", "[hn]*", "", "?*"]  # "": only a missing group

conditions = st.builds(
    Condition,
    metric=st.one_of(st.none(), st.sampled_from(GLOBS)),
    group=st.sampled_from(GROUP_GLOBS),
    direction=st.sampled_from(["up", "down", "any"]),
) | st.builds(Condition, metric=st.sampled_from(GLOBS), direction=st.sampled_from(["up", "down", "any"]))


@st.composite
def rule_sets(draw: st.DrawFn) -> RuleSet:
    types = []
    for k in range(draw(st.integers(1, 6))):
        all_ = draw(st.lists(conditions, max_size=3))
        any_ = draw(st.lists(conditions, min_size=0 if all_ else 1, max_size=3))
        types.append(
            IncidentType(
                name=f"t{k}",
                title=f"T{k}",
                priority=draw(st.integers(0, 2)),
                all=all_,
                any=any_,
                min_any=draw(st.integers(0, 3)),
                none=draw(st.lists(conditions, max_size=2)),
            )
        )
    return RuleSet(types=types)


changes = st.lists(
    st.builds(
        MetricChange,
        metric=st.sampled_from(METRICS),
        direction=st.sampled_from(["up", "down", "flat"]),
        group=st.sampled_from(GROUPS),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(rules=rule_sets(), seen=changes)
def test_classify_picks_what_the_per_change_loop_picked(rules: RuleSet, seen: list[MetricChange]) -> None:
    expected = _reference_classify(rules, seen)
    got = classify(rules, seen)
    assert (got.name if got else None) == (expected.name if expected else None)
    for rule in rules.types:  # the public per-rule count, too
        assert rule.match_count(seen) == _reference_classify_count(rule, seen)


def _reference_classify_count(rule: IncidentType, seen: Sequence[MetricChange]) -> int | None:
    single = RuleSet(types=[rule])
    if _reference_classify(single, seen) is None:
        return None
    return len(rule.all) + sum(1 for cond in rule.any if any(cond.matches(c) for c in seen))


@settings(max_examples=100, deadline=None)
@given(seen=changes)
def test_shipped_rules_classify_as_before(seen: list[MetricChange]) -> None:
    rules = load_rules()
    expected = _reference_classify(rules, seen)
    got = classify(rules, seen)
    assert (got.name if got else None) == (expected.name if expected else None)


def test_glob_matching_stays_fnmatchcase() -> None:
    # case-sensitive, whole name, character classes; a group glob sees a missing group as ""
    names = ["Error_rate", "error_rate", "error_rate_total", "a.b", "a[b"]
    for pattern in ["error_rate", "E*", "*rate", "a.b", "a?b", "a[[]b", "*"]:
        for name in names:
            rules = RuleSet(types=[IncidentType(name="t", title="T", all=[Condition(metric=pattern)])])
            got = classify(rules, [MetricChange(name, "up")]) is not None
            assert got == fnmatchcase(name, pattern), (pattern, name)
    only_group = RuleSet(types=[IncidentType(name="t", title="T", all=[Condition(group="*")])])
    assert classify(only_group, [MetricChange("m", "down", None)]) is not None
    assert classify(only_group, [MetricChange("m", "flat", "web")]) is None
