"""YAML loading that remembers where every node came from, so errors point at FILE:LINE:COL.

Like dagster's `source_position`: the document is composed into nodes, then turned into plain
Python values while a side table maps each value's path (`("steps", 2, "template")`) to its
position. Keys get their own entries (path + `KEY`) so "unknown key" points at the key itself.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[Hashable, ...]
KEY = "<key>"


@dataclass(frozen=True)
class Position:
    line: int  # 1-based
    col: int  # 1-based


@dataclass
class SourceMap:
    positions: dict[Path, Position] = field(default_factory=dict)

    def at(self, path: Path) -> Position:
        """The position of the deepest node of `path` that exists (its parent when it's missing)."""
        for end in range(len(path), -1, -1):
            found = self.positions.get(path[:end])
            if found:
                return found
        return Position(1, 1)

    def key_at(self, path: Path) -> Position:
        return self.positions.get((*path, KEY)) or self.at(path)


class YamlProblem(Exception):
    def __init__(self, message: str, position: Position) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


def _position(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


def _is_unquoted_template(node: yaml.Node) -> bool:
    """`{{ x }}` written bare: a flow mapping whose only key is itself a flow mapping."""
    return (
        isinstance(node, yaml.MappingNode)
        and node.flow_style is True
        and len(node.value) == 1
        and isinstance(node.value[0][0], yaml.MappingNode)
        and node.value[0][0].flow_style is True
    )


def load_yaml(text: str) -> tuple[Any, SourceMap, list[YamlProblem]]:
    """Parse one YAML document: the value, its source map and non-fatal problems (duplicate keys).

    A syntax error raises `YamlProblem` at the mark the parser reports.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or "invalid YAML"
        context = f" ({error.context})" if error.context else ""
        if error.context == "while scanning a quoted scalar" and error.context_mark:
            # The end of the file is no help: point at the quote that was never closed.
            mark = error.context_mark
            problem, context = "unclosed quote: this string has no closing quote", ""
        position = Position(mark.line + 1, mark.column + 1) if mark else Position(1, 1)
        raise YamlProblem(f"YAML syntax error: {problem}{context}", position) from None
    except yaml.YAMLError as error:
        raise YamlProblem(f"YAML error: {error}", Position(1, 1)) from None
    source_map = SourceMap()
    problems: list[YamlProblem] = []
    if root is None:
        return None, source_map, problems
    constructor = yaml.SafeLoader("")

    def construct(node: yaml.Node) -> Any:
        """A node's value; an unknown or ill-fitting tag (`!!int abc`) is a problem, no crash."""
        try:
            return constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as error:
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            problems.append(YamlProblem(f"YAML error: {problem}", _position(node)))
            return None

    def build(node: yaml.Node, path: Path) -> Any:
        source_map.positions[path] = _position(node)
        if _is_unquoted_template(node):
            # `to: {{ contact.email }}` is a mapping inside a mapping to YAML.
            problems.append(
                YamlProblem(
                    "put {{ … }} in quotes: YAML reads an unquoted {{ … }} as a mapping, "
                    'e.g. to: "{{ contact.email }}"',
                    _position(node),
                )
            )
            return None
        if isinstance(node, yaml.MappingNode):
            constructor.flatten_mapping(node)
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                before = len(problems)
                key = construct(key_node)
                if len(problems) > before:
                    continue  # the key could not be read: reported, and its value skipped
                if not isinstance(key, Hashable):
                    problems.append(
                        YamlProblem("a mapping key must be a scalar", _position(key_node))
                    )
                    continue
                if key in result:
                    problems.append(YamlProblem(f"duplicate key {key!r}", _position(key_node)))
                source_map.positions[(*path, key, KEY)] = _position(key_node)
                result[key] = build(value_node, (*path, key))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [build(item, (*path, index)) for index, item in enumerate(node.value)]
        return construct(node)

    return build(root, ()), source_map, problems
