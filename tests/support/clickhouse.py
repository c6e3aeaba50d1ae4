"""Start Debian's ClickHouse server (18.16) on loopback in a temporary directory, stop it by PID."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx

from support import free_port, port_open, stop, wait_until

CONFIG_DIR = Path("/etc/clickhouse-server")
BINARY = shutil.which("clickhouse-server") or "/usr/bin/clickhouse-server"


@dataclass
class ClickHouseServer:
    directory: Path
    http_port: int
    tcp_port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def query(self, sql: str) -> str:
        """Run one statement over HTTP as the default user (test setup only)."""
        resp = httpx.post(f"http://127.0.0.1:{self.http_port}/", content=sql.encode(), timeout=30)
        if resp.status_code != 200:
            raise RuntimeError(f"clickhouse: {resp.text.strip()}")
        return resp.text

    def start(self) -> None:
        log = (self.directory / "stdout.log").open("wb")
        self.proc = subprocess.Popen(
            [BINARY, f"--config-file={self.directory / 'config.xml'}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.directory,
        )
        try:
            wait_until(
                lambda: port_open(self.tcp_port) and self.query("SELECT 1").strip() == "1",
                timeout=60,
                what=f"clickhouse on port {self.tcp_port}",
            )
        except TimeoutError:
            self.stop()
            tail = (self.directory / "log" / "clickhouse-server.err.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"clickhouse did not start: {tail}") from None

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None


def make_clickhouse(directory: Path) -> ClickHouseServer:
    """Write a config for a private server under ``directory`` (not started)."""
    directory.mkdir(parents=True, exist_ok=True)
    http_port, tcp_port, inter_port = free_port(), free_port(), free_port()
    text = (CONFIG_DIR / "config.xml").read_text()
    text = text.replace("/var/lib/clickhouse/", f"{directory}/data/")
    text = text.replace("/var/log/clickhouse-server/", f"{directory}/log/")
    text = text.replace("<listen_host>::1</listen_host>", "")
    text = re.sub(r"<http_port>\d+</http_port>", f"<http_port>{http_port}</http_port>", text)
    text = re.sub(r"<tcp_port>\d+</tcp_port>", f"<tcp_port>{tcp_port}</tcp_port>", text)
    text = re.sub(
        r"<interserver_http_port>\d+</interserver_http_port>",
        f"<interserver_http_port>{inter_port}</interserver_http_port>",
        text,
    )
    text = text.replace("<!-- <timezone>Europe/Moscow</timezone> -->", "<timezone>UTC</timezone>")
    text = text.replace("users.xml", str(directory / "users.xml"))
    (directory / "config.xml").write_text(text)
    shutil.copy(CONFIG_DIR / "users.xml", directory / "users.xml")
    for sub in ("data", "log", "data/tmp", "data/user_files", "data/format_schemas"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    return ClickHouseServer(directory=directory, http_port=http_port, tcp_port=tcp_port)
