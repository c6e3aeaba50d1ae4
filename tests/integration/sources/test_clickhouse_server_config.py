"""The minimal ClickHouse server of docs/sources.md, as written: its config.xml and users.xml start Debian's
ClickHouse 18.16 (only the folders and ports swapped for the test's), the monitor of that section reads
through the read-only user, and that user can neither write nor read other databases."""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from support import free_port, port_open, stop, wait_until
from support.clickhouse import BINARY
from telewatch.scheduler.jobs import check_monitors, load_config
from telewatch.store.db import Store

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "ro-secret-7"
T0 = pd.Timestamp("2026-03-01 00:00", tz="UTC")


def _doc_examples() -> tuple[str, str, str]:
    """config.xml, users.xml and the monitors YAML of the section."""
    text = (ROOT / "docs" / "sources.md").read_text(encoding="utf-8")
    section = (
        text.split("\n### A minimal ClickHouse server\n", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    )
    blocks = re.findall(r"^```(\w*)\n(.*?)^```", section, re.S | re.M)
    xml = [body for lang, body in blocks if lang == "xml"]
    yml = [body for lang, body in blocks if lang == "yaml"]
    assert len(xml) == 2
    assert len(yml) == 1
    return xml[0], xml[1], yml[0]


class Server:
    def __init__(self, directory: Path) -> None:
        config, users, _ = _doc_examples()
        self.http, self.tcp = free_port(), free_port()
        for old, new in {
            "/var/lib/clickhouse/": f"{directory}/data/",
            "/var/log/clickhouse-server/": f"{directory}/log/",
            "<tcp_port>9000</tcp_port>": f"<tcp_port>{self.tcp}</tcp_port>",
            "<http_port>8123</http_port>": f"<http_port>{self.http}</http_port>",
            "<interserver_http_port>9009<": f"<interserver_http_port>{free_port()}<",
        }.items():
            assert old in config, old
            config = config.replace(old, new)
        assert "SHA256-OF-THE-PASSWORD" in users
        users = users.replace("SHA256-OF-THE-PASSWORD", hashlib.sha256(PASSWORD.encode()).hexdigest())
        etc = directory / "etc"
        for sub in ("etc", "data/tmp", "data/user_files", "data/format_schemas", "log", "elsewhere"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        (etc / "config.xml").write_text(config)
        (etc / "users.xml").write_text(users)  # found beside config.xml: <users_config> is relative
        self.directory = directory
        self.proc = subprocess.Popen(
            [BINARY, f"--config-file={etc / 'config.xml'}"],
            stdout=(directory / "stdout.log").open("wb"),
            stderr=subprocess.STDOUT,
            cwd=directory / "elsewhere",
        )

    def sql(self, query: str, *, user: str = "default", password: str = "") -> httpx.Response:
        return httpx.post(
            f"http://127.0.0.1:{self.http}/",
            params={"user": user, "password": password},
            content=query.encode(),
            timeout=30,
        )

    def admin(self, query: str) -> str:
        resp = self.sql(query)
        assert resp.status_code == 200, resp.text
        return resp.text


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "ch")
    try:
        wait_until(
            lambda: port_open(srv.tcp) and srv.sql("SELECT 1").text.strip() == "1",
            timeout=60,
            what="clickhouse from the documented config",
        )
        yield srv
    finally:
        stop(srv.proc)


def test_the_documented_server_config_starts_and_serves_the_read_only_user(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert server.admin("SELECT timezone()").strip() in {"UTC", "Etc/UTC"}
    server.admin("CREATE DATABASE web")
    server.admin(
        "CREATE TABLE web.key_features (point DateTime, web_response Float64) ENGINE = MergeTree ORDER BY point"
    )
    rows = ", ".join(
        f"({int((T0 + pd.Timedelta(minutes=m)).timestamp())}, {100 + m % 7})" for m in range(120)
    )
    server.admin(f"INSERT INTO web.key_features VALUES {rows}")
    server.admin("CREATE TABLE default.private (x UInt8) ENGINE = Memory")

    # the monitor of the section, through telewatch_ro
    _, _, monitors = _doc_examples()
    assert "port: 9000" in monitors
    path = tmp_path / "monitors.yaml"
    path.write_text(monitors.replace("port: 9000", f"port: {server.tcp}"))
    monkeypatch.setenv("TELEWATCH_CH_PASSWORD", PASSWORD)
    with Store(tmp_path / "tw.duckdb") as store:
        (report,) = check_monitors(load_config(path), store=store, now=T0 + pd.Timedelta(hours=2))
    assert report.status == "ok", report.error
    assert report.points >= 100

    # read-only: reads its database, writes nothing, sees no other database, needs its password
    ro = {"user": "telewatch_ro", "password": PASSWORD}
    assert server.sql("SELECT count() FROM web.key_features", **ro).text.strip() == "120"
    for statement in (
        "INSERT INTO web.key_features VALUES (0, 1)",
        "CREATE TABLE web.t (x UInt8) ENGINE = Memory",
        "DROP TABLE web.key_features",
    ):
        resp = server.sql(statement, **ro)
        assert resp.status_code != 200
        assert "readonly mode" in resp.text, resp.text
    denied = server.sql("SELECT * FROM default.private", **ro)
    assert denied.status_code != 200
    assert "Access denied to database default" in denied.text, denied.text
    wrong = server.sql("SELECT 1", user="telewatch_ro", password="nope")
    assert wrong.status_code != 200
    assert "password" in wrong.text.lower(), wrong.text
    assert server.admin("SELECT count() FROM web.key_features").strip() == "120"
