"""Telegram via the Bot API: ``sendMessage`` (HTML) then ``sendPhoto`` (the chart) as a reply to it.

The Bot API has no idempotency key and a bot cannot read back what it sent, so a re-send cannot ask
Telegram whether the previous attempt landed. What telewatch does instead: each step that succeeded
is checkpointed in the outbox right away (``message_id`` after ``sendMessage``, ``photo_id`` after
``sendPhoto``), and a restarted delivery skips the steps already checkpointed. The remaining
at-least-once window is the few milliseconds between Telegram's answer and that checkpoint's commit:
a process killed exactly there sends that step once more (see docs/alerting.md).
"""

from __future__ import annotations

from typing import Any

import httpx

from telewatch.alerts.channels.base import Checkpoint, DeliveryError, HttpChannel, SendResult
from telewatch.alerts.config import TelegramChannel
from telewatch.alerts.model import OutboundMessage, severity_rank
from telewatch.alerts.render import caption
from telewatch.core.secrets import mask_url, redact


class TelegramSender(HttpChannel):
    kind = "telegram"

    def __init__(self, name: str, config: TelegramChannel) -> None:
        super().__init__(name, config)
        self.config = config
        self._token = config.bot_token.get_secret_value()

    def secrets(self) -> list[str]:
        base = httpx.URL(str(self.config.api_base))  # a proxy's credentials may ride in api_base
        return [self._token, *(part for part in (base.username, base.password) if part)]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.kind,
            "chat_id": self.config.chat_id,
            "api_base": mask_url(self.config.api_base),
            "language": self.config.language,
        }

    def _url(self, method: str) -> str:
        return f"{str(self.config.api_base).rstrip('/')}/bot{self._token}/{method}"

    def _call(
        self, method: str, *, data: dict[str, Any], files: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        try:
            if files:
                response = self._client.post(
                    self._url(method), data={k: str(v) for k, v in data.items()}, files=files
                )
            else:
                response = self._client.post(self._url(method), json=data)
        except httpx.HTTPError as exc:
            raise DeliveryError(
                redact(f"telegram {method}: {type(exc).__name__}: {exc}", self.secrets())
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code == 200 and body.get("ok"):
            result: dict[str, Any] = body.get("result") or {}
            return result
        description = body.get("description") or response.text[:200]
        retry_after = (body.get("parameters") or {}).get("retry_after")
        raise DeliveryError(
            redact(f"telegram {method}: HTTP {response.status_code}: {description}", self.secrets()),
            retry_after=float(retry_after) if retry_after is not None else None,
            status=response.status_code,
        )

    def send(
        self, message: OutboundMessage, *, progress: dict[str, Any], checkpoint: Checkpoint
    ) -> SendResult:
        common: dict[str, Any] = {"chat_id": self.config.chat_id}
        if self.config.message_thread_id is not None:
            common["message_thread_id"] = self.config.message_thread_id
        quiet = self.config.disable_notification_below
        if quiet is not None and severity_rank(message.severity) < severity_rank(quiet):
            common["disable_notification"] = True
        message_id = progress.get("message_id")
        if message_id is None:
            result = self._call(
                "sendMessage",
                data={
                    **common,
                    "text": message.body_html,
                    "parse_mode": "HTML",
                    "link_preview_options": {"is_disabled": True},
                },
            )
            message_id = result.get("message_id")
            progress["message_id"] = message_id
            checkpoint(progress)
        if message.chart_png and self.config.send_chart and progress.get("photo_id") is None:
            data = {
                **common,
                "caption": caption(message.summary),
                "parse_mode": "HTML",
            }
            if message_id is not None:
                data["reply_to_message_id"] = message_id
            result = self._call(
                "sendPhoto", data=data, files={"photo": ("chart.png", message.chart_png, "image/png")}
            )
            progress["photo_id"] = result.get("message_id")
            checkpoint(progress)
        return SendResult(remote_id=None if message_id is None else str(message_id))
