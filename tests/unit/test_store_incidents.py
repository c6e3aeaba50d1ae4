"""The incidents-and-feedback repository (store/incidents.py) and the many-metric reads (store/overview.py)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from telewatch.core.errors import ValidationError
from telewatch.services.incidents import get_incident, list_incidents, update_incidents
from telewatch.store import incidents as inc
from telewatch.store import overview, repo
from telewatch.store.db import Store

T = pd.Timestamp("2026-01-01", tz="UTC")
MIN = pd.Timedelta("1min")


@pytest.fixture
def store() -> Iterator[Store]:
    with Store(":memory:") as s:
        yield s


def _fields(**changes: object) -> inc.IncidentFields:
    base: dict[str, object] = {
        "start": T,
        "end": T + 5 * MIN,
        "peak": T + 2 * MIN,
        "peak_score": 9.5,
        "peak_metric_id": 1,
        "state": "open",
        "type": None,
        "type_title": None,
        "slice_key": "app-1",
        "title": "Anomaly: cpu",
    }
    return inc.IncidentFields(**{**base, **changes})  # type: ignore[arg-type]


def test_an_incident_reads_back_as_written_and_goes_with_its_members(store: Store) -> None:
    cur = store.cursor()
    cpu = repo.upsert_metric(cur, name="cpu", labels={"host": "app-1"})
    mem = repo.upsert_metric(cur, name="mem")
    with store.transaction() as tx:
        incident_id = inc.insert_incident(tx, _fields(peak_metric_id=cpu))
        inc.write_incident_members(
            tx,
            incident_id,
            [
                inc.IncidentMemberRow(cpu, 1, 4.0, "up", 0.5, "relative", 0, True, "cpu rose"),
                inc.IncidentMemberRow(mem, 2, 2.0, "down", None, None, None, False, "mem fell"),
            ],
        )
        inc.write_incident_anomalies(tx, incident_id, [7, 3])
    found = inc.read_incident(cur, incident_id)
    assert found == (_fields(peak_metric_id=cpu), None)
    assert inc.list_incident_spans(cur) == [inc.IncidentSpan(incident_id, T, T + 5 * MIN, "app-1", None)]
    assert inc.incident_anomaly_ids(cur, incident_id) == [3, 7]
    members = inc.incident_members(cur, incident_id)
    assert [(m.metric, m.rank, m.magnitude, m.lead_lag, m.anomalous) for m in members] == [
        ("cpu{host=app-1}", 1, 0.5, 0, True),
        ("mem", 2, None, None, False),
    ]
    summary = inc.get_incident_summary(cur, incident_id)
    assert summary is not None
    assert summary.metrics == 2
    assert summary.start == T

    with store.transaction() as tx:
        inc.update_incident(tx, incident_id, _fields(peak_metric_id=cpu, state="resolved", title="x"))
        inc.mark_incident_resolved(tx, incident_id, T + 9 * MIN)
    fields, resolved_at = inc.read_incident(cur, incident_id) or (None, None)
    assert fields is not None
    assert (fields.state, fields.title) == ("resolved", "x")
    assert resolved_at == T + 9 * MIN

    with store.transaction() as tx:
        inc.delete_incident(tx, incident_id)
    assert not inc.incident_exists(cur, incident_id)
    assert inc.incident_members(cur, incident_id) == []
    assert inc.incident_anomaly_ids(cur, incident_id) == []


def test_summaries_filter_by_state_and_window(store: Store) -> None:
    cur = store.cursor()
    early = inc.insert_incident(cur, _fields())
    late = inc.insert_incident(cur, _fields(start=T + 60 * MIN, end=T + 70 * MIN, peak=T + 61 * MIN))
    inc.set_incident_state(cur, early, "resolved")
    assert [s.id for s in inc.list_incident_summaries(cur, state="open")] == [late]
    assert [s.id for s in inc.list_incident_summaries(cur, until=T + 10 * MIN)] == [early]
    assert [s.id for s in inc.list_incident_summaries(cur, since=T + 65 * MIN)] == [late]
    # most recent activity first: both end long before they were stored; the resolved one changed last
    assert [s.id for s in inc.list_incident_summaries(cur)] == [early, late]
    assert [s.id for s in inc.list_incident_summaries(cur, limit=1, offset=1)] == [late]


def _plant(store: Store, metric_id: int, score: float) -> None:
    inc.plant_anomaly(
        store.cursor(),
        metric_id=metric_id,
        detector="test",
        start=T,
        end=T + 3 * MIN,
        peak=T,
        peak_score=score,
    )


def test_a_tick_after_the_peak_metric_was_deleted_ranks_the_incident_again(store: Store) -> None:
    # deleting a metric leaves its incidents with no peak metric (NULL): the tick's "unchanged?"
    # check must see a different incident, not fail on the missing id
    cur = store.cursor()
    a = repo.upsert_metric(cur, name="a")
    b = repo.upsert_metric(cur, name="b")
    _plant(store, a, 9.0)
    _plant(store, b, 5.0)
    first = update_incidents(store, now=T + 5 * MIN)
    assert len(first.created) == 1
    with store.transaction(series=True) as tx:
        repo.delete_metric(tx, a)
    tick = update_incidents(store, now=T + 6 * MIN, rerank_unchanged=False)
    assert tick.updated == first.created
    (summary,) = list_incidents(store)
    assert (summary.peak_score, summary.title) == (5.0, "Anomaly: b")
    assert get_incident(store, incident_id=summary.id).anomaly_ids == [2]


def _watch(store: Store, monitor: str, metric_id: int) -> None:
    from telewatch.store import monitors as monitors_repo

    monitors_repo.record_series(
        store.cursor(), monitor=monitor, series_key=f"m{metric_id}", metric_id=metric_id, last_point=T
    )


def test_anomalies_of_two_monitors_at_the_same_minute_are_two_incidents(store: Store) -> None:
    """Each monitor's anomalies make its own incidents (the incident says whose); anomalies of metrics
    no monitor fetches group as before, among themselves."""
    cur = store.cursor()
    web, web2, noc, loose = (repo.upsert_metric(cur, name=n) for n in ("latency", "errors", "sessions", "x"))
    _watch(store, "web", web)
    _watch(store, "web", web2)
    _watch(store, "access", noc)
    for mid, score in ((web, 9.0), (web2, 6.0), (noc, 8.0), (loose, 7.0)):
        _plant(store, mid, score)
    report = update_incidents(store, now=T + 5 * MIN)
    assert len(report.created) == 3
    found = {s.monitor: s for s in list_incidents(store)}
    assert set(found) == {"access", "web", None}
    assert sorted(get_incident(store, incident_id=found["web"].id).anomaly_ids) == [1, 2]
    assert get_incident(store, incident_id=found["access"].id).anomaly_ids == [3]
    assert get_incident(store, incident_id=found[None].id).anomaly_ids == [4]
    assert [s.id for s in list_incidents(store, monitor="access")] == [found["access"].id]
    # a second pass keeps them (no churn of ids)
    again = update_incidents(store, now=T + 6 * MIN, rerank_unchanged=False)
    assert sorted(again.unchanged + again.updated) == sorted(report.created)
    assert again.created == []


def test_an_incident_stored_before_incidents_kept_their_monitor_is_taken_over_not_doubled(
    store: Store,
) -> None:
    cur = store.cursor()
    web, noc = (repo.upsert_metric(cur, name=n) for n in ("latency", "sessions"))
    _watch(store, "web", web)
    _watch(store, "access", noc)
    _plant(store, web, 9.0)
    _plant(store, noc, 8.0)
    with store.transaction() as tx:  # as an older version stored it: one incident, no monitor
        legacy = inc.insert_incident(tx, _fields(peak_metric_id=web, slice_key=None))
        inc.write_incident_anomalies(tx, legacy, [1, 2])
    report = update_incidents(store, now=T + 5 * MIN)
    assert len(report.created) == 1
    assert legacy in report.updated
    incidents = {s.monitor: s.id for s in list_incidents(store)}
    assert set(incidents) == {"web", "access"}
    assert incidents["web"] == legacy
    assert get_incident(store, incident_id=incidents["access"]).anomaly_ids == [2]


def test_feedback_lists_by_incident_and_anomalies_newest_first(store: Store) -> None:
    cur = store.cursor()
    made = [
        inc.insert_feedback(
            cur,
            kind=kind,
            start=T,
            end=T + MIN,
            metric_ids=[1, 2],
            incident_id=incident_id,
            anomaly_id=anomaly_id,
            note=None,
            author="ann",
        )
        for kind, incident_id, anomaly_id in (
            ("confirmed", 1, None),
            ("false_alarm", None, 10),
            ("expected", None, 11),
            ("confirmed", 1, 10),
        )
    ]
    assert made[0].metric_ids == [1, 2]
    assert made[0].start == T
    items, total = inc.list_feedback(cur, incident_id=1)
    assert ([f.id for f in items], total) == ([made[3].id, made[0].id], 2)
    items, total = inc.list_feedback(cur, anomaly_id=[10, 11], limit=2)
    assert ([f.id for f in items], total) == ([made[3].id, made[2].id], 3)
    items, total = inc.list_feedback(cur, anomaly_id=11)
    assert ([f.kind for f in items], total) == (["expected"], 1)


def test_a_replaced_verdict_deletes_only_the_feedback_window(store: Store) -> None:
    cur = store.cursor()
    mid = repo.upsert_metric(cur, name="cpu")
    repo.write_label_windows(
        cur, [(mid, T, T + MIN, "anomaly", "user", None), (mid, T, T + MIN, "confirmed", "feedback", None)]
    )
    inc.delete_feedback_window(cur, metric_id=mid, start=T, end=T + MIN, source="feedback")
    assert repo.read_label_windows(cur)["source"].tolist() == ["user"]


def test_incident_notes_keep_their_order(store: Store) -> None:
    cur = store.cursor()
    incident_id = inc.insert_incident(cur, _fields())
    first = inc.insert_incident_note(cur, incident_id=incident_id, text="one", author=None)
    inc.insert_incident_note(cur, incident_id=incident_id, text="two", author="bob")
    notes = inc.list_incident_notes(cur, incident_id)
    assert [(n.text, n.author) for n in notes] == [("one", None), ("two", "bob")]
    assert notes[0] == first


@pytest.mark.parametrize("ids", [[1, 2, 3], [3, 1]])
def test_grid_cells_put_each_value_in_its_row_and_step(store: Store, ids: list[int]) -> None:
    cur = store.cursor()
    for name in ("a", "b", "c"):
        mid = repo.upsert_metric(cur, name=name)
        repo.write_points(
            cur,
            mid,
            pd.Series([float(mid), np.nan, 10.0 * mid], index=pd.date_range(T, periods=3, freq="1min")),
        )
    rows, steps, values = overview.grid_cells(
        cur, np.asarray(ids, dtype=np.int64), table="points", origin=T, step=MIN, spans=[(0, 1), (2, 5)]
    )
    got = sorted(zip(rows.tolist(), steps.tolist(), values.tolist(), strict=True))
    want = sorted((r, k, v * m) for r, m in enumerate(ids) for k, v in ((0, 1.0), (2, 10.0)))
    assert got == want
    with pytest.raises(ValidationError, match="unknown table"):
        overview.grid_cells(cur, np.asarray(ids), table="metrics; --", origin=T, step=MIN, spans=[(0, 1)])
