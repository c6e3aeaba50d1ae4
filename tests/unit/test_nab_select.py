"""``bench nab-select``: parameters chosen on NAB's tuning half only, the choice scored once held out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from telewatch.bench.nab import nab_half, parameter_grid, run_nab_benchmark, select_on_tuning_half
from telewatch.cli.app import app
from telewatch.core.errors import ConfigError, ValidationError


def _names() -> list[str]:
    """Two file names of each half (by nab_half's fixed rule)."""
    names = [f"cat/f{i}.csv" for i in range(40)]
    tuning = [n for n in names if nab_half(n) == "tuning"][:2]
    heldout = [n for n in names if nab_half(n) == "heldout"][:2]
    return tuning + heldout


def _corpus(root: Path) -> list[str]:
    """A square wave between 0 and 10 with one point at 5 (never seen, inside the range) labelled
    in every file: novelty with 100 bins sees it, with 1 bin it cannot (5 shares a bin with 0)."""
    ts = pd.date_range("2024-01-01", periods=400, freq="5min")
    rng = np.random.default_rng(5)
    windows = {}
    names = _names()
    for k, name in enumerate(names):
        values = np.where((np.arange(400) // 10) % 2 == 0, 0.0, 10.0) + 0.05 * rng.standard_normal(400)
        at = 250 + 20 * k
        values[at] = 5.0
        path = root / "data" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"), "value": values}).to_csv(
            path, index=False
        )
        windows[name] = [[str(ts[at - 10]) + ".000000", str(ts[at + 10]) + ".000000"]]
    (root / "labels").mkdir()
    (root / "labels" / "combined_windows.json").write_text(json.dumps(windows))
    return names


def test_a_clearly_better_candidate_is_chosen_and_scored_held_out_as_bench_nab_scores_it(
    tmp_path: Path,
) -> None:
    _corpus(tmp_path)
    sel = select_on_tuning_half(data_dir=tmp_path, base_params={"bins": 1}, grid={"bins": [100]})
    assert sel.incumbent.params["bins"] == 1
    assert [c.params for c in sel.candidates] == [{"bins": 100}]
    assert sel.candidates[0].tuning > sel.incumbent.tuning + 10  # the point at 5 caught in both files
    assert sel.chosen is sel.candidates[0]
    assert sel.best is sel.chosen
    # the held-out figure is what `bench nab` prints for the chosen parameters
    direct = run_nab_benchmark(data_dir=tmp_path, detector="novelty", detector_params={"bins": 100})
    assert sel.heldout.normalized == pytest.approx(direct.halves["heldout"].normalized)
    assert sel.whole["standard"] == pytest.approx(direct.profiles["standard"].normalized)
    assert sel.heldout.files == 2
    assert 'chose {"bins": 100}' in sel.lines()[-1]
    assert "heldout standard=" in sel.lines()[-1]


def test_the_current_parameters_stay_unless_beaten_by_more_than_the_tolerance(tmp_path: Path) -> None:
    _corpus(tmp_path)
    worse = select_on_tuning_half(data_dir=tmp_path, grid={"bins": [1]})
    assert worse.chosen is worse.incumbent
    assert worse.best is worse.incumbent
    assert worse.incumbent.params == {"bins": 100, "cooldown": 1000, "local_window": 60, "tie_breaker": True}
    assert "no candidate scores higher" in worse.lines()[-1]
    better = select_on_tuning_half(data_dir=tmp_path, base_params={"bins": 1}, grid={"bins": [100]})
    gap = better.candidates[0].tuning - better.incumbent.tuning
    kept = select_on_tuning_half(
        data_dir=tmp_path, base_params={"bins": 1}, grid={"bins": [100]}, tolerance=gap + 1.0
    )
    assert kept.chosen is kept.incumbent
    assert kept.best is not kept.incumbent
    assert "is not more than" in kept.lines()[-1]


def test_bad_grids_and_parameters_fail_before_any_scoring(tmp_path: Path) -> None:
    _corpus(tmp_path)
    with pytest.raises(ValidationError, match="non-empty list"):
        parameter_grid({"bins": []})
    with pytest.raises(ValidationError, match="non-empty list"):
        parameter_grid({"bins": 100})  # type: ignore[dict-item]
    with pytest.raises(ValidationError, match="grid of parameters"):
        select_on_tuning_half(data_dir=tmp_path, detector="robust_z")
    with pytest.raises(ConfigError):
        select_on_tuning_half(data_dir=tmp_path, grid={"no_such_parameter": [1]})
    with pytest.raises(ValidationError, match="tolerance"):
        select_on_tuning_half(data_dir=tmp_path, tolerance=-1)


def test_cli_prints_each_candidate_then_the_choice(tmp_path: Path) -> None:
    _corpus(tmp_path)
    res = CliRunner().invoke(
        app, ["bench", "nab-select", "--data", str(tmp_path), "--grid", '{"bins": [1, 100]}']
    )
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith(("current", "candidate", "NAB select"))]
    assert [ln.split(":")[0] for ln in lines[:3]] == [
        'current {"bins"',
        'candidate {"bins"',
        'candidate {"bins"',
    ]
    assert lines[-1].startswith('NAB select novelty (probationary): chose {"bins": 100, "cooldown": 1000')
    bad = CliRunner().invoke(app, ["bench", "nab-select", "--data", str(tmp_path), "--grid", "[1]"])
    assert bad.exit_code != 0
    assert "JSON object" in bad.output


def test_the_cli_grid_is_a_json_object_or_a_clear_error() -> None:
    import typer

    from telewatch.cli.bench import parse_grid

    assert parse_grid(None) is None
    assert parse_grid("") is None
    assert parse_grid('{"bins": [50, 100]}') == {"bins": [50, 100]}
    with pytest.raises(typer.BadParameter, match="--grid must be JSON"):
        parse_grid("{bins: [50]")
    with pytest.raises(typer.BadParameter, match="--grid must be a JSON object of lists"):
        parse_grid("[50, 100]")
