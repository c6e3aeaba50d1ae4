"""Real servers for the source tests, started once per test session on loopback."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.clickhouse import ClickHouseServer, make_clickhouse
from support.postgres import PostgresServer, make_postgres
from support.prometheus import PrometheusServer, make_prometheus
from support.snmpd import SnmpAgent, make_snmpd
from support.webhook import WebhookReceiver


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


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver
