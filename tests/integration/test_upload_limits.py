"""Upload limits hold for the API (streamed), the preview and the CLI: refused with a clear error,
nothing stored, and a huge body is not read whole before the refusal."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
from typer.testing import CliRunner

from support.auth import ADMIN_HEADERS, auth_settings
from telewatch.api.app import create_app
from telewatch.cli.app import app as cli_app
from telewatch.store.db import Store

LIMIT = 64 * 1024  # max_upload_bytes in these tests
SLACK = 1 << 20  # what the middleware allows on top for the form's other fields
BOUNDARY = "tw-boundary"
T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion in a fresh thread (and loop): another test may leave a loop running."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _count(store: Store, table: str) -> int:
    row = store.cursor().execute(f"SELECT count(*) FROM {table}").fetchone()  # table: a constant here
    return int(row[0]) if row else 0


def _multipart_head(name: str = "huge.csv") -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: text/csv\r\n\r\ntime,value\r\n"
    ).encode()


def _post_streamed(
    store: Store, tmp_path: Path, *, total: int, declare_length: bool
) -> tuple[int, dict[str, str], int]:
    """POST a multipart body of about ``total`` bytes in 1 MiB chunks; return status, body, bytes pulled."""
    app = create_app(auth_settings(db_path=tmp_path / "unused.duckdb", max_upload_bytes=LIMIT), store=store)
    pulled = 0
    chunk = b"2024-01-01 00:00:00,1\r\n" * ((1 << 20) // 23)

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        head = _multipart_head()
        pulled += len(head)
        yield head
        while pulled < total:
            pulled += len(chunk)
            yield chunk
        tail = f"\r\n--{BOUNDARY}--\r\n".encode()
        pulled += len(tail)
        yield tail

    async def go() -> httpx.Response:
        headers = {**ADMIN_HEADERS, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        if declare_length:
            headers["Content-Length"] = str(total)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tw") as client:
            return await client.post("/api/ingest", content=body(), headers=headers, timeout=60)

    response = run_async(go())
    return response.status_code, response.json(), pulled


def test_a_huge_chunked_upload_is_cut_off_at_the_limit_with_413(store: Store, tmp_path: Path) -> None:
    status, body, pulled = _post_streamed(store, tmp_path, total=2 * 1024**3, declare_length=False)
    assert status == 413
    assert body["error"] == "TooLarge"
    assert f"{LIMIT:,} bytes" in body["detail"]
    # 2 GiB offered; the server stopped pulling one chunk past limit + slack
    assert pulled < LIMIT + SLACK + 3 * (1 << 20)
    assert _count(store, "points") == 0
    assert _count(store, "ingests") == 0


def test_a_declared_huge_length_is_refused_before_reading(store: Store, tmp_path: Path) -> None:
    status, body, pulled = _post_streamed(store, tmp_path, total=50 * 1024**3, declare_length=True)
    assert status == 413
    assert "upload limit" in body["detail"]
    assert pulled < 2 * (1 << 20)  # at most what the client pushed before the answer
    assert _count(store, "ingests") == 0


def test_a_file_over_the_limit_but_within_the_slack_is_refused_by_the_reader(
    store: Store, tmp_path: Path
) -> None:
    app = create_app(auth_settings(db_path=tmp_path / "unused.duckdb", max_upload_bytes=LIMIT), store=store)
    data = b"time,value\n" + b"2024-01-01 00:00:00,1\n" * (LIMIT // 20)
    assert LIMIT < len(data) < LIMIT + SLACK

    async def go(path: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tw", headers=ADMIN_HEADERS) as c:
            return await c.post(path, files={"file": ("big.csv", data, "text/csv")})

    for path in ("/api/ingest", "/api/ingest/preview"):
        response = run_async(go(path))
        assert response.status_code == 413, (path, response.text)
        assert f"{LIMIT:,} bytes" in response.json()["detail"]
    assert _count(store, "ingests") == 0


def test_api_refuses_a_50_mb_line_and_too_many_columns_naming_the_line(store: Store, tmp_path: Path) -> None:
    settings = auth_settings(
        db_path=tmp_path / "unused.duckdb",
        max_upload_bytes=64 * 1024**2,
        max_line_bytes=64 * 1024,
        max_upload_columns=10,
    )
    app = create_app(settings, store=store)
    long_line = b"time,value\n" + b"1" * (50 * 1024**2) + b"\n"
    wide = (",".join(["time", *(f"c{i}" for i in range(20))]) + "\n").encode()

    async def go(path: str, data: bytes) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tw", headers=ADMIN_HEADERS) as c:
            return await c.post(path, files={"file": ("evil.csv", data, "text/csv")}, timeout=60)

    for path in ("/api/ingest", "/api/ingest/preview"):
        response = run_async(go(path, long_line))
        assert response.status_code == 400, response.text
        body = response.json()
        assert "max_line_bytes" in body["detail"]
        assert body["line"] == 2
        response = run_async(go(path, wide))
        assert response.status_code == 400, response.text
        assert "max_columns" in response.json()["detail"]
    assert _count(store, "ingests") == 0


def test_cli_refuses_files_past_the_limits_and_stores_nothing(tmp_path: Path) -> None:
    db = tmp_path / "cli.duckdb"
    big = tmp_path / "big.csv"
    big.write_bytes(b"time,value\n" + b"2024-01-01 00:00:00,1\n" * 10_000)
    runner = CliRunner()
    env = {"TELEWATCH_MAX_UPLOAD_BYTES": "65536"}
    result = runner.invoke(cli_app, ["ingest", str(big), "--db", str(db)], env=env)
    assert result.exit_code != 0
    assert "more than the limit of 65536" in result.output
    slow = tmp_path / "slow.csv"
    slow.write_bytes(
        b"time,value\n" + b"".join(b"2024-01-01 00:%02d:00,%d\n" % (i % 60, i) for i in range(100_000))
    )
    result = runner.invoke(
        cli_app, ["ingest", str(slow), "--db", str(db)], env={"TELEWATCH_MAX_PARSE_SECONDS": "0.001"}
    )
    assert result.exit_code != 0
    assert "max_parse_seconds" in result.output
    with Store(db) as store:
        assert _count(store, "ingests") == 0
        assert _count(store, "points") == 0
