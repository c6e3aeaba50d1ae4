"""Upload a metrics file."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from telewatch.api.deps import SettingsDep, StoreDep
from telewatch.api.schemas import ErrorPublic, IngestPublic, SeriesIngestPublic
from telewatch.core.errors import ValidationError
from telewatch.services import detection
from telewatch.services.detect_alerts import alert_if_configured
from telewatch.services.ingest import ingest_file
from telewatch.sources.files import IngestOptions

router = APIRouter(prefix="/api", tags=["ingest"])
_CHUNK = 1 << 20


async def read_upload(file: UploadFile, *, max_bytes: int) -> bytes:
    """The whole uploaded file, refused with 413 past ``max_bytes`` (read in chunks, never more)
    and with a clear error when it is empty."""
    chunks, size = [], 0
    while chunk := await file.read(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise HTTPException(413, f"the file exceeds the upload limit of {max_bytes:,} bytes")
        chunks.append(chunk)
    data = b"".join(chunks)
    if not data:
        raise ValidationError(f"{file.filename or 'upload'}: the file is empty")
    return data


class _BodyTooLarge(Exception):
    pass


class UploadLimit:
    """ASGI middleware: refuse a request body past ``max_upload_bytes`` (plus ``slack`` for the form's
    other fields) with 413 while it streams in, before the multipart parser spools all of it to disk.

    A declared ``Content-Length`` over the limit is refused before a byte of the body is read; a
    chunked body is counted as it arrives and cut off at the limit."""

    def __init__(self, app: ASGIApp, *, slack: int = 1 << 20) -> None:
        self.app = app
        self.slack = slack

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        settings = getattr(getattr(scope.get("app"), "state", None), "settings", None)
        if settings is None:
            await self.app(scope, receive, send)
            return
        limit = int(settings.max_upload_bytes) + self.slack
        message = f"the request body exceeds the upload limit of {int(settings.max_upload_bytes):,} bytes"
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, message)
            return
        state = {"size": 0, "over": False, "started": False}

        async def counted_receive() -> Message:
            event = await receive()
            if event["type"] == "http.request":
                state["size"] += len(event.get("body", b""))
                if state["size"] > limit:
                    state["over"] = True
                    raise _BodyTooLarge
            return event

        async def guarded_send(event: Message) -> None:
            if state["over"]:
                return  # the app answered the cut-off body (often 400); the answer is 413
            state["started"] = True
            await send(event)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not state["over"]:  # whatever the cut-off body made the app raise, the answer is 413
                raise
        if state["over"] and not state["started"]:
            await self._refuse(send, message)

    @staticmethod
    async def _refuse(send: Send, message: str) -> None:
        body = json.dumps({"detail": message, "error": "TooLarge"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def split_names(text: str | None) -> tuple[str, ...] | None:
    """Comma-separated names from a form field; None when there are none."""
    parts = tuple(p.strip() for p in (text or "").split(",") if p.strip())
    return parts or None


def reading_options(
    format: Annotated[str, Form(pattern="^(auto|csv|tsv|clickhouse-tsv)$")] = "auto",
    shape: Annotated[str, Form(pattern="^(auto|wide|long)$")] = "auto",
    header: Annotated[
        bool | None, Form(description="Whether the first row names the columns (default: detect).")
    ] = None,
    columns: Annotated[str | None, Form(description="Names for a headerless file, comma-separated.")] = None,
    timestamp_column: Annotated[str | None, Form(description="The time column (default: detect).")] = None,
    metric_column: Annotated[
        str | None, Form(description="Long tables: the column naming the metric.")
    ] = None,
    value_column: Annotated[
        str | None, Form(description="Long tables: the column holding the value.")
    ] = None,
    label_columns: Annotated[
        str | None, Form(description="Long tables: columns that become labels, comma-separated.")
    ] = None,
    metrics: Annotated[str | None, Form(description="Wide tables: only these columns.")] = None,
    timezone: Annotated[str, Form(description="Zone of naive timestamps.")] = "UTC",
    timestamp_format: Annotated[
        str | None,
        Form(max_length=100, description="strftime format (e.g. %m/%d/%Y %H:%M), unix_s or unix_ms."),
    ] = None,
) -> dict[str, Any]:
    """How to read an uploaded file: the form fields shared by the upload and its preview."""
    return {
        "format": format,
        "shape": shape,
        "header": header,
        "columns": split_names(columns),
        "timestamp_column": timestamp_column or None,
        "metric_column": metric_column or None,
        "value_column": value_column or None,
        "label_columns": split_names(label_columns),
        "metrics": split_names(metrics),
        "timezone": timezone,
        "timestamp_format": timestamp_format or None,
    }


ReadingOptions = Annotated[dict[str, Any], Depends(reading_options)]


@router.post(
    "/ingest",
    response_model=IngestPublic,
    responses={400: {"model": ErrorPublic}, 413: {"model": ErrorPublic}},
)
async def upload(
    store: StoreDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="CSV/TSV (ClickHouse TSV exports too).")],
    reading: ReadingOptions,
    duplicates: Annotated[str, Form(pattern="^(last|first|mean|max|min|sum|error)$")] = "last",
    prefix: Annotated[str, Form(max_length=200, description="Prefix for every metric name.")] = "",
    group: Annotated[str | None, Form()] = None,
    owner: Annotated[str | None, Form()] = None,
    unit: Annotated[str | None, Form()] = None,
    detect: Annotated[
        bool, Form(description="Score the stored metrics with the default detector (as `telewatch detect`).")
    ] = True,
) -> IngestPublic:
    """Store an uploaded file: all of it, or nothing with an error naming the line and column.

    The reading options are those of ``telewatch ingest`` (every one detected when not given)."""
    data = await read_upload(file, max_bytes=settings.max_upload_bytes)
    options = IngestOptions(
        **reading,
        duplicates=duplicates,  # type: ignore[arg-type]
        max_bytes=settings.max_upload_bytes,
        max_rows=settings.max_upload_rows,
        max_columns=settings.max_upload_columns,
        max_line_bytes=settings.max_line_bytes,
        max_parse_seconds=settings.max_parse_seconds,
    )
    report = ingest_file(
        store,
        data,
        options=options,
        name=file.filename or "upload",
        prefix=prefix,
        group=group,
        owner=owner,
        unit=unit,
    )
    scored = (
        detection.detect_metrics(store, metric_ids=sorted({s.metric_id for s in report.series}))
        if detect and report.series
        else None
    )
    if scored is not None:  # what reaches into the last hour is alerted; a backfill is not
        alert_if_configured(store, scored.anomalies, settings=settings)
    return IngestPublic(
        source=report.source,
        format=report.format,
        shape=report.shape,
        rows=report.rows,
        timestamps=report.timestamps,
        points=report.points,
        duplicates_resolved=report.duplicates_resolved,
        series=[
            SeriesIngestPublic(
                metric_id=s.metric_id,
                name=s.name,
                labels=s.labels,
                points=s.points,
                missing=s.missing,
                first=s.first_ts.to_pydatetime() if s.first_ts is not None else None,
                last=s.last_ts.to_pydatetime() if s.last_ts is not None else None,
                gaps=s.gaps,
            )
            for s in report.series
        ],
        warnings=report.warnings,
        detector=scored.detector if scored is not None else None,
        anomalies=len(scored.anomalies) if scored is not None else None,
    )
