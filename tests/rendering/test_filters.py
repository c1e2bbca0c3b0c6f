"""Babel filters: money, date, datetime, number in the contact's locale and time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from rendering.environment import autoescape_for, build_environment, make_filters, resolve_locale

STARTS = "2026-12-12T19:00:00+00:00"


def render(
    source: str, *, locale: str | None, timezone: str | None = None, **context: object
) -> str:
    env = build_environment({"t.sms.j2": source}, locale=locale, timezone=timezone)
    return env.get_template("t.sms.j2").render(context)


def test_money_in_en_us() -> None:
    assert render('{{ 1240.5 | money("EUR") }} {{ 19.99 | money }}', locale="en_US") == (
        "€1,240.50 $19.99"
    )


def test_money_in_fr_fr() -> None:
    # Babel uses a narrow no-break space to group thousands and a no-break space before the sign.
    assert render('{{ 1240.5 | money("EUR") }}', locale="fr_FR") == "1\u202f240,50\xa0€"


def test_money_accepts_strings_and_currency_from_a_variable() -> None:
    result = render("{{ amount | money(currency) }}", locale="de_DE", amount="180", currency="EUR")
    assert result == "180,00\xa0€"


def test_date_in_en_us_and_fr_fr() -> None:
    assert render("{{ d | date }}", locale="en_US", d=STARTS) == "Dec 12, 2026"
    assert render("{{ d | date }}", locale="fr_FR", d=STARTS) == "12 déc. 2026"
    assert render('{{ d | date("long") }}', locale="fr_FR", d=date(2026, 3, 1)) == "1 mars 2026"


def test_datetime_shows_the_contacts_local_time_to_the_minute() -> None:
    assert render("{{ d | datetime }}", locale="en_US", timezone="America/New_York", d=STARTS) == (
        "Dec 12, 2026, 2:00\u202fPM"
    )
    assert render("{{ d | datetime }}", locale="fr_FR", timezone="Europe/Paris", d=STARTS) == (
        "12 déc. 2026, 20:00"
    )


def test_datetime_accepts_datetime_objects_and_z_suffix() -> None:
    moment = datetime(2026, 12, 12, 19, 0, tzinfo=UTC)
    assert render("{{ d | datetime }}", locale="en_GB", d=moment) == "12 Dec 2026, 19:00"
    assert render("{{ d | datetime }}", locale="en_GB", d="2026-12-12T19:00:00Z") == (
        "12 Dec 2026, 19:00"
    )


def test_datetime_full_style_and_custom_pattern() -> None:
    assert render('{{ d | datetime("full") }}', locale="en_GB", d=STARTS) == (
        "Saturday, 12 December 2026, 19:00"
    )
    assert render('{{ d | datetime("EEEE HH:mm") }}', locale="fr_FR", d=STARTS) == "samedi 19:00"


def test_datetime_explicit_time_zone_wins() -> None:
    result = render('{{ d | datetime("short", tz="Asia/Tokyo") }}', locale="en_GB", d=STARTS)
    assert result == "13/12/2026, 04:00"


def test_number_is_grouped_per_locale() -> None:
    assert render("{{ 1240.5 | number }}", locale="en_US") == "1,240.5"
    assert render("{{ 1240.5 | number }}", locale="de_DE") == "1.240,5"


def test_unknown_or_missing_locale_falls_back_to_en_us() -> None:
    assert str(resolve_locale(None)) == "en_US"
    assert str(resolve_locale("xx_YY")) == "en_US"
    assert str(resolve_locale("fr-FR")) == "fr_FR"


def test_filters_reject_values_of_the_wrong_kind() -> None:
    filters = make_filters("en_US")
    with pytest.raises(ValueError, match="money expects a number, got 'abc'"):
        filters["money"]("abc")
    with pytest.raises(ValueError, match="date expects a date, a datetime or an ISO 8601 string"):
        filters["date"]("next tuesday")


def test_autoescape_only_for_html_templates() -> None:
    assert autoescape_for("onboarding/welcome.email.j2")
    assert autoescape_for("layouts/base.html.j2")
    assert not autoescape_for("onboarding/welcome.text.j2")
    assert not autoescape_for("onboarding/offer.sms.j2")
    assert not autoescape_for(None)
