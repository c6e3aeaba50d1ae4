"""YAML with the line of every key path, for configuration errors that say where.

>>> data, lines = parse_with_lines("a:\\n  b: [1, 2]\\n")
>>> data, lines[("a", "b", 1)]
({'a': {'b': [1, 2]}}, 2)
"""

from __future__ import annotations

from typing import Any

import yaml

Loc = tuple[str | int, ...]


def parse_with_lines(text: str) -> tuple[Any, dict[Loc, int]]:
    """Parse ``text``; return the data and the 1-based line of every key path. Raises ``yaml.YAMLError``."""
    node = yaml.compose(text)
    data = yaml.safe_load(text)
    lines: dict[Loc, int] = {}
    if node is not None:
        _line_map(node, (), lines)
    return data, lines


def error_position(exc: yaml.YAMLError) -> tuple[int | None, str]:
    """The 1-based line of a YAML error (None when unknown) and ``" (line L, column C)"`` or ``""``."""
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        return None, ""
    return mark.line + 1, f" (line {mark.line + 1}, column {mark.column + 1})"


def _line_map(node: yaml.Node, path: Loc, out: dict[Loc, int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, child in node.value:
            _line_map(child, (*path, str(key.value)), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, child in enumerate(node.value):
            _line_map(child, (*path, i), out)
