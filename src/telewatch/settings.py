"""Service settings, from the environment (``TELEWATCH_*``) or a ``.env`` file.

Nothing is read at import time: call :func:`get_settings` (or build :class:`Settings` yourself).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from telewatch.core.defaults import DEFAULT_DETECTOR
from telewatch.core.durations import Duration, parse_duration


def _keep_for(value: Any) -> timedelta | None:
    """A retention horizon: a duration (``90d``), or ``0``/empty/``forever`` to keep forever."""
    if value is None or (isinstance(value, str) and value.strip().lower() in {"", "0", "forever", "off"}):
        return None
    horizon = parse_duration(value)
    return horizon if horizon > timedelta(0) else None


KeepFor = Annotated[timedelta | None, BeforeValidator(_keep_for)]


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
    max_parse_seconds: float = Field(
        default=120.0, gt=0, description="Longest time one file may take to parse before it is refused."
    )
    max_upload_columns: int = Field(default=2000, ge=2, description="Most fields in one line of a file.")
    max_line_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Longest line (in bytes) accepted in a file."
    )
    max_points_per_response: int = Field(
        default=200_000, ge=100, description="Most points one /api/series response may carry."
    )
    default_detector: str = Field(
        default=DEFAULT_DETECTOR,
        description="Detector used when none is named, on every path: detect, uploads, the explorer, the"
        " demo, bench labels and monitors without a `detector:` (see docs/detectors.md).",
    )

    incident_types: Path | None = Field(
        default=None, description="YAML rule set naming incident types; default: the shipped rules."
    )
    alerting_config: Path | None = Field(
        default=None, description="YAML file of alert channels and rules (see docs/alerting.md)."
    )
    detect_alert_window: Duration = Field(
        default=timedelta(hours=1),
        description="`telewatch detect`, /api/detect/run and uploads alert (through alerting_config's rules)"
        " on the anomalies they find that reach into this last stretch before now; older ones (a"
        " backfill) are recorded without paging.",
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
    retention_points: KeepFor = Field(
        default=timedelta(days=90), description="Keep stored points this long (90d; 0 or empty: forever)."
    )
    retention_scores: KeepFor = Field(
        default=timedelta(days=30), description="Keep detector scores this long (0 or empty: forever)."
    )
    retention_anomalies: KeepFor = Field(
        default=timedelta(days=365),
        description="Keep ended anomalies and resolved incidents this long (0 or empty: forever).",
    )
    retention_alert_history: KeepFor = Field(
        default=timedelta(days=90),
        description="Keep delivered notifications, their attempts, resolved alert states and ended "
        "silences this long (0 or empty: forever).",
    )
    retention_runs: KeepFor = Field(
        default=timedelta(days=14), description="Keep monitor run records this long (0 or empty: forever)."
    )
    retention_every: Duration = Field(
        default=timedelta(hours=1), description="How often the scheduler applies retention."
    )
    retention_compact_after: KeepFor = Field(
        default=timedelta(days=4),
        description="Rewrite each day of points and scores in (metric, time) order once it ended this long "
        "ago, so one metric's history reads fast (docs/operations.md; 0 or empty: never).",
    )
    retention_scope: Literal["monitored", "all"] = Field(
        default="monitored",
        description="monitored: points, scores and anomalies are deleted only for series monitors collect "
        "(uploads stay); all: for every series.",
    )
    api_tokens: SecretStr | None = Field(
        default=None,
        description="API tokens from configuration, `scope:token[,scope:token…]` with scope read or admin "
        "(see docs/security.md); tokens can also be kept in the store (`telewatch tokens`).",
    )
    session_ttl_s: int = Field(
        default=12 * 3600, ge=60, description="How long a UI sign-in (session cookie) lasts, in seconds."
    )
    max_concurrent_compute: int = Field(
        default=4,
        ge=1,
        description="Most ad-hoc computations (POST /api/detect, /api/scan, /api/ingest/preview) running at "
        "once in all; past it they are refused with 429 and Retry-After.",
    )
    max_concurrent_compute_per_token: int = Field(
        default=2,
        ge=1,
        description="Most ad-hoc computations running at once for one token (or its sign-ins).",
    )

    @property
    def store_path(self) -> Path:
        return self.db_path if self.db_path is not None else self.data_dir / "telewatch.duckdb"


def get_settings() -> Settings:
    return Settings()
