"""Trait filters and derived values compiled to Python (workflows/fast_expressions.py) give what
the expression engine gives, on every event and contact, or leave the answer to it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from workflows.expressions import (
    ExpressionContext,
    ExpressionError,
    evaluate_condition,
    evaluate_expression,
)
from workflows.fast_expressions import Unsure, compile_fast
from workflows.trait_compiler import compile_traits
from workflows.trait_program import Derived, TraitProgram

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

FILTERS = [
    "event.properties.total > 0",
    "event.properties.total >= 50 and event.properties.channel in ['web', 'app']",
    "event.properties['total'] != 5 or event.properties.channel == 'shop'",
    "not (event.properties.total < 10)",
    "event.properties.total is defined",
    "event.properties.coupon is undefined and event.properties.total <= 100",
    "event.properties.channel not in ('web',)",
    "0 < event.properties.total < 100",
    "-event.properties.total < -10",
    "event.properties.total / 2 > 20 and event.properties.total // 3 == 13",
    "event.properties.address.city == 'Berlin'",
    "event.name == 'order_placed' and event.properties.total + 1 > 1",
]
PROPERTIES: list[dict[str, Any]] = [
    {"total": 40, "channel": "web"},
    {"total": 120.5, "channel": "app", "coupon": "X"},
    {"total": "n/a", "channel": "shop"},
    {"total": None},
    {"total": True, "channel": 3},
    {"channel": "web"},
    {"total": 0, "address": {"city": "Berlin"}},
    {"total": 7, "address": "Berlin"},
    {},
]


def engine_condition(expression: str, properties: dict[str, Any]) -> bool:
    event = {"id": "m", "name": "order_placed", "properties": properties, "timestamp": "t"}
    try:
        return evaluate_condition(expression, ExpressionContext(now=NOW).with_event(event))
    except ExpressionError:
        return False


@pytest.mark.parametrize("expression", FILTERS)
def test_a_compiled_filter_agrees_with_the_engine_on_every_event(expression: str) -> None:
    fast = compile_fast(expression, "event")
    assert fast is not None
    decided = 0
    for properties in PROPERTIES:
        event = {"id": "m", "name": "order_placed", "properties": properties, "timestamp": "t"}
        try:
            answer = bool(fast(event))
        except Unsure:
            continue
        decided += 1
        assert answer == engine_condition(expression, properties), properties
    assert decided >= 1  # the shortcut decides the ordinary events itself


VALUES = [
    '"gold" if contact.spend >= 500 else "silver" if contact.spend >= 150 else "bronze"',
    "contact.spend / contact.orders",
    "contact.orders > 2 and contact.spend",
    "contact.orders - 1 if contact.vip is defined else contact.orders + 1",
    '"big" if contact.spend > 100',
    "[contact.orders, 1]",
]
CONTACTS: list[dict[str, Any]] = [
    {"spend": 600, "orders": 3},
    {"spend": 150.0, "orders": 0, "vip": True},
    {"spend": 20, "orders": 1},
    {"spend": "x", "orders": 2},
    {"orders": 4},
]


def engine_value(expression: str, contact: dict[str, Any]) -> Any:
    try:
        return evaluate_expression(expression, ExpressionContext(NOW, contact=contact))
    except ExpressionError:
        return "error"


@pytest.mark.parametrize("expression", VALUES)
def test_a_compiled_value_agrees_with_the_engine_on_every_contact(expression: str) -> None:
    fast = compile_fast(expression, "contact")
    assert fast is not None
    for contact in CONTACTS:
        try:
            answer = fast(contact)
        except Unsure:
            continue
        assert answer == engine_value(expression, contact), contact
        assert type(answer) is type(engine_value(expression, contact))


@pytest.mark.parametrize(
    "expression",
    [
        "event.properties.total | int > 3",  # a filter
        "event.properties.total * 2 > 3",  # the sandbox bounds `*`
        "count_events('x') > 2",  # a call
        "event.properties.items is defined",  # the dict's method, to Jinja
        "contact.spend > 1",  # another root
        "event.properties.total > 1 %}",  # not an expression
    ],
)
def test_other_shapes_are_left_to_the_engine(expression: str) -> None:
    assert compile_fast(expression, "event") is None


def test_the_sample_traits_run_compiled_and_a_failing_value_has_none() -> None:
    from tests.cli.conftest import ROOT

    program = compile_traits([ROOT / "traits"]).program
    assert program is not None
    for aggregate in program.aggregates:
        if aggregate.when is not None:
            assert compile_fast(aggregate.when, "event") is not None
    for item in program.derived:
        assert compile_fast(item.expression, "contact") is not None
    tiers = TraitProgram(
        derived=(Derived("tier", '"gold" if contact.spend >= 500 else "bronze"', frozenset()),)
    )
    assert tiers.evaluate(tiers.derived[0], {"spend": 700}, NOW) == "gold"
    assert tiers.evaluate(tiers.derived[0], {"spend": "x"}, NOW) is None  # "x" >= 500 fails
    assert tiers.evaluate(tiers.derived[0], {}, NOW) is None  # undefined
