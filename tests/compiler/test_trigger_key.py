"""A trigger `key:` path that can't exist (issue 16 item 2): an error when it leaves the event's
fields, or names a property no sample event of the trigger has; a warning when no sample can
tell."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from cli import app
from tests.compiler.conftest import Project
from workflows.compiler import compile_journey

CART = """\
name: Cart reminder
trigger:
  event: cart_abandoned
  key: {key}
steps:
  - send: email
    template: onboarding/welcome
    category: transactional
"""
SAMPLES = {"cart_abandoned": {"cart_id": frozenset({"text"}), "total": frozenset({"number"})}}


def diagnostics(project: Project, key: str, samples: dict | None = SAMPLES) -> list[str]:
    project.journey(CART.format(key=key))
    _, found = compile_journey(Path("journeys/test.yaml"), project.templates, samples=samples)
    return [str(d) for d in sorted(found)]


def test_a_key_outside_the_event_fields_is_an_error_with_the_fix(project: Project) -> None:
    assert diagnostics(project, "cart_id", samples=None) == [
        "journeys/test.yaml:4:8: key: an event has no field 'cart_id' (its fields: id, name, "
        "properties, timestamp); write properties.cart_id"
    ]


def test_a_property_no_sample_event_has_is_an_error(project: Project) -> None:
    assert diagnostics(project, "properties.cart") == [
        "journeys/test.yaml:4:8: key: no sample cart_abandoned event (contacts/, simulations/) "
        "has a property 'cart' (did you mean 'cart_id'?); their properties: cart_id, total"
    ]


def test_a_property_the_samples_have_is_fine(project: Project) -> None:
    assert diagnostics(project, "properties.cart_id") == []


def test_without_a_sample_of_the_event_the_key_is_a_warning(project: Project) -> None:
    assert diagnostics(project, "properties.cart_id", samples={}) == [
        "journeys/test.yaml:4:8: warning: key: properties.cart_id cannot be checked: no sample "
        "cart_abandoned event in contacts/ or simulations/; add one to a simulation "
        "[unchecked-key]"
    ]


def test_validate_checks_the_key_against_the_simulations(project: Project) -> None:
    project.write(
        "simulations/cart_left.yaml",
        "- after: 1m\n  event: cart_abandoned\n  properties: {cart_id: C-1, total: 30}\n",
    )
    project.journey(CART.format(key="properties.cartid"), name="cart")
    result = CliRunner().invoke(app, ["validate", "journeys/cart.yaml"])
    assert result.exit_code == 1
    assert result.stderr == (
        "journeys/cart.yaml:4:8: key: no sample cart_abandoned event (contacts/, simulations/) "
        "has a property 'cartid' (did you mean 'cart_id'?); their properties: cart_id, total\n"
    )
