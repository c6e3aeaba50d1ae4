"""Durable delivery: a channel down then back, rate limits, give-up, and a process killed mid-send."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from telewatch.alerts.rules import sample_candidate
from telewatch.services.alerting import (
    deliver_outbox,
    notification_detail,
    notification_history,
    submit_alerts,
)
from telewatch.store.db import Store

T0 = pd.Timestamp("2026-11-23 12:00", tz="UTC")


def submit_series_of_alerts(store: Store, config: Any, count: int, *, step_minutes: int = 1) -> list[int]:
    """``count`` distinct alerts, one per minute: returns their notification ids in creation order."""
    ids = []
    for i in range(count):
        now = T0 + pd.Timedelta(minutes=step_minutes * i)
        c = replace(
            sample_candidate(now=now, metric=f"metric_{i}", key=f"k{i}", with_series=False), incident_id=None
        )
        ids.extend(submit_alerts(store, candidates=[c], rules=config, now=now).notifications)
    return ids


def statuses(store: Store) -> dict[int, str]:
    return {r["id"]: r["status"] for r in notification_history(store, limit=1000)}


def test_channel_down_for_an_hour_then_everything_once_in_order(store: Store, webhook: Any, cfg: Any) -> None:
    config = cfg.make({"hook": cfg.webhook(webhook.url)})
    webhook.down = True
    ids = []
    attempts_while_down = 0
    for i in range(6):  # alerts keep coming while the channel is down, delivery keeps trying
        now = T0 + pd.Timedelta(minutes=10 * i)
        c = replace(
            sample_candidate(now=now, metric=f"m{i}", key=f"k{i}", with_series=False), incident_id=None
        )
        ids += submit_alerts(store, candidates=[c], rules=config, now=now).notifications
        report = deliver_outbox(store, channels=config, now=now)
        assert report.sent == []
        attempts_while_down += len(report.failed)
    assert len(ids) == 6
    assert set(statuses(store).values()) == {"pending"}
    # only the head of the queue was tried; the others waited behind it (order)
    head = notification_detail(store, notification_id=ids[0])
    assert head["attempts"] == attempts_while_down >= 2
    assert "HTTP 503" in head["last_error"]
    assert all(notification_detail(store, notification_id=i)["attempts"] == 0 for i in ids[1:])
    # still within the backoff: nothing is tried
    back_at = T0 + pd.Timedelta(hours=1)
    webhook.down = False
    report = deliver_outbox(store, channels=config, now=back_at)
    assert report.sent == ids
    assert deliver_outbox(store, channels=config, now=back_at + pd.Timedelta(minutes=5)).sent == []
    keys = [r["key"] for r in webhook.requests]
    assert len(keys) == len(set(keys)) == 6  # exactly once
    assert [b["alerts"][0]["key"] for b in webhook.bodies] == [f"k{i}" for i in range(6)]  # in order
    assert set(statuses(store).values()) == {"sent"}


def test_backoff_grows_and_is_respected(store: Store, webhook: Any, cfg: Any) -> None:
    config = cfg.make({"hook": cfg.webhook(webhook.url, retry={"initial": "10s", "max": "40s"})})
    (nid,) = submit_series_of_alerts(store, config, 1)
    webhook.down = True
    now = T0
    waits = []
    for _ in range(4):
        deliver_outbox(store, channels=config, now=now)
        nxt = notification_detail(store, notification_id=nid)["next_attempt_at"]
        waits.append((nxt - now).total_seconds())
        assert deliver_outbox(store, channels=config, now=nxt - pd.Timedelta(seconds=1)).failed == []
        now = nxt
    assert waits == [10.0, 20.0, 40.0, 40.0]


def test_rate_limit_per_channel_keeps_order_and_loses_nothing(store: Store, webhook: Any, cfg: Any) -> None:
    config = cfg.make({"hook": cfg.webhook(webhook.url, rate_limit={"max": 2, "per": "1h"})})
    ids = submit_series_of_alerts(store, config, 5)
    now = T0 + pd.Timedelta(minutes=5)
    first = deliver_outbox(store, channels=config, now=now)
    assert first.sent == ids[:2]
    assert first.rate_limited == ids[2:]
    assert deliver_outbox(store, channels=config, now=now + pd.Timedelta(minutes=30)).sent == []
    second = deliver_outbox(store, channels=config, now=now + pd.Timedelta(hours=1))
    assert second.sent == ids[2:4]
    third = deliver_outbox(store, channels=config, now=now + pd.Timedelta(hours=2))
    assert third.sent == ids[4:]
    assert [b["alerts"][0]["key"] for b in webhook.bodies] == [f"k{i}" for i in range(5)]


def test_give_up_after_the_limit_unblocks_the_queue(store: Store, webhook: Any, cfg: Any) -> None:
    config = cfg.make(
        {"hook": cfg.webhook(webhook.url, retry={"initial": "1m", "max": "5m", "give_up_after": "30m"})}
    )
    ids = submit_series_of_alerts(store, config, 2, step_minutes=25)
    webhook.down = True
    deliver_outbox(store, channels=config, now=T0)
    report = deliver_outbox(store, channels=config, now=T0 + pd.Timedelta(minutes=31))
    assert report.gave_up == [ids[0]]
    assert report.failed == [ids[1]]
    assert statuses(store)[ids[0]] == "failed"
    assert "gave up after 1 attempts" in notification_detail(store, notification_id=ids[0])["last_error"]
    webhook.down = False
    assert deliver_outbox(store, channels=config, now=T0 + pd.Timedelta(minutes=40)).sent == [ids[1]]


def test_digest_collects_low_severity_into_one_message(store: Store, webhook: Any, cfg: Any) -> None:
    config = cfg.make({"hook": cfg.webhook(webhook.url)}, digest={"severities": ["info"], "interval": "1h"})
    for i in range(3):
        now = T0 + pd.Timedelta(minutes=5 * i)
        c = replace(
            sample_candidate(now=now, metric=f"m{i}", key=f"k{i}", with_series=False),
            incident_id=None,
            severity="info",
        )
        submit_alerts(store, candidates=[c], rules=config, now=now)
    assert deliver_outbox(store, channels=config, now=T0 + pd.Timedelta(minutes=30)).sent == []
    report = deliver_outbox(store, channels=config, now=T0 + pd.Timedelta(hours=1))
    assert len(report.digests) == 1
    assert report.sent == report.digests
    body = webhook.bodies[0]
    assert body["kind"] == "digest"
    assert [a["key"] for a in body["alerts"]] == ["k0", "k1", "k2"]
    assert body["text"].startswith("[DIGEST] 3 low-priority alerts")
    assert set(statuses(store).values()) == {"digested", "sent"}


DELIVER_SCRIPT = """
import sys
import pandas as pd
from telewatch.services.alerting import deliver_outbox, load_alerting_config
from telewatch.store.db import Store

store = Store(sys.argv[1])
print("delivering", flush=True)
deliver_outbox(store, channels=load_alerting_config(sys.argv[2]), now=pd.Timestamp(sys.argv[3]))
print("finished", flush=True)
"""


def run_and_kill_midway(tmp_path: Path, db: Path, config: dict[str, Any], landed: threading.Event) -> None:
    """Deliver in a child process; SIGKILL it once the channel has the request but before it answered."""
    config_path = tmp_path / "alerting.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    script = tmp_path / "deliver.py"
    script.write_text(DELIVER_SCRIPT, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(db), str(config_path), str(T0 + pd.Timedelta(minutes=10))],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        assert landed.wait(60), "the child never reached the channel"
        os.kill(proc.pid, signal.SIGKILL)  # between the send and the mark-sent
        proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(20)
    out = proc.stdout.read().decode() if proc.stdout else ""
    assert proc.returncode == -signal.SIGKILL, out
    assert "finished" not in out, out


def config_dict(cfg: Any, channels: dict[str, Any]) -> dict[str, Any]:
    return {"channels": channels, "rules": [{"name": "web", "channels": sorted(channels)}]}


def test_killed_between_send_and_mark_sent_webhook(tmp_path: Path, webhook: Any, cfg: Any) -> None:
    db = tmp_path / "tw.duckdb"
    channels = {"hook": cfg.webhook(webhook.url)}
    with Store(db) as store:
        ids = submit_series_of_alerts(store, cfg.make(channels), 3)
    webhook.hold = threading.Event()
    run_and_kill_midway(tmp_path, db, config_dict(cfg, channels), webhook.received)
    webhook.hold.set()
    webhook.hold = None
    assert len(webhook.requests) == 1  # the first one landed; the process died before it knew
    config = cfg.make(channels)
    with Store(db) as store:
        first = notification_detail(store, notification_id=ids[0])
        assert first["status"] == "sending"
        assert first["attempts_log"][0]["ok"] is None
        # while the dead process's lease lasts nothing is sent twice concurrently, and order holds
        soon = T0 + pd.Timedelta(minutes=11)
        assert deliver_outbox(store, channels=config, now=soon).sent == []
        later = T0 + pd.Timedelta(minutes=15)  # lease (2 min) expired: take over
        report = deliver_outbox(store, channels=config, now=later)
        assert report.sent == ids
        first = notification_detail(store, notification_id=ids[0])
        assert [a["ok"] for a in first["attempts_log"]] == [None, True]
    # the re-send carried the same idempotency key: the receiver processed each notification once
    keys = [r["key"] for r in webhook.requests]
    assert len(keys) == 4
    assert keys[0] == keys[1]
    assert len(set(keys)) == 3
    assert [b["alerts"][0]["key"] for b in webhook.bodies] == ["k0", "k1", "k2"]


def test_killed_after_telegram_message_before_photo(tmp_path: Path, telegram: Any, cfg: Any) -> None:
    db = tmp_path / "tw.duckdb"
    channels = {"tg": cfg.telegram(telegram.api_base)}
    with Store(db) as store:
        c = sample_candidate(now=T0, key="web:latency")
        (nid,) = submit_alerts(store, candidates=[c], rules=cfg.make(channels), now=T0).notifications
    telegram.hold_photo = threading.Event()
    run_and_kill_midway(tmp_path, db, config_dict(cfg, channels), telegram.photo_received)
    telegram.hold_photo.set()
    telegram.hold_photo = None
    assert telegram.calls == ["sendMessage", "sendPhoto"]
    with Store(db) as store:
        progress = json.loads(
            store.cursor()
            .execute("SELECT progress FROM alert_notifications WHERE id = ?", [nid])
            .fetchall()[0][0]
        )
        assert progress == {"message_id": telegram.messages[0]["message_id"]}  # checkpointed before the photo
        report = deliver_outbox(store, channels=cfg.make(channels), now=T0 + pd.Timedelta(minutes=15))
        assert report.sent == [nid]
    # the text was not sent again; the photo step (the at-least-once window) was, as a reply to the same text
    assert telegram.calls == ["sendMessage", "sendPhoto", "sendPhoto"]
    assert {p["reply_to_message_id"] for p in telegram.photos} == {str(telegram.messages[0]["message_id"])}


def test_telegram_down_then_back(store: Store, telegram: Any, cfg: Any) -> None:
    config = cfg.make({"tg": cfg.telegram(telegram.api_base, send_chart=False)})
    ids = submit_series_of_alerts(store, config, 3)
    telegram.down = True
    report = deliver_outbox(store, channels=config, now=T0 + pd.Timedelta(minutes=3))
    assert report.failed == [ids[0]]
    assert "HTTP 502" in report.errors[ids[0]]
    telegram.down = False
    assert deliver_outbox(store, channels=config, now=T0 + pd.Timedelta(minutes=30)).sent == ids
    assert [m["text"].count("<b>metric_") for m in telegram.messages] == [1, 1, 1]
    assert ["<b>metric_0" in telegram.messages[0]["text"], "<b>metric_2" in telegram.messages[2]["text"]] == [
        True,
        True,
    ]


def test_killed_during_email_data_resends_the_same_message_id(
    tmp_path: Path, smtp_server: Any, cfg: Any
) -> None:
    db = tmp_path / "tw.duckdb"
    channels = {"mail": cfg.email(smtp_server.port, str(smtp_server.cert))}
    with Store(db) as store:
        (nid,) = submit_alerts(
            store, candidates=[sample_candidate(now=T0, key="web:latency")], rules=cfg.make(channels), now=T0
        ).notifications
    smtp_server.hold = threading.Event()
    run_and_kill_midway(tmp_path, db, config_dict(cfg, channels), smtp_server.received)
    smtp_server.hold.set()
    smtp_server.hold = None
    with Store(db) as store:
        assert deliver_outbox(store, channels=cfg.make(channels), now=T0 + pd.Timedelta(minutes=15)).sent == [
            nid
        ]
    # the server saw the message twice (it never confirmed the first); both carry one Message-ID, which
    # mail clients and servers use to drop the duplicate
    assert len(smtp_server.messages) == 2
    assert smtp_server.messages[0]["Message-ID"] == smtp_server.messages[1]["Message-ID"]


def test_telegram_retry_after_is_honoured(store: Store, telegram: Any, cfg: Any) -> None:
    config = cfg.make({"tg": cfg.telegram(telegram.api_base, send_chart=False)})
    (nid,) = submit_series_of_alerts(store, config, 1)
    telegram.too_many_requests = 1
    report = deliver_outbox(store, channels=config, now=T0)
    assert report.failed == [nid]
    assert "HTTP 429" in report.errors[nid]
    nxt = notification_detail(store, notification_id=nid)["next_attempt_at"]
    assert (nxt - T0).total_seconds() == 37  # Telegram's retry_after, longer than the 10 s backoff
    assert deliver_outbox(store, channels=config, now=T0 + pd.Timedelta(seconds=36)).sent == []
    assert deliver_outbox(store, channels=config, now=T0 + pd.Timedelta(seconds=37)).sent == [nid]
