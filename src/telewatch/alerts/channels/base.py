"""What every channel implements, and how errors are reported without leaking secrets."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from telewatch.alerts.model import OutboundMessage
from telewatch.core.errors import TelewatchError

if TYPE_CHECKING:
    import httpx

Checkpoint = Callable[[dict[str, Any]], None]
"""Called by a channel after each step that landed (e.g. Telegram's message id), durably stored so a
restarted delivery skips what is already done."""


class DeliveryError(TelewatchError):
    """A send failed. The message never contains a secret. ``retry_after`` (s) when the channel said so."""

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


@dataclass(frozen=True)
class SendResult:
    remote_id: str | None = None


class Channel(ABC):
    """One configured destination. ``send`` raises :class:`DeliveryError` on failure (secrets redacted)."""

    kind: str = "base"

    def __init__(self, name: str, config: Any = None) -> None:
        from telewatch.alerts.config import RetryPolicy

        self.name = name
        self.language: str = getattr(config, "language", "en")
        self.retry: RetryPolicy = getattr(config, "retry", None) or RetryPolicy()
        self.rate_limit = getattr(config, "rate_limit", None)
        self.send_chart: bool = getattr(config, "send_chart", True)

    @abstractmethod
    def send(
        self, message: OutboundMessage, *, progress: dict[str, Any], checkpoint: Checkpoint
    ) -> SendResult:
        """Deliver ``message``. ``progress`` holds steps a previous attempt completed."""

    def secrets(self) -> list[str]:
        return []

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def describe(self) -> dict[str, Any]:
        """A description without secrets (for the API and CLI)."""
        return {"name": self.name, "type": self.kind}


class HttpChannel(Channel):
    """A channel that talks HTTP: one ``httpx.Client`` per channel, made on the first send (building
    one costs an SSL context, up to ~0.1 s of CPU) with the channel's ``timeout``, closed by ``close``."""

    def __init__(self, name: str, config: Any = None) -> None:
        super().__init__(name, config)
        self._http: httpx.Client | None = None
        self._timeout: float = config.timeout.total_seconds()

    @property
    def _client(self) -> httpx.Client:
        if self._http is None:
            import httpx

            self._http = httpx.Client(timeout=self._timeout)
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
