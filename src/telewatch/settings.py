"""Service settings, from the environment (``TELEWATCH_*``) or a ``.env`` file.

Nothing is read at import time: call :func:`get_settings` (or build :class:`Settings` yourself).
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "telewatch"


class Settings(BaseSettings):
    """Every setting has an environment variable: the field name upper-cased, prefixed ``TELEWATCH_``."""

    model_config = SettingsConfigDict(env_prefix="TELEWATCH_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir, description="Where telewatch keeps its files.")
    db_path: Path | None = Field(
        default=None, description="The embedded DuckDB store; default DATA_DIR/telewatch.duckdb."
    )
    host: str = Field(default="127.0.0.1", description="Address the API and UI listen on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port the API and UI listen on.")
    base_url: str = Field(
        default="http://127.0.0.1:8000", description="Public URL of the UI, used in links in alerts."
    )
    max_upload_bytes: int = Field(
        default=200 * 1024 * 1024, ge=1024, description="Largest file accepted by upload/ingest."
    )
    max_upload_rows: int = Field(default=20_000_000, ge=1, description="Most data rows accepted in one file.")
    max_points_per_response: int = Field(
        default=200_000, ge=100, description="Most points one /api/series response may carry."
    )
    default_detector: str = Field(
        default="novelty", description="Detector used when none is named (see docs/detectors.md)."
    )

    incident_types: Path | None = Field(
        default=None, description="YAML rule set naming incident types; default: the shipped rules."
    )
    alerting_config: Path | None = Field(
        default=None, description="YAML file of alert channels and rules (see docs/alerting.md)."
    )
    monitors_file: Path | None = Field(
        default=None,
        description="YAML file of monitors for `telewatch run` and `check` (see docs/monitors.md).",
    )
    dask_scheduler: str | None = Field(
        default=None,
        description="Dask scheduler address for fanning detection out over metrics (see docs/scale.md); "
        "default: an embedded LocalCluster.",
    )

    @property
    def store_path(self) -> Path:
        return self.db_path if self.db_path is not None else self.data_dir / "telewatch.duckdb"


def get_settings() -> Settings:
    return Settings()
