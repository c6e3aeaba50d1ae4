"""Forecasters (``fit(series)`` then ``predict(horizon)`` with calibrated intervals) and the
predictive checks built on them: predicted limit breaches and the incident outlook."""

from telewatch.forecast.base import DEFAULT_LEVELS, Forecaster, NotFittedError, level_name
from telewatch.forecast.registry import available_forecasters, create_forecaster, register

# Importing the modules registers their forecasters.
from telewatch.forecast import naive as _naive  # noqa: F401  isort: skip
from telewatch.forecast import seasonal as _seasonal  # noqa: F401  isort: skip
from telewatch.forecast import ets as _ets  # noqa: F401  isort: skip
from telewatch.forecast import prophet as _prophet  # noqa: F401  isort: skip

DEFAULT_MODEL = "robust_seasonal"

__all__ = [
    "DEFAULT_LEVELS",
    "DEFAULT_MODEL",
    "Forecaster",
    "NotFittedError",
    "available_forecasters",
    "create_forecaster",
    "level_name",
    "register",
]
