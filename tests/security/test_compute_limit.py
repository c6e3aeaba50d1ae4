"""Finding 7: no bound on concurrent heavy ad-hoc computations by a read token (500k points × 10 detectors:
30 s and +550 MB each; four at once peaked at 1.86 GB). Now ``/api/detect``, ``/api/scan`` and
``/api/ingest/preview`` run at most N at once per token and M in all; past that, 429 with Retry-After."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from support.auth import ADMIN_HEADERS, READ_HEADERS, auth_settings
from telewatch.api.app import create_app
from telewatch.store import repo
from telewatch.store.db import Store

from .conftest import Served, serve_app

pytestmark = pytest.mark.timeout(300)
POINTS = 200_000
HEAVY = {"metric": "big", "detectors": [{"name": "robust_bands"}, {"name": "seasonal"}, {"name": "robust_z"}]}


@pytest.fixture
def limited(store: Store, tmp_path: Path) -> Iterator[Served]:
    idx = pd.date_range("2026-01-01", periods=POINTS, freq="1min", tz="UTC")
    rng = np.random.default_rng(1)
    mid = repo.upsert_metric(store.cursor(), name="big")
    repo.write_points(store.cursor(), mid, pd.Series(rng.normal(size=POINTS), index=idx))
    settings = auth_settings(
        db_path=tmp_path / "unused.duckdb", max_concurrent_compute=2, max_concurrent_compute_per_token=1
    )
    yield from serve_app(create_app(settings, store=store), store)


def _fire(url: str, requests: list[tuple[str, dict[str, str], dict[str, object]]]) -> list[httpx.Response]:
    """Send the requests at the same moment, each from its own thread."""
    answers: list[httpx.Response | None] = [None] * len(requests)
    start = threading.Barrier(len(requests))

    def one(i: int) -> None:
        path, headers, body = requests[i]
        start.wait()
        answers[i] = httpx.post(url + path, json=body, headers=headers, timeout=240)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(a is not None for a in answers)
    return [a for a in answers if a is not None]


def test_concurrent_detections_of_one_token_get_429(limited: Served) -> None:
    answers = _fire(limited.url, [("/api/detect", READ_HEADERS, HEAVY)] * 3)
    codes = sorted(a.status_code for a in answers)
    assert codes[0] == 200, [a.text[:200] for a in answers]
    assert 429 in codes, codes
    refused = next(a for a in answers if a.status_code == 429)
    assert int(refused.headers["retry-after"]) > 0
    assert refused.json()["error"] == "TooManyRequests"
    # once they are done, the token may run again
    again = httpx.post(limited.url + "/api/detect", json=HEAVY, headers=READ_HEADERS, timeout=240)
    assert again.status_code == 200, again.text


def test_the_overall_bound_holds_across_tokens(limited: Served) -> None:
    scan = {"from": "2026-03-01T00:00:00", "to": "2026-03-01T06:00:00"}
    answers = _fire(
        limited.url,
        [
            ("/api/detect", READ_HEADERS, HEAVY),
            ("/api/detect", ADMIN_HEADERS, HEAVY),
            (
                "/api/scan",
                {"Authorization": "Bearer nobody-knows-this-token"},
                scan,
            ),  # 401 first: not counted
        ]
        + [("/api/detect", h, HEAVY) for h in (READ_HEADERS, ADMIN_HEADERS)],
    )
    codes = [a.status_code for a in answers]
    assert codes[2] == 401
    assert codes.count(200) <= 2, codes  # two tokens, one each, two in all
    assert codes.count(429) >= 2, codes
    assert all(a.headers.get("retry-after") for a in answers if a.status_code == 429)


def test_the_openapi_schema_documents_the_429(client: Any) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/detect", "/api/scan", "/api/ingest/preview"):
        assert "429" in paths[path]["post"]["responses"], path
