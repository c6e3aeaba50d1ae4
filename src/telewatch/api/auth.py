"""API authentication and authorisation: a pure-ASGI middleware in front of every route.

Being middleware (not a per-router dependency), a router added later cannot forget it.

* Open: ``/api/health``, ``/docs``, ``/openapi.json``, ``/static/…``, ``/login``, ``/logout``.
* ``GET``/``HEAD`` anywhere else needs a ``read`` or ``admin`` token, and so do the ``POST``s of
  :data:`READ_POST_PATHS` (computations that store nothing: ad-hoc detection, window scan, upload
  preview); every other method needs ``admin``, and so does every method on :data:`ADMIN_ONLY_PATHS`
  (token management: a read token must not list tokens).
* Credentials: ``Authorization: Bearer <token>``, or the UI's session cookie (``telewatch_session``, a random
  id mapped server-side to the token's hash; see :class:`SessionStore`). A cookie-authenticated write must
  come from the same origin (``Origin``, else ``Referer``, matching the request's host or ``base_url``).
* Refusals: ``401`` + ``WWW-Authenticate: Bearer`` when the credential is missing or invalid (UI pages
  redirect to ``/login`` instead), ``403`` when the scope is too low or a cookie write is cross-origin —
  both with the same ``{"detail", "error"}`` body as every other error.

The principal (:class:`telewatch.services.tokens.Principal`) is left in ``request.state.principal``.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote, urlsplit

import anyio.to_thread
from fastapi import FastAPI

from telewatch.services.tokens import (
    Principal,
    SignInCodes,
    TokenScope,
    TokenVerifier,
    hash_token,
    parse_token_config,
    scope_allows,
)
from telewatch.settings import Settings
from telewatch.store.db import Store

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SESSION_COOKIE = "telewatch_session"
OPEN_PATHS = frozenset({"/api/health", "/docs", "/openapi.json", "/login", "/logout", "/favicon.ico"})
OPEN_PREFIXES = ("/static/",)
READ_METHODS = frozenset({"GET", "HEAD"})
# paths that need an admin token for every method, reads included (a read token must not list tokens)
ADMIN_ONLY_PATHS = frozenset({"/api/tokens", "/settings/tokens"})
# POSTs that only compute an answer and store nothing (a body too large for a query string): a read token
# may call them, so a read sign-in can use the explorer, the window scan and the upload preview
READ_POST_PATHS = frozenset({"/api/detect", "/api/scan", "/api/ingest/preview"})
# paths whose clients are programs, not people: they get 401, never a redirect to the sign-in page
_API_PREFIXES = ("/api/", "/metrics")
SECURITY_SCHEME = "bearerAuth"


def is_open_path(path: str) -> bool:
    """Whether a path is served without credentials.

    >>> is_open_path("/api/health"), is_open_path("/static/ui/style.css"), is_open_path("/api/metrics")
    (True, True, False)
    """
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def needed_scope(method: str, path: str) -> TokenScope:
    """The scope a request needs: ``read`` for GET/HEAD, ``admin`` for other methods and admin-only paths.

    >>> needed_scope("GET", "/api/metrics"), needed_scope("GET", "/api/tokens"), needed_scope("POST", "/x")
    ('read', 'admin', 'admin')
    >>> needed_scope("POST", "/api/detect"), needed_scope("POST", "/api/detect/run")
    ('read', 'admin')
    """
    if method.upper() == "POST" and path.rstrip("/") in READ_POST_PATHS:
        return "read"
    if method.upper() not in READ_METHODS:
        return "admin"
    if path.rstrip("/") in ADMIN_ONLY_PATHS or path.startswith(tuple(p + "/" for p in ADMIN_ONLY_PATHS)):
        return "admin"
    return "read"


def safe_next(target: str | None) -> str:
    """A post-sign-in redirect target: a local path only (no open redirect to another site).

    >>> safe_next("/explore?x=1"), safe_next("//evil.example/"), safe_next("https://evil.example/")
    ('/explore?x=1', '/', '/')
    """
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


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
                cur.execute("DELETE FROM ui_sessions WHERE expires_at <= ?", [_utc(now)])
                cur.execute(
                    "INSERT OR REPLACE INTO ui_sessions (session_sha256, token_sha256, created_at, expires_at)"
                    " VALUES (?, ?, ?, ?)",
                    [hash_token(session_id), token_hash, _utc(now), _utc(now + self.ttl_s)],
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
        row = (
            self.store.cursor()
            .execute(
                "SELECT token_sha256, epoch(expires_at) FROM ui_sessions"
                " WHERE session_sha256 = ? AND expires_at > ?",
                [hash_token(session_id), _utc(time.time())],
            )
            .fetchone()
        )
        if row is None:
            return None
        with self._lock:
            self._sessions[session_id] = (str(row[0]), float(row[1]))
        return str(row[0])

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
                cur.execute("DELETE FROM ui_sessions WHERE session_sha256 = ?", [hash_token(session_id)])


def _utc(unix: float) -> datetime:
    """A UNIX time as the store's naive UTC timestamp."""
    return datetime.fromtimestamp(unix, UTC).replace(tzinfo=None)


class Authenticator:
    """Resolves a request's credentials to a principal; shared by the middleware and the sign-in page."""

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


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in scope.get("headers") or []:
        name = key.decode("latin-1").lower()
        text = value.decode("latin-1")
        out[name] = f"{out[name]}; {text}" if name == "cookie" and name in out else text
    return out


def session_id_from(headers: dict[str, str]) -> str | None:
    raw = headers.get("cookie")
    if not raw:
        return None
    cookie: SimpleCookie = SimpleCookie()
    try:
        cookie.load(raw)
    except Exception:  # a malformed Cookie header: treat as no session
        return None
    morsel = cookie.get(SESSION_COOKIE)
    return morsel.value if morsel is not None and morsel.value else None


def same_origin(headers: dict[str, str], base_url: str) -> bool:
    """Whether ``Origin`` (else ``Referer``) names this server: the request's ``Host`` or ``base_url``'s host."""
    origin = headers.get("origin") or headers.get("referer")
    if not origin or origin == "null":
        return False
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    allowed = {headers.get("host", "").lower(), urlsplit(base_url).netloc.lower()} - {""}
    return parts.netloc.lower() in allowed


class AuthMiddleware:
    """The pure-ASGI gate in front of the whole application (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, authenticator: Authenticator) -> None:
        self.app = app
        self.auth = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and not is_open_path(scope.get("path", "")):
            # a WebSocket route added later is gated too: read scope, bearer header or session cookie
            ws_principal, _ = await self._principal(_headers(scope))
            if ws_principal is None:
                await send({"type": "websocket.close", "code": 1008})  # before accept: an HTTP 403
                return
            scope.setdefault("state", {})["principal"] = ws_principal
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if is_open_path(path):
            await self.app(scope, receive, send)
            return
        method: str = scope.get("method", "GET").upper()
        headers = _headers(scope)
        principal: Principal | None = None
        via_cookie = False
        authorization = headers.get("authorization", "")
        if authorization:
            kind, _, token = authorization.partition(" ")
            if kind.lower() != "bearer" or not token.strip():
                await self._refuse(send, 401, "the Authorization header must be 'Bearer <token>'")
                return
            principal = await self.auth.verify_token(token.strip())
            if principal is None:
                await self._refuse(send, 401, "the token is not valid (unknown, revoked or expired)")
                return
        else:
            session_id = session_id_from(headers)
            token_hash = await self.auth.sessions.lookup(session_id) if session_id else None
            if token_hash is not None and session_id:
                principal = await self.auth.verify_hash(token_hash)
                if principal is None:  # the token behind it was revoked or expired
                    await anyio.to_thread.run_sync(self.auth.sessions.delete, session_id)
                via_cookie = principal is not None
        if principal is None:
            if method in READ_METHODS and not path.startswith(_API_PREFIXES):
                await self._redirect_to_login(scope, send)
                return
            await self._refuse(send, 401, "authentication required: send 'Authorization: Bearer <token>'")
            return
        needed = needed_scope(method, path)
        if not scope_allows(principal.scope, needed):
            await self._refuse(
                send, 403, f"{method} {path} needs an admin token; this token's scope is {principal.scope!r}"
            )
            return
        if via_cookie and method not in READ_METHODS and not same_origin(headers, self.auth.base_url):
            await self._refuse(
                send,
                403,
                "cross-origin request refused: a signed-in write must come from telewatch's own pages",
            )
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    async def _principal(self, headers: dict[str, str]) -> tuple[Principal | None, bool]:
        """The principal of a bearer header or a session cookie, and whether it came from the cookie."""
        authorization = headers.get("authorization", "")
        if authorization:
            kind, _, token = authorization.partition(" ")
            if kind.lower() != "bearer" or not token.strip():
                return None, False
            return await self.auth.verify_token(token.strip()), False
        session_id = session_id_from(headers)
        token_hash = await self.auth.sessions.lookup(session_id) if session_id else None
        if token_hash is None:
            return None, False
        principal = await self.auth.verify_hash(token_hash)
        return principal, principal is not None

    @staticmethod
    async def _refuse(send: Send, status: int, detail: str) -> None:
        body = json.dumps(
            {"detail": detail, "error": "Unauthorized" if status == 401 else "Forbidden"}
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if status == 401:
            headers.append((b"www-authenticate", b'Bearer realm="telewatch"'))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    async def _redirect_to_login(scope: Scope, send: Send) -> None:
        target = scope.get("path", "/")
        query = scope.get("query_string", b"").decode("latin-1")
        if query:
            target += "?" + query
        location = "/login" if target == "/" else "/login?next=" + quote(target, safe="")
        await send(
            {
                "type": "http.response.start",
                "status": 303,
                "headers": [(b"location", location.encode("latin-1")), (b"content-length", b"0")],
            }
        )
        await send({"type": "http.response.body", "body": b""})


class ComputeLimit:
    """Pure-ASGI, behind :class:`AuthMiddleware`: a bound on the ad-hoc computations a read token may start
    (:data:`READ_POST_PATHS`: detection, window scan, upload preview) running at once — per token and in
    all. Past either bound the request is refused at once with ``429`` and ``Retry-After`` (never queued:
    a queue would hold the bodies in memory), so four clients cannot run the server out of memory."""

    def __init__(self, app: ASGIApp, *, overall: int, per_token: int, retry_after_s: int = 5) -> None:
        self.app = app
        self.overall = overall
        self.per_token = per_token
        self.retry_after_s = retry_after_s
        self.running = 0
        self.by_token: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method", "GET").upper() != "POST"
            or scope.get("path", "").rstrip("/") not in READ_POST_PATHS
        ):
            await self.app(scope, receive, send)
            return
        principal = scope.get("state", {}).get("principal")
        key = principal.name if principal is not None else ""
        mine = self.by_token.get(key, 0)
        # check and count with no await in between: the event loop runs one request at a time here
        if self.running >= self.overall or mine >= self.per_token:
            detail = (
                f"too many computations at once ({mine} of this token's {self.per_token},"
                f" {self.running} of {self.overall} in all): retry in {self.retry_after_s} s"
            )
            body = json.dumps({"detail": detail, "error": "TooManyRequests"}).encode()
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(self.retry_after_s).encode()),
            ]
            await send({"type": "http.response.start", "status": 429, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        self.running += 1
        self.by_token[key] = mine + 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.running -= 1
            left = self.by_token[key] - 1
            if left:
                self.by_token[key] = left
            else:
                del self.by_token[key]


def _declare_bearer_scheme(app: FastAPI) -> None:
    """OpenAPI: a bearer scheme (so ``/docs`` has "Authorize"), required everywhere but the open paths."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token (scope read or admin); see docs/security.md.",
        }
        has_error_schema = "ErrorPublic" in components.get("schemas", {})
        error_content = (
            {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorPublic"}}}
            if has_error_schema
            else {"application/json": {"schema": {"type": "object"}}}
        )
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                if not isinstance(operation, dict) or method.startswith("x-"):
                    continue
                if is_open_path(path):
                    operation["security"] = []
                    continue
                operation["security"] = [{SECURITY_SCHEME: []}]
                responses = operation.setdefault("responses", {})
                responses.setdefault(
                    "401", {"description": "Missing or invalid token", "content": error_content}
                )
                responses.setdefault(
                    "403", {"description": "The token's scope is too low", "content": error_content}
                )
                if method == "post" and path.rstrip("/") in READ_POST_PATHS:
                    responses.setdefault(
                        "429",
                        {
                            "description": "Too many computations running at once (per token or in all):"
                            " retry after Retry-After seconds",
                            "content": error_content,
                        },
                    )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_auth(app: FastAPI, *, settings: Settings, store: Store | None) -> Authenticator:
    """Put the auth middleware in front of ``app`` and declare the bearer scheme in its OpenAPI schema.

    Raises :class:`telewatch.core.errors.ConfigError` when ``settings.api_tokens`` is malformed.
    """
    authenticator = Authenticator(settings=settings, store=store)
    app.state.authenticator = authenticator
    app.add_middleware(  # inside the auth gate: it counts per principal
        ComputeLimit,
        overall=settings.max_concurrent_compute,
        per_token=settings.max_concurrent_compute_per_token,
    )
    app.add_middleware(AuthMiddleware, authenticator=authenticator)
    _declare_bearer_scheme(app)
    return authenticator
