"""NAB as the on-call person sees it: each file replayed through a monitor, its pages counted.

``telewatch bench nab`` scores points (NAB's sweep over a threshold, every flagged point counts).
What wakes a person is a message: the monitor's ticks, alert rules (blips, habits, the least change
worth a page, severity), incidents, deduplication. This bench replays each NAB file through
``telewatch replay`` (``services.replay``) with the default monitor — or a monitors file's —, each
file in a store of its own, and counts, per half of the corpus (``bench.nab.nab_half``):

* **windows told**: labelled windows that a firing (or update) message's incident overlaps, among the
  windows that end after the monitor's warm-up (``train.warm_up``: no series is scored before it);
* **pages**: firing messages, and how many were critical;
* **outside**: firing messages whose incident overlaps no labelled window, per series-week (the
  weeks after the warm-up, summed over files).

Each file is shifted by whole weeks to start in the week of :data:`PAGES_EPOCH`, which keeps its
weekdays and times of day (and so what a weekly profile learns) and lets one command's JSON and
message folders read alike for every file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from telewatch.bench.nab import NabFile, file_progress, load_corpus, nab_half
from telewatch.bench.report import write_json
from telewatch.core.errors import ValidationError
from telewatch.services.catalog import format_step

#: Every file is shifted by whole weeks to start in the week of this Monday.
PAGES_EPOCH = pd.Timestamp("2024-01-01", tz="UTC")
#: The replay's tick. An hour tells the same windows with as many pages as 15-minute ticks on the
#: four tuning files checked (docs/evaluation.md), at a quarter of the time; 15-minute ticks page up
#: to 45 minutes earlier, and a page is then more often a warning that an update makes critical.
DEFAULT_EVERY = timedelta(hours=1)
HALVES = ("tuning", "heldout", "both")
#: Message kinds that tell people of an incident (a "repeat" or "resolved" adds nothing new).
TELLING = ("firing", "update")


def shift_to_epoch(values: pd.Series) -> tuple[pd.Series, pd.Timedelta]:
    """``values`` moved by the whole number of weeks that puts its first point in the week starting
    :data:`PAGES_EPOCH` (weekday and time of day kept), and the shift.

    >>> s = pd.Series([1.0, 2.0], index=pd.to_datetime(["2015-02-26 21:42", "2015-02-26 21:47"], utc=True))
    >>> moved, by = shift_to_epoch(s)
    >>> str(moved.index[0]), moved.index[0].day_name() == s.index[0].day_name(), by.days % 7
    ('2024-01-04 21:42:00+00:00', True, 0)
    """
    first = pd.Timestamp(values.index[0])
    weeks = int(np.ceil((PAGES_EPOCH - first) / pd.Timedelta(days=7)))
    shift = pd.Timedelta(days=7 * weeks)
    out = values.copy()
    out.index = pd.DatetimeIndex(values.index) + shift
    return out, shift


@dataclass
class Page:
    """One firing message: when, how severe, its subject and the labelled window its incident
    overlaps (None: outside every window)."""

    at: pd.Timestamp
    severity: str
    subject: str
    window: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "severity": self.severity,
            "subject": self.subject,
            "window": self.window,
        }


@dataclass
class FilePages:
    """One NAB file's replay: its (shifted) labelled windows, which of them could be told (ending after
    the warm-up) and were, its firing messages and the days it was watched after the warm-up."""

    name: str
    half: str
    shift: pd.Timedelta
    windows: list[tuple[pd.Timestamp, pd.Timestamp]]
    scorable: list[bool]
    told: list[bool]
    pages: list[Page] = field(default_factory=list)
    watched_days: float = 0.0

    @property
    def outside(self) -> list[Page]:
        return [p for p in self.pages if p.window is None]

    @property
    def windows_scored(self) -> int:
        """The labelled windows that could be told (ending after the warm-up)."""
        return sum(self.scorable)

    @property
    def windows_told(self) -> int:
        """Of those, the ones a message told."""
        return sum(s and t for s, t in zip(self.scorable, self.told, strict=True))

    @property
    def critical(self) -> int:
        return sum(p.severity == "critical" for p in self.pages)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.name,
            "half": self.half,
            "shift_days": self.shift.days,
            "windows": [
                {"start": a.isoformat(), "end": b.isoformat(), "scorable": s, "told": t}
                for (a, b), s, t in zip(self.windows, self.scorable, self.told, strict=True)
            ],
            "pages": [p.to_dict() for p in self.pages],
            "watched_days": round(self.watched_days, 3),
        }


@dataclass
class HalfPages:
    """The totals of one half (or of the whole corpus)."""

    half: str
    files: list[FilePages]

    @property
    def windows(self) -> int:
        return sum(f.windows_scored for f in self.files)

    @property
    def told(self) -> int:
        return sum(f.windows_told for f in self.files)

    @property
    def pages(self) -> int:
        return sum(len(f.pages) for f in self.files)

    @property
    def critical(self) -> int:
        return sum(f.critical for f in self.files)

    @property
    def outside(self) -> int:
        return sum(len(f.outside) for f in self.files)

    @property
    def series_weeks(self) -> float:
        return sum(f.watched_days for f in self.files) / 7.0

    def line(self) -> str:
        weeks = self.series_weeks
        rate = self.outside / weeks if weeks > 0 else 0.0
        name = "whole corpus" if self.half == "both" else f"{self.half} half"
        return (
            f"NAB pages {name} ({len(self.files)} file{'' if len(self.files) == 1 else 's'}): told {self.told}/{self.windows} windows, "
            f"{self.pages} pages ({self.critical} critical), {self.outside} outside the windows = "
            f"{rate:.2f} a series-week over {weeks:.0f} series-weeks"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "half": self.half,
            "files": len(self.files),
            "windows": self.windows,
            "told": self.told,
            "pages": self.pages,
            "critical": self.critical,
            "outside": self.outside,
            "series_weeks": round(self.series_weeks, 3),
        }


@dataclass
class PagesResult:
    every: timedelta
    files: list[FilePages]

    def halves(self) -> list[HalfPages]:
        present = sorted({f.half for f in self.files}, key=HALVES.index)
        out = [HalfPages(h, [f for f in self.files if f.half == h]) for h in present]
        if len(present) > 1:
            out.append(HalfPages("both", list(self.files)))
        return out

    def lines(self) -> list[str]:
        return [h.line() for h in self.halves()]

    def table(self) -> Table:
        table = Table(title=f"NAB through a monitor (ticks every {format_step(pd.Timedelta(self.every))})")
        for col in ("file", "half", "told", "pages", "critical", "outside", "days"):
            table.add_column(col, justify="left" if col in ("file", "half") else "right", overflow="fold")
        for f in self.files:
            table.add_row(
                f.name,
                f.half,
                f"{f.windows_told}/{f.windows_scored}",
                str(len(f.pages)),
                str(f.critical),
                str(len(f.outside)),
                f"{f.watched_days:.0f}",
            )
        return table

    def to_dict(self) -> dict[str, Any]:
        return {
            "every": format_step(pd.Timedelta(self.every)),
            "halves": [h.to_dict() for h in self.halves()],
            "files": [f.to_dict() for f in self.files],
        }


def replay_nab_file(
    nab_file: NabFile,
    *,
    every: timedelta = DEFAULT_EVERY,
    monitors_path: Path | None = None,
    messages_dir: Path | None = None,
) -> FilePages:
    """Replay one NAB file (shifted, see :func:`shift_to_epoch`) through the default monitor (or the
    monitors of ``monitors_path``, which should watch every stored metric) from its first point to
    an hour past its last, in a store of its own, and count what it would have sent."""
    from telewatch.monitors.config import TrainSpec
    from telewatch.services.replay import load_replay_monitors, replay, write_messages
    from telewatch.store import repo
    from telewatch.store.db import Store

    values, shift = shift_to_epoch(nab_file.values)
    stamps = pd.DatetimeIndex(values.index)
    metric = Path(nab_file.name).stem
    windows = [(stamps[a], stamps[b]) for a, b in nab_file.window_rows]  # inclusive rows
    # the replay keeps its scratch store (its many small commits) where it keeps it for `telewatch
    # replay`: in memory-backed /dev/shm where there is one
    with (
        tempfile.TemporaryDirectory(prefix="telewatch-nab-pages-") as tmp,
        Store(Path(tmp) / "live.duckdb") as live,
    ):
        with live.transaction(series=True) as tx:
            mid = repo.upsert_metric(tx, name=metric)
            repo.write_points(tx, mid, values)
        specs = (
            [m for m in load_replay_monitors(monitors_path).monitors if m.enabled]
            if monitors_path is not None
            else None
        )
        report = replay(
            live,
            start=stamps[0],
            end=stamps[-1] + pd.Timedelta(hours=1),
            monitors=specs,
            every=every,
            console=Console(quiet=True),
        )
    if report.errors:
        raise ValidationError(f"{nab_file.name}: the replay failed: {report.errors[0]}")
    if messages_dir is not None:
        write_messages(report, Path(messages_dir) / metric)
    warm_up = pd.Timedelta(specs[0].train.warm_up if specs else TrainSpec().warm_up)
    watched_from = stamps[0] + warm_up
    spans = {i.id: (i.start, i.end) for i in report.incidents}

    def windows_of(incident_id: int | None, at: pd.Timestamp) -> list[int]:
        """The labelled windows the message's incident overlaps (its own time when it has none)."""
        lo, hi = spans.get(incident_id, (at, at)) if incident_id is not None else (at, at)
        return [k for k, (a, b) in enumerate(windows) if lo <= b and hi >= a]

    told = [False] * len(windows)
    pages: list[Page] = []
    for m in report.messages:
        if m.kind not in TELLING:
            continue
        hit = windows_of(m.incident_id, m.at)
        for k in hit:
            told[k] = True
        if m.kind == "firing":
            pages.append(
                Page(at=m.at, severity=m.severity, subject=m.subject, window=hit[0] if hit else None)
            )
    return FilePages(
        name=nab_file.name,
        half=nab_half(nab_file.name),
        shift=shift,
        windows=windows,
        scorable=[b > watched_from for _a, b in windows],
        told=told,
        pages=pages,
        watched_days=max((stamps[-1] - watched_from) / pd.Timedelta(days=1), 0.0),
    )


def _replay_one(
    data_dir: str, name: str, every: timedelta, monitors_path: str | None, messages_dir: str | None
) -> FilePages:
    (nab_file,) = load_corpus(Path(data_dir), names=[name])
    return replay_nab_file(
        nab_file,
        every=every,
        monitors_path=Path(monitors_path) if monitors_path else None,
        messages_dir=Path(messages_dir) if messages_dir else None,
    )


def run_nab_pages(
    *,
    data_dir: Path,
    half: str = "tuning",
    names: Sequence[str] | None = None,
    every: timedelta = DEFAULT_EVERY,
    monitors_path: Path | None = None,
    workers: int | None = None,
    json_path: Path | None = None,
    messages_dir: Path | None = None,
    console: Console | None = None,
) -> PagesResult:
    """Replay the files of ``half`` (``tuning``, ``heldout`` or ``both``; ``names``: these files
    only) in ``workers`` processes (default: the CPUs) and count their pages."""
    if half not in HALVES:
        raise ValidationError(f"half must be one of {HALVES}, got {half!r}")
    if every <= timedelta(0):
        raise ValidationError("the tick interval must be positive")
    corpus = load_corpus(data_dir, names=list(names) if names else None)
    # named files are replayed whatever their half (each is counted in its own)
    chosen = [f.name for f in corpus if names or half == "both" or nab_half(f.name) == half]
    if not chosen:
        raise ValidationError(f"no NAB file in the {half} half")
    n_workers = max(1, min(workers or os.cpu_count() or 1, len(chosen)))
    done: dict[str, FilePages] = {}
    console = console or Console(stderr=True)
    with file_progress(console) as progress, ProcessPoolExecutor(n_workers) as pool:
        task = progress.add_task("replaying NAB files", total=len(chosen))
        futures = {
            pool.submit(
                _replay_one,
                str(data_dir),
                name,
                every,
                str(monitors_path) if monitors_path else None,
                str(messages_dir) if messages_dir else None,
            ): name
            for name in chosen
        }
        for fut in as_completed(futures):
            done[futures[fut]] = fut.result()
            progress.advance(task)
    result = PagesResult(every=every, files=[done[n] for n in chosen])
    if json_path is not None:
        write_json(Path(json_path), result.to_dict())
    return result
