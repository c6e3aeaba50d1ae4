"""Channels: one module each. :func:`build_channel` turns a validated configuration into a sender."""

from __future__ import annotations

from telewatch.alerts.channels.base import Channel, DeliveryError, SendResult
from telewatch.alerts.config import EmailChannel, TelegramChannel, WebhookChannel


def build_channel(
    name: str, config: TelegramChannel | EmailChannel | WebhookChannel, *, external_url: str = ""
) -> Channel:
    """The sender for one configured channel."""
    if isinstance(config, TelegramChannel):
        from telewatch.alerts.channels.telegram import TelegramSender

        return TelegramSender(name, config)
    if isinstance(config, EmailChannel):
        from telewatch.alerts.channels.email import EmailSender

        return EmailSender(name, config)
    from telewatch.alerts.channels.webhook import WebhookSender

    return WebhookSender(name, config, external_url=external_url)


__all__ = ["Channel", "DeliveryError", "SendResult", "build_channel"]
