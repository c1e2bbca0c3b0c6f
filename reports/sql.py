"""SQL expressions the reports need that SQLite and PostgreSQL spell differently: a number
read from an event's JSON properties, the month of a timestamp, seconds between timestamps.

Every expression here is evaluated by the database; nothing is computed row by row in Python.
Timestamps are stored in UTC (naive UTC text on SQLite, `timestamptz` on PostgreSQL), so months
are calendar months in UTC.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Float, Integer, and_, case, cast, func
from sqlalchemy.sql.elements import KeyedColumnElement

from store.json_sql import json_number

__all__ = ["count_where", "json_number", "month_index", "seconds_between"]


def month_index(dialect: str, timestamp: KeyedColumnElement[Any] | Any) -> ColumnElement[int]:
    """year x 12 + month - 1 of a UTC timestamp: consecutive months are consecutive numbers."""
    if dialect == "postgresql":
        utc = func.timezone("UTC", timestamp)
        return (
            cast(func.extract("year", utc), Integer) * 12
            + cast(func.extract("month", utc), Integer)
            - 1
        )
    return (
        cast(func.strftime("%Y", timestamp), Integer) * 12
        + cast(func.strftime("%m", timestamp), Integer)
        - 1
    )


def seconds_between(dialect: str, start: Any, end: Any) -> ColumnElement[float]:
    """`end - start` in seconds."""
    if dialect == "postgresql":
        return cast(func.extract("epoch", end - start), Float)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def count_where(*conditions: ColumnElement[bool]) -> ColumnElement[int]:
    """How many rows meet every condition (portable `COUNT(*) FILTER (WHERE …)`)."""
    condition = conditions[0] if len(conditions) == 1 else and_(*conditions)
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)
