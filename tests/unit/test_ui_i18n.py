"""The UI's message catalogues: every text the templates and page scripts pass through ``_()`` / ``t()``
has a Russian translation, placeholders match, and the language of a request is negotiated as documented
(docs/ui.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from starlette.requests import Request

from telewatch.web import i18n

WEB = Path(i18n.__file__).resolve().parents[1]
# states, kinds and other values the scripts translate by value (t(state), t(kind), …)
VALUES = [
    "anomalous", "ok", "no data", "stale", "not scored", "open", "resolved", "active", "pending", "expired",
    "sending", "sent", "failed", "digest", "digested", "revoked", "unknown", "firing", "closed", "config",
    "read", "admin", "store", "settings", "env", "planted", "imported", "feedback", "confirmed", "false_alarm",
    "expected", "wide", "long", "up", "down", "observed", "trend", "daily", "weekly", "residual",
    "Incident tracking", "Silences", "Notification history", "Channels", "Alert rules", "Monitors", "Alert history",
    "No alert rules.", "No monitors.", "last 1h", "last 6h", "last 24h", "last 7d", "last 30d",
    "refresh off", "refresh 30s", "refresh 1m", "refresh 5m", "incident", "alert", "resolve", "reminder", "test",
    "critical", "warning", "info", "state: ok", "state: anomalous", "state: no data", "state: stale",
    "state: not scored", "Confirmed", "False alarm", "Expected",
    # the alert rules' and monitors' columns (alerts.js drawOptionalList)
    "name", "match", "severity", "channels", "routes", "min_duration", "repeat_interval", "owner", "monitor",
    "status", "last_run_at", "attempts", "error", "series", "runs", "last_points", "last_anomalies",
]  # fmt: skip


def used_messages() -> set[str]:
    """The literal texts of ``_("…")`` in templates and ``t("…")`` in scripts, and the table headers."""
    found: set[str] = set(VALUES)
    for path in (WEB / "templates").glob("*.html"):
        text = path.read_text(encoding="utf-8")
        found |= {m[1] for m in re.finditer(r"""_\(\s*"((?:[^"\\]|\\.)*)"\s*[,)]""", text)}
        found |= {m[1] for m in re.finditer(r"""_\(\s*'((?:[^'\\]|\\.)*)'\s*[,)]""", text)}
    for path in (WEB / "static").glob("*.js"):
        text = path.read_text(encoding="utf-8")
        found |= {m[1] for m in re.finditer(r"""\bt\(\s*"((?:[^"\\]|\\.)*)"\s*[,)]""", text)}
        # header rows: ["Id", "Title", …].map((x) => h("th", {}, t(x))) and table(id, [ … ], rows)
        for arr in re.finditer(
            r"""\[((?:\s*"[^"]*"\s*,?)+)\](?=\.map\(\(x\) => h\("th"|,\s*\n?\s*(?:list|n)\.)""", text
        ):
            found |= {s for s in re.findall(r'"([^"]*)"', arr[1]) if s}
        for arr in re.finditer(r"""table\("[\w-]+", \[([^\]]*)\]""", text):
            found |= {s for s in re.findall(r'"([^"]*)"', arr[1]) if s}
        for arr in re.finditer(r"""const FEEDBACK = \[(.*)\];""", text):
            found |= {s.lower() for s in re.findall(r'"([^"_]*)"', arr[1]) if " " in s or s.istitle()}
    return {m.replace('\\"', '"') for m in found if re.search(r"[A-Za-z]", m)}


def test_every_message_has_a_russian_translation() -> None:
    ru = i18n.catalogue("ru")
    missing = sorted(m for m in used_messages() if m not in ru)
    assert not missing, "untranslated in src/telewatch/web/i18n/ru.json:\n" + "\n".join(
        map(json.dumps, missing)
    )


def test_placeholders_match_between_languages() -> None:
    for key, value in i18n.catalogue("ru").items():
        assert set(re.findall(r"\{(\w+)\}", key)) == set(re.findall(r"\{(\w+)\}", value)), (key, value)


def test_catalogues_are_valid_json_objects() -> None:
    for lang in i18n.LANGUAGES:
        data = json.loads((WEB / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))
        assert isinstance(data, dict)


def _request(query: str = "", cookie: str | None = None, accept: str | None = None) -> Request:
    headers = []
    if cookie:
        headers.append((b"cookie", f"{i18n.COOKIE}={cookie}".encode()))
    if accept:
        headers.append((b"accept-language", accept.encode()))
    return Request(
        {"type": "http", "query_string": query.encode(), "headers": headers, "method": "GET", "path": "/"}
    )


@pytest.mark.parametrize(
    ("query", "cookie", "accept", "want"),
    [
        ("", None, None, "en"),
        ("", None, "ru-RU,ru;q=0.9,en-US;q=0.8", "ru"),
        ("", "en", "ru-RU,ru;q=0.9", "en"),  # the user's choice beats the browser's
        ("lang=ru", "en", "en-US", "ru"),  # ?lang= beats both
        ("lang=de", None, "de-DE,en;q=0.3", "en"),  # unknown languages are skipped
    ],
)
def test_language_negotiation(query: str, cookie: str | None, accept: str | None, want: str) -> None:
    assert i18n.negotiate(_request(query, cookie, accept)) == want


def test_the_sign_in_and_sign_out_messages_have_russian_translations() -> None:
    from telewatch.web import login

    texts = [v for k, v in vars(login).items() if k.startswith("_") and k.isupper() and isinstance(v, str)]
    assert len(texts) >= 6
    missing = [t for t in texts if t not in i18n.catalogue("ru")]
    assert not missing, missing
