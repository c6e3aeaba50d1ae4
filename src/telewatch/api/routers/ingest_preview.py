"""``POST /api/ingest/preview``: parse the head of a file and show what an upload would store."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from pydantic import BaseModel, Field

from telewatch.api.deps import SettingsDep
from telewatch.api.routers.ingest import ReadingOptions, read_upload
from telewatch.api.schemas import ErrorPublic
from telewatch.core.errors import IngestError
from telewatch.sources import files
from telewatch.sources.files import IngestOptions

router = APIRouter(prefix="/api", tags=["ingest"])
_CHUNK = 1 << 20


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
    deadline = files._Deadline(options.max_parse_seconds, name)
    raw = files._load_bytes(data, options, name, deadline)
    files._check_lines(raw, options, name, deadline)  # before the head is cut, which would hide a long line
    head_bytes = raw[: 4 * _CHUNK]
    if len(raw) > len(head_bytes):
        # cut at a line end (and a whole UTF-8 character) so the head stays well formed
        head_bytes = head_bytes[: head_bytes.rfind(b"\n") + 1] or head_bytes
    text = files._decode(head_bytes, name)
    all_lines = text.split("\n")
    head = "\n".join(all_lines[:lines]) + "\n"
    total_lines = raw.count(b"\n") + (0 if raw.endswith(b"\n") else 1)
    parsed = files.parse_file(head.encode("utf-8"), options, name=name)
    delimiter = files._sniff_delimiter(head, reading["format"])
    try:
        cells = [
            row
            for row in csv.reader(io.StringIO("\n".join(all_lines[: show + 1])), delimiter=delimiter)
            if row and any(c.strip() for c in row)
        ][:show]
    except csv.Error as exc:  # e.g. a field over the csv module's size limit
        raise IngestError(f"malformed CSV: {exc}", source=name) from exc
    header = bool(cells) and parsed.timestamp_column in cells[0]
    names = cells[0] if header else (list(options.columns) if options.columns else [])
    if not names and cells:
        names = [f"col{i + 1}" for i in range(len(cells[0]))]
    return PreviewPublic(
        source=name,
        format=parsed.format,
        delimiter=delimiter,
        shape=parsed.shape,
        header=header,
        timestamp_column=parsed.timestamp_column,
        columns=names,
        rows=cells,
        rows_parsed=parsed.rows,
        lines_in_file=total_lines,
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
