"""Bounded retention: what ages out is deleted, what is still open, firing or pending never is."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from telewatch.core.errors import ValidationError
from telewatch.services.retention import RetentionPolicy, RetentionSchedule, apply_retention
from telewatch.settings import Settings
from telewatch.store.db import Store

NOW = pd.Timestamp("2026-06-01 00:00", tz="UTC")
OLD = pd.Timestamp("2026-05-01 00:00")  # naive UTC, as the store keeps times: 31 days before NOW
NEW = pd.Timestamp("2026-05-31 12:00")
WEEK = timedelta(days=7)
POLICY = RetentionPolicy(points=WEEK, scores=WEEK, anomalies=WEEK, alert_history=WEEK, runs=WEEK)


def _seed(store: Store) -> dict[str, int]:
    """Old and recent rows of every kind, some of them still live. Returns ids by role."""
    ids: dict[str, int] = {}
    with store.transaction() as tx:
        for name in ("monitored", "uploaded"):
            row = tx.execute("INSERT INTO metrics (name) VALUES (?) RETURNING id", [name]).fetchone()
            assert row is not None
            ids[name] = int(row[0])
        mon, up = ids["monitored"], ids["uploaded"]
        tx.execute(
            "INSERT INTO monitor_series (monitor, series_key, metric_id) VALUES ('m', 'monitored', ?)", [mon]
        )
        for metric in (mon, up):
            for ts in pd.date_range(OLD, periods=10, freq="min").append(
                pd.date_range(NEW, periods=5, freq="min")
            ):
                tx.execute("INSERT INTO points VALUES (?, ?, 1.0)", [metric, ts.to_pydatetime()])
                tx.execute(
                    "INSERT INTO scores VALUES (?, 'robust_bands', ?, 0.5)", [metric, ts.to_pydatetime()]
                )

        def anomaly(role: str, metric: int, start: pd.Timestamp) -> None:
            row = tx.execute(
                "INSERT INTO anomalies (metric_id, detector, start_ts, end_ts, peak_ts, peak_score)"
                " VALUES (?, 'robust_bands', ?, ?, ?, 9.0) RETURNING id",
                [metric, start.to_pydatetime(), (start + pd.Timedelta(minutes=5)).to_pydatetime(), start],
            ).fetchone()
            assert row is not None
            ids[role] = int(row[0])

        anomaly("a_old", mon, OLD)
        anomaly("a_new", mon, NEW)
        anomaly("a_firing", mon, OLD + pd.Timedelta(hours=1))
        anomaly("a_open_incident", mon, OLD + pd.Timedelta(hours=2))
        anomaly("a_feedback", mon, OLD + pd.Timedelta(hours=3))
        anomaly("a_uploaded", up, OLD)
        anomaly("a_in_old_incident", mon, OLD + pd.Timedelta(hours=4))
        cursor = {
            "firing": {
                "k": {
                    "series": "monitored",
                    "metric_id": mon,
                    "detector": "robust_bands",
                    "start": (OLD + pd.Timedelta(hours=1)).tz_localize("UTC").isoformat(),
                }
            }
        }
        tx.execute(
            "INSERT INTO monitor_state (monitor, status, cursor) VALUES ('m', 'ok', ?)", [json.dumps(cursor)]
        )

        def incident(role: str, state: str, anomaly_role: str) -> None:
            row = tx.execute(
                "INSERT INTO incidents (start_ts, end_ts, peak_ts, peak_score, peak_metric_id, state, title)"
                " VALUES (?, ?, ?, 9.0, ?, ?, 't') RETURNING id",
                [OLD, OLD + pd.Timedelta(hours=5), OLD, mon, state],
            ).fetchone()
            assert row is not None
            ids[role] = int(row[0])
            tx.execute("INSERT INTO incident_anomalies VALUES (?, ?)", [ids[role], ids[anomaly_role]])
            tx.execute(
                "INSERT INTO incident_metrics (incident_id, metric_id, rank, score, direction, reason)"
                " VALUES (?, ?, 1, 1.0, 'up', 'peak')",
                [ids[role], mon],
            )
            tx.execute("INSERT INTO incident_notes (incident_id, text) VALUES (?, 'seen')", [ids[role]])

        incident("i_old", "resolved", "a_in_old_incident")
        incident("i_open", "open", "a_open_incident")
        incident("i_alerted", "resolved", "a_old")  # a firing alert still points at it
        tx.execute(
            "INSERT INTO feedback (anomaly_id, kind, start_ts, end_ts) VALUES (?, 'confirmed', ?, ?)",
            [ids["a_feedback"], OLD, OLD],
        )

        def notification(role: str, status: str, created: pd.Timestamp) -> None:
            row = tx.execute(
                "INSERT INTO alert_notifications (idempotency_key, channel, kind, group_key, severity, subject,"
                " body_html, body_email, body_text, summary, payload, status, created_at, next_attempt_at)"
                " VALUES (?, 'hook', 'firing', 'g', 'warning', 's', '', '', '', '', '{}', ?, ?, ?) RETURNING id",
                [role, status, created, created],
            ).fetchone()
            assert row is not None
            ids[role] = int(row[0])
            tx.execute(
                "INSERT INTO alert_delivery_attempts (notification_id, channel, attempt, started_at)"
                " VALUES (?, 'hook', 1, ?)",
                [ids[role], created],
            )

        notification("n_sent_old", "sent", OLD)
        notification("n_failed_old", "failed", OLD)
        notification("n_pending_old", "pending", OLD)
        notification("n_digest_old", "digest", OLD)
        notification("n_sent_new", "sent", NEW)

        def silence(role: str, ends: pd.Timestamp) -> None:
            row = tx.execute(
                "INSERT INTO silences (matchers, starts_at, ends_at, created_at) VALUES ('[]', ?, ?, ?) RETURNING id",
                [OLD - pd.Timedelta(days=1), ends, OLD],
            ).fetchone()
            assert row is not None
            ids[role] = int(row[0])

        silence("s_ended", OLD)
        silence("s_held", OLD)
        silence("s_active", NEW + pd.Timedelta(days=30))

        def state(
            key: str, status: str, *, incident_id: int | None = None, silenced_by: int | None = None
        ) -> None:
            tx.execute(
                "INSERT INTO alert_state (key, monitor, metric, status, severity, started_at, last_seen,"
                " incident_id, silenced_by, resolved_at, updated_at) VALUES (?, 'm', 'x', ?, 'warning', ?, ?, ?, ?, ?, ?)",
                [key, status, OLD, OLD, incident_id, silenced_by, OLD if status == "resolved" else None, OLD],
            )

        state("resolved-old", "resolved")
        state("firing-old", "firing", incident_id=ids["i_alerted"], silenced_by=ids["s_held"])
        for tick in (OLD, OLD + pd.Timedelta(minutes=1), NEW):
            tx.execute(
                "INSERT INTO monitor_runs (monitor, tick_at, started_at, status) VALUES ('m', ?, ?, 'ok')",
                [tick, tick],
            )
        tx.execute(
            "INSERT INTO monitor_runs (monitor, tick_at, started_at, status) VALUES ('quiet', ?, ?, 'ok')",
            [OLD, OLD],
        )
    return ids


def _ids(store: Store, table: str) -> set[int]:
    return {int(r[0]) for r in store.cursor().execute(f"SELECT id FROM {table}").fetchall()}


def _count(store: Store, table: str, where: str = "true", params: list[object] | None = None) -> int:
    row = store.cursor().execute(f"SELECT count(*) FROM {table} WHERE {where}", params or []).fetchone()
    assert row is not None
    return int(row[0])


def test_deletes_what_aged_out_and_keeps_what_is_live(store: Store) -> None:
    ids = _seed(store)
    preview = apply_retention(store, now=NOW, policy=POLICY, dry_run=True)
    assert _count(store, "points") == 30  # a dry run deletes nothing
    report = apply_retention(store, now=NOW, policy=POLICY)
    assert report.deleted == preview.deleted
    # the uploaded series keeps its old points (scope "monitored"); the monitored one keeps the recent ones
    assert _count(store, "points", "metric_id = ?", [ids["uploaded"]]) == 15
    assert _count(store, "points", "metric_id = ?", [ids["monitored"]]) == 5
    assert _ids(store, "anomalies") == {
        ids["a_new"],
        ids["a_firing"],
        ids["a_open_incident"],
        ids["a_feedback"],
        ids["a_uploaded"],
        ids["a_old"],
    }  # a_old stays: the incident a firing alert points to keeps its anomalies
    assert _ids(store, "incidents") == {ids["i_open"], ids["i_alerted"]}
    for table in ("incident_metrics", "incident_anomalies", "incident_notes"):
        assert _count(store, table, "incident_id = ?", [ids["i_old"]]) == 0, table
        assert _count(store, table, "incident_id = ?", [ids["i_open"]]) == 1, table
    assert _ids(store, "alert_notifications") == {
        ids["n_pending_old"],
        ids["n_digest_old"],
        ids["n_sent_new"],
    }
    assert {
        int(r[0])
        for r in store.cursor().execute("SELECT notification_id FROM alert_delivery_attempts").fetchall()
    } == {ids["n_pending_old"], ids["n_digest_old"], ids["n_sent_new"]}
    assert [r[0] for r in store.cursor().execute("SELECT key FROM alert_state").fetchall()] == ["firing-old"]
    assert _ids(store, "silences") == {ids["s_held"], ids["s_active"]}
    # old runs go, but each monitor keeps its newest run
    runs = (
        store.cursor()
        .execute("SELECT monitor, tick_at FROM monitor_runs ORDER BY monitor, tick_at")
        .fetchall()
    )
    assert [(m, pd.Timestamp(t)) for m, t in runs] == [("m", NEW), ("quiet", OLD)]
    assert report.deleted == {
        "points": 10,
        "scores": 10,
        "incident_metrics": 1,
        "incident_anomalies": 1,
        "incident_notes": 1,
        "incidents": 1,
        "anomalies": 1,
        "alert_delivery_attempts": 2,
        "alert_notifications": 2,
        "alert_state": 1,
        "silences": 1,
        "monitor_runs": 2,
    }
    assert report.total == 33
    # idempotent: nothing more to delete at the same time
    assert apply_retention(store, now=NOW, policy=POLICY).total == 0


def test_scope_all_and_keep_forever(store: Store) -> None:
    ids = _seed(store)
    report = apply_retention(store, now=NOW, policy=RetentionPolicy(points=WEEK, scope="all"))
    assert report.deleted["points"] == 20
    assert _count(store, "points", "metric_id = ?", [ids["uploaded"]]) == 5
    # every other horizon is "forever": nothing else was touched
    assert {t: n for t, n in report.deleted.items() if n} == {"points": 20}
    assert report.cutoffs["scores"] is None
    assert _count(store, "monitor_runs") == 4


def test_settings_parse_horizons() -> None:
    settings = Settings(
        retention_points="30d",
        retention_scores="0",
        retention_runs="",
        retention_anomalies="forever",
        retention_every="15m",
    )
    policy = RetentionPolicy.from_settings(settings)
    assert policy.points == timedelta(days=30)
    assert (policy.scores, policy.runs, policy.anomalies) == (None, None, None)
    assert policy.alert_history == timedelta(days=90)  # the default
    assert policy.every == timedelta(minutes=15)
    with pytest.raises(ValueError, match="retention_points"):
        Settings(retention_points="ninety days")
    with pytest.raises(ValidationError, match="retention_every"):
        RetentionPolicy(every=timedelta(0))
    assert not RetentionPolicy().enabled


def test_schedule_applies_at_most_once_per_interval(store: Store) -> None:
    _seed(store)
    schedule = RetentionSchedule(RetentionPolicy(runs=WEEK, every=timedelta(hours=1)))
    first = schedule.maybe_apply(store, now=NOW)
    assert first is not None
    assert first.deleted["monitor_runs"] == 2
    assert schedule.maybe_apply(store, now=NOW + pd.Timedelta(minutes=59)) is None
    again = schedule.maybe_apply(store, now=NOW + pd.Timedelta(hours=1))
    assert again is not None
    assert again.total == 0
    assert RetentionSchedule(RetentionPolicy()).maybe_apply(store, now=NOW) is None  # nothing to keep bounded


def test_cli_dry_run_then_run(tmp_path: Path) -> None:
    from telewatch.cli.app import app

    db = tmp_path / "cli.duckdb"
    with Store(db) as store:
        _seed(store)
    env = {"COLUMNS": "200", "TELEWATCH_RETENTION_POINTS": "7d", "TELEWATCH_RETENTION_RUNS": "7d"}
    dry = CliRunner().invoke(
        app, ["retention", "run", "--dry-run", "--now", NOW.isoformat(), "--db", str(db)], env=env
    )
    assert dry.exit_code == 0, dry.output
    assert "dry run" in dry.output
    line = next(x for x in dry.output.splitlines() if "│ points" in x)
    assert line.split("│")[-2].strip() == "10"
    with Store(db) as store:
        assert _count(store, "points") == 30
    done = CliRunner().invoke(app, ["retention", "run", "--now", NOW.isoformat(), "--db", str(db)], env=env)
    assert done.exit_code == 0, done.output
    assert "rows deleted" in done.output
    with Store(db) as store:
        assert _count(store, "points") == 20
        assert _count(store, "monitor_runs") == 2
    bad = CliRunner().invoke(
        app, ["retention", "run", "--db", str(db)], env={**env, "TELEWATCH_RETENTION_RUNS": "x"}
    )
    assert bad.exit_code != 0
