"""The CLI end to end over a real store file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from telewatch.cli import app
from telewatch.core.defaults import DEFAULT_DETECTOR
from telewatch.store import repo
from telewatch.store.db import Store

runner = CliRunner()


def _run(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_entry_point_help_for_every_command() -> None:
    exe = Path(sys.executable).parent / "telewatch"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for command in ("ingest", "metrics", "demo", "serve", "detect", "bench", "labels"):
        assert command in out.stdout
        sub = runner.invoke(app, [command, "--help"])
        assert sub.exit_code == 0, sub.output


def test_ingest_prints_what_it_stored_and_is_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    f = tmp_path / "m.tsv"
    rows = [
        f"2024-05-01 00:{m:02d}:00\t{m}\t{'' if m % 3 == 0 else m * 2}" for m in range(20) if m not in (7, 8)
    ]
    f.write_text("\n".join(rows) + "\n")
    out = _run("ingest", str(f), "--columns", "point,a,b", "--db", str(db), "--owner", "@ops")
    assert "stored 2 metrics" in out
    assert "over 18 timestamps" in out
    assert "gaps: 2 (largest 3 min)" in out  # 00:06 → 00:09 in each of the two metrics
    _run("ingest", str(f), "--columns", "point,a,b", "--db", str(db))
    with Store(db) as s:
        metrics = {m.name: m for m in repo.list_metrics(s.cursor())}
    assert metrics["a"].points == 18
    assert (metrics["b"].points, metrics["b"].missing) == (11, 7)  # m % 3 == 0: 0,3,6,9,12,15,18
    assert metrics["a"].owner == "@ops"
    listing = json.loads(_run("metrics", "--json", "--db", str(db)))
    assert {m["name"] for m in listing} == {"a", "b"}


def test_malformed_file_exits_2_naming_line_and_column(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    f = tmp_path / "bad.csv"
    f.write_text("timestamp,cpu\n2024-05-01 00:00,1\n2024-05-01 00:01,oops\n")
    result = runner.invoke(app, ["ingest", str(f), "--db", str(db)])
    assert result.exit_code == 2
    assert "line 3" in result.output
    assert "cpu" in result.output
    with Store(db) as s:
        assert repo.list_metrics(s.cursor()) == []


def test_demo_detect_and_bench_labels(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    out = _run("demo", "--days", "14", "--db", str(db), "--csv", str(tmp_path / "demo.csv"))
    assert "planted incidents" in out
    assert "anomalies on" in out
    assert "grouped from the anomalies" in out
    assert (tmp_path / "demo.csv").stat().st_size > 100_000
    with Store(db) as s:
        cur = s.cursor()
        assert len(repo.list_metrics(cur, group="web")) == 4
        assert cur.execute("SELECT count(*) FROM anomalies").fetchone()[0] > 0  # type: ignore[index]
        assert cur.execute("SELECT count(*) FROM incidents").fetchone()[0] > 0  # type: ignore[index]
        assert cur.execute("SELECT count(*) FROM label_windows WHERE source = 'demo'").fetchone()[0] > 0  # type: ignore[index]
    out = _run("bench", "labels", "--db", str(db), "--source", "demo", "--json", str(tmp_path / "r.json"))
    line = out.strip().splitlines()[-1]
    assert line.startswith("LABELS metrics=")
    assert json.loads((tmp_path / "r.json").read_text())["detector"] == DEFAULT_DETECTOR
    plots = tmp_path / "plots"
    _run("detect", "--db", str(db), "--metric", "apdex", "--plot-dir", str(plots))
    assert len(list(plots.glob("*.png"))) == 1


def test_labels_import_checks_every_row_first(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    data = tmp_path / "m.csv"
    data.write_text("timestamp,cpu\n2024-05-01 00:00,1\n2024-05-01 00:01,2\n")
    _run("ingest", str(data), "--db", str(db))
    good = tmp_path / "labels.csv"
    good.write_text("metric,start,end,kind\ncpu,2024-05-01 00:00,2024-05-01 00:01,spike\n")
    assert "stored 1 labelled" in _run("labels", "import", str(good), "--db", str(db))
    bad = tmp_path / "bad.csv"
    bad.write_text("metric,start,end\ncpu,2024-05-01 00:00,2024-05-01 00:01\nnope,2024-05-01,2024-05-02\n")
    result = runner.invoke(app, ["labels", "import", str(bad), "--db", str(db)])
    assert result.exit_code == 2
    assert "line 3" in result.output
    assert "nope" in result.output
    assert "1 labelled windows" in _run("labels", "list", "--db", str(db))


@pytest.mark.shared
def test_redlab_ingests_to_four_metrics(tmp_path: Path, shared_datasets: Path) -> None:
    db = tmp_path / "s.duckdb"
    out = _run(
        "ingest",
        str(shared_datasets / "redlab" / "key_features.tsv"),
        "--columns",
        "point,web_response,throughput,apdex,error",
        "--db",
        str(db),
    )
    assert "stored 4 metrics" in out
    assert "43,272 timestamps" in out
    with Store(db) as s:
        metrics = {m.name: m for m in repo.list_metrics(s.cursor())}
    assert set(metrics) == {"web_response", "throughput", "apdex", "error"}
    assert metrics["error"].missing == 14_530
    assert metrics["error"].points == 43_272 - 14_530
    assert all(metrics[n].points == 43_272 for n in ("web_response", "throughput", "apdex"))


@pytest.mark.shared
def test_bench_smd_prints_rca_then_the_smd_line_last(shared_datasets: Path) -> None:
    out = _run("bench", "smd", "--data", str(shared_datasets / "smd"), "--machine", "machine-1-2")
    lines = [line for line in out.strip().splitlines() if line.strip()]
    assert lines[-1].startswith("SMD machines=1 f1_comp=")
    rca = [line for line in lines if line.startswith("SMD-RCA machines=1 hitrate100=")]
    assert len(rca) == 1
    hit150 = float(rca[0].split("hitrate150=")[1].split()[0])
    assert 0.5 < hit150 <= 1.0
