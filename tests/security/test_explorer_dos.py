"""Finding 2: one upload broke the explorer for everyone, and nothing could remove it. A column named
``<!--<script>`` made the explorer's embedded JSON block swallow the rest of the page (no script of ours
loaded, no chart on any ``/explore`` page). Now the block escapes ``<``, ``>``, ``&``, U+2028/9, and an
admin can delete the metric with its points, scores and anomalies (API and CLI)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from support.auth import ADMIN_HEADERS, READ_HEADERS
from telewatch.cli.app import app as cli
from telewatch.store.db import Store

from .conftest import XSS_PAYLOADS, Served, csv_upload

pytestmark = pytest.mark.timeout(300)
BAD = "<!--<script>"
_BLOCK = re.compile(r'<script id="metrics-data" type="application/json">(.*?)</script>', re.S)


def _upload(client: TestClient, columns: list[str], **form: str) -> dict[str, int]:
    r = client.post(
        "/api/ingest",
        files={"file": ("hostile.csv", csv_upload(columns), "text/csv")},
        data=form,
        headers=ADMIN_HEADERS,
    )
    assert r.status_code == 200, r.text
    return {m["name"]: m["id"] for m in client.get("/api/metrics", headers=READ_HEADERS).json()}


@pytest.mark.parametrize("name", XSS_PAYLOADS)
def test_the_embedded_metric_list_is_inert_json(client: TestClient, name: str) -> None:
    ids = _upload(client, [name, "ok"], unit="</script><!--", group="<!--")
    page = client.get(f"/explore/{ids['ok']}", headers=READ_HEADERS)
    assert page.status_code == 200
    blocks = _BLOCK.findall(page.text)
    assert len(blocks) == 1, "the JSON block must end where it should"
    assert not set(blocks[0]) & {"<", ">", "&", "\u2028", "\u2029"}, blocks[0][:200]
    assert {m["name"] for m in json.loads(blocks[0])} == set(ids)  # the same names, read back whole
    assert name.strip() in ids
    assert page.text.rstrip().endswith("</html>")


def test_the_explorer_still_draws_after_a_hostile_column(
    client: TestClient, served: Served, context: Any
) -> None:
    ids = _upload(client, [BAD, "ok"])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    for metric_id in (ids["ok"], ids[BAD]):
        page.goto(f"{served.url}/explore/{metric_id}")
        page.wait_for_selector("#main-chart .main-svg", timeout=15_000)  # explore.js ran and drew
        assert page.locator("#metric-select option").count() == 2
    assert page.evaluate("() => document.querySelectorAll('script[src]').length") >= 3
    assert not errors, errors


def test_an_admin_deletes_the_metric_with_its_points_scores_anomalies(
    client: TestClient, store: Store
) -> None:
    ids = _upload(client, [BAD, "ok"])
    run = client.post("/api/detect/run", json={"detector": {"name": "robust_z"}}, headers=ADMIN_HEADERS)
    assert run.status_code == 200, run.text
    assert run.json()["anomalies"] >= 2
    assert client.post("/api/incidents/update", headers=ADMIN_HEADERS).status_code == 200
    cur = store.cursor()

    def count(table: str, mid: int) -> int:
        return int(cur.execute(f"SELECT count(*) FROM {table} WHERE metric_id = ?", [mid]).fetchone()[0])

    assert count("points", ids[BAD]) == 600
    assert count("scores", ids[BAD]) > 0
    assert count("anomalies", ids[BAD]) > 0
    incidents_before = client.get("/api/incidents", headers=READ_HEADERS).json()
    assert incidents_before

    assert client.delete(f"/api/metrics/{ids[BAD]}", headers=READ_HEADERS).status_code == 403  # admin only
    gone = client.delete(f"/api/metrics/{ids[BAD]}", headers=ADMIN_HEADERS)
    assert gone.status_code == 200, gone.text
    deleted = gone.json()["deleted"]
    assert gone.json()["metric"]["name"] == BAD
    assert deleted["points"] == 600
    assert deleted["scores"] > 0
    assert deleted["anomalies"] > 0
    for table in ("points", "scores", "anomalies", "incident_metrics", "label_windows"):
        assert count(table, ids[BAD]) == 0, table
    assert cur.execute("SELECT count(*) FROM metrics WHERE id = ?", [ids[BAD]]).fetchone()[0] == 0
    assert count("points", ids["ok"]) == 600  # the other one stays
    assert count("anomalies", ids["ok"]) > 0
    assert [m["name"] for m in client.get("/api/metrics", headers=READ_HEADERS).json()] == ["ok"]
    assert client.get(f"/explore/{ids['ok']}", headers=READ_HEADERS).status_code == 200
    for incident in client.get("/api/incidents", headers=READ_HEADERS).json():  # none points at it
        detail = client.get(f"/api/incidents/{incident['id']}", headers=READ_HEADERS)
        assert detail.status_code == 200, detail.text
        # no member is the deleted metric (titles and reasons written then keep its name, as plain text)
        assert ids[BAD] not in {m["metric_id"] for m in detail.json()["ranked_metrics"]}
    again = client.delete(f"/api/metrics/{ids[BAD]}", headers=ADMIN_HEADERS)
    assert again.status_code == 404


def test_the_cli_deletes_a_metric(tmp_path: Path) -> None:
    db = tmp_path / "cli.duckdb"
    data = tmp_path / "bad.csv"
    data.write_bytes(csv_upload([BAD, "ok"], rows=30))
    runner = CliRunner(env={"COLUMNS": "200"})
    assert runner.invoke(cli, ["ingest", str(data), "--db", str(db)]).exit_code == 0
    listed = json.loads(runner.invoke(cli, ["metrics", "--json", "--db", str(db)]).output)
    bad = next(m["id"] for m in listed if m["name"] == BAD)
    refused = runner.invoke(cli, ["metrics", "delete", str(bad), "--db", str(db)], input="n\n")
    assert refused.exit_code == 1
    done = runner.invoke(cli, ["metrics", "delete", str(bad), "--yes", "--db", str(db)])
    assert done.exit_code == 0, done.output
    assert f"deleted metric {bad} {BAD}: " in done.output
    assert "30 points" in done.output  # and the scores and anomalies the upload's scoring stored
    assert [
        m["name"] for m in json.loads(runner.invoke(cli, ["metrics", "--json", "--db", str(db)]).output)
    ] == ["ok"]
    missing = runner.invoke(cli, ["metrics", "delete", str(bad), "--yes", "--db", str(db)])
    assert missing.exit_code != 0
    assert "no metric named" in missing.output
