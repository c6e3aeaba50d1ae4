"""Cost of the API's auth gate per request (telewatch.api.auth.AuthMiddleware), in microseconds.

Run: ``.venv/bin/python benchmarks/bench_auth.py [--requests 5000]``

Calls the middleware in process around a do-nothing ASGI app (so only the gate is timed) for: an open
path (pass-through), a configured token, a store token (a DuckDB lookup in a worker thread), a UI session
cookie, and a refused request (no token). Reference: the do-nothing app called directly. Prints medians
of five rounds as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from telewatch.api.auth import SESSION_COOKIE, Authenticator, AuthMiddleware
from telewatch.services.tokens import create_token, hash_token
from telewatch.settings import Settings
from telewatch.store.db import Store

CONFIG_TOKEN = "bench-admin-token-0123456789"


async def _noop(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _scope(path: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }


async def _time(app: Any, scope: dict[str, Any], n: int) -> float:
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    began = time.perf_counter()
    for _ in range(n):
        await app(dict(scope), receive, send)
    elapsed = (time.perf_counter() - began) / n * 1e6
    assert len(set(statuses)) == 1, set(statuses)
    return elapsed


async def main_async(n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "bench.duckdb") as store:
        _, store_token = create_token(store, name="bench", scope="read")
        auth = Authenticator(settings=Settings(api_tokens=f"admin:{CONFIG_TOKEN}"), store=store)  # type: ignore[arg-type]
        session = auth.sessions.create(hash_token(CONFIG_TOKEN))
        gate = AuthMiddleware(_noop, authenticator=auth)
        cases = {
            "no_gate_reference_us": (_noop, _scope("/api/metrics", {})),
            "open_path_us": (gate, _scope("/api/health", {})),
            "config_token_us": (gate, _scope("/api/metrics", {"Authorization": f"Bearer {CONFIG_TOKEN}"})),
            "store_token_us": (gate, _scope("/api/metrics", {"Authorization": f"Bearer {store_token}"})),
            "session_cookie_us": (gate, _scope("/api/metrics", {"Cookie": f"{SESSION_COOKIE}={session}"})),
            "refused_no_token_us": (gate, _scope("/api/metrics", {})),
        }
        out: dict[str, Any] = {"requests_per_round": n}
        for name, (app, scope) in cases.items():
            rounds = [await _time(app, scope, n) for _ in range(5)]
            out[name] = round(statistics.median(rounds), 1)
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args.requests)), indent=2))


if __name__ == "__main__":
    main()
