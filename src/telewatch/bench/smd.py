"""The SMD benchmark (Server Machine Dataset, Su et al. KDD 2019) for telewatch detectors.

Per machine, with a univariate detector from the registry:

1. SMD has **no timestamps**: each machine gets a synthetic 1-minute UTC index (train, then test right
   after it — upstream splits one series into halves), only so that detectors get a valid series.
2. One detector per column is fitted on train; train is scored on its own and test is scored with
   ``context=`` the train series, so rolling windows are warm at the first test row.
3. Each column's scores are calibrated against **that column's train scores** so that columns become
   comparable (see :func:`calibrate_scores`); the machine's overall score is the max over columns.
4. The threshold comes from the **train** overall scores only (quantile ``q`` or POT) — never from
   the test labels. Alarm rule: overall score strictly above the threshold.
5. Metrics on test: composite F1 (headline; Garg et al. 2021), point-adjusted F1 (flatters) and
   point-wise F1, per machine, pooled over machines (counts summed) and averaged per machine.
   A best-threshold composite F1 searched **with the test labels** is reported too, as an upper bound
   only.
6. Root cause: for each ``interpretation_label`` segment, columns are ranked by their mean calibrated
   score over the segment → HitRate@100% and HitRate@150% (TranAD's cut-off, see
   :func:`telewatch.bench.metrics.hit_rate`), averaged over segments.

With a **multivariate** detector (``mv_*``, :mod:`telewatch.detectors.multivariate`) steps 2-3 become:
one detector per machine, fitted on the train frame (all columns); train scored on its own, test
scored with ``context=`` the train frame; the detector's own score is the overall score (it
calibrates per metric inside, against train); root cause ranks columns by their mean
``contributions`` over the segment. Thresholds come from train scores in the same way.
"""

from __future__ import annotations

import lzma
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from telewatch.bench.cv import choose_threshold
from telewatch.bench.metrics import (
    PRF,
    composite_f1,
    composite_f1_curve,
    hit_rate,
    label_events,
    mean_f1,
    point_adjusted_f1,
    point_f1,
    pool,
)
from telewatch.core.errors import NotFoundError, ValidationError
from telewatch.core.series import MAD_TO_SIGMA
from telewatch.detectors.registry import create_detector

FloatArray = npt.NDArray[np.float64]
Calibration = Literal["tail", "robust_z"]
Segment = tuple[int, int, frozenset[int]]

SYNTHETIC_START = pd.Timestamp("2000-01-01", tz="UTC")
TIME_INDEX_NOTE = "SMD has no timestamps: synthetic 1-minute UTC index, test rows right after train rows"
_INTERP_LINE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*:\s*([\d,\s]+?)\s*$")


# -- data -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SmdMachine:
    """One SMD machine: ``train``/``test`` (rows × 38, float64), ``labels`` (0/1 per test row) and
    ``interpretation``: ``(start, end, dims)`` per labelled segment, 0-based rows with end exclusive
    and 0-based column indices."""

    name: str
    train: FloatArray
    test: FloatArray
    labels: npt.NDArray[np.int8]
    interpretation: list[Segment]


def _machine_key(name: str) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def list_machines(data_dir: Path) -> list[str]:
    """Machine names that have a ``test_label`` file, in natural order."""
    label_dir = Path(data_dir) / "test_label"
    if not label_dir.is_dir():
        raise NotFoundError(f"SMD: no test_label/ folder under {data_dir}")
    return sorted((p.name.removesuffix(".txt") for p in label_dir.glob("*.txt")), key=_machine_key)


def _values_file(folder: Path, name: str) -> Path | None:
    for suffix in (".txt.xz", ".txt"):
        path = folder / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def missing_values(data_dir: Path, name: str) -> list[str]:
    """Which of ``train``/``test`` values are absent for ``name`` (empty when it can be loaded)."""
    return [part for part in ("train", "test") if _values_file(Path(data_dir) / part, name) is None]


def _read_values(path: Path) -> FloatArray:
    opener = lzma.open if path.suffix == ".xz" else open
    with opener(path, "rb") as fh:
        values = pd.read_csv(fh, header=None, dtype="float64", engine="c").to_numpy()
    return np.ascontiguousarray(values, dtype="float64")


def _read_interpretation(path: Path, n_dims: int, name: str) -> list[Segment]:
    segments: list[Segment] = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        match = _INTERP_LINE.match(line)
        if match is None:
            raise ValidationError(f"SMD {name}: interpretation_label line {lineno} is not 'start-end:d1,d2'")
        start, end = int(match[1]), int(match[2])
        dims = frozenset(int(d) - 1 for d in match[3].split(",") if d.strip())
        if end <= start or any(not 0 <= d < n_dims for d in dims):
            raise ValidationError(f"SMD {name}: interpretation_label line {lineno} is out of range: {line}")
        segments.append((start, end, dims))
    return segments


def load_machine(data_dir: Path, name: str) -> SmdMachine:
    """Load one machine; raises :class:`NotFoundError` if its train/test values or labels are absent.

    Interpretation ranges are read as 0-based rows, end exclusive (so read, they match ``test_label``
    on all machines but 1-1 and 1-3); dimensions are 1-based in the file and 0-based here.
    """
    data_dir = Path(data_dir)
    label_path = data_dir / "test_label" / f"{name}.txt"
    if not label_path.is_file():
        raise NotFoundError(f"SMD: no machine {name!r} (no {label_path})")
    missing = missing_values(data_dir, name)
    if missing:
        raise NotFoundError(f"SMD {name}: no {' or '.join(missing)} values under {data_dir}")
    train_path = _values_file(data_dir / "train", name)
    test_path = _values_file(data_dir / "test", name)
    if train_path is None or test_path is None:  # checked above; narrows the types
        raise NotFoundError(f"SMD {name}: train/test values vanished under {data_dir}")
    train, test = _read_values(train_path), _read_values(test_path)
    labels = np.loadtxt(label_path, dtype=np.int8, ndmin=1)
    if train.ndim != 2 or test.ndim != 2 or train.shape[1] != test.shape[1]:
        raise ValidationError(f"SMD {name}: train {train.shape} and test {test.shape} do not match")
    if labels.shape != (test.shape[0],):
        raise ValidationError(f"SMD {name}: {labels.size} labels for {test.shape[0]} test rows")
    interp_path = data_dir / "interpretation_label" / f"{name}.txt"
    interpretation = _read_interpretation(interp_path, test.shape[1], name) if interp_path.is_file() else []
    return SmdMachine(name, train, test, labels, interpretation)


# -- calibration --------------------------------------------------------------------------------------
def calibrate_scores(
    train_scores: FloatArray, scores: FloatArray, method: Calibration = "robust_z"
) -> FloatArray:
    """Put each column's ``scores`` (rows × columns) on a common scale using its own train scores.

    ``tail``: ``-log10`` of the empirical tail probability ``(1 + #{train >= s}) / (n + 1)``,
    so every column's train scores map to the same distribution whatever its raw scale, and a point
    beyond everything seen in train reaches ``log10(n + 1)`` and no more. A column constant in train
    (all train scores equal) cannot dominate the max: the threshold is unaffected, and a change in test
    counts as "never seen", like any other column's record value.

    ``robust_z`` (default): ``(s - median) / scale`` with ``scale = max(1.4826 * MAD, (q99 - median) / 2.326,
    floor)``: the second term keeps spiky columns (MAD 0, heavy tail) from dwarfing the rest, and
    ``floor`` (a tenth of the median column scale) stands in for columns constant in train.
    Unbounded, so a degenerate detector score can still dominate a segment. On the SMD dev machines
    with robust_bands it separates better than ``tail`` (whose saturation at the train maximum ties
    record values), so it is the default; ``tail`` stays available.

    NaN scores stay NaN.

    >>> train = np.array([[0.0, 5.0], [1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])
    >>> calibrate_scores(train, np.array([[2.5, 5.0], [9.0, 6.0]]), "tail").round(3).tolist()
    [[0.398, 0.0], [0.699, 0.699]]
    >>> z = calibrate_scores(train, np.array([[2.5, 5.0], [9.0, 6.0]]))  # constant column: floor scale
    >>> bool(abs(z[1, 1]) < 10 * abs(z[1, 0]))
    True
    """
    tr = np.asarray(train_scores, dtype="float64")
    sc = np.asarray(scores, dtype="float64")
    if tr.ndim != 2 or sc.ndim != 2 or tr.shape[1] != sc.shape[1]:
        raise ValidationError(f"calibrate_scores: shapes {tr.shape} and {sc.shape} do not match")
    out = np.full(sc.shape, np.nan)
    if method == "tail":
        for j in range(sc.shape[1]):
            ref = np.sort(tr[np.isfinite(tr[:, j]), j])
            ok = np.isfinite(sc[:, j])
            n_ge = ref.size - np.searchsorted(ref, sc[ok, j], side="left")
            out[ok, j] = 0.0 - np.log10((1.0 + n_ge) / (ref.size + 1.0))  # no -0.0
        return out
    if method != "robust_z":
        raise ValidationError(f"calibrate_scores: unknown method {method!r} (tail or robust_z)")
    with np.errstate(all="ignore"):
        med = np.nanmedian(tr, axis=0)
        mad = MAD_TO_SIGMA * np.nanmedian(np.abs(tr - med), axis=0)
        tail = (np.nanquantile(tr, 0.99, axis=0) - med) / 2.326
    scale = np.fmax(np.nan_to_num(mad), np.nan_to_num(tail))
    positive = scale[scale > 0]
    floor = float(np.median(positive)) if positive.size else 1.0
    scale = np.maximum(scale, 0.1 * floor)
    return np.asarray((sc - med) / scale)


def _overall(calibrated: FloatArray) -> FloatArray:
    """Max over columns, ignoring NaN (a row of NaN stays NaN and never alarms)."""
    return np.asarray(np.fmax.reduce(calibrated, axis=1))


# -- leave one machine out --------------------------------------------------------------------------
#: Candidate parameters of each threshold rule that leave-one-machine-out chooses among: the train
#: quantile ``q``, or the POT risk (the target share of normal rows above the threshold; at SMD's
#: one row a minute, 1e-3 ≈ 1.4 false alarms a day).
LOMO_CANDIDATES: dict[str, tuple[float, ...]] = {
    "quantile": (0.99, 0.993, 0.995, 0.997, 0.998, 0.999, 0.9995),
    "pot": (1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5),
}


#: The bench's default POT risk: what leave-one-machine-out picks for the default detector on every
#: one of the seven shared machines (see ``docs/evaluation.md``).
DEFAULT_RISK = 0.003


#: Buckets of :func:`segment_size_bucket`, in order.
SEGMENT_SIZES = ("1", "2-3", "4-7", "8+")


def segment_size_bucket(n_metrics: int) -> str:
    """The bucket of a labelled segment naming ``n_metrics`` metrics.

    >>> [segment_size_bucket(n) for n in (1, 2, 3, 4, 7, 8, 38)]
    ['1', '2-3', '2-3', '4-7', '4-7', '8+', '8+']
    """
    return "1" if n_metrics <= 1 else "2-3" if n_metrics <= 3 else "4-7" if n_metrics <= 7 else "8+"


def rule_threshold(train_overall: FloatArray, method: str, param: float) -> float:
    """A machine's own threshold from its own train (normal) scores: the ``param`` quantile, or the
    POT level exceeded with probability ``param`` (initial quantile 0.98)."""
    if method == "pot":
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return choose_threshold(train_overall, "pot", q=max(0.5, 1.0 - param), risk=param)
    return choose_threshold(train_overall, "quantile", q=param)


@dataclass
class LomoResult:
    """Leave-one-machine-out: for each machine, the threshold-rule parameter that gave the best pooled
    composite F1 on the *other* machines, and that machine's composite F1 with it; pooled over
    machines. ``in_sample_*``: the parameter chosen on all machines and its pooled F1 on them."""

    method: str
    candidates: list[float]
    chosen: dict[str, float]
    per_machine: dict[str, PRF]
    pooled: PRF
    in_sample_param: float
    in_sample: PRF

    def line(self) -> str:
        picks = ",".join(f"{v:g}" for v in self.chosen.values())
        name = "q" if self.method == "quantile" else "risk"
        return (
            f"SMD leave-one-machine-out machines={len(self.per_machine)} f1_comp={self.pooled.f1:.3f} "
            f"({self.method} {name} picked on the other machines: {picks}); in-sample "
            f"{name}={self.in_sample_param:g} f1_comp={self.in_sample.f1:.3f}"
        )


def leave_one_machine_out(
    runs: Sequence[tuple[str, FloatArray, FloatArray, npt.NDArray[np.int8]]],
    method: str = "pot",
    candidates: Sequence[float] | None = None,
) -> LomoResult:
    """``runs``: ``(name, train overall scores, test overall scores, test labels)`` per machine. Each
    machine's threshold always comes from its own train scores; only the rule's parameter is chosen,
    on the other machines' test labels, then reported on the machine left out."""
    if method not in LOMO_CANDIDATES:
        raise ValidationError(f"leave_one_machine_out: unknown method {method!r} (quantile or pot)")
    cands = list(candidates if candidates is not None else LOMO_CANDIDATES[method])
    # composite counts of every machine under every candidate (thresholds from its own train scores)
    table: dict[str, list[PRF]] = {}
    for name, train_overall, test_overall, labels in runs:
        test = np.nan_to_num(test_overall, nan=-np.inf)
        table[name] = [composite_f1(test > rule_threshold(train_overall, method, c), labels) for c in cands]

    def best(names: Sequence[str]) -> int:
        f1s = [pool(table[n][k] for n in names).f1 for k in range(len(cands))]
        return int(np.argmax(f1s))

    names = [r[0] for r in runs]
    chosen: dict[str, float] = {}
    per_machine: dict[str, PRF] = {}
    for name in names:
        others = [n for n in names if n != name] or [name]
        k = best(others)
        chosen[name] = cands[k]
        per_machine[name] = table[name][k]
    k_all = best(names)
    return LomoResult(
        method=method,
        candidates=cands,
        chosen=chosen,
        per_machine=per_machine,
        pooled=pool(per_machine.values()),
        in_sample_param=cands[k_all],
        in_sample=pool(table[n][k_all] for n in names),
    )


MachineRuns = list[tuple[str, FloatArray, FloatArray, npt.NDArray[np.int8]]]


@dataclass
class SelectionResult:
    """Leave-one-machine-out over whole configurations: for each machine, the (detector, threshold
    parameter) with the best pooled composite F1 on the other machines, and that machine's composite
    F1 with it. ``chosen_all``: what all machines together choose (the default to ship)."""

    method: str
    chosen: dict[str, tuple[str, float]]
    per_machine: dict[str, PRF]
    pooled: PRF
    chosen_all: tuple[str, float]
    in_sample: PRF
    candidates: dict[str, float] = field(default_factory=dict)  # config -> its own LOMO pooled F1

    def line(self) -> str:
        picks = ",".join(f"{d}@{p:g}" for d, p in self.chosen.values())
        d, p = self.chosen_all
        return (
            f"SMD selection leave-one-machine-out machines={len(self.per_machine)} "
            f"f1_comp={self.pooled.f1:.3f} (detector and {self.method} parameter picked on the other "
            f"machines: {picks}); all machines pick {d}@{p:g} (in-sample f1_comp={self.in_sample.f1:.3f})"
        )


def select_by_lomo(runs_by_config: dict[str, MachineRuns], method: str = "pot") -> SelectionResult:
    """Choose a detector configuration *and* its threshold parameter by leave-one-machine-out:
    the honest estimate of "pick the best detector on the machines you have". Every configuration must
    cover the same machines."""
    if not runs_by_config:
        raise ValidationError("select_by_lomo: no configurations")
    cands = list(LOMO_CANDIDATES[method])
    names = [r[0] for r in next(iter(runs_by_config.values()))]
    table: dict[tuple[str, float], dict[str, PRF]] = {}
    own: dict[str, float] = {}
    for config, runs in runs_by_config.items():
        if [r[0] for r in runs] != names:
            raise ValidationError(f"select_by_lomo: {config} covers other machines than the rest")
        lomo = leave_one_machine_out(runs, method)
        own[config] = lomo.pooled.f1
        for name, train_overall, test_overall, labels in runs:
            test = np.nan_to_num(test_overall, nan=-np.inf)
            for c in cands:
                thr = rule_threshold(train_overall, method, c)
                table.setdefault((config, c), {})[name] = composite_f1(test > thr, labels)
    keys = list(table)

    def best(machines: Sequence[str]) -> tuple[str, float]:
        f1s = [pool(table[k][m] for m in machines).f1 for k in keys]
        return keys[int(np.argmax(f1s))]

    chosen: dict[str, tuple[str, float]] = {}
    per_machine: dict[str, PRF] = {}
    for name in names:
        k = best([n for n in names if n != name] or [name])
        chosen[name] = k
        per_machine[name] = table[k][name]
    k_all = best(names)
    return SelectionResult(
        method=method,
        chosen=chosen,
        per_machine=per_machine,
        pooled=pool(per_machine.values()),
        chosen_all=k_all,
        in_sample=pool(table[k_all][n] for n in names),
        candidates=own,
    )


# -- results ----------------------------------------------------------------------------------------
@dataclass
class MachineResult:
    """Metrics of one machine; ``best_*`` used the test labels and are upper bounds, not results."""

    name: str
    n_train: int
    n_test: int
    n_events: int
    threshold: float
    n_alarms: int
    point: PRF
    point_adjusted: PRF
    composite: PRF
    hit_rate_100: float
    hit_rate_150: float
    n_segments: int
    best_composite_f1_upper_bound: float
    best_threshold_upper_bound: float
    seconds: float


@dataclass
class SmdResult:
    """SMD benchmark result: per machine, pooled (counts summed) and per-machine means.

    The headline is pooled composite F1. ``pooled_point_adjusted`` flatters (any hit counts the
    whole segment). ``*_upper_bound`` figures searched the threshold with the test labels.
    """

    detector: str
    detector_params: dict[str, Any]
    calibration: str
    threshold_method: str
    threshold_note: str
    time_index_note: str
    machines: list[MachineResult]
    skipped: dict[str, str]
    pooled_point: PRF
    pooled_point_adjusted: PRF
    pooled_composite: PRF
    mean_point_f1: float
    mean_point_adjusted_f1: float
    mean_composite_f1: float
    hit_rate_100: float
    hit_rate_150: float
    mean_hit_rate_100: float
    mean_hit_rate_150: float
    pooled_composite_f1_upper_bound: float
    wall_seconds: float
    notes: list[str] = field(default_factory=list)
    #: leave-one-machine-out per threshold rule (``quantile``, ``pot``), when there are 2+ machines
    lomo: dict[str, LomoResult] = field(default_factory=dict)
    #: labelled segments (``interpretation_label``) with at least one alarm, and all of them, by how
    #: many metrics the label names: "1", "2-3", "4-7", "8+"
    segments_by_size: dict[str, list[int]] = field(default_factory=dict)

    def segments_line(self) -> str:
        """``SMD segments raised, by metrics labelled: 1: a/b 2-3: …`` — which failures the
        threshold catches: a detector that needs many metrics to move misses one-metric failures."""
        parts = " ".join(f"{k}: {v[0]}/{v[1]}" for k, v in self.segments_by_size.items())
        return f"SMD segments raised, by metrics labelled: {parts}"

    def lomo_lines(self) -> list[str]:
        """One leave-one-machine-out line per threshold rule."""
        return [r.line() for r in self.lomo.values()]

    def summary_line(self) -> str:
        """``SMD machines=<n> f1_comp=… f1_pa=… f1_point=… hitrate100=… hitrate150=…`` (pooled)."""
        return (
            f"SMD machines={len(self.machines)} f1_comp={self.pooled_composite.f1:.3f} "
            f"f1_pa={self.pooled_point_adjusted.f1:.3f} f1_point={self.pooled_point.f1:.3f} "
            f"hitrate100={self.hit_rate_100:.3f} hitrate150={self.hit_rate_150:.3f}"
        )

    def table(self) -> Table:
        """A rich table: one row per machine, then pooled and mean rows, skipped machines named."""
        caption = [
            f"detector={self.detector} {self.detector_params}; calibration={self.calibration}; "
            f"{self.threshold_note}",
            "F1 comp = composite (point precision, event recall; headline). F1 PA = point-adjusted "
            "(flatters). UB = best threshold searched WITH test labels (upper bound, not a result).",
            self.time_index_note,
        ]
        if self.skipped:
            caption.append("skipped: " + "; ".join(f"{k} ({v})" for k, v in self.skipped.items()))
        table = Table(title="SMD benchmark", caption="\n".join(caption), caption_justify="left")
        for col in (
            "machine",
            "events",
            "alarms",
            "P",
            "R(event)",
            "F1 comp",
            "F1 PA",
            "F1 point",
            "Hit@100%",
            "Hit@150%",
            "UB F1 comp",
        ):
            table.add_column(col, justify="left" if col == "machine" else "right")
        for m in self.machines:
            table.add_row(
                m.name,
                str(m.n_events),
                str(m.n_alarms),
                f"{m.composite.precision:.3f}",
                f"{m.composite.recall:.3f}",
                f"{m.composite.f1:.3f}",
                f"{m.point_adjusted.f1:.3f}",
                f"{m.point.f1:.3f}",
                f"{m.hit_rate_100:.3f}",
                f"{m.hit_rate_150:.3f}",
                f"{m.best_composite_f1_upper_bound:.3f}",
            )
        pc = self.pooled_composite
        table.add_section()
        table.add_row(
            "pooled",
            str(pc.events_total),
            str(sum(m.n_alarms for m in self.machines)),
            f"{pc.precision:.3f}",
            f"{pc.recall:.3f}",
            f"{pc.f1:.3f}",
            f"{self.pooled_point_adjusted.f1:.3f}",
            f"{self.pooled_point.f1:.3f}",
            f"{self.hit_rate_100:.3f}",
            f"{self.hit_rate_150:.3f}",
            f"{self.pooled_composite_f1_upper_bound:.3f}",
            style="bold",
        )
        table.add_row(
            "mean",
            "",
            "",
            "",
            "",
            f"{self.mean_composite_f1:.3f}",
            f"{self.mean_point_adjusted_f1:.3f}",
            f"{self.mean_point_f1:.3f}",
            f"{self.mean_hit_rate_100:.3f}",
            f"{self.mean_hit_rate_150:.3f}",
            f"{float(np.mean([m.best_composite_f1_upper_bound for m in self.machines])):.3f}",
        )
        for name, why in self.skipped.items():
            table.add_row(name, f"skipped: {why}", *[""] * 9, style="dim")
        return table


# -- scoring ----------------------------------------------------------------------------------------
def score_machine(
    machine: SmdMachine, *, detector: str, detector_params: dict[str, Any]
) -> tuple[FloatArray, FloatArray]:
    """Raw detector scores (rows × columns) of train and of test (test scored with train as context)."""
    n_train, n_cols = machine.train.shape
    index = pd.date_range(SYNTHETIC_START, periods=n_train + machine.test.shape[0], freq="1min")
    train_idx, test_idx = index[:n_train], index[n_train:]
    train_scores = np.empty(machine.train.shape)
    test_scores = np.empty(machine.test.shape)
    for j in range(n_cols):
        train_s = pd.Series(machine.train[:, j], index=train_idx)
        test_s = pd.Series(machine.test[:, j], index=test_idx)
        det = create_detector(detector, **detector_params).fit(train_s)
        train_scores[:, j] = det.score(train_s).to_numpy()
        test_scores[:, j] = det.score(test_s, context=train_s).to_numpy()
    return train_scores, test_scores


def is_multivariate(detector: str) -> bool:
    """Whether ``detector`` names a multivariate (group) detector rather than a per-metric one."""
    from telewatch.detectors.multivariate import available_multivariate_detectors

    return detector in available_multivariate_detectors()


def score_machine_multivariate(
    machine: SmdMachine, *, detector: str, detector_params: dict[str, Any]
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """A group detector on the whole machine: fitted on the train frame, train scored on its own,
    test scored with the train frame as context. Returns train scores, test scores and test
    contributions (rows × columns: each metric's share of each row's score)."""
    from telewatch.detectors.multivariate import create_multivariate_detector

    n_train, n_cols = machine.train.shape
    index = pd.date_range(SYNTHETIC_START, periods=n_train + machine.test.shape[0], freq="1min")
    cols = [f"dim{j}" for j in range(n_cols)]
    train = pd.DataFrame(machine.train, index=index[:n_train], columns=cols)
    test = pd.DataFrame(machine.test, index=index[n_train:], columns=cols)
    det = create_multivariate_detector(detector, **detector_params).fit(train)
    train_scores = det.score(train).to_numpy()
    test_scores, contrib = det.score_with_contributions(test, context=train)
    return train_scores, test_scores.to_numpy(), contrib.to_numpy()


def _segment_hit_rates(
    calibrated: FloatArray, segments: Sequence[Segment]
) -> tuple[list[float], list[float]]:
    h100: list[float] = []
    h150: list[float] = []
    for start, end, dims in segments:
        if not dims:
            continue
        # mean calibrated score per column over the segment; NaN ranks last
        contrib = np.nan_to_num(np.nanmean(calibrated[start:end], axis=0), nan=-np.inf)
        ranking = np.argsort(-contrib, kind="stable")
        h100.append(hit_rate(ranking, set(dims), 1.0))
        h150.append(hit_rate(ranking, set(dims), 1.5))
    return h100, h150


def _best_threshold(overall: FloatArray, labels: npt.NDArray[np.int8]) -> tuple[float, float]:
    finite = overall[np.isfinite(overall)]
    if finite.size == 0 or not labels.any():
        return 0.0, float("nan")
    candidates = np.unique(np.quantile(finite, np.linspace(0.5, 1.0, 501)))
    curve = composite_f1_curve(overall, labels, candidates)
    best = int(np.argmax(curve))
    return float(curve[best]), float(candidates[best])


def _plot_machine(
    path: Path,
    machine: SmdMachine,
    overall: FloatArray,
    calibrated: FloatArray,
    threshold: float,
    alarms: npt.NDArray[np.bool_],
) -> None:
    from telewatch.bench.report import plot_detection  # matplotlib only when plots are asked for

    idx = pd.date_range(
        SYNTHETIC_START + pd.Timedelta(minutes=machine.train.shape[0]),
        periods=machine.test.shape[0],
        freq="1min",
    )
    # show the column that most often carries the max at alarms (else overall), as the values panel
    top_at = (
        np.nan_to_num(calibrated[alarms], nan=-np.inf).argmax(axis=1) if alarms.any() else np.zeros(1, int)
    )
    col = int(np.bincount(top_at, minlength=calibrated.shape[1]).argmax())
    onsets = np.flatnonzero(np.diff(np.concatenate(([0], alarms.astype(np.int8)))) == 1)
    plot_detection(
        path,
        values=pd.Series(machine.test[:, col], index=idx),
        scores=pd.Series(overall, index=idx),
        threshold=threshold,
        windows=[(idx[s], idx[e - 1]) for s, e in label_events(machine.labels)],
        detections=[idx[int(i)] for i in onsets],
        title=f"{machine.name}: column {col} (top contributor at alarms), overall score and threshold",
    )


def run_smd_benchmark(
    *,
    data_dir: Path,
    detector: str = "robust_bands",
    detector_params: dict[str, Any] | None = None,
    threshold: Literal["quantile", "pot"] = "pot",
    q: float = 0.995,
    risk: float = DEFAULT_RISK,
    calibration: Calibration = "robust_z",
    machines: Sequence[str] | None = None,
    json_path: Path | None = None,
    plots_dir: Path | None = None,
    console: Console | None = None,
    runs_out: MachineRuns | None = None,
) -> SmdResult:
    """Run the SMD benchmark (see the module docstring for the protocol).

    ``runs_out``: a list that receives ``(machine, train overall, test overall, labels)`` per machine
    (for :func:`select_by_lomo`).

    ``machines`` picks machines by name (default: every machine with labels); those without train/test
    values are skipped and named in ``SmdResult.skipped`` and on the console. ``threshold`` is
    ``pot`` (default: SPOT-style, the level the machine's own train overall scores exceed with
    probability ``risk``, init quantile 0.98; see :func:`rule_threshold`) or ``quantile`` (the ``q``
    quantile of them), in both cases from each machine's train scores only.
    """
    t0 = time.perf_counter()
    data_dir = Path(data_dir)
    params = dict(detector_params or {})
    console = console if console is not None else Console(stderr=True)
    names = list(machines) if machines is not None else list_machines(data_dir)
    if not names:
        raise ValidationError(f"SMD: no machines under {data_dir}")
    multivariate = is_multivariate(detector)
    skipped: dict[str, str] = {}
    results: list[MachineResult] = []
    all_h100: list[float] = []
    all_h150: list[float] = []
    best_counts: list[PRF] = []
    runs: MachineRuns = runs_out if runs_out is not None else []
    by_size: dict[str, list[int]] = {k: [0, 0] for k in SEGMENT_SIZES}
    progress = Progress(
        TextColumn("SMD {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with progress:
        task = progress.add_task("", total=len(names))
        for name in names:
            progress.update(task, description=name)
            missing = missing_values(data_dir, name)
            if missing and (data_dir / "test_label" / f"{name}.txt").is_file():
                skipped[name] = f"no {' or '.join(missing)} values"
                console.print(f"SMD: skipped {name} ({skipped[name]})")
                progress.advance(task)
                continue
            tm = time.perf_counter()
            machine = load_machine(data_dir, name)
            if multivariate:
                # one group score: the detector calibrates inside; contributions rank the metrics
                train_overall, test_overall, test_cal = score_machine_multivariate(
                    machine, detector=detector, detector_params=params
                )
            else:
                train_raw, test_raw = score_machine(machine, detector=detector, detector_params=params)
                train_cal = calibrate_scores(train_raw, train_raw, calibration)
                test_cal = calibrate_scores(train_raw, test_raw, calibration)
                train_overall, test_overall = _overall(train_cal), _overall(test_cal)
            if threshold not in LOMO_CANDIDATES:
                raise ValidationError(f"SMD: threshold must be quantile or pot, got {threshold!r}")
            thr = rule_threshold(train_overall, threshold, risk if threshold == "pot" else q)
            runs.append((name, np.asarray(train_overall), np.asarray(test_overall), machine.labels))
            alarms = np.nan_to_num(test_overall, nan=-np.inf) > thr
            h100, h150 = _segment_hit_rates(test_cal, machine.interpretation)
            all_h100 += h100
            all_h150 += h150
            best_f1, best_thr = _best_threshold(test_overall, machine.labels)
            best_counts.append(
                composite_f1(np.nan_to_num(test_overall, nan=-np.inf) > best_thr, machine.labels)
            )
            composite = composite_f1(alarms, machine.labels)
            for start, end, dims in machine.interpretation:
                counts = by_size[segment_size_bucket(len(dims))]
                counts[0] += int(bool(alarms[start:end].any()))
                counts[1] += 1
            results.append(
                MachineResult(
                    name=name,
                    n_train=machine.train.shape[0],
                    n_test=machine.test.shape[0],
                    n_events=composite.events_total,
                    threshold=float(thr),
                    n_alarms=int(alarms.sum()),
                    point=point_f1(alarms, machine.labels),
                    point_adjusted=point_adjusted_f1(alarms, machine.labels),
                    composite=composite,
                    hit_rate_100=float(np.mean(h100)) if h100 else float("nan"),
                    hit_rate_150=float(np.mean(h150)) if h150 else float("nan"),
                    n_segments=len(h100),
                    best_composite_f1_upper_bound=best_f1,
                    best_threshold_upper_bound=best_thr,
                    seconds=time.perf_counter() - tm,
                )
            )
            if plots_dir is not None:
                _plot_machine(Path(plots_dir) / f"{name}.png", machine, test_overall, test_cal, thr, alarms)
            progress.advance(task)
    if not results:
        raise NotFoundError(f"SMD: none of {names} has train and test values under {data_dir}")
    threshold_note = (
        f"threshold = {q} quantile of the train overall scores"
        if threshold == "quantile"
        else f"threshold = POT on each machine's train overall scores (init quantile 0.98, risk {risk:g})"
    ) + "; test labels never used (except the UB column)"
    result = SmdResult(
        detector=detector,
        detector_params=params,
        calibration="inside the multivariate detector" if multivariate else calibration,
        threshold_method=threshold,
        threshold_note=threshold_note,
        time_index_note=TIME_INDEX_NOTE,
        machines=results,
        skipped=skipped,
        pooled_point=pool(m.point for m in results),
        pooled_point_adjusted=pool(m.point_adjusted for m in results),
        pooled_composite=pool(m.composite for m in results),
        mean_point_f1=mean_f1([m.point for m in results]),
        mean_point_adjusted_f1=mean_f1([m.point_adjusted for m in results]),
        mean_composite_f1=mean_f1([m.composite for m in results]),
        hit_rate_100=float(np.mean(all_h100)) if all_h100 else float("nan"),
        hit_rate_150=float(np.mean(all_h150)) if all_h150 else float("nan"),
        mean_hit_rate_100=float(np.nanmean([m.hit_rate_100 for m in results])),
        mean_hit_rate_150=float(np.nanmean([m.hit_rate_150 for m in results])),
        pooled_composite_f1_upper_bound=pool(best_counts).f1,
        wall_seconds=time.perf_counter() - t0,
        lomo={m: leave_one_machine_out(runs, m) for m in LOMO_CANDIDATES} if len(runs) > 1 else {},
        segments_by_size=by_size,
        notes=[
            "f1_comp (composite, Garg et al. 2021) is the headline; point-adjusted F1 flatters.",
            "hit rates: mean over interpretation segments (pooled) of HitRate@P% with TranAD's cut-off.",
            "*_upper_bound: threshold searched with the test labels per machine — an upper bound only.",
        ],
    )
    if json_path is not None:
        from telewatch.bench.report import write_json

        write_json(Path(json_path), result)
    return result
