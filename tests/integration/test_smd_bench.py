"""The SMD benchmark on the shared developer machines (machine-1-*)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from telewatch.bench.metrics import composite_f1, label_events, point_adjusted_f1, pool
from telewatch.bench.smd import (
    SmdResult,
    leave_one_machine_out,
    list_machines,
    load_machine,
    run_smd_benchmark,
    select_by_lomo,
)
from telewatch.core.errors import NotFoundError

SMD_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "smd"

pytestmark = [
    pytest.mark.shared,
    pytest.mark.skipif(not SMD_DIR.is_dir(), reason=f"SMD data not present at {SMD_DIR}"),
]


def test_load_machine_1_2_aligns_labels_and_interpretation() -> None:
    m = load_machine(SMD_DIR, "machine-1-2")
    assert m.train.shape == (23694, 38)
    assert m.test.shape == (23694, 38)
    assert m.train.dtype == np.float64
    assert m.test.dtype == np.float64
    assert m.labels.shape == (m.test.shape[0],)
    assert set(np.unique(m.labels)) == {0, 1}
    assert m.interpretation
    assert all(0 <= s < e <= m.test.shape[0] for s, e, _ in m.interpretation)
    assert all(dims and max(dims) < 38 and min(dims) >= 0 for _, _, dims in m.interpretation)
    # read as 0-based rows, end exclusive, the segments cover exactly the labelled rows
    covered = np.zeros_like(m.labels)
    for start, end, _ in m.interpretation:
        covered[start:end] = 1
    np.testing.assert_array_equal(covered, m.labels)
    assert m.interpretation[0] == (4629, 4688, frozenset(d - 1 for d in (9, 10, 11, 13, 15, 18)))


def test_machine_without_values_is_not_loadable() -> None:
    with pytest.raises(NotFoundError, match="machine-1-1"):
        load_machine(SMD_DIR, "machine-1-1")
    with pytest.raises(NotFoundError):
        load_machine(SMD_DIR, "machine-9-99")


def test_alarming_on_every_row_scores_about_0_1_on_real_labels() -> None:
    names = list_machines(SMD_DIR)
    labels = [np.loadtxt(SMD_DIR / "test_label" / f"{n}.txt", dtype=np.int8) for n in names]
    share = sum(int(y.sum()) for y in labels) / sum(y.size for y in labels)
    everything = pool(composite_f1(np.ones_like(y), y) for y in labels)
    assert everything.recall == 1.0
    assert everything.f1 == pytest.approx(2 * share / (1 + share))
    assert 0.08 < everything.f1 < 0.13  # about 0.1, not 1
    # random alarms on 1% of rows: point adjustment turns them into a flattering score
    rng = np.random.default_rng(0)
    random_alarms = [rng.random(y.size) < 0.01 for y in labels]
    pa = pool(point_adjusted_f1(a, y) for a, y in zip(random_alarms, labels, strict=True))
    comp = pool(composite_f1(a, y) for a, y in zip(random_alarms, labels, strict=True))
    assert pa.f1 > 0.6
    assert comp.f1 < 0.15
    assert sum(len(label_events(y)) for y in labels) == comp.events_total


@pytest.fixture(scope="module")
def bench_1_2(tmp_path_factory: pytest.TempPathFactory) -> tuple[SmdResult, Path, str]:
    out = tmp_path_factory.mktemp("smd")
    console = Console(file=io.StringIO(), record=True, width=200)
    result = run_smd_benchmark(
        data_dir=SMD_DIR,
        machines=["machine-1-1", "machine-1-2"],
        json_path=out / "smd.json",
        plots_dir=out / "plots",
        console=console,
    )
    return result, out, console.export_text()


def test_benchmark_on_machine_1_2(bench_1_2: tuple[SmdResult, Path, str]) -> None:
    result, out, console_text = bench_1_2
    line = result.summary_line()
    pattern = (
        r"SMD machines=1 f1_comp=(\d\.\d{3}) f1_pa=\d\.\d{3} f1_point=\d\.\d{3} "
        r"hitrate100=\d\.\d{3} hitrate150=\d\.\d{3}"
    )
    match = re.fullmatch(pattern, line)
    assert match, line
    assert 0.0 < result.pooled_composite.f1 <= 1.0
    assert 0.0 < float(match[1]) <= 1.0
    (machine,) = result.machines
    assert machine.name == "machine-1-2"
    assert machine.n_events == len(label_events(load_machine(SMD_DIR, "machine-1-2").labels))
    assert 0.0 <= result.hit_rate_100 <= result.hit_rate_150 <= 1.0
    # upper bound searched with the labels is at least the honest result's neighbourhood
    assert result.pooled_composite_f1_upper_bound >= 0.0
    assert "POT on each machine's train overall scores" in result.threshold_note
    # machine-1-1 has no values: skipped and named
    assert "machine-1-1" in result.skipped
    assert "machine-1-1" in console_text
    data = json.loads((out / "smd.json").read_text())
    assert data["skipped"] == result.skipped
    assert data["machines"][0]["composite"]["kind"] == "composite"
    assert (out / "plots" / "machine-1-2.png").stat().st_size > 0
    table = Console(file=io.StringIO(), record=True, width=200)
    table.print(result.table())
    text = table.export_text()
    assert "machine-1-1" in text
    assert "pooled" in text
    assert "upper bound" in text
    # every labelled segment is counted once, in the bucket of how many metrics it names, raised or not
    m12 = load_machine(SMD_DIR, "machine-1-2")
    by_size = result.segments_by_size
    assert list(by_size) == ["1", "2-3", "4-7", "8+"]
    assert sum(v[1] for v in by_size.values()) == len(m12.interpretation)
    eight_plus = sum(1 for _, _, dims in m12.interpretation if len(dims) >= 8)
    assert by_size["8+"][1] == eight_plus
    assert all(0 <= raised <= total for raised, total in by_size.values())
    raised = sum(v[0] for v in by_size.values())
    assert raised > 0  # the default raises some of machine-1-2's failures
    assert result.segments_line().startswith("SMD segments raised, by metrics labelled: 1: ")
    assert data["segments_by_size"] == {k: list(v) for k, v in by_size.items()}


def test_leave_one_machine_out_chooses_on_the_other_machines_only() -> None:
    """Three synthetic machines: on two, only a low quantile catches the (weak) events; on the third a
    low quantile floods it with false alarms. Its held-out parameter is the others' choice, and the
    pooled held-out F1 is below the in-sample one."""
    rng = np.random.default_rng(0)
    runs = []
    for name, weak in (("a", True), ("b", True), ("c", False)):
        train = rng.uniform(0.0, 1.0, 20_000)  # q 0.99 ≈ 0.99, q 0.9999 ≈ 0.9999
        test = rng.uniform(0.0, 0.98, 5_000)
        labels = np.zeros(5_000, dtype=np.int8)
        for start in range(500, 5_000, 1_000):
            labels[start : start + 20] = 1
            test[start : start + 20] = 0.995 if weak else 5.0
        if not weak:
            test[1::50] = 0.995  # normal rows only the low quantile flags
        runs.append((name, train, test, labels))
    lomo = leave_one_machine_out(runs, "quantile", candidates=[0.99, 0.9999])
    assert lomo.chosen == {"a": 0.99, "b": 0.99, "c": 0.99}
    assert lomo.per_machine["c"].precision < 0.6  # the others chose for it: half its alarms are false
    assert lomo.pooled.f1 <= lomo.in_sample.f1 + 1e-12
    assert "SMD leave-one-machine-out machines=3 f1_comp=" in lomo.line()


def test_selection_picks_detector_and_parameter_on_the_other_machines() -> None:
    """Two configurations on three machines: "good" separates events everywhere, "lucky" only on
    machine a. Machine a's held-out pick is still "good" (the others chose it), and the selection's
    pooled held-out F1 is what "good" gets."""
    rng = np.random.default_rng(1)

    def machine(name: str, separates: bool) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
        train = rng.uniform(0.0, 1.0, 5_000)
        test = rng.uniform(0.0, 0.98, 2_000)
        labels = np.zeros(2_000, dtype=np.int8)
        labels[500:520] = labels[1500:1520] = 1
        if separates:
            test[labels == 1] = 10.0
        return name, train, test, labels

    runs = {
        "good": [machine(n, True) for n in "abc"],
        "lucky": [machine("a", True), machine("b", False), machine("c", False)],
    }
    sel = select_by_lomo(runs, "pot")
    assert {d for d, _ in sel.chosen.values()} == {"good"}
    assert sel.chosen_all[0] == "good"
    assert sel.candidates["good"] > sel.candidates["lucky"]
    assert sel.line().startswith("SMD selection leave-one-machine-out machines=3 f1_comp=")


def test_bench_smd_prints_leave_one_machine_out_before_the_smd_line() -> None:
    from typer.testing import CliRunner

    from telewatch.cli.app import app

    args = ["bench", "smd", "--data", str(SMD_DIR), "--no-rca", "--machine", "machine-1-2"]
    result = CliRunner().invoke(app, [*args, "--machine", "machine-1-3"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert lines[-1].startswith("SMD machines=2 f1_comp=")
    lomo = [line for line in lines if line.startswith("SMD leave-one-machine-out machines=2 f1_comp=")]
    assert len(lomo) == 2  # one per threshold rule (quantile, pot)
    assert any(line.startswith("SMD segments raised, by metrics labelled:") for line in lines)


def _smd_select_on_two_machines() -> list[str]:
    return [
        "bench",
        "smd-select",
        "--data",
        str(SMD_DIR),
        "--machine",
        "machine-1-2",
        "--machine",
        "machine-1-3",
    ]


def test_bench_smd_select_prints_each_candidate_then_the_selection() -> None:
    from typer.testing import CliRunner

    from telewatch.cli.app import app

    args = _smd_select_on_two_machines()
    result = CliRunner().invoke(app, [*args, "--detector", "mv_robust_z", "--detector", "mv_pca"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert lines[-1].startswith("SMD selection leave-one-machine-out machines=2 f1_comp=")
    assert any(line.startswith("mv_pca: leave-one-machine-out f1_comp=") for line in lines)


def test_bench_smd_select_grid_makes_each_setting_a_candidate() -> None:
    """--grid: each parameter setting is its own candidate, and a bad grid is refused up front."""
    from typer.testing import CliRunner

    from telewatch.cli.app import app

    args = _smd_select_on_two_machines()
    result = CliRunner().invoke(
        app, [*args, "--detector", "mv_robust_z", "--grid", '{"aggregate": ["max", "mean"]}']
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    own = [
        line.split(":")[0]
        for line in lines
        if "leave-one-machine-out f1_comp=" in line and "selection" not in line
    ]
    assert own == ['mv_robust_z{"aggregate"', 'mv_robust_z{"aggregate"']
    assert any(line.startswith('mv_robust_z{"aggregate":"mean"}: leave-one-machine-out') for line in lines)
    assert lines[-1].startswith("SMD selection leave-one-machine-out machines=2 f1_comp=")
    assert 'mv_robust_z{"aggregate":"m' in lines[-1]  # the picks name the setting
    bad = CliRunner().invoke(app, [*args, "--detector", "mv_robust_z", "--grid", '{"aggregate": "max"}'])
    assert bad.exit_code == 2
    assert "non-empty list" in bad.output
