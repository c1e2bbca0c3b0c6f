"""YAML loading that remembers where every node came from, so errors point at FILE:LINE:COL.

Like dagster's `source_position`: the document is composed into nodes, then turned into plain
Python values while a side table maps each value's path (`("steps", 2, "template")`) to its
position. Keys get their own entries (path + `KEY`) so "unknown key" points at the key itself.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Hashable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import yaml

T = TypeVar("T")
Path = tuple[Hashable, ...]
PathLike = str | os.PathLike[str]
KEY = "<key>"

# A journey or contact file is a few kilobytes; these bounds stop a hostile or broken file
# (an alias bomb, a cycle, a huge or deeply nested document) long before it costs memory.
MAX_FILE_BYTES = 1_000_000
MAX_VALUES = 100_000  # values after expanding aliases
MAX_DEPTH = 64  # nested mappings and lists


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

    def at(self, file: object) -> str:
        """`FILE:LINE:COL: message`."""
        return f"{file}:{self.position.line}:{self.position.col}: {self.message}"


@contextmanager
def _pushed(stack: list[T], item: T) -> Iterator[None]:
    stack.append(item)
    try:
        yield
    finally:
        stack.pop()


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


class _Loader(yaml.SafeLoader):
    """Gives every alias its own node, at the alias's position, sharing the anchored node's
    children: composing stays as cheap as PyYAML's (no copies), and expanding can tell a cycle
    and an alias bomb at the line that causes them."""

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if not self.check_event(yaml.AliasEvent):
            return super().compose_node(parent, index)
        mark = self.peek_event().start_mark
        anchored = super().compose_node(parent, index)
        alias: Any = copy.copy(anchored)  # shallow: the children stay shared
        alias.start_mark = alias.end_mark = mark
        alias.rapport_alias = True
        return cast(yaml.Node, alias)


def file_too_large(size: int) -> str | None:
    if size <= MAX_FILE_BYTES:
        return None
    return f"the file is {size:,} bytes; files here are read up to 1 MB ({MAX_FILE_BYTES:,} bytes)"


def load_yaml(text: str) -> tuple[Any, SourceMap, list[YamlProblem]]:
    """Parse one YAML document: the value, its source map and non-fatal problems (duplicate keys,
    a cyclic alias).

    A syntax error, a file over 1 MB, a document nested too deeply or aliases expanding to more
    than `MAX_VALUES` values raise `YamlProblem` at the best position known.
    """
    too_large = file_too_large(len(text.encode("utf-8", "replace")))
    if too_large is not None:
        raise YamlProblem(too_large, Position(1, 1))
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except RecursionError:
        deepest = loader.get_mark()  # where the parser had got to: inside the deepest level
        raise YamlProblem(
            f"YAML nested too deeply: at most {MAX_DEPTH} levels of mappings and lists",
            Position(deepest.line + 1, deepest.column + 1),
        ) from None
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
    finally:
        loader.dispose()
    source_map = SourceMap()
    problems: list[YamlProblem] = []
    if root is None:
        return None, source_map, problems
    constructor = yaml.SafeLoader("")
    built = [0]
    open_collections: list[int] = []  # the collections being built, by id of their children
    aliases: list[yaml.Node] = []  # the aliases being expanded, outermost first

    def construct(node: yaml.Node) -> Any:
        """A node's value; an unknown or ill-fitting tag (`!!int abc`) is a problem, no crash."""
        try:
            return constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as error:
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            problems.append(YamlProblem(f"YAML error: {problem}", _position(node)))
            return None

    def build(node: yaml.Node, path: Path) -> Any:
        built[0] += 1
        if built[0] > MAX_VALUES:
            raise YamlProblem(
                f"YAML aliases expand to more than {MAX_VALUES:,} values here (an alias bomb?); "
                "write the values out instead of nesting aliases",
                _position(aliases[0] if aliases else node),
            )
        if isinstance(node, yaml.CollectionNode):
            if id(node.value) in open_collections:
                problems.append(
                    YamlProblem(
                        "YAML alias refers to a mapping or list that contains it (a cycle)",
                        _position(node),
                    )
                )
                return None
            if len(open_collections) >= MAX_DEPTH:
                raise YamlProblem(
                    f"YAML nested too deeply: at most {MAX_DEPTH} levels of mappings and lists",
                    _position(node),
                )
        with ExitStack() as inside:
            if getattr(node, "rapport_alias", False):
                inside.enter_context(_pushed(aliases, node))
            if isinstance(node, yaml.CollectionNode):
                inside.enter_context(_pushed(open_collections, id(node.value)))
            return build_collection(node, path)

    def build_collection(node: yaml.Node, path: Path) -> Any:
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
            try:
                constructor.flatten_mapping(node)
            except RecursionError:
                problems.append(
                    YamlProblem(
                        "YAML merge (<<) refers to a mapping that contains it (a cycle)",
                        _position(node),
                    )
                )
                return None
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


def read_yaml_file(path: PathLike) -> Any:
    """The value of a small YAML file (an events file, a steps file), read with the bounds of
    `load_yaml`; its first problem, even a non-fatal one, raises `YamlProblem`. `OSError` and
    `UnicodeDecodeError` pass through."""
    too_large = file_too_large(os.stat(path).st_size)
    if too_large is not None:
        raise YamlProblem(too_large, Position(1, 1))
    with open(path, encoding="utf-8") as handle:
        value, _, problems = load_yaml(handle.read())
    if problems:
        raise problems[0]
    return value
