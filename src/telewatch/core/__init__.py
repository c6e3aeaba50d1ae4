"""Series conventions, validation and typed errors. Imports nothing else of telewatch."""

from telewatch.core.errors import (
    ConfigError,
    IngestError,
    NotFoundError,
    TelewatchError,
    ValidationError,
)
from telewatch.core.series import as_utc_index, infer_step, validate_series

__all__ = [
    "ConfigError",
    "IngestError",
    "NotFoundError",
    "TelewatchError",
    "ValidationError",
    "as_utc_index",
    "infer_step",
    "validate_series",
]
