"""Window scan: rank metrics by how strongly they changed in a time window against a baseline.

Everything here works on a regular grid: a matrix ``values`` of metrics × time steps (NaN = missing),
the window as step positions ``[w0, w1)``. Evidence is computed for all metrics at once (numpy over
the metric axis), so one window over 10,000 metrics is a few matrix passes.

Two baselines, and a metric must have changed against **both** to rank high (the weaker evidence
counts), so a daily peak is not blamed on the incident that happened during it:

* ``preceding``: the ``baseline_factor`` × window length right before the window;
* ``same hours``: the same positions ``period`` steps (one day) earlier, for up to ``seasonal_days``
  earlier days that the data covers.

Evidence per metric and baseline, combined into one score:

* z of each window point against the baseline (median, and a scale that stays sane for spiky or
  constant series); the strength of the change is ``sqrt(mean |z| × max |z|)``;
* the two-sample Kolmogorov–Smirnov statistic ``D`` (distribution shift) and its asymptotic p-value;
* the relative change of the mean level ("volume"), reported in the reason;
* optionally, the metric's stored anomaly scores in the window, calibrated against the baseline's;
* optionally, lagged correlation with the anomalous metric (``target``): the lag of the strongest
  correlation says who moved first (positive ``lead_lag`` = this metric moved that many steps earlier).

>>> rng = np.random.default_rng(0)
>>> x = rng.normal(100.0, 1.0, size=(3, 600))
>>> x[1, 550:] -= 30.0  # metric 1 fell in the window
>>> ranked = rank_window(x, 550, 600, names=["a", "b", "c"], step=pd.Timedelta("1min"))
>>> ranked[0].name, ranked[0].direction
('b', 'down')
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import kolmogorov

from telewatch.core.errors import ValidationError

FloatArray = npt.NDArray[np.float64]
Direction = Literal["up", "down", "flat"]

__all__ = [
    "LEFT_OUT",
    "Evidence",
    "RankedMetric",
    "ScanConfig",
    "directions",
    "left_out_counts",
    "rank_evidence",
    "rank_window",
    "window_evidence",
]


@dataclass(frozen=True)
class ScanConfig:
    """How the baseline is chosen and how evidence is weighed.

    ``period`` is the seasonal period in steps (1440 = one day of 1-minute steps); ``None`` or 0 turns
    the same-hours baseline off. ``max_lag`` bounds the lead/lag search, in steps. The preceding
    baseline is at least ``min_preceding`` steps, however short the window.
    """

    baseline_factor: float = 4.0
    seasonal_days: int = 3
    period: int | None = 1440
    max_lag: int = 15
    shared_scale_floor: bool = False
    min_baseline: int = 5
    min_preceding: int = 30

    def __post_init__(self) -> None:
        if self.baseline_factor <= 0:
            raise ValidationError(f"baseline_factor must be positive, got {self.baseline_factor}")
        if self.seasonal_days < 0:
            raise ValidationError(f"seasonal_days must be >= 0, got {self.seasonal_days}")
        if self.max_lag < 0:
            raise ValidationError(f"max_lag must be >= 0, got {self.max_lag}")


@dataclass(frozen=True)
class Evidence:
    """Per-metric evidence arrays (length = metrics) for one window; see :func:`window_evidence`."""

    score: FloatArray
    z: FloatArray  # mean |robust z| over the window (capped), the binding baseline
    shift: FloatArray  # signed robust z of the window median vs the baseline median
    ks_d: FloatArray
    ks_p: FloatArray
    rel_change: FloatArray  # (mean_w - mean_b) / |mean_b|, NaN where the baseline mean is ~0
    score_excess: FloatArray  # calibrated stored anomaly score, NaN when none
    binding: npt.NDArray[np.int8]  # per metric: index into ``baselines`` of the weakest evidence
    baselines: tuple[str, ...]  # "preceding", then "history" and "same_hours" when used
    seasonal_days: int
    lead_lag: npt.NDArray[np.int64]  # steps this metric moved before the target (0 without target)
    corr: FloatArray  # correlation at that lag (NaN without target)
    # per metric: why it is left out of the ranking (:data:`LEFT_OUT`), 0 when it is ranked; None: none
    # is (evidence built by hand). A metric left out has score 0 and direction ``flat``.
    left_out: npt.NDArray[np.int8] | None = None


LEFT_OUT: dict[int, str] = {1: "no_data", 2: "no_baseline"}
"""Codes of :attr:`Evidence.left_out`: ``no_data``, no point in the window; ``no_baseline``, fewer than
``ScanConfig.min_baseline`` points in every baseline (nothing to compare the window with)."""


def left_out_counts(ev: Evidence) -> dict[str, int]:
    """How many metrics the ranking leaves out, by reason (``no_data``, ``no_baseline``).

    >>> x = np.random.default_rng(0).normal(10.0, 1.0, size=(3, 100))
    >>> x[1, 90:] = np.nan  # no data in the window
    >>> x[2, :90] = np.nan  # nothing before it
    >>> left_out_counts(window_evidence(x, 90, 100))
    {'no_data': 1, 'no_baseline': 1}
    """
    codes = ev.left_out if ev.left_out is not None else np.zeros(0, dtype=np.int8)
    return {name: int(np.count_nonzero(codes == code)) for code, name in LEFT_OUT.items()}


@dataclass(frozen=True)
class RankedMetric:
    """One metric of a ranking, most suspicious first."""

    rank: int
    index: int
    name: str
    score: float
    direction: Direction
    magnitude: float  # relative level change (0.62 = +62 %); robust z shift when the level is ~0
    magnitude_kind: Literal["relative", "z"]
    z: float
    ks_d: float
    ks_p: float
    lead_lag: int | None
    corr: float | None
    baseline: str
    reason: str
    extra: dict[str, float] = field(default_factory=dict)


# -- building blocks --------------------------------------------------------------------------------
def _row_quantiles(x: FloatArray, qs: Sequence[float], srt: FloatArray | None = None) -> FloatArray:
    """Quantiles per row ignoring NaN (linear interpolation, as numpy's default), one sort for all.

    ``np.nanquantile`` loops over rows in Python; this is one vectorised sort (``srt``: ``x``
    already sorted along its rows, when the caller has it).

    >>> _row_quantiles(np.array([[1.0, np.nan, 3.0, 2.0]]), [0.5, 1.0]).tolist()
    [[2.0], [3.0]]
    """
    if srt is None:
        srt = np.sort(x, axis=1)  # NaN last
    n = np.sum(~np.isnan(x), axis=1)
    out = np.full((len(qs), x.shape[0]), np.nan)
    rows = np.arange(x.shape[0])
    ok = n > 0
    for k, q in enumerate(qs):
        pos = q * np.maximum(n - 1, 0)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
        frac = pos - lo
        val = srt[rows, lo] * (1.0 - frac) + srt[rows, hi] * frac
        out[k] = np.where(ok, val, np.nan)
    return out


def _center_scale(
    base: FloatArray, shared_floor: bool = False, srt: FloatArray | None = None
) -> tuple[FloatArray, FloatArray]:
    """Median and scale per row: max(standard deviation, (q95 - q5) / 3.29), floored.

    The standard deviation keeps a spiky-but-normal series from looking anomalous at its usual
    spikes; the quantile spread keeps one huge outlier in the history from hiding everything. The
    floor (1 % of the row's typical absolute level, or with ``shared_floor`` a tenth of the median
    scale over all rows — right when the metrics share one unit, as normalised data does) keeps a
    series constant in the baseline finite.
    """
    with np.errstate(all="ignore"):
        q = _row_quantiles(base, [0.05, 0.5, 0.95], srt)
        med = q[1]
        std = np.nanstd(base, axis=1)
        spread = (q[2] - q[0]) / 3.29
        level = np.nanmean(np.abs(base), axis=1)
    scale = np.fmax(np.nan_to_num(std), np.nan_to_num(spread))
    if shared_floor:
        positive = scale[scale > 0]
        floor = np.full_like(scale, 0.1 * float(np.median(positive)) if positive.size else 1.0)
    else:
        floor = 0.01 * np.nan_to_num(level)
    return np.nan_to_num(med), np.maximum(scale, np.maximum(floor, 1e-9))


def ks_two_sample(a: FloatArray, b: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Row-wise two-sample Kolmogorov–Smirnov statistic ``D`` and asymptotic p-value (NaN ignored).

    >>> d, p = ks_two_sample(np.array([[1.0, 2.0, 3.0]]), np.array([[4.0, 5.0, 6.0, 7.0]]))
    >>> float(d[0])
    1.0
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return _ks_sorted(a, b, np.sort(a, axis=1), np.sort(b, axis=1))


def _ks_sorted(
    a: FloatArray, b: FloatArray, a_sorted: FloatArray, b_sorted: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """:func:`ks_two_sample` with both samples already sorted along their rows (NaN last)."""
    from telewatch.incidents._kernels import ks_statistic  # numba, compiled on first use

    n = np.sum(np.isfinite(a), axis=1).astype(np.float64)
    m = np.sum(np.isfinite(b), axis=1).astype(np.float64)
    # per row: both samples sorted, walked in merged order, |F_a - F_b| read after each run of ties
    d = np.empty(a.shape[0])
    ks_statistic(a_sorted, b_sorted, d)
    ok = (n > 0) & (m > 0)
    d = np.where(ok, d, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        en = np.sqrt(n * m / (n + m))
    p = np.where(ok, kolmogorov(np.nan_to_num((en + 0.12 + 0.11 / np.maximum(en, 1e-9)) * d)), 1.0)
    return d, np.clip(p, 0.0, 1.0)


def _baseline_blocks(
    w0: int, w1: int, n_time: int, config: ScanConfig, seasonal_at: Sequence[slice] | None = None
) -> tuple[slice, list[slice]]:
    length = w1 - w0
    start = max(0, w0 - max(round(config.baseline_factor * length), config.min_preceding))
    preceding = slice(start, w0)
    seasonal: list[slice] = []
    if seasonal_at is not None:
        for block in seasonal_at:
            lo, hi, _ = block.indices(n_time)
            if hi - lo != length:
                raise ValidationError(
                    f"a same-hours block {lo}..{hi} is not as long as the window ({length})"
                )
            seasonal.append(slice(lo, hi))
    elif config.period and config.period > length:
        for d in range(1, config.seasonal_days + 1):
            s0 = w0 - d * config.period
            if s0 < 0:
                break
            seasonal.append(slice(s0, s0 + length))
    return preceding, seasonal


def _one_baseline(
    win: FloatArray, base: FloatArray, shared_floor: bool, window: dict[str, FloatArray]
) -> dict[str, FloatArray]:
    """Evidence of the window ``win`` against one baseline ``base``; ``window``: what every
    baseline shares (the window sorted along its rows, its median and mean)."""
    base_sorted = np.sort(base, axis=1)  # NaN last; for the quantiles and the KS test alike
    med, scale = _center_scale(base, shared_floor, base_sorted)
    z = (win - med[:, None]) / scale[:, None]
    with np.errstate(all="ignore"):
        absz = np.abs(z)
        zmean = np.nan_to_num(np.nanmean(absz, axis=1))
        zmax = np.nan_to_num(np.nanmax(np.where(np.isnan(absz), -np.inf, absz), axis=1), neginf=0.0)
        shift = (window["median"] - med) / scale
        mean_b = np.nanmean(base, axis=1)
        mean_w = window["mean"]
        rel = np.where(np.abs(mean_b) > 1e-9 + 1e-3 * scale, (mean_w - mean_b) / np.abs(mean_b), np.nan)
    d, p = _ks_sorted(win, base, window["sorted"], base_sorted)
    # strength of the change: geometric mean of the mean and the peak |z| (a sustained shift and a
    # sharp spike both count; on SMD this beats either alone)
    evidence = np.sqrt(zmean * np.maximum(zmax, 0.0))
    return {
        "points": np.count_nonzero(~np.isnan(base), axis=1),
        "center": med,
        "scale": scale,
        "evidence": evidence,
        "z": zmean,
        "shift": np.nan_to_num(shift),
        "ks_d": d,
        "ks_p": p,
        "rel": rel,
    }


def _onsets(z: FloatArray, threshold: float = 3.5) -> npt.NDArray[np.int64]:
    """Per row, the first position of two consecutive ``|z| > threshold`` (-1 where none)."""
    exceed = np.abs(np.nan_to_num(z)) > threshold
    run = exceed[:, :-1] & exceed[:, 1:]
    first = np.argmax(run, axis=1)
    return np.where(run.any(axis=1), first, -1).astype(np.int64)


def _lead_lag(
    values: FloatArray,
    w0: int,
    w1: int,
    target: int,
    max_lag: int,
    center: FloatArray,
    scale: FloatArray,
) -> tuple[npt.NDArray[np.int64], FloatArray]:
    """Who moved first: steps each metric moved before the target (negative: after), and the
    correlation with the target at that lag.

    The lag is the difference of **onsets** (first two consecutive steps beyond 3.5 baseline z,
    searched from ``max_lag`` steps before the window) when both metrics have one within
    ``max_lag`` of each other; otherwise the lag in ``[-max_lag, max_lag]`` maximising
    ``|corr(x_i(t), target(t + lag))|`` (ties go to the smaller lag). Onsets decide first because two
    changes that end together correlate equally well at every lag up to their offset.
    """
    a0 = max(0, w0 - max_lag)
    seg = values[:, a0:w1]
    z = (seg - center[:, None]) / scale[:, None]
    onset = _onsets(z)
    wide = values[:, max(0, w0 - 2 * max_lag) : w1]
    with np.errstate(all="ignore"):
        mu = np.nanmean(wide, axis=1, keepdims=True)
        sd = np.nanstd(wide, axis=1, keepdims=True)
    zs = np.nan_to_num((wide - mu) / np.where(sd > 0, sd, np.inf))
    tgt = zs[target]
    n = zs.shape[1]
    lags = np.arange(-max_lag, max_lag + 1)
    # every lag in one matrix product: column k of ``shifted`` is the target moved by lags[k] (zero
    # outside the overlap), divided by the overlap's length — one BLAS call instead of one per lag
    shifted = np.zeros((n, lags.size))
    for k, lag in enumerate(lags):
        overlap = n - abs(int(lag))
        if overlap < 3:
            continue
        if lag >= 0:
            shifted[:overlap, k] = tgt[lag:] / overlap
        else:
            shifted[-lag:, k] = tgt[:overlap] / overlap
    corr = zs @ shifted
    best_abs = np.max(np.abs(corr), axis=1, keepdims=True)
    near = np.abs(corr) >= 0.98 * best_abs
    penalty = np.where(near, np.abs(lags)[None, :], 10**9)
    pick = np.argmin(penalty, axis=1)
    by_onset = onset[target] - onset
    use_onset = (onset >= 0) & (onset[target] >= 0) & (np.abs(by_onset) <= max_lag)
    lag = np.where(use_onset, by_onset, lags[pick])
    chosen = corr[np.arange(corr.shape[0]), lag + max_lag]
    return lag.astype(np.int64), chosen


def window_evidence(
    values: npt.ArrayLike,
    w0: int,
    w1: int,
    *,
    config: ScanConfig | None = None,
    target: int | None = None,
    scores: npt.ArrayLike | None = None,
    history: Sequence[slice] | None = None,
    seasonal: Sequence[slice] | None = None,
) -> Evidence:
    """Evidence for every metric (rows of ``values``) in the window ``[w0, w1)``.

    ``history`` adds a third baseline (e.g. all history before the window, or a training period). ``scores`` (same shape as ``values``):
    stored anomaly scores, calibrated here against their own baseline rows.

    ``seasonal``: where the same-hours blocks are, most recent day first, each as long as the window —
    for a compact matrix that holds only the columns the scan reads (the window, the preceding period
    and the same hours of earlier days side by side, as :func:`telewatch.services.explain.explain_window`
    builds it). By default they are ``config.period`` steps apart before the window.
    """
    with warnings.catch_warnings():
        # all-NaN rows (a metric without data in a baseline) are expected: they give NaN, then 0
        warnings.simplefilter("ignore", RuntimeWarning)
        return _window_evidence(values, w0, w1, config, target, scores, history, seasonal)


def _window_evidence(
    values: npt.ArrayLike,
    w0: int,
    w1: int,
    config: ScanConfig | None,
    target: int | None,
    scores: npt.ArrayLike | None,
    history: Sequence[slice] | None,
    seasonal_at: Sequence[slice] | None = None,
) -> Evidence:
    cfg = config or ScanConfig()
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 2:
        raise ValidationError(f"values must be a 2-D matrix (metrics × time), got shape {x.shape}")
    n_metrics, n_time = x.shape
    if not 0 <= w0 < w1 <= n_time:
        raise ValidationError(f"window [{w0}, {w1}) is not inside 0..{n_time}")
    if target is not None and not 0 <= target < n_metrics:
        raise ValidationError(f"target row {target} is not one of the {n_metrics} metrics")
    preceding, seasonal = _baseline_blocks(w0, w1, n_time, cfg, seasonal_at)
    steps = np.arange(n_time)
    blocks: list[tuple[str, npt.NDArray[np.intp]]] = [("preceding", steps[preceding])]
    if history is not None:
        blocks.append(("history", np.concatenate([steps[s] for s in history])))
    if seasonal:
        blocks.append(("same_hours", np.concatenate([steps[s] for s in seasonal])))
    if blocks[0][1].size < cfg.min_baseline:
        raise ValidationError(
            f"the baseline before the window has {blocks[0][1].size} steps; at least {cfg.min_baseline} are needed"
        )
    win = x[:, w0:w1]
    win_sorted = np.sort(win, axis=1)
    with np.errstate(all="ignore"):
        shared = {
            "sorted": win_sorted,
            "median": _row_quantiles(win, [0.5], win_sorted)[0],
            "mean": np.nanmean(win, axis=1),
        }
    results = [_one_baseline(win, x[:, idx], cfg.shared_scale_floor, shared) for _, idx in blocks]
    ev_stack = np.stack([r["evidence"] for r in results])
    # A metric must have changed against every baseline. Preceding period and history: geometric
    # mean (a soft minimum; on SMD it ranks better than the hard one). The same hours of earlier
    # days: a hard minimum, so a daily peak (large vs the preceding hours, nothing vs the same hours
    # yesterday) is not blamed.
    plain = [k for k, (name, _) in enumerate(blocks) if name != "same_hours"]
    score = np.exp(np.mean(np.log(ev_stack[plain] + 1e-6), axis=0))
    if seasonal:
        score = np.minimum(score, ev_stack[-1])
    # the reason quotes the baseline against which the change was weakest (the conservative one)
    binding = np.argmin(ev_stack, axis=0).astype(np.int8)
    pick = np.arange(n_metrics)

    def sel(key: str) -> FloatArray:
        return np.asarray(np.stack([r[key] for r in results])[binding, pick])

    excess = np.full(n_metrics, np.nan)
    if scores is not None:
        sc = np.asarray(scores, dtype=np.float64)
        if sc.shape != x.shape:
            raise ValidationError(f"scores shape {sc.shape} differs from values shape {x.shape}")
        base = sc[:, blocks[0][1]]
        med, scale = _center_scale(base)
        with np.errstate(all="ignore"):
            excess = np.nanmean((sc[:, w0:w1] - med[:, None]) / scale[:, None], axis=1)
        # a metric with fewer than min_baseline stored scores before the window (a monitor that
        # started scoring it just now) has nothing to calibrate them against: no evidence from them,
        # rather than its scores divided by the 1e-9 floor of an empty baseline
        excess[np.count_nonzero(base == base, axis=1) < cfg.min_baseline] = np.nan
        # stored scores add evidence, never remove it, and never more than +10 (a detector whose
        # scores are flat in the baseline would otherwise swamp the scan)
        score = score + 0.5 * np.sqrt(np.clip(np.nan_to_num(excess), 0.0, 400.0))
    lead = np.zeros(n_metrics, dtype=np.int64)
    corr = np.full(n_metrics, np.nan)
    if target is not None and cfg.max_lag >= 0:
        # the preceding baseline's center and scale, as computed for its evidence
        center, scale = results[0]["center"], results[0]["scale"]
        lead, corr = _lead_lag(x, w0, w1, target, cfg.max_lag, center, scale)
        score = score * (1.0 + 0.5 * np.abs(np.nan_to_num(corr)))
    # Left out of the ranking: a metric without a point in the window (nothing changed: it was not
    # there), and one with fewer than min_baseline points in every baseline (a metric that just
    # started: its scale would be the 1e-9 floor, its "change" millions of sd). Score 0, so that
    # they neither rank nor raise the bar (involvement cut) for the others.
    window_points = np.count_nonzero(~np.isnan(win), axis=1)
    baseline_points = np.max(np.stack([r["points"] for r in results]), axis=0)
    left_out = np.where(window_points == 0, 1, np.where(baseline_points < cfg.min_baseline, 2, 0)).astype(
        np.int8
    )
    score = np.where(left_out == 0, np.nan_to_num(score), 0.0)
    return Evidence(
        score=score,
        z=sel("z"),
        shift=sel("shift"),
        ks_d=sel("ks_d"),
        ks_p=sel("ks_p"),
        rel_change=sel("rel"),
        score_excess=excess,
        binding=binding,
        baselines=tuple(name for name, _ in blocks),
        seasonal_days=len(seasonal),
        lead_lag=lead,
        corr=corr,
        left_out=left_out,
    )


# -- ranking with reasons ---------------------------------------------------------------------------
def _fmt_duration(steps: int, step: pd.Timedelta | None) -> str:
    if step is None:
        return f"{steps} step{'s' if steps != 1 else ''}"
    td = steps * step
    minutes = td.total_seconds() / 60.0
    if minutes < 1:
        return f"{int(td.total_seconds())} s"
    if minutes < 120:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:.1f} h"


def _fmt_pct(rel: float) -> str:
    """A relative change as a percentage without its sign, never rounded to a misleading 0.

    >>> _fmt_pct(0.626), _fmt_pct(0.0042), _fmt_pct(-0.0004)
    ('63%', '0.4%', '<0.1%')
    """
    pct = abs(rel) * 100
    if pct >= 0.995:
        return f"{pct:.0f}%"
    return f"{pct:.1f}%" if pct >= 0.05 else "<0.1%"


def _fmt_p(p: float) -> str:
    if p < 1e-6:
        return "p<1e-6"
    if p < 0.001:
        return f"p={p:.0e}"
    return f"p={p:.3f}"


def rank_window(
    values: npt.ArrayLike,
    w0: int,
    w1: int,
    *,
    names: Sequence[str],
    step: pd.Timedelta | None = None,
    config: ScanConfig | None = None,
    target: int | None = None,
    scores: npt.ArrayLike | None = None,
    history: Sequence[slice] | None = None,
    limit: int | None = None,
    seasonal: Sequence[slice] | None = None,
    keep: Callable[[Evidence], npt.ArrayLike] | None = None,
) -> list[RankedMetric]:
    """Rank the metrics (rows of ``values``) by their combined evidence, with a one-line reason each.

    ``seasonal``: explicit same-hours blocks, see :func:`window_evidence`. ``limit``: return the first
    ``limit`` metrics (all when None). ``keep``: given the evidence, a boolean mask over the metrics
    to return as well, beyond the first ``limit`` — their ``rank`` is still their position in the
    whole order, and only the returned rows are formatted (a caller that needs the top ten and a few
    more of 10,000 metrics pays for those only).

    >>> x = np.random.default_rng(1).normal(10.0, 1.0, size=(5, 300))
    >>> x[3, 280:] += 9.0
    >>> x[0, 280:] -= 4.0
    >>> [(r.rank, r.name) for r in rank_window(x, 280, 300, names=list("abcde"), limit=1,
    ...                                        keep=lambda ev: ev.score > 2.0)]
    [(1, 'd'), (2, 'a')]
    """
    cfg = config or ScanConfig()
    x = np.asarray(values, dtype=np.float64)
    if len(names) != x.shape[0]:
        raise ValidationError(f"{len(names)} names for {x.shape[0]} metrics")
    ev = window_evidence(
        x, w0, w1, config=cfg, target=target, scores=scores, history=history, seasonal=seasonal
    )
    return rank_evidence(ev, names=names, step=step, target=target, limit=limit, keep=keep)


def rank_evidence(
    ev: Evidence,
    *,
    names: Sequence[str],
    step: pd.Timedelta | None = None,
    target: int | None = None,
    limit: int | None = None,
    keep: Callable[[Evidence], npt.ArrayLike] | None = None,
) -> list[RankedMetric]:
    """The ranking of :func:`rank_window` from evidence already computed (``target``: the row the
    evidence's lead/lag was measured against). Metrics the evidence leaves out (``left_out``: no
    data in the window, or too little before it) get no row and no rank; see :func:`left_out_counts`."""
    if len(names) != ev.score.size:
        raise ValidationError(f"{len(names)} names for {ev.score.size} metrics")
    order = np.argsort(-ev.score, kind="stable")
    if ev.left_out is not None:  # no data in the window, or none before it: not ranked at all
        order = order[ev.left_out[order] == 0]
    ranks = np.arange(1, order.size + 1)
    if limit is not None:
        chosen = np.zeros(order.size, dtype=bool)
        if keep is not None:
            mask = np.asarray(keep(ev), dtype=bool)
            if mask.shape != ev.score.shape:
                raise ValidationError(f"keep gave a mask of shape {mask.shape} for {ev.score.size} metrics")
            chosen = mask[order]
        chosen[:limit] = True
        order, ranks = order[chosen], ranks[chosen]
    return _ranked_rows(ev, order, ranks, names=names, step=step, target=target)


def _direction_parts(
    shift: FloatArray, rel: FloatArray, z: FloatArray
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """(relative change known, flat, up) per row: a metric is flat when its mean |z| and its median
    shift are both under 0.5; otherwise the median shift gives the direction when it is clear
    (|shift| >= 0.5), else the change of the mean level (the shift where that is unknown)."""
    rel_ok = np.isfinite(rel)
    with np.errstate(invalid="ignore"):
        sign = np.where(np.abs(shift) >= 0.5, shift, np.where(rel_ok, rel, shift))
        flat = (z < 0.5) & (np.abs(shift) < 0.5)
        up = sign > 0
    return rel_ok, flat, up


def directions(ev: Evidence) -> npt.NDArray[np.str_]:
    """Every metric's direction (``up``, ``down``, ``flat``) as :func:`rank_window` reports it,
    without formatting its row.

    >>> x = np.random.default_rng(2).normal(10.0, 1.0, size=(3, 300))
    >>> x[0] = 10.0  # constant
    >>> x[1, 280:] += 9.0
    >>> x[2, 280:] -= 9.0
    >>> directions(window_evidence(x, 280, 300)).tolist()
    ['flat', 'up', 'down']
    """
    _, flat, up = _direction_parts(ev.shift, ev.rel_change, ev.z)
    if ev.left_out is not None:
        flat = flat | (ev.left_out != 0)  # not ranked: it did not move as far as the scan can tell
    return np.where(flat, "flat", np.where(up, "up", "down"))


def _ranked_rows(
    ev: Evidence,
    rows: npt.NDArray[np.intp],
    ranks: npt.NDArray[np.int64],
    *,
    names: Sequence[str],
    step: pd.Timedelta | None,
    target: int | None,
) -> list[RankedMetric]:
    """:class:`RankedMetric` of ``rows`` (metric positions, in rank order) with their ``ranks``.

    Direction and magnitude are computed for the rows at once; the loop only formats the reason
    from plain Python numbers (``tolist``), which is what a row costs."""
    shift_a, rel_a, z_a = ev.shift[rows], ev.rel_change[rows], ev.z[rows]
    rel_ok_a, flat_a, up_a = _direction_parts(shift_a, rel_a, z_a)
    # The wording and ``magnitude`` follow the direction: the relative change of the mean is quoted
    # when it agrees with the direction (the median shift decides it when clear, and a mean pulled
    # by a few outliers can disagree) and is not ~0; otherwise the median shift in sd. A flat metric
    # keeps its relative change as magnitude, and its wording says it is within the usual variation.
    with np.errstate(invalid="ignore"):
        rel_agrees_a = rel_ok_a & ((rel_a > 0) == up_a) & (rel_a != 0)
        tiny_rel_a = np.abs(rel_a) < 0.005
    use_rel_a = np.where(flat_a, rel_ok_a, rel_agrees_a & ~((np.abs(shift_a) >= 0.5) & tiny_rel_a))
    magnitude_a = np.nan_to_num(np.where(use_rel_a, rel_a, shift_a))
    excess_a = ev.score_excess[rows]
    excess_ok_a = np.isfinite(excess_a)
    days = ev.seasonal_days
    against_by_baseline = [
        "vs its history"
        if b == "history"
        else (
            f"vs the same hours of the previous {days} day{'s' if days != 1 else ''}"
            if b == "same_hours"
            else "vs the preceding period"
        )
        for b in ev.baselines
    ]
    target_name = names[target] if target is not None else None
    if target is not None:
        corr_a = ev.corr[rows]
        # a metric that did not move has no lead or lag: none is reported (nor "moved ... before")
        lead_l: list[int | None] = [
            None if flat else lead
            for lead, flat in zip(
                ev.lead_lag[rows].tolist(), (flat_a & (rows != target)).tolist(), strict=True
            )
        ]
        corr_l: list[float | None] = corr_a.tolist()
        moved_l = (np.isfinite(corr_a) & (np.abs(corr_a) >= 0.3) & (rows != target) & ~flat_a).tolist()
    else:
        lead_l, corr_l = [None] * rows.size, [None] * rows.size
        moved_l = [False] * rows.size
    out: list[RankedMetric] = []
    for (
        rank,
        i,
        shift,
        rel,
        rel_ok,
        use_rel,
        z,
        flat,
        up,
        magnitude,
        binding,
        score,
        ks_d,
        ks_p,
        lead,
        corr,
        moved,
        excess,
        excess_ok,
    ) in zip(
        ranks.tolist(),
        rows.tolist(),
        shift_a.tolist(),
        rel_a.tolist(),
        rel_ok_a.tolist(),
        use_rel_a.tolist(),
        z_a.tolist(),
        flat_a.tolist(),
        up_a.tolist(),
        magnitude_a.tolist(),
        ev.binding[rows].tolist(),
        ev.score[rows].tolist(),
        ev.ks_d[rows].tolist(),
        ev.ks_p[rows].tolist(),
        lead_l,
        corr_l,
        moved_l,
        excess_a.tolist(),
        excess_ok_a.tolist(),
        strict=True,
    ):
        direction: Direction = "flat" if flat else ("up" if up else "down")
        if flat:
            change = "barely changed"
            if rel_ok and abs(rel) >= 0.005:  # the mean moved, but within the usual variation
                change += f" (mean {'+' if rel > 0 else '-'}{_fmt_pct(rel)}, within its usual variation)"
        elif use_rel:
            change = f"{'rose' if up else 'fell'} {_fmt_pct(rel)}"
        else:
            change = f"{'rose' if up else 'fell'} by {abs(shift):.1f} sd"
            if rel_ok and abs(rel) >= 0.005 and (rel > 0) != up:
                change += f" (median; its mean {'+' if rel > 0 else '-'}{_fmt_pct(rel)})"
        name = names[i]
        reason = f"{name} {change} {against_by_baseline[binding]} (KS {_fmt_p(ks_p)}, mean |z| {z:.1f})"
        if moved:
            assert lead is not None
            if lead > 0:
                reason += f", moved {_fmt_duration(lead, step)} before {target_name}"
            elif lead < 0:
                reason += f", moved {_fmt_duration(-lead, step)} after {target_name}"
            else:
                reason += f", moved with {target_name}"
        out.append(
            RankedMetric(
                rank=rank,
                index=i,
                name=name,
                score=score,
                direction=direction,
                magnitude=magnitude,
                magnitude_kind="relative" if use_rel else "z",
                z=z,
                ks_d=ks_d,
                ks_p=ks_p,
                lead_lag=lead,
                corr=corr,
                baseline=ev.baselines[binding],
                reason=reason,
                extra={"score_excess": excess} if excess_ok else {},
            )
        )
    return out
