"""Event logs as a source: JSON-lines or syslog files turned into per-minute counts.

Each line is one event with fields (JSON keys; for syslog: ``host``, ``program``, ``message`` and any
``key=value`` pairs in the message, plus the named groups of ``pattern``). Counts are made per minute:

- ``count_by: [event]`` gives a metric ``<metric>{event=...}`` per distinct value (session_start,
  session_stop, alive, ...);
- ``counts:`` gives named metrics counting the events that match ``where`` (e.g. failed logins);
- ``classify:`` sets the ``event`` field from regular expressions on the message (syslog lines).

Minutes without events count 0 for every series seen before, so a silent service shows as a drop.
The file is followed incrementally: the byte offset and the file's identity (device, inode) are kept
in the monitor's cursor, only complete lines of complete minutes (before ``end``) are consumed, and a
rotated file (``path.1`` with the remembered inode, logrotate's default) is read to its end first.
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from telewatch.core.errors import ConfigError
from telewatch.sources.base import FetchedSeries, Source, SourceState, make_series, series_key, utc

_SYSLOG_5424 = re.compile(
    r"^(?:<\d{1,3}>)?\d\s+(?P<ts>\S+)\s+(?P<host>\S+)\s+(?P<program>\S+)\s+\S+\s+\S+\s+(?:-|\[.*?\])\s*(?P<message>.*)$"
)
_SYSLOG_3164 = re.compile(
    r"^(?:<\d{1,3}>)?(?P<ts>[A-Z][a-z]{2}\s+\d{1,2}\s+\d\d:\d\d:\d\d)\s+(?P<host>\S+)\s+(?P<program>[^:\[\s]+)(?:\[(?P<pid>\d+)\])?:\s*(?P<message>.*)$"
)
_SYSLOG_ISO = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\dT\S+)\s+(?P<host>\S+)\s+(?P<program>[^:\[\s]+)(?:\[(?P<pid>\d+)\])?:\s*(?P<message>.*)$"
)
_KV = re.compile(r"(\w+)=(\"[^\"]*\"|\S+)")


@dataclass(frozen=True)
class CountSpec:
    """A named per-minute count of the events whose fields equal ``where``."""

    name: str
    where: Mapping[str, str]


class LogSource(Source):
    """Per-minute event counts from a JSON-lines or syslog file.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "ev.jsonl"
    >>> _ = p.write_text('{"ts": "2024-01-01T00:00:10Z", "event": "login"}\\n'
    ...                  '{"ts": "2024-01-01T00:00:50Z", "event": "login"}\\n')
    >>> src = LogSource(path=p, count_by=["event"])
    >>> [(s.key, s.values.tolist()) for s in src.fetch(start=pd.Timestamp("2024-01-01", tz="UTC"),
    ...                                                 end=pd.Timestamp("2024-01-01 00:02", tz="UTC"))]
    [('events{event=login}', [2.0, 0.0])]
    """

    kind: ClassVar[str] = "logs"

    def __init__(
        self,
        *,
        path: str | Path,
        format: str = "jsonl",
        metric: str = "events",
        count_by: list[str] | None = None,
        counts: list[CountSpec] | None = None,
        timestamp_field: str = "ts",
        timestamp_format: str | None = None,
        pattern: str | None = None,
        classify: Mapping[str, str] | None = None,
        timezone: str = "UTC",
        max_bytes_per_run: int = 256 * 1024 * 1024,
    ) -> None:
        if format not in {"jsonl", "syslog"}:
            raise ConfigError(f"log format must be jsonl or syslog, not {format!r}")
        if not count_by and not counts:
            raise ConfigError("a log source needs `count_by` fields or named `counts`")
        self.path = Path(path)
        self.format = format
        self.metric = metric
        self.count_by = list(count_by or [])
        self.counts = list(counts or [])
        self.timestamp_field = timestamp_field
        self.timestamp_format = timestamp_format
        try:
            self.pattern = re.compile(pattern) if pattern else None
            self.classify = {k: re.compile(v) for k, v in (classify or {}).items()}
        except re.error as exc:
            raise ConfigError(f"log source: invalid regular expression: {exc}") from exc
        self.timezone = timezone
        self.max_bytes_per_run = max_bytes_per_run

    def describe(self) -> str:
        return f"logs {self.path}"

    # -- parsing --------------------------------------------------------------------------------
    def _timestamp(self, raw: Any, year_hint: int) -> pd.Timestamp | None:
        try:
            if isinstance(raw, int | float):
                stamp = pd.Timestamp(float(raw), unit="ms" if raw > 1e11 else "s")
            elif self.timestamp_format:
                stamp = pd.Timestamp(pd.to_datetime(str(raw), format=self.timestamp_format))
            elif isinstance(raw, str) and re.match(r"^[A-Z][a-z]{2}\s", raw):
                stamp = pd.Timestamp(pd.to_datetime(f"{year_hint} {raw}", format="%Y %b %d %H:%M:%S"))
            else:
                stamp = pd.Timestamp(str(raw))
        except (ValueError, TypeError):
            return None
        if stamp is pd.NaT:
            return None
        if stamp.tzinfo is None:
            stamp = stamp.tz_localize(self.timezone)
        return stamp.tz_convert("UTC")

    def parse_line(self, line: str, *, year_hint: int = 1970) -> tuple[pd.Timestamp, dict[str, str]] | None:
        """The timestamp and fields of one line, or None when the line is not an event."""
        line = line.strip()
        if not line:
            return None
        fields: dict[str, str] = {}
        if self.format == "jsonl":
            try:
                obj = json.loads(line)
            except ValueError:
                return None
            if not isinstance(obj, dict):
                return None
            raw_ts = obj.get(self.timestamp_field)
            fields = {
                str(k): "" if v is None else str(v) for k, v in obj.items() if not isinstance(v, dict | list)
            }
            message = fields.get("message", fields.get("msg", ""))
        else:
            match = _SYSLOG_5424.match(line) or _SYSLOG_ISO.match(line) or _SYSLOG_3164.match(line)
            if not match:
                return None
            fields = {k: v for k, v in match.groupdict().items() if v is not None}
            raw_ts = fields.pop("ts")
            message = fields.get("message", "")
            for key, value in _KV.findall(message):
                fields.setdefault(key, value.strip('"'))
        if self.pattern is not None and (m := self.pattern.search(message or line)):
            fields.update({k: v for k, v in m.groupdict().items() if v is not None})
        for event, regex in self.classify.items():
            if regex.search(message or line):
                fields["event"] = event
                break
        stamp = self._timestamp(raw_ts, year_hint)
        if stamp is None:
            return None
        return stamp, fields

    def _keys(self, fields: Mapping[str, str]) -> Iterator[tuple[str, dict[str, str]]]:
        if self.count_by and all(f in fields for f in self.count_by):
            yield self.metric, {f: fields[f] for f in self.count_by}
        for spec in self.counts:
            if all(fields.get(k) == str(v) for k, v in spec.where.items()):
                yield spec.name, {}

    # -- reading --------------------------------------------------------------------------------
    def _count_lines(
        self,
        path: Path,
        offset: int,
        *,
        start: pd.Timestamp | None,
        end: pd.Timestamp,
        counts: dict[tuple[str, tuple[tuple[str, str], ...]], dict[pd.Timestamp, int]],
    ) -> tuple[int, bool]:
        """Count the events of minutes in [start, end) from ``offset`` on.

        Returns the offset up to which the file is consumed and whether reading stopped at a line of
        a minute at or after ``end`` (that line and the rest are read next time).
        """
        consumed = offset
        with path.open("rb") as fh:
            fh.seek(offset)
            while consumed - offset < self.max_bytes_per_run:
                raw = fh.readline()
                if not raw or not raw.endswith(b"\n"):
                    break  # a partial last line is read next time, once complete
                parsed = self.parse_line(raw.decode("utf-8", errors="replace"), year_hint=end.year)
                if parsed is not None:
                    stamp, fields = parsed
                    minute = stamp.floor("min")
                    if minute >= end:
                        return consumed, True
                    if start is None or minute >= start:
                        for name, labels in self._keys(fields):
                            bucket = counts[(name, tuple(sorted(labels.items())))]
                            bucket[minute] = bucket.get(minute, 0) + 1
                consumed += len(raw)
        return consumed, False

    def _to_series(
        self,
        counts: Mapping[tuple[str, tuple[tuple[str, str], ...]], Mapping[pd.Timestamp, int]],
        minutes: pd.DatetimeIndex,
    ) -> list[FetchedSeries]:
        out = []
        for (name, labels), by_minute in sorted(counts.items()):
            observed = pd.Series({m: float(n) for m, n in by_minute.items()}, dtype="float64")
            values = pd.Series(0.0, index=minutes).add(observed.reindex(minutes), fill_value=0.0).sort_index()
            out.append(
                FetchedSeries(name=name, labels=dict(labels), values=make_series(values.index, values))
            )
        return out

    def fetch(self, *, start: pd.Timestamp, end: pd.Timestamp) -> list[FetchedSeries]:
        """Count the whole file (and its rotated predecessor ``path.1``) over ``start <= ts < end``."""
        if not self.path.exists():
            raise self.error("the log file does not exist")
        start, end = utc(start).ceil("min"), utc(end).floor("min")
        counts: dict[tuple[str, tuple[tuple[str, str], ...]], dict[pd.Timestamp, int]] = defaultdict(dict)
        for path in (self.path.with_name(self.path.name + ".1"), self.path):
            if path.exists():
                self._count_lines(path, 0, start=start, end=end, counts=counts)
        minutes = pd.date_range(start, end, freq="min", inclusive="left")
        return self._to_series(counts, minutes)

    def fetch_incremental(
        self, *, state: SourceState, end: pd.Timestamp, lookback: pd.Timedelta | None = None
    ) -> tuple[list[FetchedSeries], SourceState]:
        end = utc(end).floor("min")
        cursor = dict(state.cursor)
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise self.error("cannot read the log file", exc) from None
        identity = f"{st.st_dev}:{st.st_ino}"
        counts: dict[tuple[str, tuple[tuple[str, str], ...]], dict[pd.Timestamp, int]] = defaultdict(dict)
        last_minute = pd.Timestamp(cursor["last_minute"]) if cursor.get("last_minute") else None
        count_from = last_minute + pd.Timedelta(minutes=1) if last_minute is not None else None
        offset = int(cursor.get("offset", 0))
        blocked = False
        if cursor.get("file") and cursor["file"] != identity:
            # rotated: finish the old file if logrotate left it as path.1, then start the new one at 0
            rotated = self.path.with_name(self.path.name + ".1")
            try:
                rst = os.stat(rotated)
            except OSError:
                rst = None
            if rst is not None and f"{rst.st_dev}:{rst.st_ino}" == cursor["file"]:
                old_offset, blocked = self._count_lines(
                    rotated, offset, start=count_from, end=end, counts=counts
                )
                if blocked:
                    cursor["offset"] = old_offset  # the old file still has lines of later minutes
            if not blocked:
                offset = 0
        elif st.st_size < offset:  # truncated in place (copytruncate)
            offset = 0
        if not blocked:
            cursor["offset"], _ = self._count_lines(
                self.path, offset, start=count_from, end=end, counts=counts
            )
            cursor["file"] = identity
        for name, labels in cursor.get("keys", []):
            counts.setdefault((name, tuple((k, v) for k, v in labels)), {})
        first = count_from
        if first is None:
            seen = [m for by_minute in counts.values() for m in by_minute]
            if not seen:
                return [], SourceState(last_seen=dict(state.last_seen), cursor=cursor)
            first = min(seen)
        minutes = pd.date_range(first, end, freq="min", inclusive="left")
        if len(minutes) == 0:
            return [], SourceState(last_seen=dict(state.last_seen), cursor=cursor)
        out = self._to_series(counts, minutes)
        cursor["last_minute"] = minutes[-1].isoformat()
        cursor["keys"] = sorted([name, [list(p) for p in labels]] for name, labels in counts)
        last_seen = dict(state.last_seen)
        for item in out:
            last_seen[series_key(item.name, item.labels)] = minutes[-1]
        return out, SourceState(last_seen=last_seen, cursor=cursor)
