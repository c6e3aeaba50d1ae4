"""The FastAPI application: REST API, OpenAPI docs served offline, and the web UI."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from telewatch import __version__
from telewatch.api.deps import StoreDep
from telewatch.api.routers import anomalies, ingest, metrics
from telewatch.api.schemas import ERROR_RESPONSES, HealthPublic
from telewatch.core.errors import IngestError, NotFoundError, TelewatchError
from telewatch.services import status as status_service
from telewatch.settings import Settings
from telewatch.store.db import Store

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _swagger_dir() -> Path:
    import swagger_ui_bundle

    return Path(swagger_ui_bundle.swagger_ui_path)


def _plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


# The HTML pages' Content-Security-Policy: scripts only from this server (and, for an inline script,
# the request's nonce), no framing, no plugins, no <base>, forms post here only. style-src allows inline
# styles: the pages' style attributes and the <style> elements the chart library adds. One inline event
# handler is allowed by its hash, the overview's group filter (onchange="this.form.submit()"): no other
# handler text runs (move it to overview.js and drop the hash).
_SUBMIT_HANDLER = "'sha256-osjxnKEPL/pQJbFk1dKsF7PYFmTyMWGmVSiL9inhxJY='"  # this.form.submit()
_CSP = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'unsafe-hashes' " + _SUBMIT_HANDLER + ";"
    " style-src 'self' 'unsafe-inline';"
    " img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; object-src 'none';"
    " base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# on every answer, HTML or not
_ALWAYS = [
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    """Pure-ASGI: ``X-Frame-Options: DENY``, ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy:
    same-origin`` on every answer, and on HTML pages a ``Content-Security-Policy`` with a per-request
    nonce (``request.state.csp_nonce``: templates write ``<script nonce="{{ request.state.csp_nonce }}">``
    for an inline script). Outermost, so refusals and redirects carry them too (docs/security.md)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(18)
        scope.setdefault("state", {})["csp_nonce"] = nonce

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() not in {h for h, _ in _ALWAYS}
                ]
                headers.extend(_ALWAYS)
                content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                if content_type.startswith(b"text/html"):
                    headers.append((b"content-security-policy", _CSP.format(nonce=nonce).encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(settings: Settings | None = None, *, store: Store | None = None) -> FastAPI:
    """Build the application. Opens the store (or uses ``store``) and closes it on shutdown."""
    settings = settings or Settings()
    owned = store is None
    the_store = store if store is not None else Store(settings.store_path)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:
            the_store.close()

    app = FastAPI(
        title="telewatch",
        version=__version__,
        description="Anomaly detection, explanation and alerting for IT and telecom telemetry.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        responses=ERROR_RESPONSES,  # every operation may answer these (see api/schemas.py)
    )
    app.state.store = the_store
    app.state.settings = settings

    _install_error_handlers(app)
    # One router per resource (api/routers/<resource>.py), included here, one line each.
    app.include_router(metrics.router)
    app.include_router(anomalies.router)
    app.include_router(ingest.router)
    app.add_middleware(ingest.UploadLimit)  # 413 while a too-large body streams in, before it is spooled
    from telewatch.api.routers import configuration, detect, feedback, ingest_preview, prom_metrics

    app.include_router(ingest_preview.router)
    app.include_router(configuration.router)
    app.include_router(detect.router)
    app.include_router(feedback.router)
    app.include_router(prom_metrics.router)
    from telewatch.api.routers import forecast as forecast_router

    app.include_router(forecast_router.router)
    from telewatch.api.routers import alerts as alerts_router

    app.include_router(alerts_router.router)
    from telewatch.api.routers import explain as explain_router
    from telewatch.api.routers import incidents as incidents_router

    app.include_router(explain_router.router)
    app.include_router(incidents_router.router)
    from telewatch.api.routers import tokens as tokens_router

    app.include_router(tokens_router.router)
    app.include_router(tokens_router.page_router)
    # -- end of routers

    @app.get("/api/health", response_model=HealthPublic, tags=["health"])
    def health(store: StoreDep) -> HealthPublic:
        """Liveness and the store's schema version."""
        return HealthPublic(
            status="ok",
            version=__version__,
            schema_version=store.schema_version(),
            metrics=status_service.metric_count(store),
        )

    app.mount("/static/swagger", StaticFiles(directory=_swagger_dir()), name="swagger")

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="telewatch API",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/swagger/favicon-32x32.png",
        )
        # Swagger UI starts from an inline script: it runs under the page's CSP with the request's nonce
        nonce = request.state.csp_nonce
        html = bytes(page.body).decode().replace("<script>", f'<script nonce="{nonce}">')
        return HTMLResponse(html)

    from telewatch.web.routes import install_web

    install_web(app, plotly_js=_plotly_js())
    # Authentication: a pure-ASGI gate in front of every route, so no router can forget it (api/auth.py).
    # Added last, so it is the outermost middleware: nothing runs for a request it refuses.
    from telewatch.api.auth import install_auth
    from telewatch.web.login import install_login

    try:
        authenticator = install_auth(app, settings=settings, store=the_store)
    except Exception:
        if owned:
            the_store.close()
        raise
    install_login(app, authenticator=authenticator)
    app.add_middleware(SecurityHeaders)  # outermost: every answer, refusals included
    return app


def _install_error_handlers(app: FastAPI) -> None:
    def body(exc: Exception, **extra: object) -> dict[str, object]:
        return {"detail": str(exc), "error": type(exc).__name__, **extra}

    @app.exception_handler(TelewatchError)
    async def telewatch_error(_: Request, exc: TelewatchError) -> JSONResponse:
        if isinstance(exc, NotFoundError):
            return JSONResponse(body(exc), status_code=404)
        if isinstance(exc, IngestError):
            return JSONResponse(body(exc, line=exc.line, column=exc.column), status_code=400)
        return JSONResponse(body(exc), status_code=400)

    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # the same {"detail", "error"} body as every other error (404 of an unknown path included)
        kind = {404: "NotFound", 405: "MethodNotAllowed", 413: "TooLarge"}.get(exc.status_code, "HTTPError")
        return JSONResponse(
            {"detail": str(exc.detail), "error": kind}, status_code=exc.status_code, headers=exc.headers
        )

    import duckdb

    @app.exception_handler(UnicodeError)
    @app.exception_handler(duckdb.InvalidInputException)
    async def unencodable_text(request: Request, exc: Exception) -> JSONResponse:
        # a JSON body may hold a lone surrogate ("\ud800"): valid JSON, a Python str, but not Unicode text
        # that the store or a file can take — the client's error (400), not the server's (500)
        if isinstance(exc, UnicodeError) or "surrogate" in str(exc):
            detail = "the request holds text that is not valid Unicode (a lone surrogate such as \\ud800)"
            return JSONResponse({"detail": detail, "error": "ValidationError"}, status_code=400)
        raise exc

    @app.exception_handler(RequestValidationError)
    async def request_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()))
            parts.append(f"{where}: {err.get('msg')}")
        return JSONResponse({"detail": "; ".join(parts), "error": "RequestValidationError"}, status_code=422)
