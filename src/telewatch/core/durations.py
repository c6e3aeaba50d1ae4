"""Durations as people write them in configuration files: ``90``, ``"15m"``, ``"1h30m"``, ``"2d"``."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator

# longer units first: "min" must not match as "m" followed by "in"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|min|s|m|h|d|w)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> timedelta:
    """``90`` (seconds), ``"15m"``, ``"1h30m"``, ``"2d"`` → timedelta.

    >>> parse_duration("1h30m")
    datetime.timedelta(seconds=5400)
    >>> parse_duration(45)
    datetime.timedelta(seconds=45)
    >>> parse_duration("5min") == parse_duration("5m")
    True
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(seconds=float(value))
    if not isinstance(value, str):
        raise ValueError(f"expected a duration like '15m' or '1h30m', got {value!r}")
    text = value.strip().lower().replace(" ", "")
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(f"expected a duration like '90s', '15m', '1h30m' or '2d', got {value!r}")
    return timedelta(seconds=total)


# A pydantic field type that accepts any of the forms above.
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
