"""Maps a configuration ``type`` to a forecaster class (like the detectors' registry)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from telewatch.core.registry import Registry
from telewatch.forecast.base import Forecaster

_REGISTRY: Registry[Forecaster] = Registry("forecast", kind="model")
F = TypeVar("F", bound=type[Forecaster])


def register(name: str) -> Callable[[F], F]:
    """Class decorator: make a forecaster available under ``name``."""
    return _REGISTRY.register(name)  # type: ignore[return-value]


def available_forecasters() -> dict[str, type[Forecaster]]:
    """Registered forecaster types, by name (``prophet`` is listed even when not installed)."""
    return _REGISTRY.available()


def create_forecaster(name: str, **params: Any) -> Forecaster:
    """Build a forecaster from its registered name and hyper-parameters.

    >>> create_forecaster("seasonal_naive").type_name
    'seasonal_naive'
    """
    return _REGISTRY.create(name, **params)
