"""API tokens: scopes, the configured tokens (``TELEWATCH_API_TOKENS``) and the tokens kept in the store.

A token is a random string shown once; only its SHA-256 hash is kept. Two scopes: ``read`` (GET requests)
and ``admin`` (everything). Tokens are compared as hashes with :func:`hmac.compare_digest`.

>>> tokens = parse_token_config("admin:an-admin-token-1234,read:a-read-token-5678")
>>> [t.scope for t in tokens]
['admin', 'read']
>>> parse_token_config("admin:an-admin-token-1234,oops")
Traceback (most recent call last):
...
telewatch.core.errors.ConfigError: TELEWATCH_API_TOKENS entry 2 is not scope:token (scopes: read, admin)
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import duckdb

from telewatch.core.durations import parse_duration
from telewatch.core.errors import ConfigError, NotFoundError, ValidationError
from telewatch.store import auth as auth_store

# a stored token is a row of the store's repository; re-exported: routers and the CLI name it from here
from telewatch.store.auth import StoredToken as StoredToken
from telewatch.store.auth import TokenScope as TokenScope
from telewatch.store.db import Store

Scope = TokenScope
SCOPES: tuple[Scope, ...] = ("read", "admin")
MIN_TOKEN_LENGTH = 8
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
# last_used_at is written at most this often per token (a write per request would be wasteful)
_TOUCH_EVERY = timedelta(seconds=60)


# the longest lifetime a token may be given (also keeps expiry dates far from datetime's limits)
MAX_LIFETIME = timedelta(days=3650)


class TokenConflictError(ValidationError):
    """The token name is taken, or the token is already revoked (the API answers ``409``)."""


def parse_lifetime(text: str) -> timedelta:
    """A token lifetime such as ``"30d"`` or ``"12h"`` (the CLI's ``--expires-in`` syntax).

    >>> parse_lifetime("12h")
    datetime.timedelta(seconds=43200)
    >>> parse_lifetime("soon")
    Traceback (most recent call last):
    ...
    telewatch.core.errors.ValidationError: token expiry: expected a duration like '90s', '15m', '1h30m' or '2d', got 'soon'
    """
    try:
        lifetime = parse_duration(text)
    except OverflowError as exc:
        raise ValidationError(f"token expiry {text!r} is over the limit of {MAX_LIFETIME.days} days") from exc
    except ValueError as exc:
        raise ValidationError(f"token expiry: {exc}") from exc
    if lifetime <= timedelta(0):
        raise ValidationError("token expiry must be a positive duration")
    if lifetime > MAX_LIFETIME:
        raise ValidationError(f"token expiry {text!r} is over the limit of {MAX_LIFETIME.days} days")
    return lifetime


def hash_token(token: str) -> str:
    """Hex SHA-256 of a token: what the store keeps and what comparisons use.

    >>> hash_token("abc")[:16]
    'ba7816bf8f01cfea'
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe), prefixed ``tw_`` so it is recognisable in a leak scan."""
    return "tw_" + secrets.token_urlsafe(32)


def scope_allows(scope: str, needed: Scope) -> bool:
    """Whether a token of ``scope`` may do what needs ``needed``.

    >>> scope_allows("admin", "read"), scope_allows("read", "admin")
    (True, False)
    """
    return scope == "admin" or scope == needed


@dataclass(frozen=True)
class ConfigToken:
    """A token from configuration; ``token_hash`` only (the plain token is not kept)."""

    scope: Scope
    token_hash: str
    position: int

    @property
    def name(self) -> str:
        return f"config#{self.position}"


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: the token's name, its scope and where it came from."""

    name: str
    scope: Scope
    source: Literal["config", "store"]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def parse_token_config(text: str | None, *, variable: str = "TELEWATCH_API_TOKENS") -> list[ConfigToken]:
    """Parse ``scope:token[,scope:token…]``. Errors name the entry position, never the token."""
    if text is None or not text.strip():
        return []
    out: list[ConfigToken] = []
    for position, raw in enumerate(text.split(","), start=1):
        entry = raw.strip()
        scope, sep, token = entry.partition(":")
        scope, token = scope.strip(), token.strip()
        if not entry:
            raise ConfigError(f"{variable} entry {position} is empty (a stray comma?)")
        if not sep or scope not in SCOPES:
            raise ConfigError(f"{variable} entry {position} is not scope:token (scopes: read, admin)")
        if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
            raise ConfigError(
                f"{variable} entry {position}: the token must be at least {MIN_TOKEN_LENGTH} characters"
                " without spaces"
            )
        out.append(ConfigToken(scope=scope, token_hash=hash_token(token), position=position))
    return out


def create_token(
    store: Store, *, name: str, scope: str, expires_in: timedelta | None = None
) -> tuple[StoredToken, str]:
    """Create a token; returns its row and the plain token (shown once, never stored)."""
    if not _NAME.match(name or ""):
        raise ValidationError(
            f"token name {name!r} must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    if scope not in SCOPES:
        raise ValidationError(f"token scope {scope!r} must be one of: read, admin")
    if expires_in is not None and expires_in <= timedelta(0):
        raise ValidationError("token expiry must be a positive duration")
    if expires_in is not None and expires_in > MAX_LIFETIME:
        raise ValidationError(f"token expiry must be at most {MAX_LIFETIME.days} days")
    token = new_token()
    expires_at = _now() + expires_in if expires_in is not None else None
    with store.transaction() as cur:
        if auth_store.token_name_taken(cur, name):
            raise TokenConflictError(
                f"a token named {name!r} already exists (names stay taken after revoke): choose another name"
            )
        stored = auth_store.insert_token(
            cur,
            name=name,
            scope=scope,
            token_sha256=hash_token(token),
            created_at=_now(),
            expires_at=expires_at,
        )
    return stored, token


def list_tokens(store: Store) -> list[StoredToken]:
    """Every stored token, oldest first (revoked and expired ones included)."""
    return auth_store.list_tokens(store.cursor())


def revoke_token(store: Store, *, name: str, config_tokens: list[ConfigToken] | None = None) -> StoredToken:
    """Revoke a token by name; it is refused from then on (and so are UI sessions opened with it, which
    re-check their token on every request). Revoking twice is an error; so is naming a configured token
    (``config#N``, given in ``config_tokens``): those live in ``TELEWATCH_API_TOKENS``, not the store.
    """
    if any(t.name == name for t in config_tokens or []):
        raise ValidationError(
            f"the token {name!r} is configured in TELEWATCH_API_TOKENS and cannot be revoked through the"
            " API or the store: remove it from that setting and restart telewatch"
        )
    with store.transaction() as cur:
        found = auth_store.token_named(cur, name)
        if found is None:
            raise NotFoundError(f"no token named {name!r}")
        if found.revoked_at is not None:
            raise TokenConflictError(
                f"the token {name!r} was already revoked at {found.revoked_at:%Y-%m-%d %H:%M:%S} UTC"
            )
        return auth_store.mark_revoked(cur, found.id, at=_now())


def has_active_token(store: Store) -> bool:
    """Whether the store holds at least one token that is neither revoked nor expired."""
    return auth_store.count_active_tokens(store.cursor(), now=_now()) > 0


class TokenVerifier:
    """Resolves a presented token (or its hash) to a :class:`Principal`, or ``None`` when it is refused.

    Configured tokens are checked first, against every one of them in constant time; then the store.
    """

    def __init__(self, *, config_tokens: list[ConfigToken], store: Store | None) -> None:
        self.config_tokens = config_tokens
        self.store = store
        self._touched: dict[int, datetime] = {}

    def verify(self, token: str) -> Principal | None:
        return self.verify_hash(hash_token(token))

    def verify_hash(self, token_hash: str) -> Principal | None:
        return self.verify_config_hash(token_hash) or self.verify_store_hash(token_hash)

    def verify_config_hash(self, token_hash: str) -> Principal | None:
        """A configured token (no I/O)."""
        found: ConfigToken | None = None
        for candidate in self.config_tokens:  # no early exit: time does not depend on which matched
            if hmac.compare_digest(candidate.token_hash, token_hash):
                found = candidate
        if found is None:
            return None
        return Principal(name=found.name, scope=found.scope, source="config")

    def verify_store_hash(self, token_hash: str) -> Principal | None:
        """A token of the store that is neither revoked nor expired (a DuckDB query)."""
        if self.store is None:
            return None
        match = auth_store.token_with_hash(self.store.cursor(), token_hash)
        if match is None or not hmac.compare_digest(match.token_sha256, token_hash):
            return None
        found, now = match.token, _now()
        if found.revoked_at is not None or (found.expires_at is not None and found.expires_at <= now):
            return None
        self._touch(found.id, found.last_used_at, now)
        return Principal(name=found.name, scope=found.scope, source="store")

    def _touch(self, token_id: int, last_used: datetime | None, now: datetime) -> None:
        seen = self._touched.get(token_id) or last_used
        if seen is not None and now - seen < _TOUCH_EVERY:
            return
        self._touched[token_id] = now
        assert self.store is not None
        try:
            auth_store.touch_token(self.store.cursor(), token_id, at=now)
        except duckdb.Error:  # best effort: a write conflict must not refuse a valid token
            self._touched.pop(token_id, None)


SIGN_IN_CODE_TTL = timedelta(minutes=15)
BOOTSTRAP_PREFIX = "admin-"  # the name of the admin token a zero-config start creates: admin-<date>-<time>


class SignInCodes:
    """One-time sign-in codes: a short random code stands for a token (by its hash) for 15 minutes and is
    exchanged once for a UI session, so a sign-in link never carries the token itself.

    Kept in this process only (a code outlives neither its 15 minutes nor a restart).

    >>> codes = SignInCodes()
    >>> code = codes.issue("f" * 64)
    >>> codes.redeem(code), codes.redeem(code)
    ('ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff', None)
    """

    def __init__(self, *, ttl: timedelta = SIGN_IN_CODE_TTL, clock: Any = None) -> None:
        self.ttl_s = ttl.total_seconds()
        self._clock = clock or time.monotonic
        self._codes: dict[str, tuple[str, float]] = {}  # sha256(code) -> (token hash, expiry)
        self._lock = threading.Lock()

    def issue(self, token_hash: str) -> str:
        """A new code for a token's hash (the token must be verified again when the code is redeemed)."""
        code = secrets.token_urlsafe(16)
        now = self._clock()
        with self._lock:
            self._codes = {k: v for k, v in self._codes.items() if v[1] > now}
            self._codes[hash_token(code)] = (token_hash, now + self.ttl_s)
        return code

    def redeem(self, code: str) -> str | None:
        """The token hash a code stands for, once: the code is spent whether or not it was still valid."""
        with self._lock:
            entry = self._codes.pop(hash_token(code), None)
        if entry is None or entry[1] <= self._clock():
            return None
        return entry[0]


def unused_bootstrap_token_hash(store: Store) -> str | None:
    """The hash of the zero-config admin token while nobody has used it yet (so a restart can print a new
    sign-in link for it), else ``None``."""
    return auth_store.unused_bootstrap_token_hash(store.cursor(), name_prefix=BOOTSTRAP_PREFIX, now=_now())
