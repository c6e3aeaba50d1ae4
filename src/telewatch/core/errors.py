"""Typed errors. Every error a user can cause says what was wrong and where."""

from __future__ import annotations


class TelewatchError(Exception):
    """Base class of every error telewatch raises on purpose."""


class ValidationError(TelewatchError, ValueError):
    """Input that telewatch cannot accept (wrong type, wrong shape, out of range)."""


class ConfigError(TelewatchError, ValueError):
    """A configuration file or setting is invalid."""


class NotFoundError(TelewatchError, LookupError):
    """A metric, monitor or other named object does not exist."""


class IngestError(ValidationError):
    """A file could not be ingested; nothing of it was stored.

    ``line`` is 1-based and counts physical lines of the file, the header included;
    ``column`` is the column's name (``col<k>``, k its 1-based position, when the file has no header).
    """

    def __init__(
        self, message: str, *, line: int | None = None, column: str | None = None, source: str | None = None
    ) -> None:
        self.reason = message
        self.line = line
        self.column = column
        self.source = source
        where = []
        if source:
            where.append(str(source))
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column!r}")
        prefix = (", ".join(where) + ": ") if where else ""
        super().__init__(prefix + message)
