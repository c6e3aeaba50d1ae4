"""What the command modules share: the ``--db`` option, opening the store it names, and the error exit."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from telewatch.store.db import Store

err_console = Console(stderr=True)

DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help="Store file (default: $TELEWATCH_DB_PATH, else telewatch.duckdb in $TELEWATCH_DATA_DIR,"
        " which defaults to ~/.local/share/telewatch).",
    ),
]


def open_store(db: Path | None) -> Store:
    """The store at ``db``, else the one the settings name (``TELEWATCH_DB_PATH``, ``TELEWATCH_DATA_DIR``)."""
    from telewatch.settings import Settings
    from telewatch.store.db import Store

    return Store(db if db is not None else Settings().store_path)


def fail(exc: Exception) -> typer.Exit:
    """Print ``exc`` as an error on stderr; raise the returned ``typer.Exit`` (exit code 2)."""
    err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)
