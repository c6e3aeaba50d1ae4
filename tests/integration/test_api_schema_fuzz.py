"""schemathesis against the OpenAPI schema: every operation of ``create_app`` over a temp store with small
demo data, as the admin. No 5xx, and status codes, content types and bodies as the schema says."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from support.auth import ADMIN_HEADERS, auth_settings
from telewatch.api.app import create_app
from telewatch.services.demo_data import load_demo
from telewatch.store.db import Store

END = pd.Timestamp("2026-03-01 00:00", tz="UTC")
EXAMPLES = 10  # per operation: the whole run stays well under two minutes
SLOW = {"POST /api/detect/run": 3, "POST /api/incidents/update": 4}  # each case runs detection
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def api_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with Store(tmp_path_factory.mktemp("schema") / "schema.duckdb") as store:
        load_demo(store, days=2, end=END, with_nab=False)
        yield store


@pytest.fixture(scope="module")
def api_schema(api_store: Store, tmp_path_factory: pytest.TempPathFactory) -> object:
    data_dir = tmp_path_factory.mktemp("schema-data")
    app = create_app(auth_settings(data_dir=data_dir, db_path=data_dir / "unused.duckdb"), store=api_store)
    return schemathesis.openapi.from_asgi("/openapi.json", app, headers=ADMIN_HEADERS)


def _fuzz_operation(operation: object, examples: int) -> list[str]:
    """Run ``examples`` generated cases of one operation; return what failed (one line each)."""
    failures: list[str] = []

    @given(case=operation.as_strategy())  # type: ignore[attr-defined]
    @settings(max_examples=examples, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        try:
            case.call_and_validate(headers=ADMIN_HEADERS, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as exc:  # a failed check, or the app's exception (a 500)
            first = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
            failures.append(
                f"{case.method} {case.formatted_path}: {type(exc).__name__}: {' | '.join(first[:4])[:400]}"
            )

    run()
    return failures


def test_every_operation_answers_within_its_schema(api_schema: object) -> None:
    failures: list[str] = []
    tried = 0
    for result in api_schema.get_all_operations():  # type: ignore[attr-defined]
        operation = result.ok()
        started = time.perf_counter()
        label = f"{operation.method.upper()} {operation.path}"
        failures += _fuzz_operation(operation, SLOW.get(label, EXAMPLES))
        print(f"{label}: {time.perf_counter() - started:.1f} s")
        tried += 1
    assert tried >= 20
    assert not failures, f"{len(failures)} failing cases:\n" + "\n".join(dict.fromkeys(failures))


def test_the_schema_lists_the_operations_it_is_fuzzed_over(api_schema: object, tmp_path: Path) -> None:
    operations = {
        f"{op.method.upper()} {op.path}"
        for result in api_schema.get_all_operations()  # type: ignore[attr-defined]
        for op in [result.ok()]
    }
    assert {
        "GET /api/metrics",
        "POST /api/ingest",
        "POST /api/ingest/preview",
        "GET /api/health",
    } <= operations
    assert len(operations) >= 20


# Regressions the fuzzer found (each answered 500 before its fix).
@pytest.fixture(scope="module")
def client(api_store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data_dir = tmp_path_factory.mktemp("schema-client")
    app = create_app(auth_settings(data_dir=data_dir, db_path=data_dir / "unused.duckdb"), store=api_store)
    with TestClient(app, headers=ADMIN_HEADERS) as c:
        yield c


def test_a_note_on_an_incident_id_past_the_stores_integers_is_a_422(client: TestClient) -> None:
    response = client.post("/api/incident-notes", json={"incident_id": 2**31, "text": "x"})
    assert response.status_code == 422
    assert "incident_id" in response.json()["detail"]


def test_a_silence_of_1e300_minutes_is_a_422(client: TestClient) -> None:
    body = {"matchers": [{"name": "metric", "value": "x"}], "duration_minutes": 1e300}
    response = client.post("/api/silences", json=body)
    assert response.status_code == 422
    assert "duration_minutes" in response.json()["detail"]


@pytest.mark.parametrize(
    ("field", "body"),
    [
        ("ends_at", {"ends_at": "6835-09-20T10:38:07Z"}),
        ("starts_at", {"starts_at": "6835-09-20T10:38:07Z", "duration_minutes": 5}),
    ],
)
def test_a_silence_in_year_6835_is_a_400(client: TestClient, field: str, body: dict[str, object]) -> None:
    response = client.post("/api/silences", json={"matchers": [{"name": "metric", "value": "x"}], **body})
    assert response.status_code == 400
    assert field in response.json()["detail"]


@pytest.mark.parametrize(
    "params",
    [
        {"from": "0001-01-01T00:00:00", "to": "0002-01-01T00:00:00"},
        {"from": "1970-01-01T00:00:00", "to": "1973-01-01T00:00:00", "baseline_factor": 100, "step": "1D"},
    ],
)
def test_explain_windows_outside_the_time_range_are_a_400(
    client: TestClient, params: dict[str, object]
) -> None:
    response = client.get("/api/explain", params=params)
    assert response.status_code == 400
    assert "range" in response.json()["detail"]


@pytest.mark.parametrize(
    "path", ["/api/incidents", "/api/alerts/notifications", "/api/anomalies", "/api/feedback"]
)
def test_an_offset_past_64_bits_is_a_422(client: TestClient, path: str) -> None:
    response = client.get(path, params={"offset": 10**25})
    assert response.status_code == 422
    assert "offset" in response.json()["detail"]
