"""E-mail over SMTP (STARTTLS, SSL or plain; optional login): an HTML body with the chart inline (CID)
and a plain-text alternative. The ``Message-ID`` is derived from the notification's idempotency key, so a
re-sent message is recognisably the same one (mail clients and many servers collapse duplicates by it).
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from telewatch.alerts.channels.base import Channel, Checkpoint, DeliveryError, SendResult
from telewatch.alerts.config import EmailChannel
from telewatch.alerts.model import OutboundMessage
from telewatch.core.secrets import redact

CHART_CID = "chart"


def message_id(idempotency_key: str) -> str:
    """A valid, stable ``Message-ID`` for a notification (the key itself has characters RFC 5322 forbids).

    >>> message_id("ops:g:firing:20260101T000000Z:ab")
    '<1ebc471e8e0a804a7a1c27025f548fc1@telewatch>'
    """
    import hashlib

    return f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}@telewatch>"


def build_email(message: OutboundMessage, *, sender: str, to: list[str]) -> EmailMessage:
    """The MIME message: multipart/alternative (text, then HTML related to the PNG)."""
    mail = EmailMessage()
    mail["Subject"] = message.subject
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    mail["Date"] = format_datetime(message.created_at.to_pydatetime())
    mail["Message-ID"] = message_id(message.idempotency_key)
    mail["X-Telewatch-Idempotency-Key"] = message.idempotency_key
    mail["X-Telewatch-Severity"] = message.severity
    mail.set_content(message.body_text, subtype="plain", charset="utf-8")
    mail.add_alternative(message.body_email, subtype="html", charset="utf-8")
    if message.chart_png:
        html_part: EmailMessage = mail.get_payload()[1]  # type: ignore[assignment,index]
        html_part.add_related(
            message.chart_png, maintype="image", subtype="png", cid=f"<{CHART_CID}>", filename="chart.png"
        )
    return mail


class EmailSender(Channel):
    kind = "email"

    def __init__(self, name: str, config: EmailChannel) -> None:
        super().__init__(name, config)
        self.config = config

    def secrets(self) -> list[str]:
        return [self.config.password.get_secret_value()] if self.config.password else []

    def describe(self) -> dict[str, Any]:
        c = self.config
        return {
            "name": self.name,
            "type": self.kind,
            "host": c.host,
            "port": c.port,
            "security": c.security,
            "username": c.username,
            "from": c.sender,
            "to": c.to,
            "language": c.language,
        }

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.config.ca_file) if self.config.ca_file else None)
        if not self.config.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def send(
        self, message: OutboundMessage, *, progress: dict[str, Any], checkpoint: Checkpoint
    ) -> SendResult:
        c = self.config
        mail = build_email(message, sender=c.sender, to=c.to)
        timeout = c.timeout.total_seconds()
        try:
            smtp: smtplib.SMTP
            if c.security == "ssl":
                smtp = smtplib.SMTP_SSL(c.host, c.port, timeout=timeout, context=self._context())
            else:
                smtp = smtplib.SMTP(c.host, c.port, timeout=timeout)
            try:
                smtp.ehlo()
                if c.security == "starttls":
                    smtp.starttls(context=self._context())
                    smtp.ehlo()
                if c.username and c.password:
                    smtp.login(c.username, c.password.get_secret_value())
                refused = smtp.send_message(mail)
            finally:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    smtp.close()
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                redact(f"smtp {c.host}:{c.port}: login refused: {exc.smtp_code}", self.secrets()),
                status=exc.smtp_code,
            ) from None
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise DeliveryError(
                redact(f"smtp {c.host}:{c.port}: {type(exc).__name__}: {exc}", self.secrets())
            ) from None
        remote = str(mail["Message-ID"])
        if refused:  # others got it: sending again would duplicate theirs, so record and move on
            remote += " (refused: " + ", ".join(sorted(refused)) + ")"
        return SendResult(remote_id=remote)
