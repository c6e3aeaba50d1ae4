"""Shared fixtures. Tests that read ../shared/datasets carry the ``shared`` marker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from telewatch.store.db import Store

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "telewatch.duckdb") as s:
        yield s


@pytest.fixture
def shared_datasets() -> Path:
    if not SHARED.exists():
        pytest.skip(f"{SHARED} is not present (it always is in CI)")
    return SHARED


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[object]:
    """One Playwright driver for the whole run: tests/e2e and tests/security each launch their own
    Chromium from it (``sync_playwright`` cannot be started twice in one process)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw
