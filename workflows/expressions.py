"""The expression language (SPEC §3): Jinja expressions in a sandbox.

Conditions are written bare (`contact.vip and days_since(contact.last_order_at) > 60`); values are
strings holding `{{ … }}` (`to: "{{ journey.staff_inbox }}"`). Both are parsed at compile time and
evaluated against an `ExpressionContext` that the engine fills in at run time. Nothing here reads a
clock or a database: `now()` and the answers about the event history come from the context (see
`workflows/event_questions.py`), so evaluation is pure
and safe inside workflow code.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, UndefinedError, meta, nodes
from jinja2.exceptions import SecurityError

from workflows.durations import DurationError, parse_duration
from workflows.event_questions import EventAnswers, EventQuestion, answer_key
from workflows.sandbox import BoundedSandbox, LimitExceeded, static_limit_problems

FUNCTIONS = ("now", "days_since", "count_events", "last_event")
EVENT_FUNCTIONS = ("count_events", "last_event")
MAX_NESTING = 32  # levels of brackets: Jinja's parser recurses per level
TOO_DEEP = "nested too deeply to evaluate: split it into simpler conditions"
_TEMPLATED = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)


class Scope(Enum):
    """Which names an expression may use, by where it is written."""

    SEGMENT = "segment"  # segment, audience: the contact alone
    EVENT_FILTER = "event_filter"  # trigger/wait_for/goal/exit_on `when`: has `event`
    RUN = "run"  # branch conditions and templated values inside a run

    @property
    def names(self) -> frozenset[str]:
        base = {"contact", "journey", *FUNCTIONS}
        if self is Scope.SEGMENT:
            return frozenset(base)
        if self is Scope.EVENT_FILTER:
            return frozenset(base | {"event", "trigger", "steps"})
        return frozenset(base | {"trigger", "steps"})


class ExpressionError(Exception):
    """A parse or evaluation error; `col` is 1-based within the expression text when known."""

    def __init__(self, message: str, *, line_offset: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line_offset = line_offset


@lru_cache(maxsize=1)
def environment() -> BoundedSandbox:
    env = BoundedSandbox(undefined=StrictUndefined, autoescape=False)
    # Placeholders so the names resolve at parse time; evaluation passes real callables.
    for name in FUNCTIONS:
        env.globals[name] = None
    return env


def is_templated(value: str) -> bool:
    return bool(_TEMPLATED.search(value))


def _nesting(text: str) -> int:
    """How deeply brackets nest in `text` (quoted strings skipped)."""
    depth = deepest = 0
    quote: str | None = None
    for char in text:
        if quote is not None:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}":
            depth -= 1
    return deepest


def _parse(source: str, *, wrapped_lines: int | None = None) -> nodes.Template:
    """Parse `source`; `wrapped_lines`: line count of a bare condition wrapped in `{{ ( ) }}`."""
    depth = _nesting(source) - (3 if wrapped_lines is not None else 2)  # the {{ ( ) }} around
    if depth > MAX_NESTING:
        raise ExpressionError(
            f"nested too deeply: {depth} levels of brackets (at most {MAX_NESTING})"
        )
    try:
        tree = environment().parse(source)
    except RecursionError:
        raise ExpressionError(TOO_DEEP) from None
    except TemplateSyntaxError as error:
        message = error.message or "syntax error"
        if wrapped_lines is not None and error.lineno > wrapped_lines:
            # The parser hit the closing parenthesis the wrapper added: the expression stops
            # in the middle (`plan ==`, `a and`, an unclosed call or bracket).
            message = (
                "incomplete, something is missing at the end "
                "(a value after an operator, or a closing bracket)"
            )
            return_line = wrapped_lines - 1
        else:
            return_line = error.lineno - 1
            char = re.fullmatch(r"unexpected char (.+) at \d+", message)
            if char:
                # Jinja counts the offset in its own source, which the user never sees.
                unclosed = char[1] in ("'\"'", '"\'"')
                quote = " (a string without its closing quote?)" if unclosed else ""
                message = f"unexpected character {char[1]}{quote}"
        raise ExpressionError(message, line_offset=return_line) from None
    try:
        problems = static_limit_problems(tree)
    except RecursionError:
        raise ExpressionError(TOO_DEEP) from None
    for line, message in problems:
        raise ExpressionError(message, line_offset=line - 1)
    return tree


def parse_condition(expression: str, scope: Scope) -> nodes.Template:
    """Parse a bare condition; raises ExpressionError for syntax errors and unknown names."""
    if is_templated(expression):
        raise ExpressionError("write conditions bare, without {{ }}")
    tree = _parse("{{ (" + expression + "\n) }}", wrapped_lines=expression.count("\n") + 1)
    _check_names(tree, scope)
    return tree


def parse_value(value: str, scope: Scope) -> nodes.Template | None:
    """Parse a string that may contain `{{ expr }}`; None when it is a plain literal."""
    if not is_templated(value) and "{{" not in value and "{%" not in value:
        return None  # (an opening `{{` without its `}}` is parsed, to report the error)
    tree = _parse(value)
    _check_names(tree, scope)
    return tree


def _unknown_filter_or_test(error: TemplateSyntaxError) -> ExpressionError:
    """`| defualt(0)` or `is defind`: Jinja only notices when it compiles the expression."""
    message = error.message or "unknown filter or test"
    found = re.fullmatch(r"No (filter|test) named '(.+)'\.?", message)
    if found is None:
        return ExpressionError(message)
    kind, name = found[1], found[2]
    known = environment().filters if kind == "filter" else environment().tests
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ExpressionError(f"unknown {kind} {name!r}{hint}")


def _check_names(tree: nodes.Template, scope: Scope) -> None:
    allowed = scope.names | set(environment().globals)
    try:
        undeclared = meta.find_undeclared_variables(tree)
    except TemplateSyntaxError as error:  # TemplateAssertionError: an unknown filter or test
        raise _unknown_filter_or_test(error) from None
    except RecursionError:  # `a + a + a + …` a few thousand times: no brackets, a deep tree
        raise ExpressionError(TOO_DEEP) from None
    unknown = sorted(undeclared - allowed)
    if not unknown:
        return
    name = unknown[0]
    if name == "event" and scope is not Scope.EVENT_FILTER:
        raise ExpressionError(
            "'event' is only defined in the `when` of a trigger, wait_for, goal or exit_on; "
            "use trigger.* or steps.ID.event.* here"
        )
    known = ", ".join(sorted(scope.names))
    raise ExpressionError(f"unknown name {name!r}: expressions here may use {known}")


def attribute_paths(tree: nodes.Node, root: str) -> set[str]:
    """First-level attributes read from `root`, e.g. {'vip', 'first_name'} for contact.*."""
    return {name for _, name in attribute_nodes(tree, root)}


def attribute_nodes(tree: nodes.Node, root: str) -> list[tuple[nodes.Node, str]]:
    """Each `root.NAME` and `root["NAME"]` in the expression, with its NAME."""
    found: list[tuple[nodes.Node, str]] = []
    for getattr_node in tree.find_all(nodes.Getattr):
        target = getattr_node.node
        if isinstance(target, nodes.Name) and target.name == root:
            found.append((getattr_node, getattr_node.attr))
    for getitem in tree.find_all(nodes.Getitem):
        target = getitem.node
        if (
            isinstance(target, nodes.Name)
            and target.name == root
            and isinstance(getitem.arg, nodes.Const)
            and isinstance(getitem.arg.value, str)
        ):
            found.append((getitem, getitem.arg.value))
    return found


# Jinja reads `x.items` as the attribute before the key: on a dict (event properties) that is
# the method, so `{% for i in trigger.properties.items %}` fails at send time ("'builtin_function_
# or_method' object is not iterable") and `trigger.properties.keys` never reads a property `keys`.
DICT_METHODS = frozenset(
    {"items", "keys", "values", "get", "update", "pop", "popitem", "setdefault", "copy", "clear"}
)


def _dotted(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        base = _dotted(node.node)
        return None if base is None else f"{base}.{node.attr}"
    return None


def dict_method_traps(tree: nodes.Node) -> list[tuple[int, str]]:
    """(line, message) for each `….properties.METHOD` read as a property (not called)."""
    called = {id(call.node) for call in tree.find_all(nodes.Call)}
    found: list[tuple[int, str]] = []
    for node in tree.find_all(nodes.Getattr):
        target = node.node
        if (
            node.attr in DICT_METHODS
            and id(node) not in called
            and isinstance(target, nodes.Getattr)
            and target.attr == "properties"
        ):
            base = _dotted(target) or "properties"
            found.append(
                (
                    node.lineno,
                    f"{base}.{node.attr} reads the dict method {node.attr}(), not the property "
                    f'{node.attr!r}: write {base}["{node.attr}"]',
                )
            )
    return found


# ---------------------------------------------------------------------------------------------
# Evaluation


@dataclass(frozen=True)
class ExpressionContext:
    """Everything an expression can see. The engine builds it; evaluation never does I/O.

    `events` holds the answers to the expression's event questions (see `event_questions`),
    asked of the store at `now` or shortly before it; a question nobody asked is an error.
    """

    now: datetime
    contact: Mapping[str, Any] = field(default_factory=dict)
    journey: Mapping[str, Any] = field(default_factory=dict)
    trigger: Mapping[str, Any] | None = None
    event: Mapping[str, Any] | None = None
    steps: Mapping[str, Any] = field(default_factory=dict)
    events: EventAnswers = field(default_factory=EventAnswers)

    def with_event(self, event: Mapping[str, Any]) -> ExpressionContext:
        return replace(
            self, trigger=self.trigger if self.trigger is not None else event, event=event
        )

    def variables(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "contact": dict(self.contact),
            "journey": dict(self.journey),
            "steps": dict(self.steps),
            "now": lambda: self.now,
            "days_since": self.days_since,
            "count_events": self.count_events,
            "last_event": self.last_event,
        }
        if self.trigger is not None:
            values["trigger"] = dict(self.trigger)
        if self.event is not None:
            values["event"] = dict(self.event)
        return values

    def days_since(self, value: Any) -> float:
        moment = to_datetime(value)
        return (self.now - moment) / timedelta(days=1)

    def count_events(self, name: str, within: str | None = None) -> int:
        key = answer_key("count", name, within)
        if key not in self.events.counts:
            raise ExpressionError(_unasked(EventQuestion(kind="count", name=name, within=within)))
        return self.events.counts[key]

    def last_event(self, name: str) -> dict[str, Any] | None:
        key = answer_key("last", name)
        if key not in self.events.latest:
            raise ExpressionError(_unasked(EventQuestion(kind="last", name=name)))
        latest = self.events.latest[key]
        return latest.as_variables() if latest is not None else None


def _unasked(question: EventQuestion) -> str:
    return f"{question.call()} was not among the questions compiled for this journey"


def event_questions(tree: nodes.Node) -> set[EventQuestion]:
    """Every `count_events`/`last_event` call in a parsed expression or template.

    Their arguments must be literals (a quoted event name, a quoted duration) so that the store
    can answer them before evaluation; anything else raises ExpressionError, with
    `line_offset` at the call's line.
    """
    found: set[EventQuestion] = set()
    for call in tree.find_all(nodes.Call):
        target = call.node
        if not isinstance(target, nodes.Name) or target.name not in EVENT_FUNCTIONS:
            continue
        found.add(_question(target.name, call))
    return found


def _question(function: str, call: nodes.Call) -> EventQuestion:
    line = (call.lineno or 1) - 1
    allowed = ("name", "within") if function == "count_events" else ("name",)
    usage = (
        'count_events("order_placed") or count_events("order_placed", within="30d")'
        if function == "count_events"
        else 'last_event("order_placed")'
    )
    if call.dyn_args is not None or call.dyn_kwargs is not None or len(call.args) > len(allowed):
        raise ExpressionError(
            f"{function} takes {' and '.join(allowed)}: {usage}", line_offset=line
        )
    given: dict[str, nodes.Expr] = dict(zip(allowed, call.args, strict=False))
    for keyword in call.kwargs:
        if keyword.key not in allowed or keyword.key in given:
            raise ExpressionError(
                f"{function}: unexpected argument {keyword.key!r}; write {usage}", line_offset=line
            )
        given[keyword.key] = keyword.value
    literal: dict[str, str] = {}
    for key, node in given.items():
        if not (isinstance(node, nodes.Const) and isinstance(node.value, str)):
            raise ExpressionError(
                f"{function}: the {'event name' if key == 'name' else 'window'} must be a "
                f"quoted literal, so the events can be counted before the expression runs: "
                f"{usage}",
                line_offset=line,
            )
        literal[key] = node.value
    if "name" not in literal:
        raise ExpressionError(f"{function} needs an event name: {usage}", line_offset=line)
    within = literal.get("within")
    if within is not None:
        try:
            parse_duration(within)
        except DurationError as error:
            raise ExpressionError(f"count_events(within=…): {error}", line_offset=line) from None
    kind = "count" if function == "count_events" else "last"
    return EventQuestion(kind=kind, name=literal["name"], within=within)


def to_datetime(value: Any) -> datetime:
    """Accept a datetime, a date or an ISO 8601 string; naive values are taken as UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ExpressionError(f"not a date or timestamp: {value!r}") from None
    else:
        raise ExpressionError(f"not a date or timestamp: {value!r}")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _run(call: Callable[[], Any]) -> Any:
    """`call()`, with any failure of the evaluation as an ExpressionError: whatever a contact's
    data makes an expression do, the caller records an error instead of crashing (in a
    workflow, a crash would fail the task and Temporal would retry it forever)."""
    try:
        return _defined(call())
    except ExpressionError:
        raise
    except UndefinedError as error:
        raise ExpressionError(f"undefined: {error.message}") from None
    except SecurityError as error:
        raise ExpressionError(f"not allowed: {error}") from None
    except LimitExceeded as error:
        raise ExpressionError(str(error)) from None
    except RecursionError:
        raise ExpressionError(TOO_DEEP) from None
    except MemoryError:
        raise ExpressionError("out of memory while evaluating") from None
    except ArithmeticError as error:  # ZeroDivisionError, OverflowError
        raise ExpressionError(f"arithmetic error: {error}") from None
    except Exception as error:  # TypeError, ValueError, KeyError, anything a filter raises
        raise ExpressionError(str(error) or type(error).__name__) from None


_DATA = (str, int, float, bool, datetime, date, type(None))


def _data(value: Any) -> Any:
    """A value that can be stored or sent: text, numbers, dates, lists and mappings of them."""
    if isinstance(value, Mapping):
        return {key: _data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_data(item) for item in value]
    if not isinstance(value, _DATA):
        raise ExpressionError(
            f"the value is a {type(value).__name__}, not data a step can use "
            "(text, a number, a date, a list or a mapping)"
        )
    return value


def _defined(value: Any) -> Any:
    """`value`, unless it is (or holds) an undefined name: an error rather than a value that
    fails later, far from its cause (in a payload, or as the text "None")."""
    if isinstance(value, Undefined):
        raise ExpressionError(f"undefined: {value._undefined_message}")
    if isinstance(value, Mapping):
        for item in value.values():
            _defined(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _defined(item)
    return value


@lru_cache(maxsize=2048)
def _compiled_condition(expression: str) -> Any:
    return environment().compile_expression(expression, undefined_to_none=False)


@lru_cache(maxsize=2048)
def _compiled_template(value: str) -> Any:
    return environment().from_string(value)


def evaluate_condition(expression: str, context: ExpressionContext) -> bool:
    # bool() inside _run: truth-testing an undefined value raises too.
    return bool(_run(lambda: bool(_compiled_condition(expression)(**context.variables()))))


def evaluate_expression(expression: str, context: ExpressionContext) -> Any:
    """A bare expression's value (e.g. a `key:` path)."""
    return _run(lambda: _compiled_condition(expression)(**context.variables()))


def render_value(value: Any, context: ExpressionContext) -> Any:
    """Resolve `{{ … }}` in a value (recursively through lists and mappings).

    A string that is exactly one `{{ expr }}` keeps the expression's type (a number stays a number);
    any other templated string renders to text.
    """
    if isinstance(value, Mapping):
        return {key: render_value(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [render_value(item, context) for item in value]
    if not isinstance(value, str) or not is_templated(value):
        return value
    single = re.fullmatch(r"\{\{(.*)\}\}", value.strip(), re.DOTALL)
    if single and "}}" not in single.group(1) and "{{" not in single.group(1):
        return _data(evaluate_expression(single.group(1), context))
    return _run(lambda: _compiled_template(value).render(**context.variables()))
