"""Shared API credentials for tests: every test that calls the API authenticates with these.

>>> ADMIN_HEADERS["Authorization"].startswith("Bearer ")
True
"""

from __future__ import annotations

from typing import Any

from telewatch.settings import Settings

ADMIN_TOKEN = "tw-test-admin-token-0123456789abcdef"
READ_TOKEN = "tw-test-read-token-0123456789abcdef"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
READ_HEADERS = {"Authorization": f"Bearer {READ_TOKEN}"}
API_TOKENS = f"admin:{ADMIN_TOKEN},read:{READ_TOKEN}"
# the environment variable form, for tests that start `telewatch serve` in a subprocess
AUTH_ENV = {"TELEWATCH_API_TOKENS": API_TOKENS}


def auth_settings(**kw: Any) -> Settings:
    """``Settings(**kw)`` with the test admin and read tokens configured (``api_tokens`` may be overridden)."""
    kw.setdefault("api_tokens", API_TOKENS)
    return Settings(**kw)
