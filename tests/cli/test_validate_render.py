"""`rapport validate` renders every message for the sample contacts with a trigger from the
simulations (issue 16 item 1): what would fail at send time fails here, at the template line."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cli import app
from errors import RapportError
from tests.cli.conftest import Project

runner = CliRunner()

CART = """\
name: Cart reminder
trigger:
  event: cart_abandoned
  key: properties.cart_id
steps:
  - id: remind
    send: sms
    template: cart/reminder
    category: transactional
"""
CART_LEFT = """\
- after: 1m
  event: cart_abandoned
  properties: {cart_id: C-1, items: [{name: House Blend, qty: 1}]}
"""


@pytest.fixture
def cart(project: Project, monkeypatch: pytest.MonkeyPatch) -> Project:
    project.write("journeys/cart.yaml", CART)
    project.write("simulations/cart_left.yaml", CART_LEFT)
    monkeypatch.chdir(project.root)
    return project


def test_a_template_that_fails_for_a_sample_is_an_error_at_its_line(cart: Project) -> None:
    cart.write(
        "templates/cart/reminder.sms.j2",
        'Still thinking?\n{% for item in trigger.properties["items"] %}{{ item.nam }}'
        "{% endfor %}\n",
    )
    result = runner.invoke(app, ["validate", "journeys/cart.yaml"])
    assert result.exit_code == 1
    assert result.stderr == (
        "templates/cart/reminder.sms.j2:2:1: 'dict object' has no attribute 'nam' (rendering "
        "for contacts/alice.yaml with the cart_abandoned event of simulations/cart_left.yaml)\n"
    )
    assert result.stdout == "0 journey(s) valid, 1 error(s), 0 warning(s)\n"


def test_a_template_that_renders_for_every_sample_passes(cart: Project) -> None:
    cart.write(
        "templates/cart/reminder.sms.j2",
        '{{ contact.first_name }}, still thinking about {% for item in trigger.properties["items"]'
        " %}{{ item.name }}{% endfor %}? {{ steps.remind.status }}\n",
    )
    result = runner.invoke(app, ["validate", "journeys/cart.yaml"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("ok cart (version ")


def test_no_render_skips_the_samples(cart: Project) -> None:
    cart.write("templates/cart/reminder.sms.j2", "{{ contact.favourite_roast }}\n")
    result = runner.invoke(app, ["validate", "journeys/cart.yaml", "--no-render", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["diagnostics"] == []


def test_render_without_contact_files_says_so(cart: Project) -> None:
    cart.write("templates/cart/reminder.sms.j2", "Hi\n")
    for path in (cart.root / "contacts").glob("*.yaml"):
        path.unlink()
    result = runner.invoke(app, ["validate", "journeys/cart.yaml", "--render"])
    assert isinstance(result.exception, RapportError)
    assert str(result.exception) == (
        "--render: no contact files (*.yaml) in contacts/ to render the messages for"
    )


def test_contacts_who_would_not_enter_are_not_rendered_for(cart: Project) -> None:
    # Only the VIPs (bruno, chen) enter, and both have a last order: alice's missing one is moot.
    cart.write("journeys/cart.yaml", CART.replace("steps:", "audience: contact.vip\nsteps:"))
    cart.write("templates/cart/reminder.sms.j2", "Since {{ contact.last_order_at | date }}\n")
    assert runner.invoke(app, ["validate", "journeys/cart.yaml"]).exit_code == 0
    cart.write("journeys/cart.yaml", CART)
    result = runner.invoke(app, ["validate", "journeys/cart.yaml"])
    assert result.stderr.startswith(
        "templates/cart/reminder.sms.j2:1:1: 'dict object' has no attribute 'last_order_at' "
        "(rendering for contacts/alice.yaml"
    )


def test_every_variant_of_a_content_experiment_is_rendered(cart: Project) -> None:
    cart.write(
        "journeys/cart.yaml",
        CART.replace(
            "    template: cart/reminder\n",
            "    variants:\n      a: {template: cart/reminder}\n      b: {template: cart/nudge}\n",
        ),
    )
    cart.write("templates/cart/reminder.sms.j2", "Still thinking?\n")
    cart.write("templates/cart/nudge.sms.j2", "Your cart:\n{{ trigger.properties.cart_idd }}\n")
    result = runner.invoke(app, ["validate", "journeys/cart.yaml"])
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "templates/cart/nudge.sms.j2:2:1: 'dict object' has no attribute 'cart_idd' (rendering "
        "for contacts/alice.yaml"
    )
