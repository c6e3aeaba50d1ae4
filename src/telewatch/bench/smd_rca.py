"""Root-cause ranking on SMD: HitRate@100% and @150% of the window scan against ``interpretation_label``.

Two settings, per machine (train rows, then test rows, as one series per column):

(a) **labelled window**: each ``interpretation_label`` segment is the window; the scan ranks the 38
    columns against the preceding period (4 × the window) and against all history before the window
    (train rows and the test rows before it). SMD has no real timestamps, so the same-hours baseline
    is off, and the columns share one unit (normalised to [0, 1]), so the scale floor is shared.
(b) **detected incident**: detection runs without the labels — each column's |z| against its train
    rows, an anomaly where it passes the train rows' ``q`` quantile of the overall score for at least
    ``min_points`` rows, anomalies grouped into incidents by :func:`telewatch.incidents.grouping.
    group_anomalies` — and each labelled segment is ranked with the window of the detected incident
    that overlaps it most. Segments no incident touches count as missed (hit rate 0) in
    ``detected_hit_rate_*`` and are left out of ``detected_only_hit_rate_*``.

Hit rates follow TranAD's cut-off (:func:`telewatch.bench.metrics.hit_rate`), averaged over segments.

>>> RcaResult(machines=[], hit_rate_100=0.5, hit_rate_150=0.75, detected_hit_rate_100=0.4,
...           detected_hit_rate_150=0.6, detected_only_hit_rate_100=0.5, detected_only_hit_rate_150=0.7,
...           segments=10, segments_detected=8, wall_seconds=1.0).summary_line()
'SMD-RCA machines=0 hitrate100=0.500 hitrate150=0.750 detected_hitrate100=0.400 detected_hitrate150=0.600 detected=8/10'
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from telewatch.bench.metrics import hit_rate
from telewatch.bench.smd import list_machines, load_machine, missing_values
from telewatch.core.errors import NotFoundError, ValidationError
from telewatch.incidents.grouping import AnomalyRecord, group_anomalies
from telewatch.incidents.ranking import ScanConfig, _center_scale, window_evidence
from telewatch.postrules.alarms import alarm_windows

FloatArray = npt.NDArray[np.float64]

SMD_SCAN = ScanConfig(baseline_factor=4.0, period=None, max_lag=0, shared_scale_floor=True)
"""The scan's settings on SMD: no seasonal baseline (no timestamps), one shared unit."""


@dataclass
class RcaMachine:
    name: str
    segments: int
    segments_detected: int
    hit_rate_100: float
    hit_rate_150: float
    detected_hit_rate_100: float
    detected_hit_rate_150: float
    incidents: int
    seconds: float


@dataclass
class RcaResult:
    """Hit rates pooled over all segments of all machines (each segment weighs the same)."""

    machines: list[RcaMachine]
    hit_rate_100: float
    hit_rate_150: float
    detected_hit_rate_100: float
    detected_hit_rate_150: float
    detected_only_hit_rate_100: float
    detected_only_hit_rate_150: float
    segments: int
    segments_detected: int
    wall_seconds: float
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def summary_line(self) -> str:
        return (
            f"SMD-RCA machines={len(self.machines)} hitrate100={self.hit_rate_100:.3f} "
            f"hitrate150={self.hit_rate_150:.3f} detected_hitrate100={self.detected_hit_rate_100:.3f} "
            f"detected_hitrate150={self.detected_hit_rate_150:.3f} "
            f"detected={self.segments_detected}/{self.segments}"
        )

    def table(self) -> Table:
        table = Table(title="SMD root-cause ranking (HitRate@P%)", caption="; ".join(self.notes) or None)
        for col in ("machine", "segments", "@100%", "@150%", "detected", "det @100%", "det @150%", "s"):
            table.add_column(col, justify="left" if col == "machine" else "right", no_wrap=col == "machine")
        for m in self.machines:
            table.add_row(
                m.name,
                str(m.segments),
                f"{m.hit_rate_100:.3f}",
                f"{m.hit_rate_150:.3f}",
                f"{m.segments_detected}/{m.segments}",
                f"{m.detected_hit_rate_100:.3f}",
                f"{m.detected_hit_rate_150:.3f}",
                f"{m.seconds:.1f}",
            )
        table.add_row(
            "all",
            str(self.segments),
            f"{self.hit_rate_100:.3f}",
            f"{self.hit_rate_150:.3f}",
            f"{self.segments_detected}/{self.segments}",
            f"{self.detected_hit_rate_100:.3f}",
            f"{self.detected_hit_rate_150:.3f}",
            f"{self.wall_seconds:.1f}",
        )
        return table


def rank_columns(
    values: FloatArray, w0: int, w1: int, *, config: ScanConfig = SMD_SCAN
) -> npt.NDArray[np.intp]:
    """Column indices of ``values`` (time × columns), most changed in rows ``[w0, w1)`` first."""
    x = np.ascontiguousarray(values.T)
    ev = window_evidence(x, w0, w1, config=config, history=[slice(0, w0)])
    return np.argsort(-ev.score, kind="stable")


def detect_incidents(
    train: FloatArray,
    test: FloatArray,
    *,
    q: float = 0.995,
    min_points: int = 2,
    merge_gap: int = 5,
) -> list[tuple[int, int]]:
    """Incident windows ``(start, end)`` (test rows, end exclusive) found without labels."""
    med, scale = _center_scale(train.T, shared_floor=True)
    z_train = np.abs(train - med) / scale
    z_test = np.abs(test - med) / scale
    threshold = float(np.quantile(np.nanmax(z_train, axis=1), q))
    t0 = pd.Timestamp("2000-01-01", tz="UTC")
    minute = pd.Timedelta("1min")
    records: list[AnomalyRecord] = []
    for j in range(test.shape[1]):
        flags = np.nan_to_num(z_test[:, j]) > threshold
        for s, e in alarm_windows(flags, min_points=min_points, merge_gap=merge_gap):
            peak = s + int(np.argmax(z_test[s:e, j]))
            records.append(
                AnomalyRecord(
                    len(records),
                    j,
                    t0 + s * minute,
                    t0 + (e - 1) * minute,
                    t0 + peak * minute,
                    float(z_test[peak, j]),
                )
            )
    drafts = group_anomalies(records, merge_gap=merge_gap * minute)
    return [(int((d.start - t0) / minute), int((d.end - t0) / minute) + 1) for d in drafts]


def _best_overlap(windows: Sequence[tuple[int, int]], start: int, end: int) -> tuple[int, int] | None:
    best, best_len = None, 0
    for s, e in windows:
        overlap = min(e, end) - max(s, start)
        if overlap > best_len:
            best, best_len = (s, e), overlap
    return best


def evaluate_rca(
    data_dir: Path | str,
    machines: Sequence[str] | None = None,
    *,
    q: float = 0.995,
    console: Console | None = None,
) -> RcaResult:
    """Run settings (a) and (b) on ``machines`` (default: every machine with values) under ``data_dir``."""
    started = time.perf_counter()
    data_dir = Path(data_dir)
    names = list(machines) if machines is not None else list_machines(data_dir)
    if not names:
        raise ValidationError(f"SMD: no machines under {data_dir}")
    console = console if console is not None else Console(stderr=True)
    skipped: dict[str, str] = {}
    results: list[RcaMachine] = []
    h100: list[float] = []
    h150: list[float] = []
    d100: list[float] = []
    d150: list[float] = []
    detected_flags: list[bool] = []
    progress = Progress(
        TextColumn("SMD-RCA {task.description}"),
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
            if missing and machines is None:
                skipped[name] = f"no {' or '.join(missing)} values"
                progress.advance(task)
                continue
            tm = time.perf_counter()
            m = load_machine(data_dir, name)
            values = np.concatenate([m.train, m.test])
            n_train = m.train.shape[0]
            incidents = detect_incidents(m.train, m.test, q=q)
            mh100: list[float] = []
            mh150: list[float] = []
            md100: list[float] = []
            md150: list[float] = []
            detected = 0
            for start, end, dims in m.interpretation:
                if not dims:
                    continue
                order = rank_columns(values, n_train + start, n_train + end)
                mh100.append(hit_rate(order, set(dims), 1.0))
                mh150.append(hit_rate(order, set(dims), 1.5))
                window = _best_overlap(incidents, start, end)
                if window is None:
                    md100.append(0.0)
                    md150.append(0.0)
                    detected_flags.append(False)
                    continue
                detected += 1
                detected_flags.append(True)
                order = rank_columns(values, n_train + window[0], n_train + window[1])
                md100.append(hit_rate(order, set(dims), 1.0))
                md150.append(hit_rate(order, set(dims), 1.5))
            h100 += mh100
            h150 += mh150
            d100 += md100
            d150 += md150
            results.append(
                RcaMachine(
                    name=name,
                    segments=len(mh100),
                    segments_detected=detected,
                    hit_rate_100=float(np.mean(mh100)) if mh100 else float("nan"),
                    hit_rate_150=float(np.mean(mh150)) if mh150 else float("nan"),
                    detected_hit_rate_100=float(np.mean(md100)) if md100 else float("nan"),
                    detected_hit_rate_150=float(np.mean(md150)) if md150 else float("nan"),
                    incidents=len(incidents),
                    seconds=time.perf_counter() - tm,
                )
            )
            progress.advance(task)
    if not results:
        raise NotFoundError(f"SMD: none of {names} has train and test values under {data_dir}")
    flags = np.asarray(detected_flags, dtype=bool)
    det100, det150 = np.asarray(d100), np.asarray(d150)

    def mean(a: Sequence[float] | FloatArray) -> float:
        return float(np.mean(a)) if len(a) else float("nan")

    return RcaResult(
        machines=results,
        hit_rate_100=mean(h100),
        hit_rate_150=mean(h150),
        detected_hit_rate_100=mean(det100),
        detected_hit_rate_150=mean(det150),
        detected_only_hit_rate_100=mean(det100[flags]),
        detected_only_hit_rate_150=mean(det150[flags]),
        segments=len(h100),
        segments_detected=int(flags.sum()),
        wall_seconds=time.perf_counter() - started,
        skipped=skipped,
        notes=[
            "(a) labelled window vs preceding 4x window and all history before it",
            f"(b) detected incident windows (train q={q} threshold, grouped anomalies); misses count 0",
            f"(b) over the detected segments only: {mean(det100[flags]):.3f} @100%, {mean(det150[flags]):.3f} @150%",
        ],
    )
