"""render_email / render_sms: front matter, escaping, plain text, opt-out line, error locations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rendering.bundle import TemplateBundle, collect_template
from rendering.render import OPT_OUT_LINE, RenderError, render_email, render_sms

Write = Callable[[str, str], Path]

LAYOUT = """<!DOCTYPE html>
<html>
<head><title>{{ subject }}</title><style>p { color: red; }</style></head>
<body>
{% if preheader %}<div style="display:none">{{ preheader }}</div>{% endif %}
{% block content %}{% endblock %}
<p>{{ brand.name }} &middot; <a href="{{ unsubscribe_url }}">Unsubscribe</a></p>
</body>
</html>
"""

WELCOME = """---
subject: "Welcome, {{ contact.first_name }}"
preheader: "Hello from {{ brand.name }}"
---
{% extends "layouts/base.html.j2" %}
{% block content %}
<p>Hi {{ contact.first_name }},</p>
<p>Thanks for joining.<br>Enjoy your coffee.</p>
{% endblock %}
"""


def variables(**contact: Any) -> dict[str, Any]:
    return {
        "contact": {"id": "c1", "locale": "en_US", **contact},
        "journey": {"offer_code": "WELCOME10"},
        "brand": {"name": "Rapport Coffee Co.", "url": "https://rapport.example"},
        "unsubscribe_url": "https://rapport.example/u/c1",
        "preferences_url": "https://rapport.example/p/c1",
    }


def bundle_of(templates_dir: Path, name: str, channel: str) -> TemplateBundle:
    bundle, diagnostics = collect_template(templates_dir, name, channel)  # type: ignore[arg-type]
    assert diagnostics == []
    assert bundle is not None
    return bundle


@pytest.fixture
def welcome(templates_dir: Path, write_template: Write) -> TemplateBundle:
    write_template("layouts/base.html.j2", LAYOUT)
    write_template("onboarding/welcome.email.j2", WELCOME)
    return bundle_of(templates_dir, "onboarding/welcome", "email")


def sms(templates_dir: Path, write_template: Write, source: str) -> TemplateBundle:
    write_template("promo/note.sms.j2", source)
    return bundle_of(templates_dir, "promo/note", "sms")


def test_email_renders_subject_preheader_and_html(welcome: TemplateBundle) -> None:
    email = render_email(welcome, variables(first_name="Alice"), locale="en_US")

    assert email.subject == "Welcome, Alice"
    assert email.preheader == "Hello from Rapport Coffee Co."
    assert "<title>Welcome, Alice</title>" in email.html
    assert '<div style="display:none">Hello from Rapport Coffee Co.</div>' in email.html
    assert "<p>Hi Alice,</p>" in email.html


def test_email_text_is_derived_from_html_without_head_or_preheader(welcome: TemplateBundle) -> None:
    email = render_email(welcome, variables(first_name="Alice"), locale="en_US")

    assert email.text == (
        "Hi Alice,\n"
        "\n"
        "Thanks for joining.\n"
        "Enjoy your coffee.\n"
        "\n"
        "Rapport Coffee Co. · Unsubscribe (https://rapport.example/u/c1)\n"
    )


def test_email_text_comes_from_the_text_part_when_present(
    templates_dir: Path, write_template: Write, welcome: TemplateBundle
) -> None:
    write_template("onboarding/welcome.text.j2", "Hi {{ contact.first_name }} & welcome!\n")
    bundle = bundle_of(templates_dir, "onboarding/welcome", "email")

    email = render_email(bundle, variables(first_name="Tom & Jerry"), locale="en_US")

    assert email.text == "Hi Tom & Jerry & welcome!\n"


def test_contact_fields_are_escaped_in_email_html(welcome: TemplateBundle) -> None:
    email = render_email(welcome, variables(first_name="<script>alert(1)</script>"), locale=None)

    assert "<script>" not in email.html
    assert "<p>Hi &lt;script&gt;alert(1)&lt;/script&gt;,</p>" in email.html


def test_subject_is_plain_text_not_html_escaped(welcome: TemplateBundle) -> None:
    email = render_email(welcome, variables(first_name="Tom & <Jerry>"), locale=None)

    assert email.subject == "Welcome, Tom & <Jerry>"
    assert "<title>Welcome, Tom &amp; &lt;Jerry&gt;</title>" in email.html


def test_contact_fields_are_not_escaped_in_sms(templates_dir: Path, write_template: Write) -> None:
    bundle = sms(templates_dir, write_template, "Hi {{ contact.first_name }}\n")

    result = render_sms(bundle, variables(first_name="<script>&"), locale=None, marketing=False)

    assert result.body == "Hi <script>&"


def test_marketing_sms_gets_the_opt_out_line(templates_dir: Path, write_template: Write) -> None:
    bundle = sms(templates_dir, write_template, "Code {{ journey.offer_code }} inside\n")

    result = render_sms(bundle, variables(), locale=None, marketing=True)

    assert result.body == f"Code WELCOME10 inside\n{OPT_OUT_LINE}"
    assert OPT_OUT_LINE == "Reply STOP to opt out"
    assert (result.segments.encoding, result.segments.characters) == ("GSM-7", 43)


def test_transactional_sms_has_no_opt_out_line(templates_dir: Path, write_template: Write) -> None:
    bundle = sms(templates_dir, write_template, "Your order shipped\n")

    result = render_sms(bundle, variables(), locale=None, marketing=False)

    assert result.body == "Your order shipped"


def test_marketing_sms_that_mentions_stop_keeps_its_own_line(
    templates_dir: Path, write_template: Write
) -> None:
    bundle = sms(templates_dir, write_template, "Sale today! Text stop to unsubscribe.")

    result = render_sms(bundle, variables(), locale=None, marketing=True)

    assert result.body == "Sale today! Text stop to unsubscribe."


def test_stop_inside_another_word_does_not_count(
    templates_dir: Path, write_template: Write
) -> None:
    bundle = sms(templates_dir, write_template, "Non-stopping deals: unstoppable!")

    result = render_sms(bundle, variables(), locale=None, marketing=True)

    assert result.body.endswith(f"\n{OPT_OUT_LINE}")


def test_sms_babel_spaces_become_plain_spaces(templates_dir: Path, write_template: Write) -> None:
    bundle = sms(templates_dir, write_template, 'Total {{ 1240.5 | money("EUR") }}')

    result = render_sms(bundle, variables(), locale="fr_FR", marketing=False)

    assert result.body == "Total 1 240,50 €"
    assert result.segments.encoding == "GSM-7"


def test_undefined_variable_names_the_file_and_line_counting_front_matter(
    welcome: TemplateBundle,
) -> None:
    context = variables()
    context["contact"]["first_name"] = "Al"
    bundle_source = dict(welcome.files)
    bundle_source["onboarding/welcome.email.j2"] = WELCOME.replace(
        "<p>Thanks for joining.", "<p>{{ contact.last_name }} thanks for joining."
    )
    bundle = welcome.model_copy(update={"files": bundle_source})

    with pytest.raises(RenderError) as caught:
        render_email(bundle, context, locale=None)

    assert str(caught.value) == (
        "templates/onboarding/welcome.email.j2:8: 'dict object' has no attribute 'last_name'"
    )
    assert (caught.value.file, caught.value.line) == ("templates/onboarding/welcome.email.j2", 8)


def test_undefined_variable_in_the_subject_names_the_subject_line(welcome: TemplateBundle) -> None:
    with pytest.raises(RenderError) as caught:
        render_email(welcome, variables(), locale=None)

    assert str(caught.value) == (
        "templates/onboarding/welcome.email.j2:2: "
        "subject: 'dict object' has no attribute 'first_name'"
    )


def test_undefined_variable_in_a_layout_names_the_layout_line(welcome: TemplateBundle) -> None:
    context = variables(first_name="Al")
    del context["unsubscribe_url"]

    with pytest.raises(RenderError) as caught:
        render_email(welcome, context, locale=None)

    assert str(caught.value) == "templates/layouts/base.html.j2:7: 'unsubscribe_url' is undefined"


def test_undefined_variable_in_sms_names_its_line(
    templates_dir: Path, write_template: Write
) -> None:
    bundle = sms(templates_dir, write_template, "Hi\n{{ journey.missing_code }}\n")

    with pytest.raises(RenderError) as caught:
        render_sms(bundle, variables(), locale=None, marketing=False)

    assert str(caught.value) == (
        "templates/promo/note.sms.j2:2: 'dict object' has no attribute 'missing_code'"
    )


def test_default_filter_is_the_fallback_for_missing_fields(
    templates_dir: Path, write_template: Write
) -> None:
    bundle = sms(templates_dir, write_template, 'Hi {{ contact.first_name | default("there") }}')

    assert render_sms(bundle, variables(), locale=None, marketing=False).body == "Hi there"


def test_filter_errors_name_the_line(templates_dir: Path, write_template: Write) -> None:
    bundle = sms(templates_dir, write_template, '\n\n{{ "lots" | money }}')

    with pytest.raises(RenderError) as caught:
        render_sms(bundle, variables(), locale=None, marketing=False)

    assert str(caught.value) == "templates/promo/note.sms.j2:3: money expects a number, got 'lots'"


def test_empty_sms_is_an_error(templates_dir: Path, write_template: Write) -> None:
    bundle = sms(templates_dir, write_template, "{% if false %}never{% endif %}\n")

    with pytest.raises(RenderError) as caught:
        render_sms(bundle, variables(), locale=None, marketing=True)

    assert str(caught.value) == "templates/promo/note.sms.j2:1: the SMS renders to an empty message"


def test_sandbox_blocks_unsafe_attribute_access(templates_dir: Path, write_template: Write) -> None:
    bundle = sms(templates_dir, write_template, "{{ contact.__class__.__mro__ }}")

    with pytest.raises(RenderError) as caught:
        render_sms(bundle, variables(), locale=None, marketing=False)

    assert str(caught.value) == (
        "templates/promo/note.sms.j2:1: access to attribute '__class__' of 'dict' object is unsafe."
    )


def test_templates_cannot_mutate_the_context(templates_dir: Path, write_template: Write) -> None:
    bundle = sms(templates_dir, write_template, "{{ contact.update({'id': 'x'}) }}")
    context = variables()

    with pytest.raises(RenderError) as caught:
        render_sms(bundle, context, locale=None, marketing=False)
    assert str(caught.value) == (
        "templates/promo/note.sms.j2:1: access to attribute 'update' of 'dict' object is unsafe."
    )
    assert context["contact"]["id"] == "c1"


def test_locale_defaults_to_the_contacts_locale(templates_dir: Path, write_template: Write) -> None:
    bundle = sms(templates_dir, write_template, '{{ 12.5 | money("EUR") }}')
    context = variables()
    context["contact"]["locale"] = "de_DE"

    assert render_sms(bundle, context, locale=None, marketing=False).body == "12,50 €"
