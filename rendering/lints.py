"""Lints of a collected template: what marketers get wrong (SPEC §3).

They render the bundle with a sample context, so they sit above both collecting (`bundle`) and
rendering (`render`), which know nothing of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from jinja2 import ChainableUndefined, TemplateSyntaxError, nodes

from rendering.bundle import TemplateBundle, references
from rendering.environment import EMAIL_SUFFIX, parsing_environment
from rendering.frontmatter import parse_front_matter
from rendering.render import render_email_with, render_sms_with
from workflows.diagnostics import Diagnostic, lint

MAX_SMS_SEGMENTS = 3


def _uses_variable(source: str, variable: str, *, email_main: bool) -> bool:
    body = parse_front_matter(source).body if email_main else source
    try:
        ast = parsing_environment().parse(body)
    except TemplateSyntaxError:
        return re.search(rf"\b{re.escape(variable)}\b", body) is not None
    return any(node.name == variable for node in ast.find_all(nodes.Name))


class _SampleUndefined(ChainableUndefined):
    """Stands in for anything a sample context lacks: renders as a ten-letter word."""

    def __str__(self) -> str:
        return "Xxxxxxxxxx"

    def __call__(self, *args: Any, **kwargs: Any) -> _SampleUndefined:  # type: ignore[override]
        return self


def lint_template(
    bundle: TemplateBundle,
    *,
    marketing: bool,
    sample: Mapping[str, Any] | None = None,
) -> list[Diagnostic]:
    """Warnings for what marketers get wrong (SPEC §3), in every locale the template has:

    - a marketing email none of whose files uses `unsubscribe_url` (or whose plain-text part
      leaves it out);
    - an SMS that renders to more than 3 segments for a sample context (`sample`, with anything
      missing filled in by a placeholder); skipped when the sample cannot be rendered.
    """
    return [
        warning
        for version in bundle.versions()
        for warning in _lint_version(version, marketing=marketing, sample=sample)
    ]


def _lint_version(
    bundle: TemplateBundle, *, marketing: bool, sample: Mapping[str, Any] | None
) -> list[Diagnostic]:
    warnings: list[Diagnostic] = []
    main = bundle.display(bundle.main_file)
    if bundle.channel == "email" and marketing:
        warnings.extend(_lint_unsubscribe(bundle, sample))
    if bundle.channel == "sms":
        try:
            rendered = render_sms_with(
                bundle,
                dict(sample or {}),
                locale=bundle.locale,
                marketing=marketing,
                undefined=_SampleUndefined,
            )
        except Exception:  # the lint is best effort: a sample that cannot render is no finding
            return warnings
        if rendered.segments.segments > MAX_SMS_SEGMENTS:
            message = (
                f"SMS renders to {rendered.segments} for a sample contact; "
                f"keep it within {MAX_SMS_SEGMENTS} segments"
            )
            warnings.append(lint(main, 1, 1, "sms-segments", message))
    return warnings


_UNSUBSCRIBE_SENTINEL = "https://unsubscribe.invalid/lint"


def _lint_unsubscribe(bundle: TemplateBundle, sample: Mapping[str, Any] | None) -> list[Diagnostic]:
    """Whether a marketing email's HTML and text carry `unsubscribe_url`.

    Rendered with a sample context when possible (so a child that overrides the layout's footer
    is caught); otherwise judged from which files use the variable.
    """
    main = bundle.display(bundle.main_file)
    text = bundle.text_file
    try:
        context = {**(sample or {}), "unsubscribe_url": _UNSUBSCRIBE_SENTINEL}
        email = render_email_with(bundle, context, locale=bundle.locale, undefined=_SampleUndefined)
    except Exception:  # fall back to reading the sources
        users = {
            relative
            for relative, source in bundle.files.items()
            if _uses_variable(source, "unsubscribe_url", email_main=relative.endswith(EMAIL_SUFFIX))
        }
        html_ok = bool(_reachable(bundle, bundle.main_file) & users)
        text_ok = html_ok if text is None else bool(_reachable(bundle, text) & users)
    else:
        html_ok = _UNSUBSCRIBE_SENTINEL in email.html
        text_ok = _UNSUBSCRIBE_SENTINEL in email.text
    if not html_ok and not text_ok:
        message = (
            "marketing email without an unsubscribe link: use {{ unsubscribe_url }} "
            "(or extend a layout that does)"
        )
        return [lint(main, 1, 1, "unsubscribe-link", message)]
    if not html_ok:
        message = "HTML part of a marketing email without {{ unsubscribe_url }}"
        return [lint(main, 1, 1, "unsubscribe-link", message)]
    if not text_ok:
        message = "plain-text part of a marketing email without {{ unsubscribe_url }}"
        return [lint(bundle.display(text or bundle.main_file), 1, 1, "unsubscribe-link", message)]
    return []


def _reachable(bundle: TemplateBundle, start: str) -> set[str]:
    """`start` and every bundle file it extends, includes or imports, transitively."""
    seen: set[str] = set()
    pending = [start]
    env = parsing_environment()
    while pending:
        current = pending.pop()
        if current in seen or current not in bundle.files:
            continue
        seen.add(current)
        source = bundle.files[current]
        if current.endswith(EMAIL_SUFFIX):
            source = parse_front_matter(source).body
        try:
            ast = env.parse(source)
        except TemplateSyntaxError:
            continue
        pending.extend(target for _, target, _, _ in references(ast))
    return seen
