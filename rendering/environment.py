"""The sandboxed Jinja environment message templates run in (SPEC §4).

- Sandboxed and immutable: templates cannot call unsafe attributes or mutate the context; and
  bounded (`workflows/sandbox.py`): no `9 ** (9 ** 9)`, `"a" * 10 ** 9` or `range(10 ** 9)`.
- `StrictUndefined`: a missing variable is an error; `| default(...)` is the documented fallback.
- HTML autoescaping for email bodies (`*.email.j2`) and HTML layouts (`*.html.j2`); none for
  plain text (`*.text.j2`) and SMS (`*.sms.j2`).
- The loader serves only a bundle's own files (the front matter of an email is stripped, so
  Jinja's line numbers are body lines: add `FrontMatter.line_offset` for the file's line).
- Locale-aware Babel filters: `money`, `date`, `datetime`, `number`, in the contact's locale.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date as date_type
from datetime import datetime as datetime_type
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime, format_time
from babel.numbers import format_currency, format_decimal
from jinja2 import BaseLoader, Environment, StrictUndefined, TemplateNotFound, Undefined
from jinja2.sandbox import SandboxedEnvironment

from rendering.frontmatter import parse_front_matter
from workflows.sandbox import BoundedSandbox

DEFAULT_LOCALE = "en_US"
EMAIL_SUFFIX = ".email.j2"
TEXT_SUFFIX = ".text.j2"
SMS_SUFFIX = ".sms.j2"
HTML_SUFFIXES = (EMAIL_SUFFIX, ".html.j2", ".html")
_DATE_STYLES = ("short", "medium", "long", "full")


def autoescape_for(name: str | None) -> bool:
    """Escape HTML in email bodies and HTML layouts only (not in `from_string` snippets)."""
    return name is not None and name.endswith(HTML_SUFFIXES)


class BundleLoader(BaseLoader):
    """Serves a fixed mapping of template files; an email's front matter is left out."""

    def __init__(self, files: Mapping[str, str]) -> None:
        self.files = dict(files)

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        try:
            source = self.files[template]
        except KeyError:
            raise TemplateNotFound(template) from None
        if template.endswith(EMAIL_SUFFIX):
            source = parse_front_matter(source).body
        # The file name doubles as Jinja's `filename`, so tracebacks name the template file.
        return source, template, lambda: True

    def list_templates(self) -> list[str]:
        return sorted(self.files)


def resolve_locale(locale: str | None) -> Locale:
    """The contact's locale (`fr_FR` or `fr-FR`), falling back to en_US when unknown."""
    if locale:
        try:
            return Locale.parse(locale.replace("-", "_"))
        except (UnknownLocaleError, ValueError, TypeError):
            pass
    return Locale.parse(DEFAULT_LOCALE)


def resolve_timezone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _as_decimal(value: Any, filter_name: str) -> Decimal:
    if isinstance(value, bool):
        raise TypeError(f"{filter_name} expects a number, got {value!r}")
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{filter_name} expects a number, got {value!r}") from None


def _as_datetime(value: Any, filter_name: str) -> datetime_type:
    if isinstance(value, datetime_type):
        return value
    if isinstance(value, date_type):
        return datetime_type(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            return datetime_type.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(
        f"{filter_name} expects a date, a datetime or an ISO 8601 string, got {value!r}"
    )


def make_filters(locale: str | None, timezone: str | None = None) -> dict[str, Callable[..., Any]]:
    """The Babel filters for one locale (and the contact's time zone for `datetime`)."""
    babel_locale = resolve_locale(locale)
    zone = resolve_timezone(timezone)

    def money(amount: Any, currency: str = "USD") -> str:
        """`{{ 12.5 | money("EUR") }}` -> `12,50 €` in fr_FR, `€12.50` in en_US."""
        if isinstance(amount, Undefined):
            return str(amount)  # strict: raises the undefined error; permissive: a placeholder
        return format_currency(_as_decimal(amount, "money"), str(currency), locale=babel_locale)

    def number(value: Any, format: str | None = None) -> str:
        """`{{ 1240.5 | number }}` -> `1,240.5` in en_US, `1 240,5` in fr_FR."""
        if isinstance(value, Undefined):
            return str(value)
        return format_decimal(_as_decimal(value, "number"), format=format, locale=babel_locale)

    def date(value: Any, format: str = "medium") -> str:
        """A date in the contact's locale: `short|medium|long|full` or a CLDR pattern."""
        if isinstance(value, Undefined):
            return str(value)
        moment = _as_datetime(value, "date")
        if zone is not None and moment.tzinfo is not None:
            moment = moment.astimezone(zone)
        return format_date(moment.date(), format=format, locale=babel_locale)

    def datetime(value: Any, format: str = "medium", tz: str | None = None) -> str:
        """A date and time in the contact's locale and time zone (or `tz`).

        The named styles (`short|medium|long|full`) style the date and show the time to the
        minute, e.g. `Dec 12, 2026, 7:00 PM` (en_US medium); any other value is a CLDR pattern.
        """
        if isinstance(value, Undefined):
            return str(value)
        moment = _as_datetime(value, "datetime")
        target = resolve_timezone(tz) if tz else zone
        if target is not None and moment.tzinfo is not None:
            moment = moment.astimezone(target)
        if format not in _DATE_STYLES:
            return format_datetime(moment, format=format, tzinfo=moment.tzinfo, locale=babel_locale)
        day = format_date(moment.date(), format=format, locale=babel_locale)
        clock = format_time(moment, format="short", locale=babel_locale)
        pattern = str(babel_locale.datetime_formats.get(format, "{1} {0}"))
        return pattern.replace("{1}", day).replace("{0}", clock)

    return {"money": money, "number": number, "date": date, "datetime": datetime}


def build_environment(
    files: Mapping[str, str],
    *,
    locale: str | None = None,
    timezone: str | None = None,
    globals: Mapping[str, Any] | None = None,
    undefined: type[Undefined] = StrictUndefined,
) -> SandboxedEnvironment:
    """A sandboxed environment over `files` (template path -> source) for one contact's locale."""
    env = BoundedSandbox(
        loader=BundleLoader(files),
        undefined=undefined,
        autoescape=autoescape_for,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(make_filters(locale, timezone))
    if globals:
        env.globals.update(globals)
    return env


def parsing_environment() -> SandboxedEnvironment:
    """An environment for syntax checks only (no files, default locale)."""
    return build_environment({})
