"""Start a private PostgreSQL 15 on loopback (initdb + pg_ctl as user postgres), stop it by pg_ctl."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from support import free_port

BIN = Path("/usr/lib/postgresql/15/bin")


def _as_postgres(args: list[str]) -> subprocess.CompletedProcess[str]:
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--", *args]
    return subprocess.run(args, check=False, capture_output=True, text=True, timeout=120)


@dataclass
class PostgresServer:
    directory: Path
    port: int
    user: str = "postgres"
    database: str = "postgres"

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={self.database}"

    def _ctl(self, *args: str) -> None:
        result = _as_postgres([str(BIN / "pg_ctl"), "-D", str(self.directory / "data"), *args])
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl {args[-1]}: {result.stdout}{result.stderr}")

    def start(self) -> None:
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.directory} -c fsync=off"
        self._ctl("-l", str(self.directory / "log"), "-o", opts, "-w", "start")

    def stop(self) -> None:
        if (self.directory / "data" / "postmaster.pid").exists():
            self._ctl("-m", "immediate", "-w", "stop")

    def execute(self, sql: str, params: object = None) -> None:
        """Run statements as the superuser (test setup only)."""
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as con:
            con.execute(sql, params)  # type: ignore[arg-type]


def make_postgres(directory: Path) -> PostgresServer:
    """initdb a cluster under ``directory`` (owned by postgres), not started."""
    directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
        # the server (user postgres) must be able to reach the directory: give it a path it can traverse
        parent = directory.parent
        if not os.stat(parent).st_mode & 0o001:
            raise RuntimeError(f"{parent} is not traversable by user postgres; use a directory under /tmp")
    result = _as_postgres(
        [str(BIN / "initdb"), "-D", str(directory / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
    )
    if result.returncode != 0:
        raise RuntimeError(f"initdb failed: {result.stdout}{result.stderr}")
    return PostgresServer(directory=directory, port=free_port())
