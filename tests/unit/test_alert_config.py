"""Alerting configuration: valid files load, malformed ones fail at load time naming path and line."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from telewatch.core.durations import parse_duration
from telewatch.core.errors import ConfigError
from telewatch.services.alerting import load_alerting_config

GOOD = """\
links:
  base_url: https://telewatch.example.com
  dashboards:
    - title: Grafana
      url: "https://grafana.example.com/d/abc?var-dc={labels[dc]}&from={start_ms}&to={end_ms}"
channels:
  ops:
    type: telegram
    bot_token: ${TW_TEST_BOT_TOKEN}
    chat_id: "-1001234567890"
    language: ru
    rate_limit: {max: 20, per: 1h}
  mail:
    type: email
    host: smtp.example.com
    from: telewatch@example.com
    to: [oncall@example.com]
    username: telewatch
    password: ${TW_TEST_SMTP_PASSWORD:-fallback-pass}
  hook:
    type: webhook
    url: https://hooks.example.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXX
    format: slack
rules:
  - name: web
    match: {metrics: ["web_*"], labels: {dc: "eu-*"}}
    severity:
      - {level: critical, min_score: 8, min_deviation_pct: 50}
      - {level: warning, min_score: 5}
    min_duration: 5m
    repeat_interval: 2h
    channels: [ops]
    routes:
      - match: {labels: {team: db}}
        channels: [mail]
    owners:
      - match: {labels: {dc: eu-west}}
        owner: "@eu-oncall"
    quiet_hours: {start: "23:00", end: "07:00", timezone: Europe/Moscow}
    digest: {severities: [info], interval: 1h}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "alerting.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_file_loads_with_env_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_TEST_BOT_TOKEN", "987654:AAHsecretTOKENvalue_123")
    config = load_alerting_config(write(tmp_path, GOOD))
    ops = config.channels["ops"]
    assert ops.type == "telegram"
    assert ops.bot_token.get_secret_value() == "987654:AAHsecretTOKENvalue_123"
    assert ops.chat_id == -1001234567890
    assert ops.language == "ru"
    assert config.channels["mail"].password.get_secret_value() == "fallback-pass"  # type: ignore[union-attr]
    rule = config.rules[0]
    assert rule.min_duration == timedelta(minutes=5)
    assert rule.repeat_interval == timedelta(hours=2)
    # secrets never show in a repr or a dump
    assert "AAHsecret" not in repr(config)
    assert "AAHsecret" not in config.model_dump_json()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("bot_token: ${TW_TEST_BOT_TOKEN}", "bot_token: not-a-token"), "channels.ops.bot_token (line 9)"),
        (("channels: [ops]", "channels: [opz]"), "rules.0.channels.0: no channel named 'opz'"),
        (("    format: slack", "    format: teams"), "channels.hook.format (line 23)"),
        (("min_duration: 5m", "min_duration: five minutes"), "rules.0.min_duration (line 30)"),
        (("    host: smtp.example.com\n", ""), "channels.mail.host"),
        (("    language: ru", "    langauge: ru"), "channels.ops.langauge (line 11): unknown setting"),
        (("timezone: Europe/Moscow", "timezone: Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
        (("to: [oncall@example.com]", "to: [oncall]"), "'oncall' is not an e-mail address"),
        (("{labels[dc]}", "{dc}"), "uses an unknown field 'dc'"),
        (('owner: "@eu-oncall"', "owner: eu-oncall"), "rules.0.owners.0.owner"),
        (("    type: webhook", "    type: pigeon"), "channels.hook"),
    ],
)
def test_malformed_configuration_names_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: tuple[str, str], expected: str
) -> None:
    monkeypatch.setenv("TW_TEST_BOT_TOKEN", "987654:AAHsecretTOKENvalue_123")
    old, new = change
    assert old in GOOD
    with pytest.raises(ConfigError) as info:
        load_alerting_config(write(tmp_path, GOOD.replace(old, new)))
    message = str(info.value)
    assert expected in message
    assert str(tmp_path / "alerting.yaml") in message
    assert "AAHsecret" not in message


def test_missing_environment_variable_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TW_TEST_BOT_TOKEN", raising=False)
    with pytest.raises(
        ConfigError, match=r"channels\.ops\.bot_token: environment variable TW_TEST_BOT_TOKEN"
    ):
        load_alerting_config(write(tmp_path, GOOD))


def test_broken_yaml_gives_line_and_column(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\(line \d+, column \d+\): not valid YAML"):
        load_alerting_config(write(tmp_path, "channels:\n  ops:\n    type: [telegram\n"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the alerting configuration"):
        load_alerting_config(tmp_path / "nope.yaml")


def test_section_inside_a_monitor_file(tmp_path: Path) -> None:
    text = (
        "monitor: web\nalerting:\n  channels:\n    hook: {type: webhook, url: 'http://127.0.0.1:1/x'}\n"
        "  rules:\n    - {name: all, channels: [hook], repeat_interval: soon}\n"
    )
    with pytest.raises(ConfigError, match=r"alerting\.rules\.0\.repeat_interval \(line 6\)"):
        load_alerting_config(write(tmp_path, text))


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("5m", 300), ("1h30m", 5400), ("2d", 172800), (45, 45)]
)
def test_durations(text: str | int, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("bad", ["", "5 parsecs", "m5", "-5m", True])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)
