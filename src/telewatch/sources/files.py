"""Parse uploaded metric files (CSV, TSV, ClickHouse TabSeparated exports) into series.

This module only *parses*: :func:`parse_file` turns bytes or a path into :class:`ParsedFile`, a list of
float64 series on sorted, unique UTC timestamps. Storing them is the caller's job.

Formats
-------
* **CSV** with ``,`` or ``;`` between fields (sniffed; double quotes as usual), and **TSV** (tab).
  In a ``;`` file a decimal comma (``1,5``) is read as ``1.5``.
* **ClickHouse** ``TabSeparated`` (no header), ``TabSeparatedWithNames`` (a header row) and
  ``TabSeparatedWithNamesAndTypes`` (a header row and a row of types such as ``DateTime``,
  ``Nullable(Float64)``, ``String``). The types row is skipped and used: it says which column holds
  times, numbers or text, and ``DateTime('Europe/Moscow')`` gives the zone of that column's times.
  ``\\N`` is NULL; TSV escapes (``\\t``, ``\\n``, ``\\\\``) are undone in names, metric names and labels.
  A tab file is reported as ``clickhouse-tsv`` when it has a types row or ``\\N`` cells, else ``tsv``.
* ``.gz``, ``.xz`` and ``.bz2`` compressed input (recognised by content), UTF-8 (a BOM is allowed) or
  UTF-16 with a BOM.
* **Header**: detected unless ``header`` is given. The first row is data when one of its cells is a
  timestamp, otherwise it is a header when it holds text above numbers or times. Headerless columns are
  named ``col1``, ``col2``, ... by position, unless ``columns`` names them.

Shapes
------
* **wide**: a timestamp column and one numeric column per metric; series labels are ``{}``.
  NAB's ``timestamp,value`` files give one metric named ``value``.
* **long**: a timestamp column, a metric column (``metric``/``metric_name``/``name``), a value column
  (``value``/``val``), and text columns that become labels; one series per distinct (metric, labels).
  Without a metric column the metric name is taken from the first text column when the value column is
  named ``value``/``val`` or the file has no header; otherwise each numeric column is a metric named after
  itself and the text columns are its labels (``time,host,cpu`` gives ``cpu{host=...}``).
* ``shape="auto"`` picks long when there is a text column (a column whose cells are mostly not numbers)
  or when ``metric_column``/``value_column``/``label_columns`` is given, wide otherwise.

Values and times
----------------
* Empty cells, ``NaN``, ``nan``, ``NULL``, ``null``, ``\\N`` (also ``None``, ``NA``, ``N/A``) are missing
  values: NaN, never zero. Absent timestamps stay gaps: nothing is resampled or filled.
  A missing label value (``\\N`` or empty) is the empty string.
* The timestamp column is ``timestamp_column``, else a ClickHouse ``Date``/``DateTime`` column, else the
  first column named time/timestamp/ts/date/datetime/point/event_time, else the first column whose cells
  look like dates.
* Timestamps: ISO 8601 (``T`` or space, seconds and fractions optional, with or without ``Z``/offset),
  ``DD.MM.YYYY HH:MM[:SS]``, unix seconds or milliseconds (told apart by size), or ``timestamp_format``
  (a strftime format, ``"unix_s"`` or ``"unix_ms"``). Naive times are read in ``timezone``; explicit
  offsets are respected. A local time skipped by a daylight-saving change is an error; a repeated
  (ambiguous) hour is resolved by order when possible, else read as the first occurrence (with a warning).
* Duplicate (metric, timestamp) pairs are merged by ``duplicates``: ``"last"``/``"first"`` keep the last or
  first *non-missing* value (NaN only when all are missing), ``"mean"``/``"max"``/``"min"``/``"sum"``
  ignore NaN, ``"error"`` rejects the file naming the line of the second occurrence.
* Infinite numbers are rejected.

Errors
------
Anything malformed raises :class:`~telewatch.core.errors.IngestError` with ``line`` (1-based physical line,
header included), ``column`` (name, or ``col<k>``) and ``source`` (the file name): text in a numeric
column, a row with the wrong number of fields, an unparseable or non-existent local time, a duplicate under
``duplicates="error"``, an empty or header-only file, no timestamp or numeric column, undecodable or binary
content, input over ``max_bytes`` or with more than ``max_rows`` data rows, a line longer than
``max_line_bytes``, more than ``max_columns`` fields, or parsing that runs past ``max_parse_seconds``
(the error says how far it got). Hostile input costs bounded time and memory: see docs/security.md.

>>> data = b"time,cpu,mem\\n2024-01-01 00:00,1.5,10\\n2024-01-01 00:01,,11\\n"
>>> parsed = parse_file(data, name="upload.csv")
>>> [s.name for s in parsed.series], parsed.shape, parsed.format, parsed.rows
(['cpu', 'mem'], 'wide', 'csv', 2)
>>> parsed.series[0].values.tolist()
[1.5, nan]
>>> str(parsed.series[0].values.index[1])
'2024-01-01 00:01:00+00:00'
"""

from __future__ import annotations

import bz2
import csv
import datetime as _dt
import gzip
import io
import lzma
import re
import time
import zlib
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn, get_args, get_type_hints

import numpy as np
import pandas as pd

from telewatch.core.errors import IngestError, ValidationError

if TYPE_CHECKING:
    from pandas.api.typing import DataFrameGroupBy

__all__ = ["IngestOptions", "ParsedFile", "ParsedSeries", "parse_file"]

_NA_TOKENS = frozenset(
    {"", "nan", "NaN", "NAN", "null", "NULL", "Null", "\\N", "None", "NA", "N/A", "n/a", "#N/A"}
)
_TIME_NAMES = (
    "timestamp",
    "time",
    "ts",
    "datetime",
    "date_time",
    "time_stamp",
    "event_time",
    "date",
    "point",
)
_METRIC_NAMES = ("metric", "metric_name", "name", "__name__")
_VALUE_NAMES = ("value", "val")
_ISO_RE = re.compile(
    r"\d{4}-\d{1,2}-\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)?"
)
_DOTTED_RE = re.compile(r"\d{1,2}\.\d{1,2}\.\d{4}(?: \d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?")
_DOTTED_FORMATS = ("%d.%m.%Y %H:%M:%S.%f", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y")
_OFFSET_RE = r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"
_UNIX_RE = re.compile(r"[+-]?\d+(?:\.\d*)?")
_DECIMAL_COMMA_RE = r"[+-]?\d*,\d+(?:[eE][+-]?\d+)?"
_CH_TYPE_RE = re.compile(
    r"(?:Nullable|LowCardinality|SimpleAggregateFunction|Array|Tuple|Map|Enum8|Enum16|Enum|"
    r"Decimal(?:32|64|128|256)?|FixedString|DateTime64|DateTime|Nested)\(.*\)"
    r"|U?Int(?:8|16|32|64|128|256)|Float(?:32|64)|String|Date|Date32|DateTime|UUID|Bool|Boolean|IPv4|IPv6"
)
_CH_TZ_RE = re.compile(r"DateTime(?:64)?\((?:\s*\d+\s*,)?\s*'([^']+)'\s*\)")
# Bounds of a nanosecond timestamp, in seconds since the epoch.
_MAX_UNIX_S = 9.2e9
_COMPRESSION_MAGIC = ((b"\x1f\x8b", "gzip"), (b"\xfd7zXZ\x00", "xz"), (b"BZh", "bzip2"))


@dataclass(frozen=True)
class IngestOptions:
    """How to read a file; every field has a detecting default. See the module docstring."""

    format: Literal["auto", "csv", "tsv", "clickhouse-tsv"] = "auto"
    shape: Literal["auto", "wide", "long"] = "auto"
    header: bool | None = None
    columns: tuple[str, ...] | None = None
    timestamp_column: str | None = None
    metric_column: str | None = None
    value_column: str | None = None
    label_columns: tuple[str, ...] | None = None
    metrics: tuple[str, ...] | None = None
    timezone: str = "UTC"
    timestamp_format: str | None = None
    duplicates: Literal["last", "first", "mean", "max", "min", "sum", "error"] = "last"
    max_bytes: int = 200 * 1024 * 1024
    max_rows: int = 20_000_000
    max_columns: int = 2000
    max_line_bytes: int = 1024 * 1024
    max_parse_seconds: float | None = 120.0

    def __post_init__(self) -> None:
        # the API checks these through its schema; the CLI and library callers pass plain strings
        hints = get_type_hints(IngestOptions)
        for name in ("format", "shape", "duplicates"):
            allowed = get_args(hints[name])
            if getattr(self, name) not in allowed:
                raise ValidationError(f"{name}: {getattr(self, name)!r} is not one of {', '.join(allowed)}")


@dataclass(frozen=True)
class ParsedSeries:
    """One series: float64 values on a sorted unique UTC index; NaN = the cell was missing."""

    name: str
    labels: dict[str, str]
    values: pd.Series


@dataclass(frozen=True)
class ParsedFile:
    """The result of :func:`parse_file`."""

    series: list[ParsedSeries]
    rows: int
    shape: str
    format: str
    timestamp_column: str
    duplicates_resolved: int
    warnings: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------- limits


class _Deadline:
    """The parse time limit, checked between stages, chunks and rows (never inside one C call)."""

    def __init__(self, seconds: float | None, label: str | None) -> None:
        self.seconds = seconds
        self.label = label
        self.expires = None if seconds is None else time.monotonic() + seconds

    def check(self, stage: str, *, line: int | None = None, of: int | None = None) -> None:
        if self.expires is None or time.monotonic() < self.expires:
            return
        where = f" at line {line:,}" + (f" of {of:,}" if of else "") if line is not None else ""
        raise IngestError(
            f"parsing took longer than the limit of {self.seconds:g} s (max_parse_seconds); "
            f"stopped while {stage}{where}; nothing was stored",
            line=line,
            source=self.label,
        )


def _check_lines(raw: bytes, options: IngestOptions, label: str | None, deadline: _Deadline) -> None:
    """Refuse a line longer than ``max_line_bytes``, scanning in chunks (bounded extra memory)."""
    limit = options.max_line_bytes
    if len(raw) <= limit:
        return
    step = 8 * 1024 * 1024
    line_start, line_no = 0, 1
    for offset in range(0, len(raw), step):
        chunk = np.frombuffer(raw, dtype=np.uint8, count=min(step, len(raw) - offset), offset=offset)
        ends = np.flatnonzero(chunk == 10) + offset
        starts = np.concatenate(([line_start], ends[:-1] + 1)) if ends.size else np.asarray([line_start])
        if ends.size:
            lengths = ends - starts
            long = np.flatnonzero(lengths > limit)
            if long.size:
                _too_long(int(lengths[long[0]]), line_no + int(long[0]), limit, label)
            line_no += int(ends.size)
            line_start = int(ends[-1]) + 1
        if offset + chunk.size - line_start > limit:
            _too_long(offset + chunk.size - line_start, line_no, limit, label, more=True)
        deadline.check("checking line lengths", line=line_no)


def _too_long(length: int, line: int, limit: int, label: str | None, *, more: bool = False) -> NoReturn:
    size = f"at least {length:,}" if more else f"{length:,}"
    raise IngestError(
        f"the line is {size} bytes long, more than the limit of {limit:,} (max_line_bytes); "
        "is this really a CSV/TSV file?",
        line=line,
        source=label,
    )


# --------------------------------------------------------------------------------------------- input


def _load_bytes(
    source: str | Path | bytes,
    options: IngestOptions,
    label: str | None,
    deadline: _Deadline | None = None,
) -> bytes:
    limit = options.max_bytes
    if isinstance(source, bytes | bytearray | memoryview):
        raw = bytes(source)
    else:
        path = Path(source)
        try:
            size = path.stat().st_size
            if size > limit:
                raise IngestError(f"the file is {size} bytes, more than the limit of {limit}", source=label)
            raw = path.read_bytes()
        except OSError as exc:
            raise IngestError(f"cannot read the file: {exc.strerror or exc}", source=label) from exc
    if len(raw) > limit:
        raise IngestError(f"the input is {len(raw)} bytes, more than the limit of {limit}", source=label)
    for magic, kind in _COMPRESSION_MAGIC:
        if raw.startswith(magic):
            return _decompress(raw, kind, limit, label, deadline or _Deadline(None, label))
    return raw


def _decompress(raw: bytes, kind: str, limit: int, label: str | None, deadline: _Deadline) -> bytes:
    buffer = io.BytesIO(raw)
    parts: list[bytes] = []
    size = 0
    try:
        opener: Any = {"gzip": gzip.open, "xz": lzma.open, "bzip2": bz2.open}[kind]
        with opener(buffer) as stream:
            # in chunks: a bomb stops at the limit, a slow stream at the deadline
            while size <= limit and (part := stream.read(min(8 * 1024 * 1024, limit + 1 - size))):
                parts.append(part)
                size += len(part)
                deadline.check(f"unpacking {kind} data ({size:,} bytes so far)")
    except (OSError, EOFError, lzma.LZMAError, ValueError, zlib.error) as exc:
        raise IngestError(f"corrupt {kind} data: {exc}", source=label) from exc
    if size > limit:
        raise IngestError(f"the {kind} data unpacks to more than the limit of {limit} bytes", source=label)
    return b"".join(parts)


def _decode(data: bytes, label: str | None) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise IngestError(f"undecodable UTF-16 text at byte offset {exc.start}", source=label) from exc
    nul = data.find(b"\x00")
    if nul >= 0:
        raise IngestError(
            f"binary data (a NUL byte at byte offset {nul}); expected a text file",
            line=data.count(b"\n", 0, nul) + 1,
            source=label,
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        start = int(exc.start)
        raise IngestError(
            f"not UTF-8 text: byte 0x{data[start]:02x} at byte offset {start} (save the file as UTF-8)",
            line=data.count(b"\n", 0, start) + 1,
            source=label,
        ) from exc
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


# ------------------------------------------------------------------------------------------- records


def _sniff_delimiter(text: str, fmt: str) -> str:
    if fmt in ("tsv", "clickhouse-tsv"):
        return "\t"
    candidates = (",", ";") if fmt == "csv" else ("\t", ";", ",")
    sample_lines = [ln for ln in text[:65536].split("\n")[:51] if ln.strip()][:50]
    if len(text) > 65536 and len(sample_lines) > 1:
        sample_lines = sample_lines[:-1]  # the last one may be cut short
    if not sample_lines:
        return candidates[0]
    best, best_count = candidates[-1], 0
    for delimiter in candidates:
        if '"' in text[:65536] and delimiter != "\t":
            try:
                counts = [len(r) - 1 for r in csv.reader(sample_lines, delimiter=delimiter)]
            except csv.Error:
                counts = [ln.count(delimiter) for ln in sample_lines]
        else:
            counts = [ln.count(delimiter) for ln in sample_lines]
        if counts[0] >= 1 and all(c == counts[0] for c in counts):
            return delimiter
        if counts[0] > best_count:
            best, best_count = delimiter, counts[0]
    return best


def _scan_unquoted(text: str, delimiter: str) -> tuple[np.ndarray, np.ndarray]:
    """Physical line (1-based) and field count of every record pandas will read, vectorised."""
    buf = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    newlines = np.flatnonzero(buf == 10)
    starts = np.concatenate(([0], newlines + 1))
    ends = np.concatenate((newlines, [buf.size]))
    if starts[-1] == buf.size:  # nothing after the final newline
        starts, ends = starts[:-1], ends[:-1]
    delimiters = np.flatnonzero(buf == ord(delimiter))
    counts = np.bincount(np.searchsorted(newlines, delimiters), minlength=starts.size)[: starts.size]
    blank = ends == starts
    # pandas skips lines of spaces (and tabs, unless tab is the delimiter)
    whitespace = b" " if delimiter == "\t" else b" \t"
    for i in np.flatnonzero((counts == 0) & ~blank):
        if not buf[starts[i] : ends[i]].tobytes().strip(whitespace):
            blank[i] = True
    keep = ~blank
    return np.flatnonzero(keep) + 1, counts[keep] + 1


_RECORDS_CHUNK = 200_000


def _read_records(
    text: str,
    delimiter: str,
    label: str | None,
    options: IngestOptions | None = None,
    deadline: _Deadline | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """All records as a frame of strings (no header handling) and the physical line of each."""
    options = options or IngestOptions()
    deadline = deadline or _Deadline(None, label)
    if delimiter == "\t" or '"' not in text:
        lines, counts = _scan_unquoted(text, delimiter)
        _check_columns(lines, counts, options.max_columns, label)
        _check_ragged(lines, counts, label)
        if lines.size == 0:
            return pd.DataFrame(), lines
        deadline.check(f"splitting the file into {lines.size:,} lines")
        try:
            chunked = pd.read_csv(
                io.StringIO(text),
                sep=delimiter,
                header=None,
                dtype=str,
                na_filter=False,
                quoting=csv.QUOTE_NONE,
                engine="c",
                chunksize=_RECORDS_CHUNK,
            )
            chunks = []
            with chunked:
                for chunk in chunked:
                    chunks.append(chunk)
                    done = min(len(chunks) * _RECORDS_CHUNK, lines.size) - 1
                    deadline.check("reading records", line=int(lines[done]), of=int(lines[-1]))
            frame = chunks[0] if len(chunks) == 1 else pd.concat(chunks, ignore_index=True)
        except (pd.errors.ParserError, ValueError) as exc:  # not expected after the scan
            raise IngestError(f"malformed file: {exc}", source=label) from exc
        if len(frame) != lines.size:
            raise IngestError("malformed file: rows could not be delimited consistently", source=label)
        return frame, lines
    # Quoted CSV: the csv module follows quoted fields over line breaks and tells each record's line.
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    records: list[list[str]] = []
    starts: list[int] = []
    previous = 0
    try:
        for record in reader:
            start, previous = previous + 1, reader.line_num
            if not record or (len(record) == 1 and not record[0].strip(" \t")):
                continue
            if len(record) > options.max_columns:
                _check_columns(np.asarray([start]), np.asarray([len(record)]), options.max_columns, label)
            records.append(record)
            starts.append(start)
            if len(records) % 20_000 == 0:
                deadline.check("reading quoted records", line=start)
    except csv.Error as exc:
        raise IngestError(f"malformed CSV: {exc}", line=reader.line_num or None, source=label) from exc
    lines = np.asarray(starts, dtype=np.int64)
    _check_ragged(lines, np.asarray([len(r) for r in records], dtype=np.int64), label)
    frame = pd.DataFrame(records, dtype=str) if records else pd.DataFrame()
    return frame, lines


def _check_columns(lines: np.ndarray, counts: np.ndarray, limit: int, label: str | None) -> None:
    wide = np.flatnonzero(counts > limit)
    if wide.size:
        i = int(wide[0])
        raise IngestError(
            f"{int(counts[i]):,} fields, more than the limit of {limit:,} (max_columns)",
            line=int(lines[i]),
            source=label,
        )


def _check_ragged(lines: np.ndarray, counts: np.ndarray, label: str | None) -> None:
    if counts.size == 0:
        return
    wrong = np.flatnonzero(counts != counts[0])
    if wrong.size:
        i = int(wrong[0])
        raise IngestError(
            f"expected {int(counts[0])} fields (as in line {int(lines[0])}), found {int(counts[i])}",
            line=int(lines[i]),
            source=label,
        )


# ------------------------------------------------------------------------------------- classification


def _is_timestamp_text(cell: str, timestamp_format: str | None) -> bool:
    if timestamp_format and timestamp_format not in ("unix_s", "unix_ms"):
        try:
            _dt.datetime.strptime(cell, timestamp_format)
        except ValueError:
            return False
        return True
    if _DOTTED_RE.fullmatch(cell):
        return True
    if _ISO_RE.fullmatch(cell):
        try:
            pd.Timestamp(cell)
        except (ValueError, OverflowError):
            return False
        return True
    return False


def _cell_kind(cell: str, timestamp_format: str | None) -> str:
    """'na', 'ts', 'num' or 'str': the kind of one cell, for header detection."""
    cell = cell.strip()
    if cell in _NA_TOKENS:
        return "na"
    if _is_timestamp_text(cell, timestamp_format):
        return "ts"
    try:
        float(cell.replace(",", "."))
    except ValueError:
        return "str"
    return "num"


def _detect_header(rows: list[list[str]], timestamp_format: str | None) -> bool:
    first = [_cell_kind(c, timestamp_format) for c in rows[0]]
    if "ts" in first:
        return False
    if len(rows) > 1:
        second = [_cell_kind(c, timestamp_format) for c in rows[1]]
        if any(a == "str" and b in ("num", "ts") for a, b in zip(first, second, strict=False)):
            return True
    return "num" not in first and "str" in first


def _is_types_row(row: list[str]) -> bool:
    return bool(row) and all(_CH_TYPE_RE.fullmatch(c.strip()) for c in row)


def _type_kind(ch_type: str) -> str:
    """'ts', 'num' or 'str' for a ClickHouse type name."""
    inner = ch_type.strip()
    while True:
        m = re.fullmatch(r"(?:Nullable|LowCardinality)\((.*)\)", inner)
        if not m:
            break
        inner = m.group(1).strip()
    if inner.startswith("Date"):
        return "ts"
    if re.fullmatch(r"U?Int\d+|Float\d+|Decimal.*", inner):
        return "num"
    return "str"


_TSV_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "0": "\0", "b": "\b", "f": "\f", "\\": "\\", "'": "'"}


def _unescape_tsv(values: pd.Series) -> pd.Series:
    if not values.str.contains("\\", regex=False).any():
        return values
    return values.str.replace(r"\\(.)", lambda m: _TSV_ESCAPES.get(m.group(1), m.group(1)), regex=True)


# ------------------------------------------------------------------------------------------- context


@dataclass
class _Context:
    label: str | None
    lines: np.ndarray  # physical line of each data row
    header_line: int | None
    deadline: _Deadline | None = None

    def check_time(self, stage: str) -> None:
        if self.deadline is not None:
            self.deadline.check(f"{stage}, after reading all {self.lines.size:,} data rows")

    def fail(self, message: str, *, row: int | None = None, column: str | None = None) -> NoReturn:
        line = int(self.lines[row]) if row is not None else self.header_line
        raise IngestError(message, line=line, column=column, source=self.label)

    def fail_at_first(self, mask: np.ndarray, message: str, column: str | None, cells: pd.Series) -> None:
        """Raise naming the first row where ``mask`` is true; ``{cell}`` in message is that cell."""
        bad = np.flatnonzero(mask)
        if bad.size:
            row = int(bad[0])
            self.fail(message.format(cell=str(cells.iloc[row])[:80]), row=row, column=column)


def _to_float(cells: pd.Series, *, decimal_comma: bool) -> tuple[np.ndarray, np.ndarray]:
    """float64 values and the mask of cells that are neither numbers nor missing markers."""
    stripped = cells.str.strip()
    missing = stripped.isin(_NA_TOKENS).to_numpy()
    values = pd.to_numeric(stripped, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    bad = np.isnan(values) & ~missing
    if decimal_comma and bad.any():
        idx = np.flatnonzero(bad)
        candidates = stripped.iloc[idx]
        fixable = candidates.str.fullmatch(_DECIMAL_COMMA_RE).to_numpy(dtype=bool)
        if fixable.any():
            fixed = pd.to_numeric(
                candidates[fixable].str.replace(",", ".", regex=False), errors="coerce"
            ).to_numpy(dtype=np.float64, na_value=np.nan)
            values[idx[fixable]] = fixed
            bad = np.isnan(values) & ~missing
    return values, bad


# ---------------------------------------------------------------------------------------- timestamps


def _check_zone(zone: str, ctx: _Context) -> None:
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        ctx.fail(f"unknown timezone {zone!r}")


def _localize(
    naive: pd.DatetimeIndex, zone: str, ctx: _Context, column: str, cells: pd.Series, warnings: list[str]
) -> pd.DatetimeIndex:
    if zone == "UTC":
        return naive.tz_localize("UTC")
    _check_zone(zone, ctx)
    first_pick = naive.tz_localize(zone, ambiguous=np.ones(len(naive), dtype=bool), nonexistent="NaT")
    ctx.fail_at_first(
        np.asarray(first_pick.isna()),
        f"local time {{cell}} does not exist in {zone} (skipped by a daylight-saving change)",
        column,
        cells,
    )
    strict = naive.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    n_ambiguous = int(np.count_nonzero(np.asarray(strict.isna())))
    if not n_ambiguous:
        return strict
    try:
        return naive.tz_localize(zone, ambiguous="infer")
    except (ValueError, TypeError):
        warnings.append(
            f"{n_ambiguous} timestamps in column {column!r} fall in an hour repeated by a daylight-saving "
            f"change in {zone}; they were read as the first (summer-time) occurrence"
        )
        return first_pick


def _parse_timestamps(
    cells: pd.Series,
    *,
    column: str,
    zone: str,
    timestamp_format: str | None,
    ctx: _Context,
    warnings: list[str],
) -> pd.DatetimeIndex:
    stripped = cells.str.strip()
    missing = stripped.isin(_NA_TOKENS).to_numpy()
    ctx.fail_at_first(missing, "missing timestamp {cell!r}", column, stripped)
    first = str(stripped.iloc[0])
    unix = timestamp_format in ("unix_s", "unix_ms") or (
        timestamp_format is None and _UNIX_RE.fullmatch(first) is not None
    )
    if unix:
        numbers = pd.to_numeric(stripped, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        ctx.fail_at_first(~np.isfinite(numbers), "cannot read {cell!r} as a unix timestamp", column, stripped)
        if timestamp_format is None and abs(numbers[0]) < 1e8:
            ctx.fail(
                f"{first!r} is a small number, not a timestamp; give timestamp_format='unix_s' if it is "
                "unix time",
                row=0,
                column=column,
            )
        in_ms = timestamp_format == "unix_ms" or (timestamp_format is None and abs(numbers[0]) >= 1e11)
        seconds = numbers / 1000.0 if in_ms else numbers
        ctx.fail_at_first(
            np.abs(seconds) > _MAX_UNIX_S, "unix timestamp {cell!r} is out of range", column, stripped
        )
        ns = np.round(seconds * 1e9).astype(np.int64)
        return pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC")
    if timestamp_format is not None:
        aware_format = "%z" in timestamp_format or "%Z" in timestamp_format
        parsed = pd.to_datetime(stripped, format=timestamp_format, errors="coerce", utc=aware_format)
        _fail_unparsed(parsed, ctx, column, stripped, f" with format {timestamp_format!r}")
        index = pd.DatetimeIndex(parsed)
        return _to_ns_utc(index if aware_format else _localize(index, zone, ctx, column, stripped, warnings))
    if _DOTTED_RE.fullmatch(first):
        parsed = pd.Series(pd.NaT, index=stripped.index, dtype="datetime64[us]")  # us: years up to 9999
        for fmt in _DOTTED_FORMATS:
            todo = parsed.isna().to_numpy()
            if not todo.any():
                break
            parsed[todo] = pd.to_datetime(stripped[todo], format=fmt, errors="coerce").astype(
                "datetime64[us]"
            )
        _fail_unparsed(parsed, ctx, column, stripped, " (expected DD.MM.YYYY HH:MM[:SS])")
        return _to_ns_utc(_localize(pd.DatetimeIndex(parsed), zone, ctx, column, stripped, warnings))
    aware = stripped.str.contains(_OFFSET_RE, regex=True).to_numpy(dtype=bool)
    result = np.empty(len(stripped), dtype=np.int64)
    if aware.any():
        part = pd.to_datetime(stripped[aware], format="ISO8601", errors="coerce", utc=True)
        _fail_unparsed(part, ctx, column, stripped, "", positions=np.flatnonzero(aware))
        result[aware] = _to_ns_utc(pd.DatetimeIndex(part)).asi8
    if not aware.all():
        naive_cells = stripped[~aware]
        part = pd.to_datetime(naive_cells, format="ISO8601", errors="coerce")
        _fail_unparsed(part, ctx, column, stripped, "", positions=np.flatnonzero(~aware))
        local = _localize(pd.DatetimeIndex(part), zone, ctx, column, stripped, warnings)
        result[~aware] = _to_ns_utc(local).asi8
    return pd.DatetimeIndex(result.view("datetime64[ns]")).tz_localize("UTC")


_EARLIEST = pd.Timestamp("1677-09-22")  # the range of nanosecond timestamps, with a day of margin
_LATEST = pd.Timestamp("2262-04-10")


def _fail_unparsed(
    parsed: pd.Series | pd.DatetimeIndex,
    ctx: _Context,
    column: str,
    cells: pd.Series,
    hint: str,
    positions: np.ndarray | None = None,
) -> None:
    bad = np.flatnonzero(np.asarray(pd.isna(parsed)))
    if bad.size:
        row = int(bad[0] if positions is None else positions[bad[0]])
        if not hint:
            hint = " (expected ISO 8601 like 2024-01-31 23:59:00, DD.MM.YYYY HH:MM or unix seconds)"
        ctx.fail(f"cannot parse timestamp {str(cells.iloc[row])[:80]!r}{hint}", row=row, column=column)
    # pandas parses years up to 9999 (at a coarser unit); the store and the zone rules take 1678-2261
    index = pd.DatetimeIndex(parsed)
    bounds = (
        (_EARLIEST, _LATEST)
        if index.tz is None
        else (_EARLIEST.tz_localize("UTC"), _LATEST.tz_localize("UTC"))
    )
    outside = np.flatnonzero(np.asarray((index < bounds[0]) | (index > bounds[1])))
    if outside.size:
        row = int(outside[0] if positions is None else positions[outside[0]])
        ctx.fail(
            f"timestamp {str(cells.iloc[row])[:80]!r} is out of range (1678-2261)", row=row, column=column
        )


def _to_ns_utc(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """UTC at nanosecond resolution, so series from any file line up; out-of-range times raise."""
    index = index.tz_convert("UTC")
    return index.as_unit("ns")


# -------------------------------------------------------------------------------------------- parsing


def parse_file(
    source: str | Path | bytes, options: IngestOptions | None = None, *, name: str | None = None
) -> ParsedFile:
    """Parse a metric file (path or bytes) into series; raise :class:`IngestError` if it is malformed.

    ``name`` labels errors (e.g. the uploaded file's name); for a path the path is used by default.
    """
    options = options or IngestOptions()
    label = name if name is not None else (None if isinstance(source, bytes | bytearray) else str(source))
    deadline = _Deadline(options.max_parse_seconds, label)
    raw = _load_bytes(source, options, label, deadline)
    _check_lines(raw, options, label, deadline)
    text = _decode(raw, label)
    del raw
    deadline.check("decoding text")
    if not text.strip():
        raise IngestError("the file is empty", source=label)
    delimiter = _sniff_delimiter(text, options.format)
    records, lines = _read_records(text, delimiter, label, options, deadline)
    del text
    if records.empty:
        raise IngestError("the file is empty", source=label)
    warnings: list[str] = []
    try:
        return _interpret(records, lines, delimiter, options, label, warnings, deadline)
    except (pd.errors.OutOfBoundsDatetime, OverflowError, NotImplementedError) as exc:
        raise IngestError(f"a timestamp is out of range (1678-2261): {exc}", source=label) from exc


@dataclass(frozen=True)
class Preview:
    """What :func:`preview` found in the head of a file: the series parsed from it and its cells."""

    parsed: ParsedFile  # the head parsed with the upload's rules
    delimiter: str
    header: bool  # whether the first line names the columns
    columns: list[str]  # column names (col1..colN when the file has no header)
    rows: list[list[str]]  # the first lines, split into cells, as in the file
    lines_in_file: int  # lines in the whole file (after unpacking a compressed one)


#: bytes of the file's start a preview decodes (cut back to a line end)
PREVIEW_HEAD_BYTES = 4 << 20


def preview(
    source: str | Path | bytes,
    options: IngestOptions | None = None,
    *,
    name: str | None = None,
    lines: int = 200,
    show: int = 20,
) -> Preview:
    r"""Parse the first ``lines`` lines of a file with the same rules and limits as :func:`parse_file`,
    and split its first ``show`` lines into cells: what an upload of the file would store.

    A malformed head raises :class:`IngestError` naming the line and column, as the upload would; a
    line over ``max_line_bytes`` anywhere in the file is refused before the head is cut.

    >>> p = preview(b"time,cpu\n2026-01-01 00:00,1\n2026-01-01 00:01,2\n", show=2)
    >>> p.columns, p.rows[1], p.lines_in_file, [s.name for s in p.parsed.series]
    (['time', 'cpu'], ['2026-01-01 00:00', '1'], 3, ['cpu'])
    """
    options = options or IngestOptions()
    label = name if name is not None else (None if isinstance(source, bytes | bytearray) else str(source))
    deadline = _Deadline(options.max_parse_seconds, label)
    raw = _load_bytes(source, options, label, deadline)
    _check_lines(raw, options, label, deadline)  # before the head is cut, which would hide a long line
    head_bytes = raw[:PREVIEW_HEAD_BYTES]
    if len(raw) > len(head_bytes):
        # cut at a line end (and a whole UTF-8 character) so the head stays well formed
        head_bytes = head_bytes[: head_bytes.rfind(b"\n") + 1] or head_bytes
    text = _decode(head_bytes, label)
    all_lines = text.split("\n")
    head = "\n".join(all_lines[:lines]) + "\n"
    total_lines = raw.count(b"\n") + (0 if raw.endswith(b"\n") else 1)
    parsed = parse_file(head.encode("utf-8"), options, name=label)
    delimiter = _sniff_delimiter(head, options.format)
    try:
        cells = [
            row
            for row in csv.reader(io.StringIO("\n".join(all_lines[: show + 1])), delimiter=delimiter)
            if row and any(c.strip() for c in row)
        ][:show]
    except csv.Error as exc:  # e.g. a field over the csv module's size limit
        raise IngestError(f"malformed CSV: {exc}", source=label) from exc
    header = bool(cells) and parsed.timestamp_column in cells[0]
    names = cells[0] if header else (list(options.columns) if options.columns else [])
    if not names and cells:
        names = [f"col{i + 1}" for i in range(len(cells[0]))]
    return Preview(
        parsed=parsed,
        delimiter=delimiter,
        header=header,
        columns=names,
        rows=cells,
        lines_in_file=total_lines,
    )


def _interpret(
    records: pd.DataFrame,
    lines: np.ndarray,
    delimiter: str,
    options: IngestOptions,
    label: str | None,
    warnings: list[str],
    deadline: _Deadline | None = None,
) -> ParsedFile:
    deadline = deadline or _Deadline(None, label)
    n_fields = records.shape[1]
    head = [[str(c) for c in records.iloc[i].tolist()] for i in range(min(2, len(records)))]
    has_header = (
        options.header if options.header is not None else _detect_header(head, options.timestamp_format)
    )
    has_types = has_header and len(head) > 1 and _is_types_row(head[1])
    n_skip = int(has_header) + int(has_types)
    header_line = int(lines[0]) if has_header else None
    types = [c.strip() for c in head[1]] if has_types else None
    any_null_token = False
    if delimiter == "\t":
        any_null_token = bool(records.iloc[n_skip : n_skip + 10000].isin(["\\N"]).to_numpy().any())
    if options.format != "auto":
        fmt = options.format
    elif delimiter == "\t":
        fmt = "clickhouse-tsv" if (has_types or any_null_token) else "tsv"
    else:
        fmt = "csv"
    clickhouse = fmt == "clickhouse-tsv"

    # Column names
    if has_header:
        raw_names = [c.strip() for c in head[0]]
        if clickhouse:
            raw_names = _unescape_tsv(pd.Series(raw_names, dtype=str)).tolist()
        names = [n if n else f"col{k + 1}" for k, n in enumerate(raw_names)]
    else:
        names = [f"col{k + 1}" for k in range(n_fields)]
    unnamed = {k for k, n in enumerate(names) if n == f"col{k + 1}" and has_header and not head[0][k].strip()}
    if options.columns is not None:
        if len(options.columns) != n_fields:
            raise IngestError(
                f"columns= gives {len(options.columns)} names but the file has {n_fields} fields",
                line=int(lines[0]),
                source=label,
            )
        names = list(options.columns)
        unnamed = set()
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise IngestError(f"duplicate column name {n!r}", line=header_line, column=n, source=label)
        seen.add(n)

    data = records.iloc[n_skip:].set_axis(names, axis=1).reset_index(drop=True)
    data_lines = lines[n_skip:]
    ctx = _Context(label=label, lines=data_lines, header_line=header_line, deadline=deadline)
    n_rows = len(data)
    if n_rows == 0:
        ctx.fail("the file has a header but no data rows")
    if n_rows > options.max_rows:
        ctx.fail(f"more than max_rows={options.max_rows} data rows", row=options.max_rows)
    type_of = dict(zip(names, types, strict=True)) if types else {}

    # Timestamp column
    ts_col = _find_timestamp_column(data, names, type_of, options, ctx)
    zone = options.timezone
    tz_match = _CH_TZ_RE.fullmatch(type_of.get(ts_col, ""))
    if tz_match:
        zone = tz_match.group(1)
    if zone != "UTC":
        _check_zone(zone, ctx)
    ctx.check_time("finding the timestamp column")
    index = _parse_timestamps(
        data[ts_col],
        column=ts_col,
        zone=zone,
        timestamp_format=options.timestamp_format,
        ctx=ctx,
        warnings=warnings,
    )
    ns = index.as_unit("ns").asi8
    if (ns % 1000).any():  # the store keeps microseconds: merge what it could not tell apart here
        index = pd.DatetimeIndex((ns - ns % 1000).view("datetime64[ns]")).tz_localize("UTC")

    # Classify the other columns: numeric (mostly numbers) or text
    decimal_comma = delimiter == ";"
    numeric: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    text_cols: list[str] = []
    forced_text = set(options.label_columns or ()) | (
        {options.metric_column} if options.metric_column else set()
    )
    for k, col in enumerate(names):
        if col == ts_col:
            continue
        ctx.check_time(f"reading column {col!r}")
        kind = _type_kind(type_of[col]) if col in type_of else None
        if col in forced_text or kind in ("str", "ts"):
            text_cols.append(col)
            continue
        values, bad = _to_float(data[col], decimal_comma=decimal_comma)
        n_numbers = int(np.count_nonzero(~np.isnan(values)))
        if kind == "num" or col == options.value_column or n_numbers >= int(bad.sum()):
            if k in unnamed and n_numbers == 0 and not bad.any():
                warnings.append(f"dropped column {k + 1}: it has no name and no values")
                continue
            numeric[col] = (values, bad)
        else:
            text_cols.append(col)

    ctx.check_time("building series")
    shape = _choose_shape(options, text_cols)
    if shape == "wide":
        series, duplicates = _build_wide(data, index, ts_col, numeric, text_cols, options, ctx)
    else:
        series, duplicates = _build_long(
            data, index, ts_col, numeric, text_cols, has_header, clickhouse, options, ctx, warnings
        )
    return ParsedFile(
        series=series,
        rows=n_rows,
        shape=shape,
        format=fmt,
        timestamp_column=ts_col,
        duplicates_resolved=duplicates,
        warnings=warnings,
    )


def _find_timestamp_column(
    data: pd.DataFrame, names: list[str], type_of: dict[str, str], options: IngestOptions, ctx: _Context
) -> str:
    if options.timestamp_column is not None:
        if options.timestamp_column not in names:
            ctx.fail(
                f"timestamp_column {options.timestamp_column!r} is not a column "
                f"(columns: {', '.join(names)})",
                column=options.timestamp_column,
            )
        return options.timestamp_column
    for col in names:
        if col in type_of and _type_kind(type_of[col]) == "ts":
            return col
    lowered = {n.lower(): n for n in reversed(names)}
    for candidate in _TIME_NAMES:
        if candidate in lowered:
            return lowered[candidate]
    sample = data.iloc[:20]
    for col in names:
        cells = [str(c).strip() for c in sample[col].tolist()]
        cells = [c for c in cells if c not in _NA_TOKENS]
        if cells and all(_is_timestamp_text(c, options.timestamp_format) for c in cells):
            return col
    if options.timestamp_format in ("unix_s", "unix_ms"):
        return names[0]
    first = [str(c).strip() for c in sample[names[0]].tolist()]
    if first and all(_UNIX_RE.fullmatch(c) and 1e8 <= abs(float(c)) < 9.2e12 for c in first):
        return names[0]  # unix seconds or milliseconds
    ctx.fail(f"no timestamp column found (columns: {', '.join(names)}); give timestamp_column")


def _choose_shape(options: IngestOptions, text_cols: list[str]) -> str:
    if options.shape != "auto":
        return options.shape
    if options.metric_column or options.value_column or options.label_columns:
        return "long"
    return "long" if text_cols else "wide"


def _require_columns(wanted: Sequence[str], available: Sequence[str], what: str, ctx: _Context) -> None:
    for col in wanted:
        if col not in available:
            ctx.fail(f"{what} {col!r} is not a column (columns: {', '.join(available)})", column=col)


def _fail_text_cell(data: pd.DataFrame, col: str, bad: np.ndarray, ctx: _Context, why: str) -> NoReturn:
    ctx.fail_at_first(bad, "text {cell!r} in a numeric column" + why, col, data[col])
    ctx.fail("no numeric values" + why, column=col)


def _text_mask(data: pd.DataFrame, col: str) -> np.ndarray:
    return _to_float(data[col], decimal_comma=False)[1]


def _check_numeric(
    data: pd.DataFrame, numeric: dict[str, tuple[np.ndarray, np.ndarray]], cols: Sequence[str], ctx: _Context
) -> None:
    for col in cols:
        values, bad = numeric[col]
        if bad.any():
            _fail_text_cell(data, col, bad, ctx, "")
        ctx.fail_at_first(np.isinf(values), "infinite number {cell!r}", col, data[col])


def _build_wide(
    data: pd.DataFrame,
    index: pd.DatetimeIndex,
    ts_col: str,
    numeric: dict[str, tuple[np.ndarray, np.ndarray]],
    text_cols: list[str],
    options: IngestOptions,
    ctx: _Context,
) -> tuple[list[ParsedSeries], int]:
    if options.metrics is not None:
        _require_columns(options.metrics, [c for c in data.columns if c != ts_col], "metric", ctx)
        cols = list(options.metrics)
    else:
        if text_cols:
            col = text_cols[0]
            _fail_text_cell(data, col, _text_mask(data, col), ctx, " (or give shape='long')")
        cols = list(numeric)
    for col in cols:
        if col not in numeric:
            _fail_text_cell(data, col, _text_mask(data, col), ctx, "")
    if not cols:
        ctx.fail("no numeric column: the file has only a timestamp column")
    _check_numeric(data, numeric, cols, ctx)
    frame = pd.DataFrame({col: numeric[col][0] for col in cols}, index=index)
    duplicates = 0
    repeated = index.duplicated(keep="first")
    if repeated.any():
        if options.duplicates == "error":
            ctx.fail(
                f"duplicate timestamp {index[repeated][0].isoformat()}",
                row=int(np.flatnonzero(repeated)[0]),
                column=ts_col,
            )
        n_groups = int(index.duplicated(keep=False).sum() - repeated.sum())
        duplicates = n_groups * len(cols)
        frame = _aggregate(frame.groupby(level=0, sort=True), options.duplicates)
    elif not index.is_monotonic_increasing:
        frame = frame.sort_index(kind="stable")
    series = []
    for col in cols:
        values = frame[col].astype(np.float64)
        values.name = col
        series.append(ParsedSeries(name=col, labels={}, values=values))
    return series, duplicates


def _numeric_labels(
    data: pd.DataFrame,
    index: pd.DatetimeIndex,
    metric_col: str,
    text_cols: list[str],
    candidates: list[str],
    numeric: dict[str, tuple[np.ndarray, np.ndarray]],
) -> list[str]:
    """Integer columns of a long table that tell series apart (a port, an interface index, a VLAN): the
    candidates to take as labels when, without them, rows repeat the same metric, labels and time and,
    with them, they do not. Otherwise none (the duplicates rule then applies as usual)."""
    keys = pd.DataFrame({c: data[c].to_numpy() for c in [metric_col, *text_cols] if c in data})
    keys["__ts"] = index.asi8
    if not keys.duplicated().any():
        return []
    integral = [
        c
        for c in candidates
        if np.isfinite(numeric[c][0]).all() and (np.mod(numeric[c][0], 1.0) == 0.0).all()
    ]
    if not integral:
        return []
    for c in integral:
        keys[c] = numeric[c][0]
    return [] if keys.duplicated().any() else integral


def _aggregate(grouped: DataFrameGroupBy[Any, Any], rule: str) -> pd.DataFrame:
    if rule == "last":
        return grouped.last()
    if rule == "first":
        return grouped.first()
    if rule == "mean":
        return grouped.mean()
    if rule == "max":
        return grouped.max()
    if rule == "min":
        return grouped.min()
    if rule == "sum":
        return grouped.sum(min_count=1)
    raise IngestError(f"unknown duplicates rule {rule!r}")


def _build_long(
    data: pd.DataFrame,
    index: pd.DatetimeIndex,
    ts_col: str,
    numeric: dict[str, tuple[np.ndarray, np.ndarray]],
    text_cols: list[str],
    has_header: bool,
    clickhouse: bool,
    options: IngestOptions,
    ctx: _Context,
    warnings: list[str],
) -> tuple[list[ParsedSeries], int]:
    names = [c for c in data.columns if c != ts_col]
    explicit = [c for c in (options.metric_column, options.value_column) if c] + list(
        options.label_columns or ()
    )
    _require_columns(explicit, names, "column", ctx)
    metric_col = options.metric_column
    if metric_col is None:
        metric_col = next((c for c in text_cols if c.lower() in _METRIC_NAMES), None)
    value_col = options.value_column
    if value_col is None:
        value_col = next((c for c in numeric if c.lower() in _VALUE_NAMES), None)
    if metric_col is None and text_cols and (value_col is not None or not has_header) and len(numeric) <= 1:
        metric_col = text_cols[0]
    if value_col is not None and value_col not in numeric:
        _fail_text_cell(data, value_col, _text_mask(data, value_col), ctx, "")
    if metric_col is not None:
        if value_col is None:
            if len(numeric) != 1:
                if not numeric:
                    col = next(c for c in text_cols if c != metric_col) if len(text_cols) > 1 else None
                    if col is not None:
                        _fail_text_cell(data, col, _text_mask(data, col), ctx, "")
                    ctx.fail("no numeric value column found")
                ctx.fail(f"several numeric columns ({', '.join(numeric)}); give value_column")
            value_col = next(iter(numeric))
        value_cols = [value_col]
        # a column with no values at all is more likely an unset label than a second value
        blank_cols = [c for c in numeric if c != value_col and not np.isfinite(numeric[c][0]).any()]
        text_cols = text_cols + blank_cols
        ignored = [c for c in numeric if c != value_col and c not in blank_cols]
        if ignored and options.label_columns is None:
            promoted = _numeric_labels(data, index, metric_col, text_cols, ignored, numeric)
            if promoted:
                text_cols = text_cols + promoted
                ignored = [c for c in ignored if c not in promoted]
                warnings.append(
                    f"numeric column(s) {', '.join(promoted)} taken as labels: without them rows repeat"
                    " the same metric and time (give label_columns to choose the labels yourself)"
                )
        if ignored:
            warnings.append(
                f"ignored numeric columns {', '.join(ignored)} (the value column is {value_col!r})"
            )
    else:
        value_cols = [value_col] if value_col is not None else list(numeric)
        if not value_cols:
            col = text_cols[0] if text_cols else None
            if col is not None:
                _fail_text_cell(data, col, _text_mask(data, col), ctx, "")
            ctx.fail("no numeric column")
    if options.label_columns is not None:
        label_cols = list(options.label_columns)
    else:
        label_cols = [c for c in text_cols if c != metric_col]
    _check_numeric(data, numeric, value_cols, ctx)

    def text_values(col: str) -> np.ndarray:
        cells = data[col].str.strip()
        cells = cells.where(cells != "\\N", "")
        if clickhouse:
            cells = _unescape_tsv(cells)
        return cells.to_numpy(dtype=object)

    labels = {f"l{i}": text_values(col) for i, col in enumerate(label_cols)}
    metric_names = text_values(metric_col) if metric_col is not None else None
    if metric_names is not None:
        empty = metric_names == ""
        ctx.fail_at_first(empty, "missing metric name {cell!r}", metric_col, data[metric_col])
    n = len(data)
    parts = []
    for col in value_cols:
        part = pd.DataFrame(
            {
                "__metric": metric_names if metric_names is not None else np.full(n, col, dtype=object),
                **labels,
                "__ts": index.asi8,
                "__v": numeric[col][0],
                "__row": np.arange(n),
            }
        )
        parts.append(part)
    frame = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    if options.metrics is not None:
        frame = frame[frame["__metric"].isin(list(options.metrics)).to_numpy()]
    series_keys = ["__metric", *labels]
    keys = [*series_keys, "__ts"]
    duplicates = 0
    repeated = frame.duplicated(keys, keep="first").to_numpy()
    if repeated.any():
        if options.duplicates == "error":
            first = frame.iloc[int(np.flatnonzero(repeated)[0])]
            ts = pd.Timestamp(int(first["__ts"]), tz="UTC").isoformat()
            ctx.fail(
                f"duplicate timestamp {ts} for metric {first['__metric']!r}",
                row=int(first["__row"]),
                column=ts_col,
            )
        duplicates = int(frame.duplicated(keys, keep=False).sum() - repeated.sum())
        grouped = frame.groupby(keys, sort=False)[["__v"]]
        frame = _aggregate(grouped, options.duplicates).reset_index()
    series = []
    for n_series, (key, group) in enumerate(frame.groupby(series_keys, sort=False)):
        if n_series % 500 == 0:
            ctx.check_time(f"building series ({n_series:,} so far)")
        key_tuple = key if isinstance(key, tuple) else (key,)
        order = np.argsort(group["__ts"].to_numpy(), kind="stable")
        ts_index = pd.DatetimeIndex(group["__ts"].to_numpy()[order].view("datetime64[ns]")).tz_localize("UTC")
        metric = str(key_tuple[0])
        values = pd.Series(group["__v"].to_numpy(dtype=np.float64)[order], index=ts_index, name=metric)
        label_map = {col: str(v) for col, v in zip(label_cols, key_tuple[1:], strict=True)}
        series.append(ParsedSeries(name=metric, labels=label_map, values=values))
    return series, duplicates
