"""Start Debian's Prometheus (2.42) on loopback, scraping itself; stop it by PID."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx

from support import free_port, stop, wait_until

BINARY = shutil.which("prometheus") or "/usr/bin/prometheus"


@dataclass
class PrometheusServer:
    directory: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = (self.directory / "prometheus.log").open("ab")
        self.proc = subprocess.Popen(
            [
                BINARY,
                f"--config.file={self.directory / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1d",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until(
            lambda: httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200,
            timeout=30,
            what=f"prometheus on port {self.port}",
        )

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None


def make_prometheus(directory: Path, *, scrape_interval: str = "1s") -> PrometheusServer:
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    (directory / "prometheus.yml").write_text(
        "global:\n"
        f"  scrape_interval: {scrape_interval}\n"
        "scrape_configs:\n"
        "  - job_name: prometheus\n"
        "    static_configs:\n"
        f"      - targets: ['127.0.0.1:{port}']\n"
    )
    return PrometheusServer(directory=directory, port=port)
