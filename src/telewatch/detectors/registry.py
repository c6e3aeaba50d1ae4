"""Maps a configuration ``type`` to a detector class."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from telewatch.core.errors import ConfigError
from telewatch.detectors.base import Detector

_REGISTRY: dict[str, type[Detector]] = {}
D = TypeVar("D", bound=type[Detector])


def register(name: str) -> Callable[[D], D]:
    """Class decorator: make a detector available under ``name``."""

    def wrap(cls: D) -> D:
        known = _REGISTRY.get(name)
        # The same class imported twice (e.g. by doctest collection) re-registers; a different one clashes.
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise ConfigError(f"detector type {name!r} is registered twice")
        cls.type_name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def available_detectors() -> dict[str, type[Detector]]:
    """Registered detector types, by name."""
    return dict(sorted(_REGISTRY.items()))


def create_detector(name: str, **params: Any) -> Detector:
    """Build a detector from its registered name and hyper-parameters."""
    try:
        cls = _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise ConfigError(f"unknown detector type {name!r}; known types: {known}") from None
    try:
        return cls(**params)
    except TypeError as exc:
        raise ConfigError(f"detector {name!r}: {exc}") from exc
