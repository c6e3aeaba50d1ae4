"""Hyper-parameters, cloning and persistence shared by detectors, multivariate detectors and forecasters.

A model class takes its hyper-parameters as ``__init__`` keywords and stores each under its own name
(the scikit-learn convention), so they can be read back from the signature:

>>> class Model(Params):
...     def __init__(self, window: int = 5, level: float = 0.9) -> None:
...         self.window, self.level = window, level
>>> m = Model(window=7)
>>> m.get_params(), m
({'window': 7, 'level': 0.9}, Model(window=7, level=0.9))
>>> m.clone() is not m, m.clone().get_params() == m.get_params()
(True, True)
>>> import pickle
>>> Model.loads(pickle.dumps([1, 2]))
Traceback (most recent call last):
...
telewatch.core.errors.ValidationError: the stored bytes are not a telewatch model
"""

from __future__ import annotations

import copy
import inspect
import pickle
from typing import Any, Self

from telewatch.core.errors import ValidationError

_NAMES: dict[type, tuple[str, ...]] = {}


def _param_names(cls: type) -> tuple[str, ...]:
    """``__init__``'s parameter names of ``cls``, read once per class (a tick asks for the
    parameters of every series' model; ``inspect.signature`` costs tens of microseconds)."""
    names = _NAMES.get(cls)
    if names is None:
        names = tuple(p for p in inspect.signature(cls.__init__).parameters if p != "self")  # type: ignore[misc]
        _NAMES[cls] = names
    return names


class Params:
    """``get_params``, ``clone``, ``dumps``/``loads`` and ``repr`` from the ``__init__`` signature."""

    #: how :meth:`loads` names the class in its error ("a telewatch detector")
    persisted_as: str = "telewatch model"

    def get_params(self) -> dict[str, Any]:
        """The hyper-parameters given to ``__init__``."""
        return {name: getattr(self, name) for name in _param_names(type(self))}

    def clone(self) -> Self:
        """An unfitted copy with the same hyper-parameters."""
        return type(self)(**copy.deepcopy(self.get_params()))

    def dumps(self) -> bytes:
        """Serialise the model, fitted state included (stored in telewatch's own store only)."""
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def loads(cls, data: bytes) -> Self:
        """A model serialised by :meth:`dumps`; anything that is not one of ``cls`` is refused."""
        obj = pickle.loads(data)
        if not isinstance(obj, cls):
            raise ValidationError(f"the stored bytes are not a {cls.persisted_as}")
        return obj

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"
