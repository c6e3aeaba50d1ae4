"""The tokens-and-sessions repository. SQL with bind parameters only.

Owns the tables ``api_tokens`` (name, scope, the SHA-256 of the token — never the token — and its
created/last-used/expiry/revocation times; sequence ``api_token_id_seq``) and ``ui_sessions`` (the SHA-256
of a UI session's random id, the hash of the token it was opened with, and its expiry). Times are naive
UTC ``datetime`` values, as the store keeps them. Sign-in codes live in process memory only
(:class:`telewatch.services.tokens.SignInCodes`): no table. The decisions (scopes, name rules, what a
revoked or expired token may do) are :mod:`telewatch.services.tokens`' and
:mod:`telewatch.services.sessions`'.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import duckdb

TokenScope = Literal["read", "admin"]


@dataclass(frozen=True)
class StoredToken:
    """A token row of the store (never the token itself)."""

    id: int
    name: str
    scope: TokenScope
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= datetime.now(UTC).replace(tzinfo=None):
            return "expired"
        return "active"


@dataclass(frozen=True)
class TokenMatch:
    """The token row found for a presented hash, with the hash as stored (for a constant-time re-check)."""

    token: StoredToken
    token_sha256: str


_COLUMNS = "id, name, scope, created_at, last_used_at, expires_at, revoked_at"


def _token(row: Sequence[Any]) -> StoredToken:
    return StoredToken(
        id=int(row[0]),
        name=str(row[1]),
        scope=row[2],
        created_at=row[3],
        last_used_at=row[4],
        expires_at=row[5],
        revoked_at=row[6],
    )


# -- api_tokens ---------------------------------------------------------------------------------
def token_name_taken(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether a token of that name exists (revoked and expired ones included: names stay taken)."""
    return con.execute("SELECT 1 FROM api_tokens WHERE name = ?", [name]).fetchone() is not None


def insert_token(
    con: duckdb.DuckDBPyConnection,
    *,
    name: str,
    scope: str,
    token_sha256: str,
    created_at: datetime,
    expires_at: datetime | None,
) -> StoredToken:
    row = con.execute(
        f"INSERT INTO api_tokens (name, scope, token_sha256, created_at, expires_at)"
        f" VALUES (?, ?, ?, ?, ?) RETURNING {_COLUMNS}",
        [name, scope, token_sha256, created_at, expires_at],
    ).fetchone()
    assert row is not None  # RETURNING always yields the row
    return _token(row)


def list_tokens(con: duckdb.DuckDBPyConnection) -> list[StoredToken]:
    """Every stored token, oldest first."""
    return [_token(r) for r in con.execute(f"SELECT {_COLUMNS} FROM api_tokens ORDER BY id").fetchall()]


def token_named(con: duckdb.DuckDBPyConnection, name: str) -> StoredToken | None:
    row = con.execute(f"SELECT {_COLUMNS} FROM api_tokens WHERE name = ?", [name]).fetchone()
    return _token(row) if row is not None else None


def mark_revoked(con: duckdb.DuckDBPyConnection, token_id: int, *, at: datetime) -> StoredToken:
    row = con.execute(
        f"UPDATE api_tokens SET revoked_at = ? WHERE id = ? RETURNING {_COLUMNS}", [at, token_id]
    ).fetchone()
    assert row is not None  # the caller read the row in the same transaction
    return _token(row)


def count_active_tokens(con: duckdb.DuckDBPyConnection, *, now: datetime) -> int:
    """Tokens neither revoked nor expired at ``now``."""
    row = con.execute(
        "SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
        [now],
    ).fetchone()
    return int(row[0]) if row else 0


def token_with_hash(con: duckdb.DuckDBPyConnection, token_sha256: str) -> TokenMatch | None:
    """The token whose stored hash is ``token_sha256`` (whatever its state), or None."""
    row = con.execute(
        f"SELECT {_COLUMNS}, token_sha256 FROM api_tokens WHERE token_sha256 = ?", [token_sha256]
    ).fetchone()
    return TokenMatch(token=_token(row), token_sha256=str(row[7])) if row is not None else None


def touch_token(con: duckdb.DuckDBPyConnection, token_id: int, *, at: datetime) -> None:
    """Record that the token was used at ``at``."""
    con.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", [at, token_id])


def unused_bootstrap_token_hash(
    con: duckdb.DuckDBPyConnection, *, name_prefix: str, now: datetime
) -> str | None:
    """The hash of the admin token named ``name_prefix…`` while it is the only active token and nobody has
    used it yet, else None."""
    row = con.execute(
        "SELECT token_sha256 FROM api_tokens WHERE name LIKE ? AND scope = 'admin' AND last_used_at IS NULL"
        " AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)"
        " AND (SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL) = 1",
        [name_prefix + "%", now],
    ).fetchone()
    return str(row[0]) if row else None


# -- ui_sessions --------------------------------------------------------------------------------
def delete_expired_sessions(con: duckdb.DuckDBPyConnection, *, now: datetime) -> None:
    con.execute("DELETE FROM ui_sessions WHERE expires_at <= ?", [now])


def save_session(
    con: duckdb.DuckDBPyConnection,
    *,
    session_sha256: str,
    token_sha256: str,
    created_at: datetime,
    expires_at: datetime,
) -> None:
    """Insert or replace the session with this id's hash."""
    con.execute(
        "INSERT OR REPLACE INTO ui_sessions (session_sha256, token_sha256, created_at, expires_at)"
        " VALUES (?, ?, ?, ?)",
        [session_sha256, token_sha256, created_at, expires_at],
    )


def live_session(
    con: duckdb.DuckDBPyConnection, session_sha256: str, *, now: datetime
) -> tuple[str, float] | None:
    """The token hash of a session not expired at ``now`` and its expiry as a UNIX time, or None."""
    row = con.execute(
        "SELECT token_sha256, epoch(expires_at) FROM ui_sessions WHERE session_sha256 = ? AND expires_at > ?",
        [session_sha256, now],
    ).fetchone()
    return (str(row[0]), float(row[1])) if row is not None else None


def delete_session(con: duckdb.DuckDBPyConnection, session_sha256: str) -> None:
    con.execute("DELETE FROM ui_sessions WHERE session_sha256 = ?", [session_sha256])
