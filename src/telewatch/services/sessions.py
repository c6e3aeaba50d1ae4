"""UI sessions and the authenticator that resolves credentials to a principal.

Shared by the API's auth gate (:mod:`telewatch.api.auth`) and the sign-in pages (:mod:`telewatch.web.login`):
neither imports the other. Tokens themselves are :mod:`telewatch.services.tokens`'; the rows are
:mod:`telewatch.store.auth`'s. The store lookups are DuckDB queries, so the ``async`` methods run them in a
worker thread (the event loop never waits on the store).
"""

from __future__ import annotations

import secrets
import threading
import time
from datetime import UTC, datetime

import anyio.to_thread

from telewatch.services.tokens import Principal, SignInCodes, TokenVerifier, hash_token, parse_token_config
from telewatch.settings import Settings
from telewatch.store import auth as auth_store
from telewatch.store.db import Store


class SessionStore:
    """UI sessions: random id → (token hash, expiry), in memory and, given a store, in ``ui_sessions``.

    The cookie carries only the random id, never the token or its hash; the store keeps the id's SHA-256
    only. Each request re-checks the token behind the session, so revoking a token ends its sessions too.
    With a store, a restart of the server keeps everyone signed in: a session unknown to this process is
    looked up there once (off the event loop) and then served from memory.
    """

    def __init__(self, *, ttl_s: float, store: Store | None = None) -> None:
        self.ttl_s = ttl_s
        self.store = store
        self._sessions: dict[str, tuple[str, float]] = {}  # id -> (token hash, expiry as a UNIX time)
        self._lock = threading.Lock()

    def create(self, token_hash: str, *, session_id: str | None = None) -> str:
        """A new session for a verified token's hash; returns its id (random unless given, e.g. by tests).

        With a store this writes to it: call it from a worker thread, not the event loop.
        """
        session_id = session_id or secrets.token_urlsafe(32)
        now = time.time()
        with self._lock:
            self._sessions = {k: v for k, v in self._sessions.items() if v[1] > now}  # drop expired ones
            self._sessions[session_id] = (token_hash, now + self.ttl_s)
        if self.store is not None:
            with self.store.transaction() as cur:
                auth_store.delete_expired_sessions(cur, now=_utc(now))
                auth_store.save_session(
                    cur,
                    session_sha256=hash_token(session_id),
                    token_sha256=token_hash,
                    created_at=_utc(now),
                    expires_at=_utc(now + self.ttl_s),
                )
        return session_id

    def token_hash(self, session_id: str) -> str | None:
        """The token hash of a live session this process knows (memory only: safe on the event loop)."""
        with self._lock:
            entry = self._sessions.get(session_id)
            if entry is None:
                return None
            if entry[1] <= time.time():
                del self._sessions[session_id]
                return None
            return entry[0]

    def stored_token_hash(self, session_id: str) -> str | None:
        """The token hash of a live session kept in the store (a query: call it from a worker thread);
        remembered in memory once found."""
        if self.store is None:
            return None
        found = auth_store.live_session(self.store.cursor(), hash_token(session_id), now=_utc(time.time()))
        if found is None:
            return None
        with self._lock:
            self._sessions[session_id] = found
        return found[0]

    async def lookup(self, session_id: str) -> str | None:
        """The token hash behind a session: from memory, else (after a restart) from the store."""
        found = self.token_hash(session_id)
        if found is None and self.store is not None:
            found = await anyio.to_thread.run_sync(self.stored_token_hash, session_id)
        return found

    def delete(self, session_id: str) -> None:
        """End a session (sign-out, or its token no longer valid); with a store, call it from a worker thread."""
        with self._lock:
            self._sessions.pop(session_id, None)
        if self.store is not None:
            with self.store.transaction() as cur:
                auth_store.delete_session(cur, hash_token(session_id))


def _utc(unix: float) -> datetime:
    """A UNIX time as the store's naive UTC timestamp."""
    return datetime.fromtimestamp(unix, UTC).replace(tzinfo=None)


class Authenticator:
    """Resolves a request's credentials to a principal; shared by the auth gate and the sign-in page."""

    def __init__(self, *, settings: Settings, store: Store | None) -> None:
        raw = settings.api_tokens.get_secret_value() if settings.api_tokens is not None else None
        self.verifier = TokenVerifier(config_tokens=parse_token_config(raw), store=store)
        self.sessions = SessionStore(ttl_s=float(settings.session_ttl_s), store=store)
        self.sign_in_codes = SignInCodes()  # one-time sign-in links (``/login?code=…``)
        self.base_url = settings.base_url

    async def verify_hash(self, token_hash: str) -> Principal | None:
        principal = self.verifier.verify_config_hash(token_hash)
        if principal is not None or self.verifier.store is None:
            return principal
        # the store lookup is a DuckDB query: keep it off the event loop
        return await anyio.to_thread.run_sync(self.verifier.verify_store_hash, token_hash)

    async def verify_token(self, token: str) -> Principal | None:
        return await self.verify_hash(hash_token(token))
