"""Maps a configuration ``type`` to a forecaster class (like the detectors' registry)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from telewatch.core.errors import ConfigError
from telewatch.forecast.base import Forecaster

_REGISTRY: dict[str, type[Forecaster]] = {}
F = TypeVar("F", bound=type[Forecaster])


def register(name: str) -> Callable[[F], F]:
    """Class decorator: make a forecaster available under ``name``."""

    def wrap(cls: F) -> F:
        known = _REGISTRY.get(name)
        # The same class imported twice (e.g. by doctest collection) re-registers; a different one clashes.
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise ConfigError(f"forecaster type {name!r} is registered twice")
        cls.type_name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def available_forecasters() -> dict[str, type[Forecaster]]:
    """Registered forecaster types, by name (``prophet`` is listed even when not installed)."""
    return dict(sorted(_REGISTRY.items()))


def create_forecaster(name: str, **params: Any) -> Forecaster:
    """Build a forecaster from its registered name and hyper-parameters.

    >>> create_forecaster("seasonal_naive").type_name
    'seasonal_naive'
    """
    try:
        cls = _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise ConfigError(f"unknown forecast model {name!r}; known models: {known}") from None
    try:
        return cls(**params)
    except TypeError as exc:
        raise ConfigError(f"forecast model {name!r}: {exc}") from exc
