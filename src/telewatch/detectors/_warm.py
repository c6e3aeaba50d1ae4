"""Warm-ups of compiled kernels that live outside :mod:`telewatch.detectors._kernels` (the profile
channel's): each module registers its own here at import, and
:func:`telewatch.detectors._kernels.warm_up` runs them, so that ``_kernels`` imports no detector (and
this module imports nothing heavy: no numba).

>>> calls = []
>>> hook = register(lambda: calls.append(1))
>>> hook in HOOKS
True
>>> HOOKS.remove(hook)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[[], object])

#: The registered warm-ups, in the order of registration.
HOOKS: list[Callable[[], object]] = []


def register(hook: F) -> F:
    """Register ``hook`` (no arguments) to run in :func:`~telewatch.detectors._kernels.warm_up`."""
    HOOKS.append(hook)
    return hook
