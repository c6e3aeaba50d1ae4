"""A name → class registry, shared by detectors, multivariate detectors and forecasters."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from telewatch.core.errors import ConfigError

T = TypeVar("T")


class ParameterValueError(ConfigError):
    """A known parameter with a value of the wrong kind or range (the message names it)."""


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
        where = f"{self.noun} {self.kind} {name!r}"
        params = checked_params(cls, params, where=where)
        try:
            return cls(**params)
        except TypeError as exc:
            raise ConfigError(f"{where}: {exc}") from exc


def checked_params(cls: type, params: dict[str, Any], *, where: str) -> dict[str, Any]:
    """``params`` checked against the defaults of ``cls.__init__``, numbers in text form converted.

    A parameter whose default is a bool, an int or a float must be one (``"60"`` becomes 60), finite, and
    not below 0 (an int whose default is at least 1: not below 1); other parameters pass as they are.
    The error names the parameter, the value and what was expected, instead of whatever the model's
    numerics would raise much later.

    >>> class Bands:
    ...     def __init__(self, window: int = 288, sigma: float = 3.0, robust: bool = True) -> None: ...
    >>> checked_params(Bands, {"window": "60", "sigma": 2}, where="bands")
    {'window': 60, 'sigma': 2.0}
    >>> checked_params(Bands, {"window": "abc"}, where="bands")
    Traceback (most recent call last):
    ...
    telewatch.core.registry.ParameterValueError: bands: window must be a whole number, got 'abc'
    >>> checked_params(Bands, {"sigma": -1}, where="bands")
    Traceback (most recent call last):
    ...
    telewatch.core.registry.ParameterValueError: bands: sigma must be at least 0, got -1
    """
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return params
    out = dict(params)
    for key, value in params.items():
        param = signature.parameters.get(key)
        default = None if param is None else param.default
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ParameterValueError(f"{where}: {key} must be true or false, got {value!r}")
        elif isinstance(default, int | float):
            out[key] = _number(value, whole=isinstance(default, int), key=key, where=where)
            least = 1 if isinstance(default, int) and default >= 1 else 0 if default >= 0 else None
            if least is not None and out[key] < least:
                raise ParameterValueError(f"{where}: {key} must be at least {least}, got {value!r}")
    return out


def _number(value: Any, *, whole: bool, key: str, where: str) -> int | float:
    kind = "a whole number" if whole else "a number"
    number: float
    if isinstance(value, bool):
        raise ParameterValueError(f"{where}: {key} must be {kind}, got {value!r}")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ParameterValueError(f"{where}: {key} must be {kind}, got {value!r}") from None
    else:
        raise ParameterValueError(f"{where}: {key} must be {kind}, got {value!r}")
    if not math.isfinite(number):
        raise ParameterValueError(f"{where}: {key} must be a finite number, got {value!r}")
    if whole:
        if not number.is_integer():
            raise ParameterValueError(f"{where}: {key} must be a whole number, got {value!r}")
        return int(number)
    return number
