"""Forecast evaluation: accuracy and interval coverage by rolling-origin cross-validation, and the
lead time that predicted-breach warnings gain on slow-developing incidents.

* **Accuracy** on NAB series and the demo month: for each series, ``folds`` forecast origins spread
  over its second half (:func:`telewatch.bench.cv.rolling_origin_splits`, expanding windows: each
  origin sees only the past). The model is fitted at the first origin and refitted every
  ``refit_every`` origins; in between it forecasts from the newer history with the fitted parameters,
  as a monitor does. Reported per model:

  - **MASE**: mean absolute error of the ``horizon`` forecasts, scaled by the in-sample mean absolute
    error of the one-season-back naive forecast (Hyndman & Koehler 2006; season = one day when the
    series has two, else the previous value), averaged over folds;
  - **rel_mae**: total absolute error relative to the seasonal naive model's on the same points
    (below 1 = better than seasonal naive);
  - **coverage80/95**: share of actual values inside the 80 % and 95 % intervals.

* **Lead time** on planted slow incidents: demo memory leaks (memory above 90 %) and cooling failures
  (temperature above its normal peak + 3 °C) over several demo seeds, plus synthetic ramps up and down
  on a daily-seasonal series. The model is fitted an hour before the incident starts and checked every
  ``check_every`` minutes with a ``horizon`` forecast; the lead time is how long before the actual
  crossing (the first time its 5-minute rolling median is beyond the limit) the warning started and
  stayed on until the crossing. **False warnings**: the same
  checks every 30 minutes over clean days (seasonal peaks included) of the same series.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from telewatch.bench.cv import rolling_origin_splits
from telewatch.core.errors import ValidationError
from telewatch.core.series import infer_step
from telewatch.forecast import DEFAULT_LEVELS, create_forecaster, level_name
from telewatch.forecast.base import DAY, regularize, seasonal_steps
from telewatch.forecast.breach import check_breaches

DEFAULT_MODELS: tuple[str, ...] = ("seasonal_naive", "robust_seasonal", "ets")


@dataclass
class SeriesScore:
    """One model on one series: absolute errors and interval hits summed over the folds."""

    series: str
    model: str
    folds: int
    points: int
    abs_error: float
    naive_abs_error: float
    mase: float
    inside: dict[str, int]
    fit_seconds: float
    fold_errors: list[float] = field(default_factory=list)


@dataclass
class LeadTrial:
    """One planted slow incident: when it crossed its limit and when the warning started."""

    name: str
    model: str
    direction: str
    limit: float
    crossing: pd.Timestamp
    warned_at: pd.Timestamp | None
    lead_minutes: float  # 0 when no warning came before the crossing


@dataclass
class ModelResult:
    """The summary of one model over everything evaluated."""

    model: str
    mase: float
    rel_mae: float
    coverage: dict[str, float]
    series: int
    points: int
    lead_time_min: float | None
    warned: int
    trials: int
    false_warning_rate: float | None
    fit_seconds: float

    def summary_line(self) -> str:
        cov = " ".join(f"coverage{k}={v:.3f}" for k, v in self.coverage.items())
        lead = "nan" if self.lead_time_min is None else f"{self.lead_time_min:.0f}"
        fw = "nan" if self.false_warning_rate is None else f"{self.false_warning_rate:.3f}"
        return (
            f"FORECAST model={self.model} mase={self.mase:.3f} rel_mae={self.rel_mae:.3f} {cov}"
            f" lead_time_min={lead} warned={self.warned}/{self.trials} false_warnings={fw}"
        )


@dataclass
class ForecastBenchResult:
    models: list[ModelResult]
    scores: list[SeriesScore] = field(default_factory=list)
    trials: list[LeadTrial] = field(default_factory=list)
    horizon: str = "60min"
    levels: tuple[float, ...] = DEFAULT_LEVELS
    seconds: float = 0.0

    def summary_lines(self) -> list[str]:
        return [m.summary_line() for m in self.models]

    def table(self) -> Table:
        table = Table(title=f"forecast accuracy, horizon {self.horizon} (rolling origin)")
        for col in ("model", "MASE", "rel. MAE", *[f"cov {level_name(lv)}%" for lv in self.levels]):
            table.add_column(col, justify="right")
        for col in ("lead time (median min)", "warned", "false warnings", "series", "fit s"):
            table.add_column(col, justify="right")
        for m in self.models:
            table.add_row(
                m.model,
                f"{m.mase:.3f}",
                f"{m.rel_mae:.3f}",
                *[f"{v:.3f}" for v in m.coverage.values()],
                "–" if m.lead_time_min is None else f"{m.lead_time_min:.0f}",
                f"{m.warned}/{m.trials}",
                "–" if m.false_warning_rate is None else f"{m.false_warning_rate:.1%}",
                str(m.series),
                f"{m.fit_seconds:.1f}",
            )
        return table


# -- accuracy -------------------------------------------------------------------------------------
def _naive_scale(y: np.ndarray, season: int) -> float:
    """In-sample MAE of the one-season-back naive forecast (MASE's denominator)."""
    lag = season if y.size > 2 * season else 1
    d = np.abs(y[lag:] - y[:-lag])
    d = d[np.isfinite(d)]
    scale = float(d.mean()) if d.size else 0.0
    return scale if scale > 0 else 1.0


def evaluate_series(
    name: str,
    series: pd.Series,
    *,
    model: str,
    params: dict[str, Any] | None = None,
    horizon: str = "60min",
    folds: int = 8,
    refit_every: int = 4,
    levels: Sequence[float] = DEFAULT_LEVELS,
    naive_errors: list[float] | None = None,
) -> SeriesScore:
    """Rolling-origin evaluation of one model on one series (see the module docstring).

    ``naive_errors``: the seasonal naive model's absolute error per fold (same origins), to compare.
    """
    step = infer_step(pd.DatetimeIndex(series.index))
    if step is None:
        raise ValidationError(f"{name}: cannot tell the step")
    y = regularize(series, step)
    h = max(1, int(np.ceil(pd.Timedelta(horizon) / step)))
    n = len(y)
    spacing = max(h, (n // 2) // folds)
    splits = rolling_origin_splits(n, n_splits=folds, min_train=max(n - folds * spacing, 10), horizon=spacing)
    season = seasonal_steps(step, DAY) or 1
    values = y.to_numpy(dtype="float64")
    forecaster = None
    fit_seconds = 0.0
    abs_err, naive_err, mases = 0.0, 0.0, []
    inside = {level_name(lv): 0 for lv in levels}
    points = 0
    fold_errors: list[float] = []
    for k, (train, test) in enumerate(splits):
        history = y.iloc[train]
        if forecaster is None or k % refit_every == 0:
            started = time.perf_counter()
            forecaster = create_forecaster(model, **{"calibration_horizon": h, **(params or {})})
            forecaster.fit(history, step=step)
            fit_seconds += time.perf_counter() - started
        frame = forecaster.predict(h, levels=levels, history=history)
        truth = values[test.start : test.start + h]
        ok = np.isfinite(truth)
        if not ok.any():
            fold_errors.append(0.0)
            continue
        err = np.abs(frame["mean"].to_numpy()[ok] - truth[ok])
        abs_err += float(err.sum())
        fold_errors.append(float(err.sum()))
        if naive_errors is not None and k < len(naive_errors):
            naive_err += naive_errors[k]
        mases.append(float(err.mean()) / _naive_scale(values[train], season))
        points += int(ok.sum())
        for lv in levels:
            lo = frame[f"lower_{level_name(lv)}"].to_numpy()[ok]
            hi = frame[f"upper_{level_name(lv)}"].to_numpy()[ok]
            inside[level_name(lv)] += int(((truth[ok] >= lo) & (truth[ok] <= hi)).sum())
    return SeriesScore(
        series=name,
        model=model,
        folds=len(mases),
        points=points,
        abs_error=abs_err,
        naive_abs_error=naive_err,
        mase=float(np.mean(mases)) if mases else float("nan"),
        inside=inside,
        fit_seconds=fit_seconds,
        fold_errors=fold_errors,
    )


# -- lead time ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SlowIncident:
    """A series with a slow incident: the limit it crosses, from which onset, and clean check times."""

    name: str
    series: pd.Series
    onset: pd.Timestamp
    direction: str  # "upper" or "lower"
    limit: float
    clean_checks: tuple[pd.Timestamp, ...] = ()


def synthetic_ramps(n: int = 8, *, seed: int = 0, days: int = 10) -> list[SlowIncident]:
    """Daily-seasonal 1-minute series (peak 80, trough 20, noise sd 2) with a slow ramp planted on the
    last day: half rise through an upper limit of 90, half fall through a lower limit of 10, at a rate
    that reaches the limit within 2–4 hours of the onset. The day before holds the clean checks (peaks and troughs included)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        idx = pd.date_range("2024-03-04", periods=days * 1440, freq="1min", tz="UTC")
        t = np.arange(idx.size)
        base = 50 + 30 * np.sin(2 * np.pi * (t / 1440.0 - 0.25))
        noise = np.convolve(rng.normal(0, 2.0, idx.size), np.ones(3) / np.sqrt(3), mode="same")
        values = base + noise
        onset_pos = (days - 1) * 1440 + int(rng.integers(60, 900))
        up = i % 2 == 0
        # Reach the limit 2-4 hours after the onset (measured from the seasonal level at the onset).
        minutes = float(rng.uniform(120, 240))
        ahead = base[onset_pos : onset_pos + int(minutes) + 1]
        rate = (90.0 - ahead.min() if up else ahead.max() - 10.0) / minutes
        ramp = np.clip(t - onset_pos, 0, None) * rate
        values = values + (ramp if up else -ramp)
        series = pd.Series(values, index=idx, name=f"synthetic_{i}")
        clean_day = idx[(days - 2) * 1440 : (days - 1) * 1440]
        out.append(
            SlowIncident(
                name=f"synthetic_ramp_{i}_{'up' if up else 'down'}",
                series=series,
                onset=idx[onset_pos],
                direction="upper" if up else "lower",
                limit=90.0 if up else 10.0,
                clean_checks=tuple(clean_day[::30]),
            )
        )
    return out


def demo_slow_incidents(seeds: Sequence[int] = (7, 8, 9)) -> list[SlowIncident]:
    """The demo's memory leaks (limit 90 %) and cooling failures (limit: the normal peak + 3 °C)."""
    from telewatch.demo import generate_demo

    out = []
    for seed in seeds:
        data = generate_demo(seed=seed, days=30)
        frame = data.frame
        for inc in data.incidents:
            if inc.kind == "memory_leak":
                metric, limit = "memory_percent", 90.0
            elif inc.kind == "temperature_rise":
                metric = "temperature_c"
                before = frame[metric][: inc.start - pd.Timedelta(hours=1)]
                limit = float(np.nanquantile(before.to_numpy(), 0.999)) + 3.0
            else:
                continue
            series = frame[metric]
            # Clean checks: the three days before the incident, every 30 minutes.
            clean = series.index[
                (series.index >= inc.start - pd.Timedelta(days=3))
                & (series.index < inc.start - pd.Timedelta(hours=2))
            ]
            out.append(
                SlowIncident(
                    name=f"demo{seed}_{inc.kind}_{metric}",
                    series=series,
                    onset=inc.start,
                    direction="upper",
                    limit=limit,
                    clean_checks=tuple(clean[::30]),
                )
            )
    return out


def crossing_time(incident: SlowIncident) -> pd.Timestamp:
    """When the incident really crosses its limit: the first time the 5-minute rolling median is
    beyond it (one noisy point beyond the limit is not yet the breach an operator cares about)."""
    y = incident.series
    sign = 1.0 if incident.direction == "upper" else -1.0
    after = y[y.index >= incident.onset].rolling("5min").median()
    beyond = after[(sign * (after - incident.limit)) > 0]
    if beyond.empty:
        raise ValidationError(f"{incident.name}: the incident never crosses its limit {incident.limit}")
    return pd.Timestamp(beyond.index[0])


def lead_time_trial(
    incident: SlowIncident,
    *,
    model: str,
    params: dict[str, Any] | None = None,
    horizon: str = "60min",
    check_every: int = 5,
    min_probability: float = 0.5,
) -> tuple[LeadTrial, int, int]:
    """Check one slow incident; returns the trial, the clean checks run and the false warnings."""
    y = incident.series
    crossing = crossing_time(incident)
    fit_until = min(incident.onset - pd.Timedelta(hours=1), *(incident.clean_checks or (incident.onset,)))
    forecaster = create_forecaster(model, **(params or {})).fit(y[y.index <= fit_until])
    limits = {"upper": incident.limit} if incident.direction == "upper" else {"lower": incident.limit}

    def warns(at: pd.Timestamp) -> bool:
        history = y[y.index <= at]
        frame = forecaster.predict(horizon, history=history)
        check = check_breaches(
            frame,
            metric=incident.name,
            last_value=float(history.dropna().iloc[-1]),
            min_probability=min_probability,
            origin=at,
            **limits,  # type: ignore[arg-type]
        )
        return bool(check.breaches)

    checks = pd.date_range(
        crossing - pd.Timedelta(hours=3), crossing, freq=f"{check_every}min", inclusive="left"
    )
    checks = checks[checks >= fit_until]
    flags = [warns(t) for t in checks]
    warned_at = None
    for t, flag in zip(reversed(checks), reversed(flags), strict=True):
        if not flag:
            break
        warned_at = pd.Timestamp(t)
    lead = float((crossing - warned_at) / pd.Timedelta(minutes=1)) if warned_at is not None else 0.0
    false = sum(warns(t) for t in incident.clean_checks if t > fit_until - pd.Timedelta(days=4))
    clean_n = sum(1 for t in incident.clean_checks if t > fit_until - pd.Timedelta(days=4))
    trial = LeadTrial(
        name=incident.name,
        model=model,
        direction=incident.direction,
        limit=incident.limit,
        crossing=crossing,
        warned_at=warned_at,
        lead_minutes=lead,
    )
    return trial, clean_n, false


# -- the runner -----------------------------------------------------------------------------------
def forecast_corpus(
    *, nab_dir: Path | None, demo: bool = True, max_nab: int | None = None, demo_days: int = 30
) -> list[tuple[str, pd.Series]]:
    """The series evaluated: NAB's (``nab_dir``, all or the first ``max_nab``) and the demo month's."""
    out: list[tuple[str, pd.Series]] = []
    if nab_dir is not None:
        from telewatch.bench.nab import load_corpus

        files = load_corpus(nab_dir)
        if max_nab is not None:
            files = files[:max_nab]
        out += [(f"nab/{f.name}", f.values) for f in files if len(f.values) >= 500]
    if demo:
        from telewatch.demo import generate_demo

        data = generate_demo(days=demo_days)
        out += [(f"demo/{col}", data.frame[col]) for col in data.frame.columns]
    return out


def run_forecast_benchmark(
    *,
    nab_dir: Path | None,
    models: Sequence[str] = DEFAULT_MODELS,
    horizon: str = "60min",
    folds: int = 8,
    refit_every: int = 4,
    demo: bool = True,
    max_nab: int | None = None,
    lead_time: bool = True,
    demo_seeds: Sequence[int] = (7, 8, 9),
    synthetic: int = 8,
    min_probability: float = 0.5,
    plots_dir: Path | None = None,
    console: Console | None = None,
) -> ForecastBenchResult:
    """Evaluate ``models`` (seasonal naive always runs: it is the reference) and summarise per model."""
    started = time.perf_counter()
    console = console or Console(stderr=True)
    models = list(dict.fromkeys(["seasonal_naive", *models]))
    corpus = forecast_corpus(nab_dir=nab_dir, demo=demo, max_nab=max_nab)
    if not corpus and not lead_time:
        raise ValidationError("nothing to evaluate: no NAB directory and no demo data")
    incidents = (demo_slow_incidents(demo_seeds) + synthetic_ramps(synthetic)) if lead_time else []
    scores: list[SeriesScore] = []
    trials: list[LeadTrial] = []
    clean: dict[str, tuple[int, int]] = {}
    naive_by_series: dict[str, list[float]] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        for model in models:
            task = progress.add_task(f"{model}: accuracy", total=len(corpus))
            for name, series in corpus:
                score = evaluate_series(
                    name,
                    series,
                    model=model,
                    horizon=horizon,
                    folds=folds,
                    refit_every=refit_every,
                    naive_errors=naive_by_series.get(name),
                )
                if model == "seasonal_naive":
                    naive_by_series[name] = score.fold_errors
                    score.naive_abs_error = score.abs_error
                scores.append(score)
                progress.advance(task)
            task = progress.add_task(f"{model}: lead time", total=len(incidents))
            n_clean = n_false = 0
            for inc in incidents:
                trial, c, f = lead_time_trial(
                    inc, model=model, horizon=horizon, min_probability=min_probability
                )
                trials.append(trial)
                n_clean += c
                n_false += f
                progress.advance(task)
            clean[model] = (n_clean, n_false)
    results = []
    for model in models:
        mine = [s for s in scores if s.model == model]
        pts = sum(s.points for s in mine)
        coverage = {
            level_name(lv): (sum(s.inside[level_name(lv)] for s in mine) / pts if pts else float("nan"))
            for lv in DEFAULT_LEVELS
        }
        naive_total = sum(s.naive_abs_error for s in mine)
        my_trials = [t for t in trials if t.model == model]
        leads = [t.lead_minutes for t in my_trials]
        n_clean, n_false = clean.get(model, (0, 0))
        results.append(
            ModelResult(
                model=model,
                mase=float(np.nanmean([s.mase for s in mine])) if mine else float("nan"),
                rel_mae=(sum(s.abs_error for s in mine) / naive_total) if naive_total > 0 else float("nan"),
                coverage=coverage,
                series=len(mine),
                points=pts,
                lead_time_min=float(np.median(leads)) if leads else None,
                warned=sum(1 for t in my_trials if t.warned_at is not None),
                trials=len(my_trials),
                false_warning_rate=(n_false / n_clean) if n_clean else None,
                fit_seconds=sum(s.fit_seconds for s in mine),
            )
        )
    result = ForecastBenchResult(
        models=results, scores=scores, trials=trials, horizon=horizon, seconds=time.perf_counter() - started
    )
    if plots_dir is not None:
        plot_forecast_examples(plots_dir, corpus=corpus, models=models, horizon=horizon, incidents=incidents)
    return result


def plot_forecast_examples(
    plots_dir: Path,
    *,
    corpus: Sequence[tuple[str, pd.Series]],
    models: Sequence[str],
    horizon: str,
    incidents: Sequence[SlowIncident] = (),
) -> list[Path]:
    """One PNG per demo series (last 6 hours, each model's forecast from 1 hour before the end, with
    its 80 % interval) and one per slow incident (forecast from 30 minutes before the crossing)."""
    from telewatch.forecast.plot import plot_forecast

    paths = []
    for name, series in corpus:
        if not name.startswith("demo/"):
            continue
        cut = series.index[-1] - pd.Timedelta(hours=1)
        history = series[series.index <= cut]
        frames = {m: create_forecaster(m).fit(history).predict(horizon) for m in models}
        path = plots_dir / f"forecast-{name.replace('/', '_')}.png"
        paths.append(plot_forecast(path, history=history, forecasts=frames, actual=series, title=name))
    for inc in incidents[:4]:
        y = inc.series
        at = crossing_time(inc) - pd.Timedelta(minutes=30)
        model = create_forecaster("robust_seasonal").fit(y[y.index <= inc.onset - pd.Timedelta(hours=1)])
        history = y[y.index <= at]
        frame = model.predict(horizon, history=history)
        path = plots_dir / f"breach-{inc.name}.png"
        paths.append(
            plot_forecast(
                path,
                history=history,
                forecasts={"robust_seasonal": frame},
                actual=y,
                limit=inc.limit,
                title=f"{inc.name}: forecast 30 min before it crossed {inc.limit:.4g}",
            )
        )
    return paths
