"""API authentication and authorisation: a pure-ASGI middleware in front of every route.

Being middleware (not a per-router dependency), a router added later cannot forget it.

* Open: ``/api/health``, ``/docs``, ``/openapi.json``, ``/static/…``, ``/login``, ``/logout``.
* ``GET``/``HEAD`` anywhere else needs a ``read`` or ``admin`` token, and so do the ``POST``s of
  :data:`READ_POST_PATHS` (computations that store nothing: ad-hoc detection, window scan, upload
  preview); every other method needs ``admin``, and so does every method on :data:`ADMIN_ONLY_PATHS`
  (token management: a read token must not list tokens).
* Credentials: ``Authorization: Bearer <token>``, or the UI's session cookie (``telewatch_session``, a random
  id mapped server-side to the token's hash; see :class:`telewatch.services.sessions.SessionStore`). A
  cookie-authenticated write must come from the same origin (``Origin``, else ``Referer``, matching the
  request's host or ``base_url``: :func:`telewatch.core.http.same_origin`).
* Refusals: ``401`` + ``WWW-Authenticate: Bearer`` when the credential is missing or invalid (UI pages
  redirect to ``/login`` instead), ``403`` when the scope is too low or a cookie write is cross-origin —
  both with the same ``{"detail", "error"}`` body as every other error.

The principal (:class:`telewatch.services.tokens.Principal`) is left in ``request.state.principal``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote

import anyio.to_thread
from fastapi import FastAPI

# SESSION_COOKIE and Authenticator are re-exported: tests and benchmarks name them from here
from telewatch.core.http import SESSION_COOKIE as SESSION_COOKIE
from telewatch.core.http import same_origin, session_id_from
from telewatch.services.sessions import Authenticator as Authenticator
from telewatch.services.tokens import Principal, TokenScope, scope_allows
from telewatch.settings import Settings
from telewatch.store.db import Store

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

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


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in scope.get("headers") or []:
        name = key.decode("latin-1").lower()
        text = value.decode("latin-1")
        out[name] = f"{out[name]}; {text}" if name == "cookie" and name in out else text
    return out


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
