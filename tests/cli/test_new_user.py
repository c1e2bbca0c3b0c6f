"""A journey as a new user would write it: every mistake at the right line, never a traceback."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import Project

# A first attempt at a journey: a step kind misspelt, a jump to a step that isn't there, a
# template with an unclosed block, an unquoted time of day and an unquoted {{ }}.
FIRST_TRY = """\
# My first journey
name: Cart reminder
trigger:
  event: cart_abandoned
steps:
  - id: remind
    sned: email
    template: cart/reminder
  - id: nudge
    send: email
    template: cart/reminder
    to: {{ contact.email }}
  - wait_until: 10:00
  - id: check
    branch:
      - when: count_events("order_placed") > 0
        goto: thank_you
    else: done
  - id: done
    exit: completed
"""

UNCLOSED = """\
---
subject: You left something behind
---
{% extends "layouts/base.html.j2" %}
{% block content %}
<p>Hi {{ contact.first_name | default("there") }},</p>
{% for item in trigger.properties["items"] %}
<p>{{ item.name }}</p>
{% endblock %}
"""

INDENTED = """\
name: Cart reminder
trigger:
  event: cart_abandoned
steps:
  - id: remind
    send: email
   template: cart/reminder
"""


@pytest.fixture
def first_try(project: Project) -> Project:
    project.write("journeys/cart.yaml", FIRST_TRY)
    project.write("templates/cart/reminder.email.j2", UNCLOSED)
    return project


def test_every_mistake_is_reported_at_its_line(first_try: Project) -> None:
    result = first_try.run("validate", "journeys/cart.yaml")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "journeys/cart.yaml:7:5: unknown step kind 'sned' (did you mean 'send'?)",
        "journeys/cart.yaml:12:9: put {{ … }} in quotes: YAML reads an unquoted {{ … }} as a "
        'mapping, e.g. to: "{{ contact.email }}"',
        "journeys/cart.yaml:13:17: wait_until: YAML reads an unquoted 10:00 as the number 600; "
        'quote times of day: "10:00"',
        "journeys/cart.yaml:17:15: goto: no step has id 'thank_you'",
        "templates/cart/reminder.email.j2:9:1: Encountered unknown tag 'endblock'. You probably "
        "made a nesting mistake. Jinja is expecting this tag, but currently looking for "
        "'endfor' or 'else'. The innermost block that needs to be closed is 'for'.",
    ]
    assert result.stdout == "0 journey(s) valid, 5 error(s), 0 warning(s)\n"


def test_bad_indentation_is_reported_at_its_line(project: Project) -> None:
    project.write("journeys/cart.yaml", INDENTED)
    result = project.run("validate", "journeys/cart.yaml")
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        "journeys/cart.yaml:7:4: YAML syntax error: bad indentation: this line does not line up "
        "with the lines above it"
    )


@pytest.mark.parametrize(
    "arguments",
    [
        ("validate",),
        ("validate", "--json"),
        ("validate", "--strict"),
        ("graph", "cart"),
        ("graph", "cart", "--format", "dot"),
        ("preview", "cart", "remind", "--contact", "contacts/alice.yaml"),
    ],
    ids=lambda a: " ".join(a),
)
def test_no_command_shows_a_traceback_for_a_broken_journey(
    first_try: Project, arguments: tuple[str, ...]
) -> None:
    result = first_try.run(*arguments)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    output = result.stderr + result.stdout
    if "--json" in arguments:
        assert {"file": "journeys/cart.yaml", "line": 7, "col": 5}.items() <= next(
            d for d in json.loads(result.stdout)["diagnostics"] if "sned" in d["message"]
        ).items()
    else:
        assert "journeys/cart.yaml:7:5: unknown step kind 'sned'" in output


@pytest.mark.parametrize(
    "text",
    [
        "",
        "just a sentence\n",
        "- a list\n",
        "name: [unclosed\n",
        "\t- tab\n",
        "name: x\ntrigger: 5\nsteps: 7\n",
        "name: x\ntrigger: {event: a}\nsteps:\n  - 5\n  - [1]\n  - {}\n",
        "name: x\ntrigger: {event: a}\nsteps:\n  - branch: {}\n  - split: []\n  - update: 3\n",
        "name: x\ntrigger: {segment: '{{', at: 5}\nsteps:\n  - webhook: 5\n    body: 3\n",
        "? [a]\n: 1\n",
        "name: x\ntrigger: manual\nsteps:\n  - wait_for: 3\n    timeout: []\n    match: a\n",
    ],
    ids=[
        "empty",
        "text",
        "list",
        "unclosed",
        "tab",
        "wrong-types",
        "non-steps",
        "empty-actions",
        "trigger-junk",
        "complex-key",
        "wait-for-junk",
    ],
)
def test_odd_files_give_errors_and_no_traceback(project: Project, text: str) -> None:
    (project.root / "journeys" / "odd.yaml").write_text(text, encoding="utf-8")
    result = project.run("validate", "journeys/odd.yaml")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("journeys/odd.yaml:")
