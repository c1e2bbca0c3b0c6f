"""Collecting a message template with every file it needs, and checking it (SPEC §3, §4).

A `TemplateBundle` is the self-contained source of one message: the main file, the optional
plain-text part, their localised versions (`NAME.LOCALE.email.j2`, `NAME.LOCALE.text.j2`) and
every layout or include they reference. It travels inside a compiled journey, so a run renders
with the templates it entered with even after the files on disk change.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Literal

from babel import Locale, UnknownLocaleError
from jinja2 import TemplateSyntaxError, meta, nodes
from pydantic import BaseModel, ConfigDict, Field

from rendering.environment import EMAIL_SUFFIX, TEXT_SUFFIX, parsing_environment
from rendering.frontmatter import FRONT_MATTER_KEYS, parse_front_matter
from workflows.diagnostics import Diagnostic, display_path, lint
from workflows.event_questions import EventQuestion, sorted_questions
from workflows.expressions import ExpressionError, dict_method_traps, event_questions
from workflows.sandbox import static_limit_problems

Channel = Literal["email", "sms"]


class TemplateNotFound(Exception):
    """The main file of a template does not exist."""


_LOCALE_TAG = re.compile(r"^([a-z]{2,3})(?:[-_][A-Za-z0-9]{2,8})*$")


def locale_tag(text: str) -> str | None:
    """`text` when it is a locale tag a template file name can carry (`fr`, `fr-CA`, `pt_BR`)."""
    match = _LOCALE_TAG.match(text)
    if match is None:
        return None
    try:
        # Babel knows the locale under this very language (not an alias: `bak` is no `ba`).
        known = Locale.parse(text.replace("-", "_")).language == match.group(1)
    except (UnknownLocaleError, ValueError):
        return None
    return text if known else None


def locale_candidates(locale: str | None) -> list[str]:
    """The file locales to try for a contact's locale, most specific first: `fr_CA` -> fr-ca, fr."""
    if not locale:
        return []
    parts = [part for part in re.split(r"[-_]", locale.strip().lower()) if part]
    return ["-".join(parts[:end]) for end in range(len(parts), 0, -1)]


class TemplateBundle(BaseModel):
    """One message template with its text part, localised versions, layouts and includes
    (path -> source).

    `locale` selects a localised version (`for_locale`): the main and text files are then
    `NAME.LOCALE.*`. A compiled plan stores the bundle without one; the send picks it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    channel: Channel
    files: dict[str, str]
    directory: str = "templates"  # the templates directory as shown in messages
    locale: str | None = Field(None, exclude=True)

    @property
    def stem(self) -> str:
        return f"{self.name}.{self.locale}" if self.locale else self.name

    @property
    def main_file(self) -> str:
        return f"{self.stem}.{self.channel}.j2"

    @property
    def text_file(self) -> str | None:
        """The plain-text part of this locale's email (never another locale's)."""
        path = f"{self.stem}{TEXT_SUFFIX}"
        return path if self.channel == "email" and path in self.files else None

    @property
    def locales(self) -> tuple[str, ...]:
        """The locales this template has its own version for, as their files spell them."""
        prefix, suffix = f"{self.name}.", f".{self.channel}.j2"
        return tuple(
            sorted(
                tag
                for relative in self.files
                if relative.startswith(prefix) and relative.endswith(suffix)
                for tag in [locale_tag(relative[len(prefix) : -len(suffix)])]
                if tag is not None
            )
        )

    def for_locale(self, locale: str | None) -> TemplateBundle:
        """The version for a contact's locale: `fr-CA`, else `fr`, else the unlocalised file
        (`fr_CA` and `fr-ca` are the same locale)."""
        present = {tag.replace("_", "-").lower(): tag for tag in self.locales}
        for candidate in locale_candidates(locale):
            if candidate in present:
                return self.model_copy(update={"locale": present[candidate]})
        return self.model_copy(update={"locale": None})

    def versions(self) -> list[TemplateBundle]:
        """The unlocalised version and every localised one: what the lints check."""
        return [self.for_locale(None), *(self.for_locale(tag) for tag in self.locales)]

    def display(self, relative: str) -> str:
        """A bundle file as the user knows it, e.g. `templates/onboarding/welcome.email.j2`."""
        return f"{self.directory}/{relative}" if self.directory not in ("", ".") else relative


def template_names(templates_dir: Path, channel: Channel) -> list[str]:
    """Every template name of a channel under `templates_dir` (`onboarding/welcome`, …), its
    localised versions left out."""
    suffix = f".{channel}.j2"
    if not templates_dir.is_dir():
        return []
    names = (
        path.relative_to(templates_dir).as_posix()[: -len(suffix)]
        for path in templates_dir.rglob(f"*{suffix}")
        if path.is_file()
    )
    return sorted(name for name in names if locale_tag(name.rpartition(".")[2]) is None)


def _localised_files(templates_dir: Path, name: str, suffix: str) -> list[str]:
    """`NAME.LOCALE{suffix}` files of template `name`, relative to `templates_dir`."""
    directory, _, base = name.rpartition("/")
    folder = templates_dir / directory
    if "*" in name or "?" in name or "[" in name or not folder.is_dir():
        return []
    found = []
    for path in folder.glob(f"{base}.*{suffix}"):
        tag = path.name[len(base) + 1 : -len(suffix)]
        if path.is_file() and locale_tag(tag) is not None:
            found.append(f"{name}.{tag}{suffix}")
    return sorted(found)


def _not_found_message(templates_dir: Path, name: str, channel: Channel) -> str:
    expected = display_path(templates_dir / f"{name}.{channel}.j2")
    message = f"template {name!r} not found: expected {expected}"
    localised = _localised_files(templates_dir, name, f".{channel}.j2")
    if localised:
        shown = display_path(templates_dir / localised[0])
        return f"{message}, the version for every locale without its own file (there is {shown})"
    close = difflib.get_close_matches(name, template_names(templates_dir, channel), n=1)
    if close:
        message += f" (did you mean {close[0]!r}?)"
    return message


# ---------------------------------------------------------------------------------------------
# Syntax errors, with the line of an unclosed block's opening tag
# ---------------------------------------------------------------------------------------------

_BLOCK_TAGS = {
    "if", "for", "block", "macro", "call", "filter", "with", "raw", "autoescape", "trans",
}  # fmt: skip


def _unclosed_block(source: str) -> tuple[str, int] | None:
    """The innermost block tag never closed in `source` and its line, when lexing allows."""
    stack: list[tuple[str, int]] = []
    try:
        tokens = list(parsing_environment().lexer.tokenize(source))
    except TemplateSyntaxError:
        return None
    for index, token in enumerate(tokens[:-1]):
        following = tokens[index + 1]
        if token.type != "block_begin" or following.type != "name":
            continue
        tag = following.value
        if tag == "set":
            # Only the block form `{% set x %}…{% endset %}` needs closing.
            assigns = False
            for later in tokens[index + 2 :]:
                if later.type == "block_end":
                    break
                assigns = assigns or later.type == "assign"
            if not assigns:
                stack.append((tag, token.lineno))
        elif tag in _BLOCK_TAGS:
            stack.append((tag, token.lineno))
        elif tag.startswith("end") and stack and stack[-1][0] == tag[3:]:
            stack.pop()
    return stack[-1] if stack else None


def _syntax_diagnostic(exc: TemplateSyntaxError, file: str, source: str, offset: int) -> Diagnostic:
    line = (exc.lineno or 1) + offset
    message = exc.message or "syntax error"
    if message.startswith("Unexpected end of template"):
        unclosed = _unclosed_block(source)
        if unclosed is not None:
            tag, tag_line = unclosed
            return Diagnostic(file, tag_line + offset, 1, f"unclosed {{% {tag} %}}: {message}")
    return Diagnostic(file, line, 1, message)


# ---------------------------------------------------------------------------------------------
# References to other templates (extends, include, import)
# ---------------------------------------------------------------------------------------------


def references(ast: nodes.Template) -> Iterator[tuple[str, str, int, bool]]:
    """(kind, template name, line, ignore_missing) for each static reference in `ast`."""
    for node in ast.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
        kind = {
            nodes.Extends: "layout",
            nodes.Include: "included template",
        }.get(type(node), "imported template")
        target = getattr(node, "template", None)
        ignore_missing = bool(getattr(node, "ignore_missing", False))
        if isinstance(target, nodes.Const) and isinstance(target.value, str):
            yield kind, target.value, node.lineno, ignore_missing
        elif isinstance(target, (nodes.List, nodes.Tuple)):
            for item in target.items:
                if isinstance(item, nodes.Const) and isinstance(item.value, str):
                    yield kind, item.value, node.lineno, True


def _inside(templates_dir: Path, relative: str) -> Path | None:
    if relative.startswith("/") or "\\" in relative:
        return None
    path = (templates_dir / relative).resolve()
    try:
        path.relative_to(templates_dir.resolve())
    except ValueError:
        return None
    return path


# ---------------------------------------------------------------------------------------------
# collect_template
# ---------------------------------------------------------------------------------------------


def _check_front_matter(
    source: str, file: str, channel: Channel, diagnostics: list[Diagnostic]
) -> None:
    front = parse_front_matter(source)
    for problem in front.problems:
        diagnostics.append(Diagnostic(file, problem.line, problem.col, problem.message))
    if front.problems:
        return
    if channel == "email" and "subject" not in front.data:
        diagnostics.append(
            Diagnostic(file, 1, 1, "missing 'subject' in the front matter (required for email)")
        )
    env = parsing_environment()
    for key, value in front.data.items():
        line, col = front.position(key)
        if key not in FRONT_MATTER_KEYS:
            hint = difflib.get_close_matches(key, FRONT_MATTER_KEYS, n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            message = f"unknown front matter key {key!r}{suggestion}"
            diagnostics.append(lint(file, line, col, "front-matter-key", message))
            continue
        if value is None or not isinstance(value, (str, int, float)) or isinstance(value, bool):
            if key == "subject" or value is not None:
                diagnostics.append(Diagnostic(file, line, col, f"{key!r} must be a line of text"))
            continue
        try:
            tree = env.parse(str(value))
            event_questions(tree)
            for trap_line, message in dict_method_traps(tree):
                diagnostics.append(Diagnostic(file, line + trap_line - 1, col, f"{key}: {message}"))
        except TemplateSyntaxError as exc:
            diagnostics.append(
                Diagnostic(file, line + (exc.lineno or 1) - 1, col, f"{key}: {exc.message}")
            )
        except ExpressionError as error:
            diagnostics.append(Diagnostic(file, line + error.line_offset, col, f"{key}: {error}"))


def collect_template(
    templates_dir: Path, name: str, channel: Channel
) -> tuple[TemplateBundle | None, list[Diagnostic]]:
    """Read template `name` for `channel` with every file it references, and check them all.

    Raises `TemplateNotFound` when the main file is missing. Otherwise returns the bundle and the
    diagnostics (syntax errors at the file's own line, front matter problems, missing layouts).
    The bundle is `None` only when there is nothing usable to render.
    """
    main = f"{name}.{channel}.j2"
    main_path = _inside(templates_dir, main)
    if main_path is None or not main_path.is_file():
        raise TemplateNotFound(_not_found_message(templates_dir, name, channel))

    env = parsing_environment()
    diagnostics: list[Diagnostic] = []
    files: dict[str, str] = {}
    queue: list[str] = [main, *_localised_files(templates_dir, name, f".{channel}.j2")]
    if channel == "email":
        text = f"{name}{TEXT_SUFFIX}"
        if (templates_dir / text).is_file():
            queue.append(text)
        queue.extend(_localised_files(templates_dir, name, TEXT_SUFFIX))

    while queue:
        relative = queue.pop(0)
        if relative in files:
            continue
        path = templates_dir / relative
        shown = display_path(path)
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            diagnostics.append(Diagnostic(shown, 1, 1, f"cannot read template: {exc}"))
            continue
        files[relative] = source

        body, offset = source, 0
        if relative.endswith(EMAIL_SUFFIX):
            _check_front_matter(source, shown, channel, diagnostics)
            front = parse_front_matter(source)
            body, offset = front.body, front.line_offset
        try:
            ast = env.parse(body, relative, relative)
            limits = static_limit_problems(ast)
        except TemplateSyntaxError as exc:
            diagnostics.append(_syntax_diagnostic(exc, shown, body, offset))
            continue
        except RecursionError:
            diagnostics.append(Diagnostic(shown, 1, 1, "the template is nested too deeply"))
            continue
        diagnostics.extend(Diagnostic(shown, offset + line, 1, text) for line, text in limits)
        traps = dict_method_traps(ast)
        diagnostics.extend(Diagnostic(shown, offset + line, 1, text) for line, text in traps)
        try:
            event_questions(ast)
        except ExpressionError as error:
            diagnostics.append(Diagnostic(shown, offset + error.line_offset + 1, 1, str(error)))
        for kind, target, line, ignore_missing in references(ast):
            target_path = _inside(templates_dir, target)
            if target_path is None:
                diagnostics.append(
                    Diagnostic(
                        shown,
                        line + offset,
                        1,
                        f"{kind} {target!r} must be a path inside {display_path(templates_dir)}",
                    )
                )
            elif target_path.is_file():
                queue.append(target)
            elif not ignore_missing:
                diagnostics.append(
                    Diagnostic(
                        shown,
                        line + offset,
                        1,
                        f"{kind} {target!r} not found: "
                        f"expected {display_path(templates_dir / target)}",
                    )
                )

    bundle = TemplateBundle(
        name=name, channel=channel, files=files, directory=display_path(templates_dir)
    )
    return bundle, diagnostics


def template_event_questions(bundle: TemplateBundle) -> tuple[EventQuestion, ...]:
    """The `count_events`/`last_event` questions of every file of a (valid) bundle, its email
    subject and preheader included: what the send activity asks the store before rendering."""
    return _event_questions_of(tuple(sorted(bundle.files.items())))


def template_variables(bundle: TemplateBundle) -> frozenset[str] | None:
    """The variables any file of the bundle reads (front matter included), e.g. {'contact',
    'trigger'}; None when a file does not parse (then assume it reads everything)."""
    return _names_of(tuple(sorted(bundle.files.items())))


def _texts(files: tuple[tuple[str, str], ...]) -> Iterator[str]:
    """Every template text of a bundle: each file, an email's front matter values apart."""
    for relative, source in files:
        if relative.endswith(EMAIL_SUFFIX):
            front = parse_front_matter(source)
            yield front.body
            yield from (str(v) for v in front.data.values() if isinstance(v, str))
        else:
            yield source


@lru_cache(maxsize=256)
def _names_of(files: tuple[tuple[str, str], ...]) -> frozenset[str] | None:
    env = parsing_environment()
    found: set[str] = set()
    for text in _texts(files):
        try:
            found |= meta.find_undeclared_variables(env.parse(text))
        except TemplateSyntaxError:
            return None
    return frozenset(found)


@lru_cache(maxsize=256)
def _event_questions_of(files: tuple[tuple[str, str], ...]) -> tuple[EventQuestion, ...]:
    env = parsing_environment()
    found: set[EventQuestion] = set()
    for text in _texts(files):
        try:
            found |= event_questions(env.parse(text))
        except (TemplateSyntaxError, ExpressionError):
            continue  # reported when the template was collected
    return sorted_questions(found)
