"""The common shapes of expressions compiled to plain Python closures, for the traits' hot path.

Traits run a `when:` filter on every event they see and their derived `value:`s on every change;
through the Jinja sandbox each of those costs tens of microseconds (building the variables, the
sandbox's lookups, the error handling), which is a large part of storing an event with traits.

An expression made only of constants, list and tuple literals, lookups of `ROOT.NAME` /
`ROOT["NAME"]` (and further names inside them), comparisons (`== != < <= > >= in not in`,
chained too), `and`, `or`, `not`, `is defined` / `is undefined`, `x if c else y`, unary `-`/`+`
and `+ - / //` compiles here to a closure over the value of `ROOT` (`event` for a filter,
`contact` for a derived trait). It performs the same Python operations on the same values that
Jinja's generated code performs (Jinja emits these operators as Python operators; the sandbox
intercepts only `*`, `%` and `**`, which are not compiled), so where it returns a value, that is
the value the expression engine gives.

Where it could differ it does not guess: a missing name (Jinja's strict undefined, or a dict
method the sandbox would find under that name), a lookup in anything but a plain `dict`, an `if`
without `else` that does not hold, any exception (`"a" < 5`, a division by zero) raise `Unsure`,
and the caller evaluates the expression the usual way (`workflows.expressions`). Results never
differ; only the common cases get faster.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from jinja2 import nodes

from workflows.expressions import environment

Compiled = Callable[[Any], Any]


class Unsure(Exception):
    """The closure cannot tell what the expression engine would: evaluate it there."""


class _NotCompiled(Exception):
    pass


_MISSING = object()
# `d.items` on a dict is the method to Jinja, not a key: such names are never compiled.
_DICT_NAMES = frozenset(dir(dict))
_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "lteq": operator.le,
    "gt": operator.gt,
    "gteq": operator.ge,
    "in": lambda left, right: left in right,
    "notin": lambda left, right: left not in right,
}
_ARITHMETIC: dict[type[nodes.BinExpr], Callable[[Any, Any], Any]] = {
    nodes.Add: operator.add,
    nodes.Sub: operator.sub,
    nodes.Div: operator.truediv,
    nodes.FloorDiv: operator.floordiv,
}


@lru_cache(maxsize=2048)
def compile_fast(expression: str, root: str) -> Compiled | None:
    """`expression` as a closure taking the value of `root`, or None when it has a shape this
    module does not compile (then always use the expression engine). The closure raises
    `Unsure` where its answer could differ from the engine's."""
    try:
        tree = environment().parse("{{ (" + expression + "\n) }}")
    except Exception:  # the engine reports syntax errors, not this shortcut
        return None
    output = tree.body[0] if len(tree.body) == 1 else None
    if not isinstance(output, nodes.Output) or len(output.nodes) != 1:
        return None
    try:
        inner = _compile(output.nodes[0], root)
    except _NotCompiled:
        return None

    def run(scope: Any) -> Any:
        try:
            return inner(scope)
        except Unsure:
            raise
        except Exception:  # the engine decides what an error means
            raise Unsure from None

    return run


def _compile(node: nodes.Node, root: str) -> Compiled:
    if isinstance(node, nodes.Const):
        value = node.value
        return lambda _scope: value
    if isinstance(node, nodes.List | nodes.Tuple):
        return _sequence(node, root)
    if isinstance(node, nodes.Name | nodes.Getattr | nodes.Getitem):
        return _lookup(node, root, missing=Unsure)
    if isinstance(node, nodes.Test):
        return _test(node, root)
    if isinstance(node, nodes.Compare):
        return _compare(node, root)
    if isinstance(node, nodes.And | nodes.Or):
        left, right = _compile(node.left, root), _compile(node.right, root)
        if isinstance(node, nodes.And):
            return lambda scope: left(scope) and right(scope)
        return lambda scope: left(scope) or right(scope)
    if isinstance(node, nodes.Not):
        operand = _compile(node.node, root)
        return lambda scope: not operand(scope)
    if isinstance(node, nodes.Neg | nodes.Pos):
        operand = _compile(node.node, root)
        sign = operator.neg if isinstance(node, nodes.Neg) else operator.pos
        return lambda scope: sign(operand(scope))
    if isinstance(node, nodes.CondExpr):
        return _conditional(node, root)
    if type(node) in _ARITHMETIC:
        assert isinstance(node, nodes.BinExpr)
        function = _ARITHMETIC[type(node)]
        left, right = _compile(node.left, root), _compile(node.right, root)
        return lambda scope: function(left(scope), right(scope))
    raise _NotCompiled


def _sequence(node: nodes.List | nodes.Tuple, root: str) -> Compiled:
    items = [_compile(item, root) for item in node.items]
    if all(isinstance(item, nodes.Const) for item in node.items):
        constant = [item.value for item in node.items]  # type: ignore[attr-defined]
        fixed = constant if isinstance(node, nodes.List) else tuple(constant)
        return lambda _scope: fixed
    if isinstance(node, nodes.List):
        return lambda scope: [item(scope) for item in items]
    return lambda scope: tuple(item(scope) for item in items)


def _lookup(node: nodes.Node, root: str, *, missing: Any) -> Compiled:
    """`ROOT`, `ROOT.a`, `ROOT["a"]`, `ROOT.a.b`, …: a missing last name gives `missing`
    (raised when it is an exception class, `Unsure`); anything unusual is `Unsure`."""
    if isinstance(node, nodes.Name):
        if node.name != root or node.ctx != "load":
            raise _NotCompiled
        return lambda scope: scope
    if isinstance(node, nodes.Getattr):
        key: Any = node.attr
    elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        key = node.arg.value
    else:
        raise _NotCompiled
    if not isinstance(key, str) or key in _DICT_NAMES or key.startswith("_"):
        raise _NotCompiled
    outer = _lookup(node.node, root, missing=Unsure)
    raises = missing is Unsure

    def get(scope: Any) -> Any:
        mapping = outer(scope)
        if type(mapping) is not dict:
            raise Unsure
        value = mapping.get(key, _MISSING)
        if value is _MISSING:
            if raises:
                raise Unsure
            return missing
        return value

    return get


def _test(node: nodes.Test, root: str) -> Compiled:
    if node.name not in ("defined", "undefined") or node.args or node.kwargs:
        raise _NotCompiled
    if node.dyn_args is not None or node.dyn_kwargs is not None:
        raise _NotCompiled
    value = _lookup(node.node, root, missing=_MISSING)
    if node.name == "defined":
        return lambda scope: value(scope) is not _MISSING
    return lambda scope: value(scope) is _MISSING


def _compare(node: nodes.Compare, root: str) -> Compiled:
    first = _compile(node.expr, root)
    steps = []
    for operand in node.ops:
        if operand.op not in _COMPARISONS:
            raise _NotCompiled
        steps.append((_COMPARISONS[operand.op], _compile(operand.expr, root)))
    if len(steps) == 1:
        [(function, second)] = steps
        return lambda scope: function(first(scope), second(scope))

    def chain(scope: Any) -> Any:
        left = first(scope)
        result: Any = True
        for function, right in steps:
            value = right(scope)
            result = function(left, value)
            if not result:
                return result
            left = value
        return result

    return chain


def _conditional(node: nodes.CondExpr, root: str) -> Compiled:
    test, then = _compile(node.test, root), _compile(node.expr1, root)
    otherwise = _compile(node.expr2, root) if node.expr2 is not None else None

    def choose(scope: Any) -> Any:
        if test(scope):
            return then(scope)
        if otherwise is None:
            raise Unsure  # Jinja's undefined
        return otherwise(scope)

    return choose
