"""Incident type rules, and grouping of anomalies into incidents (pure functions)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from telewatch.core.errors import ConfigError, ValidationError
from telewatch.demo import generate_demo
from telewatch.incidents.grouping import AnomalyRecord, group_anomalies
from telewatch.incidents.ranking import rank_window
from telewatch.incidents.types import MetricChange, classify, involvement_cut, load_rules

T0 = pd.Timestamp("2026-01-01", tz="UTC")
MIN = pd.Timedelta("1min")


def _a(
    i: int, metric: int, start: int, end: int, score: float = 9.0, key: str | None = None
) -> AnomalyRecord:
    return AnomalyRecord(i, metric, T0 + start * MIN, T0 + end * MIN, T0 + start * MIN, score, key)


# -- grouping -------------------------------------------------------------------------------------
def test_overlapping_anomalies_become_one_incident_and_distant_ones_stay_apart() -> None:
    drafts = group_anomalies(
        [_a(1, 10, 0, 5), _a(2, 11, 3, 9, 15.0), _a(3, 12, 12, 14), _a(4, 13, 40, 41)], merge_gap=5 * MIN
    )
    assert [d.anomaly_ids for d in drafts] == [(1, 2, 3), (4,)]
    first = drafts[0]
    assert (first.start, first.end) == (T0, T0 + 14 * MIN)
    assert first.peak_score == 15.0
    assert first.peak_metric_id == 11
    assert first.metric_ids == (10, 11, 12)


def test_merge_gap_zero_keeps_touching_but_not_separate_anomalies() -> None:
    drafts = group_anomalies([_a(1, 1, 0, 5), _a(2, 2, 5, 6), _a(3, 3, 7, 8)], merge_gap=pd.Timedelta(0))
    assert [d.anomaly_ids for d in drafts] == [(1, 2), (3,)]


def test_a_bridging_anomaly_merges_two_incidents() -> None:
    drafts = group_anomalies([_a(1, 1, 0, 5), _a(2, 2, 20, 25), _a(3, 3, 4, 22)], merge_gap=MIN)
    assert [d.anomaly_ids for d in drafts] == [(1, 2, 3)]


def test_different_slices_stay_apart_and_unknown_slices_join_any() -> None:
    drafts = group_anomalies(
        [_a(1, 1, 0, 10, key="app-1"), _a(2, 2, 2, 8, key="app-2"), _a(3, 3, 5, 6, key=None)], merge_gap=MIN
    )
    assert sorted(d.anomaly_ids for d in drafts) == [(1, 3), (2,)]
    assert {d.key for d in drafts} == {"app-1", "app-2"}


def test_grouping_is_deterministic_and_order_free() -> None:
    anoms = [_a(i, i % 4, 7 * i, 7 * i + 3 + i % 3) for i in range(30)]
    one = group_anomalies(anoms, merge_gap=2 * MIN)
    two = group_anomalies(list(reversed(anoms)), merge_gap=2 * MIN)
    assert [d.anomaly_ids for d in one] == [d.anomaly_ids for d in two]


def test_bad_anomaly_span_is_rejected() -> None:
    with pytest.raises(ValidationError, match="anomaly 1"):
        group_anomalies([_a(1, 1, 5, 2)])
    with pytest.raises(ValidationError, match="merge_gap"):
        group_anomalies([], merge_gap=-MIN)


# -- rules ----------------------------------------------------------------------------------------
def test_shipped_rules_name_each_demo_kind_from_its_metrics() -> None:
    rules = load_rules()
    kinds = {
        "backend_outage",
        "error_burst",
        "latency_degradation",
        "cpu_saturation",
        "memory_leak",
        "temperature_rise",
        "channel_overload",
        "sessions_drop",
        "users_drop",
        "equipment_unavailable",
    }
    assert kinds <= {t.name for t in rules.types}
    cases = {
        "backend_outage": [
            ("throughput_rpm", "down"),
            ("error_rate", "up"),
            ("web_response_ms", "up"),
            ("apdex", "down"),
            ("cpu_percent", "down"),
        ],
        "error_burst": [("error_rate", "up"), ("apdex", "down")],
        "latency_degradation": [("web_response_ms", "up"), ("apdex", "down")],
        "cpu_saturation": [
            ("cpu_percent", "up"),
            ("web_response_ms", "up"),
            ("apdex", "down"),
            ("temperature_c", "up"),
        ],
        "memory_leak": [("memory_percent", "up"), ("cpu_percent", "up"), ("temperature_c", "up")],
        "temperature_rise": [("temperature_c", "up"), ("cpu_percent", "up")],
        "channel_overload": [
            ("channel_load_percent", "up"),
            ("active_sessions", "down"),
            ("active_users", "down"),
        ],
        "sessions_drop": [("active_sessions", "down"), ("channel_load_percent", "down")],
        "users_drop": [("active_users", "down"), ("throughput_rpm", "down"), ("cpu_percent", "down")],
    }
    for kind, changes in cases.items():
        typed = classify(rules, [MetricChange(m, d) for m, d in changes])  # type: ignore[arg-type]
        assert typed is not None, kind
        assert typed.name == kind, (kind, typed)
    assert classify(rules, [MetricChange("web_response_ms", "down")]) is None


def test_types_from_the_scan_of_each_planted_demo_incident() -> None:
    """The scan's directions over the demo's planted windows type every incident right (each
    incident's own metrics flagged anomalous, as the incident service flags them)."""
    data = generate_demo(days=30)
    frame = data.frame.asfreq("1min")
    names = list(frame.columns)
    values = frame.to_numpy().T
    rules = load_rules()
    right = 0
    for inc in data.incidents:
        w0 = frame.index.get_loc(inc.start)
        w1 = frame.index.get_loc(inc.end) + 1
        ranked = rank_window(values, w0, w1, names=names, target=names.index(inc.metrics[0]))
        cut = involvement_cut(ranked[0].score)
        # as the incident service does: the planted (anomalous) metrics are flagged and always
        # involved; the others count when the scan says they clearly moved
        changes = [
            MetricChange(r.name, r.direction, anomalous=r.name in inc.metrics)
            for r in ranked
            if r.score >= cut or r.name in inc.metrics
        ]
        typed = classify(rules, changes)
        right += typed is not None and typed.name == inc.kind
    assert right == len(data.incidents)


def test_a_custom_rule_file_is_used_and_bad_files_name_the_fault(tmp_path: Path) -> None:
    good = tmp_path / "types.yaml"
    good.write_text(
        "types:\n  - name: hot\n    title: Hot\n    all:\n      - {metric: 'temp*', direction: up}\n"
    )
    rules = load_rules(good)
    assert rules.source == str(good)
    hot = classify(rules, [MetricChange("temperature_c", "up")])
    assert hot is not None
    assert hot.title == "Hot"
    bad = tmp_path / "bad.yaml"
    bad.write_text("types:\n  - name: hot\n    title: Hot\n    all:\n      - {direction: sideways}\n")
    with pytest.raises(ConfigError, match=r"types\.0\.all\.0"):
        load_rules(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("types: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_rules(broken)
    with pytest.raises(ConfigError, match="no rule file"):
        load_rules(tmp_path / "absent.yaml")
    dupes = tmp_path / "dupes.yaml"
    dupes.write_text("types:\n" + "  - {name: a, title: A, all: [{metric: x}]}\n" * 2)
    with pytest.raises(ConfigError, match="duplicate"):
        load_rules(dupes)


def test_rules_path_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "env.yaml"
    path.write_text("types:\n  - {name: only, title: Only, all: [{metric: '*'}]}\n")
    monkeypatch.setenv("TELEWATCH_INCIDENT_TYPES", str(path))
    assert [t.name for t in load_rules().types] == ["only"]


def test_the_type_explains_the_metrics_that_fired_not_those_that_moved_with_them() -> None:
    """Seen on a real month: a throughput collapse typed "Latency degradation" (the response time
    rose a little with it) and a latency burst typed "Error burst" (the error share moved with it).
    The anomalous metrics decide; the scan's companions only add weight."""
    rules = load_rules()

    def typed(*changes: tuple[str, str, bool]) -> str | None:
        found = classify(rules, [MetricChange(m, d, anomalous=a) for m, d, a in changes])  # type: ignore[arg-type]
        return found.name if found is not None else None

    assert typed(("throughput", "down", True), ("web_response", "up", False)) == "traffic_drop"
    assert typed(("web_response", "up", True), ("error", "up", False)) == "latency_degradation"
    assert typed(("throughput", "up", True)) == "traffic_surge"
    # errors and traffic down both fired: an outage, not a traffic drop nor an error burst
    assert (
        typed(("error", "up", True), ("throughput", "down", True), ("apdex", "down", False))
        == "backend_outage"
    )
    # the same changes with nothing flagged are typed by the count of matched conditions, as before
    assert typed(("throughput", "down", False), ("web_response", "up", False), ("apdex", "down", False)) == (
        "traffic_drop"
    )
    # a type that explains none of the anomalous metrics is not given: untyped beats a wrong type
    assert typed(("memory_percent", "down", True), ("error", "up", False)) is None
    assert typed(("web_response", "down", True), ("error", "up", False)) is None
