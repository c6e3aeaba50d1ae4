"""Maps a configuration ``type`` to a detector class."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from telewatch.core.registry import Registry
from telewatch.detectors.base import Detector

_REGISTRY: Registry[Detector] = Registry("detector", kind="type")
D = TypeVar("D", bound=type[Detector])


def register(name: str) -> Callable[[D], D]:
    """Class decorator: make a detector available under ``name``."""
    return _REGISTRY.register(name)  # type: ignore[return-value]


def available_detectors() -> dict[str, type[Detector]]:
    """Registered detector types, by name."""
    return _REGISTRY.available()


def create_detector(name: str, **params: Any) -> Detector:
    """Build a detector from its registered name and hyper-parameters."""
    return _REGISTRY.create(name, **params)
