"""``POST /api/ingest/preview``: parse the head of a file and show what an upload would store."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from pydantic import BaseModel, Field

from telewatch.api.deps import SettingsDep
from telewatch.api.routers.ingest import ReadingOptions, read_upload
from telewatch.api.schemas import ErrorPublic
from telewatch.sources import files
from telewatch.sources.files import IngestOptions

router = APIRouter(prefix="/api", tags=["ingest"])


class PreviewSeries(BaseModel):
    name: str
    labels: dict[str, str]
    points: int = Field(description="Values in the previewed rows.")
    missing: int
    first: datetime | None
    last: datetime | None


class PreviewPublic(BaseModel):
    source: str
    format: str = Field(description="Detected (or given) format: csv, tsv, clickhouse-tsv.")
    delimiter: str
    shape: str = Field(description="wide (a column per metric) or long (metric, value columns).")
    header: bool = Field(description="Whether the first line names the columns.")
    timestamp_column: str
    columns: list[str] = Field(description="Column names (col1..colN when the file has no header).")
    rows: list[list[str]] = Field(description="The first lines, split into cells, as in the file.")
    rows_parsed: int = Field(description="Data rows parsed for this preview.")
    lines_in_file: int = Field(description="Lines in the whole file (estimate for compressed files).")
    series: list[PreviewSeries]
    warnings: list[str]


@router.post(
    "/ingest/preview",
    response_model=PreviewPublic,
    responses={400: {"model": ErrorPublic}, 413: {"model": ErrorPublic}, 422: {"model": ErrorPublic}},
)
async def preview(
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="CSV/TSV, as for POST /api/ingest (or just its head).")],
    reading: ReadingOptions,
    lines: Annotated[int, Form(ge=2, le=5000, description="How many lines to parse.")] = 200,
    show: Annotated[int, Form(ge=1, le=200, description="How many lines to return as cells.")] = 20,
) -> PreviewPublic:
    """Parse the first ``lines`` lines with the same rules as the upload and report what was found.

    A malformed head answers 400 with the line and column at fault, as the upload would."""
    data = await read_upload(file, max_bytes=settings.max_upload_bytes)
    name = file.filename or "upload"
    options = IngestOptions(
        **reading,
        max_bytes=settings.max_upload_bytes,
        max_columns=settings.max_upload_columns,
        max_line_bytes=settings.max_line_bytes,
        max_parse_seconds=settings.max_parse_seconds,
    )
    found = files.preview(data, options, name=name, lines=lines, show=show)
    parsed = found.parsed
    return PreviewPublic(
        source=name,
        format=parsed.format,
        delimiter=found.delimiter,
        shape=parsed.shape,
        header=found.header,
        timestamp_column=parsed.timestamp_column,
        columns=found.columns,
        rows=found.rows,
        rows_parsed=parsed.rows,
        lines_in_file=found.lines_in_file,
        series=[
            PreviewSeries(
                name=s.name,
                labels=s.labels,
                points=int(s.values.notna().sum()),
                missing=int(s.values.isna().sum()),
                first=s.values.index[0].to_pydatetime() if len(s.values) else None,
                last=s.values.index[-1].to_pydatetime() if len(s.values) else None,
            )
            for s in parsed.series
        ],
        warnings=list(parsed.warnings),
    )
