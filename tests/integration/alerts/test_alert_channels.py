"""Each channel against a real server on loopback: what arrives is what a person needs to act."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from telewatch.alerts.channels.email import message_id
from telewatch.alerts.rules import sample_candidate
from telewatch.services.alerting import deliver_outbox, notification_detail, submit_alerts
from telewatch.store.db import Store

NOW = pd.Timestamp("2026-11-23 12:00", tz="UTC")
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "alerts"


def candidates() -> list[Any]:
    """Two metrics of one incident: latency spike and the error rate with it."""
    latency = sample_candidate(now=NOW, key="web:latency")
    errors = replace(
        sample_candidate(now=NOW, metric="web_error_rate", key="web:errors", severity="warning", score=6.1),
        value=0.083,
        expected=0.011,
        lower=0.004,
        upper=0.02,
        deviation_pct=654.5,
        owner="@web-oncall",
        series=None,
        band=None,
    )
    return [latency, errors]


def assert_png(data: bytes) -> None:
    from PIL import Image

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(data))
    assert image.size == (900, 340)


def test_telegram_message_and_chart(store: Store, telegram: Any, cfg: Any) -> None:
    config = cfg.make({"tg": cfg.telegram(telegram.api_base)})
    submit_alerts(store, candidates=[candidates()[0]], rules=config, now=NOW)
    report = deliver_outbox(store, channels=config, now=NOW)
    assert len(report.sent) == 1
    assert not report.failed
    assert telegram.calls == ["sendMessage", "sendPhoto"]
    msg = telegram.messages[0]
    assert msg["chat_id"] == -1001234567890
    assert msg["parse_mode"] == "HTML"
    text = msg["text"]
    for needle in (
        "Metric <b>web_response_ms</b> in slice <code>dc=eu-west, service=checkout</code>",
        "Value: <b>526.8</b>, expected 220.0 (band 195.0 – 245.0)",
        "Deviation more than <b>130%</b> above expected",
        "Started: 2026-11-23 11:43 UTC (17 min ago)",
        "Incident #42: latency degradation",
        "Related: web_error_rate, db_query_ms",
        "Owner: @web-oncall",
        '<a href="https://telewatch.example.com/incidents/42">Incident</a>',
        '<a href="https://grafana.example.com/d/web?var-dc=eu-west&amp;from=',
    ):
        assert needle in text, needle
    photo = telegram.photos[0]
    assert photo["reply_to_message_id"] == str(msg["message_id"])
    assert "web_response_ms" in photo["caption"]
    assert_png(photo["photo"])
    detail = notification_detail(store, notification_id=report.sent[0])
    assert detail["status"] == "sent"
    assert detail["attempts_log"][0]["remote_id"] == str(msg["message_id"])
    # artifacts for the note: the message as Telegram received it, and its picture
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "telegram-message.html").write_text(text, encoding="utf-8")
    (ARTIFACTS / "telegram-chart.png").write_bytes(photo["photo"])
    (ARTIFACTS / "telegram-request.json").write_text(
        json.dumps({k: v for k, v in msg.items() if k != "message_id"}, ensure_ascii=False, indent=2),
        encoding="utf-8",
    )


def test_telegram_in_russian_grouped_incident(store: Store, telegram: Any, cfg: Any) -> None:
    config = cfg.make({"tg": cfg.telegram(telegram.api_base, language="ru")})
    submit_alerts(store, candidates=candidates(), rules=config, now=NOW)
    deliver_outbox(store, channels=config, now=NOW)
    assert len(telegram.messages) == 1  # one incident, one message
    text = telegram.messages[0]["text"]
    assert text.startswith("🔴 <b>КРИТИЧНО</b> · Инцидент #42 (latency degradation): метрик — 2")
    assert "Метрика <b>web_error_rate</b>" in text
    assert "Отклонение более <b>650%</b> выше ожидаемого" in text
    assert '<a href="https://telewatch.example.com/incidents/42">Открыть инцидент #42</a>' in text
    assert len(telegram.photos) == 1


def test_email_starttls_login_html_with_inline_chart(store: Store, smtp_server: Any, cfg: Any) -> None:
    config = cfg.make({"mail": cfg.email(smtp_server.port, str(smtp_server.cert))})
    submit_alerts(store, candidates=candidates(), rules=config, now=NOW)
    report = deliver_outbox(store, channels=config, now=NOW)
    assert len(report.sent) == 1, report.errors
    assert smtp_server.logins == [cfg.SMTP_USER]
    assert smtp_server.mechanisms == ["LOGIN"]
    assert smtp_server.tls_sessions == 1
    mail = smtp_server.messages[0]
    assert mail["Subject"] == "[CRITICAL] Incident #42 (latency degradation): 2 metrics"
    assert mail["To"] == "oncall@example.test, web-team@example.test"
    key = notification_detail(store, notification_id=report.sent[0])["idempotency_key"]
    assert mail["Message-ID"] == message_id(key)
    assert mail["X-Telewatch-Idempotency-Key"].strip() == key
    types = [p.get_content_type() for p in mail.walk()]
    assert types == ["multipart/alternative", "text/plain", "multipart/related", "text/html", "image/png"]
    plain = mail.get_body(preferencelist=("plain",)).get_content()
    html = mail.get_body(preferencelist=("html",)).get_content()
    for needle in (
        "Metric web_error_rate in slice dc=eu-west, service=checkout",
        "Value: 0.08300, expected 0.01100",
        "Deviation more than 650% above expected",
        "Owner: @web-oncall",
        "Incident: https://telewatch.example.com/incidents/42",
    ):
        assert needle in plain, needle
    assert "more than <b>130%</b> above expected" in html
    assert '<img src="cid:chart"' in html
    image = next(p for p in mail.walk() if p.get_content_type() == "image/png")
    assert image["Content-ID"] == "<chart>"
    png = image.get_content()
    assert_png(png)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "email.eml").write_bytes(smtp_server.raw[0])
    (ARTIFACTS / "email-chart.png").write_bytes(png)
    (ARTIFACTS / "email.html").write_text(
        html.replace('src="cid:chart"', 'src="email-chart.png"'), encoding="utf-8"
    )


def test_email_wrong_password_is_retried_and_never_logged(store: Store, smtp_server: Any, cfg: Any) -> None:
    config = cfg.make(
        {"mail": cfg.email(smtp_server.port, str(smtp_server.cert), password="wrong-password-123")}
    )
    submit_alerts(store, candidates=[candidates()[0]], rules=config, now=NOW)
    report = deliver_outbox(store, channels=config, now=NOW)
    assert report.failed
    assert not report.sent
    error = next(iter(report.errors.values()))
    assert "login refused" in error
    assert "wrong-password-123" not in error
    detail = notification_detail(store, notification_id=report.failed[0])
    assert detail["status"] == "pending"
    assert "wrong-password-123" not in json.dumps(detail, default=str)


def test_email_over_implicit_ssl(store: Store, smtp_ssl_server: Any, cfg: Any) -> None:
    config = cfg.make(
        {
            "mail": cfg.email(
                smtp_ssl_server.port, str(smtp_ssl_server.cert), security="ssl", username=None, password=None
            )
        }
    )
    submit_alerts(store, candidates=[candidates()[0]], rules=config, now=NOW)
    assert len(deliver_outbox(store, channels=config, now=NOW).sent) == 1
    assert smtp_ssl_server.messages[0]["Subject"].startswith("[CRITICAL] web_response_ms")


@pytest.mark.parametrize("shape", ["json", "slack", "alertmanager"])
def test_webhook_shapes(store: Store, webhook: Any, cfg: Any, shape: str) -> None:
    config = cfg.make(
        {
            "hook": cfg.webhook(
                webhook.url,
                format=shape,
                send_chart=True,
                headers={"Authorization": "Bearer hook-secret-xyz"},
            )
        }
    )
    submit_alerts(store, candidates=candidates(), rules=config, now=NOW)
    report = deliver_outbox(store, channels=config, now=NOW)
    assert len(report.sent) == 1
    request = webhook.requests[0]
    key = notification_detail(store, notification_id=report.sent[0])["idempotency_key"]
    assert request["headers"]["Idempotency-Key"] == key
    assert request["headers"]["Authorization"] == "Bearer hook-secret-xyz"
    body = request["json"]
    if shape == "json":
        assert body["idempotency_key"] == key
        assert body["severity"] == "critical"
        assert body["incident_id"] == 42
        first = body["alerts"][0]
        assert first["metric"] == "web_response_ms"
        assert first["labels"] == {
            "dc": "eu-west",
            "service": "checkout",
        }
        assert first["lower"] == pytest.approx(195, abs=1)
        assert first["upper"] == pytest.approx(245, abs=1)
        assert first["deviation_more_than"] == "130"
        assert first["owner"] == "@web-oncall"
        assert first["incident_url"] == "https://telewatch.example.com/incidents/42"
        assert_png(base64.b64decode(body["chart_png_base64"]))
    elif shape == "slack":
        assert set(body) == {"text", "attachments"}
        assert len(body["attachments"]) == 2
        att = body["attachments"][0]
        assert att["title"] == "web_response_ms [dc=eu-west, service=checkout]"
        assert att["color"] == "#d62728"
        assert {"title": "Deviation", "value": "more than 130%", "short": True} in att["fields"]
        assert att["title_link"].startswith("https://telewatch.example.com/explore?metric=web_response_ms")
    else:
        assert body["version"] == "4"
        assert body["status"] == "firing"
        assert body["receiver"] == "hook"
        assert body["externalURL"] == "https://telewatch.example.com"
        assert body["commonLabels"]["incident_id"] == "42"
        alert = body["alerts"][0]
        assert alert["labels"]["alertname"] == "web_response_ms"
        assert alert["labels"]["severity"] == "critical"
        assert alert["startsAt"] == "2026-11-23T11:43:00Z"
        assert alert["endsAt"] == "0001-01-01T00:00:00Z"
        assert alert["annotations"]["owner"] == "@web-oncall"
        assert "expected" in alert["annotations"]


def test_resolved_reaches_the_channel(store: Store, webhook: Any, cfg: Any) -> None:
    config = cfg.make({"hook": cfg.webhook(webhook.url, format="alertmanager")})
    c = candidates()[0]
    submit_alerts(store, candidates=[c], rules=config, now=NOW)
    later = NOW + pd.Timedelta(minutes=30)
    submit_alerts(store, candidates=[replace(c, status="resolved", last_seen=later)], rules=config, now=later)
    deliver_outbox(store, channels=config, now=later)
    statuses = [b["status"] for b in webhook.bodies]
    assert statuses == ["firing", "resolved"]
    assert webhook.bodies[1]["alerts"][0]["endsAt"] == "2026-11-23T12:30:00Z"
    assert webhook.bodies[0]["groupKey"] == webhook.bodies[1]["groupKey"]


def test_secrets_never_leak_into_errors(store: Store, cfg: Any) -> None:
    from support import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    config = cfg.make(
        {
            "tg": cfg.telegram(dead),
            "hook": cfg.webhook(dead + "/services/T0001/B0001/abcdefghijklmnopqrstuvwx?token=querysecret123"),
        }
    )
    submit_alerts(store, candidates=[candidates()[0]], rules=config, now=NOW)
    report = deliver_outbox(store, channels=config, now=NOW)
    assert len(report.failed) == 2
    dump = json.dumps(report.errors) + json.dumps(
        [notification_detail(store, notification_id=i) for i in report.failed], default=str
    )
    for secret in (cfg.BOT_TOKEN, "abcdefghijklmnopqrstuvwx", "querysecret123"):
        assert secret not in dump
    assert "ConnectError" in dump
