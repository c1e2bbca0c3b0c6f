"""The console examples in README.md and docs/ are what the commands print (issue 8 item 11).

Every ```console block is a list of `$ rapport …` commands, each followed by its output. The ones
that need no running stack are run here and compared line by line: `…` alone on a line stands for
any number of lines, `…` inside a line for any text. The example journey with mistakes
(`journeys/cart.yaml`) lives in tests/cli/readme_project/; an example naming a file of `examples/`
runs there. A block right after an HTML comment
`<!-- not run: why -->` is illustrative (e.g. the output for a file that is not in the repository).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import RAPPORT, ROOT

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_PROJECT = Path(__file__).parent / "readme_project"
# Where an example runs when it names one of their files (else in the repository's root).
PROJECTS = (README_PROJECT, ROOT / "examples")
# Commands whose examples need a running stack (Temporal, the store): shown, not run here.
NEEDS_THE_STACK = {"event", "events", "start", "list", "inspect", "cancel", "run", "contacts"}
NEEDS_THE_STACK |= {"traits"}
OFFLINE = {"validate", "preview", "graph", "schema", "simulate"}


def examples() -> list[tuple[str, str, list[str]]]:
    """(where, command, expected output lines) for every command of every console block."""
    found: list[tuple[str, str, list[str]]] = []
    for document in DOCUMENTS:
        text = document.read_text("utf-8")
        for block in re.finditer(r"^```console\n(.*?)^```", text, re.DOTALL | re.MULTILINE):
            if text[: block.start()].rstrip().endswith("-->") and re.search(
                r"<!-- not run: [^>]*-->\s*$", text[: block.start()]
            ):
                continue
            line_number = text.count("\n", 0, block.start()) + 2
            where = f"{document.relative_to(ROOT)}:{line_number}"
            for line in block.group(1).splitlines():
                if line.startswith("$ "):
                    found.append((where, line[2:], []))
                else:
                    found[-1][2].append(line)
    return found


EXAMPLES = examples()
CHECKED = [example for example in EXAMPLES if shlex.split(example[1])[1] in OFFLINE]


def _pattern(expected: list[str]) -> re.Pattern[str]:
    parts = []
    for line in expected:
        if line == "…":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append("[^\n]*".join(re.escape(piece) for piece in line.split("…")) + r"\n")
    return re.compile("".join(parts))


def test_every_console_command_is_checked_or_needs_the_stack() -> None:
    names = {shlex.split(command)[1] for _, command, _ in EXAMPLES}
    assert names <= NEEDS_THE_STACK | OFFLINE
    assert CHECKED


@pytest.mark.parametrize(
    ("where", "command", "expected"),
    CHECKED,
    ids=[f"{where} {command}" for where, command, _ in CHECKED],
)
def test_a_console_example_is_what_the_command_prints(
    where: str, command: str, expected: list[str]
) -> None:
    program, *args = shlex.split(command)
    assert program == "rapport", where
    cwd = next((where for where in PROJECTS if any((where / arg).exists() for arg in args)), ROOT)
    overrides = ("RAPPORT_JOURNEYS_DIR", "RAPPORT_TEMPLATES_DIR", "RAPPORT_CONTACTS_DIR")
    env = {key: value for key, value in os.environ.items() if key not in overrides}
    # Wide enough that Rich wraps nothing; unbuffered so stdout and stderr keep their order.
    env.update(COLUMNS="200", PYTHONUNBUFFERED="1")
    result = subprocess.run(
        [*RAPPORT, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        check=False,
    )
    if not _pattern(expected).fullmatch(result.stdout):
        pytest.fail(f"{where}: `{command}` now prints (update the example):\n{result.stdout}")
