"""Anomaly detectors: ``fit(series)`` then ``score(series)``; higher scores are more anomalous."""

from telewatch.detectors.base import Detector
from telewatch.detectors.registry import available_detectors, create_detector, register

# Importing the modules registers their detectors.
from telewatch.detectors import robust_bands as _robust_bands  # noqa: F401  isort: skip
from telewatch.detectors import robust_z as _robust_z  # noqa: F401  isort: skip
from telewatch.detectors import windowed_gaussian as _windowed_gaussian  # noqa: F401  isort: skip

__all__ = ["Detector", "available_detectors", "create_detector", "register"]
