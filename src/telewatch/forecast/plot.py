"""A forecast as a picture: recent history, each model's forecast with its interval, limits."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

_COLOURS = ("#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def plot_forecast(
    path: Path,
    *,
    history: pd.Series,
    forecasts: Mapping[str, pd.DataFrame],
    actual: pd.Series | None = None,
    limit: float | None = None,
    lower_limit: float | None = None,
    band: tuple[pd.Series, pd.Series] | None = None,
    show: pd.Timedelta = pd.Timedelta(hours=6),
    title: str = "",
) -> Path:
    """Save a PNG: the last ``show`` of ``history``, what really happened next (``actual``, grey), each
    forecast's mean with its widest interval shaded, and the limits as dashed lines. Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(11, 4))
    start = history.index[-1] - show if len(history) else None
    recent = history[history.index >= start] if start is not None else history
    ax.plot(recent.index, recent.to_numpy(), lw=0.8, color="#1f77b4", label="history")
    end = max((f.index[-1] for f in forecasts.values() if len(f)), default=None)
    if actual is not None and len(history) and end is not None:
        after = actual[(actual.index > history.index[-1]) & (actual.index <= end)]
        ax.plot(after.index, after.to_numpy(), lw=0.8, color="#7f7f7f", label="actual")
    for (name, frame), colour in zip(forecasts.items(), _COLOURS, strict=False):
        lowers = sorted((c for c in frame.columns if str(c).startswith("lower_")), key=lambda c: float(c[6:]))
        if lowers:
            widest = lowers[-1]
            upper = "upper_" + widest[len("lower_") :]
            ax.fill_between(frame.index, frame[widest], frame[upper], color=colour, alpha=0.15, lw=0)
        ax.plot(frame.index, frame["mean"], lw=1.2, color=colour, label=f"{name} forecast")
    if band is not None:
        ax.plot(band[0].index, band[0].to_numpy(), ls=":", color="#555555", lw=0.9, label="normal band")
        ax.plot(band[1].index, band[1].to_numpy(), ls=":", color="#555555", lw=0.9)
    for value, label in ((limit, "upper limit"), (lower_limit, "lower limit")):
        if value is not None:
            ax.axhline(value, color="#d62728", ls="--", lw=0.9, label=label)
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
