"""Real servers for the source tests, started once per test session on loopback."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from support.clickhouse import ClickHouseServer, make_clickhouse
from support.postgres import PostgresServer, make_postgres
from support.prometheus import PrometheusServer, make_prometheus
from support.snmpd import SnmpAgent, make_snmpd


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    # not under pytest's tmp dir: other pytest sessions reset its mode to 0700, locking user postgres out
    directory = Path(tempfile.mkdtemp(prefix="telewatch-pg-"))
    server = make_postgres(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def ch_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServer]:
    server = make_clickhouse(tmp_path_factory.mktemp("ch"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def prom_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    server = make_prometheus(tmp_path_factory.mktemp("prom"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def snmp_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnmpAgent]:
    agent = make_snmpd(tmp_path_factory.mktemp("snmp"))
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


class WebhookReceiver:
    """A local HTTP endpoint recording every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    receiver.bodies.append(json.loads(raw or b"{}"))
                except ValueError:
                    receiver.bodies.append({"raw": raw.decode(errors="replace")})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    try:
        yield receiver
    finally:
        receiver.close()
