"""API tokens, managed while the server runs (admin only, ``GET`` included; see ``api/auth.py``).

* ``GET /api/tokens``: the store's tokens and the configured ones (``source: "config"``), never a secret.
* ``POST /api/tokens``: create one; the token is in the ``201`` body once, and never again.
* ``POST /api/tokens/{name}/revoke``: revoke one; requests and UI sessions with it are refused from then on.

The logic is :mod:`telewatch.services.tokens`, shared with ``telewatch tokens``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from telewatch import __version__
from telewatch.api.deps import StoreDep
from telewatch.api.schemas import ErrorPublic
from telewatch.services import tokens as service

router = APIRouter(prefix="/api/tokens", tags=["tokens"])
# the UI page (admin only, like the API: see ``ADMIN_ONLY_PATHS`` in api/auth.py)
page_router = APIRouter()
_TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parents[2] / "web" / "templates"))
# on top of the answers every operation may give (ERROR_RESPONSES, declared in api/app.py)
_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorPublic, "description": "Bad input (scope, expiry, name), or a configured token"},
    404: {"model": ErrorPublic, "description": "No token of that name"},
    409: {"model": ErrorPublic, "description": "The name is taken, or the token is already revoked"},
}


class TokenCreate(BaseModel):
    name: str = Field(
        min_length=1, max_length=64, description="Who or what uses it: letters, digits, '.', '_', '-'."
    )
    scope: Literal["read", "admin"] = Field(default="read", description="read (GET only) or admin.")
    expires_in: str | None = Field(
        default=None, max_length=32, description="Lifetime such as '30d' or '12h'; no expiry if omitted."
    )


class TokenPublic(BaseModel):
    name: str = Field(description="The token's name; configured tokens are 'config#N' (N: position).")
    scope: str
    source: Literal["store", "config"]
    state: Literal["active", "expired", "revoked"]
    created_at: datetime | None
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenPublic):
    token: str = Field(description="The token itself: shown in this answer only, store it now.")


def _utc(value: datetime | None) -> datetime | None:
    """The store's naive UTC timestamps, marked as UTC (RFC 3339 date-times need an offset)."""
    return None if value is None else value.replace(tzinfo=UTC)


def _public(row: service.StoredToken) -> TokenPublic:
    return TokenPublic(
        name=row.name,
        scope=row.scope,
        source="store",
        state=row.state,  # type: ignore[arg-type]
        created_at=_utc(row.created_at),
        last_used_at=_utc(row.last_used_at),
        expires_at=_utc(row.expires_at),
        revoked_at=_utc(row.revoked_at),
    )


def _config_tokens(request: Request) -> list[service.ConfigToken]:
    authenticator = getattr(request.app.state, "authenticator", None)
    return list(authenticator.verifier.config_tokens) if authenticator is not None else []


def _conflict(exc: service.TokenConflictError) -> JSONResponse:
    return JSONResponse({"detail": str(exc), "error": "Conflict"}, status_code=409)


@router.get("", response_model=list[TokenPublic], responses=_ERRORS)
def list_tokens(request: Request, store: StoreDep) -> list[TokenPublic]:
    """Every token: configured ones first (``config#N``), then the store's, oldest first. No secrets."""
    configured = [
        TokenPublic(
            name=t.name,
            scope=t.scope,
            source="config",
            state="active",
            created_at=None,
            last_used_at=None,
            expires_at=None,
            revoked_at=None,
        )
        for t in _config_tokens(request)
    ]
    return configured + [_public(row) for row in service.list_tokens(store)]


@router.post("", status_code=201, response_model=TokenCreated, responses=_ERRORS)
def create_token(body: TokenCreate, store: StoreDep) -> TokenCreated | JSONResponse:
    """Create a token. The answer holds the token once: only its SHA-256 hash is kept."""
    lifetime = service.parse_lifetime(body.expires_in) if body.expires_in is not None else None
    try:
        row, token = service.create_token(store, name=body.name, scope=body.scope, expires_in=lifetime)
    except service.TokenConflictError as exc:
        return _conflict(exc)
    return TokenCreated(**_public(row).model_dump(), token=token)


@router.post("/{name}/revoke", response_model=TokenPublic, responses=_ERRORS)
def revoke_token(name: str, request: Request, store: StoreDep) -> TokenPublic | JSONResponse:
    """Revoke a store token: requests with it get ``401`` and UI sessions opened with it end.

    Revoking the token this request uses is allowed. Configured tokens (``config#N``) cannot be revoked here.
    """
    try:
        row = service.revoke_token(store, name=name, config_tokens=_config_tokens(request))
    except service.TokenConflictError as exc:
        return _conflict(exc)
    return _public(row)


@page_router.get("/settings/tokens", response_class=HTMLResponse, include_in_schema=False)
def tokens_page(request: Request) -> HTMLResponse:
    """The UI page: list, create (shown once, with a copy button) and revoke tokens."""
    return _TEMPLATES.TemplateResponse(request, "tokens.html", {"page": "tokens", "version": __version__})
