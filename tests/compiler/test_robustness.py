"""Whatever a journey file holds, compiling it gives diagnostics, never an exception."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.compiler.conftest import ROOT
from workflows.compiler import compile_journey

SAMPLES = [path.read_text("utf-8") for path in sorted((ROOT / "journeys").glob("*.yaml"))]
# Fragments a hurried edit leaves behind: YAML punctuation, tags, anchors, Jinja braces.
FRAGMENTS = [
    "5", "-", ":", " ", "  ", "\t", "'", '"', "[", "]", "{", "}", "{{", "}}", "{%", "|", "?",
    "&a", "*a", "<<: *a", "!!int", "!!binary", "!!python/object:x", "null", "[]", "{}", "é",
    "id: a", "next: b", "goto: done", "wait: 1d", "exit:", "- ", "when: event.x", "steps.",
    "contact.", "| defualt", "is defind", "1e9", "0x1", "-1d", "21:00", "\n",
]  # fmt: skip

edits = st.lists(
    st.tuples(
        st.sampled_from(["delete", "insert", "indent", "dedent", "duplicate"]),
        st.integers(min_value=0, max_value=10_000),
        st.integers(min_value=0, max_value=200),
        st.sampled_from(FRAGMENTS),
    ),
    min_size=1,
    max_size=6,
)


def mutate(text: str, changes: list[tuple[str, int, int, str]]) -> str:
    lines = text.splitlines(keepends=True)
    for operation, line_number, column, fragment in changes:
        if not lines:
            lines = ["\n"]
        index = line_number % len(lines)
        line = lines[index]
        if operation == "delete":
            del lines[index]
        elif operation == "insert":
            column = min(column, len(line))
            lines[index] = line[:column] + fragment + line[column:]
        elif operation == "indent":
            lines[index] = " " + line
        elif operation == "dedent":
            lines[index] = line[1:]
        else:
            lines.insert(index, line)
    return "".join(lines)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sample=st.sampled_from(SAMPLES), changes=edits)
def test_compiling_an_edited_sample_never_raises(
    sample: str, changes: list[tuple[str, int, int, str]], tmp_path_factory: object
) -> None:
    directory = Path(getattr(tmp_path_factory, "mktemp")("fuzz"))  # noqa: B009
    path = directory / "edited.yaml"
    path.write_text(mutate(sample, changes), encoding="utf-8")
    plan, diagnostics = compile_journey(
        path, ROOT / "templates", known_attributes=frozenset({"vip", "first_name"})
    )
    assert plan is not None or diagnostics
    for diagnostic in diagnostics:
        assert diagnostic.line >= 1 and diagnostic.col >= 1
        assert diagnostic.message
