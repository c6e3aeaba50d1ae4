"""Upload a metrics file."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, UploadFile

from telewatch.api.deps import SettingsDep, StoreDep
from telewatch.api.schemas import ErrorPublic, IngestPublic, SeriesIngestPublic
from telewatch.core.errors import ValidationError
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


def split_names(text: str | None) -> tuple[str, ...] | None:
    """Comma-separated names from a form field; None when there are none."""
    parts = tuple(p.strip() for p in (text or "").split(",") if p.strip())
    return parts or None


@router.post(
    "/ingest",
    response_model=IngestPublic,
    responses={400: {"model": ErrorPublic}, 413: {"model": ErrorPublic}},
)
async def upload(
    store: StoreDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="CSV/TSV (ClickHouse TSV exports too).")],
    format: Annotated[str, Form(pattern="^(auto|csv|tsv|clickhouse-tsv)$")] = "auto",
    shape: Annotated[str, Form(pattern="^(auto|wide|long)$")] = "auto",
    columns: Annotated[str | None, Form(description="Names for a headerless file, comma-separated.")] = None,
    timestamp_column: Annotated[str | None, Form()] = None,
    metrics: Annotated[str | None, Form(description="Wide tables: only these columns.")] = None,
    timezone: Annotated[str, Form(description="Zone of naive timestamps.")] = "UTC",
    duplicates: Annotated[str, Form(pattern="^(last|first|mean|max|min|sum|error)$")] = "last",
    group: Annotated[str | None, Form()] = None,
    owner: Annotated[str | None, Form()] = None,
    unit: Annotated[str | None, Form()] = None,
) -> IngestPublic:
    """Store an uploaded file: all of it, or nothing with an error naming the line and column."""
    data = await read_upload(file, max_bytes=settings.max_upload_bytes)
    options = IngestOptions(
        format=format,  # type: ignore[arg-type]
        shape=shape,  # type: ignore[arg-type]
        columns=split_names(columns),
        timestamp_column=timestamp_column or None,
        metrics=split_names(metrics),
        timezone=timezone,
        duplicates=duplicates,  # type: ignore[arg-type]
        max_bytes=settings.max_upload_bytes,
        max_rows=settings.max_upload_rows,
    )
    report = ingest_file(
        store, data, options=options, name=file.filename or "upload", group=group, owner=owner, unit=unit
    )
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
    )
