"""A trait's `when:` as SQL, so `rapport traits rebuild` filters events in the database.

The conditions that translate (and so the ones `rapport validate` accepts) compare event
properties with constants: `event.properties.NAME` (or `event.properties["a name"]`) against a
number or a text with `== != < <= > >=`, `in [..]` / `not in [..]` of constants, `is defined` /
`is not defined`, combined with `and`, `or`, `not` and parentheses. A comparison with a number
holds only for a property that is a JSON number, one with a text only for a JSON string —
exactly as the Jinja expression behaves on each event when traits are kept current.
"""

from __future__ import annotations

from typing import Any

from jinja2 import nodes

from workflows.expressions import environment

_OPERATORS = {"eq", "ne", "lt", "lteq", "gt", "gteq", "in", "notin"}
_FLIPPED = {"lt": "gt", "lteq": "gteq", "gt": "lt", "gteq": "lteq", "eq": "eq", "ne": "ne"}


class SqlFilterError(ValueError):
    pass


def _property(node: nodes.Node) -> str | None:
    """NAME of `event.properties.NAME` / `event.properties["NAME"]`, else None."""
    if isinstance(node, nodes.Getattr):
        target, name = node.node, node.attr
    elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        target, name = node.node, node.arg.value
    else:
        return None
    if (
        isinstance(target, nodes.Getattr)
        and target.attr == "properties"
        and isinstance(target.node, nodes.Name)
        and target.node.name == "event"
        and isinstance(name, str)
    ):
        return name
    return None


def _constant(node: nodes.Node) -> Any:
    if isinstance(node, nodes.Const) and (
        isinstance(node.value, str)
        or (isinstance(node.value, int | float) and not isinstance(node.value, bool))
    ):
        return node.value
    if isinstance(node, nodes.Neg) and isinstance(node.node, nodes.Const):
        value = node.node.value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return -value
    raise SqlFilterError(
        "compare event.properties.NAME with a number or a text (constants only), "
        "so the rebuild can filter in SQL"
    )


class _Check:
    """Builds nothing: checking a translation needs no database (and `rapport validate` does
    not import SQLAlchemy)."""

    def __getattr__(self, _name: str) -> Any:
        return lambda *args, **kwargs: None


class _Sql:
    """Builds the SQLAlchemy condition on the events' `properties` column."""

    def __init__(self, dialect: str, column: Any) -> None:
        import sqlalchemy

        from store import json_sql

        self.sa, self.json, self.dialect, self.column = sqlalchemy, json_sql, dialect, column

    def and_(self, left: Any, right: Any) -> Any:
        return self.sa.and_(left, right)

    def or_(self, left: Any, right: Any) -> Any:
        return self.sa.or_(left, right)

    def not_(self, clause: Any) -> Any:
        return self.sa.not_(clause)

    def constant(self, value: bool) -> Any:
        return self.sa.true() if value else self.sa.false()

    def has_key(self, name: str) -> Any:
        return self.json.json_has_key(self.dialect, self.column, name)

    def one_of(self, name: str, values: list[Any], negate: bool) -> Any:
        numbers = [v for v in values if not isinstance(v, str)]
        texts = [v for v in values if isinstance(v, str)]
        found = self.sa.or_(
            self.json.json_number(self.dialect, self.column, name).in_(numbers)
            if numbers
            else self.sa.false(),
            self.json.json_string(self.dialect, self.column, name).in_(texts)
            if texts
            else self.sa.false(),
        )
        # Jinja's `not in` on a missing property is an error: the event does not count.
        return self.has_key(name) & self.sa.not_(found) if negate else found

    def compare(self, name: str, op: str, value: Any) -> Any:
        read = (
            self.json.json_string(self.dialect, self.column, name)
            if isinstance(value, str)
            else self.json.json_number(self.dialect, self.column, name)
        )
        return {
            "eq": lambda: read == value,
            "ne": lambda: read != value,
            "lt": lambda: read < value,
            "lteq": lambda: read <= value,
            "gt": lambda: read > value,
            "gteq": lambda: read >= value,
        }[op]()


def _translate(node: nodes.Node, build: Any) -> Any:
    if isinstance(node, nodes.And):
        return build.and_(_translate(node.left, build), _translate(node.right, build))
    if isinstance(node, nodes.Or):
        return build.or_(_translate(node.left, build), _translate(node.right, build))
    if isinstance(node, nodes.Not):
        return build.not_(_translate(node.node, build))
    if isinstance(node, nodes.Const) and isinstance(node.value, bool):
        return build.constant(node.value)
    if isinstance(node, nodes.Test) and node.name == "defined":
        name = _property(node.node)
        if name is None:
            raise SqlFilterError("`is defined` applies to event.properties.NAME here")
        return build.has_key(name)
    if isinstance(node, nodes.Compare) and len(node.ops) == 1:
        return _compare(node.expr, node.ops[0].op, node.ops[0].expr, build)
    raise SqlFilterError(
        "only comparisons of event.properties.* with constants, `in [..]`, `is defined`, "
        "`and`, `or` and `not` can be rebuilt in SQL"
    )


def _compare(left: nodes.Node, op: str, right: nodes.Node, build: Any) -> Any:
    if op not in _OPERATORS:
        raise SqlFilterError(f"the operator {op!r} cannot be rebuilt in SQL")
    name = _property(left)
    if name is None and op in _FLIPPED:
        name, left, right, op = _property(right), right, left, _FLIPPED[op]
    if name is None:
        raise SqlFilterError("one side of a comparison must be event.properties.NAME")
    if op in ("in", "notin"):
        if not isinstance(right, nodes.List | nodes.Tuple) or not right.items:
            raise SqlFilterError('`in` needs a list of constants, e.g. in ["gold", "silver"]')
        return build.one_of(name, [_constant(item) for item in right.items], op == "notin")
    return build.compare(name, op, _constant(right))


def _expression(when: str) -> nodes.Node:
    tree = environment().parse("{{ (" + when + "\n) }}")
    output = tree.body[0]
    assert isinstance(output, nodes.Output)
    return output.nodes[0]


def check_sql_filter(when: str) -> None:
    """Raise `SqlFilterError` when `when` (already parsed as valid) has no SQL translation."""
    _translate(_expression(when), _Check())


def sql_filter(when: str, dialect: str, column: Any) -> Any:
    """`when` as a SQLAlchemy condition on the events table's `properties` column."""
    return _translate(_expression(when), _Sql(dialect, column))


def traits_named(when: str | None) -> frozenset[str] | None:
    """The trait names a `trait_changed` filter can let through, when it says
    (`event.properties.trait == "tier"`, `… in ["tier", "rfm_segment"]`, combined with
    `and`/`or`); None when it can pass a change of any trait (no filter, or one this does not
    read). Used to store `trait_changed` events only for traits something listens to."""
    if when is None:
        return None
    try:
        return _named(_expression(when))
    except Exception:  # an expression this cannot read passes everything
        return None


def _named(node: nodes.Node) -> frozenset[str] | None:
    if isinstance(node, nodes.And):
        left, right = _named(node.left), _named(node.right)
        if left is None or right is None:
            return right if left is None else left
        return left & right
    if isinstance(node, nodes.Or):
        left, right = _named(node.left), _named(node.right)
        return None if left is None or right is None else left | right
    if isinstance(node, nodes.Compare) and len(node.ops) == 1:
        op = node.ops[0]
        if _property(node.expr) == "trait":
            if op.op == "eq" and isinstance(op.expr, nodes.Const):
                return frozenset([op.expr.value]) if isinstance(op.expr.value, str) else None
            if op.op == "in" and isinstance(op.expr, nodes.List | nodes.Tuple):
                values = [item.value for item in op.expr.items if isinstance(item, nodes.Const)]
                if len(values) == len(op.expr.items) and all(isinstance(v, str) for v in values):
                    return frozenset(values)
        elif op.op == "eq" and _property(op.expr) == "trait" and isinstance(node.expr, nodes.Const):
            return frozenset([node.expr.value]) if isinstance(node.expr.value, str) else None
    return None
