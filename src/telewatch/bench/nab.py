"""The NAB v1.1 scorer and benchmark runner.

Scoring follows Numenta's NAB v1.1 (``nab/sweeper.py``, ``nab/optimizer.py``, ``nab/runner.py``),
re-implemented with numpy so the whole corpus (~366k rows) sweeps in well under a second:

* **Probationary period**: the first ``min(floor(0.15 * n), 0.15 * 5000)`` rows of a file (at most 750)
  are ignored: detections there count for nothing, and a window with no row after it is not scored.
* **Rows, not time**: windows are ``[start, end]`` timestamps mapped to rows (NAB enters a window on the
  row whose timestamp *equals* the start and leaves after the first row equal to the end; both are looked
  up by first occurrence, as ``list.index`` does). Width ``W = end_row - start_row + 1``.
* **Sweep score of a row** ``i``: inside a window, ``S(-(end_row - i + 1) / W) * tp / S(-1)``, so the
  window's first row is worth exactly ``tp`` and its last row ``S(-1/W) * tp / S(-1)`` (a little above 0);
  outside, ``S(|i - prev_end_row| / (W_prev - 1)) * fp`` against the closest *preceding* window (a
  detection just after a window costs less than ``fp``), or ``-fp`` when no window precedes. ``S`` is
  NAB's ``scaledSigmoid(x) = 2 / (1 + exp(5x)) - 1`` (and ``-1`` for ``x > 3``).
* **File score at threshold t** (a detection is a scored row with ``score >= t``): each window counts the
  *best* (hence the earliest) detection in it, or ``-fn`` when it has none; every detection outside
  windows adds its (negative) sweep score.
* **Threshold**: one per profile for the whole corpus, the candidate (1.1 = never fire, then every
  distinct score value) with the highest corpus total; ties go to the highest threshold, as NAB's stable
  descending sort does.
* **Normalised score**: ``100 * (raw - null) / (perfect - null)``, with ``null = -fn * (scored windows)``
  (what the null detector gets) and ``perfect = tp * (labelled windows)`` (NAB counts the label file).

Known deviations, none of which the NAB corpus exercises: a window one row wide would make NAB divide by
zero when scoring the false positives after it (here: full ``-fp``); a window bound that matches no
row's timestamp makes NAB skip or crash (here: first row ``>= start`` .. last row ``<= end``).

Counts: ``tp``/``fn`` count *windows* (detected / missed) and ``fp`` counts detection *rows* outside
windows; NAB's own CSVs count rows for all three.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from telewatch.core.errors import ValidationError
from telewatch.detectors import create_detector
from telewatch.detectors.base import Detector

PROBATIONARY_PERCENT = 0.15
#: NAB's cap: ``probationPercent * 5000`` rows.
PROBATIONARY_CAP = PROBATIONARY_PERCENT * 5000
#: The threshold above every score in [0, 1]: "never fire" (NAB starts its sweep there).
NO_DETECTION_THRESHOLD = 1.1
#: ``profiles.json`` as shipped with NAB v1.1 (used when a data dir has no config/profiles.json).
NAB_PROFILES: dict[str, dict[str, float]] = {
    "standard": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11, "tnWeight": 1.0},
    "reward_low_FP_rate": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.22, "tnWeight": 1.0},
    "reward_low_FN_rate": {"tpWeight": 1.0, "fnWeight": 2.0, "fpWeight": 0.11, "tnWeight": 1.0},
}
_SHORT_NAMES = {"standard": "standard", "reward_low_FP_rate": "low_fp", "reward_low_FN_rate": "low_fn"}
#: Scale of the fixed calibration ``z / (z + c)`` (see :func:`calibrate_scores`, :func:`detect_file`).
CALIBRATION_SCALE = 5.0


# -- the NAB rules ------------------------------------------------------------------------------------
def scaled_sigmoid(position: np.ndarray | float) -> np.ndarray:
    """NAB's ``scaledSigmoid``: ``2 / (1 + exp(5 x)) - 1``, and ``-1`` for ``x > 3``.

    >>> [round(float(v), 5) for v in scaled_sigmoid(np.array([-1.0, -0.5, 0.0, 1.0, 3.5]))]
    [0.98661, 0.84828, 0.0, -0.98661, -1.0]
    """
    x = np.asarray(position, dtype="float64")
    with np.errstate(over="ignore"):
        value = 2.0 * (1.0 / (1.0 + np.exp(5.0 * x))) - 1.0
    return np.where(x > 3.0, -1.0, value)


_MAX_TP = float(scaled_sigmoid(-1.0))


def probation_rows(n_rows: int, percent: float = PROBATIONARY_PERCENT) -> int:
    """Rows at the start of a file that NAB ignores: ``min(floor(0.15 n), 750)``.

    >>> probation_rows(1000), probation_rows(4032), probation_rows(22695)
    (150, 604, 750)
    """
    return int(min(math.floor(percent * n_rows), percent * 5000))


@dataclass(frozen=True)
class RowGeometry:
    """Where each row of one file stands relative to its windows (profile independent)."""

    window: np.ndarray  # int: index of the window holding the row, -1 outside every window
    position: np.ndarray  # float: NAB's relative position (in-window or past the preceding window)
    scored: np.ndarray  # bool: row is after the probationary period
    scored_windows: np.ndarray  # bool per window: has at least one scored row

    def sweep(self, cost: Mapping[str, float]) -> np.ndarray:
        """Each row's weighted NAB sweep score under ``cost`` (tpWeight, fpWeight)."""
        unweighted = scaled_sigmoid(self.position)
        return np.where(
            self.window >= 0, unweighted * cost["tpWeight"] / _MAX_TP, unweighted * cost["fpWeight"]
        )


def row_geometry(n_rows: int, window_rows: Sequence[tuple[int, int]]) -> RowGeometry:
    """Window membership and relative positions of ``n_rows`` rows; windows are inclusive row ranges."""
    window = np.full(n_rows, -1, dtype=np.int64)
    position = np.full(n_rows, np.inf)  # no preceding window: "far away", S = -1
    rows = np.arange(n_rows, dtype="float64")
    prev_end, prev_width = -1, 0.0
    for k, (start, end) in enumerate(window_rows):
        width = float(end - start + 1)
        window[start : end + 1] = k
        position[start : end + 1] = -(end - rows[start : end + 1] + 1.0) / width
        if prev_end >= 0:
            _positions_past(position, rows, prev_end, prev_width, prev_end + 1, start)
        prev_end, prev_width = end, width
    if prev_end >= 0:
        _positions_past(position, rows, prev_end, prev_width, prev_end + 1, n_rows)
    scored = np.arange(n_rows) >= probation_rows(n_rows)
    scored_windows = np.array([bool(scored[end]) for _, end in window_rows], dtype=bool)
    return RowGeometry(window=window, position=position, scored=scored, scored_windows=scored_windows)


def _positions_past(
    position: np.ndarray, rows: np.ndarray, prev_end: int, prev_width: float, lo: int, hi: int
) -> None:
    if hi <= lo:
        return
    if prev_width > 1.0:
        position[lo:hi] = np.abs(prev_end - rows[lo:hi]) / (prev_width - 1.0)
    else:  # NAB divides by zero here; treat as far away
        position[lo:hi] = np.inf


# -- corpus -------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class NabFile:
    """One NAB data file with its labelled windows.

    ``values`` is indexed by the file's row timestamps in UTC, made strictly increasing for the
    detector contract (a few NAB files repeat a timestamp, e.g. at a DST change; such rows are moved
    1 µs after their predecessor, keeping the file's row order). ``timestamps`` holds the rows'
    timestamps exactly as in the file (UTC); NAB scores rows, so scores align with rows.
    """

    category: str
    name: str  # "realKnownCause/nyc_taxi.csv"
    values: pd.Series
    windows: list[tuple[pd.Timestamp, pd.Timestamp]]
    timestamps: pd.DatetimeIndex
    window_rows: list[tuple[int, int]] = field(default_factory=list)

    @property
    def n_rows(self) -> int:
        return len(self.values)

    @property
    def probation_rows(self) -> int:
        return probation_rows(self.n_rows)

    def geometry(self) -> RowGeometry:
        return row_geometry(self.n_rows, self.window_rows)


def make_nab_file(
    name: str,
    timestamps: Sequence[Any] | pd.DatetimeIndex,
    values: Sequence[float] | np.ndarray,
    windows: Sequence[tuple[Any, Any]] = (),
) -> NabFile:
    """Build a :class:`NabFile` from raw rows (naive timestamps are read as UTC) and window bounds."""
    ts = pd.DatetimeIndex(
        pd.to_datetime(list(timestamps) if not isinstance(timestamps, pd.Index) else timestamps)
    )
    ts = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
    ts = ts.as_unit("ns")  # window lookups compare int64 nanoseconds
    vals = np.asarray(values, dtype="float64")
    if len(ts) != len(vals):
        raise ValidationError(f"{name}: {len(ts)} timestamps but {len(vals)} values")
    wins = [(_utc(s), _utc(e)) for s, e in windows]
    rows = [_window_rows(name, ts, s, e) for s, e in wins]
    for (s0, e0), (s1, _) in pairwise(rows):
        if s1 <= e0 or s0 > e0:
            raise ValidationError(f"{name}: windows must be ordered and must not overlap")
    series = pd.Series(vals, index=_strictly_increasing(ts), name=name)
    category = name.split("/", 1)[0] if "/" in name else ""
    return NabFile(category=category, name=name, values=series, windows=wins, timestamps=ts, window_rows=rows)


def load_corpus(data_dir: Path, *, names: Sequence[str] | None = None) -> list[NabFile]:
    """Read the NAB corpus: ``data_dir/data/<category>/<file>.csv`` and
    ``data_dir/labels/combined_windows.json``. ``names`` picks a subset (in that order)."""
    data_dir = Path(data_dir)
    labels_path = data_dir / "labels" / "combined_windows.json"
    if not labels_path.is_file():
        raise ValidationError(f"NAB labels not found: {labels_path}")
    labels: dict[str, list[list[str]]] = json.loads(labels_path.read_text())
    wanted = list(names) if names is not None else sorted(labels)
    files = []
    for name in wanted:
        if name not in labels:
            raise ValidationError(f"{name}: not in {labels_path}")
        frame = pd.read_csv(data_dir / "data" / name)
        files.append(
            make_nab_file(
                name,
                pd.DatetimeIndex(pd.to_datetime(frame["timestamp"])),
                frame["value"].to_numpy(dtype="float64"),
                [(s, e) for s, e in labels[name]],
            )
        )
    return files


def load_profiles(path: Path) -> dict[str, dict[str, float]]:
    """Read NAB's ``config/profiles.json`` into ``{profile: cost matrix}``."""
    return _cost_matrices(json.loads(Path(path).read_text()))


def _cost_matrices(profiles: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, float]]:
    if profiles is None:
        return {k: dict(v) for k, v in NAB_PROFILES.items()}
    out = {}
    for name, spec in profiles.items():
        matrix = spec.get("CostMatrix", spec)
        try:
            out[name] = {k: float(matrix[k]) for k in ("tpWeight", "fpWeight", "fnWeight")}
        except KeyError as exc:
            raise ValidationError(f"profile {name!r}: missing {exc.args[0]}") from None
    return out


def _utc(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
    return ts.as_unit("ns")


def _window_rows(name: str, ts: pd.DatetimeIndex, start: pd.Timestamp, end: pd.Timestamp) -> tuple[int, int]:
    i8 = ts.asi8
    hits_s = np.flatnonzero(i8 == start.value)
    hits_e = np.flatnonzero(i8 == end.value)
    if hits_s.size and hits_e.size:  # NAB: the row equal to the bound (first occurrence)
        lo, hi = int(hits_s[0]), int(hits_e[0])
    else:
        lo = int(np.flatnonzero(i8 >= start.value)[0]) if (i8 >= start.value).any() else len(ts)
        hi = int(np.flatnonzero(i8 <= end.value)[-1]) if (i8 <= end.value).any() else -1
    if hi < lo:
        raise ValidationError(f"{name}: window [{start}, {end}] holds no row")
    return lo, hi


def _strictly_increasing(ts: pd.DatetimeIndex) -> pd.DatetimeIndex:
    i8 = ts.asi8.copy()
    step = 1_000  # 1 µs in ns
    if i8.size > 1 and not (np.diff(i8) > 0).all():
        for k in range(1, i8.size):
            if i8[k] <= i8[k - 1]:
                i8[k] = i8[k - 1] + step
    return pd.DatetimeIndex(pd.to_datetime(i8, utc=True, unit="ns"))


# -- the development split ----------------------------------------------------------------------------
#: The two halves of the corpus: ``tuning`` (the only files any parameter, threshold or detector choice
#: may look at) and ``heldout`` (reported, never chosen on).
NAB_HALVES = ("tuning", "heldout")


def nab_half(name: str) -> str:
    """The half a NAB file belongs to, by a fixed rule that does not look at its data: ``tuning`` when
    the SHA-256 of its name (``"realKnownCause/nyc_taxi.csv"``, UTF-8) is even, else ``heldout``.
    On NAB v1.1: 32 files / 59 windows to tune on, 26 files / 57 windows held out.

    >>> nab_half("realKnownCause/nyc_taxi.csv"), nab_half("artificialWithAnomaly/art_daily_jumpsup.csv")
    ('heldout', 'tuning')
    """
    return "tuning" if int(hashlib.sha256(name.encode("utf-8")).hexdigest(), 16) % 2 == 0 else "heldout"


@dataclass
class HalfScore:
    """One half of the corpus: normalised score per profile and the threshold it was scored at
    (``tuning``: its own best, as NAB sweeps; ``heldout``: the tuning half's, never its own)."""

    half: str
    files: int
    windows: int
    normalized: dict[str, float]
    thresholds: dict[str, float]

    def line(self) -> str:
        how = "own threshold: in-sample" if self.half == "tuning" else "threshold of the tuning half"
        parts = " ".join(
            f"{_SHORT_NAMES.get(name, name)}={value:.1f}" for name, value in self.normalized.items()
        )
        return f"NAB {self.half} half ({self.files} files, {self.windows} windows; {how}) {parts}"


def score_halves(
    files: Sequence[NabFile],
    scores: Mapping[str, np.ndarray],
    profiles: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, HalfScore]:
    """Score the tuning half at its best thresholds and the held-out half at those same thresholds
    (see :func:`nab_half`). A half with no file is left out."""
    out: dict[str, HalfScore] = {}
    chosen: dict[str, float] | None = None
    for half in NAB_HALVES:
        members = [f for f in files if nab_half(f.name) == half]
        if not members:
            continue
        res = score_corpus(members, scores, profiles, thresholds=chosen if half == "heldout" else None)
        if half == "tuning":
            chosen = {name: p.threshold for name, p in res.profiles.items()}
        out[half] = HalfScore(
            half=half,
            files=len(members),
            windows=sum(len(f.window_rows) for f in members),
            normalized={name: p.normalized for name, p in res.profiles.items()},
            thresholds={name: p.threshold for name, p in res.profiles.items()},
        )
    return out


# -- results ------------------------------------------------------------------------------------------
@dataclass
class ProfileScore:
    """Corpus result for one profile at its best threshold."""

    profile: str
    threshold: float
    raw: float
    null: float
    perfect: float
    normalized: float
    tp: int
    fp: int
    fn: int


@dataclass
class FileScore:
    """One file under one profile at that profile's corpus threshold."""

    name: str
    category: str
    profile: str
    raw: float
    tp: int
    fp: int
    fn: int
    windows: int


@dataclass
class CategoryScore:
    """A category's share of the corpus score; ``normalized`` is None where it has no windows."""

    category: str
    profile: str
    files: int
    windows: int
    raw: float
    null: float
    perfect: float
    normalized: float | None
    tp: int
    fp: int
    fn: int


@dataclass
class NabResult:
    """The NAB result of one detector on a corpus."""

    detector: str
    detector_params: dict[str, Any]
    profiles: dict[str, ProfileScore]
    categories: list[CategoryScore]
    files: list[FileScore]
    n_files: int
    n_rows: int
    n_windows: int
    calibration: str = ""
    #: the calibration the scores went through (``probationary``, ``fixed``, ``tail``, ``monitor``)
    calibration_name: str = ""
    #: with ``calibration="auto"``: each calibration tried and its standard score on the tuning half
    calibration_tried: dict[str, float] = field(default_factory=dict)
    detect_seconds: float = 0.0
    score_seconds: float = 0.0
    halves: dict[str, HalfScore] = field(default_factory=dict)

    def half_lines(self) -> list[str]:
        """One line per half of the development split (tuning first), empty when not computed; with a
        calibration chosen on the tuning half, a line before them says which and against what."""
        lines = [self.halves[h].line() for h in NAB_HALVES if h in self.halves]
        if self.calibration_tried:
            tried = ", ".join(f"{name} {value:.1f}" for name, value in self.calibration_tried.items())
            lines.insert(0, f"NAB calibration chosen on the tuning half: {self.calibration_name} ({tried})")
        return lines

    def normalized(self, profile: str) -> float:
        return self.profiles[profile].normalized

    def summary_line(self) -> str:
        """``NAB standard=<s> low_fp=<s> low_fn=<s>`` with one decimal."""
        parts = [
            f"{_SHORT_NAMES.get(name, name)}={self.profiles[name].normalized:.1f}"
            for name in ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
            if name in self.profiles
        ]
        parts += [
            f"{name}={p.normalized:.1f}" for name, p in self.profiles.items() if name not in _SHORT_NAMES
        ]
        return "NAB " + " ".join(parts)

    def category_table(self) -> Table:
        """A rich table: one row per category (and the corpus), normalised score per profile."""
        names = list(self.profiles)
        table = Table(title=f"NAB v1.1 — {self.detector} {self.detector_params or ''}".rstrip())
        table.add_column("category")
        table.add_column("files", justify="right")
        table.add_column("windows", justify="right")
        for name in names:
            table.add_column(_SHORT_NAMES.get(name, name), justify="right")
        table.add_column("tp/fp/fn (standard)" if "standard" in names else "tp/fp/fn", justify="right")
        first = "standard" if "standard" in names else names[0]
        by_cat: dict[str, dict[str, CategoryScore]] = {}
        for c in self.categories:
            by_cat.setdefault(c.category, {})[c.profile] = c
        for cat, per in by_cat.items():
            cells = [_fmt_norm(per[n]) for n in names]
            ref = per[first]
            table.add_row(cat, str(ref.files), str(ref.windows), *cells, f"{ref.tp}/{ref.fp}/{ref.fn}")
        ref_p = self.profiles[first]
        table.add_row(
            "[b]corpus[/b]",
            str(self.n_files),
            str(self.n_windows),
            *[f"[b]{self.profiles[n].normalized:.1f}[/b]" for n in names],
            f"{ref_p.tp}/{ref_p.fp}/{ref_p.fn}",
            end_section=True,
        )
        return table


def _fmt_norm(c: CategoryScore) -> str:
    return f"{c.normalized:.1f}" if c.normalized is not None else f"raw {c.raw:.2f}"


# -- scoring ------------------------------------------------------------------------------------------
def sweep_thresholds(
    files: Sequence[NabFile],
    scores: Mapping[str, np.ndarray],
    cost: Mapping[str, float],
    *,
    geometries: Mapping[str, RowGeometry] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Corpus raw score at every candidate threshold (descending: 1.1, then each distinct score).

    Equivalent to NAB's ``Sweeper.calcScoreByThreshold`` over all files' rows, vectorised: a window's
    contribution only changes when a detection earlier in it appears, so each row carries the
    *increment* it brings (``fp`` rows: their sweep score; window rows: the rise of the window's best
    sweep score) and the total at a threshold is a cumulative sum down the scores.
    """
    all_scores, all_inc = [], []
    base = 0.0
    for f in files:
        geo = (geometries or {}).get(f.name) or f.geometry()
        s = _checked_scores(f, scores)
        sweep = geo.sweep(cost)
        keep = geo.scored
        s, sweep, win = s[keep], sweep[keep], geo.window[keep]
        inc = sweep.copy()
        in_win = win >= 0
        if in_win.any():
            w_s, w_sweep, w_id = s[in_win], sweep[in_win], win[in_win]
            order = np.lexsort((-w_s, w_id))  # by window, then score descending
            best = pd.Series(w_sweep[order]).groupby(w_id[order]).cummax().to_numpy()
            best = np.maximum(best, -cost["fnWeight"])
            first = np.r_[True, w_id[order][1:] != w_id[order][:-1]]
            prev = np.where(first, -cost["fnWeight"], np.r_[0.0, best[:-1]])
            w_inc = np.empty_like(best)
            w_inc[order] = best - prev
            inc[in_win] = w_inc
        base -= cost["fnWeight"] * int(geo.scored_windows.sum())
        all_scores.append(s)
        all_inc.append(inc)
    s_all = np.concatenate(all_scores) if all_scores else np.empty(0)
    inc_all = np.concatenate(all_inc) if all_inc else np.empty(0)
    order = np.argsort(-s_all, kind="stable")
    s_sorted = s_all[order]
    totals = base + np.cumsum(inc_all[order])
    ends = np.flatnonzero(np.r_[s_sorted[1:] != s_sorted[:-1], True]) if s_sorted.size else np.empty(0, int)
    thresholds = np.r_[NO_DETECTION_THRESHOLD, s_sorted[ends]]
    return thresholds, np.r_[base, totals[ends]]


def score_file(
    nab_file: NabFile,
    scores: np.ndarray,
    threshold: float,
    cost: Mapping[str, float],
    *,
    geometry: RowGeometry | None = None,
) -> tuple[float, int, int, int]:
    """``(raw score, tp windows, fp rows, fn windows)`` of one file at ``threshold`` (NAB rules)."""
    geo = geometry or nab_file.geometry()
    s = np.asarray(scores, dtype="float64")
    sweep = geo.sweep(cost)
    detected = geo.scored & (s >= threshold)
    fp_rows = detected & (geo.window < 0)
    raw = float(sweep[fp_rows].sum())
    tp = fn = 0
    for k in np.flatnonzero(geo.scored_windows):
        hits = np.flatnonzero(detected & (geo.window == k))
        if hits.size:  # the first detection is the best one: sweep scores fall across a window
            raw += float(sweep[hits].max())
            tp += 1
        else:
            raw -= cost["fnWeight"]
            fn += 1
    return raw, tp, int(fp_rows.sum()), fn


def score_corpus(
    files: Sequence[NabFile],
    scores: Mapping[str, np.ndarray],
    profiles: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    detector: str = "",
    detector_params: Mapping[str, Any] | None = None,
    thresholds: Mapping[str, float] | None = None,
) -> NabResult:
    """Score anomaly scores in [0, 1] (one array per file, by name, aligned with its rows) the NAB way:
    the best corpus threshold per profile, normalised scores, per-category and per-file breakdowns.

    ``profiles`` is NAB's ``profiles.json`` content (or ``{name: cost matrix}``); default NAB's three.
    ``thresholds`` (``{profile: threshold}``): score at these thresholds instead of sweeping for the
    best one — how a held-out half is scored at the threshold its tuning half chose.
    """
    started = time.perf_counter()
    costs = _cost_matrices(profiles)
    geos = {f.name: f.geometry() for f in files}
    arrays = {f.name: _checked_scores(f, scores) for f in files}
    n_windows = sum(len(f.window_rows) for f in files)
    n_scored_windows = sum(int(g.scored_windows.sum()) for g in geos.values())
    prof_out: dict[str, ProfileScore] = {}
    file_out: list[FileScore] = []
    cat_out: list[CategoryScore] = []
    for pname, cost in costs.items():
        swept: float | None = None
        if thresholds is not None and pname in thresholds:
            threshold = float(thresholds[pname])
        else:
            candidates, totals = sweep_thresholds(files, arrays, cost, geometries=geos)
            best = int(np.argmax(totals))  # first maximum = highest threshold, as NAB's stable sort
            threshold, swept = float(candidates[best]), float(totals[best])
        per_file = []
        for f in files:
            raw, tp, fp, fn = score_file(f, arrays[f.name], threshold, cost, geometry=geos[f.name])
            per_file.append(FileScore(f.name, f.category, pname, raw, tp, fp, fn, len(f.window_rows)))
        file_out += per_file
        null = -cost["fnWeight"] * n_scored_windows
        perfect = cost["tpWeight"] * n_windows
        raw_total = swept if swept is not None else float(sum(x.raw for x in per_file))
        prof_out[pname] = ProfileScore(
            profile=pname,
            threshold=threshold,
            raw=raw_total,
            null=null,
            perfect=perfect,
            normalized=_normalise(raw_total, null, perfect) or 0.0,
            tp=sum(x.tp for x in per_file),
            fp=sum(x.fp for x in per_file),
            fn=sum(x.fn for x in per_file),
        )
        for cat in sorted({f.category for f in files}):
            members = [x for x in per_file if x.category == cat]
            c_files = [f for f in files if f.category == cat]
            c_null = -cost["fnWeight"] * sum(int(geos[f.name].scored_windows.sum()) for f in c_files)
            c_perfect = cost["tpWeight"] * sum(len(f.window_rows) for f in c_files)
            c_raw = sum(x.raw for x in members)
            cat_out.append(
                CategoryScore(
                    category=cat,
                    profile=pname,
                    files=len(members),
                    windows=sum(x.windows for x in members),
                    raw=c_raw,
                    null=c_null,
                    perfect=c_perfect,
                    normalized=_normalise(c_raw, c_null, c_perfect),
                    tp=sum(x.tp for x in members),
                    fp=sum(x.fp for x in members),
                    fn=sum(x.fn for x in members),
                )
            )
    return NabResult(
        detector=detector,
        detector_params=dict(detector_params or {}),
        profiles=prof_out,
        categories=cat_out,
        files=file_out,
        n_files=len(files),
        n_rows=sum(f.n_rows for f in files),
        n_windows=n_windows,
        score_seconds=time.perf_counter() - started,
    )


def _normalise(raw: float, null: float, perfect: float) -> float | None:
    return None if perfect == null else 100.0 * (raw - null) / (perfect - null)


def _checked_scores(nab_file: NabFile, scores: Mapping[str, np.ndarray]) -> np.ndarray:
    if nab_file.name not in scores:
        raise ValidationError(f"{nab_file.name}: no anomaly scores given")
    s = np.asarray(scores[nab_file.name], dtype="float64")
    if s.shape != (nab_file.n_rows,):
        raise ValidationError(
            f"{nab_file.name}: {s.shape[0] if s.ndim else 0} scores for {nab_file.n_rows} rows"
        )
    if not np.isfinite(s).all() or (s < 0).any() or (s > 1).any():
        raise ValidationError(f"{nab_file.name}: anomaly scores must be finite and within [0, 1]")
    return s


# -- the benchmark runner -----------------------------------------------------------------------------
def calibrate_scores(raw: np.ndarray, *, scale: float = CALIBRATION_SCALE) -> np.ndarray:
    """Map raw detector scores (>= 0, higher = more anomalous) to [0, 1): ``z / (z + scale)``; NaN → 0.

    Monotone, and ``z / (z + c)`` never rounds to 1.0 in float64 (unlike ``1 - exp(-z / c)`` beyond
    z ≈ 37 c), so large scores keep their order for the threshold sweep.

    >>> calibrate_scores(np.array([0.0, 5.0, np.nan, 45.0])).tolist()
    [0.0, 0.5, 0.0, 0.9]
    """
    z = np.clip(
        np.nan_to_num(np.asarray(raw, dtype="float64"), nan=0.0, posinf=np.finfo(float).max), 0.0, None
    )
    with np.errstate(over="ignore", invalid="ignore"):
        out = z / (z + scale)
    return np.nan_to_num(out, nan=1.0)


def probationary_scale(raw_probation: np.ndarray) -> float:
    """The calibration scale fitted on a file's own probationary-period raw scores: their largest
    finite value (``CALIBRATION_SCALE`` when there is none above 0). Uses no labels and no row the
    scorer counts, so the calibrated score stays causal."""
    finite = np.asarray(raw_probation, dtype="float64")
    finite = finite[np.isfinite(finite)]
    top = float(finite.max()) if finite.size else 0.0
    return top if top > 0.0 else CALIBRATION_SCALE


CALIBRATIONS = ("probationary", "fixed", "tail", "monitor")
#: ``bench nab``'s default: whichever of these scores higher on the tuning half (standard profile;
#: the first on a tie), reported on the held-out half — the calibration is chosen like a parameter.
AUTO_CALIBRATIONS = ("probationary", "fixed")
#: Re-alarm cooldown (rows) of the "tail" calibration.
TAIL_COOLDOWN = 1000
#: The "monitor" calibration: new points scored this much at a time (a tick; the figure is the same
#: with 15-minute ticks, at four times the run time).
MONITOR_TICK = pd.Timedelta(hours=1)


def _train_days(window: pd.Timedelta | None = None) -> float:
    """The days ``window`` (default: a monitor's default ``train.window``) spans."""
    from telewatch.monitors.config import TrainSpec

    return pd.Timedelta(TrainSpec().window if window is None else window) / pd.Timedelta(days=1)


def _check_train_window(calibration: str, train_window: pd.Timedelta | None) -> None:
    """A training window is given only with the ``monitor`` calibration (the others fit once)."""
    if train_window is not None and calibration != "monitor":
        raise ValidationError("a training window is a monitor's setting: give it with calibration 'monitor'")


def detect_file_as_monitor(
    nab_file: NabFile,
    detector: str,
    params: Mapping[str, Any],
    *,
    tick: pd.Timedelta = MONITOR_TICK,
    train_window: pd.Timedelta | None = None,
) -> np.ndarray:
    """The file's calibrated z's as a monitor with the default ``train`` settings computes them
    (``monitors.config.TrainSpec``): no score before the series covers ``warm_up`` (3 days) or
    before the probationary period ends; from then on the model is fitted every ``every`` (1 day)
    on the last ``window`` (14 days) of rows by the pipeline of ``telewatch detect``
    (``services.detection.calibrated_scores``: screening, refit, its calibrator) and each ``tick``
    of new rows is scored with the context a monitor's tick gives
    (``services.tick_state.context_need``) and calibrated with that model's calibrator. Rows
    without a score get 0. What the alert rules do after the z's (blips, habits, severity) is
    not counted: NAB scores points. ``train_window``: another ``train.window`` than the default's."""
    from telewatch.monitors.config import TrainSpec
    from telewatch.services.detection import calibrate, calibrated_scores
    from telewatch.services.tick_state import context_need

    spec = (
        TrainSpec() if train_window is None else TrainSpec(window=pd.Timedelta(train_window).to_pytimedelta())
    )
    every, window = pd.Timedelta(spec.every), pd.Timedelta(spec.window)
    s = nab_file.values
    idx = s.index
    out = np.zeros(len(s))
    pos = max(nab_file.probation_rows, int(idx.searchsorted(idx[0] + pd.Timedelta(spec.warm_up))))
    model: Detector | None = None
    trained = idx[0]
    while pos < len(s):
        t = idx[pos]
        if model is None or t - trained >= every:
            lo = int(idx.searchsorted(t - window))
            train = s.iloc[lo:pos]
            model, _z, _screened = calibrated_scores(
                detector, dict(params), train, np.ones(pos - lo, dtype=bool)
            )
            trained = t
            need = context_need(model)
        end = max(int(idx.searchsorted(t + tick)), pos + 1)
        start = max(0, pos - need.points)
        if need.span:
            start = min(start, int(idx.searchsorted(t - pd.Timedelta(need.span))))
        raw = model.score(s.iloc[pos:end], context=s.iloc[start:pos]).to_numpy(dtype="float64")
        out[pos:end] = np.nan_to_num(calibrate(model, raw), nan=0.0)
        pos = end
    return out


def detect_file(
    nab_file: NabFile,
    detector: str,
    params: Mapping[str, Any],
    *,
    calibration: str = "probationary",
    train_window: pd.Timedelta | None = None,
) -> np.ndarray:
    """Run a detector as in production: fit on the probationary rows only, then score the whole
    (causal) series; returns calibrated scores in [0, 1] aligned with the file's rows.

    ``calibration``: ``"probationary"`` = ``z / (z + m)`` with ``m`` the largest raw score of the
    file's probationary period (so the score reads "how far beyond anything seen while learning",
    comparable across files); ``"fixed"`` = ``z / (z + 5)`` for every file (then the corpus
    threshold is a plain threshold on the raw score); ``"tail"`` = telewatch's post-rules: a
    :class:`~telewatch.postrules.calibrate.Calibrator` trained on the probationary raw scores, then
    :class:`~telewatch.postrules.alarms.RepeatSuppressor` (cooldown ``TAIL_COOLDOWN`` rows), then
    ``z / (z + 5)``; ``"monitor"``: the z's of :func:`detect_file_as_monitor` (re-fitted daily,
    scored tick by tick, as a monitor does; ``train_window``: its ``train.window``), then
    ``z / (z + 5)``.
    """
    if calibration not in CALIBRATIONS:
        raise ValidationError(f"calibration must be one of {CALIBRATIONS}, got {calibration!r}")
    if calibration == "monitor":
        return calibrate_scores(detect_file_as_monitor(nab_file, detector, params, train_window=train_window))
    _check_train_window(calibration, train_window)
    raw, n_fit = raw_file_scores(nab_file, detector, params)
    return calibrated(raw, n_fit, calibration)


def raw_file_scores(nab_file: NabFile, detector: str, params: Mapping[str, Any]) -> tuple[np.ndarray, int]:
    """The detector fitted on the file's probationary rows, scoring the whole (causal) series: its raw
    scores and the number of probationary rows."""
    det = create_detector(detector, **dict(params))
    n_fit = max(nab_file.probation_rows, 1)
    det.fit(nab_file.values.iloc[:n_fit])
    return det.score(nab_file.values).to_numpy(dtype="float64"), n_fit


def calibrated(raw: np.ndarray, n_fit: int, calibration: str) -> np.ndarray:
    """Raw scores mapped into [0, 1] by ``calibration`` (``probationary``, ``fixed`` or ``tail``;
    see :func:`detect_file`), fitted on the first ``n_fit`` rows only."""
    if calibration == "tail":  # telewatch's own post-rules, trained on the probationary rows
        from telewatch.postrules.alarms import RepeatSuppressor
        from telewatch.postrules.calibrate import Calibrator

        z = Calibrator().train(raw[:n_fit])(raw)
        return calibrate_scores(RepeatSuppressor(cooldown=TAIL_COOLDOWN)(z))
    scale = probationary_scale(raw[:n_fit]) if calibration == "probationary" else CALIBRATION_SCALE
    return calibrate_scores(raw, scale=scale)


def file_progress(console: Console) -> Progress:
    """The bar the NAB commands show while they score files (gone when done)."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def run_nab_benchmark(
    *,
    data_dir: Path,
    detector: str = "robust_bands",
    detector_params: dict[str, Any] | None = None,
    export_dir: Path | None = None,
    plots_dir: Path | None = None,
    json_path: Path | None = None,
    console: Console | None = None,
    names: Sequence[str] | None = None,
    calibration: str = "probationary",
    train_window: pd.Timedelta | None = None,
) -> NabResult:
    """Run ``detector`` over the NAB corpus in ``data_dir`` and score it with the NAB v1.1 rules.

    ``export_dir``: ``DIR/<category>/<file>.csv`` (timestamp,value,anomaly_score) for any NAB scorer;
    ``plots_dir``: one PNG per file at the best standard threshold; ``json_path``: the result as JSON;
    ``names``: a subset of files (e.g. for a quick check); ``calibration`` and ``train_window``: see
    :func:`detect_file`.
    """
    if calibration != "auto" and calibration not in CALIBRATIONS:
        raise ValidationError(f"calibration must be 'auto' or one of {CALIBRATIONS}, got {calibration!r}")
    _check_train_window(calibration, train_window)
    data_dir = Path(data_dir)
    params = dict(detector_params or {})
    console = console or Console(stderr=True)
    files = load_corpus(data_dir, names=names)
    profiles_path = data_dir / "config" / "profiles.json"
    profiles = load_profiles(profiles_path) if profiles_path.is_file() else None

    started = time.perf_counter()
    scores: dict[str, np.ndarray] = {}
    raws: dict[str, tuple[np.ndarray, int]] = {}
    with file_progress(console) as progress:
        task = progress.add_task(f"NAB {detector}", total=len(files))
        for f in files:
            progress.update(task, description=f"NAB {detector}: {f.name}")
            if calibration == "auto":
                raws[f.name] = raw_file_scores(f, detector, params)
            else:
                scores[f.name] = detect_file(
                    f, detector, params, calibration=calibration, train_window=train_window
                )
            progress.advance(task)
    detect_seconds = time.perf_counter() - started
    tried: dict[str, float] = {}
    if calibration == "auto":
        calibration, tried, scores = choose_calibration(files, raws, profiles)

    result = score_corpus(files, scores, profiles, detector=detector, detector_params=params)
    result.halves = score_halves(files, scores, profiles)
    result.detect_seconds = detect_seconds
    result.calibration_tried = tried
    result.calibration_name = calibration
    result.calibration = (
        "z / (z + max probationary z), NaN -> 0"
        if calibration == "probationary"
        else f"z / (z + {CALIBRATION_SCALE:g}), NaN -> 0"
        if calibration == "fixed"
        else f"as a monitor: refitted daily on {_train_days(train_window):g} days, ticks of {MONITOR_TICK}, z / (z + {CALIBRATION_SCALE:g})"
        if calibration == "monitor"
        else f"Calibrator z (probationary rows), RepeatSuppressor({TAIL_COOLDOWN}), z / (z + {CALIBRATION_SCALE:g})"
    )

    if export_dir is not None:
        export_scores(Path(export_dir), files, scores)
    if plots_dir is not None:
        _plot_files(Path(plots_dir), files, scores, result)
    if json_path is not None:
        from telewatch.bench.report import write_json

        write_json(Path(json_path), result)
    return result


def choose_calibration(
    files: Sequence[NabFile],
    raws: Mapping[str, tuple[np.ndarray, int]],
    profiles: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[str, dict[str, float], dict[str, np.ndarray]]:
    """The calibration among :data:`AUTO_CALIBRATIONS` whose scores rank best on the tuning half
    (standard profile, each at its own best threshold; the first on a tie, and the first when no file
    is in the tuning half): ``(chosen, {calibration: tuning standard score}, chosen scores)``. The
    held-out half is never looked at."""
    tuning = [f for f in files if nab_half(f.name) == "tuning"]
    tried: dict[str, float] = {}
    candidates: dict[str, dict[str, np.ndarray]] = {}
    for name in AUTO_CALIBRATIONS:
        candidates[name] = {k: calibrated(raw, n_fit, name) for k, (raw, n_fit) in raws.items()}
        if tuning:
            tried[name] = score_corpus(tuning, candidates[name], profiles).profiles["standard"].normalized
    chosen = max(AUTO_CALIBRATIONS, key=lambda c: (tried.get(c, 0.0), -AUTO_CALIBRATIONS.index(c)))
    return chosen, tried, candidates[chosen]


def export_scores(export_dir: Path, files: Sequence[NabFile], scores: Mapping[str, np.ndarray]) -> None:
    """Write ``DIR/<category>/<file>.csv`` with NAB's columns: timestamp (as in the data), value,
    anomaly_score."""
    for f in files:
        path = export_dir / f.name
        path.parent.mkdir(parents=True, exist_ok=True)
        frame = pd.DataFrame(
            {
                "timestamp": f.timestamps.tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S"),
                "value": f.values.to_numpy(),
                "anomaly_score": np.asarray(scores[f.name], dtype="float64"),
            }
        )
        frame.to_csv(path, index=False)


def _plot_files(
    plots_dir: Path, files: Sequence[NabFile], scores: Mapping[str, np.ndarray], result: NabResult
) -> None:
    from telewatch.bench.report import plot_detection

    profile = "standard" if "standard" in result.profiles else next(iter(result.profiles))
    threshold = result.profiles[profile].threshold
    for f in files:
        s = np.asarray(scores[f.name], dtype="float64")
        rows = np.flatnonzero((np.arange(f.n_rows) >= f.probation_rows) & (s >= threshold))
        plot_detection(
            plots_dir / f"{f.name.removesuffix('.csv')}.png",
            values=f.values,
            scores=pd.Series(s, index=f.values.index),
            threshold=threshold,
            windows=f.windows,
            detections=list(f.values.index[rows]),
            title=f"{f.name} — {result.detector} (threshold {threshold:.4f}, {profile})",
        )


# -- choosing parameters on the tuning half ------------------------------------------------------------
#: ``bench nab-select``'s default grid for ``novelty``: the parameters that were chosen (2026-11) on
#: the whole corpus, before the split existed, re-chosen here on the tuning half alone.
NOVELTY_GRID: dict[str, list[Any]] = {
    "bins": [50, 75, 100, 150, 200],
    "cooldown": [250, 500, 1000, 2000, 4000],
}
#: A candidate replaces the detector's current parameters only when it beats them on the tuning
#: half by more than this many normalised standard points. One window of the tuning half's 59,
#: caught at its start instead of missed, is worth about 1.7 points; an extra false alarm about 0.1:
#: differences under half a point are a few false alarms, within the noise of any choice on 32 files.
SELECT_TOLERANCE = 0.5


@dataclass
class NabCandidate:
    """One parameter setting: its standard score on the tuning half at that half's own threshold."""

    params: dict[str, Any]
    tuning: float


@dataclass
class NabSelection:
    """What ``bench nab-select`` chose on the tuning half, and how the choice did on the held-out half.

    Only the chosen setting is ever scored on the held-out half (a look at every candidate's
    held-out figure would make the held-out half a second tuning half)."""

    detector: str
    calibration: str
    tolerance: float
    candidates: list[NabCandidate]
    incumbent: NabCandidate
    best: NabCandidate
    chosen: NabCandidate
    heldout: HalfScore
    whole: dict[str, float]

    def lines(self) -> list[str]:
        """One line per candidate (tuning half only), then the choice and its held-out figure."""
        out = [
            f"current {json.dumps(self.incumbent.params, sort_keys=True)}: tuning standard={self.incumbent.tuning:.1f}"
        ]
        out += [
            f"candidate {json.dumps(c.params, sort_keys=True)}: tuning standard={c.tuning:.1f}"
            for c in self.candidates
        ]
        if self.best is self.incumbent:
            why = "no candidate scores higher"
        elif self.chosen is self.incumbent:
            why = (
                f"kept the current parameters: the best candidate {json.dumps(self.best.params, sort_keys=True)} "
                f"({self.best.tuning:.1f}) is not more than {self.tolerance:g} above them"
            )
        else:
            why = f"more than {self.tolerance:g} above the current parameters ({self.incumbent.tuning:.1f})"
        whole = " ".join(f"{_SHORT_NAMES.get(k, k)}={v:.1f}" for k, v in self.whole.items())
        out.append(
            f"NAB select {self.detector} ({self.calibration}): chose {json.dumps(self.chosen.params, sort_keys=True)}, "
            f"tuning standard={self.chosen.tuning:.1f} ({why}); "
            f"heldout standard={self.heldout.normalized.get('standard', float('nan')):.1f} at the tuning half's threshold; "
            f"whole corpus {whole}"
        )
        return out


def parameter_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of ``grid``'s values, in order (the last parameter varies fastest).

    >>> parameter_grid({"bins": [50, 100], "cooldown": [500]})
    [{'bins': 50, 'cooldown': 500}, {'bins': 100, 'cooldown': 500}]
    """
    import itertools

    for name, values in grid.items():
        if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
            raise ValidationError(f"grid: {name!r} must be a non-empty list of values, got {values!r}")
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(grid[n] for n in names))]


def select_on_tuning_half(
    *,
    data_dir: Path,
    detector: str = "novelty",
    base_params: Mapping[str, Any] | None = None,
    grid: Mapping[str, Sequence[Any]] | None = None,
    calibration: str = "probationary",
    tolerance: float = SELECT_TOLERANCE,
    names: Sequence[str] | None = None,
    console: Console | None = None,
) -> NabSelection:
    """Choose ``detector``'s parameters among ``grid`` (merged over ``base_params``, the current
    setting) on NAB's tuning half only, then score the choice once on the held-out half at the
    tuning half's threshold. The current setting is kept unless a candidate beats it by more than
    ``tolerance`` points. ``grid`` defaults to :data:`NOVELTY_GRID` for ``novelty`` and is
    required for any other detector."""
    base = dict(base_params or {})
    if grid is None:
        if detector != "novelty":
            raise ValidationError(f"nab-select: give a grid of parameters for {detector!r}")
        grid = NOVELTY_GRID
    if tolerance < 0:
        raise ValidationError(f"nab-select: tolerance must be at least 0, got {tolerance}")
    # every setting must build: a bad parameter fails here, before minutes of scoring
    current = create_detector(detector, **base).get_params()  # the current setting, every parameter named
    settings = [current] + [{**base, **combo} for combo in parameter_grid(grid)]
    for params in settings[1:]:
        create_detector(detector, **params)
    data_dir = Path(data_dir)
    console = console or Console(stderr=True)
    files = load_corpus(data_dir, names=names)
    tuning = [f for f in files if nab_half(f.name) == "tuning"]
    heldout = [f for f in files if nab_half(f.name) == "heldout"]
    if not tuning or not heldout:
        raise ValidationError("nab-select: the corpus needs files in both halves (see nab_half)")
    profiles_path = data_dir / "config" / "profiles.json"
    profiles = load_profiles(profiles_path) if profiles_path.is_file() else None

    def tuning_score(params: Mapping[str, Any]) -> tuple[float, dict[str, np.ndarray]]:
        scores = {f.name: detect_file(f, detector, params, calibration=calibration) for f in tuning}
        return score_corpus(tuning, scores, profiles).profiles["standard"].normalized, scores

    candidates: list[NabCandidate] = []
    kept_scores: list[dict[str, np.ndarray]] = []
    with file_progress(console) as progress:
        task = progress.add_task(f"NAB select {detector} (tuning half)", total=len(settings))
        for params in settings:
            value, scores = tuning_score(params)
            candidates.append(NabCandidate(dict(params), value))
            kept_scores.append(scores)
            progress.advance(task)
    incumbent = candidates[0]
    best_at = max(range(len(candidates)), key=lambda i: candidates[i].tuning)  # first maximum
    best = candidates[best_at]
    chosen_at = best_at if best.tuning > incumbent.tuning + tolerance else 0
    chosen = candidates[chosen_at]
    scores = dict(kept_scores[chosen_at])
    scores.update({f.name: detect_file(f, detector, chosen.params, calibration=calibration) for f in heldout})
    halves = score_halves(files, scores, profiles)
    whole = score_corpus(files, scores, profiles)
    return NabSelection(
        detector=detector,
        calibration=calibration,
        tolerance=tolerance,
        candidates=candidates[1:],
        incumbent=incumbent,
        best=best,
        chosen=chosen,
        heldout=halves["heldout"],
        whole={k: p.normalized for k, p in whole.profiles.items()},
    )
