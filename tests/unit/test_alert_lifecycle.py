"""submit_alerts: rules, severity, dedup, repeat, escalation, grouping, resolve, silences, min duration,
digests, quiet hours, idempotent re-runs and all-or-nothing writes (a real DuckDB store, no channel)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pandas as pd
import pytest

from telewatch.alerts.config import parse_alerting_config
from telewatch.alerts.model import AlertCandidate
from telewatch.alerts.rules import parse_matcher, sample_candidate
from telewatch.core.errors import ValidationError
from telewatch.services.alerting import (
    add_silence,
    expire_silence,
    notification_detail,
    notification_history,
    submit_alerts,
)
from telewatch.store.db import Store

T0 = pd.Timestamp("2026-11-23 12:00", tz="UTC")


def config(**rule: Any) -> Any:
    base = {"name": "web", "channels": ["hook"], "repeat_interval": "4h"}
    base.update(rule)
    return parse_alerting_config(
        {
            "channels": {
                "hook": {"type": "webhook", "url": "http://127.0.0.1:9/hook"},
                "mail": {
                    "type": "email",
                    "host": "127.0.0.1",
                    "from": "a@b.c",
                    "to": ["x@y.z"],
                    "language": "ru",
                },
            },
            "rules": [base],
        }
    )


def cand(metric: str = "web_latency", *, now: pd.Timestamp = T0, **kw: Any) -> AlertCandidate:
    c = sample_candidate(metric=metric, now=now, key=kw.pop("key", f"web:{metric}"), with_series=False)
    return replace(c, **kw)


def rows(store: Store) -> list[dict[str, Any]]:
    return list(reversed(notification_history(store, limit=1000)))


def payload(store: Store, notification_id: int) -> dict[str, Any]:
    row = (
        store.cursor()
        .execute("SELECT payload FROM alert_notifications WHERE id = ?", [notification_id])
        .fetchall()[0]
    )
    assert row is not None
    return dict(json.loads(row[0]))


def body(store: Store, notification_id: int) -> str:
    return str(notification_detail(store, notification_id=notification_id)["body_text"])


def test_one_alert_per_key_while_it_lasts_then_repeat(store: Store) -> None:
    cfg = config()
    first = submit_alerts(store, candidates=[cand()], rules=cfg, now=T0)
    assert len(first.notifications) == 1
    for minutes in (5, 10, 60, 239):
        later = T0 + pd.Timedelta(minutes=minutes)
        again = submit_alerts(store, candidates=[cand(now=later)], rules=cfg, now=later)
        assert again.notifications == []
        assert again.deduplicated == ["web:web_latency"]
    after = T0 + pd.Timedelta(hours=4)
    repeat = submit_alerts(store, candidates=[cand(now=after)], rules=cfg, now=after)
    assert len(repeat.notifications) == 1
    assert [r["kind"] for r in rows(store)] == ["firing", "repeat"]


def test_rerun_with_the_same_now_writes_nothing(store: Store) -> None:
    cfg = config()
    submit_alerts(store, candidates=[cand()], rules=cfg, now=T0)
    again = submit_alerts(store, candidates=[cand()], rules=cfg, now=T0)
    assert again.notifications == []
    assert len(rows(store)) == 1


def test_escalation_is_an_update(store: Store) -> None:
    cfg = config(severity=[{"level": "critical", "min_score": 8}, {"level": "warning", "min_score": 4}])
    submit_alerts(store, candidates=[cand(score=5.0)], rules=cfg, now=T0)
    t1 = T0 + pd.Timedelta(minutes=5)
    report = submit_alerts(store, candidates=[cand(now=t1, score=9.0)], rules=cfg, now=t1)
    assert len(report.notifications) == 1
    got = rows(store)
    assert [(r["kind"], r["severity"]) for r in got] == [("firing", "warning"), ("update", "critical")]
    # the update says what it was raised from (it was "[CRITICAL] updated": updated how?)
    assert "[CRITICAL] escalated from warning" in body(store, got[1]["id"])
    assert payload(store, got[1]["id"])["escalated_from"] == "warning"
    assert payload(store, got[0]["id"])["escalated_from"] is None
    # back to warning: not news
    t2 = T0 + pd.Timedelta(minutes=10)
    assert submit_alerts(store, candidates=[cand(now=t2, score=5.0)], rules=cfg, now=t2).notifications == []


def test_severity_from_score_and_deviation(store: Store) -> None:
    cfg = config(
        severity=[
            {"level": "critical", "min_score": 8, "min_deviation_pct": 50},
            {"level": "warning", "min_score": 4},
        ]
    )
    report = submit_alerts(
        store,
        candidates=[
            cand("a", score=9.0, deviation_pct=80.0, incident_id=None),  # critical
            cand("b", score=9.0, deviation_pct=-20.0, incident_id=None),  # deviation too small -> warning
            cand("c", score=2.0),  # below every level
        ],
        rules=cfg,
        now=T0,
    )
    assert [s.key for s in report.skipped] == ["web:c"]
    assert "below the severity levels" in report.skipped[0].reason
    sev = {r["alert_keys"][0]: r["severity"] for r in rows(store)}
    assert sev == {"web:a": "critical", "web:b": "warning"}


def test_a_level_can_ask_for_a_sustained_anomaly_or_several_metrics(store: Store) -> None:
    """``min_duration`` (from the first to the latest anomalous point) and ``min_metrics`` (the
    metric and the others anomalous in its incident): a page for what lasts or shows on several
    signals; the same deviation, fresh and alone, is a warning."""
    cfg = config(
        severity=[
            {"level": "critical", "min_deviation_pct": 50, "min_metrics": 2},
            {"level": "critical", "min_deviation_pct": 50, "min_duration": "5m"},
            {"level": "warning"},
        ]
    )
    fresh = T0 - pd.Timedelta(minutes=3)
    report = submit_alerts(
        store,
        candidates=[
            cand("a", deviation_pct=900.0, started_at=fresh, related=(), incident_id=None),  # 3 min, alone
            cand(
                "b",
                deviation_pct=900.0,
                started_at=T0 - pd.Timedelta(minutes=5),
                related=(),
                incident_id=None,
            ),
            cand("c", deviation_pct=900.0, started_at=fresh, related=("errors",), incident_id=None),
            cand(
                "d", deviation_pct=30.0, started_at=T0 - pd.Timedelta(hours=1), related=(), incident_id=None
            ),
        ],
        rules=cfg,
        now=T0,
    )
    assert not report.skipped
    sev = {r["alert_keys"][0]: r["severity"] for r in rows(store)}
    assert sev == {"web:a": "warning", "web:b": "critical", "web:c": "critical", "web:d": "warning"}


def test_metrics_of_one_incident_share_one_message(store: Store) -> None:
    cfg = config()
    a = cand("web_latency", incident_id=7)
    b = cand("web_errors", incident_id=7, severity="warning")
    c = cand("db_cpu", incident_id=8)
    report = submit_alerts(store, candidates=[a, b, c], rules=cfg, now=T0)
    assert len(report.notifications) == 2
    got = {r["group_key"]: r for r in rows(store)}
    assert sorted(got["sample:incident:7"]["alert_keys"]) == ["web:web_errors", "web:web_latency"]
    assert got["sample:incident:7"]["subject"].startswith("[CRITICAL] Incident #7")
    # a metric joining the known incident is an update of it
    t1 = T0 + pd.Timedelta(minutes=3)
    d = cand("web_saturation", now=t1, incident_id=7)
    submit_alerts(store, candidates=[a, b, d], rules=cfg, now=t1)
    last = rows(store)[-1]
    assert last["kind"] == "update"
    assert last["alert_keys"] == ["web:web_saturation"]


def test_grouping_can_be_switched_off(store: Store) -> None:
    cfg = config(group_by_incident=False)
    report = submit_alerts(
        store, candidates=[cand("a", incident_id=7), cand("b", incident_id=7)], rules=cfg, now=T0
    )
    assert len(report.notifications) == 2


def test_resolved_notice_once_then_quiet(store: Store) -> None:
    cfg = config()
    submit_alerts(store, candidates=[cand()], rules=cfg, now=T0)
    t1 = T0 + pd.Timedelta(minutes=40)
    done = cand(now=t1, status="resolved")
    report = submit_alerts(store, candidates=[done], rules=cfg, now=t1)
    assert report.resolved == ["web:web_latency"]
    assert len(report.notifications) == 1
    assert (
        submit_alerts(store, candidates=[done], rules=cfg, now=t1 + pd.Timedelta(minutes=1)).notifications
        == []
    )
    last = rows(store)[-1]
    assert last["kind"] == "resolved"
    assert last["subject"].startswith("[RESOLVED]")
    assert payload(store, last["id"])["status"] == "resolved"
    # it fires again later: a new alert
    t2 = T0 + pd.Timedelta(hours=1)
    assert len(submit_alerts(store, candidates=[cand(now=t2)], rules=cfg, now=t2).notifications) == 1


def _critical_rule_and_a_burst_over() -> tuple[Any, AlertCandidate]:
    """A rule that makes a score of 8 critical, and a burst scoring 9 that lasted 2 minutes from 17
    minutes before T0, already over when told."""
    cfg = config(severity=[{"level": "critical", "min_score": 8}, {"level": "warning"}])
    start = T0 - pd.Timedelta(minutes=17)
    over = cand(
        score=9.0,
        incident_id=None,
        started_at=start,
        last_seen=start + pd.Timedelta(minutes=1),
        recovered=True,
    )
    return cfg, over


def test_an_anomaly_told_as_over_that_a_later_tick_extends_is_not_told_again_as_new(store: Store) -> None:
    """A burst told as over at 07:00 whose anomaly the next tick extends (a reading flagged again
    within its merge gap): still over, it is the same alert — no second "firing … (back to normal)"
    message (before, every such tick sent one); going on now, it is an update (the severity it has
    now), then a "resolved" once it ends; and nothing repeats the update before ``repeat_interval``."""
    cfg, over = _critical_rule_and_a_burst_over()
    assert len(submit_alerts(store, candidates=[over], rules=cfg, now=T0).notifications) == 1
    # the next tick: flagged again, over again
    t1 = T0 + pd.Timedelta(minutes=15)
    longer = replace(over, last_seen=T0 + pd.Timedelta(minutes=3))
    report = submit_alerts(store, candidates=[longer], rules=cfg, now=t1)
    assert report.notifications == [], [r["subject"] for r in rows(store)]
    assert report.deduplicated == ["web:web_latency"]
    # a tick later it is going on: one update, critical now that it is not over
    t2 = t1 + pd.Timedelta(minutes=15)
    going = replace(over, last_seen=t2, recovered=False)
    report = submit_alerts(store, candidates=[going], rules=cfg, now=t2)
    assert len(report.notifications) == 1
    assert rows(store)[-1]["kind"] == "update"
    assert rows(store)[-1]["severity"] == "critical"
    t3 = t2 + pd.Timedelta(minutes=15)
    assert (
        submit_alerts(store, candidates=[replace(going, last_seen=t3)], rules=cfg, now=t3).notifications == []
    )
    # and when it ends, people told it is going on hear that it is over
    t4 = t3 + pd.Timedelta(minutes=15)
    done = replace(going, status="resolved")
    assert len(submit_alerts(store, candidates=[done], rules=cfg, now=t4).notifications) == 1
    assert rows(store)[-1]["kind"] == "resolved"


def test_an_alert_told_as_over_and_extended_under_a_silence_is_not_told_again_after_it(store: Store) -> None:
    """Told as over, then silenced while a tick extends it (still over): when the silence ends, the
    next tick that extends it again has nothing new to say."""
    cfg = config()
    start = T0 - pd.Timedelta(minutes=17)
    over = cand(incident_id=None, started_at=start, last_seen=start + pd.Timedelta(minutes=1), recovered=True)
    assert len(submit_alerts(store, candidates=[over], rules=cfg, now=T0).notifications) == 1
    t1 = T0 + pd.Timedelta(minutes=15)
    silence = add_silence(
        store, matchers=[parse_matcher("metric=web_latency")], ends_at=t1 + pd.Timedelta(hours=1), now=t1
    )
    report = submit_alerts(
        store, candidates=[replace(over, last_seen=T0 + pd.Timedelta(minutes=3))], rules=cfg, now=t1
    )
    assert report.silenced == ["web:web_latency"]
    t2 = t1 + pd.Timedelta(minutes=15)
    expire_silence(store, silence_id=silence.id, now=t2)
    again = replace(over, last_seen=t1 + pd.Timedelta(minutes=3))
    assert (
        submit_alerts(store, candidates=[again], rules=cfg, now=t2 + pd.Timedelta(seconds=1)).notifications
        == []
    )


def test_an_alert_already_over_is_told_once_as_over_and_never_critical(store: Store) -> None:
    """A burst found after it ended (06:58-06:59, seen at the 07:15 tick): one message that says it is
    back to normal, capped at the rule's recovered_severity, and no "resolved" message after it."""
    cfg, over = _critical_rule_and_a_burst_over()
    report = submit_alerts(store, candidates=[over], rules=cfg, now=T0)
    assert report.firing == ["web:web_latency"]
    assert len(report.notifications) == 1
    first = rows(store)[-1]
    assert first["severity"] == "warning"  # critical by score, but already over
    assert first["subject"].endswith("(back to normal)")
    assert "already back to normal, after 2 min\n" in body(store, first["id"])
    assert payload(store, first["id"])["alerts"][0]["recovered"] is True
    # the tick after: the anomaly's resolution is not news any more
    t1 = T0 + pd.Timedelta(minutes=15)
    done = replace(over, status="resolved", recovered=False)
    assert submit_alerts(store, candidates=[done], rules=cfg, now=t1).notifications == []
    # the same key ongoing (not over) is critical as before, in Russian too
    ongoing = cand(key="web:other", score=9.0, incident_id=None)
    submit_alerts(store, candidates=[ongoing], rules=cfg, now=t1)
    assert rows(store)[-1]["severity"] == "critical"
    assert "back to normal" not in rows(store)[-1]["subject"]
    # an incident whose every metric is over says so in its one message
    t2 = t1 + pd.Timedelta(minutes=15)
    pair = [
        replace(
            over,
            key=f"web:{m}",
            metric=m,
            incident_id=9,
            last_seen=t2 - pd.Timedelta(minutes=9),
            started_at=t2 - pd.Timedelta(minutes=12),
        )
        for m in ("error", "apdex")
    ]
    submit_alerts(store, candidates=pair, rules=cfg, now=t2)
    assert (
        rows(store)[-1]["subject"]
        == "[WARNING] Incident #9 (latency degradation): 2 metrics (back to normal)"
    )
    # a rule may let an alert that is over still page
    keep = config(severity=[{"level": "critical", "min_score": 8}], recovered_severity="critical")
    again = replace(over, key="web:third")
    submit_alerts(store, candidates=[again], rules=keep, now=t1)
    assert rows(store)[-1]["severity"] == "critical"


def test_over_alert_text_in_russian(store: Store) -> None:
    cfg = parse_alerting_config(
        {
            "channels": {
                "mail": {
                    "type": "email",
                    "host": "127.0.0.1",
                    "from": "a@b.c",
                    "to": ["x@y.z"],
                    "language": "ru",
                }
            },
            "rules": [{"name": "web", "channels": ["mail"]}],
        }
    )
    start = T0 - pd.Timedelta(minutes=20)
    over = cand(incident_id=None, started_at=start, last_seen=start + pd.Timedelta(minutes=4), recovered=True)
    submit_alerts(store, candidates=[over], rules=cfg, now=T0)
    row = rows(store)[-1]
    assert row["subject"].endswith("(уже в норме)")
    assert "уже вернулась в норму, через 5 мин\n" in body(store, row["id"])


def test_an_incident_is_resolved_once_when_its_last_alert_resolves(store: Store) -> None:
    """Two alerts of one incident (a surge seen as two anomaly windows): the first to resolve says
    nothing while the other still fires; the last one's resolution is the incident's one message."""
    cfg = config()
    a, b = cand("throughput", key="web:t1", incident_id=5), cand("apdex", key="web:t2", incident_id=5)
    submit_alerts(store, candidates=[a, b], rules=cfg, now=T0)
    assert len(rows(store)) == 1
    t1 = T0 + pd.Timedelta(minutes=15)
    report = submit_alerts(store, candidates=[replace(a, status="resolved")], rules=cfg, now=t1)
    assert report.notifications == []
    assert report.resolved == []
    t2 = t1 + pd.Timedelta(minutes=15)
    report = submit_alerts(store, candidates=[replace(b, status="resolved")], rules=cfg, now=t2)
    assert report.resolved == ["web:t2"]
    last = rows(store)[-1]
    assert last["kind"] == "resolved"
    assert last["group_key"] == "sample:incident:5"
    assert len(rows(store)) == 2
    # without grouping by incident each alert's resolution is its own message
    loose = config(group_by_incident=False)
    c, d = cand("x", key="web:x", incident_id=6), cand("y", key="web:y", incident_id=6)
    submit_alerts(store, candidates=[c, d], rules=loose, now=t2)
    report = submit_alerts(
        store, candidates=[replace(c, status="resolved")], rules=loose, now=t2 + pd.Timedelta(minutes=1)
    )
    assert report.resolved == ["web:x"]


def test_a_metric_that_fires_again_by_the_tick_its_anomaly_ends_gets_one_message(store: Store) -> None:
    """A burst at 12:57 told at 13:00; the 14:00 tick sees it over and a new burst from 13:57: one
    message, the new one's, not "resolved" and "firing" about the same metric in the same minute.
    Another metric's resolution in that tick is still told."""
    cfg = config()
    t1, t2 = T0 + pd.Timedelta(hours=1), T0 + pd.Timedelta(hours=2)
    first = cand(now=t1, key="web:a", started_at=t1 - pd.Timedelta(minutes=3), incident_id=None)
    other = cand(
        "web_errors", now=t1, key="web:errors", started_at=t1 - pd.Timedelta(minutes=3), incident_id=None
    )
    assert len(submit_alerts(store, candidates=[first, other], rules=cfg, now=t1).notifications) == 2
    over = replace(first, status="resolved", last_seen=first.started_at)
    other_over = replace(other, status="resolved", last_seen=other.started_at)
    again = cand(now=t2, key="web:b", started_at=t2 - pd.Timedelta(minutes=3), incident_id=None)
    report = submit_alerts(store, candidates=[over, other_over, again], rules=cfg, now=t2)
    assert report.firing == ["web:b"]
    assert report.resolved == ["web:errors"]
    assert "web:a" in report.deduplicated
    sent = rows(store)[2:]
    assert sorted(r["kind"] for r in sent) == ["firing", "resolved"], sent
    (resolved,) = [r for r in sent if r["kind"] == "resolved"]
    assert "web_errors" in body(store, resolved["id"])
    # quiet, not lost: the first alert is resolved, and a later tick says nothing more about it
    later = submit_alerts(store, candidates=[over], rules=cfg, now=t2 + pd.Timedelta(minutes=15))
    assert later.notifications == []
    # the same pair when the new burst is held back (shorter than min_duration): the end is told
    cfg_pending = config(min_duration="10m")
    t3 = T0 + pd.Timedelta(hours=5)
    third = cand(now=t3, key="web:c", started_at=t3 - pd.Timedelta(minutes=20), incident_id=None)
    submit_alerts(store, candidates=[third], rules=cfg_pending, now=t3)
    t4 = t3 + pd.Timedelta(hours=1)
    short = cand(now=t4, key="web:d", started_at=t4 - pd.Timedelta(minutes=2), incident_id=None)
    report = submit_alerts(
        store,
        candidates=[replace(third, status="resolved", last_seen=third.started_at), short],
        rules=cfg_pending,
        now=t4,
    )
    assert report.resolved == ["web:c"]
    assert report.firing == []


def test_an_incident_of_several_metrics_is_still_told_over_when_one_of_them_fires_again(store: Store) -> None:
    """Latency and errors in incident 7; errors end first (quietly: the incident goes on), then
    latency ends as a new latency anomaly starts: the incident's "resolved" is still sent — its
    errors were never told over — beside the new firing message."""
    cfg = config()
    t1, t2, t3 = (T0 + pd.Timedelta(hours=h) for h in (1, 2, 3))
    lat = cand(now=t1, key="web:lat", started_at=t1 - pd.Timedelta(minutes=3), incident_id=7)
    err = cand("web_errors", now=t1, key="web:err", started_at=t1 - pd.Timedelta(minutes=3), incident_id=7)
    submit_alerts(store, candidates=[lat, err], rules=cfg, now=t1)
    quiet = submit_alerts(
        store, candidates=[replace(err, status="resolved", last_seen=err.started_at)], rules=cfg, now=t2
    )
    assert quiet.notifications == []  # latency still fires: the incident is not over
    again = cand(now=t3, key="web:lat2", started_at=t3 - pd.Timedelta(minutes=3), incident_id=8)
    report = submit_alerts(
        store, candidates=[replace(lat, status="resolved", last_seen=t2), again], rules=cfg, now=t3
    )
    assert report.resolved == ["web:lat"]
    assert report.firing == ["web:lat2"]
    kinds = sorted(r["kind"] for r in rows(store) if r["id"] in report.notifications)
    assert kinds == ["firing", "resolved"]


def test_resolved_without_a_firing_notice_says_nothing(store: Store) -> None:
    report = submit_alerts(store, candidates=[cand(status="resolved")], rules=config(), now=T0)
    assert report.notifications == []
    assert report.resolved == []


def test_send_resolved_off(store: Store) -> None:
    cfg = config(send_resolved=False)
    submit_alerts(store, candidates=[cand()], rules=cfg, now=T0)
    assert (
        submit_alerts(
            store, candidates=[cand(status="resolved")], rules=cfg, now=T0 + pd.Timedelta(minutes=1)
        ).notifications
        == []
    )


def test_silence_mutes_then_expiry_lets_it_fire(store: Store) -> None:
    cfg = config()
    silence = add_silence(
        store,
        matchers=[parse_matcher("metric=~web_.*"), parse_matcher("dc=eu-west")],
        ends_at=T0 + pd.Timedelta(hours=2),
        starts_at=T0 - pd.Timedelta(minutes=1),
        now=T0,
    )
    report = submit_alerts(store, candidates=[cand(), cand("db_cpu")], rules=cfg, now=T0)
    assert report.silenced == ["web:web_latency"]
    assert [r["alert_keys"] for r in rows(store)] == [["web:db_cpu"]]
    t1 = T0 + pd.Timedelta(minutes=30)
    expire_silence(store, silence_id=silence.id, now=t1)
    later = submit_alerts(store, candidates=[cand(now=t1)], rules=cfg, now=t1 + pd.Timedelta(seconds=1))
    assert later.firing == ["web:web_latency"]
    assert len(later.notifications) == 1


def test_silence_time_range_and_negative_matchers(store: Store) -> None:
    cfg = config()
    add_silence(
        store,
        matchers=[parse_matcher("service!=checkout")],
        starts_at=T0 - pd.Timedelta(hours=1),
        ends_at=T0 + pd.Timedelta(hours=1),
        now=T0,
    )
    add_silence(
        store,
        matchers=[parse_matcher("metric=web_latency")],
        starts_at=T0 + pd.Timedelta(hours=5),
        ends_at=T0 + pd.Timedelta(hours=6),
        now=T0,
    )
    report = submit_alerts(
        store, candidates=[cand(), cand("x", labels={"service": "search"})], rules=cfg, now=T0
    )
    assert report.silenced == ["web:x"]  # the second silence has not started


def test_bad_silences_are_refused(store: Store) -> None:
    with pytest.raises(ValidationError, match="must end after it starts"):
        add_silence(store, matchers=[parse_matcher("a=b")], ends_at=T0 - pd.Timedelta(hours=1), now=T0)
    with pytest.raises(ValidationError, match="not NAME=VALUE"):
        parse_matcher("just-a-word")
    with pytest.raises(ValidationError, match="bad regular expression"):
        parse_matcher("host=~[")


def test_min_duration_holds_short_blips(store: Store) -> None:
    cfg = config(min_duration="30m")
    c = cand()  # started 17 minutes before T0
    report = submit_alerts(store, candidates=[c], rules=cfg, now=T0)
    assert report.notifications == []
    assert "min_duration" in report.skipped[0].reason
    t1 = T0 + pd.Timedelta(minutes=15)
    assert (
        len(submit_alerts(store, candidates=[replace(c, last_seen=t1)], rules=cfg, now=t1).notifications) == 1
    )


def test_rule_order_routing_and_owners(store: Store) -> None:
    cfg = parse_alerting_config(
        {
            "channels": {
                "hook": {"type": "webhook", "url": "http://127.0.0.1:9/hook"},
                "dba": {"type": "webhook", "url": "http://127.0.0.1:9/dba"},
            },
            "rules": [
                {
                    "name": "ignore-test",
                    "match": {"labels": {"env": "test"}},
                    "channels": ["hook"],
                    "severity": [{"level": "critical", "min_score": 1000}],
                },
                {
                    "name": "main",
                    "channels": ["hook"],
                    "routes": [{"match": {"labels": {"team": "db"}}, "channels": ["dba"], "continue": True}],
                    "owner": "@default",
                    "owners": [{"match": {"metrics": ["db_*"]}, "owner": "@dba"}],
                },
            ],
        }
    )
    report = submit_alerts(
        store,
        candidates=[
            cand("web_latency", owner=None, incident_id=None),
            cand("db_cpu", labels={"team": "db"}, owner=None, incident_id=None),
            cand("web_x", labels={"env": "test"}, incident_id=None),
        ],
        rules=cfg,
        now=T0,
    )
    assert [s.key for s in report.skipped] == ["web:web_x"]
    by_channel = {(r["channel"], r["alert_keys"][0]): r for r in rows(store)}
    assert set(by_channel) == {("hook", "web:web_latency"), ("dba", "web:db_cpu"), ("hook", "web:db_cpu")}
    assert payload(store, by_channel[("dba", "web:db_cpu")]["id"])["owners"] == ["@dba"]
    assert payload(store, by_channel[("hook", "web:web_latency")]["id"])["owners"] == ["@default"]


def test_language_follows_the_channel(store: Store) -> None:
    cfg = config(channels=["hook", "mail"])
    submit_alerts(store, candidates=[cand()], rules=cfg, now=T0)
    subjects = {r["channel"]: (r["language"], r["subject"]) for r in rows(store)}
    assert subjects["hook"][0] == "en"
    assert "deviation more than" in subjects["hook"][1]
    assert subjects["mail"][0] == "ru"
    assert "отклонение более" in subjects["mail"][1]


def test_low_severity_waits_for_the_digest(store: Store) -> None:
    cfg = config(digest={"severities": ["info"], "interval": "1h"})
    report = submit_alerts(
        store,
        candidates=[cand("a", severity="info", incident_id=None), cand("b", incident_id=None)],
        rules=cfg,
        now=T0 + pd.Timedelta(minutes=10),
    )
    assert report.digested == ["web:a"]
    statuses = {r["alert_keys"][0]: (r["status"], r["next_attempt_at"]) for r in rows(store)}
    assert statuses["web:a"] == ("digest", pd.Timestamp("2026-11-23 13:00", tz="UTC"))
    assert statuses["web:b"][0] == "pending"


def test_quiet_hours_hold_all_but_critical_until_morning(store: Store) -> None:
    cfg = config(quiet_hours={"start": "23:00", "end": "07:00", "timezone": "Europe/Moscow"})
    night = pd.Timestamp("2026-11-23 22:30", tz="UTC")  # 01:30 in Moscow
    report = submit_alerts(
        store,
        candidates=[
            cand("w", now=night, severity="warning", incident_id=None),
            cand("c", now=night, incident_id=None),
        ],
        rules=cfg,
        now=night,
    )
    assert report.digested == ["web:w"]
    got = {r["alert_keys"][0]: r for r in rows(store)}
    assert got["web:w"]["status"] == "digest"
    assert got["web:w"]["next_attempt_at"] == pd.Timestamp("2026-11-24 04:00", tz="UTC")  # 07:00 Moscow
    assert got["web:c"]["status"] == "pending"


def test_all_or_nothing(store: Store) -> None:
    cfg = config()
    good = cand("a", incident_id=None)
    bad = cand("b", incident_id=None, value=float("nan"))
    bad = replace(bad, labels={"dc": object()})  # type: ignore[dict-item]  # cannot be stored
    with pytest.raises(TypeError):
        submit_alerts(store, candidates=[good, bad], rules=cfg, now=T0)
    assert rows(store) == []
    assert store.cursor().execute("SELECT count(*) FROM alert_state").fetchall() == [(0,)]


def test_invalid_candidates_are_refused(store: Store) -> None:
    with pytest.raises(ValidationError, match="status must be"):
        submit_alerts(store, candidates=[cand(status="burning")], rules=config(), now=T0)


def test_chart_drawn_from_the_store_when_the_candidate_has_no_series(store: Store) -> None:
    import numpy as np

    from telewatch.store import repo

    cur = store.cursor()
    metric_id = repo.upsert_metric(cur, name="web_latency", labels={"dc": "eu-west", "service": "checkout"})
    index = pd.date_range(end=T0, periods=300, freq="min", tz="UTC")
    repo.write_points(cur, metric_id, pd.Series(np.linspace(100, 200, 300), index=index))
    mail = config(channels=["mail"])  # e-mail carries charts (webhooks do not by default)
    submit_alerts(store, candidates=[cand(incident_id=None)], rules=mail, now=T0)
    (row,) = rows(store)
    assert row["has_chart"]
    other = submit_alerts(store, candidates=[cand("no_points", incident_id=None)], rules=mail, now=T0)
    assert len(other.notifications) == 1
    assert not rows(store)[-1]["has_chart"]  # nothing to draw: the message goes without a picture
