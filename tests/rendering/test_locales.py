"""Localised templates (issue 12 item 5): `NAME.LOCALE.email.j2` / `.text.j2` / `.sms.j2`, chosen
by the contact's locale with the fallback fr-CA -> fr -> the unlocalised file, collected into the
bundle, checked and linted in every locale."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rendering.bundle import TemplateBundle, TemplateNotFound, collect_template, template_names
from rendering.lints import lint_template
from rendering.render import RenderError, render_email, render_sms

Write = Callable[[str, str], Path]
LINK = '<a href="{{ unsubscribe_url }}">x</a>'


def email(subject: str, body: str = LINK) -> str:
    return f"---\nsubject: {subject}\n---\n<p>{body}</p>\n"


def collect(templates_dir: Path, name: str, channel: str = "email") -> TemplateBundle:
    bundle, diagnostics = collect_template(templates_dir, name, channel)  # type: ignore[arg-type]
    assert [str(d) for d in diagnostics] == []
    assert bundle is not None
    return bundle


@pytest.fixture
def welcome(templates_dir: Path, write_template: Write) -> TemplateBundle:
    write_template("promo/welcome.email.j2", email("Welcome"))
    write_template("promo/welcome.fr.email.j2", email("Bienvenue"))
    write_template("promo/welcome.fr-CA.email.j2", email("Bienvenue au Québec"))
    write_template("promo/welcome.de.email.j2", email("Willkommen"))
    return collect(templates_dir, "promo/welcome")


def subject_for(bundle: TemplateBundle, locale: str | None) -> str:
    rendered = render_email(bundle.for_locale(locale), {"unsubscribe_url": "u"}, locale=locale)
    return rendered.subject


def test_the_bundle_holds_every_locale_present(welcome: TemplateBundle) -> None:
    assert welcome.locales == ("de", "fr", "fr-CA")
    assert sorted(welcome.files) == [
        "promo/welcome.de.email.j2",
        "promo/welcome.email.j2",
        "promo/welcome.fr-CA.email.j2",
        "promo/welcome.fr.email.j2",
    ]


@pytest.mark.parametrize(
    ("locale", "subject"),
    [
        ("fr_CA", "Bienvenue au Québec"),  # its own file
        ("fr-ca", "Bienvenue au Québec"),  # - or _, any case
        ("fr_FR", "Bienvenue"),  # fr-FR has none: fr
        ("fr", "Bienvenue"),
        ("de_AT", "Willkommen"),
        ("en_US", "Welcome"),  # no English file: the unlocalised one
        (None, "Welcome"),
    ],
)
def test_the_contact_locale_picks_the_file_with_fallback(
    welcome: TemplateBundle, locale: str | None, subject: str
) -> None:
    assert subject_for(welcome, locale) == subject


def test_a_localised_email_uses_its_own_text_part_or_its_own_html(
    templates_dir: Path, write_template: Write
) -> None:
    write_template("promo/sale.email.j2", email("Sale", "Everything 20% off " + LINK))
    write_template("promo/sale.text.j2", "English text {{ unsubscribe_url }}\n")
    write_template("promo/sale.fr.email.j2", email("Soldes", "Tout à -20 % " + LINK))
    write_template("promo/sale.de.email.j2", email("Rabatt", "Alles 20 % billiger " + LINK))
    write_template("promo/sale.de.text.j2", "Deutscher Text {{ unsubscribe_url }}\n")
    bundle = collect(templates_dir, "promo/sale")
    variables = {"unsubscribe_url": "https://u"}

    french = render_email(bundle.for_locale("fr"), variables, locale="fr")
    german = render_email(bundle.for_locale("de"), variables, locale="de")

    assert french.text == "Tout à -20 % x (https://u)\n"  # derived from its HTML, not English
    assert german.text == "Deutscher Text https://u\n"


def test_a_localised_sms(templates_dir: Path, write_template: Write) -> None:
    write_template("promo/flash.sms.j2", "Sale today\n")
    write_template("promo/flash.es.sms.j2", "Rebajas hoy\n")
    bundle = collect(templates_dir, "promo/flash", "sms")

    sms = render_sms(bundle.for_locale("es_MX"), {}, locale="es_MX", marketing=False)

    assert sms.body == "Rebajas hoy"


def test_a_name_with_a_dot_that_is_no_locale_is_not_a_version(
    templates_dir: Path, write_template: Write
) -> None:
    write_template("promo/sale.email.j2", email("Sale"))
    write_template("promo/sale.old.email.j2", email("Old sale"))
    assert collect(templates_dir, "promo/sale").locales == ()
    assert template_names(templates_dir, "email") == ["promo/sale", "promo/sale.old"]


def test_template_names_leave_out_the_localised_versions(welcome: TemplateBundle) -> None:
    assert template_names(Path("templates"), "email") == ["promo/welcome"]


def test_a_localised_file_without_the_unlocalised_one_is_not_found(
    templates_dir: Path, write_template: Write
) -> None:
    write_template("promo/solo.fr.email.j2", email("Seulement en français"))
    with pytest.raises(TemplateNotFound) as raised:
        collect_template(templates_dir, "promo/solo", "email")
    assert str(raised.value) == (
        "template 'promo/solo' not found: expected templates/promo/solo.email.j2, the version "
        "for every locale without its own file (there is templates/promo/solo.fr.email.j2)"
    )


def test_a_syntax_error_in_a_localised_file_is_at_its_line(
    templates_dir: Path, write_template: Write
) -> None:
    write_template("promo/sale.email.j2", email("Sale"))
    write_template("promo/sale.fr.email.j2", "---\nsubject: Soldes\n---\n<p>\n{% if %}\n")
    _, diagnostics = collect_template(templates_dir, "promo/sale", "email")
    assert [str(d) for d in diagnostics] == [
        "templates/promo/sale.fr.email.j2:5:1: Expected an expression, got 'end of statement block'"
    ]


def test_a_localised_email_without_a_subject_is_an_error(
    templates_dir: Path, write_template: Write
) -> None:
    write_template("promo/sale.email.j2", email("Sale"))
    write_template("promo/sale.fr.email.j2", "---\npreheader: Soldes\n---\n<p>Soldes</p>\n")
    _, diagnostics = collect_template(templates_dir, "promo/sale", "email")
    assert [str(d) for d in diagnostics] == [
        "templates/promo/sale.fr.email.j2:1:1: missing 'subject' in the front matter "
        "(required for email)"
    ]


def test_a_render_error_names_the_localised_file_and_line(
    templates_dir: Path, write_template: Write
) -> None:
    write_template("promo/sale.email.j2", email("Sale"))
    write_template("promo/sale.fr.email.j2", "---\nsubject: Soldes\n---\n<p>\n{{ 1 / 0 }}\n")
    bundle = collect(templates_dir, "promo/sale")
    with pytest.raises(RenderError) as raised:
        render_email(bundle.for_locale("fr"), {}, locale="fr")
    assert str(raised.value) == "templates/promo/sale.fr.email.j2:5: division by zero"


def test_the_unsubscribe_lint_runs_in_every_locale(
    templates_dir: Path, write_template: Write
) -> None:
    write_template("promo/sale.email.j2", email("Sale"))
    write_template("promo/sale.fr.email.j2", email("Soldes", "Tout à -20 %"))
    bundle = collect(templates_dir, "promo/sale")
    assert [str(d) for d in lint_template(bundle, marketing=True)] == [
        "templates/promo/sale.fr.email.j2:1:1: warning: marketing email without an unsubscribe "
        "link: use {{ unsubscribe_url }} (or extend a layout that does) [unsubscribe-link]"
    ]


def test_the_sms_segment_lint_runs_in_every_locale(
    templates_dir: Path, write_template: Write
) -> None:
    write_template("promo/flash.sms.j2", "Sale today\n")
    write_template("promo/flash.de.sms.j2", "Ausverkauf " * 45 + "\n")
    bundle = collect(templates_dir, "promo/flash", "sms")
    assert [str(d) for d in lint_template(bundle, marketing=False)] == [
        "templates/promo/flash.de.sms.j2:1:1: warning: SMS renders to 4 segments (GSM-7, 494 "
        "characters) for a sample contact; keep it within 3 segments [sms-segments]"
    ]


def test_a_compiled_plan_stores_the_bundle_without_a_locale(welcome: TemplateBundle) -> None:
    french = welcome.for_locale("fr")
    assert french.model_dump() == welcome.model_dump()
    assert TemplateBundle.model_validate(french.model_dump()).locale is None
