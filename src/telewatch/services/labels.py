"""Use-case: labelled anomaly windows (ground truth) — import, list."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from telewatch.core.errors import IngestError, NotFoundError, ValidationError
from telewatch.store import repo
from telewatch.store.db import Store

_REQUIRED = ("metric", "start", "end")


def import_label_csv(store: Store, path: Path, *, source: str = "user", timezone: str = "UTC") -> int:
    """Store the windows of a CSV ``metric,start,end[,kind][,note]``; all rows or none."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, UnicodeDecodeError) as exc:
        raise IngestError(f"not a readable CSV: {exc}", source=str(path)) from exc
    missing = [c for c in _REQUIRED if c not in frame.columns]
    if missing:
        raise IngestError(
            f"missing column(s) {', '.join(missing)}; expected metric,start,end[,kind][,note]",
            line=1,
            source=str(path),
        )
    cur = store.cursor()
    rows = []
    for i, rec in enumerate(frame.to_dict("records"), start=2):
        try:
            metric = repo.get_metric(cur, rec["metric"])
        except (NotFoundError, ValidationError) as exc:
            raise IngestError(str(exc), line=i, column="metric", source=str(path)) from exc
        bounds = []
        for col in ("start", "end"):
            try:
                ts = pd.Timestamp(rec[col])
                if ts is pd.NaT:
                    raise ValueError("empty")
            except (ValueError, TypeError) as exc:
                raise IngestError(
                    f"{rec[col]!r} is not a time", line=i, column=col, source=str(path)
                ) from exc
            bounds.append(
                ts.tz_localize(timezone).tz_convert("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
            )
        if bounds[1] < bounds[0]:
            raise IngestError("end is before start", line=i, column="end", source=str(path))
        rows.append(
            (metric.id, bounds[0], bounds[1], rec.get("kind") or "anomaly", source, rec.get("note") or None)
        )
    with store.transaction() as tx:
        repo.write_label_windows(tx, rows)
    return len(rows)


def list_labels(store: Store) -> pd.DataFrame:
    frame = repo.read_label_windows(store.cursor())
    names = {m.id: m.display_name for m in repo.list_metrics(store.cursor())}
    frame.insert(1, "metric", frame["metric_id"].map(names))
    return frame
