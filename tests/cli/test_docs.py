"""The language reference stays in step with the language and the diagram with the command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from tests.cli.conftest import ROOT
from workflows.compiler import compile_journey
from workflows.diagnostics import LINTS
from workflows.model import STEP_KINDS, Journey, JourneySettings, StepBase

REFERENCE = (ROOT / "docs" / "journeys.md").read_text("utf-8")


def _keys(model: type) -> list[str]:
    fields = model.model_fields  # type: ignore[attr-defined]
    return sorted(info.alias or name for name, info in fields.items())


DOCUMENTED = sorted(
    {
        *_keys(Journey),
        *_keys(JourneySettings),
        *(key for cls in STEP_KINDS.values() for key in _keys(cls)),
        *_keys(StepBase),
    }
)


@pytest.mark.parametrize("key", DOCUMENTED)
def test_every_key_of_the_language_is_documented(key: str) -> None:
    assert f"`{key}`" in REFERENCE or f"{key}:" in REFERENCE


@pytest.mark.parametrize("code", sorted(LINTS))
def test_every_lint_code_is_documented(code: str) -> None:
    assert f"| `{code}` |" in REFERENCE


@pytest.mark.parametrize("kind", sorted(STEP_KINDS))
def test_every_step_kind_has_a_section(kind: str) -> None:
    assert f"### `{kind}`" in REFERENCE


def test_the_onboarding_diagram_is_what_graph_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    diagram = re.search(r"```mermaid\n(.*?)```", REFERENCE, re.DOTALL)
    assert diagram is not None
    result = CliRunner().invoke(app, ["graph", "onboarding"])
    assert diagram.group(1) == result.stdout, "regenerate it with `rapport graph onboarding`"


def test_the_readme_links_the_reference() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    assert "(docs/journeys.md)" in readme
    assert Path(ROOT / "docs" / "journeys.md").is_file()


def _journey_examples() -> list[tuple[str, str]]:
    examples = []
    for doc in ("README.md", "docs/journeys.md"):
        text = (ROOT / doc).read_text("utf-8")
        for block in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL):
            if re.search(r"^name:", block, re.MULTILINE) and re.search(r"^steps:", block, re.M):
                examples.append((doc, block))
    return examples


EXAMPLES = _journey_examples()


@pytest.mark.parametrize(("doc", "text"), EXAMPLES, ids=[d for d, _ in EXAMPLES])
def test_the_journey_examples_compile(
    doc: str, text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "example.yaml"
    path.write_text(text, encoding="utf-8")
    plan, diagnostics = compile_journey(path, ROOT / "templates")
    assert [str(d) for d in diagnostics] == []
    assert plan is not None
