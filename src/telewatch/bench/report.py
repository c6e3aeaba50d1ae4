"""Pictures and files of benchmark results, for a person to look at."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd


def plot_detection(
    path: Path,
    *,
    values: pd.Series,
    scores: pd.Series,
    threshold: float | None = None,
    windows: Sequence[tuple[pd.Timestamp, pd.Timestamp]] = (),
    detections: Sequence[pd.Timestamp] = (),
    title: str = "",
) -> Path:
    """Save a two-panel PNG: the values with labelled windows (shaded) and detections (red lines),
    and the score with its threshold. Returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (ax_v, ax_s) = plt.subplots(2, 1, figsize=(12, 5), sharex=True, height_ratios=[2, 1])
    ax_v.plot(values.index, values.to_numpy(), lw=0.7, color="#1f77b4")
    ax_s.plot(scores.index, scores.to_numpy(), lw=0.7, color="#555555")
    for start, end in windows:
        for ax in (ax_v, ax_s):
            ax.axvspan(start, end, color="#ffb347", alpha=0.35, lw=0)
    for ts in detections:
        ax_v.axvline(ts, color="#d62728", lw=0.9)
    if threshold is not None:
        ax_s.axhline(threshold, color="#d62728", ls="--", lw=0.9)
    ax_v.set_title(title, fontsize=10)
    ax_v.set_ylabel("value")
    ax_s.set_ylabel("score")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_json(path: Path, result: Any) -> Path:
    """Write a result (a dataclass or plain data) as indented JSON; timestamps become ISO strings."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = asdict(result) if is_dataclass(result) and not isinstance(result, type) else result
    path.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
    return path


def _json_default(obj: Any) -> Any:
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)
