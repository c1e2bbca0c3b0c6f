"""collect_template: bundles, not-found suggestions and diagnostics at the template file's line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rendering.bundle import TemplateBundle, TemplateNotFound, collect_template
from workflows.diagnostics import Diagnostic, Severity

Write = Callable[[str, str], Path]

LAYOUT = (
    "<html><body>{% block content %}{% endblock %}"
    '<a href="{{ unsubscribe_url }}">x</a></body></html>\n'
)


def test_bundle_holds_main_text_layout_and_includes(
    templates_dir: Path, write_template: Write
) -> None:
    write_template("layouts/base.html.j2", LAYOUT)
    write_template("layouts/footer.text.j2", "--\n{{ brand.name }}\n")
    write_template(
        "news/hello.email.j2",
        '---\nsubject: Hi\n---\n{% extends "layouts/base.html.j2" %}\n'
        "{% block content %}Hello{% endblock %}\n",
    )
    write_template("news/hello.text.j2", 'Hello\n{% include "layouts/footer.text.j2" %}\n')
    write_template("news/other.email.j2", "---\nsubject: unrelated\n---\n")

    bundle, diagnostics = collect_template(templates_dir, "news/hello", "email")

    assert diagnostics == []
    assert bundle is not None
    assert sorted(bundle.files) == [
        "layouts/base.html.j2",
        "layouts/footer.text.j2",
        "news/hello.email.j2",
        "news/hello.text.j2",
    ]
    assert bundle.files["layouts/base.html.j2"] == LAYOUT
    assert bundle.main_file == "news/hello.email.j2"
    assert bundle.text_file == "news/hello.text.j2"
    assert bundle.directory == "templates"


def test_bundle_is_frozen_and_rejects_unknown_fields() -> None:
    bundle = TemplateBundle(name="a", channel="sms", files={"a.sms.j2": "hi"})
    with pytest.raises(ValueError):
        TemplateBundle(name="a", channel="sms", files={}, extra=1)  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        bundle.name = "b"  # type: ignore[misc]


def test_missing_template_suggests_the_closest_name(
    templates_dir: Path, write_template: Write
) -> None:
    write_template("onboarding/welcome.email.j2", "---\nsubject: Hi\n---\nHello\n")

    with pytest.raises(TemplateNotFound) as caught:
        collect_template(templates_dir, "onboarding/welcom", "email")

    assert str(caught.value) == (
        "template 'onboarding/welcom' not found: expected templates/onboarding/welcom.email.j2 "
        "(did you mean 'onboarding/welcome'?)"
    )


def test_missing_template_without_a_close_match_has_no_suggestion(
    templates_dir: Path, write_template: Write
) -> None:
    write_template("onboarding/welcome.sms.j2", "Hello\n")

    with pytest.raises(TemplateNotFound) as caught:
        collect_template(templates_dir, "onboarding/welcome", "email")

    assert str(caught.value) == (
        "template 'onboarding/welcome' not found: expected templates/onboarding/welcome.email.j2"
    )


def test_unclosed_if_is_reported_at_its_line_counting_front_matter(
    templates_dir: Path, write_template: Write
) -> None:
    write_template(
        "x/unclosed.email.j2",
        "---\nsubject: Hi\npreheader: There\n---\n<p>Hello</p>\n{% if contact.vip %}\n<p>VIP</p>\n",
    )

    _, diagnostics = collect_template(templates_dir, "x/unclosed", "email")

    assert diagnostics == [
        Diagnostic(
            "templates/x/unclosed.email.j2",
            6,
            1,
            "unclosed {% if %}: Unexpected end of template. Jinja was looking for the following "
            "tags: 'elif' or 'else' or 'endif'. "
            "The innermost block that needs to be closed is 'if'.",
        )
    ]


def test_bad_expression_is_reported_at_its_line(templates_dir: Path, write_template: Write) -> None:
    write_template(
        "x/bad.email.j2", "---\nsubject: Hi\n---\n<p>Hello</p>\n<p>{{ contact.first_name | }}</p>\n"
    )

    _, diagnostics = collect_template(templates_dir, "x/bad", "email")

    assert [str(d) for d in diagnostics] == [
        "templates/x/bad.email.j2:5:1: expected token 'name', got 'end of print statement'"
    ]


def test_sms_syntax_error_line_has_no_front_matter_offset(
    templates_dir: Path, write_template: Write
) -> None:
    write_template("x/bad.sms.j2", "Hi\n{{ 1 + }}\n")

    _, diagnostics = collect_template(templates_dir, "x/bad", "sms")

    assert [str(d) for d in diagnostics] == [
        "templates/x/bad.sms.j2:2:1: unexpected 'end of print statement'"
    ]


def test_syntax_error_in_a_layout_is_reported_in_the_layout(
    templates_dir: Path, write_template: Write
) -> None:
    write_template(
        "layouts/broken.html.j2", "<html>\n<body>\n{% block content %}{% endblock %}\n{{ 1 + }}\n"
    )
    write_template(
        "x/child.email.j2",
        '---\nsubject: Hi\n---\n{% extends "layouts/broken.html.j2" %}\n'
        "{% block content %}x{% endblock %}\n",
    )

    _, diagnostics = collect_template(templates_dir, "x/child", "email")

    assert [str(d) for d in diagnostics] == [
        "templates/layouts/broken.html.j2:4:1: unexpected 'end of print statement'"
    ]


def test_missing_layout_is_reported_at_the_extends_line(
    templates_dir: Path, write_template: Write
) -> None:
    write_template(
        "x/child.email.j2",
        '---\nsubject: Hi\n---\n\n{% extends "layouts/nope.html.j2" %}\n'
        "{% block content %}x{% endblock %}\n",
    )

    bundle, diagnostics = collect_template(templates_dir, "x/child", "email")

    assert diagnostics == [
        Diagnostic(
            "templates/x/child.email.j2",
            5,
            1,
            "layout 'layouts/nope.html.j2' not found: expected templates/layouts/nope.html.j2",
        )
    ]
    assert bundle is not None and list(bundle.files) == ["x/child.email.j2"]


def test_missing_include_is_reported_at_the_include_line(
    templates_dir: Path, write_template: Write
) -> None:
    write_template("x/hello.sms.j2", 'Hi\n{% include "parts/sig.sms.j2" %}\n')

    _, diagnostics = collect_template(templates_dir, "x/hello", "sms")

    assert [str(d) for d in diagnostics] == [
        "templates/x/hello.sms.j2:2:1: included template 'parts/sig.sms.j2' not found: "
        "expected templates/parts/sig.sms.j2"
    ]


def test_reference_outside_the_templates_directory_is_an_error(
    templates_dir: Path, write_template: Write
) -> None:
    write_template("x/hello.sms.j2", '{% include "../secrets.txt" %}\n')

    _, diagnostics = collect_template(templates_dir, "x/hello", "sms")

    assert [d.message for d in diagnostics] == [
        "included template '../secrets.txt' must be a path inside templates"
    ]


def test_email_without_subject_is_an_error_at_line_1(
    templates_dir: Path, write_template: Write
) -> None:
    write_template("x/nosubject.email.j2", "---\npreheader: Hello\n---\n<p>Hi</p>\n")

    _, diagnostics = collect_template(templates_dir, "x/nosubject", "email")

    assert [str(d) for d in diagnostics] == [
        "templates/x/nosubject.email.j2:1:1: "
        "missing 'subject' in the front matter (required for email)"
    ]


def test_email_without_front_matter_misses_its_subject(
    templates_dir: Path, write_template: Write
) -> None:
    write_template("x/plain.email.j2", "<p>Hi</p>\n")

    _, diagnostics = collect_template(templates_dir, "x/plain", "email")

    assert [d.message for d in diagnostics] == [
        "missing 'subject' in the front matter (required for email)"
    ]


def test_subject_that_does_not_compile_is_reported_at_its_line(
    templates_dir: Path, write_template: Write
) -> None:
    write_template(
        "x/subject.email.j2",
        '---\npreheader: fine\nsubject: "Hi {{ contact.first_name "\n---\n<p>Hi</p>\n',
    )

    _, diagnostics = collect_template(templates_dir, "x/subject", "email")

    assert [str(d) for d in diagnostics] == [
        "templates/x/subject.email.j2:3:10: subject: unexpected end of template, "
        "expected 'end of print statement'."
    ]


def test_preheader_that_does_not_compile_is_an_error(
    templates_dir: Path, write_template: Write
) -> None:
    write_template("x/pre.email.j2", '---\nsubject: Hi\npreheader: "{% if x %}"\n---\n<p>Hi</p>\n')

    _, diagnostics = collect_template(templates_dir, "x/pre", "email")

    assert [(d.line, d.message.split(":")[0]) for d in diagnostics] == [(3, "preheader")]


def test_invalid_front_matter_yaml_is_reported(templates_dir: Path, write_template: Write) -> None:
    write_template("x/yaml.email.j2", "---\nsubject: Hi\n  bad: indent\n---\n<p>Hi</p>\n")

    _, diagnostics = collect_template(templates_dir, "x/yaml", "email")

    assert [str(d) for d in diagnostics] == [
        "templates/x/yaml.email.j2:3:6: front matter is not valid YAML: "
        "mapping values are not allowed here"
    ]


def test_unclosed_front_matter_is_reported_at_line_1(
    templates_dir: Path, write_template: Write
) -> None:
    write_template("x/open.email.j2", "---\nsubject: Hi\n<p>Hi</p>\n")

    _, diagnostics = collect_template(templates_dir, "x/open", "email")

    assert [str(d) for d in diagnostics] == [
        "templates/x/open.email.j2:1:1: front matter starting here is never closed with '---'"
    ]


def test_unknown_front_matter_key_is_a_warning_with_a_suggestion(
    templates_dir: Path, write_template: Write
) -> None:
    write_template("x/typo.email.j2", "---\nsubject: Hi\npreheadr: There\n---\n<p>Hi</p>\n")

    _, diagnostics = collect_template(templates_dir, "x/typo", "email")

    assert diagnostics == [
        Diagnostic(
            "templates/x/typo.email.j2",
            3,
            11,
            "unknown front matter key 'preheadr' (did you mean 'preheader'?)",
            Severity.WARNING,
            "front-matter-key",
        )
    ]


def test_every_problem_is_reported_not_just_the_first(
    templates_dir: Path, write_template: Write
) -> None:
    write_template(
        "x/many.email.j2",
        '---\npreheader: "{{ oops"\n---\n{% extends "layouts/gone.html.j2" %}\n',
    )

    _, diagnostics = collect_template(templates_dir, "x/many", "email")

    assert [(d.line, d.message.split(" ")[0]) for d in diagnostics] == [
        (1, "missing"),
        (2, "preheader:"),
        (4, "layout"),
    ]
