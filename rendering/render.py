"""Rendering a template bundle for one contact (SPEC §4).

`variables` is the whole template context, built by the caller: `contact`, `event`, `trigger`,
`journey`, `steps`, `now`, `days_since`, `count_events`, `last_event`, `unsubscribe_url`,
`preferences_url`, `brand`. Any problem raises `RenderError` naming the template file and line.
"""

from __future__ import annotations

import re
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import TracebackType
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateNotFound, TemplateSyntaxError, Undefined
from jinja2.sandbox import SandboxedEnvironment

from rendering.bundle import TemplateBundle
from rendering.environment import EMAIL_SUFFIX, build_environment
from rendering.frontmatter import parse_front_matter
from rendering.sms import SmsSegments, count_segments
from rendering.text import html_to_text

OPT_OUT_LINE = "Reply STOP to opt out"
_STOP = re.compile(r"\bSTOP\b", re.IGNORECASE)
# Spaces Babel puts in numbers and dates that are not in the GSM alphabet: plain spaces in SMS.
_SMS_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2007": " "})


class RenderError(Exception):
    """A template failed to render: `file:line: message` (`file` and `line` when known)."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.file = file
        self.line = line


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    preheader: str | None
    html: str
    text: str


@dataclass(frozen=True)
class RenderedSms:
    body: str
    segments: SmsSegments


# ---------------------------------------------------------------------------------------------
# Errors at the template's own file and line
# ---------------------------------------------------------------------------------------------


def _offset(bundle: TemplateBundle, relative: str) -> int:
    source = bundle.files.get(relative, "")
    return parse_front_matter(source).line_offset if relative.endswith(EMAIL_SUFFIX) else 0


def _template_frame(bundle: TemplateBundle, tb: TracebackType | None) -> tuple[str, int] | None:
    """The innermost traceback frame that is a line of one of the bundle's files."""
    found: tuple[str, int] | None = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename in bundle.files:
            found = (filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TemplateNotFound):
        return f"template {exc.name!r} is not part of this template's files"
    if isinstance(exc, TemplateSyntaxError):
        return exc.message or "syntax error"
    text = str(exc)
    return text if text else type(exc).__name__


def _render_error(
    bundle: TemplateBundle,
    exc: BaseException,
    fallback: str,
    *,
    at: tuple[int, int] | None = None,
    label: str = "",
) -> RenderError:
    """A RenderError for `exc`, at the failing template line (or `at` for front matter)."""
    relative, line = fallback, 1
    if at is not None:
        line = at[0]
    elif isinstance(exc, TemplateSyntaxError) and exc.name in bundle.files:
        relative, line = exc.name, (exc.lineno or 1) + _offset(bundle, exc.name)
    else:
        frame = _template_frame(bundle, exc.__traceback__)
        if frame is not None:
            relative, line = frame[0], frame[1] + _offset(bundle, frame[0])
    file = bundle.display(relative)
    return RenderError(f"{file}:{line}: {label}{_describe(exc)}", file=file, line=line)


# ---------------------------------------------------------------------------------------------
# Email
# ---------------------------------------------------------------------------------------------


def _contact_value(variables: Mapping[str, Any], key: str) -> str | None:
    contact = variables.get("contact")
    value = contact.get(key) if isinstance(contact, Mapping) else getattr(contact, key, None)
    return value if isinstance(value, str) and value else None


# Environments by (bundle files, locale, zone, undefined): each compiles a template once, so
# rendering one bundle for many contacts (a worker's sends, `validate`'s samples) stays cheap.
# The entry keeps the files mapping alive, so its id cannot be reused while it is cached.
_ENVIRONMENTS: OrderedDict[tuple[int, str | None, str | None, type], tuple[object, Any]] = (
    OrderedDict()
)
_ENVIRONMENTS_KEPT = 64


def _environment(
    bundle: TemplateBundle,
    variables: Mapping[str, Any],
    locale: str | None,
    timezone: str | None,
    undefined: type[Undefined] = StrictUndefined,
) -> SandboxedEnvironment:
    locale = locale or _contact_value(variables, "locale")
    timezone = timezone or _contact_value(variables, "timezone")
    key = (id(bundle.files), locale, timezone, undefined)
    cached = _ENVIRONMENTS.get(key)
    if cached is not None and cached[0] is bundle.files:
        _ENVIRONMENTS.move_to_end(key)
        environment: SandboxedEnvironment = cached[1]
        return environment
    environment = build_environment(
        bundle.files, locale=locale, timezone=timezone, undefined=undefined
    )
    _ENVIRONMENTS[key] = (bundle.files, environment)
    if len(_ENVIRONMENTS) > _ENVIRONMENTS_KEPT:
        _ENVIRONMENTS.popitem(last=False)
    return environment


# A template's front matter and its compiled subject/preheader, kept like the environments: a
# send parsed the YAML and compiled both headers again for every contact (bench/suite.py
# `render`: nine tenths of a render's CPU before this). The front matter is only read here.
_front_matter = lru_cache(maxsize=256)(parse_front_matter)
_HEADERS: weakref.WeakKeyDictionary[SandboxedEnvironment, dict[str, Template]] = (
    weakref.WeakKeyDictionary()
)


def _header_template(env: SandboxedEnvironment, source: str) -> Template:
    compiled = _HEADERS.setdefault(env, {})
    template = compiled.get(source)
    if template is None:
        template = compiled[source] = env.from_string(source)
    return template


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def render_email(
    bundle: TemplateBundle,
    variables: Mapping[str, Any],
    *,
    locale: str | None,
    timezone: str | None = None,
) -> RenderedEmail:
    """Subject, preheader, HTML and plain text of an email for one context.

    `locale` (else `contact.locale`, else en_US) drives the Babel filters; `timezone` (else
    `contact.timezone`) the `datetime` filter. Text comes from the `.text.j2` part when the
    template has one, otherwise it is derived from the HTML.
    """
    return render_email_with(bundle, variables, locale=locale, timezone=timezone)


def render_email_with(
    bundle: TemplateBundle,
    variables: Mapping[str, Any],
    *,
    locale: str | None,
    timezone: str | None = None,
    undefined: type[Undefined] = StrictUndefined,
) -> RenderedEmail:
    """`render_email` with a choice of Undefined (the lints render with placeholders)."""
    if bundle.channel != "email":
        raise RenderError(f"{bundle.display(bundle.main_file)}:1: not an email template")
    main = bundle.main_file
    shown = bundle.display(main)
    front = _front_matter(bundle.files.get(main, ""))
    if front.problems:
        problem = front.problems[0]
        raise RenderError(
            f"{shown}:{problem.line}: {problem.message}", file=shown, line=problem.line
        )
    env = _environment(bundle, variables, locale, timezone, undefined)

    def header(key: str) -> str | None:
        value = front.data.get(key)
        if value is None:
            return None
        try:
            return _one_line(_header_template(env, str(value)).render(variables))
        except Exception as exc:
            raise _render_error(
                bundle, exc, main, at=front.position(key), label=f"{key}: "
            ) from exc

    subject = header("subject")
    if not subject:
        line = front.position("subject")[0]
        reason = (
            "the subject renders to an empty line"
            if "subject" in front.data
            else "missing 'subject' in the front matter (required for email)"
        )
        raise RenderError(f"{shown}:{line}: {reason}", file=shown, line=line)
    preheader = header("preheader") or None

    context = {**variables, "subject": subject, "preheader": preheader}
    try:
        html = env.get_template(main).render(context)
    except Exception as exc:
        raise _render_error(bundle, exc, main) from exc
    text_file = bundle.text_file
    if text_file is not None:
        try:
            text = env.get_template(text_file).render(context)
        except Exception as exc:
            raise _render_error(bundle, exc, text_file) from exc
        text = text.strip("\n") + "\n"
    else:
        text = html_to_text(html)
    return RenderedEmail(subject=subject, preheader=preheader, html=html, text=text)


# ---------------------------------------------------------------------------------------------
# SMS
# ---------------------------------------------------------------------------------------------


def with_opt_out(body: str) -> str:
    """A marketing SMS body with the opt-out line, unless it already mentions STOP."""
    return body if _STOP.search(body) else f"{body}\n{OPT_OUT_LINE}"


def render_sms_with(
    bundle: TemplateBundle,
    variables: Mapping[str, Any],
    *,
    locale: str | None,
    marketing: bool,
    timezone: str | None = None,
    undefined: type[Undefined] = StrictUndefined,
) -> RenderedSms:
    """`render_sms` with a choice of Undefined (the lints render with placeholders)."""
    if bundle.channel != "sms":
        raise RenderError(f"{bundle.display(bundle.main_file)}:1: not an SMS template")
    main = bundle.main_file
    env = _environment(bundle, variables, locale, timezone, undefined)
    try:
        body = env.get_template(main).render(variables)
    except Exception as exc:
        raise _render_error(bundle, exc, main) from exc
    body = body.translate(_SMS_SPACES).strip()
    if not body:
        shown = bundle.display(main)
        raise RenderError(f"{shown}:1: the SMS renders to an empty message", file=shown, line=1)
    if marketing:
        body = with_opt_out(body)
    return RenderedSms(body=body, segments=count_segments(body))


def render_sms(
    bundle: TemplateBundle,
    variables: Mapping[str, Any],
    *,
    locale: str | None,
    marketing: bool,
    timezone: str | None = None,
) -> RenderedSms:
    """The SMS body for one context, with the opt-out line for marketing, and its segments."""
    return render_sms_with(bundle, variables, locale=locale, marketing=marketing, timezone=timezone)
