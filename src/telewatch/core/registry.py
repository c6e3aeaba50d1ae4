"""A name → class registry, shared by detectors, multivariate detectors and forecasters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from telewatch.core.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps a configuration ``type`` to a class; classes register with :meth:`register`.

    ``noun`` and ``kind`` word the errors, e.g. "unknown forecast model 'x'; known models: …".

    >>> reg: Registry[object] = Registry("widget", kind="type")
    >>> @reg.register("plain")
    ... class Plain:
    ...     def __init__(self, size: int = 1) -> None:
    ...         self.size = size
    >>> reg.create("plain", size=3).size
    3
    >>> reg.create("fancy")
    Traceback (most recent call last):
    ...
    telewatch.core.errors.ConfigError: unknown widget type 'fancy'; known types: plain
    """

    def __init__(self, noun: str, *, kind: str = "type") -> None:
        self.noun = noun
        self.kind = kind
        self._classes: dict[str, type[T]] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        """Class decorator: make a class available under ``name`` (sets its ``type_name``)."""

        def wrap(cls: type[T]) -> type[T]:
            known = self._classes.get(name)
            # The same class imported twice (e.g. by doctest collection) re-registers; a different one clashes.
            if known is not None and known.__qualname__ != cls.__qualname__:
                raise ConfigError(f"{self.noun} {self.kind} {name!r} is registered twice")
            cls.type_name = name  # type: ignore[attr-defined]
            self._classes[name] = cls
            return cls

        return wrap

    def available(self) -> dict[str, type[T]]:
        """Registered classes, by name."""
        return dict(sorted(self._classes.items()))

    def create(self, name: str, **params: Any) -> T:
        """Build an instance from its registered name and parameters; errors name what is known."""
        try:
            cls = self._classes[name]
        except KeyError:
            known = ", ".join(sorted(self._classes)) or "none"
            raise ConfigError(
                f"unknown {self.noun} {self.kind} {name!r}; known {self.kind}s: {known}"
            ) from None
        try:
            return cls(**params)
        except TypeError as exc:
            raise ConfigError(f"{self.noun} {self.kind} {name!r}: {exc}") from exc
