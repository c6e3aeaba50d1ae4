"""core.secrets: redaction of literal secrets and secret-shaped text, and the logging filter."""

from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr

from telewatch.core.secrets import (
    MASK,
    RedactingFilter,
    install_redacting_filter,
    install_redacting_record_factory,
    redact,
    redact_mapping,
    uninstall_redacting_record_factory,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://tw:pa55word@db:5432/tw", "postgresql://tw:***@db:5432/tw"),
        (
            "clickhouse://default:x%40y@127.0.0.1:9000/default",
            "clickhouse://default:***@127.0.0.1:9000/default",
        ),
        ("connect to 'postgresql://u:p/w@h/d' failed", "connect to 'postgresql://u:***@h/d' failed"),
        (
            "https://api.telegram.org/bot123456:AAE-x_yZ/sendPhoto",
            "https://api.telegram.org/bot***/sendPhoto",
        ),
        ("host=db user=tw password=hunter22 dbname=tw", "host=db user=tw password=*** dbname=tw"),
        ("GET /login?token=tw_abc123&next=/ HTTP/1.1", "GET /login?token=***&next=/ HTTP/1.1"),
        ("Authorization: Bearer abc.def-123", "Authorization: Bearer ***"),
        ("{'password': 'hunter22', 'host': 'db'}", "{'password': '***', 'host': 'db'}"),
        (
            "http://example.com:8080/path and user@example.com",
            "http://example.com:8080/path and user@example.com",
        ),
        ("nothing secret here", "nothing secret here"),
    ],
)
def test_redact_masks_secret_shapes(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_redact_masks_literal_secrets_longest_first_and_accepts_secretstr() -> None:
    text = "token abcdefgh-long and abcdefgh"
    assert redact(text, ["abcdefgh", SecretStr("abcdefgh-long"), None, ""]) == "token *** and ***"
    assert redact("ab is short", ["ab"]) == "ab is short"  # too short to mask safely
    assert redact("", ["x"]) == ""


def test_redact_mapping_masks_secret_keys_and_nested_text() -> None:
    data = {
        "channels": [{"type": "telegram", "bot_token": "123:abc", "chat_id": 5}],
        "smtp": {"password": "pw123456", "user": "ann"},
        "dsn": "postgresql://u:pw123456@h/d",
        "api_key": None,
        "secret": SecretStr("s"),
    }
    out = redact_mapping(data)
    assert out["channels"][0] == {"type": "telegram", "bot_token": MASK, "chat_id": 5}
    assert out["smtp"] == {"password": MASK, "user": "ann"}
    assert out["dsn"] == "postgresql://u:***@h/d"
    assert out["api_key"] is None
    assert out["secret"] == MASK
    assert data["smtp"]["password"] == "pw123456"  # a copy: the input is untouched


def test_filter_redacts_message_arguments_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("telewatch.test.secrets")
    flt = RedactingFilter(secrets=["hunter22"])
    log.addFilter(flt)
    try:
        with caplog.at_level(logging.INFO, logger="telewatch.test.secrets"):
            log.info("user %s logged in with %s", "ann", "hunter22")
            log.info("dsn=%s", "postgresql://u:topsecret@h/d")
            try:
                raise RuntimeError("connect failed: password=hunter22")
            except RuntimeError:
                log.exception("boom")
    finally:
        log.removeFilter(flt)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[:2] == ["user ann logged in with ***", "dsn=postgresql://u:***@h/d"]
    # arguments stay a tuple (formatters such as uvicorn's access log read them)
    assert caplog.records[0].args == ("ann", "***")
    assert "hunter22" not in caplog.text
    assert "password=***" in caplog.text


def test_record_factory_redacts_every_logger_until_uninstalled(caplog: pytest.LogCaptureFixture) -> None:
    url = "https://api.telegram.org/bot42:SECRETSECRET/sendMessage"
    install_redacting_record_factory(["my-planted-secret"])
    try:
        with caplog.at_level(logging.INFO):
            logging.getLogger("httpx").info("HTTP Request: POST %s", url)
            logging.getLogger("some.library").warning("value my-planted-secret seen")
    finally:
        uninstall_redacting_record_factory()
    assert "SECRETSECRET" not in caplog.text
    assert "/bot***/sendMessage" in caplog.text
    assert "my-planted-secret" not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO):
        logging.getLogger("httpx").info("HTTP Request: POST %s", url)
    assert "SECRETSECRET" in caplog.text  # uninstalled: back to the plain factory


def test_install_on_handlers_is_idempotent() -> None:
    logger = logging.getLogger("telewatch.test.install")
    handler = logging.NullHandler()
    logger.addHandler(handler)
    try:
        first = install_redacting_filter(["one-secret"], logger=logger)
        second = install_redacting_filter(["two-secret"], logger=logger)
        assert first is second
        assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
        record = logger.makeRecord(
            logger.name, logging.INFO, __file__, 1, "%s %s", ("one-secret", "two-secret"), None
        )
        first.filter(record)
        assert record.getMessage() == "*** ***"
    finally:
        logger.removeHandler(handler)
        logger.filters.clear()
