"""Anomaly detectors: ``fit(series)`` then ``score(series)``; higher scores are more anomalous."""

from telewatch.detectors.base import Detector
from telewatch.detectors.registry import available_detectors, create_detector, register

# Importing the modules registers their detectors.
from telewatch.detectors import robust_bands as _robust_bands  # noqa: F401  isort: skip
from telewatch.detectors import robust_z as _robust_z  # noqa: F401  isort: skip
from telewatch.detectors import windowed_gaussian as _windowed_gaussian  # noqa: F401  isort: skip
from telewatch.detectors import deviation as _deviation  # noqa: F401  isort: skip
from telewatch.detectors import seasonal as _seasonal  # noqa: F401  isort: skip
from telewatch.detectors import forecast_interval as _forecast_interval  # noqa: F401  isort: skip
from telewatch.detectors import level_shift as _level_shift  # noqa: F401  isort: skip
from telewatch.detectors import novelty as _novelty  # noqa: F401  isort: skip
from telewatch.detectors import ensemble as _ensemble  # noqa: F401  isort: skip
from telewatch.detectors import novelty_seasonal as _novelty_seasonal  # noqa: F401  isort: skip
from telewatch.detectors import multivariate as _multivariate  # noqa: F401  isort: skip
from telewatch.detectors import isolation_forest as _isolation_forest  # noqa: F401  isort: skip
from telewatch.detectors import ocsvm as _ocsvm  # noqa: F401  isort: skip
from telewatch.detectors import autoencoder as _autoencoder  # noqa: F401  isort: skip
from telewatch.detectors import aer as _aer  # noqa: F401  isort: skip

__all__ = ["Detector", "available_detectors", "create_detector", "register"]
