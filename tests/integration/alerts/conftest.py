"""Real servers on loopback for the alerting tests: an SMTP server (aiosmtpd, STARTTLS with a self-signed
certificate made here, AUTH LOGIN), a Telegram Bot API server (sendMessage, sendPhoto multipart) and a
webhook receiver that honours Idempotency-Key. Each records what it received."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from email.parser import BytesParser
from email.policy import default as default_policy
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from support import free_port
from telewatch.alerts.config import AlertingConfig, parse_alerting_config

BOT_TOKEN = "123456:TEST-token_abcdefghijklmnop"
SMTP_USER = "alerts@example.test"
SMTP_PASSWORD = "s3cret-smtp-pass"


def make_config(channels: dict[str, dict[str, Any]], **rule: Any) -> AlertingConfig:
    base: dict[str, Any] = {"name": "web", "channels": sorted(channels)}
    base.update(rule)
    return parse_alerting_config(
        {
            "links": {
                "base_url": "https://telewatch.example.com",
                "dashboards": [
                    {
                        "title": "Grafana",
                        "url": "https://grafana.example.com/d/web?var-dc={labels[dc]}&from={start_ms}&to={end_ms}",
                    }
                ],
            },
            "channels": channels,
            "rules": [base],
        }
    )


def telegram_channel(api_base: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "telegram",
        "bot_token": BOT_TOKEN,
        "chat_id": -1001234567890,
        "api_base": api_base,
        "retry": {"initial": "10s", "max": "5m"},
        **extra,
    }


def webhook_channel(url: str, **extra: Any) -> dict[str, Any]:
    return {"type": "webhook", "url": url, "retry": {"initial": "10s", "max": "5m"}, **extra}


def email_channel(port: int, cert: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "email",
        "host": "127.0.0.1",
        "port": port,
        "security": "starttls",
        "username": SMTP_USER,
        "password": SMTP_PASSWORD,
        "from": "telewatch@example.test",
        "to": ["oncall@example.test", "web-team@example.test"],
        "ca_file": cert,
        **extra,
    }


class Configs:
    """Builders of alerting configurations pointing at the servers started here (the ``cfg`` fixture)."""

    BOT_TOKEN = BOT_TOKEN
    SMTP_USER = SMTP_USER
    SMTP_PASSWORD = SMTP_PASSWORD
    make = staticmethod(make_config)
    telegram = staticmethod(telegram_channel)
    webhook = staticmethod(webhook_channel)
    email = staticmethod(email_channel)


@pytest.fixture
def cfg() -> type[Configs]:
    return Configs


# -- HTTP servers -------------------------------------------------------------------------------
class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def _serve(handler: type[BaseHTTPRequestHandler], state: Any) -> tuple[_Server, threading.Thread]:
    server = _Server(("127.0.0.1", free_port()), handler)
    server.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread


@dataclass
class WebhookState:
    requests: list[dict[str, Any]] = field(default_factory=list)  # every request, duplicates included
    processed: dict[str, dict[str, Any]] = field(default_factory=dict)  # by Idempotency-Key, first wins
    down: bool = False
    hold: threading.Event | None = None  # when set: answer only once released
    received: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [r["json"] for r in self.processed.values()]


class _WebhookHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        state: WebhookState = self.server.state  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if state.down:
            self.send_response(503)
            self.end_headers()
            self.wfile.write(b"down for maintenance")
            return
        key = self.headers.get("Idempotency-Key", "")
        record = {"path": self.path, "headers": dict(self.headers), "json": json.loads(body), "key": key}
        with state.lock:
            state.requests.append(record)
            duplicate = key in state.processed
            if not duplicate:
                state.processed[key] = record
        state.received.set()
        if state.hold is not None:
            state.hold.wait(timeout=30)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"ok": True, "duplicate": duplicate}).encode())


@pytest.fixture
def webhook() -> Iterator[WebhookState]:
    state = WebhookState()
    server, thread = _serve(_WebhookHandler, state)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield state
    if state.hold is not None:
        state.hold.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


class _TelegramHTMLCheck(HTMLParser):
    """Telegram's HTML parse mode accepts a few tags only and refuses unbalanced markup."""

    ALLOWED: ClassVar[set[str]] = {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-spoiler",
        "span",
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.ALLOWED:
            self.errors.append(f'Unsupported start tag "{tag}"')
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(f'Unmatched end tag "{tag}"')


@dataclass
class TelegramState:
    messages: list[dict[str, Any]] = field(default_factory=list)
    photos: list[dict[str, Any]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    down: bool = False
    too_many_requests: int = 0  # answer this many calls with 429 and retry_after
    hold_photo: threading.Event | None = None
    photo_received: threading.Event = field(default_factory=threading.Event)
    next_id: int = 100
    lock: threading.Lock = field(default_factory=threading.Lock)
    api_base: str = ""


class _TelegramHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        state: TelegramState = self.server.state  # type: ignore[attr-defined]
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        parts = self.path.strip("/").split("/")
        if len(parts) != 2 or parts[0] != f"bot{BOT_TOKEN}":
            self._answer(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
            return
        method = parts[1]
        if state.down:
            self._answer(502, {"ok": False, "error_code": 502, "description": "Bad Gateway"})
            return
        if state.too_many_requests > 0:
            state.too_many_requests -= 1
            self._answer(
                429,
                {
                    "ok": False,
                    "error_code": 429,
                    "description": "Too Many Requests: retry after 37",
                    "parameters": {"retry_after": 37},
                },
            )
            return
        ctype = self.headers.get("Content-Type", "")
        files: dict[str, bytes] = {}
        if ctype.startswith("application/json"):
            fields = json.loads(raw)
        elif ctype.startswith("multipart/form-data"):
            msg = BytesParser(policy=default_policy).parsebytes(
                f"Content-Type: {ctype}\r\n\r\n".encode() + raw
            )
            fields = {}
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if part.get_filename():
                    files[str(name)] = part.get_payload(decode=True)
                else:
                    fields[str(name)] = part.get_content()
        else:
            self._answer(
                400, {"ok": False, "error_code": 400, "description": "Bad Request: unsupported body"}
            )
            return
        text_field = "text" if method == "sendMessage" else "caption"
        if fields.get("parse_mode") == "HTML" and fields.get(text_field):
            check = _TelegramHTMLCheck()
            check.feed(str(fields[text_field]))
            check.close()
            if check.errors or check.stack:
                self._answer(
                    400,
                    {
                        "ok": False,
                        "error_code": 400,
                        "description": "Bad Request: can't parse entities: " + "; ".join(check.errors),
                    },
                )
                return
        if method == "sendMessage":
            if len(str(fields.get("text", ""))) > 4096:
                self._answer(
                    400, {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"}
                )
                return
            with state.lock:
                state.calls.append(method)
                state.next_id += 1
                record = {"message_id": state.next_id, **fields}
                state.messages.append(record)
            self._answer(
                200,
                {
                    "ok": True,
                    "result": {"message_id": record["message_id"], "chat": {"id": fields["chat_id"]}},
                },
            )
            return
        if method == "sendPhoto":
            if "photo" not in files:
                self._answer(
                    400,
                    {
                        "ok": False,
                        "error_code": 400,
                        "description": "Bad Request: there is no photo in the request",
                    },
                )
                return
            with state.lock:
                state.calls.append(method)
                state.next_id += 1
                record = {"message_id": state.next_id, "photo": files["photo"], **fields}
                state.photos.append(record)
            state.photo_received.set()
            if state.hold_photo is not None:
                state.hold_photo.wait(timeout=30)
            self._answer(200, {"ok": True, "result": {"message_id": record["message_id"]}})
            return
        self._answer(404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"})


@pytest.fixture
def telegram() -> Iterator[TelegramState]:
    state = TelegramState()
    server, thread = _serve(_TelegramHandler, state)
    state.api_base = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    if state.hold_photo is not None:
        state.hold_photo.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


# -- SMTP ---------------------------------------------------------------------------------------
def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost (and its key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@dataclass
class SmtpState:
    port: int
    cert: Path
    messages: list[Message] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    mechanisms: list[str] = field(default_factory=list)
    tls_sessions: int = 0
    hold: threading.Event | None = None  # when set: answer DATA only once released
    received: threading.Event = field(default_factory=threading.Event)


class _Handler:
    def __init__(self, state: SmtpState) -> None:
        self.state = state

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.state.raw.append(envelope.content)
        self.state.messages.append(message_from_bytes(envelope.content, policy=default_policy))
        if session.ssl is not None:
            self.state.tls_sessions += 1
        self.state.received.set()
        if self.state.hold is not None:
            import asyncio

            await asyncio.get_running_loop().run_in_executor(None, self.state.hold.wait, 30)
        return "250 Message accepted for delivery"


def _authenticator(state: SmtpState) -> Any:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def check(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        state.mechanisms.append(mechanism)
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = auth_data.login.decode() == SMTP_USER and auth_data.password.decode() == SMTP_PASSWORD
        if ok:
            state.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

    return check


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[SmtpState]:
    """aiosmtpd with STARTTLS required before AUTH; AUTH LOGIN only (PLAIN switched off)."""
    from aiosmtpd.controller import Controller

    cert, key = make_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    state = SmtpState(port=free_port(), cert=cert)
    controller = Controller(
        _Handler(state),
        hostname="127.0.0.1",
        port=state.port,
        tls_context=context,
        require_starttls=True,
        authenticator=_authenticator(state),
        auth_require_tls=True,
        auth_exclude_mechanism=["PLAIN"],
    )
    controller.start()
    yield state
    controller.stop()


@pytest.fixture
def smtp_ssl_server(tmp_path: Path) -> Iterator[SmtpState]:
    """aiosmtpd speaking implicit TLS (SMTPS), no login."""
    from aiosmtpd.controller import Controller

    cert, key = make_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    state = SmtpState(port=free_port(), cert=cert)
    controller = Controller(_Handler(state), hostname="127.0.0.1", port=state.port, ssl_context=context)
    controller.start()
    yield state
    controller.stop()
