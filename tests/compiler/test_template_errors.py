"""Templates a journey sends must exist and compile; their errors are at the template's lines."""

from __future__ import annotations

from rendering.bundle import template_event_questions
from tests.compiler.conftest import HEAD, Project


def send(template: str, channel: str = "email") -> str:
    return HEAD + f"  - id: message\n    send: {channel}\n    template: {template}\n"


def test_a_missing_template_points_at_the_template_line(project: Project) -> None:
    assert project.errors(send("onboarding/welcom")) == [
        "journeys/test.yaml:7:15: template 'onboarding/welcom' not found: expected "
        "templates/onboarding/welcom.email.j2 (did you mean 'onboarding/welcome'?)"
    ]


def test_a_template_of_the_other_channel_is_missing(project: Project) -> None:
    assert project.errors(send("onboarding/welcome", "sms")) == [
        "journeys/test.yaml:7:15: template 'onboarding/welcome' not found: expected "
        "templates/onboarding/welcome.sms.j2"
    ]


def test_an_unclosed_block_is_reported_at_the_template_line_counting_front_matter(
    project: Project,
) -> None:
    project.write(
        "templates/promo/flash.email.j2",
        """\
        ---
        subject: Flash sale
        preheader: Today only
        ---
        <p>Hello {{ contact.first_name }}</p>
        {% if contact.vip %}
        <p>VIP bonus</p>
        <p>{{ unsubscribe_url }}</p>
        """,
    )
    assert project.errors(send("promo/flash")) == [
        "templates/promo/flash.email.j2:6:1: unclosed {% if %}: Unexpected end of template. "
        "Jinja was looking for the following tags: 'elif' or 'else' or 'endif'. The innermost "
        "block that needs to be closed is 'if'."
    ]


def test_a_syntax_error_in_an_sms_template(project: Project) -> None:
    project.write("templates/promo/flash.sms.j2", "Hi {{ contact.first_name }\n")
    assert project.errors(send("promo/flash", "sms")) == [
        "templates/promo/flash.sms.j2:1:1: unexpected '}'"
    ]


def test_an_email_without_a_subject(project: Project) -> None:
    project.write(
        "templates/promo/flash.email.j2",
        "---\npreheader: Today only\n---\n<p>{{ unsubscribe_url }}</p>\n",
    )
    assert project.errors(send("promo/flash")) == [
        "templates/promo/flash.email.j2:1:1: missing 'subject' in the front matter (required "
        "for email)"
    ]


def test_a_missing_layout_is_reported_at_the_extends_line(project: Project) -> None:
    project.write(
        "templates/promo/flash.email.j2",
        '---\nsubject: Hi\n---\n{% extends "layouts/missing.html.j2" %}\n',
    )
    assert project.errors(send("promo/flash")) == [
        "templates/promo/flash.email.j2:4:1: layout 'layouts/missing.html.j2' not found: "
        "expected templates/layouts/missing.html.j2"
    ]


def test_a_template_used_twice_is_reported_once(project: Project) -> None:
    project.write("templates/promo/flash.sms.j2", "Hi {{ contact.first_name }\n")
    text = send("promo/flash", "sms") + "  - send: sms\n    template: promo/flash\n"
    assert project.errors(text) == ["templates/promo/flash.sms.j2:1:1: unexpected '}'"]


def test_a_templates_event_questions_are_literal_and_known_to_the_send(project: Project) -> None:
    project.write(
        "templates/promo/orders.sms.j2",
        """\
        Hi {{ contact.first_name }}, order number {{ count_events("order_placed") + 1 }}!
        {{ count_events(trigger.name) }}
        """,
    )
    assert project.errors(send("promo/orders", "sms")) == [
        "templates/promo/orders.sms.j2:2:1: count_events: the event name must be a quoted "
        "literal, so the events can be counted before the expression runs: "
        'count_events("order_placed") or count_events("order_placed", within="30d")'
    ]
    project.write(
        "templates/promo/orders.sms.j2",
        'Hi, order number {{ count_events("order_placed") + 1 }}! {{ last_event("x") }}\n',
    )
    plan, diagnostics = project.compile()
    assert plan is not None, diagnostics
    bundle = next(iter(plan.templates.values()))
    assert [q.call() for q in template_event_questions(bundle)] == [
        "count_events('order_placed')",
        "last_event('x')",
    ]


# ---------------------------------------------------------------------------------------------
# Jinja traps on event properties (issue 16 item 1)


def test_a_dict_method_read_as_an_event_property_is_an_error_with_the_fix(
    project: Project,
) -> None:
    project.write(
        "templates/cart/reminder.email.j2",
        "---\nsubject: 'You left {{ trigger.properties.items | length }} things'\n---\n"
        "<ul>\n{% for item in trigger.properties.items %}<li>{{ item.name }}</li>{% endfor %}\n"
        "</ul>\n<p>{{ unsubscribe_url }}</p>\n",
    )
    assert project.errors(send("cart/reminder")) == [
        "templates/cart/reminder.email.j2:2:10: subject: trigger.properties.items reads the "
        "dict method items(), not the property 'items': write trigger.properties[\"items\"]",
        "templates/cart/reminder.email.j2:5:1: trigger.properties.items reads the dict method "
        "items(), not the property 'items': write trigger.properties[\"items\"]",
    ]


def test_the_trap_is_found_on_a_step_result_in_an_sms(project: Project) -> None:
    project.write("templates/cart/nudge.sms.j2", "{{ steps.wait.event.properties.keys }}\n")
    assert project.errors(send("cart/nudge", "sms")) == [
        "templates/cart/nudge.sms.j2:1:1: steps.wait.event.properties.keys reads the dict method "
        "keys(), not the property 'keys': write steps.wait.event.properties[\"keys\"]"
    ]


def test_dict_methods_called_and_properties_read_by_key_are_fine(project: Project) -> None:
    project.write(
        "templates/cart/ok.sms.j2",
        "{% for k, v in trigger.properties.items() %}{{ k }}{% endfor %}"
        '{{ trigger.properties.get("total", 0) }} {{ trigger.properties["items"] | length }}\n',
    )
    assert project.errors(send("cart/ok", "sms")) == []
