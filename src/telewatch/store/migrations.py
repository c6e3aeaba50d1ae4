"""Numbered schema migrations of the embedded store.

Each migration is a file ``sql/NNNN_name.sql`` beside this module (``NNNN`` its version, the first
line a ``-- description`` comment). Add a new file with the next free number; never edit one that
has shipped. Each runs in its own transaction and is recorded in ``schema_migrations``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


_FILE = re.compile(r"^(\d{4})_([\w-]+)\.sql$")


def load_migrations() -> list[Migration]:
    """The shipped migrations, in version order."""
    found = []
    for entry in resources.files("telewatch.store").joinpath("sql").iterdir():
        match = _FILE.match(entry.name)
        if not match:
            continue
        text = entry.read_text(encoding="utf-8")
        first = text.splitlines()[0] if text else ""
        name = first[2:].strip() if first.startswith("--") else match.group(2).replace("_", " ")
        found.append(Migration(int(match.group(1)), name, text))
    return sorted(found, key=lambda m: m.version)


MIGRATIONS: list[Migration] = load_migrations()
