"""Reading JSON properties in SQL the same way on SQLite and PostgreSQL (reports, trait rebuilds).

Each helper gives NULL for a missing key or a value of another JSON type, so a property holding
text never breaks a sum and never counts, as in the Python that keeps traits current.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Float, Numeric, case, cast, func, literal


def json_path_key(key: str) -> str:
    """A JSON path member, quoted so that keys with dots or spaces work."""
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def json_number(dialect: str, column: Any, key: str, *, exact: bool = False) -> ColumnElement[Any]:
    """`column[key]` when it is a JSON number, else NULL (a missing key, a string, a bool).
    `exact`: NUMERIC rather than double precision on PostgreSQL (sums then add up as Python's
    do); SQLite keeps a JSON number's own type either way."""
    if dialect == "postgresql":
        return case(
            (
                func.json_typeof(column.op("->")(key)) == "number",
                cast(column.op("->>")(key), Numeric() if exact else Float()),
            ),
            else_=None,
        )
    path = literal("$." + json_path_key(key))
    return case(
        (func.json_type(column, path).in_(["integer", "real"]), func.json_extract(column, path)),
        else_=None,
    )


def json_string(dialect: str, column: Any, key: str) -> ColumnElement[Any]:
    """`column[key]` when it is a JSON string, else NULL."""
    if dialect == "postgresql":
        return case(
            (func.json_typeof(column.op("->")(key)) == "string", column.op("->>")(key)),
            else_=None,
        )
    path = literal("$." + json_path_key(key))
    return case(
        (func.json_type(column, path) == "text", func.json_extract(column, path)), else_=None
    )


def json_present(dialect: str, column: Any, key: str) -> ColumnElement[bool]:
    """Whether `column` has `key` with a value other than null."""
    if dialect == "postgresql":
        kind = func.json_typeof(column.op("->")(key))
    else:
        kind = func.json_type(column, literal("$." + json_path_key(key)))
    return kind.is_not(None) & (kind != "null")


def json_has_key(dialect: str, column: Any, key: str) -> ColumnElement[bool]:
    """Whether `column` has `key` at all (null included), as Jinja's `is defined` sees it."""
    if dialect == "postgresql":
        return column.op("->")(key).is_not(None)
    return func.json_type(column, literal("$." + json_path_key(key))).is_not(None)
