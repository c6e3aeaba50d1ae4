"""``telewatch labels``: store and list labelled anomaly windows (ground truth for `bench labels`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from telewatch.core.errors import TelewatchError

labels_app = typer.Typer(help="Labelled anomaly windows: import and list.", no_args_is_help=True)
console = Console()
DbOption = Annotated[Path | None, typer.Option("--db", help="Store file.")]


def _store(db: Path | None):  # type: ignore[no-untyped-def]
    from telewatch.settings import Settings
    from telewatch.store.db import Store

    return Store((Settings() if db is None else Settings(db_path=db)).store_path)


@labels_app.command("import")
def import_labels(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV with metric,start,end[,kind][,note].")
    ],
    source: Annotated[str, typer.Option(help="Who made the labels.")] = "user",
    timezone: Annotated[str, typer.Option(help="Zone of naive times in the file.")] = "UTC",
    db: DbOption = None,
) -> None:
    """Import labelled windows. Metrics are named by name (or id); every row is checked before any is stored."""
    from telewatch.services.labels import import_label_csv

    try:
        with _store(db) as store:
            count = import_label_csv(store, file, source=source, timezone=timezone)
    except TelewatchError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"stored {count} labelled windows from {file}")


@labels_app.command("list")
def list_labels(db: DbOption = None) -> None:
    """List the labelled windows in the store."""
    from telewatch.services.labels import list_labels as list_all

    with _store(db) as store:
        frame = list_all(store)
    table = Table(title=f"{len(frame)} labelled windows")
    for col in ("id", "metric", "start", "end", "kind", "source", "note"):
        table.add_column(col)
    for rec in frame.to_dict("records"):
        table.add_row(
            *(str(rec[c]) for c in ("id", "metric", "start_ts", "end_ts", "kind", "source")),
            "" if pd.isna(rec["note"]) else str(rec["note"]),
        )
    console.print(table)
