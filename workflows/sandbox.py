"""The Jinja sandbox expressions and templates run in, with bounds on what one operation may cost.

Jinja's sandbox stops unsafe attribute access, not work: `9 ** (9 ** 9)`, `"a" * 10 ** 9`,
`range(10 ** 9)` or `"x" | center(10 ** 9)` take minutes or gigabytes, and Jinja even folds the
constant ones while parsing. Here `**`, `*` and `%` are intercepted (which also keeps them from
being folded), `range` is bounded, and so are the string methods and filters that pad or repeat.
Every bound raises `LimitExceeded`, which expressions report as an `ExpressionError` and
templates as a render error.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import nodes
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_INT_BITS = 4096  # about 1,200 decimal digits
MAX_SIZE = 1_000_000  # characters or items one repetition, padding or format may produce
MAX_RANGE = 10_000  # items of a range() (loops over it multiply)

_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "**": operator.pow,
}
_SEQUENCES = (str, bytes, list, tuple)
# %-format specs: flags, then width and precision (digits or `*`).
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")
_FORMAT_FIELD = re.compile(r"\{[^{}]*\}")
# str methods whose integer argument is the size of the result.
_SIZED_METHODS = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs"})
# Filters whose integer arguments are sizes (after the value they filter).
_SIZED_FILTERS = frozenset({"center", "indent", "batch", "slice", "truncate", "wordwrap"})


class LimitExceeded(ValueError):
    """An operation would take more time or memory than an expression or template may use."""


def _too_large(what: str, amount: int, limit: int, unit: str) -> LimitExceeded:
    return LimitExceeded(f"{what} would make {amount:,} {unit}; at most {limit:,} are allowed")


def _check_size(what: str, amount: int) -> None:
    if amount > MAX_SIZE:
        raise _too_large(what, amount, MAX_SIZE, "characters or items")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_format_text(text: str, args: Any) -> None:
    """`"%10d" % x`: widths and precisions bounded, `*` (taken from the arguments) refused."""
    for match in _PERCENT_SPEC.finditer(text):
        for part in match.groups():
            if part == "*":
                raise LimitExceeded("a '*' width or precision in a % format is not allowed")
            if part is not None:
                _check_size("a % format width or precision", int(part))


def _check_format_method(text: str) -> None:
    """`"{:>10}".format(x)`: literal widths bounded, nested fields (`{:{}}`) refused."""
    for field in _FORMAT_FIELD.finditer(text):
        for digits in re.findall(r"\d+", field.group()):
            _check_size("a format width or precision", int(digits))
    if re.search(r"\{[^{}]*\{", text):
        raise LimitExceeded("nested replacement fields in a format string are not allowed")


def bounded_binop(op: str, left: Any, right: Any) -> Any:
    """`left op right`, refusing results over the bounds before computing them."""
    if op == "**" and _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1:
        bits = right * abs(left).bit_length()
        if bits > MAX_INT_BITS:
            raise LimitExceeded(
                f"{left} ** {right} is too large (about {bits:,} bits; at most {MAX_INT_BITS:,})"
            )
    elif op == "*":
        if isinstance(left, _SEQUENCES) and _is_int(right):
            _check_size("repeating a value", len(left) * right)
        elif isinstance(right, _SEQUENCES) and _is_int(left):
            _check_size("repeating a value", len(right) * left)
        elif _is_int(left) and _is_int(right):
            bits = left.bit_length() + right.bit_length()
            if bits > MAX_INT_BITS:
                raise LimitExceeded(
                    f"a product of about {bits:,} bits is too large (at most {MAX_INT_BITS:,})"
                )
    elif op == "%" and isinstance(left, str):
        _check_format_text(left, right)
    return _BINOPS[op](left, right)


def bounded_range(*args: Any) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise _too_large("range()", len(numbers), MAX_RANGE, "items")
    return numbers


def check_call(function: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Bounds for calls of methods that pad, repeat or format."""
    # The sandbox hands out str.format wrapped (its safe formatter); the method is inside.
    function = getattr(function, "__wrapped__", function)
    owner = getattr(function, "__self__", None)
    name = getattr(function, "__name__", "")
    if not isinstance(owner, str):
        return
    if name in _SIZED_METHODS:
        for value in (*args, *kwargs.values()):
            if _is_int(value):
                _check_size(f"str.{name}()", value)
    elif name == "replace" and len(args) >= 2 and isinstance(args[1], str):
        count = owner.count(args[0]) if isinstance(args[0], str) and args[0] else len(owner) + 1
        _check_size("str.replace()", len(owner) + count * len(args[1]))
    elif name in ("format", "format_map"):
        _check_format_method(owner)


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    skip = 2 if getattr(function, "jinja_pass_arg", None) is not None else 1

    @functools.wraps(function)  # keeps `jinja_pass_arg`: Jinja passes the context as before
    def bounded(*args: Any, **kwargs: Any) -> Any:
        if name == "format" and len(args) >= skip and isinstance(args[skip - 1], str):
            _check_format_text(args[skip - 1], args[skip:])
        for value in (*args[skip:], *kwargs.values()):
            if _is_int(value):
                _check_size(f"the {name} filter", abs(value))
        return function(*args, **kwargs)

    return bounded


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """An immutable sandbox with the bounds above, for expressions and message templates."""

    intercepted_binops = frozenset({"**", "*", "%"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.globals["range"] = bounded_range
        for name in _SIZED_FILTERS | {"format"}:
            if name in self.filters:
                self.filters[name] = _bounded_filter(name, self.filters[name])

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        return bounded_binop(operator, left, right)

    def call(
        __self,
        __context: Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        check_call(__obj, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)


class _NotStatic(Exception):
    pass


def _static(node: nodes.Node) -> Any:
    """The value of an expression made of literals and arithmetic, computed within the bounds."""
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.Neg):
        return -_static(node.node)
    if isinstance(node, nodes.Pos):
        return +_static(node.node)
    if isinstance(node, nodes.BinExpr):
        return bounded_binop(node.operator, _static(node.left), _static(node.right))
    if isinstance(node, nodes.List | nodes.Tuple):
        return [_static(item) for item in node.items]
    raise _NotStatic


def static_limit_problems(tree: nodes.Node) -> list[tuple[int, str]]:
    """(line, message) for each part of `tree` made of literals alone that is over the bounds
    (`9 ** (9 ** 9)`, `"a" * 10 ** 9`, `range(10 ** 9)`, `"x" | center(10 ** 9)`): what validation
    reports instead of computing it."""
    found: list[tuple[int, str]] = []
    candidates: list[tuple[nodes.Node, Callable[[], Any]]] = []
    for binary in tree.find_all(nodes.BinExpr):
        candidates.append((binary, functools.partial(_static, binary)))
    for call in tree.find_all(nodes.Call):
        if isinstance(call.node, nodes.Name) and call.node.name == "range" and not call.kwargs:

            def range_of(call: nodes.Call = call) -> Any:
                return bounded_range(*(_static(arg) for arg in call.args))

            candidates.append((call, range_of))
    for filtered in tree.find_all(nodes.Filter):
        if filtered.name in _SIZED_FILTERS and filtered.args:

            def sizes(filtered: nodes.Filter = filtered) -> Any:
                for arg in filtered.args:
                    try:
                        value = _static(arg)
                    except _NotStatic:
                        continue
                    if _is_int(value):
                        _check_size(f"the {filtered.name} filter", abs(value))

            candidates.append((filtered, sizes))
    for node, compute in candidates:
        try:
            compute()
        except LimitExceeded as error:
            message = str(error)
            if all(message != known for _, known in found):
                found.append((node.lineno or 1, message))
        except (_NotStatic, ArithmeticError, TypeError, ValueError):
            continue  # not made of literals, or an error only evaluation can report
    return found
