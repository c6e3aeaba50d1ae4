"""One line per event in the scheduler's log: a filter on the source drivers' loggers that turns a
traceback into its exception's first line (``telewatch run`` and ``telewatch check`` put it on)."""

from __future__ import annotations

import logging

from telewatch.sources.base import first_line

#: The source drivers' loggers. clickhouse-driver logs every failed connection attempt with its
#: traceback (``exc_info=True``); psycopg, httpx/httpcore and pysnmp may too. A filter on a logger only
#: sees that logger's own records, so the modules' loggers are named one by one (``getLogger`` creates
#: them ahead of the driver's import; loggers already there under these prefixes are found as well).
DRIVER_LOGGERS = (
    "clickhouse_driver",
    "clickhouse_driver.connection",
    "clickhouse_driver.compression",
    "clickhouse_driver.log",
    "clickhouse_driver.settings.writer",
    "clickhouse_driver.columns.service",
    "clickhouse_driver.streams.native",
    "psycopg",
    "psycopg.pq",
    "psycopg.transaction",
    "psycopg.pool",
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "pysnmp",
)


class OneLineLog(logging.Filter):
    """Make a record one line: a traceback becomes its exception's first line after the message, and a
    message of several lines is joined (the scheduler's log stays one line per event, greppable)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging
            return True
        if exc is not None:
            message = f"{message}: {type(exc).__name__}: {first_line(exc)}"
        if exc is not None or record.exc_text or record.stack_info or "\n" in message:
            record.msg, record.args = " ".join(message.split()), None
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def one_line_driver_logs() -> OneLineLog:
    """Put :class:`OneLineLog` on the source drivers' loggers (idempotent); returns the filter."""
    names = set(DRIVER_LOGGERS)
    names.update(
        name
        for name in logging.root.manager.loggerDict
        if any(
            name.startswith(prefix + ".") for prefix in ("clickhouse_driver", "psycopg", "httpcore", "pysnmp")
        )
    )
    flt: OneLineLog | None = None
    for name in sorted(names):
        logger = logging.getLogger(name)
        existing = next((f for f in logger.filters if isinstance(f, OneLineLog)), None)
        if existing is None:
            flt = flt or OneLineLog()
            logger.addFilter(flt)
        else:
            flt = flt or existing
    assert flt is not None
    return flt
