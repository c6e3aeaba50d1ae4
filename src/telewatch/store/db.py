"""The embedded DuckDB store: opening, migrating, transactions."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from telewatch.core.errors import TelewatchError
from telewatch.store.migrations import MIGRATIONS, Migration


class StoreError(TelewatchError):
    """The store cannot be opened or used."""


class StoreLockedError(StoreError):
    """Another process (``telewatch serve``, the scheduler) holds the store: DuckDB lets one process open it."""


class _Transaction:
    """An open :meth:`Store.transaction`, and whether it holds the store's series-write lock."""

    __slots__ = ("series",)

    def __init__(self, series: bool) -> None:
        self.series = series


# id(cursor) -> its open transaction. A cursor belongs to one thread and lives as long as the
# thread's Store, so its id is stable while the transaction is open.
_OPEN: dict[int, _Transaction] = {}


def hold_series_writes(con: duckdb.DuckDBPyConnection) -> None:
    """Refuse a write of ``points`` or ``scores`` in a transaction opened without ``series=True``.

    Those tables have no unique index (migration 0010): a writer deletes the stored rows it replaces,
    then appends. Two transactions of one process writing the same new ``(metric, minute)`` side by
    side would both find nothing to delete (each sees the store as it was when it began) and both
    append, leaving the minute twice. So such writers run in ``store.transaction(series=True)``,
    which takes the store's series-write lock *before* the transaction begins and keeps it until it
    ends: the next writer begins after the previous one committed and replaces its rows. Other
    transactions (reads, alerts, incidents) never wait for it; another process cannot open the
    store at all (DuckDB's file lock). A cursor outside :meth:`Store.transaction` (each statement
    its own transaction, for single-threaded tools and tests) is not checked.
    """
    tx = _OPEN.get(id(con))
    if tx is not None and not tx.series:
        raise StoreError(
            "points and scores are written in store.transaction(series=True), which serialises their"
            " writers (they have no unique index)"
        )


class Store:
    """One DuckDB database file (or ``:memory:``).

    DuckDB lets one process write a file at a time; threads of that process share this object and
    each takes its own cursor via :meth:`cursor`.
    """

    def __init__(self, path: Path | str, *, migrations: list[Migration] | None = None) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(self.path)
        except duckdb.IOException as exc:
            # DuckDB's lock is an OS file lock (fcntl): it dies with its process, so a killed
            # telewatch leaves no stale lock behind and this error always means a live holder.
            if "lock" in str(exc).lower():
                holder = re.search(r"\(PID (\d+)\)", str(exc))
                raise StoreLockedError(
                    f"the store {self.path} is in use by another telewatch process"
                    + (f" (PID {holder.group(1)})" if holder else "")
                    + " (is `telewatch serve` running?). Stop it, or send the data through its API."
                ) from exc
            raise StoreError(f"cannot open the store {self.path}: {exc}") from exc
        self._con.execute("SET TimeZone = 'UTC'")
        self._series_lock = threading.Lock()
        self._local = threading.local()
        self.migrate(MIGRATIONS if migrations is None else migrations)

    # -- lifecycle ----------------------------------------------------------------------------
    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection for the calling thread (DuckDB connections are not thread-safe)."""
        cur: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._con.cursor()
            cur.execute("SET TimeZone = 'UTC'")
            self._local.cursor = cur
        return cur

    @contextmanager
    def transaction(self, *, series: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """All or nothing: commits on success, rolls back on any exception.

        ``series=True`` for a transaction that writes ``points`` or ``scores``: it waits for the
        previous such transaction of this process to end before it begins (see
        :func:`hold_series_writes`).
        """
        cur = self.cursor()
        if id(cur) in _OPEN:
            raise StoreError("a transaction is already open on this thread's connection")
        if series:
            self._series_lock.acquire()
        _OPEN[id(cur)] = _Transaction(series)
        try:
            cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")
        finally:
            del _OPEN[id(cur)]
            if series:
                self._series_lock.release()

    # -- schema -------------------------------------------------------------------------------
    def schema_version(self) -> int:
        row = self.cursor().execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
        return int(row[0]) if row else 0

    def migrate(self, migrations: list[Migration]) -> list[int]:
        """Apply the migrations not yet applied, in order; returns the versions applied."""
        cur = self.cursor()
        cur.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,"
            " applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)"
        )
        done = {int(r[0]) for r in cur.execute("SELECT version FROM schema_migrations").fetchall()}
        versions = [m.version for m in migrations]
        if versions != sorted(set(versions)):
            raise StoreError("migrations must have unique, increasing version numbers")
        if done and max(done) > max(versions, default=0):
            raise StoreError(
                f"the store {self.path} has schema version {max(done)}, newer than this telewatch "
                f"knows ({max(versions, default=0)}): upgrade telewatch"
            )
        applied = []
        for migration in migrations:
            if migration.version in done:
                continue
            with self.transaction() as tx:
                tx.execute(migration.sql)
                tx.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                    [migration.version, migration.name],
                )
            applied.append(migration.version)
        return applied
