"""The chart attached to an alert: the last hours, the expected band, the anomaly marked (PNG)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from telewatch.alerts.model import AlertCandidate

#: The chart shows at least this many readings, even when ``hours`` holds fewer: an hourly metric is
#: drawn over its last 3 days, not 6 points (a metric read every 5 minutes or more often: ``hours``)
CHART_POINTS = 72


def drawn(series: pd.Series, hours: float) -> pd.Series:
    """The readings of ``series`` a chart of ``hours`` draws (UTC, float): those of the last ``hours``
    before its latest, or its last ``CHART_POINTS`` when those are fewer.

    >>> hourly = pd.Series(1.0, index=pd.date_range("2026-03-01", periods=200, freq="1h"))
    >>> len(drawn(hourly, 6)), len(drawn(hourly.resample("1min").ffill(), 6))
    (72, 360)
    """
    index = pd.DatetimeIndex(series.index)
    if index.tz is None:
        index = index.tz_localize("UTC")
    out = pd.Series(series.to_numpy(dtype="float64"), index=index.tz_convert("UTC"))
    recent = out.index > out.index.max() - pd.Timedelta(hours=hours)
    if int(recent.sum()) < CHART_POINTS:
        recent = np.arange(len(out)) >= len(out) - CHART_POINTS
    return out[recent]


def render_chart(
    candidate: AlertCandidate, *, hours: float = 6.0, title: str | None = None, language: str = "en"
) -> bytes | None:
    """A PNG of ``candidate.series`` over the last ``hours`` (at least its last ``CHART_POINTS``
    readings) with its band, or None without a series.

    >>> from telewatch.alerts.sample import sample_candidate
    >>> render_chart(sample_candidate())[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    """
    series = candidate.series
    if series is None or series.dropna().empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    series = drawn(series, hours)
    words = _WORDS.get(language, _WORDS["en"])

    fig, ax = plt.subplots(figsize=(9, 3.4), dpi=100)
    try:
        x = pd.DatetimeIndex(series.index).tz_localize(None)
        if candidate.band is not None and not candidate.band.empty:
            band = candidate.band.copy()
            bindex = pd.DatetimeIndex(band.index)
            band.index = (bindex.tz_localize("UTC") if bindex.tz is None else bindex).tz_convert("UTC")
            band = band.reindex(series.index)
            bx = pd.DatetimeIndex(band.index).tz_localize(None)
            if {"lower", "upper"} <= set(band.columns):
                ax.fill_between(
                    bx,
                    band["lower"].to_numpy(dtype="float64"),
                    band["upper"].to_numpy(dtype="float64"),
                    color="#9ecae1",
                    alpha=0.45,
                    linewidth=0,
                    label=words["band"],
                )
            if "expected" in band.columns:
                ax.plot(
                    bx,
                    band["expected"].to_numpy(dtype="float64"),
                    color="#3182bd",
                    linewidth=1,
                    linestyle="--",
                    label=words["expected"],
                )
        gx, gy = _break_gaps(x, series.to_numpy())
        ax.plot(gx, gy, color="#222222", linewidth=1.2, label=words["value"])
        start = candidate.started_at.tz_convert("UTC").tz_localize(None)
        stop = candidate.last_seen.tz_convert("UTC").tz_localize(None)
        if stop <= start:
            stop = start + pd.Timedelta(minutes=1)
        ax.axvspan(start, stop, color="#e6550d", alpha=0.18, label=words["anomaly"])  # type: ignore[arg-type]
        ax.scatter([stop], [candidate.value], color="#d62728", zorder=5, s=28)  # type: ignore[arg-type]
        ax.set_title(title or candidate.metric, fontsize=10, loc="left")
        # a chart over more than a day (a metric read hourly) names the days
        span = series.index.max() - series.index.min()
        ax.xaxis.set_major_formatter(
            mdates.DateFormatter("%d.%m %H:%M" if span > pd.Timedelta(days=1) else "%H:%M")
        )
        ax.set_xlabel("UTC", fontsize=8)
        ax.grid(alpha=0.25)
        ax.tick_params(labelsize=8)
        # above the plot, right of the title: never over the line (a metric near its top, an APDEX);
        # in two rows, half as wide, beside a long title (a metric with its labels)
        heading = title or candidate.metric
        ax.legend(
            fontsize=7,
            loc="lower right",
            bbox_to_anchor=(1.0, 1.0),
            ncol=2 if len(heading) > 48 else 4,
            frameon=False,
            borderaxespad=0.1,
        )
        fig.subplots_adjust(left=0.06, right=0.99, top=0.9, bottom=0.16)  # tight_layout costs a re-draw
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()
    finally:
        plt.close(fig)


_WORDS = {
    "en": {"band": "expected band", "expected": "expected", "value": "value", "anomaly": "anomaly"},
    "ru": {"band": "ожидаемый диапазон", "expected": "ожидание", "value": "значение", "anomaly": "аномалия"},
}


def _break_gaps(x: pd.DatetimeIndex, y: np.ndarray) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """The points with a NaN inserted in every gap longer than twice the usual step, so the line
    breaks where no data came instead of drawing a slope nobody measured.

    >>> x = pd.DatetimeIndex(["2024-01-01 10:00", "2024-01-01 10:01", "2024-01-01 10:02", "2024-01-01 10:12"])
    >>> gx, gy = _break_gaps(x, np.array([1.0, 2.0, 3.0, 4.0]))
    >>> len(gx), bool(np.isnan(gy[3]))
    (5, True)
    """
    if len(x) < 3:
        return x, y
    steps = np.diff(x.asi8)
    usual = float(np.median(steps))
    gaps = np.flatnonzero(steps > 2 * usual)
    if usual <= 0 or gaps.size == 0:
        return x, y
    at = gaps + 1
    stamps = np.insert(x.to_numpy(), at, x.to_numpy()[gaps] + (x.to_numpy()[at] - x.to_numpy()[gaps]) // 2)
    return pd.DatetimeIndex(stamps), np.insert(np.asarray(y, dtype="float64"), at, np.nan)
