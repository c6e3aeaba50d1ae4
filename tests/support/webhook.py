"""A webhook endpoint on loopback for tests: records every POST, duplicates included."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw or b"{}")
        except ValueError:  # kept, so that a test can show what was sent
            body = {"raw": raw.decode(errors="replace")}
        self.server.receiver.record(self.headers.get("Idempotency-Key", ""), body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"ok": true}')

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: WebhookReceiver


class WebhookReceiver:
    """Each POST's ``Idempotency-Key`` header and JSON body (``{"raw": text}`` when the body is not JSON),
    in arrival order; answers ``200``.

    Use as a context manager (``with WebhookReceiver() as hook: ... hook.url``): it serves from a
    thread until the block ends.
    """

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.receiver = self
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def record(self, key: str, body: dict[str, Any]) -> None:
        with self.lock:
            self.requests.append((key, body))

    @property
    def bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies received so far (a copy)."""
        with self.lock:
            return [body for _, body in self.requests]

    def keys(self) -> list[str]:
        """The ``Idempotency-Key`` of each request received so far."""
        with self.lock:
            return [key for key, _ in self.requests]

    def firing(self) -> list[dict[str, Any]]:
        """The firing alerts of every body received (Alertmanager-style ``alerts`` lists)."""
        return [a for b in self.bodies for a in b.get("alerts", []) if a["status"] == "firing"]

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
