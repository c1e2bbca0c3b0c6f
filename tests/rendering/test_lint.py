"""lint_template: unsubscribe links in marketing email, SMS longer than 3 segments."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rendering.bundle import TemplateBundle, collect_template
from rendering.lints import lint_template
from workflows.diagnostics import Diagnostic, Severity

Write = Callable[[str, str], Path]


def collect(templates_dir: Path, name: str, channel: str) -> TemplateBundle:
    bundle, diagnostics = collect_template(templates_dir, name, channel)  # type: ignore[arg-type]
    assert diagnostics == []
    assert bundle is not None
    return bundle


def test_marketing_email_without_unsubscribe_url_is_warned(
    templates_dir: Path, write_template: Write
) -> None:
    write_template("promo/sale.email.j2", "---\nsubject: Sale\n---\n<p>Everything 20% off</p>\n")
    bundle = collect(templates_dir, "promo/sale", "email")

    assert lint_template(bundle, marketing=True) == [
        Diagnostic(
            "templates/promo/sale.email.j2",
            1,
            1,
            "marketing email without an unsubscribe link: use {{ unsubscribe_url }} "
            "(or extend a layout that does)",
            Severity.WARNING,
            "unsubscribe-link",
        )
    ]


def test_transactional_email_without_unsubscribe_url_is_fine(
    templates_dir: Path, write_template: Write
) -> None:
    write_template("orders/shipped.email.j2", "---\nsubject: Shipped\n---\n<p>On its way</p>\n")
    bundle = collect(templates_dir, "orders/shipped", "email")

    assert lint_template(bundle, marketing=False) == []


def test_unsubscribe_url_in_the_layout_counts(templates_dir: Path, write_template: Write) -> None:
    write_template(
        "layouts/base.html.j2",
        '{% block content %}{% endblock %}<a href="{{ unsubscribe_url }}">Unsubscribe</a>',
    )
    write_template(
        "promo/sale.email.j2",
        '---\nsubject: Sale\n---\n{% extends "layouts/base.html.j2" %}\n'
        "{% block content %}Sale{% endblock %}\n",
    )
    bundle = collect(templates_dir, "promo/sale", "email")

    assert lint_template(bundle, marketing=True) == []


def test_text_part_without_unsubscribe_url_is_warned(
    templates_dir: Path, write_template: Write
) -> None:
    write_template(
        "promo/sale.email.j2",
        '---\nsubject: Sale\n---\n<a href="{{ unsubscribe_url }}">Unsubscribe</a>\n',
    )
    write_template("promo/sale.text.j2", "Sale!\n")
    bundle = collect(templates_dir, "promo/sale", "email")

    assert [str(d) for d in lint_template(bundle, marketing=True)] == [
        "templates/promo/sale.text.j2:1:1: warning: "
        "plain-text part of a marketing email without {{ unsubscribe_url }} [unsubscribe-link]"
    ]


def test_mentioning_unsubscribe_url_in_a_comment_does_not_count(
    templates_dir: Path, write_template: Write
) -> None:
    write_template(
        "promo/sale.email.j2", "---\nsubject: Sale\n---\n{# no unsubscribe link #}<p>Sale</p>\n"
    )
    bundle = collect(templates_dir, "promo/sale", "email")

    assert [str(d) for d in lint_template(bundle, marketing=True)] == [
        "templates/promo/sale.email.j2:1:1: warning: marketing email without an unsubscribe "
        "link: use {{ unsubscribe_url }} (or extend a layout that does) [unsubscribe-link]"
    ]


def test_sms_over_three_segments_is_warned(templates_dir: Path, write_template: Write) -> None:
    write_template("promo/long.sms.j2", "{{ contact.first_name }}: " + "x" * 450 + "\n")
    bundle = collect(templates_dir, "promo/long", "sms")

    assert lint_template(bundle, marketing=False) == [
        Diagnostic(
            "templates/promo/long.sms.j2",
            1,
            1,
            "SMS renders to 4 segments (GSM-7, 462 characters) for a sample contact; "
            "keep it within 3 segments",
            Severity.WARNING,
            "sms-segments",
        )
    ]


def test_sms_lint_counts_the_opt_out_line_for_marketing(
    templates_dir: Path, write_template: Write
) -> None:
    write_template("promo/edge.sms.j2", "x" * 450 + "\n")
    bundle = collect(templates_dir, "promo/edge", "sms")

    assert lint_template(bundle, marketing=False) == []
    assert [d.message.split(" for ")[0] for d in lint_template(bundle, marketing=True)] == [
        "SMS renders to 4 segments (GSM-7, 472 characters)"
    ]


def test_sms_lint_uses_a_given_sample(templates_dir: Path, write_template: Write) -> None:
    write_template("promo/name.sms.j2", "Hi {{ contact.first_name }}!\n")
    bundle = collect(templates_dir, "promo/name", "sms")

    assert [
        d.message
        for d in lint_template(
            bundle, marketing=False, sample={"contact": {"first_name": "x" * 500}}
        )
    ] == [
        "SMS renders to 4 segments (GSM-7, 504 characters) for a sample contact; "
        "keep it within 3 segments"
    ]


def test_sms_lint_is_skipped_when_the_sample_cannot_render(
    templates_dir: Path, write_template: Write
) -> None:
    write_template("promo/broken.sms.j2", "{{ 1 / 0 }}" + "x" * 600 + "\n")
    bundle = collect(templates_dir, "promo/broken", "sms")

    assert lint_template(bundle, marketing=True) == []


def test_child_that_drops_the_layout_footer_is_warned(
    templates_dir: Path, write_template: Write
) -> None:
    write_template(
        "layouts/base.html.j2",
        "{% block content %}{% endblock %}"
        '{% block footer %}<a href="{{ unsubscribe_url }}">Unsubscribe</a>{% endblock %}',
    )
    write_template(
        "promo/sale.email.j2",
        '---\nsubject: Sale\n---\n{% extends "layouts/base.html.j2" %}\n'
        "{% block content %}Sale{% endblock %}{% block footer %}Bye{% endblock %}\n",
    )
    bundle = collect(templates_dir, "promo/sale", "email")

    assert [d.message for d in lint_template(bundle, marketing=True)] == [
        "marketing email without an unsubscribe link: use {{ unsubscribe_url }} "
        "(or extend a layout that does)"
    ]


def test_unsubscribe_lint_reads_the_sources_when_the_sample_cannot_render(
    templates_dir: Path, write_template: Write
) -> None:
    write_template("promo/odd.email.j2", "---\nsubject: Sale\n---\n<p>{{ 1 / 0 }}</p>\n")
    write_template(
        "promo/ok.email.j2",
        '---\nsubject: Sale\n---\n<p>{{ 1 / 0 }}</p><a href="{{ unsubscribe_url }}">x</a>\n',
    )

    odd = lint_template(collect(templates_dir, "promo/odd", "email"), marketing=True)
    assert [str(d) for d in odd] == [
        "templates/promo/odd.email.j2:1:1: warning: marketing email without an unsubscribe "
        "link: use {{ unsubscribe_url }} (or extend a layout that does) [unsubscribe-link]"
    ]
    assert lint_template(collect(templates_dir, "promo/ok", "email"), marketing=True) == []
