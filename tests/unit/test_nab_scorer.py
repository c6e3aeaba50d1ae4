"""The NAB v1.1 scorer on tiny hand-worked files.

Notation: ``S(x) = 2 / (1 + exp(5x)) - 1 = -tanh(2.5 x)``; ``maxTP = S(-1) = tanh(2.5) = 0.98661``.
Standard profile: tp 1, fp 0.11, fn 1. Most files below have 40 rows, so the probationary period is
``floor(0.15 * 40) = 6`` rows (rows 0..5), and one window on rows 10..13 (width W = 4).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from telewatch.bench.nab import (
    NAB_PROFILES,
    NabFile,
    calibrate_scores,
    choose_calibration,
    load_corpus,
    make_nab_file,
    nab_half,
    probation_rows,
    run_nab_benchmark,
    scaled_sigmoid,
    score_corpus,
    score_file,
    sweep_thresholds,
)
from telewatch.core.errors import ValidationError

STANDARD = NAB_PROFILES["standard"]
LOW_FP = NAB_PROFILES["reward_low_FP_rate"]
LOW_FN = NAB_PROFILES["reward_low_FN_rate"]
MAX_TP = math.tanh(2.5)  # = S(-1) = 0.9866142981514303


def _file(
    n_rows: int = 40, window_rows: list[tuple[int, int]] | None = None, name: str = "cat/f.csv"
) -> NabFile:
    ts = pd.date_range("2024-01-01", periods=n_rows, freq="1min")
    rows = [(10, 13)] if window_rows is None else window_rows
    return make_nab_file(name, ts, np.arange(n_rows, dtype=float), [(ts[a], ts[b]) for a, b in rows])


def _fire(f: NabFile, *rows: int) -> np.ndarray:
    scores = np.zeros(f.n_rows)
    scores[list(rows)] = 1.0
    return scores


def _raw(f: NabFile, *rows: int, cost: dict[str, float] = STANDARD) -> tuple[float, int, int, int]:
    return score_file(f, _fire(f, *rows), 1.0, cost)


# -- the rules, one at a time ---------------------------------------------------------------------------
def test_scaled_sigmoid_and_probation_match_nab() -> None:
    # S(-1) = tanh(2.5) = 0.98661, S(-0.5) = tanh(1.25) = 0.84828, S(0) = 0, S(1) = -0.98661, S(>3) = -1
    got = scaled_sigmoid(np.array([-1.0, -0.5, 0.0, 1.0, 3.0, 3.01]))
    assert got == pytest.approx([MAX_TP, math.tanh(1.25), 0.0, -MAX_TP, -math.tanh(7.5), -1.0], abs=1e-12)
    # min(floor(0.15 n), 0.15 * 5000)
    assert [probation_rows(n) for n in (19, 20, 40, 4999, 5000, 5007, 22695)] == [2, 3, 6, 749, 750, 750, 750]


def test_detection_at_window_start_is_worth_exactly_tp() -> None:
    # row 10: position -(13 - 10 + 1) / 4 = -1 -> S(-1) * tp / maxTP = 1.0
    assert _raw(_file(), 10) == (1.0, 1, 0, 0)


def test_detection_at_window_end() -> None:
    # row 13: position -(13 - 13 + 1) / 4 = -0.25 -> S(-0.25) / maxTP = tanh(0.625) / tanh(2.5) = 0.5621241
    raw, tp, fp, fn = _raw(_file(), 13)
    assert raw == pytest.approx(math.tanh(0.625) / MAX_TP, abs=1e-12)
    assert raw == pytest.approx(0.5621241486, abs=1e-9)
    assert (tp, fp, fn) == (1, 0, 0)


def test_fp_just_after_window_costs_less_than_one_far_away() -> None:
    f = _file()
    # row 14: position |13 - 14| / (W - 1) = 1/3 -> 0.11 * S(1/3) = -0.11 * tanh(2.5/3) = -0.0750488;
    # the window has no detection: -fn = -1
    near = _raw(f, 14)
    assert near[0] == pytest.approx(-1.0 - 0.11 * math.tanh(2.5 / 3), abs=1e-12)
    assert near[0] == pytest.approx(-1.0750487970, abs=1e-9)
    assert near[1:] == (0, 1, 1)
    # row 30: position 17/3 = 5.67 > 3 -> S = -1 -> full fp cost -0.11
    far = _raw(f, 30)
    assert far[0] == pytest.approx(-1.0 - 0.11, abs=1e-15)
    assert near[0] > far[0]
    # row 20: position 7/3 = 2.33 (< 3): -0.11 * tanh(35/6) = -0.1099998...
    assert _raw(f, 20)[0] == pytest.approx(-1.0 - 0.11 * math.tanh(2.5 * 7 / 3), abs=1e-12)


def test_fp_with_no_preceding_window_costs_full_fp() -> None:
    # row 7 is after probation (6) but before the only window: -1 * 0.11; the window is missed: -1
    assert _raw(_file(), 7) == (pytest.approx(-1.11, abs=1e-15), 0, 1, 1)
    # a file without windows: three detections, each -0.11
    assert _raw(_file(window_rows=[]), 7, 20, 39)[0] == pytest.approx(-0.33, abs=1e-15)


def test_only_the_first_detection_in_a_window_counts() -> None:
    f = _file()
    # rows 10 and 12 detected: max(1.0, tanh(2.5 * 2/4) / maxTP) = 1.0, not 1.0 + 0.8598
    assert _raw(f, 10, 12) == (1.0, 1, 0, 0)
    # rows 11, 12, 13: only row 11 counts, position -3/4 -> tanh(1.875) / tanh(2.5) = 0.9626...
    assert _raw(f, 11, 12, 13)[0] == pytest.approx(math.tanh(1.875) / MAX_TP, abs=1e-12)


def test_probationary_detections_are_ignored() -> None:
    f = _file()
    # rows 0..5 are probationary: firing there changes nothing (window still missed: -1)
    assert _raw(f, 0, 3, 5) == (-1.0, 0, 0, 1)
    # row 6 is the first scored row: -0.11
    assert _raw(f, 6)[0] == pytest.approx(-1.11, abs=1e-15)


def test_window_inside_probation_is_not_scored() -> None:
    # a window on rows 1..4 (inside the 6 probationary rows) is neither TP nor FN (NAB drops it);
    # row 8 after it: position |4 - 8| / 3 = 1.33 -> 0.11 * S(4/3) = -0.11 * tanh(10/3)
    f = _file(window_rows=[(1, 4)])
    assert _raw(f) == (0.0, 0, 0, 0)
    assert _raw(f, 8)[0] == pytest.approx(-0.11 * math.tanh(10 / 3), abs=1e-12)


def test_missed_window_costs_fn() -> None:
    f = _file(window_rows=[(10, 13), (25, 30)])
    assert _raw(f) == (-2.0, 0, 0, 2)
    assert _raw(f, cost=LOW_FN) == (-4.0, 0, 0, 2)
    # hit the first at its start, miss the second: 1 - 1 = 0
    assert _raw(f, 10) == (0.0, 1, 0, 1)


# -- threshold sweep and normalisation --------------------------------------------------------------------
def _sweep_file() -> tuple[NabFile, np.ndarray]:
    f = _file()
    scores = np.zeros(f.n_rows)
    scores[10], scores[12], scores[30] = 0.6, 0.9, 0.8  # window start, mid-window, far FP
    return f, scores


def test_threshold_sweep_lists_every_threshold_and_picks_the_best() -> None:
    f, scores = _sweep_file()
    t12 = math.tanh(2.5 * 2 / 4) / MAX_TP  # row 12: position -2/4 -> 0.8597926
    thresholds, totals = sweep_thresholds([f], {f.name: scores}, STANDARD)
    assert thresholds.tolist() == [1.1, 0.9, 0.8, 0.6, 0.0]
    # 1.1: nothing -> -1;  0.9: row 12 -> 0.8598;  0.8: + far FP -> 0.7498;
    # 0.6: row 10 replaces row 12 -> 1.0 - 0.11 = 0.89;  0.0: all 34 scored rows, 4 in window, 30 outside
    assert totals[:4] == pytest.approx([-1.0, t12, t12 - 0.11, 0.89], abs=1e-12)
    fp_rows = [i for i in range(6, 40) if not 10 <= i <= 13]
    expected_all = 1.0 + sum(
        0.11 * float(scaled_sigmoid(np.inf if i < 10 else (i - 13) / 3)) for i in fp_rows
    )
    assert totals[4] == pytest.approx(expected_all, abs=1e-12)

    result = score_corpus([f], {f.name: scores})
    std = result.profiles["standard"]
    # best standard threshold 0.6 (0.89 beats 0.8598): normalised 100 * (0.89 + 1) / (1 + 1) = 94.5
    assert (std.threshold, std.tp, std.fp, std.fn) == (0.6, 1, 1, 0)
    assert std.raw == pytest.approx(0.89, abs=1e-12)
    assert std.normalized == pytest.approx(94.5, abs=1e-9)
    # low FP (fp 0.22): 0.9 -> 0.8598 beats 0.6 -> 1 - 0.22 = 0.78; 100 * (0.8598 + 1) / 2 = 92.9896
    low_fp = result.profiles["reward_low_FP_rate"]
    assert low_fp.threshold == 0.9
    assert low_fp.normalized == pytest.approx(100 * (t12 + 1) / 2, abs=1e-9)
    assert low_fp.normalized == pytest.approx(92.98962835, abs=1e-6)
    # low FN (fn 2): threshold 0.6 -> 0.89; null = -2, perfect = 1: 100 * 2.89 / 3 = 96.3333
    low_fn = result.profiles["reward_low_FN_rate"]
    assert (low_fn.threshold, low_fn.null, low_fn.perfect) == (0.6, -2.0, 1.0)
    assert low_fn.normalized == pytest.approx(96.33333333, abs=1e-6)
    assert result.summary_line() == "NAB standard=94.5 low_fp=93.0 low_fn=96.3"


def test_ties_pick_the_highest_threshold() -> None:
    # a file without windows: no detection (1.1) and a detection in probation only (0.5) both total 0;
    # NAB's stable descending sort keeps the first, i.e. the highest threshold
    f = _file(window_rows=[])
    scores = np.zeros(f.n_rows)
    scores[2] = 0.5
    assert score_corpus([f], {f.name: scores}).profiles["standard"].threshold == 1.1


def test_normalisation_null_and_perfect() -> None:
    # file a: windows on rows 10..13 and 25..30; file b: one window inside probation (rows 1..4),
    # one scored window (20..24), and file c has no window: 4 labelled windows, 3 scored.
    a = _file(window_rows=[(10, 13), (25, 30)], name="x/a.csv")
    b = _file(window_rows=[(1, 4), (20, 24)], name="x/b.csv")
    c = _file(window_rows=[], name="y/c.csv")
    files = [a, b, c]
    null = score_corpus(files, {f.name: np.zeros(f.n_rows) for f in files})
    for name, cost in NAB_PROFILES.items():
        p = null.profiles[name]
        # null = -fn * scored windows (-3 or -6); perfect = tp * labelled windows (4, as NAB counts labels)
        assert (p.raw, p.null, p.perfect, p.normalized) == (
            -3 * cost["fnWeight"],
            -3 * cost["fnWeight"],
            4.0,
            0.0,
        )
    perfect = score_corpus(files, {f.name: _fire(f, *(s for s, _ in f.window_rows)) for f in files})
    # the probationary window cannot be hit: raw 3, standard 100 * (3 + 3) / (4 + 3) = 85.714...,
    # low FN 100 * (3 + 6) / (4 + 6) = 90
    assert perfect.profiles["standard"].raw == 3.0
    assert perfect.profiles["standard"].normalized == pytest.approx(600 / 7, abs=1e-12)
    assert perfect.profiles["reward_low_FN_rate"].normalized == pytest.approx(90.0, abs=1e-12)
    # per category: x has 4 windows (3 scored) -> same as corpus; y has none -> None
    cats = {(c.category, c.profile): c for c in perfect.categories}
    assert cats[("x", "standard")].normalized == pytest.approx(600 / 7, abs=1e-12)
    assert cats[("y", "standard")].normalized is None
    # per-file raw scores add up to the swept corpus total
    assert sum(x.raw for x in perfect.files if x.profile == "standard") == pytest.approx(3.0)


# -- the vectorised sweep against a literal per-row NAB loop ---------------------------------------------
def _reference_sweep(files: list[NabFile], scores: dict[str, np.ndarray], cost: dict[str, float]) -> dict:
    """Per-row walk as NAB's Sweeper does it (calcSweepScore, then calcScoreByThreshold)."""
    rows = []  # (score, sweep, window name or None)
    for f in files:
        n = f.n_rows
        prob = min(math.floor(0.15 * n), 0.15 * 5000)
        starts = {s: (s, e) for s, e in f.window_rows}
        cur, prev_end, prev_width = None, None, None
        for i in range(n):
            if i in starts:
                cur = starts[i]
            if cur is not None:
                width = cur[1] - cur[0] + 1
                sweep = float(scaled_sigmoid(-(cur[1] - i + 1) / width)) * cost["tpWeight"] / MAX_TP
            elif prev_end is None:
                sweep = -1.0 * cost["fpWeight"]
            else:
                sweep = float(scaled_sigmoid(abs(prev_end - i) / (prev_width - 1))) * cost["fpWeight"]
            if i >= prob:
                rows.append((float(scores[f.name][i]), sweep, None if cur is None else f"{f.name}|{cur}"))
            if cur is not None and i == cur[1]:
                prev_end, prev_width, cur = i, cur[1] - cur[0] + 1, None
    rows.sort(key=lambda r: r[0], reverse=True)
    parts: dict[str | None, float] = {"fp": 0.0}
    parts.update({r[2]: -cost["fnWeight"] for r in rows if r[2] is not None})
    out, threshold = {}, 1.1
    for score, sweep, window in rows:
        if score != threshold:
            out[threshold] = sum(parts.values())
            threshold = score
        if window is None:
            parts["fp"] += sweep
        else:
            parts[window] = max(parts[window], sweep)
    out[threshold] = sum(parts.values())
    return out


def test_vectorised_sweep_matches_a_literal_nab_loop() -> None:
    rng = np.random.default_rng(7)
    files = [
        _file(60, [(10, 13), (20, 31), (45, 50)], name="a/one.csv"),
        _file(40, [(2, 8), (30, 35)], name="a/two.csv"),  # first window straddles the probation end
        _file(25, [], name="b/three.csv"),
    ]
    scores = {f.name: np.round(rng.random(f.n_rows), 1) for f in files}  # many ties across files
    for cost in NAB_PROFILES.values():
        expected = _reference_sweep(files, scores, cost)
        thresholds, totals = sweep_thresholds(files, scores, cost)
        assert thresholds.tolist() == list(expected)
        assert totals == pytest.approx(list(expected.values()), abs=1e-12)
        for t, total in zip(thresholds, totals, strict=True):
            assert sum(score_file(f, scores[f.name], t, cost)[0] for f in files) == pytest.approx(
                total, abs=1e-12
            )


# -- corpus plumbing ------------------------------------------------------------------------------------
def test_scores_are_validated() -> None:
    f = _file()
    with pytest.raises(ValidationError, match="within"):
        score_corpus([f], {f.name: np.full(f.n_rows, 2.0)})
    with pytest.raises(ValidationError, match="rows"):
        score_corpus([f], {f.name: np.zeros(3)})
    with pytest.raises(ValidationError, match="no anomaly scores"):
        score_corpus([f], {})


def test_calibration_is_monotone_in_unit_interval() -> None:
    z = np.array([0.0, 1.0, 10.0, 1e6, 1e300, np.nan, np.inf])
    out = calibrate_scores(z)
    assert out[5] == 0.0
    assert ((out >= 0) & (out <= 1)).all()
    assert (np.diff(out[:5]) > 0).all()  # 1e300 still above 1e6: no saturation to 1.0


def _tiny_corpus(root: Path) -> None:
    ts = pd.date_range("2024-01-01", periods=400, freq="5min")
    rng = np.random.default_rng(3)
    windows = {}
    for cat, name, spike in (("catA", "spiky.csv", 300), ("catB", "calm.csv", None)):
        values = np.sin(np.arange(400) / 12.0) + 0.05 * rng.standard_normal(400)
        if spike is not None:
            values[spike] += 8.0
        (root / "data" / cat).mkdir(parents=True)
        frame = pd.DataFrame({"timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"), "value": values})
        frame.to_csv(root / "data" / cat / name, index=False)
        windows[f"{cat}/{name}"] = (
            [[str(ts[spike - 10]) + ".000000", str(ts[spike + 10]) + ".000000"]] if spike else []
        )
    (root / "labels").mkdir()
    (root / "labels" / "combined_windows.json").write_text(json.dumps(windows))


def test_load_corpus_and_run_benchmark_on_a_tiny_corpus(tmp_path: Path) -> None:
    _tiny_corpus(tmp_path)
    files = load_corpus(tmp_path)
    assert [f.name for f in files] == ["catA/spiky.csv", "catB/calm.csv"]
    spiky = files[0]
    assert (spiky.category, spiky.n_rows, spiky.window_rows, spiky.probation_rows) == (
        "catA",
        400,
        [(290, 310)],
        60,
    )
    assert str(spiky.values.index.tz) == "UTC"

    result = run_nab_benchmark(
        data_dir=tmp_path,
        detector_params={"window": 50},
        export_dir=tmp_path / "out",
        json_path=tmp_path / "r.json",
        plots_dir=tmp_path / "png",
    )
    # the spike is the top score after probation: hit at row 300, position -(310-300+1)/21
    std = result.profiles["standard"]
    assert (std.tp, std.fp, std.fn) == (1, 0, 0)
    assert std.raw == pytest.approx(math.tanh(2.5 * 11 / 21) / MAX_TP, abs=1e-12)
    exported = pd.read_csv(tmp_path / "out" / "catA" / "spiky.csv")
    assert list(exported.columns) == ["timestamp", "value", "anomaly_score"]
    assert exported["anomaly_score"].between(0, 1).all()
    assert exported["timestamp"].iloc[0] == "2024-01-01 00:00:00"
    assert json.loads((tmp_path / "r.json").read_text())["profiles"]["standard"]["tp"] == 1
    assert (tmp_path / "png" / "catB" / "calm.png").stat().st_size > 0
    console = Console(record=True, width=120)
    console.print(result.category_table())
    text = console.export_text()
    assert "catA" in text
    assert "corpus" in text


def test_repeated_timestamps_keep_row_order() -> None:
    ts = pd.to_datetime(["2014-03-09 01:59", "2014-03-09 03:00", "2014-03-09 03:00", "2014-03-09 03:05"])
    f = make_nab_file("x/dst.csv", ts, [1.0, 2.0, 3.0, 4.0])
    assert f.values.index.is_monotonic_increasing
    assert f.values.index.is_unique
    assert f.values.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert (f.timestamps == pd.DatetimeIndex(ts).tz_localize("UTC")).all()


def test_the_monitor_calibration_scores_as_a_monitor_runs() -> None:
    """``--calibration monitor``: nothing before the 3-day warm-up (nor the probationary rows), a
    daily refit on 14 days with the product's calibrator, ticks whose memory is the training span:
    a level last seen four days before is not new, a level never seen is."""
    from telewatch.bench.nab import detect_file, detect_file_as_monitor, make_nab_file

    idx = pd.date_range("2026-01-01", periods=8 * 288, freq="5min")  # 8 days of 5-minute rows
    rng = np.random.default_rng(3)
    values = 20 + rng.normal(0, 1, idx.size)
    values[1 * 288 + 100 : 1 * 288 + 110] = 60  # day 1: a burst to 60
    values[5 * 288 + 100 : 5 * 288 + 110] = 60  # day 5: the same burst again, four days later
    values[6 * 288 + 200 : 6 * 288 + 203] = 95  # day 6: a level never seen
    f = make_nab_file("x/y.csv", idx, values)
    z = detect_file_as_monitor(f, "novelty", {})
    assert (z[: 3 * 288] == 0).all()  # warm-up: 3 days before the first score
    assert z[3 * 288 :].max() > 0
    assert z[5 * 288 + 100 : 5 * 288 + 110].max() < 5.0  # seen on day 1, inside the training window
    assert z[6 * 288 + 200] >= 5.0  # new
    # the bench maps the z's to [0, 1) as the fixed calibration does
    scaled = detect_file(f, "novelty", {}, calibration="monitor")
    np.testing.assert_allclose(scaled, z / (z + 5.0))
    # another train.window (`bench nab --train-window`): two days of memory have forgotten day 1
    short = detect_file_as_monitor(f, "novelty", {}, train_window=pd.Timedelta(days=2))
    assert short[5 * 288 + 100 : 5 * 288 + 110].max() >= 5.0
    with pytest.raises(ValidationError, match="monitor"):
        detect_file(f, "novelty", {}, calibration="fixed", train_window=pd.Timedelta(days=2))


def _raws(
    spec: dict[str, tuple[float, float, float, float]],
) -> tuple[list[NabFile], dict[str, tuple[np.ndarray, int]]]:
    """Files of 100 rows with a window at rows 50-55; raw scores: (the largest probationary score,
    the score at row 52 in the window, a score at row 80 outside it, elsewhere)."""
    files, raws = [], {}
    for name, (prob_max, inside, outside, rest) in spec.items():
        f = _file(100, [(50, 55)], name=name)
        raw = np.full(100, rest)
        raw[3] = prob_max
        raw[52], raw[80] = inside, outside
        files.append(f)
        raws[name] = (raw, f.probation_rows)
    return files, raws


def test_the_calibration_is_chosen_on_the_tuning_half_only() -> None:
    """``bench nab --calibration auto``: the calibration whose scores rank the tuning half's windows
    above its false alarms is chosen; a tie keeps ``probationary``; with no tuning file, nothing is
    chosen on the held-out half."""
    assert nab_half("a/y.csv") == nab_half("a/z.csv") == "tuning" != nab_half("a/x.csv")
    # y learned a large score while on probation: scaled by it, its window's 10 sinks below z's false alarm
    files, raws = _raws({"a/y.csv": (100.0, 10.0, 0.0, 0.0), "a/z.csv": (1.0, 8.0, 5.0, 0.0)})
    chosen, tried, scores = choose_calibration(files, raws)
    assert chosen == "fixed"
    assert tried["fixed"] > tried["probationary"]
    assert scores["a/y.csv"][52] == pytest.approx(10.0 / 15.0)
    # the other way round: comparable only after each file's own scale
    files, raws = _raws({"a/y.csv": (1.0, 10.0, 0.0, 0.0), "a/z.csv": (100.0, 60.0, 50.0, 0.0)})
    assert choose_calibration(files, raws)[0] == "probationary"
    # the same scores either way (every probationary maximum is the fixed scale): a tie keeps probationary
    files, raws = _raws({"a/y.csv": (5.0, 10.0, 0.0, 0.0), "a/z.csv": (5.0, 8.0, 5.0, 0.0)})
    chosen, tried, _ = choose_calibration(files, raws)
    assert (chosen, tried["fixed"]) == ("probationary", tried["probationary"])
    # only held-out files: nothing to choose on
    files, raws = _raws({"a/x.csv": (100.0, 10.0, 0.0, 0.0)})
    assert choose_calibration(files, raws)[:2] == ("probationary", {})
