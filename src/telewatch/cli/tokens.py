"""``telewatch tokens``: create, list and revoke the API tokens kept in the store.

The store keeps only a token's SHA-256 hash: ``create`` prints the token once, ``list`` never shows one.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from telewatch.cli.common import DbOption
from telewatch.cli.common import fail as _fail
from telewatch.cli.common import open_store as _store
from telewatch.core.errors import TelewatchError

tokens_app = typer.Typer(
    help="API tokens kept in the store (scopes: read, admin). See docs/security.md.", no_args_is_help=True
)
console = Console()
err_console = Console(stderr=True)


_API_CALLS = {
    "create": 'POST /api/tokens with {"name": …, "scope": …, "expires_in": …}',
    "list": "GET /api/tokens",
    "revoke": "POST /api/tokens/NAME/revoke",
}


def _locked(exc: TelewatchError, *, action: str) -> TelewatchError:
    """When the store is held by a running server, say so and point to the API and the UI page."""
    from telewatch.store.db import StoreLockedError

    if not isinstance(exc, StoreLockedError):
        return exc
    return TelewatchError(
        f"{exc}\nThe running server holds the store: {action} tokens through it instead, with"
        f" `{_API_CALLS[action]}` and an admin token (Authorization: Bearer …), or on the UI page"
        " /settings/tokens (signed in as admin). See docs/security.md, 'Managing tokens while the server"
        " runs'."
    )


def _ts(value: Any) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


@tokens_app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="A name for the token (who or what uses it).")],
    scope: Annotated[str, typer.Option("--scope", help="read (GET only) or admin (everything).")] = "read",
    expires_in: Annotated[
        str | None, typer.Option("--expires-in", help="Lifetime, e.g. 30d or 12h (default: no expiry).")
    ] = None,
    db: DbOption = None,
) -> None:
    """Create a token and print it ONCE (only its hash is stored)."""
    from telewatch.services import tokens

    try:
        lifetime = tokens.parse_lifetime(expires_in) if expires_in is not None else None
    except ValueError as exc:
        raise _fail(ValueError(f"--expires-in: {exc}")) from exc
    try:
        with _store(db) as store:
            row, token = tokens.create_token(store, name=name, scope=scope, expires_in=lifetime)
    except TelewatchError as exc:
        raise _fail(_locked(exc, action="create")) from exc
    expiry = f", expires {_ts(row.expires_at)}" if row.expires_at else ""
    err_console.print(f"created token [bold]{row.name}[/] (scope {row.scope}{expiry}); it is shown only now:")
    # the token alone on stdout, so `TOKEN=$(telewatch tokens create …)` works
    print(token)


@tokens_app.command("list")
def list_cmd(db: DbOption = None) -> None:
    """The stored tokens: name, scope, state and dates (never the token)."""
    from telewatch.services import tokens

    try:
        with _store(db) as store:
            rows = tokens.list_tokens(store)
    except TelewatchError as exc:
        raise _fail(_locked(exc, action="list")) from exc
    if not rows:
        console.print(
            "no tokens in the store (create one with `telewatch tokens create --name N --scope admin`)"
        )
        return
    table = Table("name", "scope", "state", "created", "last used", "expires", "revoked")
    for row in rows:
        table.add_row(
            row.name,
            row.scope,
            row.state,
            _ts(row.created_at),
            _ts(row.last_used_at),
            _ts(row.expires_at),
            _ts(row.revoked_at),
        )
    console.print(table)


@tokens_app.command("revoke")
def revoke(
    name: Annotated[str, typer.Argument(help="The token's name.")],
    db: DbOption = None,
) -> None:
    """Revoke a token: every request with it, and every UI session signed in with it, is refused."""
    from telewatch.services import tokens

    try:
        with _store(db) as store:
            row = tokens.revoke_token(store, name=name)
    except TelewatchError as exc:
        raise _fail(_locked(exc, action="revoke")) from exc
    console.print(f"revoked token {row.name} ({row.scope}) at {_ts(row.revoked_at)}")


def ensure_bootstrap_token(*, settings: Any, store: Any, url_host: str, port: int, codes: Any) -> str | None:
    """Zero-config start: with no token configured anywhere, create an admin token in the store.

    Returns a one-time sign-in link (``http://HOST:PORT/login?code=…``: a code from ``codes``, a
    :class:`telewatch.services.tokens.SignInCodes`, that works once within 15 minutes; the token itself is
    never printed), or ``None`` when a token already exists. While the created token has never been used,
    each start prints a new link for it.
    """
    from datetime import UTC, datetime

    from telewatch.services import tokens

    raw = settings.api_tokens.get_secret_value() if settings.api_tokens is not None else None
    if tokens.parse_token_config(raw):
        return None
    token_hash = tokens.unused_bootstrap_token_hash(store)
    if token_hash is None:
        if tokens.has_active_token(store):
            return None
        name = tokens.BOOTSTRAP_PREFIX + datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        _, token = tokens.create_token(store, name=name, scope="admin")
        token_hash = tokens.hash_token(token)
    return f"http://{url_host}:{port}/login?code={codes.issue(token_hash)}"


def install_log_redaction(settings: Any) -> None:
    """Mask secrets in every log line: the root logger and uvicorn's, with the configured tokens registered."""
    import logging

    from telewatch.core.secrets import install_redacting_filter, install_redacting_record_factory

    raw = settings.api_tokens.get_secret_value() if settings.api_tokens is not None else ""
    known = [part.partition(":")[2].strip() for part in raw.split(",") if ":" in part]
    install_redacting_record_factory(known)
    for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access", "telewatch"):
        install_redacting_filter(known, logger=logging.getLogger(name) if name else None)
