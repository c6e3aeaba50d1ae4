"""Ad-hoc detection in one call, detector catalogue, decomposition, window ranking, overview."""

from __future__ import annotations

import inspect
from datetime import datetime
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from telewatch.api.deps import SettingsDep, StoreDep
from telewatch.api.routers.metrics import metric_public
from telewatch.api.schemas import ErrorPublic, MetricPublic
from telewatch.core.errors import ConfigError, ValidationError
from telewatch.detectors import available_detectors
from telewatch.services import adhoc, catalog, detection, overview

router = APIRouter(prefix="/api", tags=["detection"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorPublic, "description": "Bad parameters"},
    404: {"model": ErrorPublic, "description": "No such metric"},
    422: {"model": ErrorPublic, "description": "Malformed request"},
}


class Points(BaseModel):
    """A series as two arrays: timestamps (epoch ms, or ISO 8601 text) and values (null = missing)."""

    t: list[int | float | str]
    v: list[float | None]


class DetectorRequest(BaseModel):
    name: str = Field(
        description="A registered detector type, see GET /api/detectors.", examples=["robust_bands"]
    )
    params: dict[str, Any] = Field(default_factory=dict, description='Hyper-parameters, e.g. {"window": 60}.')


class DetectRequest(BaseModel):
    """What to score: a stored ``metric`` (optionally in [from, to) at a step), or ``data``."""

    metric: str | None = Field(default=None, description="Stored metric id or name.")
    labels: str | None = Field(
        default=None, description="Slice selector key=value,... when the name has several."
    )
    data: Points | None = Field(default=None, description="Values to score instead of a stored metric.")
    from_: str | None = Field(default=None, alias="from", description="Start (ISO 8601; naive = UTC).")
    to: str | None = Field(default=None, description="End, exclusive.")
    step: str | None = Field(default=None, description="Resample the stored series to this step first.")
    detectors: list[DetectorRequest] = Field(min_length=1, max_length=10)
    threshold: float | None = Field(
        default=None,
        description="Score at or above which a point is anomalous (default 5 calibrated, 8 raw).",
    )
    calibrate: bool = Field(
        default=False,
        description="Calibrate raw scores to a z learned from the training part, as stored detection does"
        " (use with train_share < 1: an anomaly inside the training part calibrates itself away).",
    )
    min_points: int = Field(default=1, ge=1, description="Shortest run of anomalous points that counts.")
    merge_gap: int = Field(default=5, ge=0, description="Runs closer than this many points are one.")
    train_share: float | None = Field(default=None, gt=0, le=1, description="Fit on this leading share.")
    max_points: int = Field(default=4000, ge=10, le=200_000, description="Most points returned per curve.")
    band: bool = Field(default=True, description="Also return the expected band.")
    band_window: int = Field(default=288, ge=2, le=100_000)

    model_config = {"populate_by_name": True}


class AnomalyOut(BaseModel):
    start: datetime
    end: datetime
    peak: datetime
    peak_score: float
    value: float | None


class DetectorResultOut(BaseModel):
    detector: str
    params: dict[str, Any]
    seconds: float
    error: str | None = Field(description="Why this detector failed (the others still ran).")
    scores: Points = Field(description="Scores, max per bucket when downsampled.")
    anomalies: list[AnomalyOut]


class BandOut(BaseModel):
    t: list[int]
    lower: list[float | None]
    upper: list[float | None]
    expected: list[float | None]


class DetectResponse(BaseModel):
    metric: MetricPublic | None
    points: int
    threshold: float
    series: Points
    band: BandOut | None
    results: list[DetectorResultOut]


class DetectorInfo(BaseModel):
    name: str
    doc: str
    params: dict[str, Any] = Field(description="Hyper-parameters and their defaults.")


class DecompositionOut(BaseModel):
    metric: MetricPublic
    step_seconds: int
    t: list[int]
    observed: list[float | None]
    trend: list[float | None]
    daily: list[float | None] | None
    weekly: list[float | None] | None
    residual: list[float | None]


class RankedMetric(BaseModel):
    metric: MetricPublic
    score: float
    reason: str


class ScanRequest(BaseModel):
    from_: str = Field(alias="from", description="Window start (ISO 8601).")
    to: str = Field(description="Window end, exclusive.")
    group: str | None = Field(default=None, description="Only metrics of this group.")
    metrics: list[Annotated[int, Field(ge=1, le=2_147_483_647)]] | None = Field(
        default=None, max_length=10_000, description="Only these metric ids (404 naming any unknown one)."
    )
    limit: int = Field(default=50, ge=1, le=1000)

    model_config = {"populate_by_name": True}


class ScanResponse(BaseModel):
    start: datetime
    end: datetime
    items: list[RankedMetric]
    total: int


class MetricSummaryOut(BaseModel):
    metric: MetricPublic
    spark: list[float | None]
    anomalies: int
    anomaly_rate: float
    last_anomaly: datetime | None
    state: Literal["anomalous", "ok", "no data", "stale", "not scored"]
    silent_minutes: int | None = None  # minutes since the last point, when unusually long


class OverviewPage(BaseModel):
    items: list[MetricSummaryOut]
    total: int
    limit: int
    offset: int
    groups: list[str]


def _ms(index: pd.Index) -> list[int]:
    return [int(x) for x in pd.DatetimeIndex(index).as_unit("ms").asi8] if len(index) else []


def _vals(values: Any) -> list[float | None]:
    arr = np.asarray(values, dtype="float64")
    return [None if not np.isfinite(x) else float(x) for x in arr]


@router.get("/detectors", response_model=list[DetectorInfo])
def list_detectors() -> list[DetectorInfo]:
    """Registered detector types with their hyper-parameters and defaults."""
    out = []
    for name, cls in available_detectors().items():
        params = {}
        for p in list(inspect.signature(cls.__init__).parameters.values())[1:]:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            default = None if p.default is inspect.Parameter.empty else p.default
            if isinstance(default, tuple | list):
                default = list(default)
            elif not isinstance(default, int | float | str | bool | None):
                default = repr(default)
            params[p.name] = default
        doc = (inspect.getdoc(cls) or "").split("\n\n")[0]
        out.append(DetectorInfo(name=name, doc=doc, params=params))
    return out


@router.post("/detect", response_model=DetectResponse, responses=_ERRORS)
def detect(body: DetectRequest, store: StoreDep) -> DetectResponse:
    """Run detectors on one series and return scores and anomalies per detector. Nothing is stored.

    Score a stored metric (``metric``, optionally ``from``/``to``/``step``) or the points in ``data``."""
    values = None
    if body.data is not None:
        if body.metric is not None:
            raise ValidationError("give either metric or data, not both")
        values = adhoc.series_from_values(body.data.t, body.data.v)
    start = catalog.parse_time(body.from_, what="from")
    end = catalog.parse_time(body.to, what="to")
    if start is not None and end is not None and end <= start:
        raise ValidationError("the window is empty: to is not after from")
    result = adhoc.detect_adhoc(
        store,
        detectors=[adhoc.DetectorSpec(d.name, d.params) for d in body.detectors],
        metric=body.metric,
        labels=catalog.parse_selector(body.labels),
        values=values,
        start=start,
        end=end,
        step=catalog.parse_step(body.step),
        threshold=body.threshold,
        min_points=body.min_points,
        merge_gap=body.merge_gap,
        train_share=body.train_share,
        calibrate=body.calibrate,
    )
    shown = adhoc.downsample(result.series, max_points=body.max_points)
    band = None
    if body.band:
        # the band of the first detector that knows its expected value, else a rolling robust band
        known = next((r.band for r in result.results if r.band is not None), None)
        frame = (
            known if known is not None else adhoc.expected_band(result.series, window=body.band_window, k=4.0)
        )
        if len(frame) > body.max_points:
            span = (frame.index[-1] - frame.index[0]).total_seconds()
            bucket = pd.Timedelta(seconds=max(1, int(np.ceil(span / body.max_points))))
            frame = frame.resample(bucket).mean().dropna(how="all")
        band = BandOut(
            t=_ms(frame.index),
            lower=_vals(frame["lower"]),
            upper=_vals(frame["upper"]),
            expected=_vals(frame["expected"]),
        )
    results = []
    for r in result.results:
        scores = adhoc.downsample(r.scores.dropna(), max_points=body.max_points, how="max")
        results.append(
            DetectorResultOut(
                detector=r.detector,
                params=r.params,
                seconds=round(r.seconds, 4),
                error=r.error,
                scores=Points(t=list(_ms(scores.index)), v=_vals(scores)),
                anomalies=[
                    AnomalyOut(
                        start=a.start.to_pydatetime(),
                        end=a.end.to_pydatetime(),
                        peak=a.peak.to_pydatetime(),
                        peak_score=a.peak_score,
                        value=a.value,
                    )
                    for a in r.anomalies
                ],
            )
        )
    return DetectResponse(
        metric=metric_public(result.metric) if result.metric is not None else None,
        points=len(result.series),
        threshold=result.threshold,
        series=Points(t=list(_ms(shown.index)), v=_vals(shown)),
        band=band,
        results=results,
    )


@router.get("/decompose/{metric}", response_model=DecompositionOut, responses=_ERRORS)
def decompose(
    metric: str,
    store: StoreDep,
    labels: Annotated[str | None, Query(description="Slice selector key=value,...")] = None,
    from_: Annotated[str | None, Query(alias="from", description="Start (ISO 8601).")] = None,
    to: Annotated[str | None, Query(description="End, exclusive.")] = None,
) -> DecompositionOut:
    """Trend, daily, weekly and residual parts of a stored metric (robust MSTL on a resampled copy)."""
    start, end = catalog.parse_time(from_, what="from"), catalog.parse_time(to, what="to")
    if start is not None and end is not None and end <= start:
        raise ValidationError("the window is empty: to is not after from")
    info = catalog.get_metric(store, metric, catalog.parse_selector(labels))
    values = catalog.read_points(store, info.id, start=start, end=end)
    d = adhoc.decompose(values)
    return DecompositionOut(
        metric=metric_public(info),
        step_seconds=int(d.step.total_seconds()),
        t=_ms(d.observed.index),
        observed=_vals(d.observed),
        trend=_vals(d.trend),
        daily=_vals(d.daily) if d.daily is not None else None,
        weekly=_vals(d.weekly) if d.weekly is not None else None,
        residual=_vals(d.residual),
    )


@router.post("/scan", response_model=ScanResponse, responses=_ERRORS)
def scan_window(body: ScanRequest, store: StoreDep) -> ScanResponse:
    """Rank metrics by how unusual a window is against the stretch before it (with the reason)."""
    start = catalog.parse_time(body.from_, what="from")
    end = catalog.parse_time(body.to, what="to")
    assert start is not None
    assert end is not None
    ranked = adhoc.rank_window(
        store, start=start, end=end, group=body.group, metric_ids=body.metrics, limit=body.limit
    )
    return ScanResponse(
        start=start.to_pydatetime(),
        end=end.to_pydatetime(),
        items=[RankedMetric(metric=metric_public(r.metric), score=r.score, reason=r.reason) for r in ranked],
        total=len(ranked),
    )


@router.get("/overview", response_model=OverviewPage, responses=_ERRORS)
def metrics_overview(
    store: StoreDep,
    group: Annotated[str | None, Query(description="Only metrics of this group.")] = None,
    selector: Annotated[str | None, Query(description="Label selector key=value,...")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> OverviewPage:
    """Every metric with a 24-hour sparkline, its anomaly rate and state (anomalous first)."""
    rows = overview.summarize_metrics(store, group=group, selector=catalog.parse_selector(selector))
    rows.sort(key=lambda r: (r.state != "anomalous", -r.anomaly_rate))
    groups = sorted({m.group for m in catalog.list_metrics(store) if m.group})
    page = rows[offset : offset + limit]
    return OverviewPage(
        items=[
            MetricSummaryOut(
                metric=metric_public(r.metric),
                spark=r.spark,
                anomalies=r.anomalies,
                anomaly_rate=r.anomaly_rate,
                last_anomaly=r.last_anomaly.to_pydatetime() if r.last_anomaly is not None else None,
                state=r.state,  # type: ignore[arg-type]
                silent_minutes=r.silent_minutes,
            )
            for r in page
        ],
        total=len(rows),
        limit=limit,
        offset=offset,
        groups=groups,
    )


class RunRequest(BaseModel):
    """Score stored metrics with one detector and store its scores and anomalies (replacing its old ones)."""

    metric_ids: list[int] | None = Field(default=None, description="Only these metrics (default: all).")
    detector: DetectorRequest | None = Field(
        default=None, description="Default: the service's default detector."
    )
    threshold: float | None = Field(default=None, description="Calibrated z; default: the service's default.")
    min_points: int = Field(default=1, ge=1)
    merge_gap: int = Field(default=5, ge=0)


class RunResponse(BaseModel):
    detector: str
    threshold: float
    metrics: int
    points: int
    anomalies: int


@router.post("/detect/run", response_model=RunResponse, responses=_ERRORS)
def run_detection(body: RunRequest, store: StoreDep, settings: SettingsDep) -> RunResponse:
    """Run a detector over stored metrics and keep the result: scores and anomalies are stored (the
    anomalies then feed incidents, alerts and /metrics)."""
    if body.threshold is not None and not np.isfinite(body.threshold):
        raise ValidationError("threshold must be a finite number")
    if body.metric_ids:
        known = {m.id for m in catalog.list_metrics(store)}
        missing = sorted(set(body.metric_ids) - known)
        if missing:
            from telewatch.core.errors import NotFoundError

            raise NotFoundError(f"no metric with id {missing[0]}")
    options: dict[str, Any] = {"min_points": body.min_points, "merge_gap": body.merge_gap}
    if body.detector is not None:
        options.update(detector=body.detector.name, params=body.detector.params)
    if body.threshold is not None:
        options["threshold"] = body.threshold
    try:
        report = detection.detect_metrics(store, metric_ids=body.metric_ids, **options)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ValidationError | ConfigError):
            raise
        raise ValidationError(f"detector {options.get('detector', 'default')}: {exc}") from exc
    from telewatch.services.detect_alerts import alert_if_configured

    alert_if_configured(store, report.anomalies, settings=settings)  # recent ones only: no backfill pages
    return RunResponse(
        detector=report.detector,
        threshold=report.threshold,
        metrics=report.metrics,
        points=report.points,
        anomalies=len(report.anomalies),
    )
